//! # otsensor-benches
//!
//! Criterion benchmarks (`benches/`) and the synthetic capture generator ([`gen`], binary
//! `gencap`) used to measure otsensor against the capture read limit and against Suricata.

pub mod fixtures;
pub use otsensor_gen as gen;
