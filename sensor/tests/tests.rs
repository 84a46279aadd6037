//! Integration tests, built as one binary (one module per subject).

// Helpers are shared between test modules of this one crate.
#![allow(unreachable_pub)]

mod accept;
mod cli;
mod common;
mod dashboards;
mod detect;
mod durability;
mod episodes;
mod expected;
mod fuzz_corpus;
mod golden;
mod hostile;
mod integrity;
#[cfg(feature = "kafka")]
mod kafka_e2e;
mod live_e2e;
mod outputs;
mod policy;
mod report;
mod rotating_capture;
mod run_pipeline;
mod tshark_dnp3;
mod tshark_modbus;
mod tshark_s7;
