//! DNP3 object headers and objects (IEEE 1815-2012 clause 4.2.2.7 and annex A).
//!
//! An object header is group, variation and qualifier; the qualifier's range specifier
//! (low nibble) says whether a start/stop range, a count or nothing follows, and its prefix
//! code (bits 4-6) whether each object is preceded by an index or a size. To find the header
//! after the first the size of each object must be known: [`object_size`] gives it for the
//! groups in common use, and an unknown one stops the walk with [`ObjectError::Unknown`].

/// Most object headers walked in one fragment: 2048 bytes of 3-byte headers is 682, and a
/// real fragment holds a few dozen.
pub const MAX_OBJECT_HEADERS: usize = 700;
/// Most objects walked per header: a 2048-byte fragment holds at most 16,384 packed bits.
pub const MAX_OBJECTS_PER_HEADER: usize = 2048 * 8;

/// The range part of an object header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// Range codes 0, 1, 2 (and the obsolete virtual 3, 4, 5): first and last index.
    StartStop {
        /// First index.
        start: u32,
        /// Last index, inclusive.
        stop: u32,
    },
    /// Range codes 7, 8, 9 and 0xB: a count of objects.
    Count(u32),
    /// Range code 6: all objects, no range field.
    All,
}

impl Range {
    /// Number of objects the range names (0 for [`Range::All`]).
    pub fn count(self) -> u64 {
        match self {
            // A range whose stop is below its start (flagged `bad_range`) names no object.
            Range::StartStop { start, stop } if stop < start => 0,
            Range::StartStop { start, stop } => u64::from(stop).saturating_sub(u64::from(start)).saturating_add(1),
            Range::Count(n) => u64::from(n),
            Range::All => 0,
        }
    }
}

/// How big one object of a group and variation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectSize {
    /// Fixed size in bytes (0 for class objects and other headers without data).
    Bytes(usize),
    /// Packed, this many bits per object (binary inputs and outputs 1, double-bit 2).
    Bits(usize),
    /// Device attributes (group 0): data type, length, then that many bytes.
    Attribute,
    /// Free format: every object is preceded by its size (qualifier prefix 4, 5, 6).
    Free,
}

/// The size of one object of `group`/`variation`, from IEEE 1815-2012 annex A; `None` when
/// this dissector does not know it.
pub fn object_size(group: u8, variation: u8) -> Option<ObjectSize> {
    use ObjectSize::{Bits, Bytes};
    let b = |n: usize| Some(Bytes(n));
    match (group, variation) {
        (0, _) => Some(ObjectSize::Attribute),
        (1, 1) | (10, 1) | (12, 3) | (80, 1) => Some(Bits(1)),
        (3, 1) => Some(Bits(2)),
        (1, 2) | (3, 2) | (10, 2) | (11, 1) | (13, 1) | (2, 1) | (4, 1) | (102, 1) => b(1),
        (2, 2) | (4, 2) | (11, 2) | (13, 2) => b(7),
        (2, 3) | (4, 3) => b(3),
        (12, 1) | (12, 2) => b(11),
        (20, 1) | (20, 3) => b(5),
        (20, 2) | (20, 4) => b(3),
        (20, 5) | (20, 7) => b(4),
        (20, 6) | (20, 8) => b(2),
        (21, 1) | (21, 3) => b(5),
        (21, 2) | (21, 4) => b(3),
        (21, 5) | (21, 7) => b(11),
        (21, 6) | (21, 8) => b(9),
        (21, 9) | (21, 11) => b(4),
        (21, 10) | (21, 12) => b(2),
        (22 | 23, 1 | 3) => b(5),
        (22 | 23, 2 | 4) => b(3),
        (22 | 23, 5 | 7) => b(11),
        (22 | 23, 6 | 8) => b(9),
        (30, 1) | (30, 5) => b(5),
        (30, 2) => b(3),
        (30, 3) => b(4),
        (30, 4) => b(2),
        (30, 6) => b(9),
        (31, 1) | (31, 7) => b(5),
        (31, 2) => b(3),
        (31, 3) => b(11),
        (31, 4) => b(9),
        (31, 5) => b(4),
        (31, 6) => b(2),
        (31, 8) => b(9),
        (32 | 33, 1 | 5) => b(5),
        (32 | 33, 2) => b(3),
        (32 | 33, 3 | 7) => b(11),
        (32 | 33, 4) => b(9),
        (32 | 33, 6) => b(9),
        (32 | 33, 8) => b(15),
        (34, 1) => b(2),
        (34, 2 | 3) => b(4),
        (40 | 41, 1 | 3) => b(5),
        (40 | 41, 2) => b(3),
        (40 | 41, 4) => b(9),
        (42, 1 | 3) => b(5),
        (42, 2) => b(3),
        (42, 4 | 6) => b(9),
        (42, 5 | 7) => b(11),
        (42, 8) => b(15),
        (43, 1 | 5) => b(6),
        (43, 2) => b(4),
        (43, 3 | 7) => b(12),
        (43, 4 | 6) => b(10),
        (43, 8) => b(16),
        (50, 1 | 3) => b(6),
        (50, 2) => b(10),
        (50, 4) => b(11),
        (51, 1 | 2) => b(6),
        (52, 1 | 2) => b(2),
        (60, 1..=4) => b(0),
        (70, 2..=7) => Some(ObjectSize::Free),
        (70, 1) => Some(ObjectSize::Free),
        (101, 1) => b(2),
        (101, 2) => b(4),
        (101, 3) => b(8),
        // Octet strings and virtual terminal objects: the variation is the length; variation 0
        // ("any") only names them in reads and has no size.
        (110..=113, 0) => None,
        (110..=113, v) => b(usize::from(v)),
        // SAv5 aggressive mode request (challenge sequence number and user) and session key
        // status request (user) are fixed; the other authentication objects are free format.
        (120, 3) => b(6),
        (120, 4) => b(2),
        (120, _) => Some(ObjectSize::Free),
        (121, 1) | (122, 1) => b(7),
        (122, 2) => b(13),
        _ => None,
    }
}

/// Why the object headers of a fragment could not all be walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// The size of this group and variation is unknown, so later headers cannot be found.
    Unknown {
        /// Group.
        group: u8,
        /// Variation.
        variation: u8,
        /// Offset of the header in the object data.
        offset: usize,
    },
    /// A qualifier with a reserved range or prefix code, or one that cannot go with the
    /// object (a packed object with an index prefix).
    BadQualifier {
        /// The qualifier.
        qualifier: u8,
        /// Offset of the header.
        offset: usize,
    },
    /// The header or its objects run past the end of the fragment.
    Truncated {
        /// Offset of the header.
        offset: usize,
    },
    /// A start/stop range whose stop is below its start.
    BadRange {
        /// Offset of the header.
        offset: usize,
    },
    /// More than [`MAX_OBJECT_HEADERS`] headers.
    TooManyHeaders,
}

/// One object header and the bytes of its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectHeader<'a> {
    /// Object group.
    pub group: u8,
    /// Variation.
    pub variation: u8,
    /// Qualifier: prefix code in bits 4-6, range specifier in bits 0-3.
    pub qualifier: u8,
    /// The range or count.
    pub range: Range,
    /// The objects with their prefixes; when `has_objects` is false, only the index list
    /// of a prefixed count (a read by index), or nothing.
    pub data: &'a [u8],
    /// Whether objects follow the header (false in reads, freezes and class headers).
    pub has_objects: bool,
    /// Offset of the header in the object data.
    pub offset: usize,
}

impl<'a> ObjectHeader<'a> {
    /// Prefix code (bits 4-6 of the qualifier).
    pub fn prefix_code(&self) -> u8 {
        (self.qualifier >> 4) & 0x07
    }
    /// Range specifier code (bits 0-3 of the qualifier).
    pub fn range_code(&self) -> u8 {
        self.qualifier & 0x0F
    }
    /// The objects one by one, with their index (from the prefix or the range) and bytes.
    /// Packed objects (binary inputs) are yielded as one byte per object holding the bit(s).
    pub fn objects(&self) -> Objects<'a> {
        Objects { h: *self, rest: self.data, i: 0 }
    }
}

/// Iterator over the objects of one header: `(index, bytes)`.
#[derive(Clone, Debug)]
pub struct Objects<'a> {
    h: ObjectHeader<'a>,
    rest: &'a [u8],
    i: u64,
}

/// One object: its index and bytes ([`Object::Packed`] for bit-packed objects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object<'a> {
    /// An object of whole bytes.
    Bytes {
        /// Point index (prefix, or range start plus position).
        index: u32,
        /// The object's bytes, prefix excluded.
        data: &'a [u8],
    },
    /// A packed object: its value in the low bits.
    Packed {
        /// Point index.
        index: u32,
        /// The value (0 or 1 for binaries, 0..=3 for double-bit).
        value: u8,
    },
}

fn le(b: &[u8]) -> u32 {
    b.iter().rev().fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
}

impl<'a> Iterator for Objects<'a> {
    type Item = Object<'a>;
    fn next(&mut self) -> Option<Object<'a>> {
        let h = self.h;
        let n = h.range.count();
        if self.i >= n || self.i >= MAX_OBJECTS_PER_HEADER as u64 || h.data.is_empty() {
            return None;
        }
        let base = match h.range {
            Range::StartStop { start, .. } => start,
            _ => 0,
        };
        let pos = self.i;
        self.i = self.i.saturating_add(1);
        let seq_index = base.wrapping_add(pos as u32);
        let (index_len, size_len) = prefix_lens(h.prefix_code())?;
        if !h.has_objects {
            // An index list without objects.
            let (ix, rest) = self.rest.split_at_checked(index_len)?;
            self.rest = rest;
            return (index_len > 0).then(|| Object::Bytes { index: le(ix), data: &[] });
        }
        let size = object_size(h.group, h.variation)?;
        if let ObjectSize::Bits(bits) = size {
            let bit = (pos as usize).checked_mul(bits)?;
            let byte = h.data.get(bit / 8)?;
            // A mask of the low `bits` bits (1 or 2, from the object table).
            let mask = u8::MAX.checked_shr(8u32.saturating_sub(bits as u32)).unwrap_or(0);
            let value = (byte >> (bit % 8)) & mask;
            return Some(Object::Packed { index: seq_index, value });
        }
        let (ix, rest) = self.rest.split_at_checked(index_len)?;
        let index = if index_len > 0 { le(ix) } else { seq_index };
        let (len, rest) = if size_len > 0 {
            let (sz, rest) = rest.split_at_checked(size_len)?;
            (le(sz) as usize, rest)
        } else {
            match size {
                ObjectSize::Bytes(k) => (k, rest),
                ObjectSize::Attribute => (2 + usize::from(*rest.get(1)?), rest),
                ObjectSize::Free | ObjectSize::Bits(_) => return None,
            }
        };
        let (data, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(Object::Bytes { index, data })
    }
}

/// Bytes of the index prefix and of the size prefix for a prefix code; `None` for the
/// reserved code 7.
fn prefix_lens(code: u8) -> Option<(usize, usize)> {
    Some(match code {
        0 => (0, 0),
        1 => (1, 0),
        2 => (2, 0),
        3 => (4, 0),
        4 => (0, 1),
        5 => (0, 2),
        6 => (0, 4),
        _ => return None,
    })
}

/// Walks the object headers of a fragment's object data.
#[derive(Clone, Debug)]
pub struct ObjectHeaders<'a> {
    data: &'a [u8],
    off: usize,
    with_data: bool,
    count: usize,
    /// Why the walk stopped early, once it has.
    pub error: Option<ObjectError>,
}

impl<'a> ObjectHeaders<'a> {
    /// Walks `data` (the fragment after the function code and IIN); `with_data` says whether
    /// objects follow their headers (see [`super::app::request_has_data`]).
    pub fn new(data: &'a [u8], with_data: bool) -> Self {
        ObjectHeaders { data, off: 0, with_data, count: 0, error: None }
    }

    fn fail(&mut self, e: ObjectError) -> Option<ObjectHeader<'a>> {
        self.error = Some(e);
        self.off = self.data.len();
        None
    }
}

impl<'a> Iterator for ObjectHeaders<'a> {
    type Item = ObjectHeader<'a>;
    fn next(&mut self) -> Option<ObjectHeader<'a>> {
        let offset = self.off;
        let rest = self.data.get(offset..).unwrap_or_default();
        if rest.is_empty() || self.error.is_some() {
            return None;
        }
        if self.count >= MAX_OBJECT_HEADERS {
            return self.fail(ObjectError::TooManyHeaders);
        }
        self.count = self.count.saturating_add(1);
        let Some(&[group, variation, qualifier]) = rest.get(..3) else {
            return self.fail(ObjectError::Truncated { offset });
        };
        let bad_q = ObjectError::BadQualifier { qualifier, offset };
        // A bad qualifier leaves group and variation known: report them, then stop.
        let bad_header =
            ObjectHeader { group, variation, qualifier, range: Range::All, data: &[], has_objects: false, offset };
        let range_len: usize = match qualifier & 0x0F {
            0 | 3 | 7 | 0xB => 1,
            1 | 4 | 8 => 2,
            2 | 5 | 9 => 4,
            6 => 0,
            _ => {
                self.fail(bad_q);
                return Some(bad_header);
            }
        };
        let Some((index_len, size_len)) = prefix_lens((qualifier >> 4) & 0x07) else {
            self.fail(bad_q);
            return Some(bad_header);
        };
        let rc = qualifier & 0x0F;
        // Range code 0xB is only used with a size prefix, and sizes only go with counts.
        if (rc == 0xB && size_len == 0) || (size_len > 0 && !matches!(rc, 7..=9 | 0xB)) {
            self.fail(bad_q);
            return Some(bad_header);
        }
        // Start/stop ranges hold two fields, counts one.
        let fields: usize = if matches!(rc, 0..=5) { 2 } else { 1 };
        // Two fields of at most 4 bytes: the header is at most 11 bytes.
        let hdr_len = range_len.saturating_mul(fields).saturating_add(3);
        let Some(rf) = rest.get(3..hdr_len) else {
            return self.fail(ObjectError::Truncated { offset });
        };
        let range = match rc {
            0..=5 => {
                let (a, b) = rf.split_at(range_len);
                let (start, stop) = (le(a), le(b));
                if stop < start {
                    // Report the header as it is, then stop: its objects cannot be counted.
                    self.fail(ObjectError::BadRange { offset });
                    let range = Range::StartStop { start, stop };
                    return Some(ObjectHeader {
                        group,
                        variation,
                        qualifier,
                        range,
                        data: &[],
                        has_objects: false,
                        offset,
                    });
                }
                Range::StartStop { start, stop }
            }
            6 => Range::All,
            _ => Range::Count(le(rf.get(..range_len).unwrap_or_default())),
        };
        let body = rest.get(hdr_len..).unwrap_or_default();
        let n = range.count();
        let size = object_size(group, variation);
        let has_objects = size_len > 0 || (self.with_data && group != 60);
        let len = if matches!(range, Range::All) {
            Some(0)
        } else if !has_objects {
            // Headers alone; an index list still follows a prefixed count (read by index).
            usize::try_from(n).ok().and_then(|n| n.checked_mul(index_len))
        } else if size_len > 0 || matches!(size, Some(ObjectSize::Attribute) | Some(ObjectSize::Free)) {
            if size_len == 0 && matches!(size, Some(ObjectSize::Free)) {
                return self.fail(bad_q);
            }
            // Walk object by object: each carries its own size. `None` when they run short.
            let mut p = Some(0usize);
            for _ in 0..n.min(MAX_OBJECTS_PER_HEADER as u64) {
                let Some(after_index) = p.and_then(|p| p.checked_add(index_len)) else { break };
                let len = if size_len > 0 {
                    // The object's size field is packet data (up to 4 GiB): added without overflow.
                    body.get(after_index..)
                        .and_then(|b| b.get(..size_len))
                        .map(|s| size_len.saturating_add(usize::try_from(le(s)).unwrap_or(usize::MAX)))
                } else {
                    body.get(after_index.saturating_add(1)).map(|&l| usize::from(l).saturating_add(2))
                };
                p = len.and_then(|l| after_index.checked_add(l));
            }
            if n > MAX_OBJECTS_PER_HEADER as u64 {
                p = None;
            }
            p
        } else {
            match size {
                Some(ObjectSize::Bytes(k)) => {
                    usize::try_from(n).ok().and_then(|n| n.checked_mul(index_len.saturating_add(k)))
                }
                Some(ObjectSize::Bits(bits)) => {
                    if index_len > 0 {
                        return self.fail(bad_q);
                    }
                    usize::try_from(n).ok().and_then(|n| n.checked_mul(bits)).map(|b| b.div_ceil(8))
                }
                _ => {
                    // The header itself is known; only what follows it is not.
                    self.fail(ObjectError::Unknown { group, variation, offset });
                    return Some(ObjectHeader { group, variation, qualifier, range, data: &[], has_objects, offset });
                }
            }
        };
        let Some(data) = len.and_then(|l| body.get(..l)) else {
            // A whole header whose objects run short: report it with what is there, then stop.
            self.fail(ObjectError::Truncated { offset });
            return Some(ObjectHeader { group, variation, qualifier, range, data: body, has_objects, offset });
        };
        self.off = offset.saturating_add(hdr_len).saturating_add(data.len());
        Some(ObjectHeader { group, variation, qualifier, range, data, has_objects, offset })
    }
}

/// A control relay output block (group 12 variation 1, IEEE 1815-2012 A.8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crob {
    /// Point index.
    pub index: u32,
    /// Control code: operation type (bits 0-3), queue (4), clear (5), trip-close code (6-7).
    pub code: u8,
    /// Number of times to execute.
    pub count: u8,
    /// On time, milliseconds.
    pub on_ms: u32,
    /// Off time, milliseconds.
    pub off_ms: u32,
    /// Status (0 in requests; the outcome in responses).
    pub status: u8,
}

impl Crob {
    /// Decodes an 11-byte CROB.
    pub fn parse(index: u32, d: &[u8]) -> Option<Crob> {
        let &[code, count, a0, a1, a2, a3, b0, b1, b2, b3, status] = d.get(..11)? else { return None };
        Some(Crob {
            index,
            code,
            count,
            on_ms: u32::from_le_bytes([a0, a1, a2, a3]),
            off_ms: u32::from_le_bytes([b0, b1, b2, b3]),
            status,
        })
    }
    /// Operation type (bits 0-3): 0 nul, 1 pulse on, 2 pulse off, 3 latch on, 4 latch off.
    pub fn op_type(&self) -> u8 {
        self.code & 0x0F
    }
    /// Trip-close code (bits 6-7): 0 nul, 1 close, 2 trip.
    pub fn trip_close(&self) -> u8 {
        self.code >> 6
    }
    /// Name of the operation: `LATCH_ON`, `PULSE_ON`, `CLOSE_PULSE_ON`, `TRIP_PULSE_ON`, ...
    pub fn op_name(&self) -> &'static str {
        match (self.trip_close(), self.op_type()) {
            (0, 0) => "NUL",
            (0, 1) => "PULSE_ON",
            (0, 2) => "PULSE_OFF",
            (0, 3) => "LATCH_ON",
            (0, 4) => "LATCH_OFF",
            (1, 1) => "CLOSE_PULSE_ON",
            (2, 1) => "TRIP_PULSE_ON",
            (1, _) => "CLOSE",
            (2, _) => "TRIP",
            _ => "UNDEFINED",
        }
    }
    /// The value commanded: 1 for on and close, 0 for off and trip, otherwise the raw code.
    pub fn value(&self) -> i64 {
        match (self.trip_close(), self.op_type()) {
            (1, _) | (0, 1) | (0, 3) => 1,
            (2, _) | (0, 2) | (0, 4) => 0,
            _ => i64::from(self.code),
        }
    }
    /// Whether the control code is one the standard defines.
    pub fn is_valid(&self) -> bool {
        self.op_type() <= 4 && self.trip_close() <= 2
    }
}

/// Status code names of controls (IEEE 1815-2012 table A-16).
pub fn control_status_name(status: u8) -> &'static str {
    match status & 0x7F {
        0 => "SUCCESS",
        1 => "TIMEOUT",
        2 => "NO_SELECT",
        3 => "FORMAT_ERROR",
        4 => "NOT_SUPPORTED",
        5 => "ALREADY_ACTIVE",
        6 => "HARDWARE_ERROR",
        7 => "LOCAL",
        8 => "TOO_MANY_OBJS",
        9 => "NOT_AUTHORIZED",
        10 => "AUTOMATION_INHIBIT",
        11 => "PROCESSING_LIMITED",
        12 => "OUT_OF_RANGE",
        126 => "NON_PARTICIPATING",
        _ => "UNDEFINED",
    }
}

/// An analog output block (group 41, A.23): the value and the status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnalogOutput {
    /// Point index.
    pub index: u32,
    /// Variation (1 int32, 2 int16, 3 float32, 4 float64).
    pub variation: u8,
    /// The value commanded.
    pub value: f64,
    /// Status.
    pub status: u8,
}

impl AnalogOutput {
    /// Decodes a g41 object of `variation`.
    pub fn parse(index: u32, variation: u8, d: &[u8]) -> Option<AnalogOutput> {
        let (value, status) = match variation {
            1 => (f64::from(i32::from_le_bytes(d.get(..4)?.try_into().ok()?)), *d.get(4)?),
            2 => (f64::from(i16::from_le_bytes(d.get(..2)?.try_into().ok()?)), *d.get(2)?),
            3 => (f64::from(f32::from_le_bytes(d.get(..4)?.try_into().ok()?)), *d.get(4)?),
            4 => (f64::from_le_bytes(d.get(..8)?.try_into().ok()?), *d.get(8)?),
            _ => return None,
        };
        Some(AnalogOutput { index, variation, value, status })
    }
}

fn i32_at(d: &[u8], at: usize) -> Option<i64> {
    Some(i64::from(i32::from_le_bytes(d.get(at..)?.get(..4)?.try_into().ok()?)))
}
fn i16_at(d: &[u8], at: usize) -> Option<i64> {
    Some(i64::from(i16::from_le_bytes(d.get(at..)?.get(..2)?.try_into().ok()?)))
}
fn u32_at(d: &[u8], at: usize) -> Option<i64> {
    Some(i64::from(u32::from_le_bytes(d.get(at..)?.get(..4)?.try_into().ok()?)))
}
fn u16_at(d: &[u8], at: usize) -> Option<i64> {
    Some(i64::from(u16::from_le_bytes(d.get(at..)?.get(..2)?.try_into().ok()?)))
}
fn f32_at(d: &[u8], at: usize) -> Option<i64> {
    Some(f32::from_le_bytes(d.get(at..)?.get(..4)?.try_into().ok()?) as i64)
}
fn f64_at(d: &[u8], at: usize) -> Option<i64> {
    Some(f64::from_le_bytes(d.get(at..)?.get(..8)?.try_into().ok()?) as i64)
}

/// A floating-point point value as the wire carries it, so that it prints exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Float {
    /// IEEE 754 single precision (g30v5, g32v5, g32v7, g40v3, g41v3).
    Single(f32),
    /// IEEE 754 double precision (g30v6, g32v6, g32v8, g40v4, g41v4).
    Double(f64),
}

/// The exact value of a floating-point measurement object (analog inputs g30/g32 and
/// analog output status g40); `None` for integer and other objects.
pub fn measurement_float(group: u8, variation: u8, o: &Object<'_>) -> Option<Float> {
    let Object::Bytes { data: d, .. } = *o else { return None };
    let single = |at: usize| Some(Float::Single(f32::from_le_bytes(d.get(at..)?.get(..4)?.try_into().ok()?)));
    let double = |at: usize| Some(Float::Double(f64::from_le_bytes(d.get(at..)?.get(..8)?.try_into().ok()?)));
    match (group, variation) {
        (30 | 32 | 40, 5) | (32, 7) | (40, 3) => single(1),
        (30 | 32, 6) | (32, 8) | (40, 4) => double(1),
        _ => None,
    }
}

/// The value of a measurement object, as an integer (floats truncated, binaries 0/1):
/// binary inputs and outputs (g1, g2, g10), counters (g20, g22), analog inputs (g30, g32) and
/// analog output status (g40). `None` for other objects.
pub fn measurement_value(group: u8, variation: u8, o: &Object<'_>) -> Option<i64> {
    let d = match *o {
        Object::Packed { value, .. } => {
            return matches!((group, variation), (1, 1) | (10, 1)).then_some(i64::from(value))
        }
        Object::Bytes { data, .. } => data,
    };
    match (group, variation) {
        // Flags octet with the state in bit 7.
        (1, 2) | (2, 1..=3) | (10, 2) | (11, 1 | 2) => d.first().map(|f| i64::from(f >> 7)),
        (20, 5) => u32_at(d, 0),
        (20, 6) => u16_at(d, 0),
        (20 | 22, 1 | 5) => u32_at(d, 1),
        (20 | 22, 2 | 6) => u16_at(d, 1),
        (30 | 32 | 40, 1) | (32, 3) => i32_at(d, 1),
        (30 | 32 | 40, 2) | (32, 4) => i16_at(d, 1),
        (30, 3) => i32_at(d, 0),
        (30, 4) => i16_at(d, 0),
        (30 | 32 | 40, 5) | (32, 7) => f32_at(d, 1),
        (30 | 32, 6) | (32, 8) | (40, 4) => f64_at(d, 1),
        (40, 3) => f32_at(d, 1),
        _ => None,
    }
}
