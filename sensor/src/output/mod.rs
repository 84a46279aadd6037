//! Output formats. [`json`] writes one JSON object per PDU, by hand into a reused buffer
//! (no allocation per PDU; serde would cost a third of the dissection budget); [`alerts`]
//! writes alerts as JSON lines and [`chain`] links those written to a file into a
//! tamper-evident chain.

pub mod alerts;
pub mod append_file;
pub mod chain;
pub mod json;
mod json_dnp3;
mod json_modbus;
mod json_s7;
