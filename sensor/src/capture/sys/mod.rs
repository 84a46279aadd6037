//! The only module of otsensor allowed `unsafe`: mapping capture files into memory.

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
        // SAFETY: the map is read-only and private to this process. The one hazard is another
        // process truncating or rewriting the file while it is mapped (SIGBUS or changing
        // bytes). Capture files handed to otsensor are finished files; a capture still being
        // written is read through `read_file` instead (see `Capture::open`), and every byte
        // read from the map is bounds-checked by the parser, so changed bytes can only give
        // parse errors, never unsoundness in our code.
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
