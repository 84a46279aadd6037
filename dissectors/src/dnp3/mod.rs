//! DNP3 (IEEE 1815-2012): link layer, transport reassembly and application layer.
//!
//! Placeholder until the DNP3 dissector lands: it defines the event type and a stream
//! dissector that recognises nothing.

use crate::event::{CriticalOp, Direction, Flags, FuncName, FunctionClass, PduBody, PointRange, PointValue, Protocol};
use crate::stream::{Parsed, Probe, StreamDissector};

/// Names of the DNP3 protocol violations, indexed by flag bit.
pub const FLAG_NAMES: &[&str] = &[];

/// A DNP3 message.
#[derive(Debug)]
pub struct Dnp3Pdu<'a> {
    /// True for messages from the master.
    pub is_request: bool,
    /// Application function code.
    pub func: u8,
    /// Raw application fragment.
    pub raw: &'a [u8],
    /// Violations.
    pub flags: Flags,
}

impl Dnp3Pdu<'_> {
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

/// Content identification: whether `data` starts with a DNP3 link header.
pub fn probe(data: &[u8]) -> Probe {
    match data {
        [0x05, 0x64, ..] => Probe::Yes,
        [] | [0x05] => Probe::NeedMore,
        _ => Probe::No,
    }
}

/// Per-connection DNP3 state.
#[derive(Debug, Default)]
pub struct Dnp3Stream {}

impl StreamDissector for Dnp3Stream {
    fn protocol(&self) -> Protocol {
        Protocol::Dnp3
    }
    fn parse(&mut self, data: &[u8], _dir: Direction, _emit: &mut dyn FnMut(PduBody<'_>)) -> Parsed {
        Parsed { consumed: data.len(), skipped: data.len() }
    }
    fn gap(&mut self, _dir: Direction) {}
}
