//! # otsensor
//!
//! The sensor: everything with side effects. It reads captures (memory-mapped pcap and
//! pcapng files; live interfaces behind the `live` feature), runs them through the
//! dissectors' [`otsensor_dissectors::engine::Engine`], scores events with `otsensor-models`
//! under the policy of `otsensor-rules`, and writes JSON lines, alerts and metrics.
//!
//! It never transmits on the monitored network: nothing here opens a socket towards it, and
//! live capture opens interfaces read-only. `unsafe` is confined to [`capture`]'s `sys`
//! module (memory maps), each block with a `SAFETY` comment.

pub mod baseline_file;
pub mod capture;
pub mod cmd;
pub mod config;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod run;
