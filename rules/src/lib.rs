//! # otsensor-rules
//!
//! Declarative policy: zones and conduits, asset criticality, guardrails and suppressions,
//! with names checked against the dissectors' code tables at load time. Depends only on
//! `otsensor-dissectors`.

#![forbid(unsafe_code)]
