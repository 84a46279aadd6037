//! The only module of otsensor allowed `unsafe`: mapping capture files into memory
//! ([`FileMap`]), the AF_PACKET ring ([`afpacket`]) and dropping privileges ([`privs`]).

#![allow(unsafe_code)]

pub(crate) mod afpacket;
pub(crate) mod privs;

use std::fs::File;
use std::io;

/// A read-only memory map of a whole file.
pub(crate) struct FileMap {
    map: memmap2::Mmap,
}

impl FileMap {
    /// Maps `file` read-only.
    pub(crate) fn map(file: &File) -> io::Result<Self> {
        // SAFETY: the map is read-only and private to this process, and it lives as long as
        // the `FileMap` (the slices it hands out borrow it). Soundness needs what `memmap2`
        // says: no one may modify or truncate the file while it is mapped, since the bytes
        // behind a `&[u8]` must not change and a truncated page raises SIGBUS. That holds for
        // the finished captures otsensor is given; it does NOT hold for a capture another
        // process is still writing or rotating, which is not supported yet (`Capture::open`
        // maps every regular file; reading such files with buffered I/O is open work). Every
        // byte read from the map is bounds-checked by the parser.
        let map = unsafe { memmap2::MmapOptions::new().map(file)? };
        // Captures are read once, front to back: let the kernel read ahead. Only a hint.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(FileMap { map })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }
}
