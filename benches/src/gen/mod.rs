//! Synthetic capture generation (placeholder until the generator lands).

pub mod dnp3;
pub mod modbus;
pub mod s7;
