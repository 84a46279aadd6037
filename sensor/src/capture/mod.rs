//! Capture sources. A capture file is read with ordinary reads a block of a few MiB at a time
//! and parsed in place ([`file`](mod@file), [`FileReader`]); packets go on as slices of that
//! block, never copied, and a capture costs the same memory whatever its size (under
//! `--memory-cap` that matters: a 415 MB capture read whole cost 415 MB).
//!
//! Files are not memory-mapped: a capture that another process truncates or rotates while
//! it is mapped raises SIGBUS on the next page touched, and otsensor cannot know that a file
//! it is given will not change (a rotating `tcpdump -C`, a copy still in progress). A file
//! cut short under the reader reads as a shorter file, which the parser reports as a
//! truncated record with its packet number and byte offset.

pub mod file;
pub mod live;
#[cfg(feature = "live-pcap")]
mod pcap_live;
pub mod store;
pub(crate) mod sys;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use file::{Block, CaptureError, CaptureErrorKind, CaptureReader, FileKind, FileReader, OpenError, Packet};

/// A capture held whole in memory: tests, fuzzing and benchmarks. The commands read files
/// with [`FileReader`], which holds only a block of them.
pub struct Capture {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Capture {
    /// Opens `path` (`-` is stdin) and reads it whole. What the file holds when the read
    /// reaches its end is what is parsed: a file truncated meanwhile ends early, and its last
    /// record, if cut, is reported as truncated.
    pub fn open(path: &Path) -> io::Result<Capture> {
        let bytes = if path == Path::new("-") {
            read_all(&mut io::stdin().lock(), 0)?
        } else {
            let mut f = File::open(path)?;
            let hint = f.metadata().map_or(0, |m| m.len());
            read_all(&mut f, hint)?
        };
        Ok(Capture { path: path.to_owned(), bytes })
    }

    /// A capture held in memory (tests, fuzzing).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Capture {
        Capture { path: PathBuf::from(name), bytes }
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A reader over the packets.
    ///
    /// (Its frames can also go to the pipeline's workers as ranges of the capture: see
    /// the [`store::FrameStore`] implementation.)
    pub fn reader(&self) -> Result<CaptureReader<'_>, CaptureError> {
        CaptureReader::new(self.bytes())
    }
}

/// Reads `src` to its end. `hint` (the file's size when opened) sizes the buffer once; it is
/// only a hint: a file that shrinks or grows meanwhile gives what was there to read.
fn read_all(src: &mut dyn Read, hint: u64) -> io::Result<Vec<u8>> {
    // Never trust the hint for more than a start: a huge sparse file must not reserve its size.
    const MAX_RESERVE: u64 = 1 << 30;
    let mut v = Vec::with_capacity(usize::try_from(hint.min(MAX_RESERVE)).unwrap_or(0));
    src.read_to_end(&mut v)?;
    Ok(v)
}

impl store::FrameStore for Capture {
    fn bytes(&self) -> &[u8] {
        Capture::bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureErrorKind;
    use std::fs::OpenOptions;
    use std::path::PathBuf;

    /// A classic pcap (LINKTYPE_RAW) of `n` records of 10 bytes each: 24 + 26 n bytes.
    fn pcap(n: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
        v.extend([2, 0, 4, 0]); // version 2.4
        v.extend([0u8; 8]); // thiszone, sigfigs
        v.extend(65535u32.to_le_bytes()); // snaplen
        v.extend(101u32.to_le_bytes()); // LINKTYPE_RAW
        for i in 0..n {
            v.extend(i.to_le_bytes()); // ts seconds
            v.extend(0u32.to_le_bytes()); // ts microseconds
            v.extend(10u32.to_le_bytes()); // caplen
            v.extend(10u32.to_le_bytes()); // orig len
            v.extend([0x45; 10]); // data
        }
        v
    }

    /// A file that another process truncates to `cut_to` bytes right after the first
    /// `first_read` bytes were read from it, as a rotating `tcpdump -C` does.
    struct TruncatedUnderTheReader {
        file: File,
        path: PathBuf,
        first_read: usize,
        cut_to: u64,
        cut: bool,
    }

    impl Read for TruncatedUnderTheReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.cut {
                return self.file.read(buf);
            }
            let want = buf.len().min(self.first_read);
            let n = self.file.read(&mut buf[..want])?;
            OpenOptions::new().write(true).open(&self.path)?.set_len(self.cut_to)?;
            self.cut = true;
            Ok(n)
        }
    }

    #[test]
    fn a_capture_truncated_while_read_ends_with_a_located_truncated_record() {
        let path = std::env::temp_dir().join(format!("otsensor-truncated-under-reader-{}.pcap", std::process::id()));
        std::fs::write(&path, pcap(1000)).unwrap();
        let hint = std::fs::metadata(&path).unwrap().len();
        // The reader has read the header and 3 records when the file is cut in the middle of
        // record 5 (it starts at 24 + 4 * 26 = 128; 20 of its 26 bytes are left).
        let src = || TruncatedUnderTheReader {
            file: File::open(&path).unwrap(),
            path: path.clone(),
            first_read: 24 + 3 * 26,
            cut_to: 128 + 20,
            cut: false,
        };
        let cap = Capture::from_bytes("rotated.pcap", read_all(&mut src(), hint).unwrap());
        let items: Vec<_> = cap.reader().unwrap().collect();
        assert_eq!(items.len(), 5, "four whole records, then the error");
        assert!(items[..4].iter().all(Result::is_ok));
        let e = items[4].unwrap_err();
        assert_eq!((e.packet, e.offset), (5, 128));
        assert_eq!(e.kind, CaptureErrorKind::Truncated { needed: 26, available: 20 });

        // The same through the block reader, with blocks small enough that the cut record
        // straddles two of them: the same four packets and the same located error.
        std::fs::write(&path, pcap(1000)).unwrap();
        let mut r = FileReader::with_block(Box::new(src()), 64).unwrap();
        let mut ok = 0;
        let e = loop {
            match r.next_packet() {
                Some(Ok(_)) => ok += 1,
                Some(Err(e)) => break e,
                None => panic!("no error after {ok} packets"),
            }
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(ok, 4);
        assert_eq!((e.packet, e.offset), (5, 128));
        assert_eq!(e.kind, CaptureErrorKind::Truncated { needed: 26, available: 20 });
        assert!(r.next_packet().is_none(), "nothing after the error");
    }

    #[test]
    fn open_reads_the_file_as_it_is_now_not_as_its_size_said() {
        let path = std::env::temp_dir().join(format!("otsensor-open-reads-{}.pcap", std::process::id()));
        std::fs::write(&path, pcap(3)).unwrap();
        let cap = Capture::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(cap.bytes(), &pcap(3)[..]);
        assert_eq!(cap.reader().unwrap().count(), 3);
    }
}
