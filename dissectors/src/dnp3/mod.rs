//! DNP3 (IEEE 1815-2012): data link layer (clause 9), transport function (clause 8) and
//! application layer (clause 4), over TCP and UDP (clause 13's IP networking profile).
//!
//! [`Dnp3Stream`] frames link frames from a reassembled byte stream, checking the header CRC
//! and every data block CRC ([`link`]); reassembles transport segments into application
//! fragments per direction and link address pair ([`MAX_FRAGMENT_LEN`] bytes at most); and
//! decodes the application header, the internal indications and the object headers
//! ([`app`], [`objects`]). Every frame becomes a [`Dnp3Pdu`]: an application fragment once
//! its final segment arrives, or a link-only PDU for frames without user data (reset link,
//! link status...) and for frames that could not be delivered upward (bad data CRC, a
//! segment with no first segment), flagged.
//!
//! Application sequence numbers are followed per master-outstation pair: a solicited
//! response must echo one of the last requests' sequence numbers, further fragments count up,
//! and a confirm echoes the fragment that asked for it; anything else is flagged
//! `unexpected_app_sequence` (replayed, injected or duplicated responses show up this way).
//!
//! Framing errors (no 0x0564, a bad header CRC, a length below 5) are skipped byte by byte to
//! the next 0x0564 and counted as skipped; violations inside a framed frame are [`Flags`].
//!
//! ## Function codes of link-only PDUs
//! [`Dnp3Pdu::func_code`] is the application function (0..=255) for fragments. A link-only
//! PDU has no application function; it reports `256 + 16 * PRM + link function` instead, so the
//! PRM bit and link function are kept and can never collide with an application code:
//! 256 `LINK_ACK`, 257 `LINK_NACK`, 267 `LINK_STATUS`, 271 `LINK_NOT_SUPPORTED`, 272
//! `LINK_RESET_LINK_STATES`, 274 `LINK_TEST_LINK_STATES`, 275 `LINK_CONFIRMED_USER_DATA`,
//! 276 `LINK_UNCONFIRMED_USER_DATA`, 281 `LINK_REQUEST_LINK_STATUS`.

// Reviewed for `clippy::arithmetic_side_effects` (issue 15): transport and application
// sequence numbers are masked (`& 0x3F`, `& 0x0F`) after adding 1 to a value already masked;
// frame lengths come from `link` (saturating) and offsets advance within the buffer by them;
// the rest are u64 counters and a slot clock.
#![allow(clippy::arithmetic_side_effects)]

pub mod app;
pub mod crc;
pub mod link;
pub mod objects;

pub use app::{function_name, iin_names, AppControl};
pub use link::{LinkFunction, LinkHeader};
pub use objects::{AnalogOutput, Crob, Object, ObjectError, ObjectHeader, ObjectHeaders, ObjectSize, Range};

use crate::event::PduBody;
use crate::stream::{DissectorCounters, Parsed, Probe, StreamDissector};
use crate::types::{
    Access, CriticalOp, Direction, Flags, FuncName, FunctionClass, PerDirection, PointRange, PointValue, Protocol,
    Space,
};

/// Largest application fragment reassembled (IEEE 1815-2012 clause 4.2.2.1: 2048 bytes);
/// more is flagged and dropped.
pub const MAX_FRAGMENT_LEN: usize = 2048;
/// Fragments reassembled at once per direction, one per link address pair. A TCP connection
/// normally carries one pair; beyond this the least recently used is dropped (and counted).
pub const MAX_REASSEMBLY_SLOTS: usize = 4;
/// Index-prefixed objects reported one by one as point ranges, per header.
pub const MAX_POINTS_PER_HEADER: usize = 256;
/// Offset added to a link-only PDU's control bits to form its function code.
pub const LINK_FUNC_BASE: u16 = 256;

/// Flag bit: a data block CRC is wrong; the frame was dropped.
pub const FLAG_BAD_DATA_CRC: u32 = 0;
/// Flag bit: a transport segment's sequence number is not the one expected.
pub const FLAG_BAD_TRANSPORT_SEQUENCE: u32 = 1;
/// Flag bit: the reassembled fragment exceeds [`MAX_FRAGMENT_LEN`]; the excess was dropped.
pub const FLAG_FRAGMENT_TOO_LONG: u32 = 2;
/// Flag bit: a first segment arrived while a fragment was incomplete; the old one was lost.
pub const FLAG_INCOMPLETE_FRAGMENT_DISCARDED: u32 = 3;
/// Flag bit: a segment without FIR arrived with no fragment in progress; it was dropped.
pub const FLAG_MISSING_FIRST_SEGMENT: u32 = 4;
/// Flag bit: user data on a link function that carries none, or none on one that does.
pub const FLAG_UNEXPECTED_USER_DATA: u32 = 5;
/// Flag bit: an application function code the standard does not define.
pub const FLAG_UNKNOWN_FUNCTION: u32 = 6;
/// Flag bit: an object whose size is unknown; later headers were not decoded.
pub const FLAG_UNKNOWN_OBJECT: u32 = 7;
/// Flag bit: a reserved qualifier, or one that cannot go with its object.
pub const FLAG_BAD_QUALIFIER: u32 = 8;
/// Flag bit: an object header or its objects run past the fragment's end.
pub const FLAG_TRUNCATED_OBJECT: u32 = 9;
/// Flag bit: a range whose stop is below its start.
pub const FLAG_BAD_RANGE: u32 = 10;
/// Flag bit: more than [`objects::MAX_OBJECT_HEADERS`] object headers.
pub const FLAG_TOO_MANY_OBJECT_HEADERS: u32 = 11;
/// Flag bit: a fragment too short for its application header (and IIN).
pub const FLAG_FRAGMENT_TOO_SHORT: u32 = 12;
/// Flag bit: application control inconsistent with the function (a multi-fragment request,
/// UNS on a solicited message or missing on an unsolicited one).
pub const FLAG_BAD_APP_CONTROL: u32 = 13;
/// Flag bit: a control relay output block with an undefined control code.
pub const FLAG_BAD_CROB: u32 = 14;
/// Flag bit: a link function code the standard does not define.
pub const FLAG_UNKNOWN_LINK_FUNCTION: u32 = 15;
/// Flag bit: the link DIR bit disagrees with the application function (a response sent
/// with DIR=1 or a request with DIR=0).
pub const FLAG_DIRECTION_MISMATCH: u32 = 16;

/// Flag bit: an application sequence number that does not follow its exchange (a response
/// not echoing its request's, a confirm not echoing the response's): a sign of injection or
/// replay as much as of a faulty device.
pub const FLAG_UNEXPECTED_APP_SEQUENCE: u32 = 17;

/// Names of the DNP3 protocol violations, indexed by flag bit.
pub const FLAG_NAMES: &[&str] = &[
    "bad_data_crc",
    "bad_transport_sequence",
    "fragment_too_long",
    "incomplete_fragment_discarded",
    "missing_first_segment",
    "unexpected_user_data",
    "unknown_function",
    "unknown_object",
    "bad_qualifier",
    "truncated_object",
    "bad_range",
    "too_many_object_headers",
    "fragment_too_short",
    "bad_app_control",
    "bad_crob",
    "unknown_link_function",
    "direction_mismatch",
    "unexpected_app_sequence",
];

fn flags_from(bits: u64) -> Flags {
    let mut f = Flags::new(FLAG_NAMES);
    for b in 0..FLAG_NAMES.len() as u32 {
        if bits & (1 << b) != 0 {
            f.set(b);
        }
    }
    f
}

/// The application header of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppHeader {
    /// Application control.
    pub control: AppControl,
    /// Function code.
    pub func: u8,
    /// Internal indications, IIN1 in the high byte (responses only).
    pub iin: Option<u16>,
}

/// A DNP3 message: an application fragment, or a link frame with no application data.
#[derive(Clone, Copy, Debug)]
pub struct Dnp3Pdu<'a> {
    /// True for messages from the master: requests and confirms, or for link-only frames the
    /// DIR bit; false for responses, unsolicited responses and authentication responses.
    pub is_request: bool,
    /// The link header (of the final frame of a fragment).
    pub link: LinkHeader,
    /// Transport header of the final segment (FIN, FIR, sequence), `None` for link-only PDUs.
    pub transport: Option<u8>,
    /// Link frames the fragment was reassembled from (0 for link-only PDUs).
    pub frames: u16,
    /// Application header, `None` for link-only PDUs.
    pub app: Option<AppHeader>,
    /// The application fragment: control, function, IIN and objects (empty for link-only).
    pub raw: &'a [u8],
    /// Violations.
    pub flags: Flags,
}

impl<'a> Dnp3Pdu<'a> {
    /// A link-only PDU.
    pub fn link_only(link: LinkHeader, flags: Flags) -> Dnp3Pdu<'static> {
        Dnp3Pdu { is_request: link.dir(), link, transport: None, frames: 0, app: None, raw: &[], flags }
    }

    /// Decodes an application fragment `frag` that arrived in `frames` link frames, the last
    /// with header `link`; `flags` holds the transport's violations.
    pub fn parse_fragment(link: LinkHeader, transport: u8, frames: u16, frag: &'a [u8], flags: Flags) -> Self {
        let mut pdu =
            Dnp3Pdu { is_request: link.dir(), link, transport: Some(transport), frames, app: None, raw: frag, flags };
        let (Some(&ac), Some(&func)) = (frag.first(), frag.get(1)) else {
            pdu.flags.set(FLAG_FRAGMENT_TOO_SHORT);
            return pdu;
        };
        let control = AppControl(ac);
        let response = app::is_response_function(func);
        let iin = match (response, frag.get(2..4)) {
            (false, _) => None,
            (true, Some(&[a, b])) => Some(u16::from_be_bytes([a, b])),
            (true, _) => {
                pdu.flags.set(FLAG_FRAGMENT_TOO_SHORT);
                None
            }
        };
        pdu.is_request = !response;
        pdu.app = Some(AppHeader { control, func, iin });
        if function_name(func).is_none() {
            pdu.flags.set(FLAG_UNKNOWN_FUNCTION);
        }
        if link.dir() != pdu.is_request {
            pdu.flags.set(FLAG_DIRECTION_MISMATCH);
        }
        let uns_ok = match func {
            app::FUNC_UNSOLICITED_RESPONSE => control.uns(),
            0 => true,
            _ => !control.uns(),
        };
        if !uns_ok || (!response && func != 0 && !(control.fir() && control.fin())) {
            pdu.flags.set(FLAG_BAD_APP_CONTROL);
        }
        let mut headers = pdu.objects();
        for h in headers.by_ref() {
            if h.group == 12 && h.variation == 1 && h.has_objects {
                let bad = h.objects().any(|o| match o {
                    Object::Bytes { index, data } => Crob::parse(index, data).map_or(true, |c| !c.is_valid()),
                    Object::Packed { .. } => true,
                });
                if bad {
                    pdu.flags.set(FLAG_BAD_CROB);
                }
            }
        }
        match headers.error {
            None => {}
            Some(ObjectError::Unknown { .. }) => pdu.flags.set(FLAG_UNKNOWN_OBJECT),
            Some(ObjectError::BadQualifier { .. }) => pdu.flags.set(FLAG_BAD_QUALIFIER),
            Some(ObjectError::Truncated { .. }) => pdu.flags.set(FLAG_TRUNCATED_OBJECT),
            Some(ObjectError::BadRange { .. }) => pdu.flags.set(FLAG_BAD_RANGE),
            Some(ObjectError::TooManyHeaders) => pdu.flags.set(FLAG_TOO_MANY_OBJECT_HEADERS),
        }
        pdu
    }

    /// The object data: the fragment after the function code and IIN.
    pub fn object_data(&self) -> &'a [u8] {
        match self.app {
            Some(AppHeader { iin: Some(_), .. }) => self.raw.get(4..).unwrap_or_default(),
            Some(a) if app::is_response_function(a.func) => &[],
            Some(_) => self.raw.get(2..).unwrap_or_default(),
            None => &[],
        }
    }

    /// The object headers, in order; the iterator's `error` says why it stopped early.
    pub fn objects(&self) -> ObjectHeaders<'a> {
        let with_data = match self.app {
            Some(a) => app::is_response_function(a.func) || app::request_has_data(a.func),
            None => false,
        };
        ObjectHeaders::new(self.object_data(), with_data)
    }

    /// Control relay output blocks (g12v1) carried.
    pub fn crobs(&self) -> impl Iterator<Item = Crob> + 'a {
        self.objects().filter(|h| h.group == 12 && h.variation == 1 && h.has_objects).flat_map(|h| {
            h.objects().filter_map(|o| match o {
                Object::Bytes { index, data } => Crob::parse(index, data),
                Object::Packed { .. } => None,
            })
        })
    }

    /// Analog output blocks (g41) carried.
    pub fn analog_outputs(&self) -> impl Iterator<Item = AnalogOutput> + 'a {
        self.objects().filter(|h| h.group == 41 && h.has_objects).flat_map(|h| {
            let v = h.variation;
            h.objects().filter_map(move |o| match o {
                Object::Bytes { index, data } => AnalogOutput::parse(index, v, data),
                Object::Packed { .. } => None,
            })
        })
    }

    /// File names of file command objects (g70v3: open, delete, get info), as bytes, at the
    /// offset and size the object gives (normally 26, after the fixed fields; IEEE 1815-2012
    /// A.39.3).
    pub fn file_names(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.objects().filter(|h| h.group == 70 && h.variation == 3 && h.has_objects).flat_map(|h| {
            h.objects().filter_map(|o| match o {
                Object::Bytes { data, .. } => {
                    // Name offset and size, from the start of the object (after its size prefix).
                    let off = usize::from(u16::from_le_bytes([*data.first()?, *data.get(1)?]));
                    let len = usize::from(u16::from_le_bytes([*data.get(2)?, *data.get(3)?]));
                    data.get(off..off.checked_add(len)?)
                }
                Object::Packed { .. } => None,
            })
        })
    }

    /// Absolute times carried (g50v1 and g50v3: 48-bit milliseconds since the Unix epoch, UTC),
    /// as written by a time synchronisation or returned by a read of the clock.
    pub fn times_ms(&self) -> impl Iterator<Item = u64> + 'a {
        self.objects().filter(|h| h.group == 50 && matches!(h.variation, 1 | 3) && h.has_objects).flat_map(|h| {
            h.objects().filter_map(|o| match o {
                Object::Bytes { data, .. } => {
                    let b = data.get(..6)?;
                    Some(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
                }
                Object::Packed { .. } => None,
            })
        })
    }

    /// The function code as a number: the application function, or for link-only PDUs
    /// [`LINK_FUNC_BASE`] plus the PRM bit and link function (see the module docs).
    pub fn func_code(&self) -> u16 {
        match self.app {
            Some(a) => u16::from(a.func),
            None => LINK_FUNC_BASE + if self.link.prm() { 16 } else { 0 } + u16::from(self.link.function()),
        }
    }

    /// The function code's name.
    pub fn func_name(&self) -> FuncName {
        match self.app {
            Some(a) => function_name(a.func).map_or(FuncName::Unknown(u16::from(a.func)), FuncName::Known),
            None => self.link.link_function().name().map_or(FuncName::Unknown(self.func_code()), FuncName::Known),
        }
    }

    /// Violations.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Internal indications of a response.
    pub fn iin(&self) -> Option<u16> {
        self.app.and_then(|a| a.iin)
    }

    /// Class of operation.
    pub fn class(&self) -> FunctionClass {
        let Some(a) = self.app else { return FunctionClass::Diagnostic };
        match a.func {
            1 | 129 | 130 => FunctionClass::Read,
            2 => FunctionClass::Write,
            3..=6 => FunctionClass::Control,
            0 | 7..=12 | 20..=24 | 32 | 33 | 131 => FunctionClass::Diagnostic,
            13..=19 | 25..=31 => FunctionClass::Program,
            _ => FunctionClass::Other,
        }
    }

    /// Critical operation requested: restarts, stop application, initialize, disable
    /// unsolicited, file operations. Requests only.
    pub fn critical(&self) -> Option<CriticalOp> {
        let a = self.app?;
        if !self.is_request {
            return None;
        }
        Some(match a.func {
            13 => CriticalOp::ColdRestart,
            14 => CriticalOp::WarmRestart,
            15 | 16 => CriticalOp::Initialize,
            18 => CriticalOp::StopApplication,
            21 => CriticalOp::DisableUnsolicited,
            25..=30 => CriticalOp::FileOperation,
            _ => return None,
        })
    }

    /// Point ranges touched by a request: one per object header with a range (read for
    /// READ, written for WRITE, SELECT, OPERATE and DIRECT_OPERATE(_NR)); an index-prefixed
    /// header gives one range of one point per index (at most [`MAX_POINTS_PER_HEADER`]).
    pub fn for_each_point(&self, f: &mut dyn FnMut(PointRange)) {
        let Some(access) = self.point_access() else { return };
        for h in self.objects() {
            header_points(&h, access, f);
        }
    }

    /// Point values: commanded by CROBs (g12v1: 1 for close/on, 0 for trip/off, else the
    /// control code) and analog output blocks (g41) in requests; binary inputs and outputs,
    /// counters and analogs (g1, g2, g10, g20, g22, g30, g32, g40) in responses.
    pub fn for_each_value(&self, f: &mut dyn FnMut(PointValue)) {
        self.for_each_value_exact(&mut |v, _| f(v));
    }

    /// As [`Dnp3Pdu::for_each_value`], with the exact value of floating-point objects (whose
    /// [`PointValue::value`] is truncated to an integer).
    pub fn for_each_value_exact(&self, f: &mut dyn FnMut(PointValue, Option<objects::Float>)) {
        if self.app.is_none() {
            return;
        }
        for h in self.objects() {
            self.header_values(&h, f);
        }
    }

    /// [`Dnp3Pdu::for_each_point`] and [`Dnp3Pdu::for_each_value`] in one walk of the object
    /// headers, which is most of what either costs.
    pub fn for_each_point_and_value(&self, points: &mut dyn FnMut(PointRange), values: &mut dyn FnMut(PointValue)) {
        if self.app.is_none() {
            return;
        }
        let access = self.point_access();
        for h in self.objects() {
            if let Some(access) = access {
                header_points(&h, access, points);
            }
            self.header_values(&h, &mut |v, _| values(v));
        }
    }

    /// How a request touches the points it names; `None` for messages that name none.
    fn point_access(&self) -> Option<Access> {
        match (self.is_request, self.app?.func) {
            (true, 1) => Some(Access::Read),
            (true, 2..=6) => Some(Access::Write),
            _ => None,
        }
    }

    /// The values of one object header (see [`Dnp3Pdu::for_each_value`]).
    fn header_values(&self, h: &ObjectHeader<'_>, f: &mut dyn FnMut(PointValue, Option<objects::Float>)) {
        if !h.has_objects {
            return;
        }
        let space = Space::Dnp3 { group: h.group, variation: h.variation };
        if self.is_request {
            for o in h.objects() {
                let Object::Bytes { index, data } = o else { continue };
                let (value, exact) = match (h.group, h.variation) {
                    (12, 1) => (Crob::parse(index, data).map(|c| c.value()), None),
                    (41, v) => {
                        let a = AnalogOutput::parse(index, v, data);
                        let exact = a.and_then(|a| match v {
                            3 => Some(objects::Float::Single(a.value as f32)),
                            4 => Some(objects::Float::Double(a.value)),
                            _ => None,
                        });
                        (a.map(|a| a.value as i64), exact)
                    }
                    _ => (None, None),
                };
                if let Some(value) = value {
                    f(PointValue { space, index, value, access: Access::Write }, exact);
                }
            }
        } else {
            for o in h.objects() {
                let index = match o {
                    Object::Bytes { index, .. } | Object::Packed { index, .. } => index,
                };
                if let Some(value) = objects::measurement_value(h.group, h.variation, &o) {
                    let exact = objects::measurement_float(h.group, h.variation, &o);
                    f(PointValue { space, index, value, access: Access::Read }, exact);
                }
            }
        }
    }

    /// The IIN2 error bits of a response ([`app::IIN_ERROR_MASK`]), when any is set.
    pub fn error_code(&self) -> Option<u16> {
        if self.is_request {
            return None;
        }
        let e = self.iin()? & app::IIN_ERROR_MASK;
        (e != 0).then_some(e)
    }
}

/// The point ranges one object header of a request names (see [`Dnp3Pdu::for_each_point`]).
fn header_points(h: &ObjectHeader<'_>, access: Access, f: &mut dyn FnMut(PointRange)) {
    let space = Space::Dnp3 { group: h.group, variation: h.variation };
    let indexed = matches!(h.prefix_code(), 1..=3);
    match h.range {
        Range::StartStop { start, stop } => {
            let count = stop.saturating_sub(start).saturating_add(1);
            f(PointRange { space, start, count, access });
        }
        Range::All => f(PointRange { space, start: 0, count: 0, access }),
        Range::Count(n) if !indexed => f(PointRange { space, start: 0, count: n, access }),
        Range::Count(_) => {
            for o in h.objects().take(MAX_POINTS_PER_HEADER) {
                let (Object::Bytes { index, .. } | Object::Packed { index, .. }) = o;
                f(PointRange { space, start: index, count: 1, access });
            }
        }
    }
}

/// Content identification: whether `data` starts with a DNP3 link header (0x05 0x64, a
/// length of at least 5 and a valid header CRC).
pub fn probe(data: &[u8]) -> Probe {
    match LinkHeader::parse(data) {
        Ok(_) => Probe::Yes,
        Err(link::LinkError::Incomplete { .. }) => Probe::NeedMore,
        Err(_) => Probe::No,
    }
}

/// Counters a DNP3 connection keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dnp3Counters {
    /// Link headers rejected for their CRC (their bytes were skipped).
    pub header_crc_errors: u64,
    /// Frames dropped for a data block CRC.
    pub data_crc_errors: u64,
    /// Fragments in progress dropped because [`MAX_REASSEMBLY_SLOTS`] were in use.
    pub reassembly_evicted: u64,
    /// Fragments in progress dropped by a gap in the stream.
    pub fragments_lost_to_gaps: u64,
}

impl Dnp3Counters {
    /// Adds `o` to these.
    pub fn add(&mut self, o: &Dnp3Counters) {
        self.header_crc_errors += o.header_crc_errors;
        self.data_crc_errors += o.data_crc_errors;
        self.reassembly_evicted += o.reassembly_evicted;
        self.fragments_lost_to_gaps += o.fragments_lost_to_gaps;
    }
}

/// Master-outstation pairs whose application sequence numbers are followed, per connection.
pub const MAX_SEQUENCE_PAIRS: usize = 8;

/// Application sequence state of one master-outstation pair (IEEE 1815-2012 4.2.2.4.4): a
/// solicited response's first fragment repeats its request's sequence number, each further
/// fragment adds one (modulo 16), and the master's confirm repeats the fragment it confirms.
#[derive(Clone, Copy, Debug)]
struct SeqPair {
    master: u16,
    outstation: u16,
    /// Sequences of the last requests still unanswered (a late response to a request the
    /// master gave up on is no violation), most recent last.
    requests: [Option<u8>; 4],
    /// Sequence the next fragment of a multi-fragment response must carry.
    next_fragment: Option<u8>,
    /// Whether a request of this pair has been seen (before one, nothing is expected).
    seen_request: bool,
    /// Sequence of the last solicited fragment that asked for a confirm.
    confirm: Option<u8>,
}

/// The application sequence state of a connection.
#[derive(Debug, Default)]
struct AppSequences {
    pairs: Vec<SeqPair>,
}

impl AppSequences {
    fn pair(&mut self, master: u16, outstation: u16) -> Option<&mut SeqPair> {
        let i = match self.pairs.iter().position(|p| p.master == master && p.outstation == outstation) {
            Some(i) => i,
            None => {
                if self.pairs.len() >= MAX_SEQUENCE_PAIRS {
                    self.pairs.remove(0);
                }
                self.pairs.push(SeqPair {
                    master,
                    outstation,
                    requests: [None; 4],
                    next_fragment: None,
                    seen_request: false,
                    confirm: None,
                });
                self.pairs.len() - 1
            }
        };
        self.pairs.get_mut(i)
    }

    /// Flags `pdu` when its sequence number is not the one its exchange calls for. Only
    /// solicited traffic is followed; nothing is expected before a request has been seen.
    fn check(&mut self, pdu: &mut Dnp3Pdu<'_>) {
        let Some(a) = pdu.app else { return };
        let (c, seq) = (a.control, a.control.seq());
        if c.uns() || a.func == app::FUNC_UNSOLICITED_RESPONSE || a.func == app::FUNC_AUTHENTICATE_RESP {
            return;
        }
        let (master, outstation) =
            if pdu.is_request { (pdu.link.src, pdu.link.dst) } else { (pdu.link.dst, pdu.link.src) };
        let Some(p) = self.pair(master, outstation) else { return };
        let ok = match (pdu.is_request, a.func) {
            (true, 0) => {
                let ok = p.confirm.map_or(true, |s| s == seq);
                p.confirm = None;
                ok
            }
            (true, _) => {
                // The oldest falls out and the last is overwritten: a shift, not the general
                // rotation (a call of ~100 instructions per request).
                p.requests.copy_within(1.., 0);
                if let Some(last) = p.requests.last_mut() {
                    *last = Some(seq);
                }
                p.next_fragment = None;
                p.seen_request = true;
                p.confirm = None;
                true
            }
            (false, _) => {
                let ok = if c.fir() {
                    match p.requests.iter_mut().find(|r| **r == Some(seq)) {
                        Some(r) => {
                            *r = None;
                            true
                        }
                        None => !p.seen_request,
                    }
                } else {
                    p.next_fragment.map_or(true, |s| s == seq)
                };
                p.next_fragment = if c.fin() { None } else { Some((seq + 1) & 0x0F) };
                p.confirm = c.con().then_some(seq);
                ok
            }
        };
        if !ok {
            pdu.flags.set(FLAG_UNEXPECTED_APP_SEQUENCE);
        }
    }
}

/// One fragment being reassembled.
#[derive(Debug, Default)]
struct Reassembly {
    src: u16,
    dst: u16,
    active: bool,
    buf: Vec<u8>,
    next_seq: u8,
    frames: u16,
    flag_bits: u64,
    last_use: u64,
}

/// One direction's state: its fragments in progress and a scratch buffer for user data.
#[derive(Debug, Default)]
struct Half {
    slots: Vec<Reassembly>,
    user: Vec<u8>,
}

/// Per-connection DNP3 state: transport reassembly per direction and link address pair.
#[derive(Debug, Default)]
pub struct Dnp3Stream {
    half: PerDirection<Half>,
    tick: u64,
    app_seq: AppSequences,
    /// Counters.
    pub counters: Dnp3Counters,
}

/// Offset of the next possible frame start after the first byte of `rest`: a 0x05 followed
/// by 0x64, or a 0x05 at the very end; `rest.len()` when there is none.
fn next_start(rest: &[u8]) -> usize {
    (1..rest.len())
        .find(|&i| rest.get(i) == Some(&0x05) && matches!(rest.get(i + 1), None | Some(&0x64)))
        .unwrap_or(rest.len())
}

impl Dnp3Stream {
    /// A new connection's state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one whole frame with a valid header.
    fn frame(&mut self, h: LinkHeader, frame: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) {
        self.tick += 1;
        let tick = self.tick;
        let Half { slots, user } = &mut self.half[dir];
        let lf = h.link_function();
        let mut flags = Flags::new(FLAG_NAMES);
        if lf.name().is_none() {
            flags.set(FLAG_UNKNOWN_LINK_FUNCTION);
        }
        if h.user_len() == 0 {
            if lf.carries_data() {
                flags.set(FLAG_UNEXPECTED_USER_DATA);
            }
            emit(&mut PduBody::Dnp3(Dnp3Pdu::link_only(h, flags)));
            return;
        }
        if !link::user_data(&h, frame, user) {
            self.counters.data_crc_errors += 1;
            flags.set(FLAG_BAD_DATA_CRC);
            emit(&mut PduBody::Dnp3(Dnp3Pdu::link_only(h, flags)));
            return;
        }
        if !lf.carries_data() {
            // User data under a link function that carries none (or an unknown one): flagged,
            // and decoded all the same, so that a payload hidden behind a bad link header is
            // still seen. The application PDU carries the flags that mark it.
            flags.set(FLAG_UNEXPECTED_USER_DATA);
        }
        let Some((&th, payload)) = user.split_first() else { return };
        let (fin, fir, seq) = (th & 0x80 != 0, th & 0x40 != 0, th & 0x3F);
        let slot = slots.iter().position(|s| s.active && s.src == h.src && s.dst == h.dst);
        if fir {
            if let Some(s) = slot.and_then(|i| slots.get_mut(i)) {
                s.active = false;
                flags.set(FLAG_INCOMPLETE_FRAGMENT_DISCARDED);
            }
            if fin {
                // A single-segment fragment: decoded straight from the scratch buffer.
                let mut pdu = Dnp3Pdu::parse_fragment(h, th, 1, payload, flags);
                self.app_seq.check(&mut pdu);
                emit(&mut PduBody::Dnp3(pdu));
                return;
            }
            let i = match slots.iter().position(|s| !s.active) {
                Some(i) => i,
                None if slots.len() < MAX_REASSEMBLY_SLOTS => {
                    slots.push(Reassembly::default());
                    slots.len() - 1
                }
                None => {
                    self.counters.reassembly_evicted += 1;
                    slots.iter().enumerate().min_by_key(|(_, s)| s.last_use).map_or(0, |(i, _)| i)
                }
            };
            let Some(s) = slots.get_mut(i) else { return };
            s.src = h.src;
            s.dst = h.dst;
            s.active = true;
            s.buf.clear();
            s.buf.extend_from_slice(payload.get(..MAX_FRAGMENT_LEN).unwrap_or(payload));
            s.next_seq = (seq + 1) & 0x3F;
            s.frames = 1;
            s.flag_bits = flags.bits();
            s.last_use = tick;
            return;
        }
        let Some(s) = slot.and_then(|i| slots.get_mut(i)) else {
            flags.set(FLAG_MISSING_FIRST_SEGMENT);
            emit(&mut PduBody::Dnp3(Dnp3Pdu::link_only(h, flags)));
            return;
        };
        if seq != s.next_seq {
            s.flag_bits |= 1 << FLAG_BAD_TRANSPORT_SEQUENCE;
        }
        s.next_seq = (seq + 1) & 0x3F;
        s.frames = s.frames.saturating_add(1);
        s.last_use = tick;
        let room = MAX_FRAGMENT_LEN.saturating_sub(s.buf.len());
        if payload.len() > room {
            s.flag_bits |= 1 << FLAG_FRAGMENT_TOO_LONG;
        }
        s.buf.extend_from_slice(payload.get(..room).unwrap_or(payload));
        if fin {
            s.active = false;
            let flags = flags_from(s.flag_bits | flags.bits());
            let mut pdu = Dnp3Pdu::parse_fragment(h, th, s.frames, &s.buf, flags);
            self.app_seq.check(&mut pdu);
            emit(&mut PduBody::Dnp3(pdu));
        }
    }
}

impl StreamDissector for Dnp3Stream {
    fn protocol(&self) -> Protocol {
        Protocol::Dnp3
    }

    fn parse(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) -> Parsed {
        let mut off = 0usize;
        let mut skipped = 0usize;
        // Every pass consumes at least one byte or stops, so data.len() + 1 passes suffice.
        for _ in 0..=data.len() {
            let rest = data.get(off..).unwrap_or_default();
            match LinkHeader::parse(rest) {
                Ok(h) => {
                    let Some(frame) = rest.get(..h.frame_len()) else { break };
                    self.frame(h, frame, dir, emit);
                    off += frame.len();
                }
                Err(link::LinkError::Incomplete { .. }) => break,
                Err(e) => {
                    if e == link::LinkError::HeaderCrc {
                        self.counters.header_crc_errors += 1;
                    }
                    let skip = next_start(rest);
                    off += skip;
                    skipped += skip;
                }
            }
        }
        Parsed { consumed: off, skipped }
    }

    fn take_counters(&mut self, into: &mut DissectorCounters) {
        into.dnp3.add(&std::mem::take(&mut self.counters));
    }

    fn gap(&mut self, dir: Direction) {
        for s in self.half[dir].slots.iter_mut().filter(|s| s.active) {
            s.active = false;
            self.counters.fragments_lost_to_gaps += 1;
        }
    }

    /// A datagram holds whole frames; a fragment may span datagrams, so reassembly state is
    /// kept, but a partial frame at the end of a datagram is dropped.
    fn parse_datagram(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) -> Parsed {
        let p = self.parse(data, dir, emit);
        let rest = data.len().saturating_sub(p.consumed);
        Parsed { consumed: data.len(), skipped: p.skipped + rest }
    }
}

#[cfg(test)]
mod tests;
