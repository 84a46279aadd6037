//! Integration tests, built as one binary (one module per subject).

// Helpers are shared between test modules of this one crate.
#![allow(unreachable_pub)]

mod cli;
mod common;
mod dashboards;
mod detect;
mod durability;
mod expected;
mod fuzz_corpus;
mod golden;
mod integrity;
mod live_e2e;
mod policy;
mod report;
mod rotating_capture;
mod run_pipeline;
mod tshark_dnp3;
mod tshark_modbus;
mod tshark_s7;
