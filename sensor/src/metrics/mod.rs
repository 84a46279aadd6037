//! Metrics.
pub mod http;
pub mod registry;
pub mod text;
