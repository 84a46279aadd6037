//! Siemens S7comm and S7comm-plus over TPKT (RFC 1006) and COTP (ISO 8073).
//!
//! Placeholder until the S7 dissector lands: it defines the event types and a stream
//! dissector that recognises nothing.

use crate::event::{CriticalOp, Direction, Flags, FuncName, FunctionClass, PduBody, PointRange, PointValue, Protocol};
use crate::stream::{Parsed, Probe, StreamDissector};

/// Names of the S7 protocol violations, indexed by flag bit.
pub const FLAG_NAMES: &[&str] = &[];

/// An S7comm PDU.
#[derive(Debug)]
pub struct S7Pdu<'a> {
    /// True for jobs and userdata requests.
    pub is_request: bool,
    /// Parameter function code.
    pub func: u8,
    /// Raw S7 PDU.
    pub raw: &'a [u8],
    /// Violations.
    pub flags: Flags,
}

impl S7Pdu<'_> {
    /// The function code as a number.
    pub fn func_code(&self) -> u16 {
        u16::from(self.func)
    }
    /// The function code's name.
    pub fn func_name(&self) -> FuncName {
        FuncName::Unknown(u16::from(self.func))
    }
    /// Violations.
    pub fn flags(&self) -> Flags {
        self.flags
    }
    /// Class of operation.
    pub fn class(&self) -> FunctionClass {
        FunctionClass::Other
    }
    /// Critical operation requested.
    pub fn critical(&self) -> Option<CriticalOp> {
        None
    }
    /// Point ranges touched.
    pub fn for_each_point(&self, _f: &mut dyn FnMut(PointRange)) {}
    /// Point values carried.
    pub fn for_each_value(&self, _f: &mut dyn FnMut(PointValue)) {}
    /// Error reported by a response.
    pub fn error_code(&self) -> Option<u16> {
        None
    }
}

/// An S7comm-plus PDU, recognised by its header.
#[derive(Debug)]
pub struct S7PlusPdu {
    /// True for requests.
    pub is_request: bool,
    /// Function code.
    pub func: u16,
    /// Violations.
    pub flags: Flags,
}

impl S7PlusPdu {
    /// The function code as a number.
    pub fn func_code(&self) -> u16 {
        self.func
    }
    /// The function code's name.
    pub fn func_name(&self) -> FuncName {
        FuncName::Unknown(self.func)
    }
    /// Violations.
    pub fn flags(&self) -> Flags {
        self.flags
    }
    /// Class of operation.
    pub fn class(&self) -> FunctionClass {
        FunctionClass::Other
    }
    /// Critical operation requested.
    pub fn critical(&self) -> Option<CriticalOp> {
        None
    }
}

/// Content identification: whether `data` starts with a TPKT header.
pub fn probe(data: &[u8]) -> Probe {
    match data {
        [0x03, 0x00, ..] => Probe::Yes,
        [] | [0x03] => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// Per-connection S7 state.
#[derive(Debug, Default)]
pub struct S7Stream {}

impl StreamDissector for S7Stream {
    fn protocol(&self) -> Protocol {
        Protocol::S7comm
    }
    fn parse(&mut self, data: &[u8], _dir: Direction, _emit: &mut dyn FnMut(PduBody<'_>)) -> Parsed {
        Parsed { consumed: data.len(), skipped: data.len() }
    }
    fn gap(&mut self, _dir: Direction) {}
}
