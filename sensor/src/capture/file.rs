//! Classic pcap and pcapng, parsed in place one record at a time with no allocation per
//! packet: from a file a block of a few MiB at a time ([`FileReader`]), so that a capture
//! costs the same memory whatever its size, or over a capture held in memory
//! ([`CaptureReader`]; tests and fuzzing).
//!
//! Classic pcap: both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d)
//! magics. pcapng: several sections (each with its own byte order), several interfaces with
//! their own link types, `if_tsresol` and `if_tsoffset`; Enhanced, Simple and obsolete Packet
//! Blocks; other blocks skipped. Errors name the packet number and byte offset.

// Record and block lengths are file data: arithmetic on them must not overflow.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use std::fmt;

use otsensor_dissectors::event::Timestamp;

/// One captured packet, borrowed from the capture's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// 1-based index of the packet in its capture (tshark's `frame.number`).
    pub index: u64,
    /// Byte offset of the packet's record in the file.
    pub offset: u64,
    /// Capture time.
    pub ts: Timestamp,
    /// Link type (LINKTYPE_ value).
    pub linktype: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// What is wrong with a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// The file starts with neither a pcap nor a pcapng magic number.
    NotACapture {
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// A header or record runs past the end of the file.
    Truncated {
        /// Bytes the record needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A pcap record's captured length is larger than any real packet.
    CapturedLengthTooLarge {
        /// The captured length field.
        caplen: u32,
    },
    /// A pcapng block length is too small, not a multiple of 4, or disagrees with its trailer.
    BadBlockLength {
        /// The block length field.
        len: u32,
    },
    /// A pcapng section header with an unknown byte-order magic.
    BadByteOrderMagic {
        /// The magic read.
        magic: u32,
    },
    /// A pcapng packet refers to an interface not described before it.
    UnknownInterface {
        /// The interface id.
        interface: u32,
    },
    /// A pcapng block before the first section header.
    NoSectionHeader,
    /// A record longer than a reader buffers ([`MAX_RECORD`]).
    RecordTooLarge {
        /// The length it claims.
        len: u64,
    },
    /// Reading the file failed.
    ReadFailed {
        /// What the operating system said.
        kind: std::io::ErrorKind,
    },
}

impl fmt::Display for CaptureErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CaptureErrorKind::NotACapture { magic } => {
                write!(f, "not a pcap or pcapng file (magic 0x{magic:08x})")
            }
            CaptureErrorKind::Truncated { needed, available } => {
                write!(f, "truncated record: needs {needed} bytes, {available} left in the file")
            }
            CaptureErrorKind::CapturedLengthTooLarge { caplen } => {
                write!(f, "captured length {caplen} is larger than any packet (corrupt record header)")
            }
            CaptureErrorKind::BadBlockLength { len } => write!(f, "bad pcapng block length {len}"),
            CaptureErrorKind::BadByteOrderMagic { magic } => {
                write!(f, "bad pcapng byte-order magic 0x{magic:08x}")
            }
            CaptureErrorKind::UnknownInterface { interface } => {
                write!(f, "packet refers to undescribed interface {interface}")
            }
            CaptureErrorKind::NoSectionHeader => write!(f, "pcapng block before any section header"),
            CaptureErrorKind::RecordTooLarge { len } => {
                write!(f, "record of {len} bytes is larger than any packet (corrupt block length)")
            }
            CaptureErrorKind::ReadFailed { kind } => write!(f, "read failed: {kind}"),
        }
    }
}

/// An error in a capture, located.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureError {
    /// The number the packet being read would have had (1-based).
    pub packet: u64,
    /// Byte offset of the record that failed.
    pub offset: u64,
    /// What is wrong.
    pub kind: CaptureErrorKind,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "packet {} at byte offset {}: {}", self.packet, self.offset, self.kind)
    }
}

impl std::error::Error for CaptureError {}

/// Largest captured length accepted (pcapng and libpcap use 256 KiB as their maximum snap
/// length; some tools write up to 16 MiB for USB and D-Bus).
pub const MAX_CAPLEN: u32 = 16 * 1024 * 1024;
/// Largest number of pcapng interfaces per section.
pub const MAX_INTERFACES: usize = 4096;

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp.
    offset: i64,
}

#[derive(Debug)]
enum Format {
    Pcap { be: bool, nanos: bool, linktype: u32 },
    PcapNg { be: bool, interfaces: Vec<Interface>, in_section: bool },
}

/// Which kind of file a reader reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

/// What the parser made of the bytes at the start of its input.
#[derive(Debug)]
enum Step {
    /// A packet: where its bytes are in the input, and the record's length.
    Packet(Record),
    /// A block that is not a packet (pcapng), `usize` bytes long: read on.
    Skipped(usize),
    /// The record needs this many bytes and the input holds fewer: more must be read (at the
    /// end of the file, the record is truncated).
    More(usize),
    /// A framing error at the start of the input.
    Error(CaptureErrorKind),
}

/// A packet record found by the parser: its fields, and the range of its bytes relative to
/// the record's start.
#[derive(Clone, Copy, Debug)]
struct Record {
    ts: Timestamp,
    linktype: u32,
    orig_len: u32,
    data_at: usize,
    data_len: usize,
    /// Bytes of the whole record (header, data, padding, trailer).
    len: usize,
}

/// The state of a capture's parse that is not its bytes: the format (and, for pcapng, the
/// section's byte order and interfaces). The same parser serves a capture held in memory
/// ([`CaptureReader`]) and one streamed through a buffer ([`FileReader`]).
#[derive(Debug)]
struct Parser {
    format: Format,
}

/// Largest record a [`FileReader`] buffers: a packet of [`MAX_CAPLEN`] with its pcapng block
/// and options. A block claiming more is refused rather than buffered (a corrupt length
/// would otherwise make the reader allocate up to 4 GiB).
pub const MAX_RECORD: usize = MAX_CAPLEN as usize + 64 * 1024;

fn rd32(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if be { u32::from_be_bytes(s) } else { u32::from_le_bytes(s) })
}

fn rd16(b: &[u8], at: usize, be: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
    Some(if be { u16::from_be_bytes(s) } else { u16::from_le_bytes(s) })
}

/// Converts a timestamp in `units` per second to a [`Timestamp`].
fn ts_from_units(v: u64, units: u64, offset: i64) -> Timestamp {
    let units = units.max(1);
    let secs = v.checked_div(units).unwrap_or(0) as i64;
    let frac = v.checked_rem(units).unwrap_or(0);
    // frac < units <= 2^64: the product fits a u128, and the quotient is below 10^9.
    let nanos = u128::from(frac).saturating_mul(1_000_000_000).checked_div(u128::from(units)).unwrap_or(0) as u32;
    Timestamp { secs: secs.saturating_add(offset), nanos }
}

impl Parser {
    /// Recognises the format from the file's first bytes; returns the parser and the bytes
    /// of file header to skip, or `Err(None)` when `head` is too short to tell.
    fn new(head: &[u8]) -> Result<(Parser, usize), Option<CaptureErrorKind>> {
        let magic_le = rd32(head, 0, false).ok_or(None)?;
        let magic_be = magic_le.swap_bytes();
        let pcap = |be: bool, nanos: bool| {
            // The upper bits carry the FCS length and flags (pcap-savefile(5)).
            let linktype = rd32(head, 20, be).ok_or(None)?;
            Ok((Parser { format: Format::Pcap { be, nanos, linktype: linktype & 0x0fff_ffff } }, 24))
        };
        if magic_le == PCAP_MAGIC_US || magic_le == PCAP_MAGIC_NS {
            pcap(false, magic_le == PCAP_MAGIC_NS)
        } else if magic_be == PCAP_MAGIC_US || magic_be == PCAP_MAGIC_NS {
            pcap(true, magic_be == PCAP_MAGIC_NS)
        } else if magic_le == PCAPNG_SHB {
            Ok((Parser { format: Format::PcapNg { be: false, interfaces: Vec::new(), in_section: false } }, 0))
        } else {
            Err(Some(CaptureErrorKind::NotACapture { magic: magic_be }))
        }
    }

    /// Bytes of file header a format needs before anything can be told (the whole classic
    /// pcap header; a pcapng file's magic).
    fn header_len(head: &[u8]) -> usize {
        match rd32(head, 0, false) {
            Some(PCAPNG_SHB) | None => 4,
            Some(_) => 24,
        }
    }

    fn kind(&self) -> FileKind {
        match self.format {
            Format::Pcap { .. } => FileKind::Pcap,
            Format::PcapNg { .. } => FileKind::PcapNg,
        }
    }

    fn first_linktype(&self) -> Option<u32> {
        match &self.format {
            Format::Pcap { linktype, .. } => Some(*linktype),
            Format::PcapNg { interfaces, .. } => interfaces.first().map(|i| i.linktype),
        }
    }

    /// Parses the record at the start of `b` (not empty).
    fn step(&mut self, b: &[u8]) -> Step {
        match self.format {
            Format::Pcap { be, nanos, linktype } => Self::pcap_record(b, be, nanos, linktype),
            Format::PcapNg { .. } => self.pcapng_block(b),
        }
    }

    fn pcap_record(b: &[u8], be: bool, nanos: bool, linktype: u32) -> Step {
        // One bounds check for the whole record header.
        let Some(h) = b.get(..16).and_then(|h| <&[u8; 16]>::try_from(h).ok()) else { return Step::More(16) };
        let word = |i: usize| {
            let w = h.get(i..).and_then(|s| s.first_chunk::<4>()).copied().unwrap_or_default();
            if be {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let (sec, frac, caplen, orig_len) = (word(0), word(4), word(8), word(12));
        if caplen > MAX_CAPLEN {
            return Step::Error(CaptureErrorKind::CapturedLengthTooLarge { caplen });
        }
        // At most 16 MiB + 16: no overflow on any target otsensor builds for.
        let len = (caplen as usize).saturating_add(16);
        if b.len() < len {
            return Step::More(len);
        }
        let nanos_v = if nanos { frac } else { frac.saturating_mul(1000) };
        let ts = Timestamp { secs: i64::from(sec), nanos: nanos_v.min(999_999_999) };
        Step::Packet(Record { ts, linktype, orig_len, data_at: 16, data_len: caplen as usize, len })
    }

    fn pcapng_block(&mut self, b: &[u8]) -> Step {
        let Format::PcapNg { be, interfaces, in_section } = &mut self.format else {
            return Step::Error(CaptureErrorKind::NoSectionHeader);
        };
        let (Some(raw_type), Some(bom_le)) = (rd32(b, 0, false), rd32(b, 8, false)) else { return Step::More(12) };
        // The byte-order magic decides how a section, its own length included, reads; it is
        // only taken once the whole header block is there.
        let mut block_be = *be;
        if raw_type == PCAPNG_SHB {
            block_be = if bom_le == PCAPNG_BOM {
                false
            } else if bom_le.swap_bytes() == PCAPNG_BOM {
                true
            } else {
                return Step::Error(CaptureErrorKind::BadByteOrderMagic { magic: bom_le });
            };
        } else if !*in_section {
            return Step::Error(CaptureErrorKind::NoSectionHeader);
        }
        let be = block_be;
        let (Some(btype), Some(len)) = (rd32(b, 0, be), rd32(b, 4, be)) else { return Step::More(12) };
        if len < 12 || len % 4 != 0 {
            return Step::Error(CaptureErrorKind::BadBlockLength { len });
        }
        let Ok(len_us) = usize::try_from(len) else { return Step::Error(CaptureErrorKind::BadBlockLength { len }) };
        let Some(block) = b.get(..len_us) else { return Step::More(len_us) };
        // len >= 12: the trailer and the body's bounds cannot underflow.
        if rd32(block, len_us.saturating_sub(4), be) != Some(len) {
            return Step::Error(CaptureErrorKind::BadBlockLength { len });
        }
        let body = block.get(8..len_us.saturating_sub(4)).unwrap_or_default();
        if raw_type == PCAPNG_SHB {
            let Format::PcapNg { be: sbe, interfaces, in_section } = &mut self.format else {
                return Step::Skipped(len_us);
            };
            *sbe = be;
            interfaces.clear();
            *in_section = true;
            return Step::Skipped(len_us);
        }
        match btype {
            // Interface Description Block.
            1 => {
                let (Some(lt), Some(snaplen)) = (rd16(body, 0, be), rd32(body, 4, be)) else {
                    return Step::Error(CaptureErrorKind::BadBlockLength { len });
                };
                let mut iface = Interface { linktype: u32::from(lt), snaplen, units: 1_000_000, offset: 0 };
                // Option offsets stay below the body's length (a block is at most 4 GiB): the
                // sums below cannot overflow a usize, and reads past the body return None.
                let mut o = 8usize;
                while let (Some(code), Some(olen)) = (rd16(body, o, be), rd16(body, o.saturating_add(2), be)) {
                    let v = o.saturating_add(4);
                    match code {
                        0 => break,
                        9 => {
                            if let Some(&r) = body.get(v) {
                                iface.units = if r & 0x80 == 0 {
                                    10u64.checked_pow(u32::from(r)).unwrap_or(1_000_000)
                                } else {
                                    1u64.checked_shl(u32::from(r & 0x7f)).unwrap_or(1_000_000)
                                };
                            }
                        }
                        14 => {
                            if let Some(s) = body.get(v..v.saturating_add(8)).and_then(|s| <[u8; 8]>::try_from(s).ok())
                            {
                                iface.offset = if be { i64::from_be_bytes(s) } else { i64::from_le_bytes(s) };
                            }
                        }
                        _ => {}
                    }
                    o = v.saturating_add(usize::from(olen).div_ceil(4).saturating_mul(4));
                }
                if interfaces.len() < MAX_INTERFACES {
                    interfaces.push(iface);
                }
                Step::Skipped(len_us)
            }
            // Enhanced Packet Block, obsolete Packet Block.
            6 | 2 => {
                let if_id = if btype == 6 { rd32(body, 0, be) } else { rd16(body, 0, be).map(u32::from) };
                let (Some(if_id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) =
                    (if_id, rd32(body, 4, be), rd32(body, 8, be), rd32(body, 12, be), rd32(body, 16, be))
                else {
                    return Step::Error(CaptureErrorKind::BadBlockLength { len });
                };
                let Some(iface) = interfaces.get(if_id as usize).copied() else {
                    return Step::Error(CaptureErrorKind::UnknownInterface { interface: if_id });
                };
                // The packet must lie inside the body: 20 + caplen <= body length (checked
                // without adding to the untrusted caplen).
                let fits =
                    usize::try_from(caplen).is_ok_and(|c| c <= body.len().saturating_sub(20)) && body.len() >= 20;
                if !fits {
                    return Step::Error(CaptureErrorKind::BadBlockLength { len });
                }
                let ts = ts_from_units((u64::from(hi) << 32) | u64::from(lo), iface.units, iface.offset);
                Step::Packet(Record {
                    ts,
                    linktype: iface.linktype,
                    orig_len,
                    data_at: 8 + 20,
                    data_len: caplen as usize,
                    len: len_us,
                })
            }
            // Simple Packet Block: interface 0, no timestamp.
            3 => {
                let Some(iface) = interfaces.first().copied() else {
                    return Step::Error(CaptureErrorKind::UnknownInterface { interface: 0 });
                };
                let orig_len = rd32(body, 0, be).unwrap_or(0);
                let avail = body.len().saturating_sub(4);
                let mut caplen = (orig_len as usize).min(avail);
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                Step::Packet(Record {
                    ts: Timestamp::default(),
                    linktype: iface.linktype,
                    orig_len,
                    data_at: 8 + 4,
                    data_len: caplen,
                    len: len_us,
                })
            }
            _ => Step::Skipped(len_us),
        }
    }
}

/// A reader over a whole capture held in memory (tests, fuzzing, [`super::Capture`]); files
/// are read with [`FileReader`], which holds a few MiB of them at a time.
#[derive(Debug)]
pub struct CaptureReader<'a> {
    data: &'a [u8],
    off: usize,
    next_index: u64,
    parser: Parser,
    failed: bool,
}

impl<'a> CaptureReader<'a> {
    /// Recognises the format from the first bytes. An empty file is an error too.
    pub fn new(data: &'a [u8]) -> Result<Self, CaptureError> {
        let err = |kind| CaptureError { packet: 1, offset: 0, kind };
        let (parser, off) = Parser::new(data).map_err(|e| {
            err(e.unwrap_or(CaptureErrorKind::Truncated {
                needed: Parser::header_len(data) as u64,
                available: data.len() as u64,
            }))
        })?;
        Ok(CaptureReader { data, off, next_index: 1, parser, failed: false })
    }

    /// The kind of file.
    pub fn kind(&self) -> FileKind {
        self.parser.kind()
    }

    /// The link type of a classic pcap file, or of the first pcapng interface seen so far.
    pub fn first_linktype(&self) -> Option<u32> {
        self.parser.first_linktype()
    }

    /// Byte offset of the next record: how far the reader has got.
    pub fn position(&self) -> u64 {
        self.off as u64
    }
}

impl<'a> Iterator for CaptureReader<'a> {
    type Item = Result<Packet<'a>, CaptureError>;

    /// The next packet, an error (after which the iterator ends), or the end of the file.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let at = self.off;
            let rest = self.data.get(at..).unwrap_or_default();
            if rest.is_empty() {
                return None;
            }
            let fail = |kind| Some(Err(CaptureError { packet: self.next_index, offset: at as u64, kind }));
            match self.parser.step(rest) {
                Step::Skipped(len) => self.off = at.saturating_add(len),
                Step::Packet(r) => {
                    let data = rest.get(r.data_at..r.data_at.saturating_add(r.data_len)).unwrap_or_default();
                    let index = self.next_index;
                    self.next_index = self.next_index.saturating_add(1);
                    self.off = at.saturating_add(r.len);
                    let (ts, linktype, orig_len) = (r.ts, r.linktype, r.orig_len);
                    return Some(Ok(Packet { index, offset: at as u64, ts, linktype, orig_len, data }));
                }
                Step::More(needed) => {
                    self.failed = true;
                    let kind = CaptureErrorKind::Truncated { needed: needed as u64, available: rest.len() as u64 };
                    return fail(kind);
                }
                Step::Error(kind) => {
                    self.failed = true;
                    return fail(kind);
                }
            }
        }
    }
}

/// Bytes a [`FileReader`] reads at a time, and so about all it holds of a file: big enough
/// that a read costs little per packet, small enough to count for nothing under a memory cap.
pub const BLOCK_BYTES: usize = 4 << 20;

/// The buffer of a [`FileReader`]: one block of a file. Packets are slices of it; the
/// pipeline hands them to its workers as ranges of it, holding an `Arc`.
#[derive(Debug)]
pub struct Block(Vec<u8>);

impl super::store::FrameStore for Block {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A capture read from a file (or any byte stream) a block at a time: only [`BLOCK_BYTES`]
/// of it are in memory (more only for a record larger than that, up to [`MAX_RECORD`]), and
/// packets are slices of the block, never copied one by one. A record cut by the end of a
/// block is moved to the start of the next. What the file holds when the reader reaches it
/// is what is parsed: a file truncated meanwhile ends early, its last record, if cut,
/// reported as truncated with its packet number and byte offset.
pub struct FileReader {
    src: Box<dyn std::io::Read + Send>,
    buf: std::sync::Arc<Block>,
    /// Bytes of `buf` not yet parsed: `start..end`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    block: usize,
    next_index: u64,
    parser: Parser,
    failed: bool,
    /// Bumped whenever `buf` is replaced by another allocation.
    generation: u64,
}

impl fmt::Debug for FileReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileReader").field("position", &self.position()).field("block", &self.block).finish()
    }
}

/// Why a [`FileReader`] could not start.
#[derive(Debug)]
pub enum OpenError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// It is not a capture, or its header is cut short.
    Capture(CaptureError),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(e) => e.fmt(f),
            OpenError::Capture(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for OpenError {}

impl FileReader {
    /// Reads the capture from `src` in blocks of [`BLOCK_BYTES`].
    pub fn new(src: Box<dyn std::io::Read + Send>) -> Result<FileReader, OpenError> {
        Self::with_block(src, BLOCK_BYTES)
    }

    /// Reads the capture from `src` in blocks of `block` bytes (at least 64; tests use small
    /// blocks to cut records at every point).
    pub fn with_block(src: Box<dyn std::io::Read + Send>, block: usize) -> Result<FileReader, OpenError> {
        let block = block.max(64);
        let mut r = FileReader {
            src,
            buf: std::sync::Arc::new(Block(Vec::new())),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            block,
            next_index: 1,
            parser: Parser { format: Format::Pcap { be: false, nanos: false, linktype: 0 } },
            failed: false,
            generation: 0,
        };
        r.fill(24).map_err(OpenError::Io)?;
        let head = r.unparsed();
        let (parser, skip) = Parser::new(head).map_err(|e| {
            OpenError::Capture(CaptureError {
                packet: 1,
                offset: 0,
                kind: e.unwrap_or(CaptureErrorKind::Truncated {
                    needed: Parser::header_len(head) as u64,
                    available: head.len() as u64,
                }),
            })
        })?;
        r.parser = parser;
        r.start = skip;
        Ok(r)
    }

    /// Opens `path` (`-` is stdin).
    pub fn open(path: &std::path::Path) -> Result<FileReader, OpenError> {
        if path == std::path::Path::new("-") {
            return Self::new(Box::new(std::io::stdin()));
        }
        Self::new(Box::new(std::fs::File::open(path).map_err(OpenError::Io)?))
    }

    fn unparsed(&self) -> &[u8] {
        self.buf.0.get(self.start..self.end).unwrap_or_default()
    }

    /// Makes the unparsed bytes at least `needed` long, or as long as the file allows:
    /// moves them to the start of the buffer (of a new one when the pipeline still holds
    /// this one, or when they need more room than it has) and reads until it is full.
    fn fill(&mut self, needed: usize) -> std::io::Result<()> {
        let keep = self.end.saturating_sub(self.start);
        let size = self.block.max(needed);
        match std::sync::Arc::get_mut(&mut self.buf) {
            Some(Block(v)) if v.len() >= size => v.copy_within(self.start..self.end, 0),
            _ => {
                let mut v = vec![0; size];
                if let (Some(dst), Some(src)) = (v.get_mut(..keep), self.buf.0.get(self.start..self.end)) {
                    dst.copy_from_slice(src);
                }
                self.buf = std::sync::Arc::new(Block(v));
                self.generation = self.generation.wrapping_add(1);
            }
        }
        self.base = self.base.saturating_add(self.start as u64);
        self.start = 0;
        self.end = keep;
        let Some(Block(v)) = std::sync::Arc::get_mut(&mut self.buf) else { return Ok(()) };
        while self.end < v.len() && !self.eof {
            match self.src.read(v.get_mut(self.end..).unwrap_or_default()) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end = self.end.saturating_add(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The kind of file.
    pub fn kind(&self) -> FileKind {
        self.parser.kind()
    }

    /// The link type of a classic pcap file, or of the first pcapng interface seen so far.
    pub fn first_linktype(&self) -> Option<u32> {
        self.parser.first_linktype()
    }

    /// Byte offset in the file of the next record: how far the reader has got.
    pub fn position(&self) -> u64 {
        self.base.saturating_add(self.start as u64)
    }

    /// The block the last packet returned lies in. Changes (see [`FileReader::generation`])
    /// when the reader moves on to a new allocation.
    pub fn store(&self) -> std::sync::Arc<Block> {
        std::sync::Arc::clone(&self.buf)
    }

    /// A number that changes whenever [`FileReader::store`] does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn fail(&mut self, kind: CaptureErrorKind) -> Option<Result<Packet<'_>, CaptureError>> {
        self.failed = true;
        Some(Err(CaptureError { packet: self.next_index, offset: self.position(), kind }))
    }

    /// The next packet, an error (after which there is nothing more), or `None` at the end of
    /// the file. (Not an [`Iterator`]: the packet borrows the reader's buffer, which the next
    /// call may refill.)
    pub fn next_packet(&mut self) -> Option<Result<Packet<'_>, CaptureError>> {
        if self.failed {
            return None;
        }
        let record = loop {
            if self.start == self.end {
                if self.eof {
                    return None;
                }
                if let Err(e) = self.fill(1) {
                    return self.fail(CaptureErrorKind::ReadFailed { kind: e.kind() });
                }
                continue;
            }
            let rest = self.buf.0.get(self.start..self.end).unwrap_or_default();
            match self.parser.step(rest) {
                Step::Skipped(len) => self.start = self.start.saturating_add(len).min(self.end),
                Step::Packet(r) => break r,
                Step::More(needed) if !self.eof && needed <= MAX_RECORD => {
                    if let Err(e) = self.fill(needed) {
                        return self.fail(CaptureErrorKind::ReadFailed { kind: e.kind() });
                    }
                }
                Step::More(needed) if !self.eof => {
                    return self.fail(CaptureErrorKind::RecordTooLarge { len: needed as u64 })
                }
                Step::More(needed) => {
                    let available = self.end.saturating_sub(self.start) as u64;
                    return self.fail(CaptureErrorKind::Truncated { needed: needed as u64, available });
                }
                Step::Error(kind) => return self.fail(kind),
            }
        };
        let at = self.start;
        let offset = self.position();
        self.start = at.saturating_add(record.len).min(self.end);
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        let from = at.saturating_add(record.data_at);
        let data = self.buf.0.get(from..from.saturating_add(record.data_len)).unwrap_or_default();
        let (ts, linktype, orig_len) = (record.ts, record.linktype, record.orig_len);
        Some(Ok(Packet { index, offset, ts, linktype, orig_len, data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_le(nanos: bool) -> Vec<u8> {
        let magic: u32 = if nanos { PCAP_MAGIC_NS } else { PCAP_MAGIC_US };
        let mut v = Vec::new();
        v.extend(magic.to_le_bytes()); // magic
        v.extend(2u16.to_le_bytes()); // version major
        v.extend(4u16.to_le_bytes()); // version minor
        v.extend([0u8; 8]); // thiszone, sigfigs
        v.extend(65535u32.to_le_bytes()); // snaplen
        v.extend(1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        for i in 0..2u32 {
            v.extend((1_500_000_000 + i).to_le_bytes()); // ts seconds
            v.extend(123_456u32.to_le_bytes()); // ts fraction
            v.extend(3u32.to_le_bytes()); // caplen
            v.extend(60u32.to_le_bytes()); // orig len
            v.extend([0xaa, 0xbb, i as u8]); // data
        }
        v
    }

    #[test]
    fn reads_microsecond_and_nanosecond_pcap() {
        let bytes = pcap_le(false);
        let us: Vec<_> = CaptureReader::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(us.len(), 2);
        assert_eq!(us[0].ts, Timestamp { secs: 1_500_000_000, nanos: 123_456_000 });
        assert_eq!((us[1].index, us[1].data), (2, &[0xaa, 0xbb, 1][..]));
        let bytes = pcap_le(true);
        let ns: Vec<_> = CaptureReader::new(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(ns[0].ts.nanos, 123_456);
    }

    #[test]
    fn reads_big_endian_pcap() {
        let mut v = Vec::new();
        v.extend(PCAP_MAGIC_US.to_be_bytes());
        v.extend([0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 101]); // header, RAW
        v.extend([0, 0, 0, 10, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0x45]); // record
        let p: Vec<_> = CaptureReader::new(&v).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!((p[0].linktype, p[0].ts.secs, p[0].ts.nanos, p[0].data), (101, 10, 5000, &[0x45][..]));
    }

    #[test]
    fn locates_a_truncated_record() {
        let mut v = pcap_le(false);
        v.truncate(v.len() - 1);
        let items: Vec<_> = CaptureReader::new(&v).unwrap().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        let e = items[1].unwrap_err();
        assert_eq!((e.packet, e.offset), (2, 24 + 19));
        assert!(matches!(e.kind, CaptureErrorKind::Truncated { needed: 19, available: 18 }));
    }

    #[test]
    fn rejects_what_is_not_a_capture() {
        let e = CaptureReader::new(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::NotACapture { .. }));
        assert!(CaptureReader::new(b"").is_err());
    }

    fn block(be: bool, btype: u32, body: &[u8]) -> Vec<u8> {
        let w = |x: u32| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        let mut v = Vec::new();
        v.extend(w(btype));
        v.extend(w(len));
        v.extend(body);
        v.extend(w(len));
        v
    }

    fn section(be: bool, tsresol: u8, linktype: u16) -> Vec<u8> {
        let w16 = |x: u16| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let w32 = |x: u32| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let mut shb = Vec::new();
        shb.extend(w32(PCAPNG_BOM)); // byte-order magic
        shb.extend(w16(1)); // major
        shb.extend(w16(0)); // minor
        shb.extend([0xff; 8]); // section length unknown
        let mut v = block(be, PCAPNG_SHB, &shb);
        let mut idb = Vec::new();
        idb.extend(w16(linktype)); // link type
        idb.extend([0, 0]); // reserved
        idb.extend(w32(0)); // snaplen
        idb.extend(w16(9)); // if_tsresol
        idb.extend(w16(1));
        idb.extend([tsresol, 0, 0, 0]);
        idb.extend([0, 0, 0, 0]); // opt_endofopt
        v.extend(block(be, 1, &idb));
        let mut epb = Vec::new();
        epb.extend(w32(0)); // interface 0
        epb.extend(w32(0)); // ts high
        epb.extend(w32(1_500_000_123)); // ts low
        epb.extend(w32(2)); // caplen
        epb.extend(w32(2)); // orig len
        epb.extend([0x45, 0x00]); // data
        v.extend(block(be, 6, &epb));
        v
    }

    #[test]
    fn reads_pcapng_sections_of_both_byte_orders_and_resolutions() {
        let mut v = section(false, 6, 1);
        v.extend(section(true, 9, 101));
        let p: Vec<_> = CaptureReader::new(&v).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].linktype, p[0].ts), (1, Timestamp { secs: 1500, nanos: 123_000 }));
        assert_eq!((p[1].linktype, p[1].ts), (101, Timestamp { secs: 1, nanos: 500_000_123 }));
        assert_eq!(p[1].index, 2);
    }

    #[test]
    fn reports_a_pcapng_packet_on_an_unknown_interface() {
        let mut v = section(false, 6, 1);
        let mut epb = vec![0u8; 20];
        epb[0] = 7; // interface 7
        v.extend(block(false, 6, &epb));
        let items: Vec<_> = CaptureReader::new(&v).unwrap().collect();
        let e = items[1].unwrap_err();
        assert!(matches!(e.kind, CaptureErrorKind::UnknownInterface { interface: 7 }));
        assert_eq!(e.packet, 2);
    }

    /// A packet as owned values: index, offset, time, link type, bytes.
    type Owned = (u64, u64, Timestamp, u32, Vec<u8>);

    /// Everything a reader gives, as owned values: packets, then the error if any.
    fn through_blocks(bytes: &[u8], block: usize) -> Vec<Result<Owned, CaptureError>> {
        let mut out = Vec::new();
        let mut r = match FileReader::with_block(Box::new(std::io::Cursor::new(bytes.to_vec())), block) {
            Ok(r) => r,
            Err(OpenError::Capture(e)) => return vec![Err(e)],
            Err(OpenError::Io(e)) => panic!("{e}"),
        };
        while let Some(p) = r.next_packet() {
            out.push(p.map(|p| (p.index, p.offset, p.ts, p.linktype, p.data.to_vec())));
        }
        out
    }

    fn in_memory(bytes: &[u8]) -> Vec<Result<Owned, CaptureError>> {
        match CaptureReader::new(bytes) {
            Ok(r) => r.map(|p| p.map(|p| (p.index, p.offset, p.ts, p.linktype, p.data.to_vec()))).collect(),
            Err(e) => vec![Err(e)],
        }
    }

    #[test]
    fn the_block_reader_gives_what_the_whole_file_gives_at_every_block_size_and_cut() {
        let mut ng = section(false, 6, 1);
        ng.extend(section(true, 9, 101));
        for bytes in [pcap_le(false), pcap_le(true), ng] {
            // Every length of the file (a file cut anywhere) through blocks of every size,
            // from smaller than a record to larger than the file.
            for cut in 0..=bytes.len() {
                let b = &bytes[..cut];
                let want = in_memory(b);
                for block in [64, 65, 67, 96, 128, 4096] {
                    assert_eq!(through_blocks(b, block), want, "cut at {cut}, blocks of {block}");
                }
            }
        }
    }

    #[test]
    fn a_record_larger_than_the_block_is_read_whole() {
        let mut v = pcap_le(false);
        v.truncate(24);
        for i in 0..3u32 {
            let len = 1000 + i * 300;
            v.extend(i.to_le_bytes()); // ts seconds
            v.extend(0u32.to_le_bytes()); // ts microseconds
            v.extend(len.to_le_bytes()); // caplen
            v.extend(len.to_le_bytes()); // orig len
            v.extend((0..len).map(|b| b as u8)); // data
        }
        let got = through_blocks(&v, 64);
        assert_eq!(got, in_memory(&v));
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].as_ref().unwrap().4.len(), 1600);
    }

    #[test]
    fn a_pcapng_block_claiming_gigabytes_is_refused_not_buffered() {
        let mut v = section(false, 6, 1);
        let at = v.len() as u64;
        v.extend(6u32.to_le_bytes()); // EPB
        v.extend(0xffff_fff0u32.to_le_bytes()); // block length: 4 GiB
        v.extend([0u8; 256]);
        // (Blocks smaller than what is left of the file: had the reader seen the end of the
        // file, the record would be reported truncated, as a whole-file read does.)
        let got = through_blocks(&v, 64);
        let e = got.last().unwrap().as_ref().unwrap_err();
        assert_eq!((e.packet, e.offset), (2, at));
        assert_eq!(e.kind, CaptureErrorKind::RecordTooLarge { len: 0xffff_fff0 });
    }
}
