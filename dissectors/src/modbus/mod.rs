//! Modbus/TCP (Modbus Messaging on TCP/IP Implementation Guide V1.0b, section 3.1.3, and
//! Modbus Application Protocol Specification V1.1b3).
//!
//! An ADU is the 7-byte MBAP header (transaction id, protocol id, length, unit id) followed by
//! the PDU (function code and data). [`ModbusStream`] frames ADUs from a reassembled TCP stream,
//! decodes every public function code, and matches responses to their requests by
//! transaction id and unit so that a response carries its request's address and quantity.
//!
//! Framing errors (a length that cannot be right) make the stream resynchronise on the next
//! plausible MBAP header; protocol violations inside a well-framed ADU are [`Flags`] on the
//! PDU, which is still delivered.

// Reviewed for `clippy::arithmetic_side_effects` (issue 15): the MBAP length is checked
// against `MAX_FRAMED_MBAP_LENGTH` and the buffer before it is used; offsets then advance by
// lengths already found inside the buffer, bit counts are `len * 8` of a buffer's length, and
// the rest are u64 counters.
#![allow(clippy::arithmetic_side_effects)]

mod function;

pub use function::{device_id_object_name, diagnostic_subfunction_name, exception_code_name, FunctionCode};

use crate::bytes::be16;
use crate::event::PduBody;
use crate::stream::{DissectorCounters, Parsed, Probe, StreamDissector};
use crate::types::{
    Access, CriticalOp, Direction, Flags, FunctionClass, PerDirection, PointRange, PointValue, Protocol, Space,
};

/// Length of the MBAP header, unit id included.
pub const MBAP_LEN: usize = 7;
/// Largest MBAP length field the specification allows: unit id plus a 253-byte PDU (section
/// 4.1). Longer ADUs are flagged `bad_length`.
pub const MAX_MBAP_LENGTH: u16 = 254;
/// Largest MBAP length framed at all. Schneider's UMAS (FC 90) sends 255 in the field, and
/// tshark decodes such ADUs, so a few bytes over the limit are accepted (and flagged).
pub const MAX_FRAMED_MBAP_LENGTH: u16 = 260;
/// Requests remembered per connection while waiting for their responses. A master rarely
/// has more than a handful in flight; beyond this the oldest is forgotten (and counted).
pub const MAX_PENDING_TRANSACTIONS: usize = 64;

/// Flag bit: the MBAP protocol identifier is not 0.
pub const FLAG_PROTOCOL_ID: u32 = 0;
/// Flag bit: the PDU is shorter or longer than its function requires.
pub const FLAG_LENGTH: u32 = 1;
/// Flag bit: a byte count disagrees with the data that follows it or with the quantity.
pub const FLAG_BYTE_COUNT: u32 = 2;
/// Flag bit: a quantity is 0 or above the function's maximum.
pub const FLAG_QUANTITY: u32 = 3;
/// Flag bit: Write Single Coil with a value other than 0xFF00 or 0x0000.
pub const FLAG_COIL_VALUE: u32 = 4;
/// Flag bit: a response whose transaction id and unit match no request seen.
pub const FLAG_UNMATCHED: u32 = 5;
/// Flag bit: a response whose function differs from its request's.
pub const FLAG_FUNCTION_MISMATCH: u32 = 6;
/// Flag bit: an exception code outside the specification's list.
pub const FLAG_EXCEPTION_CODE: u32 = 7;
/// Flag bit: an Encapsulated Interface Transport with a MEI type other than 13 or 14.
pub const FLAG_MEI_TYPE: u32 = 8;
/// Flag bit: an exception response travelling to the server.
pub const FLAG_EXCEPTION_REQUEST: u32 = 9;
/// Flag bit: a function code with no public meaning (`func_name` `unknown-<n>`): 0 or any
/// other code neither the specification (section 5.1) nor the field defines, the ranges
/// reserved for users (65-72, 100-110) excepted. tshark shows these as "Unknown function";
/// a fuzzer's first probe is usually one.
pub const FLAG_UNKNOWN_FUNCTION: u32 = 10;
/// Flag bit: a Read Device Identification response that lists an object id more than once
/// (a device, or someone in the middle, can hide a value from a log that keeps one key).
pub const FLAG_DUPLICATE_DEVICE_ID_OBJECT: u32 = 11;

/// Names of the Modbus protocol violations, indexed by flag bit.
pub const FLAG_NAMES: &[&str] = &[
    "bad_protocol_id",
    "bad_length",
    "byte_count_mismatch",
    "bad_quantity",
    "bad_coil_value",
    "response_without_request",
    "function_mismatch",
    "bad_exception_code",
    "bad_mei_type",
    "exception_in_request",
    "unknown_function",
    "duplicate_device_id_object",
];

/// Values carried by a PDU: written by a request, or read in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values<'a> {
    /// No values.
    None,
    /// 16-bit registers, big-endian on the wire.
    Registers(&'a [u8]),
    /// Packed bits, least significant bit first, `count` of them.
    Bits {
        /// Packed bytes.
        bytes: &'a [u8],
        /// Number of meaningful bits.
        count: u16,
    },
    /// One or two values held inline (single coil or register, mask pair, status words).
    Inline {
        /// The values.
        vals: [u16; 2],
        /// How many of `vals` are meaningful (1 or 2).
        len: u8,
    },
}

impl<'a> Values<'a> {
    fn one(v: u16) -> Self {
        Values::Inline { vals: [v, 0], len: 1 }
    }
    fn two(a: u16, b: u16) -> Self {
        Values::Inline { vals: [a, b], len: 2 }
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        match *self {
            Values::None => 0,
            Values::Registers(b) => b.len() / 2,
            Values::Bits { bytes, count } => usize::from(count).min(bytes.len() * 8),
            Values::Inline { len, .. } => usize::from(len),
        }
    }
    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values as numbers, in order (bits as 0 or 1).
    pub fn iter(&self) -> ValuesIter<'a> {
        ValuesIter { values: *self, i: 0 }
    }
}

/// Iterator over [`Values`].
#[derive(Clone, Debug)]
pub struct ValuesIter<'a> {
    values: Values<'a>,
    i: usize,
}

impl Iterator for ValuesIter<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        let i = self.i;
        if i >= self.values.len() {
            return None;
        }
        self.i += 1;
        match self.values {
            Values::None => None,
            Values::Registers(b) => be16(b, i * 2),
            Values::Bits { bytes, .. } => bytes.get(i / 8).map(|b| u16::from((b >> (i % 8)) & 1)),
            Values::Inline { vals, .. } => vals.get(i).copied(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.values.len().saturating_sub(self.i);
        (n, Some(n))
    }
}

/// A decoded Modbus/TCP ADU.
#[derive(Clone, Copy, Debug)]
pub struct ModbusPdu<'a> {
    /// True for messages to the server.
    pub is_request: bool,
    /// MBAP transaction identifier.
    pub tid: u16,
    /// MBAP protocol identifier (0 for Modbus).
    pub protocol_id: u16,
    /// MBAP length: unit id plus PDU.
    pub length: u16,
    /// MBAP unit identifier.
    pub unit: u8,
    /// Function code, exception bit removed.
    pub func: FunctionCode,
    /// Exception code of an exception response (function | 0x80).
    pub exception_code: Option<u8>,
    /// Starting address (read address for FC 23); a response carries its request's.
    pub address: Option<u16>,
    /// Number of coils or registers (read quantity for FC 23); a response carries its
    /// request's.
    pub quantity: Option<u16>,
    /// Write starting address of Read/Write Multiple Registers (FC 23).
    pub write_address: Option<u16>,
    /// Write quantity of Read/Write Multiple Registers (FC 23).
    pub write_quantity: Option<u16>,
    /// Diagnostics sub-function (FC 8) or MEI type (FC 43).
    pub sub_function: Option<u16>,
    /// Values written (requests) or read (responses).
    pub values: Values<'a>,
    /// The PDU after the function code (and, for exceptions, after the exception code).
    pub data: &'a [u8],
    /// For a response: whether its request was seen.
    pub matched: bool,
    /// Protocol violations.
    pub flags: Flags,
}

impl<'a> ModbusPdu<'a> {
    /// Read Device Identification objects of a FC 43 / MEI 14 response.
    pub fn device_identification(&self) -> Option<DeviceIdObjects<'a>> {
        if self.is_request
            || self.exception_code.is_some()
            || self.func != FunctionCode::ENCAP_INTERFACE_TRANSPORT
            || self.sub_function != Some(14)
        {
            return None;
        }
        // data: MEI type, read device id code, conformity level, more follows, next object
        // id, number of objects, then the objects.
        let count = *self.data.get(5)?;
        Some(DeviceIdObjects { rest: self.data.get(6..)?, left: count })
    }

    /// The class of operation (FC 8 restart and listen-only count as programming).
    pub fn class(&self) -> FunctionClass {
        if self.critical().is_some() {
            return FunctionClass::Program;
        }
        self.func.class()
    }

    /// The critical operation a request asks for: restart communications (FC 8/1), force
    /// listen-only mode (FC 8/4), firmware replacement (FC 125).
    pub fn critical(&self) -> Option<CriticalOp> {
        if !self.is_request {
            return None;
        }
        match (self.func.raw(), self.sub_function) {
            (8, Some(1)) => Some(CriticalOp::ColdRestart),
            (8, Some(4)) => Some(CriticalOp::ListenOnly),
            (125, _) => Some(CriticalOp::Firmware),
            _ => None,
        }
    }

    fn space(&self) -> Option<Space> {
        Some(match self.func.raw() {
            1 | 5 | 15 => Space::ModbusCoils,
            2 => Space::ModbusDiscreteInputs,
            3 | 6 | 16 | 22 | 23 => Space::ModbusHoldingRegisters,
            4 => Space::ModbusInputRegisters,
            24 => Space::ModbusFifo,
            _ => return None,
        })
    }

    /// Calls `f` for the ranges read and written (FC 23 does both).
    pub fn for_each_point(&self, f: &mut dyn FnMut(PointRange)) {
        let Some(space) = self.space() else { return };
        let Some(start) = self.address else { return };
        let single = matches!(self.func.raw(), 5 | 6 | 22 | 24);
        let count = if single { 1 } else { self.quantity.unwrap_or(0) };
        let access = if self.func.is_write() && self.func.raw() != 23 { Access::Write } else { Access::Read };
        f(PointRange { space, start: u32::from(start), count: u32::from(count), access });
        if let (Some(ws), Some(wq)) = (self.write_address, self.write_quantity) {
            f(PointRange { space, start: u32::from(ws), count: u32::from(wq), access: Access::Write });
        }
    }

    /// Calls `f` for each value written (requests) or read (responses), with its address.
    pub fn for_each_value(&self, mut f: impl FnMut(PointValue)) {
        let Some(space) = self.space() else { return };
        if self.exception_code.is_some() || self.func.raw() == 22 {
            return;
        }
        let (base, access) = match (self.func.raw(), self.is_request) {
            (23, true) => (self.write_address, Access::Write),
            (23, false) => (self.address, Access::Read),
            (_, true) => (self.address, Access::Write),
            (_, false) if self.func.is_write() => return,
            (_, false) => (self.address, Access::Read),
        };
        let Some(base) = base else { return };
        let mut index = u32::from(base);
        let mut emit = |v: u16| {
            f(PointValue { space, index, value: i64::from(v), access });
            index = index.saturating_add(1);
        };
        match self.values {
            // Registers are the bulk of the values a plant exchanges: a straight loop.
            Values::Registers(b) => b.chunks_exact(2).for_each(|r| {
                if let [hi, lo] = *r {
                    emit(u16::from_be_bytes([hi, lo]));
                }
            }),
            values => values.iter().for_each(emit),
        }
    }

    /// Whether this is an exception response.
    pub fn is_exception(&self) -> bool {
        self.exception_code.is_some()
    }
}

/// Iterator over Read Device Identification objects: `(object id, value bytes)`.
#[derive(Clone, Debug)]
pub struct DeviceIdObjects<'a> {
    rest: &'a [u8],
    left: u8,
}

impl<'a> Iterator for DeviceIdObjects<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (&id, rest) = self.rest.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let (value, rest) = rest.split_at_checked(usize::from(len))?;
        self.rest = rest;
        Some((id, value))
    }
}

/// The MBAP header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mbap {
    tid: u16,
    protocol_id: u16,
    length: u16,
    unit: u8,
    func: u8,
}

fn mbap(b: &[u8]) -> Option<Mbap> {
    match b.get(..8) {
        Some(&[t0, t1, p0, p1, l0, l1, unit, func]) => Some(Mbap {
            tid: u16::from_be_bytes([t0, t1]),
            protocol_id: u16::from_be_bytes([p0, p1]),
            length: u16::from_be_bytes([l0, l1]),
            unit,
            func,
        }),
        _ => None,
    }
}

/// Whether `h` could be a real MBAP header: protocol 0, a length that fits, and an exception
/// response of exactly 3 bytes. With `known`, the function must also be one the
/// specification or the field defines.
fn plausible(h: &Mbap, known: bool) -> bool {
    let func = FunctionCode(h.func & 0x7F);
    h.protocol_id == 0
        && (2..=MAX_FRAMED_MBAP_LENGTH).contains(&h.length)
        && (h.length <= MAX_MBAP_LENGTH || func == FunctionCode::UMAS)
        && (!known || (func.0 != 0 && func.is_known()))
        && (h.func & 0x80 == 0 || h.length == 3)
}

/// Whether `data` starts with an ADU that is plausible and is followed either by the end of
/// the data, by a partial ADU, or by another plausible header.
///
/// An unknown function code (0 included: a fuzzer's favourite) is accepted only on stronger
/// evidence, because it is what random bytes look like: the ADU must end exactly where the
/// data ends (one ADU per segment, as every Modbus client sends) or be followed by a
/// plausible header with a known function. Two zero bytes of protocol id and a length that
/// lands exactly on the segment's end leave random data about one chance in 2^24.
fn plausible_at(data: &[u8]) -> Probe {
    let Some(h) = mbap(data) else { return Probe::NeedMore };
    if !plausible(&h, false) {
        return Probe::No;
    }
    // Decided only where it matters: not for one whole ADU, the common first segment.
    let known = || plausible(&h, true);
    let end = 6 + usize::from(h.length);
    match data.get(end..) {
        Some([]) => Probe::Yes,
        None if known() => Probe::Yes,
        None => Probe::No,
        Some(next) => match mbap(next) {
            None if known() => Probe::Yes,
            None => Probe::No,
            Some(n) if plausible(&n, true) || (known() && plausible(&n, false)) => Probe::Yes,
            Some(_) => Probe::No,
        },
    }
}

/// Content identification: whether `data` (the first payload of a direction) starts with a
/// Modbus/TCP ADU. Strict, because traffic on 502 that is not Modbus must not be misparsed.
pub fn probe(data: &[u8]) -> Probe {
    plausible_at(data)
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    tid: u16,
    unit: u8,
    func: FunctionCode,
    address: Option<u16>,
    quantity: Option<u16>,
    write_address: Option<u16>,
    write_quantity: Option<u16>,
    sub_function: Option<u16>,
}

/// The requests awaiting their responses, oldest first: the oldest inline, the others on the
/// heap, so that a connection polled one request at a time, and each flow of a mid-stream
/// flood, allocates nothing for them. (`first` is empty only when `rest` is.)
#[derive(Debug, Default)]
struct PendingQueue {
    first: Option<Pending>,
    rest: Vec<Pending>,
}

impl PendingQueue {
    fn len(&self) -> usize {
        self.rest.len().saturating_add(usize::from(self.first.is_some()))
    }

    fn push(&mut self, p: Pending) {
        match self.first {
            None => self.first = Some(p),
            Some(_) => self.rest.push(p),
        }
    }

    /// Removes the oldest request.
    fn pop_front(&mut self) -> Option<Pending> {
        let front = self.first.take();
        if !self.rest.is_empty() {
            self.first = Some(self.rest.remove(0));
        }
        front
    }

    /// Removes the oldest request of transaction `tid` to `unit`.
    fn take(&mut self, tid: u16, unit: u8) -> Option<Pending> {
        let is = |q: &Pending| q.tid == tid && q.unit == unit;
        if self.first.as_ref().is_some_and(is) {
            return self.pop_front();
        }
        let i = self.rest.iter().position(is)?;
        Some(self.rest.remove(i))
    }
}

/// Counters a Modbus connection keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModbusCounters {
    /// Requests forgotten because [`MAX_PENDING_TRANSACTIONS`] were waiting.
    pub pending_evicted: u64,
}

impl ModbusCounters {
    /// Adds `o` to these.
    pub fn add(&mut self, o: &ModbusCounters) {
        self.pending_evicted += o.pending_evicted;
    }
}

/// Per-connection Modbus/TCP state: framing per direction and the requests awaiting
/// responses.
#[derive(Debug, Default)]
pub struct ModbusStream {
    resync: PerDirection<bool>,
    pending: PendingQueue,
    seen_request: bool,
    /// Counters.
    pub counters: ModbusCounters,
}

impl ModbusStream {
    /// A new connection's state.
    pub fn new() -> Self {
        Self::default()
    }

    fn remember(&mut self, p: Pending) {
        // A retransmitted or reused transaction id replaces the older request.
        if self.pending.take(p.tid, p.unit).is_none() && self.pending.len() >= MAX_PENDING_TRANSACTIONS {
            self.pending.pop_front();
            self.counters.pending_evicted += 1;
        }
        self.pending.push(p);
    }

    fn take(&mut self, tid: u16, unit: u8) -> Option<Pending> {
        self.pending.take(tid, unit)
    }

    /// Decodes one framed ADU (`adu.len() == 6 + length`).
    fn decode<'a>(&mut self, h: Mbap, adu: &'a [u8], dir: Direction) -> ModbusPdu<'a> {
        let data = adu.get(8..).unwrap_or_default();
        let is_request = dir == Direction::ToServer;
        let mut pdu = ModbusPdu {
            is_request,
            tid: h.tid,
            protocol_id: h.protocol_id,
            length: h.length,
            unit: h.unit,
            func: FunctionCode(h.func & 0x7F),
            exception_code: None,
            address: None,
            quantity: None,
            write_address: None,
            write_quantity: None,
            sub_function: None,
            values: Values::None,
            data,
            matched: false,
            flags: Flags::new(FLAG_NAMES),
        };
        if h.protocol_id != 0 {
            pdu.flags.set(FLAG_PROTOCOL_ID);
        }
        if h.length > MAX_MBAP_LENGTH {
            pdu.flags.set(FLAG_LENGTH);
        }
        if pdu.func.known_name().is_none() && !pdu.func.is_user_defined() {
            pdu.flags.set(FLAG_UNKNOWN_FUNCTION);
        }
        if h.func & 0x80 != 0 {
            match data.split_first() {
                Some((&code, rest)) => {
                    pdu.exception_code = Some(code);
                    pdu.data = rest;
                    if exception_code_name(code) == "UNKNOWN" {
                        pdu.flags.set(FLAG_EXCEPTION_CODE);
                    }
                    if !rest.is_empty() {
                        pdu.flags.set(FLAG_LENGTH);
                    }
                }
                None => pdu.flags.set(FLAG_LENGTH),
            }
            if is_request {
                pdu.flags.set(FLAG_EXCEPTION_REQUEST);
            }
        } else if is_request {
            decode_request(&mut pdu, data);
        }

        if is_request {
            self.seen_request = true;
            self.remember(Pending {
                tid: pdu.tid,
                unit: pdu.unit,
                func: pdu.func,
                address: pdu.address,
                quantity: pdu.quantity,
                write_address: pdu.write_address,
                write_quantity: pdu.write_quantity,
                sub_function: pdu.sub_function,
            });
            return pdu;
        }
        let req = self.take(pdu.tid, pdu.unit);
        match &req {
            Some(req) => {
                pdu.matched = true;
                if req.func == pdu.func {
                    pdu.address = req.address;
                    pdu.quantity = req.quantity;
                    pdu.write_address = req.write_address;
                    pdu.write_quantity = req.write_quantity;
                    pdu.sub_function = req.sub_function;
                } else {
                    pdu.flags.set(FLAG_FUNCTION_MISMATCH);
                }
            }
            // Before any request was seen the capture probably began between a request and
            // its response, which is no violation.
            None if self.seen_request => pdu.flags.set(FLAG_UNMATCHED),
            None => {}
        }
        if pdu.exception_code.is_none() {
            let req = req.filter(|r| r.func == pdu.func);
            decode_response(&mut pdu, data, req.as_ref());
        }
        pdu
    }
}

fn bits_bytes(qty: u16) -> usize {
    usize::from(qty).div_ceil(8)
}

fn decode_request<'a>(pdu: &mut ModbusPdu<'a>, d: &'a [u8]) {
    let f = pdu.func.raw();
    let expect_len = |pdu: &mut ModbusPdu<'a>, n: usize| {
        if d.len() != n {
            pdu.flags.set(FLAG_LENGTH);
        }
    };
    match f {
        1..=4 => {
            expect_len(pdu, 4);
            pdu.address = be16(d, 0);
            pdu.quantity = be16(d, 2);
            let max = if f <= 2 { 2000 } else { 125 };
            if let Some(q) = pdu.quantity {
                if q == 0 || q > max {
                    pdu.flags.set(FLAG_QUANTITY);
                }
            }
        }
        5 => {
            expect_len(pdu, 4);
            pdu.address = be16(d, 0);
            if let Some(v) = be16(d, 2) {
                pdu.values = Values::one(u16::from(v == 0xFF00));
                if v != 0xFF00 && v != 0 {
                    pdu.flags.set(FLAG_COIL_VALUE);
                }
            }
        }
        6 => {
            expect_len(pdu, 4);
            pdu.address = be16(d, 0);
            if let Some(v) = be16(d, 2) {
                pdu.values = Values::one(v);
            }
        }
        7 | 11 | 12 | 17 => expect_len(pdu, 0),
        8 => {
            pdu.sub_function = be16(d, 0);
            if d.len() < 2 {
                pdu.flags.set(FLAG_LENGTH);
            }
            pdu.values = Values::Registers(d.get(2..).unwrap_or_default());
        }
        15 | 16 => {
            pdu.address = be16(d, 0);
            pdu.quantity = be16(d, 2);
            let bc = d.get(4).copied().map(usize::from);
            let payload = d.get(5..).unwrap_or_default();
            match (pdu.quantity, bc) {
                (Some(q), Some(bc)) => {
                    let (max, want) = if f == 15 { (1968, bits_bytes(q)) } else { (123, usize::from(q) * 2) };
                    if q == 0 || q > max {
                        pdu.flags.set(FLAG_QUANTITY);
                    }
                    if bc != want || bc != payload.len() {
                        pdu.flags.set(FLAG_BYTE_COUNT);
                    }
                    let body = payload.get(..bc.min(payload.len())).unwrap_or_default();
                    pdu.values = if f == 15 { Values::Bits { bytes: body, count: q } } else { Values::Registers(body) };
                }
                _ => pdu.flags.set(FLAG_LENGTH),
            }
        }
        20 | 21 => {
            // Byte count, then sub-requests of reference type (6), file, record, length.
            match d.split_first() {
                Some((&bc, rest)) if usize::from(bc) == rest.len() => {}
                _ => pdu.flags.set(FLAG_BYTE_COUNT),
            }
        }
        22 => {
            expect_len(pdu, 6);
            pdu.address = be16(d, 0);
            if let (Some(and), Some(or)) = (be16(d, 2), be16(d, 4)) {
                pdu.values = Values::two(and, or);
            }
        }
        23 => {
            pdu.address = be16(d, 0);
            pdu.quantity = be16(d, 2);
            pdu.write_address = be16(d, 4);
            pdu.write_quantity = be16(d, 6);
            let bc = d.get(8).copied().map(usize::from);
            let payload = d.get(9..).unwrap_or_default();
            match (pdu.quantity, pdu.write_quantity, bc) {
                (Some(rq), Some(wq), Some(bc)) => {
                    if rq == 0 || rq > 125 || wq == 0 || wq > 121 {
                        pdu.flags.set(FLAG_QUANTITY);
                    }
                    if bc != usize::from(wq) * 2 || bc != payload.len() {
                        pdu.flags.set(FLAG_BYTE_COUNT);
                    }
                    pdu.values = Values::Registers(payload.get(..bc.min(payload.len())).unwrap_or_default());
                }
                _ => pdu.flags.set(FLAG_LENGTH),
            }
        }
        24 => {
            expect_len(pdu, 2);
            pdu.address = be16(d, 0);
        }
        43 => decode_mei(pdu, d, true),
        _ => {}
    }
}

fn decode_mei<'a>(pdu: &mut ModbusPdu<'a>, d: &'a [u8], request: bool) {
    let mei = d.first().copied();
    pdu.sub_function = mei.map(u16::from);
    match mei {
        Some(14) => {
            let want = if request { 3 } else { 6 };
            if d.len() < want || (request && d.len() != want) {
                pdu.flags.set(FLAG_LENGTH);
            }
            if !request {
                // Walk the objects to check the announced count fits.
                let n = d.get(5).copied().unwrap_or(0);
                let mut rest = d.get(6..).unwrap_or_default();
                // Object ids seen, one bit each (ids are one byte).
                let mut seen = [0u64; 4];
                for _ in 0..n {
                    let Some(&[id, len]) = rest.get(..2) else {
                        pdu.flags.set(FLAG_LENGTH);
                        return;
                    };
                    if let Some(word) = seen.get_mut(usize::from(id >> 6)) {
                        if *word & 1 << (id & 63) != 0 {
                            pdu.flags.set(FLAG_DUPLICATE_DEVICE_ID_OBJECT);
                        }
                        *word |= 1 << (id & 63);
                    }
                    match rest.get(2 + usize::from(len)..) {
                        Some(r) => rest = r,
                        None => {
                            pdu.flags.set(FLAG_LENGTH);
                            return;
                        }
                    }
                }
                if !rest.is_empty() {
                    pdu.flags.set(FLAG_LENGTH);
                }
            }
        }
        Some(13) => {}
        Some(_) => pdu.flags.set(FLAG_MEI_TYPE),
        None => pdu.flags.set(FLAG_LENGTH),
    }
}

/// Decodes a normal response's data; `req` is its request when known, for quantity checks.
fn decode_response<'a>(pdu: &mut ModbusPdu<'a>, d: &'a [u8], req: Option<&Pending>) {
    let f = pdu.func.raw();
    let qty = req.and_then(|r| r.quantity);
    let byte_counted = |pdu: &mut ModbusPdu<'a>| -> &'a [u8] {
        match d.split_first() {
            Some((&bc, rest)) => {
                if usize::from(bc) != rest.len() {
                    pdu.flags.set(FLAG_BYTE_COUNT);
                }
                rest.get(..usize::from(bc).min(rest.len())).unwrap_or_default()
            }
            None => {
                pdu.flags.set(FLAG_LENGTH);
                &[]
            }
        }
    };
    match f {
        1 | 2 => {
            let body = byte_counted(pdu);
            if let Some(q) = qty {
                if body.len() != bits_bytes(q) {
                    pdu.flags.set(FLAG_BYTE_COUNT);
                }
            }
            let count = qty.unwrap_or((body.len() * 8).min(usize::from(u16::MAX)) as u16);
            pdu.values = Values::Bits { bytes: body, count };
        }
        3 | 4 | 23 => {
            let body = byte_counted(pdu);
            let want = qty.map(|q| usize::from(q) * 2);
            if body.len() % 2 != 0 || want.is_some_and(|w| w != body.len()) {
                pdu.flags.set(FLAG_BYTE_COUNT);
            }
            pdu.values = Values::Registers(body);
        }
        5 | 6 => {
            if d.len() != 4 {
                pdu.flags.set(FLAG_LENGTH);
            }
            pdu.address = be16(d, 0);
            if let Some(v) = be16(d, 2) {
                pdu.values = if f == 5 { Values::one(u16::from(v == 0xFF00)) } else { Values::one(v) };
                if f == 5 && v != 0xFF00 && v != 0 {
                    pdu.flags.set(FLAG_COIL_VALUE);
                }
            }
        }
        7 => {
            if d.len() != 1 {
                pdu.flags.set(FLAG_LENGTH);
            }
            if let Some(&s) = d.first() {
                pdu.values = Values::one(u16::from(s));
            }
        }
        8 => {
            pdu.sub_function = be16(d, 0);
            pdu.values = Values::Registers(d.get(2..).unwrap_or_default());
        }
        11 => {
            if d.len() != 4 {
                pdu.flags.set(FLAG_LENGTH);
            }
            if let (Some(status), Some(count)) = (be16(d, 0), be16(d, 2)) {
                pdu.values = Values::two(status, count);
            }
        }
        12 | 17 | 20 => {
            byte_counted(pdu);
        }
        15 | 16 => {
            if d.len() != 4 {
                pdu.flags.set(FLAG_LENGTH);
            }
            pdu.address = be16(d, 0);
            pdu.quantity = be16(d, 2);
        }
        21 => {}
        22 => {
            if d.len() != 6 {
                pdu.flags.set(FLAG_LENGTH);
            }
            pdu.address = be16(d, 0);
            if let (Some(and), Some(or)) = (be16(d, 2), be16(d, 4)) {
                pdu.values = Values::two(and, or);
            }
        }
        24 => {
            // Byte count (2 bytes), FIFO count (2 bytes), then the FIFO registers.
            let bc = be16(d, 0).map(usize::from);
            let fifo = d.get(4..).unwrap_or_default();
            if bc != Some(d.len().saturating_sub(2)) {
                pdu.flags.set(FLAG_BYTE_COUNT);
            }
            pdu.values = Values::Registers(fifo);
        }
        43 => decode_mei(pdu, d, false),
        _ => {}
    }
}

/// Finds the first offset in `data` where a plausible MBAP header starts, for
/// resynchronisation after a gap or a framing error.
fn find_header(data: &[u8]) -> Option<usize> {
    (0..data.len().saturating_sub(MBAP_LEN)).find(|&i| data.get(i..).is_some_and(|d| plausible_at(d) == Probe::Yes))
}

impl StreamDissector for ModbusStream {
    fn protocol(&self) -> Protocol {
        Protocol::Modbus
    }

    fn parse(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) -> Parsed {
        let mut off = 0usize;
        let mut skipped = 0usize;
        loop {
            let rest = data.get(off..).unwrap_or_default();
            if self.resync[dir] {
                match find_header(rest) {
                    Some(i) => {
                        off += i;
                        skipped += i;
                        self.resync[dir] = false;
                        continue;
                    }
                    None => {
                        // Keep the last bytes: a header may start in them.
                        let skip = rest.len().saturating_sub(MBAP_LEN);
                        off += skip;
                        skipped += skip;
                        break;
                    }
                }
            }
            let Some(h) = mbap(rest) else { break };
            if !(2..=MAX_FRAMED_MBAP_LENGTH).contains(&h.length) {
                // The length cannot be right, so the ADU cannot be framed.
                self.resync[dir] = true;
                off += 1;
                skipped += 1;
                continue;
            }
            let total = 6 + usize::from(h.length);
            let Some(adu) = rest.get(..total) else { break };
            let pdu = self.decode(h, adu, dir);
            emit(&mut PduBody::Modbus(pdu));
            off += total;
        }
        Parsed { consumed: off, skipped }
    }

    fn take_counters(&mut self, into: &mut DissectorCounters) {
        into.modbus.add(&std::mem::take(&mut self.counters));
    }

    fn gap(&mut self, dir: Direction) {
        self.resync[dir] = true;
    }
}

#[cfg(test)]
mod tests;
