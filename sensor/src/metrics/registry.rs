//! The sensor's counters and gauges, and their rendering at scrape time.
//!
//! Nothing here is touched per packet. The capture thread stores its running totals after
//! each batch flush (it is their only writer); each worker keeps its counters in plain
//! integers and publishes a copy every 200 ms under its own mutex, which only the scraper
//! also takes; the coordinator does the same for alerts and the baseline. A scrape sums the
//! workers' copies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hdrhistogram::Histogram;
use otsensor_dissectors::engine::{Engine, EngineStats};
use otsensor_dissectors::event::{FunctionClass, Protocol};
use otsensor_models::Alert;

use super::text::{Kind, TextEncoder};
use crate::output::sinks::{render_metrics, SharedCounters};

/// Names of the function classes, in [`class_index`] order.
pub const CLASS_NAMES: [&str; 6] = ["read", "write", "control", "program", "diagnostic", "other"];

/// Severity label values, in rank order.
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
/// Family label values: the alert id's prefix.
const FAMILIES: [&str; 6] = ["net", "modbus", "dnp3", "s7comm", "s7comm_plus", "policy"];

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The index of a function class in [`CLASS_NAMES`].
pub fn class_index(c: FunctionClass) -> usize {
    match c {
        FunctionClass::Read => 0,
        FunctionClass::Write => 1,
        FunctionClass::Control => 2,
        FunctionClass::Program => 3,
        FunctionClass::Diagnostic => 4,
        FunctionClass::Other => 5,
    }
}

/// PDUs a worker dissected, by protocol (in [`Protocol::ALL`] order) and class, and those
/// flagged as protocol violations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PduCounts {
    /// By protocol and [`class_index`].
    pub classes: [[u64; 6]; 4],
    /// By protocol.
    pub violations: [u64; 4],
}

impl PduCounts {
    /// Counts one PDU.
    pub fn count(&mut self, protocol: Protocol, class: FunctionClass, violation: bool) {
        let p = protocol as usize;
        if let Some(c) = self.classes.get_mut(p).and_then(|c| c.get_mut(class_index(class))) {
            *c += 1;
        }
        if let Some(v) = self.violations.get_mut(p).filter(|_| violation) {
            *v += 1;
        }
    }

    fn add(&mut self, o: &PduCounts) {
        for (t, c) in self.classes.iter_mut().flatten().zip(o.classes.iter().flatten()) {
            *t += c;
        }
        for (t, v) in self.violations.iter_mut().zip(o.violations.iter()) {
            *t += v;
        }
    }
}

/// A latency histogram: 1 ns to 60 s, 2 significant digits (longer values saturate).
pub fn new_histogram() -> Histogram<u64> {
    // The crate refuses only bounds below 1, a high bound under twice the low one, or more
    // than 5 significant digits: these constants are none of those.
    #[allow(clippy::expect_used)]
    let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 2).expect("constant, valid bounds");
    h.auto(false);
    h
}

/// Everything a scrape reports.
pub struct Telemetry {
    /// Frames read from the capture.
    pub capture_packets: AtomicU64,
    /// Their bytes (captured lengths).
    pub capture_bytes: AtomicU64,
    /// Frames the kernel dropped (ring full), cumulative.
    pub kernel_drops: AtomicU64,
    /// One entry per worker.
    pub workers: Vec<Arc<WorkerTelemetry>>,
    /// The coordinator's side.
    pub coordinator: Mutex<CoordinatorSnapshot>,
    /// False once the capture failed: `/healthz` answers 503.
    pub healthy: AtomicBool,
    /// Whether the kernel or a ring dropped packets in the last second.
    pub loss_now: AtomicBool,
    /// The network outputs' counters, once they started.
    pub outputs: SharedCounters,
}

/// One worker's counters.
#[derive(Default)]
pub struct WorkerTelemetry {
    /// Batches dropped because its ring was full.
    pub ring_drops: AtomicU64,
    /// Packets in those batches.
    pub ring_dropped_packets: AtomicU64,
    /// Batches waiting in its ring at the last send.
    pub ring_depth: AtomicU64,
    published: Mutex<WorkerSnapshot>,
}

/// A worker's counters as last published.
#[derive(Default)]
struct WorkerSnapshot {
    engine: EngineStats,
    active_flows: u64,
    pdus: PduCounts,
    /// Capture thread to the end of dissection, per batch.
    dissect: Option<Histogram<u64>>,
}

impl WorkerTelemetry {
    /// Publishes the worker's counters and moves its latency samples over.
    pub fn publish(&self, engine: &Engine, pdus: &PduCounts, latency: &mut Histogram<u64>) {
        let Ok(mut p) = self.published.lock() else { return };
        p.engine = engine.stats().clone();
        p.active_flows = engine.active_flows() as u64;
        p.pdus = *pdus;
        let h = p.dissect.get_or_insert_with(new_histogram);
        let _ = h.add(&*latency);
        latency.reset();
    }
}

/// The coordinator's counters.
pub struct CoordinatorSnapshot {
    /// Alerts written, by severity and family.
    pub alerts: BTreeMap<(&'static str, String), u64>,
    /// Whether the baseline is being learned (false) or scored against (true).
    pub detecting: bool,
    /// When the baseline in use was last written.
    pub baseline_written: Option<SystemTime>,
    /// Its size on disk.
    pub baseline_bytes: u64,
    /// Capture thread to scoring, per batch.
    pub score: Histogram<u64>,
    /// Timing and absence alerts held back during capture loss.
    pub held_back: u64,
    /// Requests whose client was not followed for host scans (no room: a flood of new
    /// addresses, or the memory cap).
    pub host_scan_untracked: u64,
    /// PDUs of pairs the learner did not learn (past `--memory-cap`'s pairs).
    pub pairs_not_learned: u64,
    /// Whether capture loss is being seen now.
    pub capture_loss: bool,
    /// Baseline writes that failed (checkpoints, the switch to detection).
    pub checkpoint_failures: u64,
    /// Packet time learned so far, earlier runs included.
    pub learned_secs: f64,
    /// Packet time to learn before detecting (`--learn-for`).
    pub learn_for_secs: f64,
}

impl CoordinatorSnapshot {
    /// Counts alerts written.
    pub fn count_alerts(&mut self, alerts: &[Alert]) {
        for a in alerts {
            let family = a.id.split_once('.').map_or(a.id.as_str(), |(f, _)| f);
            *self.alerts.entry((a.severity.name(), family.to_string())).or_default() += 1;
        }
    }
}

impl Telemetry {
    /// Counters for `workers` workers, all zero.
    pub fn new(workers: usize) -> Self {
        Telemetry {
            capture_packets: AtomicU64::new(0),
            capture_bytes: AtomicU64::new(0),
            kernel_drops: AtomicU64::new(0),
            workers: (0..workers).map(|_| Arc::new(WorkerTelemetry::default())).collect(),
            coordinator: Mutex::new(CoordinatorSnapshot {
                alerts: BTreeMap::new(),
                detecting: false,
                baseline_written: None,
                baseline_bytes: 0,
                score: new_histogram(),
                held_back: 0,
                host_scan_untracked: 0,
                pairs_not_learned: 0,
                capture_loss: false,
                checkpoint_failures: 0,
                learned_secs: 0.0,
                learn_for_secs: 0.0,
            }),
            healthy: AtomicBool::new(true),
            loss_now: AtomicBool::new(false),
            outputs: SharedCounters::default(),
        }
    }

    /// The workers' engine counters, summed.
    pub fn engine_totals(&self) -> (EngineStats, u64, PduCounts) {
        let mut total = EngineStats::default();
        let mut flows = 0;
        let mut pdus = PduCounts::default();
        for w in &self.workers {
            let Ok(p) = w.published.lock() else { continue };
            total += &p.engine;
            flows += p.active_flows;
            pdus.add(&p.pdus);
        }
        (total, flows, pdus)
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut t = TextEncoder::new();
        let (engine, flows, pdus) = self.engine_totals();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        counter(&mut t, "otsensor_capture_packets_total", "Frames read from the capture.", load(&self.capture_packets));
        counter(
            &mut t,
            "otsensor_capture_bytes_total",
            "Bytes of the frames read (captured lengths).",
            load(&self.capture_bytes),
        );
        counter(
            &mut t,
            "otsensor_capture_kernel_drops_total",
            "Frames the kernel dropped because the capture ring was full.",
            load(&self.kernel_drops),
        );
        self.render_rings(&mut t);
        t.family("otsensor_pdus_total", "PDUs dissected, by protocol and function class.", Kind::Counter);
        for p in Protocol::ALL {
            for (ci, cname) in CLASS_NAMES.iter().enumerate() {
                let n = pdus.classes.get(p as usize).and_then(|c| c.get(ci)).copied().unwrap_or(0);
                t.sample("otsensor_pdus_total", &[("protocol", p.name()), ("class", cname)], n as f64);
            }
        }
        t.family("otsensor_protocol_violations_total", "PDUs carrying a protocol-violation flag.", Kind::Counter);
        for p in Protocol::ALL {
            let n = pdus.violations.get(p as usize).copied().unwrap_or(0);
            t.sample("otsensor_protocol_violations_total", &[("protocol", p.name())], n as f64);
        }
        gauge(&mut t, "otsensor_flows_active", "Flows tracked now.", flows as f64);
        counter(
            &mut t,
            "otsensor_flows_evicted_total",
            "Flows evicted because the flow table was full.",
            engine.flows_evicted as f64,
        );
        counter(&mut t, "otsensor_reassembly_gaps_total", "TCP stream gaps (bytes never seen).", engine.gaps as f64);
        counter(
            &mut t,
            "otsensor_reassembly_shed_bytes_total",
            "Bytes of reassembly buffers dropped to keep all flows within the reassembly budget (--memory-cap).",
            engine.reassembly_shed_bytes as f64,
        );
        self.render_coordinator(&mut t);
        if let Ok(o) = self.outputs.lock() {
            render_metrics(&o, &mut t);
        }
        t.family("otsensor_build_info", "Build of the running sensor.", Kind::Gauge);
        t.sample("otsensor_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        if let Some(rss) = super::text::process_resident_memory_bytes() {
            gauge(&mut t, "process_resident_memory_bytes", "Resident memory of the sensor process.", rss as f64);
        }
        t.finish()
    }

    fn render_rings(&self, t: &mut TextEncoder) {
        let per_worker =
            |t: &mut TextEncoder, name: &str, help: &str, kind: Kind, f: &dyn Fn(&WorkerTelemetry) -> u64| {
                t.family(name, help, kind);
                for (i, w) in self.workers.iter().enumerate() {
                    t.sample(name, &[("worker", &i.to_string())], f(w) as f64);
                }
            };
        per_worker(
            t,
            "otsensor_pipeline_ring_drops_total",
            "Batches dropped because a worker's ring was full.",
            Kind::Counter,
            &|w| w.ring_drops.load(Ordering::Relaxed),
        );
        per_worker(
            t,
            "otsensor_pipeline_ring_dropped_packets_total",
            "Packets in the batches dropped because a worker's ring was full.",
            Kind::Counter,
            &|w| w.ring_dropped_packets.load(Ordering::Relaxed),
        );
        per_worker(t, "otsensor_pipeline_ring_depth", "Batches waiting in a worker's ring.", Kind::Gauge, &|w| {
            w.ring_depth.load(Ordering::Relaxed)
        });
    }

    fn render_coordinator(&self, t: &mut TextEncoder) {
        let Ok(c) = self.coordinator.lock() else { return };
        t.family("otsensor_alerts_total", "Alerts written, by severity and family.", Kind::Counter);
        // Every series from the start, at zero: increase() then sees the first alert too.
        let mut all: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for sev in SEVERITIES {
            for fam in FAMILIES {
                all.insert((sev, fam), 0);
            }
        }
        for ((sev, fam), n) in &c.alerts {
            *all.entry((sev, fam.as_str())).or_default() += n;
        }
        for ((sev, fam), n) in all {
            t.sample("otsensor_alerts_total", &[("severity", sev), ("family", fam)], n as f64);
        }
        gauge(
            t,
            "otsensor_baseline_state",
            "0 while learning the baseline, 1 while detecting.",
            f64::from(u8::from(c.detecting)),
        );
        let age = c.baseline_written.and_then(|w| w.elapsed().ok()).map_or(0.0, |d| d.as_secs_f64());
        gauge(t, "otsensor_baseline_age_seconds", "Seconds since the baseline in use was written.", age);
        gauge(t, "otsensor_baseline_bytes", "Size of the baseline file.", c.baseline_bytes as f64);
        gauge(t, "otsensor_baseline_learned_seconds", "Packet time learned into the baseline.", c.learned_secs);
        gauge(t, "otsensor_baseline_learn_for_seconds", "Packet time to learn before detecting.", c.learn_for_secs);
        counter(
            t,
            "otsensor_baseline_write_failures_total",
            "Baseline writes that failed.",
            c.checkpoint_failures as f64,
        );
        gauge(
            t,
            "otsensor_capture_loss",
            "1 while capture loss holds back timing rules.",
            f64::from(u8::from(c.capture_loss)),
        );
        counter(
            t,
            "otsensor_alerts_held_back_total",
            "Timing and absence alerts held back during capture loss.",
            c.held_back as f64,
        );
        counter(
            t,
            "otsensor_host_scan_untracked_requests_total",
            "Requests whose client was not followed for host scans (no room left: a flood of new addresses, or the memory cap).",
            c.host_scan_untracked as f64,
        );
        counter(
            t,
            "otsensor_learn_pdus_not_learned_total",
            "PDUs of pairs not learned because the baseline held all the pairs it may (65,536, or fewer under the memory cap).",
            c.pairs_not_learned as f64,
        );
        t.family(
            "otsensor_stage_latency_seconds",
            "Time from the capture thread to the end of a stage, per batch.",
            Kind::Histogram,
        );
        let mut dissect = new_histogram();
        for w in &self.workers {
            if let Some(h) = w.published.lock().ok().and_then(|p| p.dissect.clone()) {
                let _ = dissect.add(&h);
            }
        }
        t.histogram_from_hdr("otsensor_stage_latency_seconds", &[("stage", "dissect")], &dissect, &LATENCY_BOUNDS);
        t.histogram_from_hdr("otsensor_stage_latency_seconds", &[("stage", "score")], &c.score, &LATENCY_BOUNDS);
    }
}

fn counter(t: &mut TextEncoder, name: &str, help: &str, v: f64) {
    t.family(name, help, Kind::Counter);
    t.sample(name, &[], v);
}

fn gauge(t: &mut TextEncoder, name: &str, help: &str, v: f64) {
    t.family(name, help, Kind::Gauge);
    t.sample(name, &[], v);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a flood of new addresses costs the detector's per-address state, and what the
    /// memory cap left unlearned, are on the page, with their values.
    #[test]
    fn the_requests_not_followed_and_the_pdus_not_learned_are_exported() {
        let t = Telemetry::new(1);
        if let Ok(mut c) = t.coordinator.lock() {
            c.host_scan_untracked = 803_146;
            c.pairs_not_learned = 7;
        }
        let page = t.render();
        assert!(page.contains("\n# TYPE otsensor_host_scan_untracked_requests_total counter\n"), "{page}");
        assert!(page.contains("\notsensor_host_scan_untracked_requests_total 803146\n"), "{page}");
        assert!(page.contains("\notsensor_learn_pdus_not_learned_total 7\n"), "{page}");
    }
}
