//! # otsensor-models
//!
//! Baselines of normal behaviour and the scoring of deviations. Deterministic and clock-free:
//! time is the packets'. Depends only on `otsensor-dissectors`; never on I/O.

#![forbid(unsafe_code)]
