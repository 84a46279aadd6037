//! # otsensor-models
//!
//! Baselines of normal behaviour and the scoring of deviations: the part of otsensor that
//! learns, between each pair of devices, what normal looks like, and says in words an
//! engineer trusts when something deviates.
//!
//! It owns:
//! - [`Learner`]: PDUs, notices and network events in, a [`Baseline`] out (assets, pairs, function codes,
//!   point ranges, value envelopes, polling periods, latency, exception rates, function
//!   transitions, per-window rates and a statistical model);
//! - [`baseline`]: the versioned, ordered, checksummed JSON document, to and from strings,
//!   typed, a leaf that [`model`] converts from and to;
//! - [`Observation`]: one PDU as learning and detection both see it, computed once;
//! - [`Detector`]: PDUs scored against a baseline, folded and rate-limited into
//!   [`Alert`]s with a rule id, score, severity, evidence and ATT&CK technique; it dispatches
//!   each observation to the rules, one function each in `checks/`, whose words are in
//!   [`words`];
//! - [`net`]: the network section of the baseline, learned from the engine's conversation
//!   records, ARP packets and L2 conversations (services between hosts, ARP bindings, TTLs),
//!   and the rules on it (scans, sweeps, SYN floods, spoofing, injection);
//! - [`alert`]: alerts, their folding, their recurrence after a quiet period, and their
//!   scaling by the learning behind the baseline; [`accept`]: reviewed alerts learned into a
//!   baseline;
//! - [`sources`]: the bound on per-address state (host-scan counts, scan windows) that keeps
//!   room for the baseline's own devices under a flood of new addresses;
//! - [`rules_catalog`]: the detections' stable ids, numeric rule ids and weights;
//! - [`stats`]: the PCA model (smartcore) over per-window features.
//!
//! Of otsensor's crates it depends on `otsensor-dissectors` (the event types) only; it must
//! never depend on I/O, clocks, threads, the rules crate's loader or the sensor: it
//! serializes to strings and the sensor writes files. Its other dependencies are serde and
//! serde_json (the document), sha2 (the checksum), smartcore and ndarray (the PCA fit) and
//! rustc-hash (fixed-seed maps on the per-PDU path).
//!
//! Guarantees: deterministic (time is the packets', maps are iterated in sorted order wherever
//! order reaches output, the same input gives byte-identical alerts); bounded (every table of
//! the baseline and every runtime map has a named cap, see the constants below); no panics on
//! input (no indexing, no unwrap outside tests); nothing is formatted or allocated on the
//! per-PDU path unless an alert opens.
//!
//! ```
//! use otsensor_models::{Baseline, Detector, Learner};
//!
//! let mut learner = Learner::new();
//! // learner.pdu(&pdu) for each PDU of the learning captures...
//! let mut baseline = learner.finish();
//! let text = baseline.to_json();
//! let loaded = Baseline::from_json(&text).expect("checksum verifies");
//! let mut detector = Detector::new(&loaded).expect("valid baseline");
//! // detector.pdu(&pdu) for each PDU to score...
//! let mut alerts = Vec::new();
//! detector.finish(&mut alerts);
//! assert!(alerts.is_empty());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accept;
pub mod alert;
pub mod baseline;
mod checks;
pub mod detect;
mod hash_bits;
pub mod learn;
pub mod model;
pub mod net;
pub mod observation;
pub mod rules_catalog;
pub mod sources;
pub mod stats;
mod window;
pub mod words;

#[cfg(test)]
mod tests;

pub use alert::{Alert, AlertPoint};
pub use baseline::{Baseline, BaselineError};
pub use checks::policy::PolicyFinding;
pub use detect::Detector;
pub use learn::Learner;
pub use model::reseal;
pub use observation::{Observation, ObservationLog};
pub use rules_catalog::Severity;

/// Seconds of packet time per rate and feature window.
pub const WINDOW_SECS: i64 = 10;
/// Envelopes of read points kept per pair; points beyond are not tracked (and never
/// alerted), and the pair says `values_truncated`.
pub const MAX_READ_VALUE_POINTS: usize = 96;
/// Envelopes of written points kept per pair, counted apart so that a pair polling many
/// registers still tracks every setpoint it writes.
pub const MAX_WRITE_VALUE_POINTS: usize = 32;
/// Envelopes kept per pair in all.
pub const MAX_VALUE_POINTS: usize = MAX_READ_VALUE_POINTS + MAX_WRITE_VALUE_POINTS;
/// Distinct values an envelope keeps as a set before it becomes a range.
pub const MAX_SET_VALUES: usize = 8;
/// Ranges kept per unit, space and access of a pair; beyond, the closest merge.
pub const MAX_RANGES: usize = 64;
/// Recurring-request signatures tracked per pair.
pub const MAX_POLLS: usize = 64;
/// Function-code transitions kept per pair; beyond, every transition counts as known.
pub const MAX_TRANSITIONS: usize = 256;
