//! The contract between the TCP reassembler and the application-layer dissectors.

use crate::dnp3::Dnp3Counters;
use crate::event::PduBody;
use crate::modbus::ModbusCounters;
use crate::s7::S7Counters;
use crate::types::{Direction, Protocol};

/// What the dissectors count about their connections, summed over every connection by the
/// engine ([`crate::engine::EngineStats::dissectors`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DissectorCounters {
    /// Modbus/TCP.
    pub modbus: ModbusCounters,
    /// DNP3.
    pub dnp3: Dnp3Counters,
    /// S7comm and S7comm-plus.
    pub s7: S7Counters,
}

impl DissectorCounters {
    /// Adds `o` to these.
    pub fn add(&mut self, o: &DissectorCounters) {
        self.modbus.add(&o.modbus);
        self.dnp3.add(&o.dnp3);
        self.s7.add(&o.s7);
    }
}

/// What one call to [`StreamDissector::parse`] did.
///
/// Progress contract (after sawp's `parser.rs`): `consumed == 0` means the bytes hold no
/// complete PDU yet and the caller must come back with more; otherwise the first `consumed`
/// bytes are done with and must not be offered again. Bytes a dissector cannot frame are
/// skipped while it resynchronises on the next valid header: they count in both `consumed`
/// and `skipped`, so a stream can never get stuck.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Bytes consumed from the front of the input, PDUs and skipped bytes together.
    pub consumed: usize,
    /// Of `consumed`, bytes skipped without framing a PDU.
    pub skipped: usize,
}

/// Outcome of content identification (the engine's probe of a flow's first bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The bytes start with a valid header of the protocol.
    Yes,
    /// The bytes cannot be the start of this protocol.
    No,
    /// Too few bytes to tell.
    NeedMore,
}

/// A dissector of one application protocol over a reassembled byte stream, one instance per
/// connection holding both directions' state (pending requests, fragment reassembly).
pub trait StreamDissector {
    /// The protocol dissected.
    fn protocol(&self) -> Protocol;

    /// Parses whole PDUs from the front of `data`, travelling in direction `dir`, calling
    /// `emit` for each; see [`Parsed`] for the progress contract. Never panics, whatever
    /// `data` holds.
    fn parse(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) -> Parsed;

    /// Bytes were lost in direction `dir`: the next bytes offered may start mid-PDU, so the
    /// dissector must resynchronise on the next valid header.
    fn gap(&mut self, dir: Direction);

    /// Moves what the connection counted since the last call into `into`.
    fn take_counters(&mut self, into: &mut DissectorCounters);

    /// Parses one datagram (UDP). The default treats it as a stream segment followed by a
    /// gap, so nothing left over leaks into the next datagram.
    fn parse_datagram(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) -> Parsed {
        let parsed = self.parse(data, dir, emit);
        self.gap(dir);
        parsed
    }
}
