//! An alerts file that a full disk or an I/O error cannot corrupt.
//!
//! Records are buffered and written whole at [`flush`](Write::flush) (or when 64 KiB are
//! pending). A write that fails part-way is undone: the file is cut back to the end of the
//! last record written whole, so a reader (and the chain) never sees half a record. The write
//! is then retried with a doubling pause, a warning on stderr each time; after the last
//! attempt the error goes to the caller, saying how much of the file is intact and how much
//! was not written. Nothing already written is touched.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes buffered before a write is forced.
const MAX_PENDING: usize = 64 * 1024;

/// How many times a write is attempted, and the first pause between two.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The pause after the first failure; doubled after each.
    pub pause: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 5, pause: Duration::from_millis(200) }
    }
}

/// What the records are written to: a file opened for appending, or a fault-injecting double
/// in tests.
pub trait Backing: Send {
    /// Appends `bytes` at the end.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Cuts the file back to `len` bytes.
    fn cut_to(&mut self, len: u64) -> io::Result<()>;
}

impl Backing for File {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// An append-only file of whole records.
pub struct AppendFile<B: Backing = File> {
    path: PathBuf,
    inner: B,
    pending: Vec<u8>,
    committed: u64,
    retry: Retry,
}

impl AppendFile<File> {
    /// Opens `path` for appending (creating it); `truncate` empties it first.
    pub fn open(path: &Path, truncate: bool) -> io::Result<AppendFile<File>> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        if truncate {
            file.set_len(0)?;
        }
        let len = file.metadata()?.len();
        Ok(AppendFile::new(path, file, len, Retry::default()))
    }

    /// Writes what is pending, then makes it durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.inner.sync_data()
    }
}

impl<B: Backing> AppendFile<B> {
    /// Records appended to `inner`, which holds `len` bytes of whole records.
    pub fn new(path: &Path, inner: B, len: u64, retry: Retry) -> Self {
        AppendFile { path: path.to_path_buf(), inner, pending: Vec::new(), committed: len, retry }
    }

    /// Bytes of whole records in the file.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Writes the pending records, undoing and retrying a failed write.
    fn commit(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pause = self.retry.pause;
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match self.inner.append(&self.pending) {
                Ok(()) => {
                    self.committed += self.pending.len() as u64;
                    self.pending.clear();
                    return Ok(());
                }
                Err(e) => e,
            };
            // Half a record must not stay: cut back to the last whole one.
            if let Err(cut) = self.inner.cut_to(self.committed) {
                return Err(io::Error::new(
                    err.kind(),
                    format!(
                        "{}: {err}; and cutting back to byte {} failed: {cut}",
                        self.path.display(),
                        self.committed
                    ),
                ));
            }
            if attempt >= attempts {
                return Err(io::Error::new(
                    err.kind(),
                    format!(
                        "{}: {err} (after {attempts} attempts; the file is intact up to byte {}, {} bytes of alerts \
                         were not written)",
                        self.path.display(),
                        self.committed,
                        self.pending.len()
                    ),
                ));
            }
            eprintln!(
                "otsensor: warning: {}: writing alerts failed ({err}); attempt {attempt} of {attempts}, retrying in {} ms",
                self.path.display(),
                pause.as_millis()
            );
            std::thread::sleep(pause);
            pause = pause.saturating_mul(2);
            attempt += 1;
        }
    }
}

impl<B: Backing> Write for AppendFile<B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= MAX_PENDING {
            self.commit()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disk that fails the first `failures` writes after writing half of what it was
    /// given (as a full disk does), then accepts everything.
    struct FlakyDisk {
        bytes: Vec<u8>,
        failures: u32,
    }

    impl Backing for FlakyDisk {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            if self.failures > 0 {
                self.failures -= 1;
                self.bytes.extend_from_slice(&bytes[..bytes.len() / 2]);
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.bytes.extend_from_slice(bytes);
            Ok(())
        }
        fn cut_to(&mut self, len: u64) -> io::Result<()> {
            self.bytes.truncate(len as usize);
            Ok(())
        }
    }

    fn disk(failures: u32, attempts: u32) -> AppendFile<FlakyDisk> {
        let inner = FlakyDisk { bytes: b"{\"seq\":1}\n".to_vec(), failures };
        AppendFile::new(Path::new("alerts.jsonl"), inner, 10, Retry { attempts, pause: Duration::from_millis(1) })
    }

    #[test]
    fn a_failed_write_is_undone_and_retried_until_it_lands_whole() {
        let mut f = disk(2, 3);
        f.write_all(b"{\"seq\":2}\n{\"seq\":3}\n").unwrap();
        f.flush().unwrap();
        assert_eq!(f.inner.bytes, b"{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3}\n");
        assert_eq!(f.committed(), 30);
    }

    #[test]
    fn a_write_that_keeps_failing_is_an_error_and_leaves_only_whole_records() {
        let mut f = disk(10, 3);
        f.write_all(b"{\"seq\":2}\n").unwrap();
        let e = f.flush().unwrap_err();
        assert_eq!(e.raw_os_error(), None, "the error carries the location: {e}");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        let msg = e.to_string();
        assert!(
            msg.contains("alerts.jsonl") && msg.contains("after 3 attempts") && msg.contains("intact up to byte 10")
        );
        assert_eq!(f.inner.bytes, b"{\"seq\":1}\n", "the record before is untouched, no half record");
    }
}
