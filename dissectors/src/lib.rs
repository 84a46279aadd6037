//! # otsensor-dissectors
//!
//! Wire formats and event types for otsensor, the passive ICS network sensor.
//!
//! This crate owns everything between a captured frame and a protocol event:
//!
//! - [`packet`]: link layer (Ethernet with 802.1Q/QinQ, Linux cooked v1/v2, raw IP, BSD
//!   loopback), IPv4/IPv6 with the TTL, TCP, UDP and ICMP, through etherparse, without
//!   copying; ARP and the EtherType of other non-IP frames;
//! - [`tcp`]: per-direction TCP reassembly with bounded out-of-order buffering and gaps;
//! - [`engine`]: the flow table, protocol identification by port *and* content, and the
//!   dispatch to the dissectors;
//! - [`modbus`], [`dnp3`], [`s7`]: the application-layer dissectors, each reporting through
//!   the [`stream::StreamDissector`] contract (and counting what it drops into the engine's
//!   statistics);
//! - [`types`]: the shared vocabulary (time, endpoints, [`types::PerDirection`], protocols,
//!   flags, function names and classes, spaces and points), a leaf every protocol imports;
//! - [`event`]: the [`event::Pdu`] and [`event::Notice`] types every other crate consumes
//!   (it re-exports [`types`]);
//! - [`net`]: what the engine reports of all traffic, ICS or not ([`net::NetEvent`]): a
//!   record of each conversation when it starts, completes its handshake and ends (client,
//!   server, transport, port, packets and bytes each way, TTLs, MACs, TCP events), each ARP
//!   packet, each new non-IP conversation; and the names of the services an OT network
//!   cares about.
//!
//! It must never depend on I/O, clocks, threads, metrics or any other otsensor crate: time
//! is the packet's, passed in, so a capture replayed gives exactly what live capture gave.
//! Nothing here panics on input: malformed bytes become flags on a PDU, counted skips, or
//! resynchronisation.
//!
//! ```
//! use otsensor_dissectors::engine::{Engine, EngineConfig};
//! use otsensor_dissectors::event::{Pdu, PduBody, Timestamp};
//! use otsensor_dissectors::packet::linktype;
//!
//! // An IPv4/TCP segment 10.0.0.1:1234 -> 10.0.0.2:502 carrying a Read Holding Registers
//! // request (transaction 1, unit 1, address 0, quantity 10).
//! let frame = [
//!     0x45, 0, 0, 52, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4
//!     0x04, 0xd2, 0x01, 0xf6, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0, // TCP
//!     0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10, // Modbus
//! ];
//! let mut engine = Engine::new(EngineConfig::default());
//! let mut funcs = Vec::new();
//! let mut sink = |pdu: &Pdu<'_>| {
//!     if let PduBody::Modbus(m) = &pdu.body {
//!         funcs.push((m.func.raw(), m.address, m.quantity));
//!     }
//! };
//! engine.process(Timestamp::default(), 1, linktype::RAW, &frame, &mut sink);
//! assert_eq!(funcs, [(3, Some(0), Some(10))]);
//! ```

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// Length fields are packet data: arithmetic on them must not overflow (a panic in a debug
// build, a wrong bound in a release one). Denied outside tests; the modules whose arithmetic
// is counters and offsets inside a buffer allow it at their top, each saying what was
// reviewed (SECURITY.md).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod bytes;
pub mod dnp3;
pub mod engine;
pub mod event;
mod lru;
pub mod modbus;
pub mod net;
pub mod packet;
pub mod s7;
pub mod stream;
pub mod tcp;
#[cfg(test)]
mod testutil;
pub mod types;
