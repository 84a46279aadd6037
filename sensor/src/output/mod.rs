//! Output formats. [`json`] writes one JSON object per PDU, by hand into a reused buffer
//! (no allocation per PDU; serde would cost a third of the dissection budget); [`alerts`]
//! writes alerts as JSON lines (or [`ecs`]) and [`chain`] links those written to a file into a
//! tamper-evident chain.
//!
//! Alerts also go to the network destinations of `--output` ([`dest`]): [`sinks`] runs them,
//! one durable [`queue`] with a cursor per destination and a sender thread each, syslog and
//! CEF ([`siem`], over TLS with [`tls`]) and Kafka (`kafka`, with the asset and traffic
//! records of [`fleet`]).

pub mod alerts;
pub mod append_file;
pub mod chain;
pub mod dest;
pub mod ecs;
pub mod fleet;
pub mod json;
mod json_dnp3;
mod json_modbus;
mod json_s7;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod queue;
mod sender;
pub mod siem;
pub mod sinks;
pub mod tls;
