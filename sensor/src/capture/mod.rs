//! Capture sources. Files are memory-mapped and parsed in place ([`file`]); packets go on as
//! slices of the map, never copied.

pub mod file;
pub mod live;
#[cfg(feature = "live-pcap")]
mod pcap_live;
pub mod store;
pub(crate) mod sys;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use file::{CaptureError, CaptureErrorKind, CaptureReader, FileKind, Packet};

enum Bytes {
    Map(sys::FileMap),
    Owned(Vec<u8>),
}

/// A capture file opened for reading.
pub struct Capture {
    path: PathBuf,
    bytes: Bytes,
}

impl Capture {
    /// Opens `path`: a regular file is memory-mapped; `-`, pipes and other special files are
    /// read into memory.
    pub fn open(path: &Path) -> io::Result<Capture> {
        if path == Path::new("-") {
            let mut v = Vec::new();
            io::stdin().lock().read_to_end(&mut v)?;
            return Ok(Capture { path: path.to_owned(), bytes: Bytes::Owned(v) });
        }
        let mut f = File::open(path)?;
        let meta = f.metadata()?;
        let bytes = if meta.is_file() && meta.len() > 0 {
            Bytes::Map(sys::FileMap::map(&f)?)
        } else {
            let mut v = Vec::new();
            f.read_to_end(&mut v)?;
            Bytes::Owned(v)
        };
        Ok(Capture { path: path.to_owned(), bytes })
    }

    /// A capture held in memory (tests, fuzzing).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Capture {
        Capture { path: PathBuf::from(name), bytes: Bytes::Owned(bytes) }
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Map(m) => m.bytes(),
            Bytes::Owned(v) => v,
        }
    }

    /// A reader over the packets.
    ///
    /// (Its frames can also go to the pipeline's workers as ranges of the capture: see
    /// the [`store::FrameStore`] implementation.)
    pub fn reader(&self) -> Result<CaptureReader<'_>, CaptureError> {
        CaptureReader::new(self.bytes())
    }
}

impl store::FrameStore for Capture {
    fn bytes(&self) -> &[u8] {
        Capture::bytes(self)
    }
}
