//! # otsensor
//!
//! The sensor: everything with side effects. It reads packets (pcap and pcapng files, read
//! whole with ordinary reads, or a live interface through an AF_PACKET `TPACKET_V3` ring; libpcap behind the
//! `live-pcap` feature), runs them through the dissectors'
//! [`otsensor_dissectors::engine::Engine`], learns and scores them with `otsensor-models`,
//! and writes JSON lines, alerts and Prometheus metrics.
//!
//! - [`capture`]: capture files, live interfaces, the frame stores batches point into;
//! - [`pipeline`]: `otsensor run`'s threads: dispatch by IP pair, dissecting workers, the
//!   coordinator that merges in packet order, learns, scores and checkpoints;
//! - [`cmd`]: the subcommands; [`config`]: `run`'s flags and TOML file;
//! - [`output`]: JSON lines of PDUs and alerts, and alerts sent to SIEMs (syslog, CEF) and
//!   Kafka through a durable queue; [`metrics`]: the registry and `/metrics`;
//! - [`policy`]: the `rules` crate's policy applied to alerts (criticality, zones, asset
//!   names, suppressions, maintenance windows);
//! - [`baseline_file`]: baselines on disk, verified and written atomically;
//! - [`keys`]: Ed25519 keys for signed alert checkpoints and baselines; [`file_perms`]:
//!   config, policy and key files that others could change are refused;
//! - [`report`]: the self-contained HTML forensic report of `otsensor report`.
//!
//! It never transmits on the monitored network: the capture socket is receive-only (no TX
//! ring, never written to), and the only sockets it opens are the metrics endpoint's and the
//! outputs' connections to the SIEMs and Kafka brokers the operator names (`--output`), on
//! addresses the operator chooses. `unsafe` is confined to [`capture`]'s `sys` module (the
//! AF_PACKET ring, privileges), each block with a `SAFETY` comment.

pub mod baseline_diff;
pub mod baseline_file;
pub mod capture;
pub mod cmd;
pub mod config;
pub mod file_perms;
#[doc(hidden)]
pub mod fuzz_support;
pub mod inventory;
pub mod keys;
pub mod memory;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod run;
#[cfg(test)]
mod testutil;
