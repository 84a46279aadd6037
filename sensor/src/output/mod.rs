//! Output formats. [`json`] writes one JSON object per PDU, by hand into a reused buffer
//! (no allocation per PDU; serde would cost a third of the dissection budget); [`alerts`]
//! writes alerts as JSON lines and [`chain`] links those written to a file into a
//! tamper-evident chain.

pub mod alerts;
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
