//! S7comm-plus (protocol id 0x72), recognised by its header, as S7-1200 and S7-1500 PLCs and
//! TIA Portal speak it. Layout after Thomas Wiens' `packet-s7comm_plus.c`:
//!
//! - header: 0x72, PDU type / version (1 connect, 2 data, 3 data with the integrity part
//!   first, 0xfe system event, 0xff keep-alive), data length (2);
//! - for version 3, the integrity part: digest length (32) and the digest;
//! - data: opcode (0x31 request, 0x32 response, 0x33 notification, 0x02 response2), 2
//!   reserved bytes, function (2), 2 reserved bytes, sequence number (2), and for requests a
//!   session id (4) and a transport flags byte;
//! - trailer: 0x72, version, 0x0000, present only on the last fragment of a message.
//!
//! Messages longer than a TPDU are split into fragments that share no marker: a fragment
//! without a trailer is continued by the next one in the same direction. The integrity digest
//! is not verified (the key is not on the wire); whatever the bytes, parsing continues with
//! the next TPKT, so the stream is never lost.

use super::names;
use super::FLAG_NAMES;
use crate::bytes::{be16, be32};
use crate::types::{CriticalOp, Direction, Flags, FuncName, FunctionClass};

/// Protocol id of S7comm-plus.
pub const PROTOCOL_ID: u8 = 0x72;
/// Opcode of a request.
pub const OPCODE_REQUEST: u8 = 0x31;
/// Opcode of a response.
pub const OPCODE_RESPONSE: u8 = 0x32;
/// Opcode of a notification (subscribed values pushed by the PLC).
pub const OPCODE_NOTIFICATION: u8 = 0x33;
/// Opcode of the second response form (V13 HMI cyclic data).
pub const OPCODE_RESPONSE2: u8 = 0x02;
/// Function code: SetVariable.
pub const FUNC_SET_VARIABLE: u16 = 0x04f2;
/// `func_code()` of a keep-alive (version 0xff).
pub const FUNC_KEEP_ALIVE: u16 = 0x0000;
/// `func_code()` of a system event (version 0xfe).
pub const FUNC_SYSTEM_EVENT: u16 = 0x00fe;
/// `func_code()` of a notification, which has no function code.
pub const FUNC_NOTIFICATION: u16 = 0x0033;
/// `func_code()` of a PDU whose opcode could not be read.
pub const FUNC_NONE: u16 = 0xffff;
/// Length of the integrity digest (HMAC-SHA256).
const DIGEST_LEN: u8 = 32;
/// Object id of the CPU execution unit (`NativeObjects.theCPUexecUnit_Rid`).
const CPU_EXEC_UNIT_RID: u32 = 0x34;
/// Attribute id `CPUexecUnit.operatingStateREQ`: 1 requests STOP, 3 requests RUN.
const OPERATING_STATE_REQ: u32 = 2167;

/// Flag bit: the data length disagrees with the TPDU's length.
pub const FLAG_PLUS_LENGTH: u32 = 7;
/// Flag bit: a version 3 PDU whose integrity part does not announce a 32-byte digest.
pub const FLAG_PLUS_INTEGRITY: u32 = 8;

/// Where a PDU stands in a fragmented message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// A whole message (it has a trailer and continues nothing).
    Whole,
    /// The first fragment (no trailer).
    First,
    /// A fragment between the first and the last.
    Inner,
    /// The last fragment (has a trailer).
    Last,
}

impl Fragment {
    /// Name for output.
    pub const fn name(self) -> &'static str {
        match self {
            Fragment::Whole => "whole",
            Fragment::First => "first",
            Fragment::Inner => "inner",
            Fragment::Last => "last",
        }
    }
}

/// An S7comm-plus PDU, recognised by its header.
#[derive(Clone, Copy, Debug)]
pub struct S7PlusPdu {
    /// True for requests (opcode 0x31; keep-alives and system events by direction).
    pub is_request: bool,
    /// PDU type / protocol version (header byte 1).
    pub version: u8,
    /// Data length (header bytes 2-3).
    pub data_len: u16,
    /// Opcode; a continuation fragment repeats its first fragment's.
    pub opcode: Option<u8>,
    /// Function code (see [`S7PlusPdu::func_code`]).
    pub func: u16,
    /// Sequence number.
    pub seq: Option<u16>,
    /// Session id (requests).
    pub session_id: Option<u32>,
    /// Position in a fragmented message.
    pub fragment: Fragment,
    /// `CPUexecUnit.operatingStateREQ` value a SetVariable request writes (1 stop, 3 run).
    pub operating_state: Option<u32>,
    /// Violations.
    pub flags: Flags,
}

/// Per-direction fragment state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PlusState {
    in_fragments: bool,
    opcode: Option<u8>,
    func: u16,
    seq: Option<u16>,
    session_id: Option<u32>,
}

/// Reads an S7comm-plus variable-length unsigned integer (7 bits per byte, high bit set on all
/// but the last, at most 5 bytes).
fn varuint(b: &[u8]) -> Option<(u32, &[u8])> {
    let mut v: u32 = 0;
    for (i, &x) in b.iter().enumerate().take(5) {
        v = v << 7 | u32::from(x & 0x7f);
        if x & 0x80 == 0 {
            return Some((v, b.get(i..)?.get(1..)?));
        }
    }
    None
}

/// The operating state a SetVariable request body writes to the CPU execution unit:
/// object id (4), item count, attribute id, value flags, datatype, value.
fn operating_state(body: &[u8]) -> Option<u32> {
    if be32(body, 0)? != CPU_EXEC_UNIT_RID {
        return None;
    }
    let (count, rest) = varuint(body.get(4..)?)?;
    let (attr, rest) = varuint(rest)?;
    if count != 1 || attr != OPERATING_STATE_REQ {
        return None;
    }
    // Value flags 0, then datatype DInt (0x08), UDInt (0x04) or USInt (0x02).
    match rest {
        [0, 0x04 | 0x08, v @ ..] => varuint(v).map(|(v, _)| v),
        [0, 0x02, v, ..] => Some(u32::from(*v)),
        _ => None,
    }
}

/// Decodes one S7comm-plus PDU (`p[0] == 0x72`), updating the direction's fragment state.
pub(crate) fn decode(p: &[u8], dir: Direction, st: &mut PlusState) -> S7PlusPdu {
    let version = p.get(1).copied().unwrap_or(0);
    let mut pdu = S7PlusPdu {
        is_request: dir == Direction::ToServer,
        version,
        data_len: be16(p, 2).unwrap_or(0),
        opcode: None,
        func: FUNC_NONE,
        seq: None,
        session_id: None,
        fragment: Fragment::Whole,
        operating_state: None,
        flags: Flags::new(FLAG_NAMES),
    };
    match version {
        0xff => {
            pdu.func = FUNC_KEEP_ALIVE;
            return pdu;
        }
        0xfe => {
            pdu.func = FUNC_SYSTEM_EVENT;
            return pdu;
        }
        _ => {}
    }
    let dlen = usize::from(pdu.data_len);
    let has_trailer = p.len() > dlen + 4;
    if (has_trailer && p.len() != dlen + 8) || p.len() < dlen + 4 {
        pdu.flags.set(FLAG_PLUS_LENGTH);
    }
    let mut data = p.get(4..).unwrap_or_default();
    if version == 3 {
        match data.split_first() {
            Some((&DIGEST_LEN, rest)) => data = rest.get(usize::from(DIGEST_LEN)..).unwrap_or_default(),
            _ => pdu.flags.set(FLAG_PLUS_INTEGRITY),
        }
    }
    pdu.fragment = match (st.in_fragments, has_trailer) {
        (false, true) => Fragment::Whole,
        (false, false) => Fragment::First,
        (true, false) => Fragment::Inner,
        (true, true) => Fragment::Last,
    };
    if matches!(pdu.fragment, Fragment::Inner | Fragment::Last) {
        pdu.opcode = st.opcode;
        pdu.func = st.func;
        pdu.seq = st.seq;
        pdu.session_id = st.session_id;
    } else {
        pdu.opcode = data.first().copied();
        match pdu.opcode {
            Some(OPCODE_NOTIFICATION) => pdu.func = FUNC_NOTIFICATION,
            Some(_) => {
                pdu.func = be16(data, 3).unwrap_or(FUNC_NONE);
                pdu.seq = be16(data, 7);
                if pdu.opcode == Some(OPCODE_REQUEST) {
                    pdu.session_id = be32(data, 9);
                    if pdu.func == FUNC_SET_VARIABLE {
                        pdu.operating_state = data.get(14..).and_then(operating_state);
                    }
                }
            }
            None => {}
        }
    }
    if pdu.opcode.is_some() {
        pdu.is_request = pdu.opcode == Some(OPCODE_REQUEST);
    }
    *st = PlusState {
        in_fragments: !has_trailer,
        opcode: pdu.opcode,
        func: pdu.func,
        seq: pdu.seq,
        session_id: pdu.session_id,
    };
    pdu
}

impl S7PlusPdu {
    /// The function code: the S7comm-plus function (0x04bb explore ... 0x05b3 init SSL);
    /// [`FUNC_NOTIFICATION`], [`FUNC_KEEP_ALIVE`], [`FUNC_SYSTEM_EVENT`] for PDUs without one,
    /// [`FUNC_NONE`] when unreadable.
    pub fn func_code(&self) -> u16 {
        self.func
    }
    /// The function code's name.
    pub fn func_name(&self) -> FuncName {
        match self.func {
            FUNC_KEEP_ALIVE => FuncName::Known("KEEP_ALIVE"),
            FUNC_SYSTEM_EVENT => FuncName::Known("SYSTEM_EVENT"),
            FUNC_NOTIFICATION => FuncName::Known("NOTIFICATION"),
            f => names::plus_function_name(f).map_or(FuncName::Unknown(f), FuncName::Known),
        }
    }
    /// Violations.
    pub fn flags(&self) -> Flags {
        self.flags
    }
    /// Class of operation: get functions and notifications read, set functions write,
    /// explore diagnostic, object and sequence management programming; a SetVariable of the
    /// operating state is programming.
    pub fn class(&self) -> FunctionClass {
        if self.operating_state.is_some() {
            return FunctionClass::Program;
        }
        match self.func {
            0x04fc | 0x054c | 0x0586 | 0x0590 | FUNC_NOTIFICATION => FunctionClass::Read,
            0x04f2 | 0x0542 | 0x057c => FunctionClass::Write,
            0x04bb | 0x0524 | FUNC_KEEP_ALIVE | FUNC_SYSTEM_EVENT => FunctionClass::Diagnostic,
            0x04ca | 0x04d4 | 0x0506 | 0x051a | 0x0556 | 0x0560 | 0x056b => FunctionClass::Program,
            _ => FunctionClass::Other,
        }
    }
    /// Critical operation: a SetVariable request of `CPUexecUnit.operatingStateREQ` on the
    /// CPU execution unit, 1 (STOP) or 3 (RUN), as TIA Portal sends it to an S7-1200/1500.
    /// Downloads are not recognised: they are object creations that cannot be told apart
    /// reliably from session setup without the object model.
    pub fn critical(&self) -> Option<CriticalOp> {
        if !self.is_request {
            return None;
        }
        match self.operating_state? {
            1 => Some(CriticalOp::PlcStop),
            3 => Some(CriticalOp::PlcStart),
            _ => None,
        }
    }
}
