//! Metrics exposition: the Prometheus text format and the HTTP endpoint that serves it.
//!
//! - [`text`] writes the text exposition format 0.0.4 by hand ([`text::TextEncoder`]), including
//!   histograms from hdrhistogram latencies, and reads the process' resident memory.
//! - [`registry`] holds the sensor's counters ([`registry::Telemetry`]) and renders them at
//!   scrape time.
//! - [`http`] serves `GET /metrics` and `GET /healthz` on its own thread
//!   ([`http::MetricsServer`]); the page is built by a closure at scrape time, so this module
//!   holds no metric values itself.
//!
//! The endpoint listens on an address the operator chooses, normally the management network;
//! it never opens anything towards the monitored network.

pub mod http;
pub mod registry;
pub mod text;
