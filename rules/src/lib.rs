//! # otsensor-rules
//!
//! Declarative policy, the IEC 62443 way: zones of assets with a security level and the
//! conduits allowed between them, the asset inventory with its criticality, guardrails on
//! the values of points, allow and deny rules, suppressions and maintenance windows.
//!
//! It owns the policy file's format and its loader ([`load()`]), which checks every name
//! against the dissectors' code tables (protocols, function names, operation classes, S7
//! areas) and every value (CIDR blocks, overlapping zones, unknown zones, inverted ranges,
//! windows that end before they start, unknown rule ids) and reports the file, line and
//! column of what is wrong. The validated [`Policy`] is plain data: the scoring applies it.
//!
//! Depends on `otsensor-dissectors` (the names) only; it never reaches the models (rule ids
//! are checked through [`Known`], which the caller fills from the models' catalogue).

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used))]

pub mod load;
pub mod net;
pub mod policy;

#[cfg(test)]
mod tests;

pub use load::{load, Known, PolicyError};
pub use net::Network;
pub use policy::Policy;
