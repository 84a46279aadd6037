//! The contract between the TCP reassembler and the application-layer dissectors.

use crate::event::{Direction, PduBody, Protocol};

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

/// Outcome of [`StreamDissector::probe`]-style content identification.
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
    fn parse(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(PduBody<'_>)) -> Parsed;

    /// Bytes were lost in direction `dir`: the next bytes offered may start mid-PDU, so the
    /// dissector must resynchronise on the next valid header.
    fn gap(&mut self, dir: Direction);

    /// Parses one datagram (UDP). The default treats it as a stream segment followed by a
    /// gap, so nothing left over leaks into the next datagram.
    fn parse_datagram(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(PduBody<'_>)) -> Parsed {
        let parsed = self.parse(data, dir, emit);
        self.gap(dir);
        parsed
    }
}
