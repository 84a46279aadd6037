//! Output formats. [`json`] writes one JSON object per PDU, by hand into a reused buffer
//! (no allocation per PDU; serde would cost a third of the dissection budget).

pub mod alerts;
pub mod json;
mod json_dnp3;
mod json_modbus;
mod json_s7;
