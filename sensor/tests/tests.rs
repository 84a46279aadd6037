//! Integration tests, built as one binary (one module per subject).

mod cli;
mod common;
mod detect;
mod tshark_dnp3;
mod tshark_modbus;
mod tshark_s7;
