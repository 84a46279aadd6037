//! Classic pcap and pcapng, parsed in place over a byte slice (the file read into memory), one
//! record at a time, with no allocation per packet.
//!
//! Classic pcap: both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d)
//! magics. pcapng: several sections (each with its own byte order), several interfaces with
//! their own link types, `if_tsresol` and `if_tsoffset`; Enhanced, Simple and obsolete Packet
//! Blocks; other blocks skipped. Errors name the packet number and byte offset.

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

/// A reader over a whole capture held in memory.
#[derive(Debug)]
pub struct CaptureReader<'a> {
    data: &'a [u8],
    off: usize,
    next_index: u64,
    format: Format,
    failed: bool,
}

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
    let secs = (v / units) as i64;
    let frac = v % units;
    let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units)) as u32;
    Timestamp { secs: secs.saturating_add(offset), nanos }
}

impl<'a> CaptureReader<'a> {
    /// Recognises the format from the first bytes. An empty file is an error too.
    pub fn new(data: &'a [u8]) -> Result<Self, CaptureError> {
        let err = |kind| CaptureError { packet: 1, offset: 0, kind };
        let magic_le =
            rd32(data, 0, false).ok_or(err(CaptureErrorKind::Truncated { needed: 4, available: data.len() as u64 }))?;
        let magic_be = magic_le.swap_bytes();
        let (format, off) = if magic_le == PCAP_MAGIC_US || magic_le == PCAP_MAGIC_NS {
            (Self::pcap_header(data, false, magic_le == PCAP_MAGIC_NS)?, 24)
        } else if magic_be == PCAP_MAGIC_US || magic_be == PCAP_MAGIC_NS {
            (Self::pcap_header(data, true, magic_be == PCAP_MAGIC_NS)?, 24)
        } else if magic_le == PCAPNG_SHB {
            (Format::PcapNg { be: false, interfaces: Vec::new(), in_section: false }, 0)
        } else {
            return Err(err(CaptureErrorKind::NotACapture { magic: magic_be }));
        };
        Ok(CaptureReader { data, off, next_index: 1, format, failed: false })
    }

    fn pcap_header(data: &[u8], be: bool, nanos: bool) -> Result<Format, CaptureError> {
        let linktype = rd32(data, 20, be).ok_or(CaptureError {
            packet: 1,
            offset: 0,
            kind: CaptureErrorKind::Truncated { needed: 24, available: data.len() as u64 },
        })?;
        // The upper bits carry the FCS length and flags (pcap-savefile(5)).
        Ok(Format::Pcap { be, nanos, linktype: linktype & 0x0fff_ffff })
    }

    /// The kind of file.
    pub fn kind(&self) -> FileKind {
        match self.format {
            Format::Pcap { .. } => FileKind::Pcap,
            Format::PcapNg { .. } => FileKind::PcapNg,
        }
    }

    /// The link type of a classic pcap file, or of the first pcapng interface seen so far.
    pub fn first_linktype(&self) -> Option<u32> {
        match &self.format {
            Format::Pcap { linktype, .. } => Some(*linktype),
            Format::PcapNg { interfaces, .. } => interfaces.first().map(|i| i.linktype),
        }
    }

    /// Byte offset of the next record: how far the reader has got.
    pub fn position(&self) -> u64 {
        self.off as u64
    }

    fn error(&mut self, offset: usize, kind: CaptureErrorKind) -> Option<Result<Packet<'a>, CaptureError>> {
        self.failed = true;
        Some(Err(CaptureError { packet: self.next_index, offset: offset as u64, kind }))
    }

    fn truncated(&mut self, at: usize, needed: usize) -> Option<Result<Packet<'a>, CaptureError>> {
        let available = self.data.len().saturating_sub(at) as u64;
        self.error(at, CaptureErrorKind::Truncated { needed: needed as u64, available })
    }

    fn next_pcap(&mut self, be: bool, nanos: bool, linktype: u32) -> Option<Result<Packet<'a>, CaptureError>> {
        let at = self.off;
        let rest = self.data.len() - at;
        if rest == 0 {
            return None;
        }
        if rest < 16 {
            return self.truncated(at, 16);
        }
        // One bounds check for the whole record header.
        let Some(h) = self.data.get(at..at + 16).and_then(|h| <&[u8; 16]>::try_from(h).ok()) else {
            return self.truncated(at, 16);
        };
        let word = |i: usize| {
            let w = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if be {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let (sec, frac, caplen, orig_len) = (word(0), word(4), word(8), word(12));
        if caplen > MAX_CAPLEN {
            return self.error(at, CaptureErrorKind::CapturedLengthTooLarge { caplen });
        }
        let end = at + 16 + caplen as usize;
        let Some(data) = self.data.get(at + 16..end) else {
            return self.truncated(at, 16 + caplen as usize);
        };
        let nanos_v = if nanos { frac } else { frac.saturating_mul(1000) };
        let ts = Timestamp { secs: i64::from(sec), nanos: nanos_v.min(999_999_999) };
        let index = self.next_index;
        self.next_index += 1;
        self.off = end;
        Some(Ok(Packet { index, offset: at as u64, ts, linktype, orig_len, data }))
    }

    fn next_pcapng(&mut self) -> Option<Result<Packet<'a>, CaptureError>> {
        loop {
            let at = self.off;
            let rest = self.data.len() - at;
            if rest == 0 {
                return None;
            }
            if rest < 12 {
                return self.truncated(at, 12);
            }
            let Format::PcapNg { be, interfaces, in_section } = &mut self.format else { return None };
            let raw_type = rd32(self.data, at, false)?;
            if raw_type == PCAPNG_SHB {
                // The byte-order magic decides how this section, its own length included, reads.
                let bom_le = rd32(self.data, at + 8, false)?;
                *be = if bom_le == PCAPNG_BOM {
                    false
                } else if bom_le.swap_bytes() == PCAPNG_BOM {
                    true
                } else {
                    return self.error(at, CaptureErrorKind::BadByteOrderMagic { magic: bom_le });
                };
                interfaces.clear();
                *in_section = true;
            } else if !*in_section {
                return self.error(at, CaptureErrorKind::NoSectionHeader);
            }
            let be = *be;
            let btype = rd32(self.data, at, be)?;
            let len = rd32(self.data, at + 4, be)?;
            if len < 12 || len % 4 != 0 {
                return self.error(at, CaptureErrorKind::BadBlockLength { len });
            }
            let end = at + len as usize;
            let Some(block) = self.data.get(at..end) else {
                return self.truncated(at, len as usize);
            };
            if rd32(block, len as usize - 4, be) != Some(len) {
                return self.error(at, CaptureErrorKind::BadBlockLength { len });
            }
            let body = block.get(8..len as usize - 4).unwrap_or_default();
            self.off = end;
            let Format::PcapNg { interfaces, .. } = &mut self.format else { return None };
            match btype {
                // Interface Description Block.
                1 => {
                    let (Some(lt), Some(snaplen)) = (rd16(body, 0, be), rd32(body, 4, be)) else {
                        return self.error(at, CaptureErrorKind::BadBlockLength { len });
                    };
                    let mut iface = Interface { linktype: u32::from(lt), snaplen, units: 1_000_000, offset: 0 };
                    let mut o = 8;
                    while let (Some(code), Some(olen)) = (rd16(body, o, be), rd16(body, o + 2, be)) {
                        let v = o + 4;
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
                                if let Some(s) = body.get(v..v + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                                    iface.offset = if be { i64::from_be_bytes(s) } else { i64::from_le_bytes(s) };
                                }
                            }
                            _ => {}
                        }
                        o = v + usize::from(olen).div_ceil(4) * 4;
                    }
                    if interfaces.len() < MAX_INTERFACES {
                        interfaces.push(iface);
                    }
                }
                // Enhanced Packet Block, obsolete Packet Block.
                6 | 2 => {
                    let (if_id, hdr) =
                        if btype == 6 { (rd32(body, 0, be), 20) } else { (rd16(body, 0, be).map(u32::from), 20) };
                    let (Some(if_id), Some(hi), Some(lo), Some(caplen), Some(orig_len)) =
                        (if_id, rd32(body, 4, be), rd32(body, 8, be), rd32(body, 12, be), rd32(body, 16, be))
                    else {
                        return self.error(at, CaptureErrorKind::BadBlockLength { len });
                    };
                    let Some(iface) = interfaces.get(if_id as usize).copied() else {
                        return self.error(at, CaptureErrorKind::UnknownInterface { interface: if_id });
                    };
                    let Some(data) = body.get(hdr..hdr + caplen as usize) else {
                        return self.error(at, CaptureErrorKind::BadBlockLength { len });
                    };
                    let ts = ts_from_units((u64::from(hi) << 32) | u64::from(lo), iface.units, iface.offset);
                    let index = self.next_index;
                    self.next_index += 1;
                    return Some(Ok(Packet { index, offset: at as u64, ts, linktype: iface.linktype, orig_len, data }));
                }
                // Simple Packet Block: interface 0, no timestamp.
                3 => {
                    let Some(iface) = interfaces.first().copied() else {
                        return self.error(at, CaptureErrorKind::UnknownInterface { interface: 0 });
                    };
                    let orig_len = rd32(body, 0, be).unwrap_or(0);
                    let avail = body.len().saturating_sub(4);
                    let mut caplen = (orig_len as usize).min(avail);
                    if iface.snaplen > 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    let data = body.get(4..4 + caplen).unwrap_or_default();
                    let index = self.next_index;
                    self.next_index += 1;
                    return Some(Ok(Packet {
                        index,
                        offset: at as u64,
                        ts: Timestamp::default(),
                        linktype: iface.linktype,
                        orig_len,
                        data,
                    }));
                }
                _ => {}
            }
        }
    }
}

impl<'a> Iterator for CaptureReader<'a> {
    type Item = Result<Packet<'a>, CaptureError>;

    /// The next packet, an error (after which the iterator ends), or the end of the file.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.format {
            Format::Pcap { be, nanos, linktype } => self.next_pcap(be, nanos, linktype),
            Format::PcapNg { .. } => self.next_pcapng(),
        }
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
}
