//! The coordinator: the one place that learns and scores, in global packet order.
//!
//! It learns in packet time until the baseline holds `learn_for` seconds, then switches to
//! detection by itself. While learning it still alerts critical operations (and does not
//! learn them as normal), and it warns when novelty bursts late in learning. It checkpoints
//! the baseline atomically on a wall-clock period and when it stops, writes alerts as JSON
//! lines flushed at least every second, and holds back the timing rules while capture
//! loses packets.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use otsensor_dissectors::event::{NetEvent, Notice, Timestamp};
use otsensor_models::detect::human_duration;
use otsensor_models::{Alert, Baseline, Detector, Learner, Observation};

use super::merge::{Finding, Merger};
use crate::baseline_file::{self, BaselineFileError};
use crate::metrics::registry::Telemetry;
use crate::output::alerts::{AlertFormat, AlertWriter, LineKind};
use crate::output::chain::Chain;
use crate::output::fleet::Fleet;
use crate::output::sinks::Outputs;
use crate::policy::Applier;

/// Hand closed alerts to the writer every this many PDUs (as `detect` does).
const DRAIN_EVERY: u64 = 4096;
/// Alerts reach the file at least this often.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Packet time between two looks at how much is still new while learning.
const NOVELTY_PERIOD_NS: i64 = 60 * 1_000_000_000;

/// When alerts are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertTiming {
    /// When their fold closes, with their final count (as `detect` writes them).
    OnClose,
    /// As soon as they open; again with `"update": true` when they close having folded
    /// more occurrences (live capture: an alert must not wait a fold window).
    OnOpen,
}

/// What the coordinator needs to know.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// Baseline file: continued from when it exists, checkpointed to.
    pub baseline: PathBuf,
    /// Keys: verify baselines loaded (`--baseline-key`), sign those written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
    /// Seconds of packet time to learn in all (earlier runs included).
    pub learn_for_secs: f64,
    /// Wall-clock period between checkpoints.
    pub checkpoint: Duration,
    /// When alerts are written.
    pub timing: AlertTiming,
    /// Policy file applied to the alerts.
    pub policy: Option<PathBuf>,
    /// Set (by SIGHUP) to reload the policy file; a file that fails validation is refused
    /// and the policy in force stays.
    pub reload_policy: Arc<AtomicBool>,
    /// Network outputs every alert is queued for (and, with Kafka, assets and traffic).
    pub outputs: Option<Arc<Outputs>>,
    /// Format of the alert lines written to the file or stdout.
    pub alert_format: AlertFormat,
}

/// Learning or detecting.
enum Mode {
    Learning(Box<Learning>),
    Detecting(Box<Detector>),
}

struct Learning {
    learner: Learner,
    /// Alerts critical operations while learning.
    watch: Detector,
    /// Packet time learned before this run.
    base_secs: f64,
    first_ns: Option<i64>,
    novelty: Novelty,
}

/// What was new in the last novelty period, to warn of a late burst.
#[derive(Default)]
struct Novelty {
    next_ns: Option<i64>,
    pairs: usize,
    functions: usize,
}

/// Why the coordinator could not go on.
#[derive(Debug)]
pub enum CoordinatorError {
    /// The baseline could not be read or written.
    Baseline(BaselineFileError),
    /// Alerts could not be written.
    Output(io::Error),
    /// The policy file was refused.
    Policy(String),
}

impl std::fmt::Display for CoordinatorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CoordinatorError::Baseline(e) => write!(f, "baseline {e}"),
            CoordinatorError::Output(e) => write!(f, "writing alerts: {e}"),
            CoordinatorError::Policy(e) => write!(f, "policy: {e}"),
        }
    }
}

impl std::error::Error for CoordinatorError {}

/// The scoring state, apart from the merge (so both can be borrowed at once).
pub struct Coordinator<'w> {
    config: CoordinatorConfig,
    mode: Mode,
    writer: AlertWriter<'w>,
    pending: Vec<Alert>,
    telemetry: Arc<Telemetry>,
    /// Packets merged so far, and how many of them the learner has counted.
    packets_merged: u64,
    packets_learned: u64,
    last_flush: Instant,
    last_checkpoint: Instant,
    loss: bool,
    error: Option<CoordinatorError>,
    /// The alerts file, to sync at checkpoints (a second handle on it).
    durable: Option<std::fs::File>,
    /// Assets and traffic summaries for Kafka, with the outputs they go to.
    fleet: Option<(Fleet, Arc<Outputs>)>,
}

impl<'w> Coordinator<'w> {
    /// Starts from the baseline file when it exists: detecting if it holds `learn_for`
    /// already, else learning on from it; from nothing otherwise.
    pub fn new(
        config: CoordinatorConfig,
        out: &'w mut dyn Write,
        file: Option<(std::fs::File, Chain)>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, CoordinatorError> {
        let (durable, chain) = file.map_or((None, None), |(f, c)| (Some(f), Some(c)));
        let existing = match config.baseline.try_exists() {
            Ok(true) => Some(
                baseline_file::load_with(&config.baseline, &config.baseline_keys)
                    .map_err(CoordinatorError::Baseline)?,
            ),
            _ => None,
        };
        if let (Some(b), Ok(mut c)) = (&existing, telemetry.coordinator.lock()) {
            c.learned_secs = b.learning.duration_secs;
        }
        let mode = match existing {
            Some(b) if b.learning.duration_secs >= config.learn_for_secs => detecting(&config, &b)?,
            Some(b) => {
                eprintln!(
                    "otsensor: continuing to learn from {} ({} of {} learned)",
                    config.baseline.display(),
                    human_duration(b.learning.duration_secs),
                    human_duration(config.learn_for_secs)
                );
                let learner = Learner::continue_from(&b)
                    .map_err(|e| CoordinatorError::Baseline(BaselineFileError::Invalid(config.baseline.clone(), e)))?;
                learning(learner, b.learning.duration_secs)
            }
            None if config.learn_for_secs <= 0.0 => {
                return Err(CoordinatorError::Baseline(BaselineFileError::Io(
                    config.baseline.clone(),
                    io::Error::new(io::ErrorKind::NotFound, "no baseline to detect against (learn first: --learn-for)"),
                )))
            }
            None => learning(Learner::new(), 0.0),
        };
        let mut writer = AlertWriter::new(out);
        writer.set_chain(chain);
        writer.set_outputs(config.outputs.clone());
        writer.set_format(config.alert_format);
        if let Some(p) = &config.policy {
            let policy = crate::cmd::rules::load_policy(p).map_err(CoordinatorError::Policy)?;
            writer.set_policy(Some(Applier::new(policy)));
        }
        let now = Instant::now();
        let mut c = Coordinator {
            config,
            mode,
            writer,
            pending: Vec::new(),
            telemetry,
            packets_merged: 0,
            packets_learned: 0,
            last_flush: now,
            last_checkpoint: now,
            loss: false,
            error: None,
            durable,
            fleet: None,
        };
        c.fleet = c.config.outputs.clone().filter(|o| o.wants_fleet()).map(|o| (Fleet::default(), o));
        c.set_report_on_open();
        c.publish_baseline_state();
        Ok(c)
    }

    /// Sets up the detector in use: alerts on open, asset criticality from the policy.
    fn set_report_on_open(&mut self) {
        let on_open = self.config.timing == AlertTiming::OnOpen;
        let d = match &mut self.mode {
            Mode::Learning(l) => &mut l.watch,
            Mode::Detecting(d) => d.as_mut(),
        };
        d.report_on_open(on_open);
        if let Some(p) = self.writer.policy() {
            p.configure(d);
        }
    }

    /// Reloads the policy file (SIGHUP); keeps the one in force when the new one is refused.
    fn reload_policy(&mut self) {
        let Some(path) = self.config.policy.clone() else { return };
        match crate::cmd::rules::load_policy(&path) {
            Ok(p) => {
                eprintln!("otsensor: policy reloaded: {}", crate::cmd::rules::describe(&p));
                self.writer.set_policy(Some(Applier::new(p)));
                self.set_report_on_open();
            }
            Err(e) => eprintln!("otsensor: error: policy not reloaded, the previous one stays: {e}"),
        }
    }

    /// Applies one finding.
    pub fn apply(&mut self, f: Finding<'_>) {
        match f {
            Finding::Observation(obs) => self.observe(&obs),
            Finding::Notice(n) => self.notice(&n),
            Finding::Net(e) => self.net(&e),
        }
    }

    fn net(&mut self, e: &NetEvent) {
        let pkt = match e {
            NetEvent::Flow(f) => f.pkt,
            NetEvent::Arp(a) => a.pkt,
            NetEvent::L2(l) => l.pkt,
        };
        self.advance_learning(e.ts(), pkt);
        match &mut self.mode {
            Mode::Learning(l) => {
                l.learner.net(e);
                l.watch.net(e);
            }
            Mode::Detecting(d) => d.net(e),
        }
        self.write_opened();
    }

    /// Ends learning when packet time `ts` is past the planned learning time (counted from
    /// the first packet that gave anything: a conversation, an ARP packet or a PDU).
    fn advance_learning(&mut self, ts: Timestamp, pkt: u64) {
        let ns = ts.as_nanos();
        if let Mode::Learning(l) = &mut self.mode {
            let first = *l.first_ns.get_or_insert(ns);
            let learned = l.base_secs + (ns - first) as f64 * 1e-9;
            if learned >= self.config.learn_for_secs {
                self.switch_to_detection(ts, pkt);
            }
        }
    }

    fn observe(&mut self, obs: &Observation<'_>) {
        if let Some((f, o)) = &mut self.fleet {
            f.observe(obs, &mut |t, b| o.append(t, b));
        }
        let ns = obs.ts.as_nanos();
        self.advance_learning(obs.ts, obs.pkt);
        match &mut self.mode {
            Mode::Learning(l) => {
                l.watch.observe(obs);
                // A critical operation is alerted, never learned as normal.
                if !(obs.is_request && obs.critical.is_some()) {
                    l.learner.observe(obs);
                }
                l.check_novelty(ns, self.config.learn_for_secs);
            }
            Mode::Detecting(d) => {
                crate::policy::observe(d, self.writer.policy_mut(), obs);
                if d.pdus() % DRAIN_EVERY == 0 {
                    d.drain(&mut self.pending);
                    self.write_pending(LineKind::Closed);
                }
            }
        }
        self.write_opened();
    }

    fn notice(&mut self, n: &Notice) {
        match &mut self.mode {
            Mode::Learning(l) => {
                l.learner.notice(n);
                l.watch.notice(n);
            }
            Mode::Detecting(d) => d.notice(n),
        }
        self.write_opened();
    }

    /// Writes the alerts that opened just now, in on-open timing.
    fn write_opened(&mut self) {
        if self.config.timing != AlertTiming::OnOpen {
            return;
        }
        match &mut self.mode {
            Mode::Learning(l) => l.watch.drain_opened(&mut self.pending),
            Mode::Detecting(d) => d.drain_opened(&mut self.pending),
        }
        if !self.pending.is_empty() {
            self.write_pending(LineKind::Opened);
        }
    }

    fn switch_to_detection(&mut self, ts: Timestamp, pkt: u64) {
        let packets = self.new_packets();
        let Mode::Learning(l) = &mut self.mode else { return };
        l.learner.add_packets(packets);
        l.watch.finish(&mut self.pending);
        let learner = std::mem::take(&mut l.learner);
        let mut baseline = learner.finish();
        match self.save(&mut baseline) {
            Ok(()) => {}
            Err(e) => self.error = Some(e),
        }
        eprintln!(
            "otsensor: learned {} ({} pairs, {} PDUs); detecting from packet {} ({})",
            human_duration(baseline.learning.duration_secs),
            baseline.pairs.len(),
            baseline.learning.pdus,
            pkt,
            ts.as_secs_f64()
        );
        if let Ok(mut c) = self.telemetry.coordinator.lock() {
            c.learned_secs = baseline.learning.duration_secs;
        }
        match Detector::new(&baseline) {
            Ok(mut d) => {
                d.set_max_new_pairs(crate::memory::limits().max_new_pairs);
                d.set_max_clients(crate::memory::limits().max_clients);
                self.mode = Mode::Detecting(Box::new(d));
            }
            Err(e) => {
                self.error =
                    Some(CoordinatorError::Baseline(BaselineFileError::Invalid(self.config.baseline.clone(), e)));
            }
        }
        self.set_report_on_open();
        self.write_pending(LineKind::Closed);
        self.publish_baseline_state();
    }

    fn save(&mut self, baseline: &mut Baseline) -> Result<(), CoordinatorError> {
        let saved = baseline_file::save_with(&self.config.baseline, baseline, &self.config.baseline_keys);
        if let (Err(_), Ok(mut c)) = (&saved, self.telemetry.coordinator.lock()) {
            c.checkpoint_failures += 1;
        }
        let bytes = saved.map_err(CoordinatorError::Baseline)?;
        if let Ok(mut c) = self.telemetry.coordinator.lock() {
            c.baseline_written = Some(SystemTime::now());
            c.baseline_bytes = bytes as u64;
        }
        Ok(())
    }

    fn write_pending(&mut self, kind: LineKind) {
        let kind = match (kind, self.config.timing) {
            (LineKind::Closed, AlertTiming::OnOpen) => LineKind::Update,
            (k, _) => k,
        };
        if kind == LineKind::Update {
            // Written when it opened; only a fold that grew has news.
            self.pending.retain(|a| a.count > 1);
        }
        if self.pending.is_empty() {
            return;
        }
        if let Ok(mut c) = self.telemetry.coordinator.lock() {
            if kind != LineKind::Update {
                c.count_alerts(&self.pending);
            }
        }
        self.writer.set_capture_loss(self.loss || self.timing_held());
        self.writer.write_kind(&mut self.pending, kind);
    }

    fn timing_held(&self) -> bool {
        match &self.mode {
            Mode::Detecting(d) => d.timing_held(),
            Mode::Learning(_) => false,
        }
    }

    /// Packets merged so far, for the baseline's count.
    pub fn set_packets(&mut self, merged: u64) {
        self.packets_merged = merged;
    }

    /// Packets merged since the learner last counted them.
    fn new_packets(&mut self) -> u64 {
        let n = self.packets_merged.saturating_sub(self.packets_learned);
        self.packets_learned = self.packets_merged;
        n
    }

    /// Wall-clock work: closed alerts out, flush, capture loss, checkpoints, metrics.
    pub fn housekeeping(&mut self) {
        if self.config.reload_policy.swap(false, Ordering::Relaxed) {
            self.reload_policy();
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.last_flush = Instant::now();
            self.drain_closed();
            self.flush();
            self.update_loss();
            if let Some((f, o)) = &mut self.fleet {
                f.publish_assets(&mut |t, b| o.append(t, b));
            }
        }
        if self.last_checkpoint.elapsed() >= self.config.checkpoint {
            self.last_checkpoint = Instant::now();
            self.checkpoint();
        }
    }

    fn drain_closed(&mut self) {
        if let Mode::Detecting(d) = &mut self.mode {
            d.drain(&mut self.pending);
        }
        self.write_pending(LineKind::Closed);
    }

    fn flush(&mut self) {
        if let Err(e) = self.writer.flush() {
            self.error.get_or_insert(CoordinatorError::Output(e));
        }
    }

    fn update_loss(&mut self) {
        let loss = self.telemetry.loss_now.load(Ordering::Relaxed);
        if loss == self.loss {
            return;
        }
        self.loss = loss;
        if let Mode::Detecting(d) = &mut self.mode {
            d.set_capture_loss(loss);
            if loss {
                eprintln!("otsensor: warning: capture is losing packets: timing and absence rules are held back");
            } else {
                eprintln!(
                    "otsensor: capture loss ended: timing and absence rules resume one window later ({} occurrences held back)",
                    d.held_back()
                );
            }
        }
        if let Ok(mut c) = self.telemetry.coordinator.lock() {
            c.capture_loss = loss;
        }
    }

    /// Saves what has been learned so far (nothing to save while detecting).
    pub fn checkpoint(&mut self) {
        let packets = self.new_packets();
        if let Mode::Learning(l) = &mut self.mode {
            l.learner.add_packets(packets);
            let mut b = l.learner.snapshot();
            if let Err(e) = self.save(&mut b) {
                eprintln!("otsensor: error: checkpoint: {e}");
            }
        }
        self.flush();
        if let Some(Err(e)) = self.durable.as_ref().map(std::fs::File::sync_data) {
            self.error.get_or_insert(CoordinatorError::Output(e));
        }
    }

    /// Ends the run: a last checkpoint, every fold closed and written, the summary.
    pub fn finish(mut self) -> Result<Vec<Alert>, CoordinatorError> {
        self.checkpoint();
        match &mut self.mode {
            Mode::Learning(l) => {
                eprintln!(
                    "otsensor: still learning: {} of {} learned, saved to {}",
                    human_duration(l.learner.learned_secs()),
                    human_duration(self.config.learn_for_secs),
                    self.config.baseline.display()
                );
                l.watch.finish(&mut self.pending);
            }
            Mode::Detecting(d) => d.finish(&mut self.pending),
        }
        self.write_pending(LineKind::Closed);
        self.flush();
        if let Some((f, o)) = &mut self.fleet {
            f.finish(&mut |t, b| o.append(t, b));
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.writer.finish().map_err(CoordinatorError::Output)?;
        Ok(self.writer.alerts().to_vec())
    }

    /// A write or baseline error that should stop the run.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn publish_baseline_state(&self) {
        if let Ok(mut c) = self.telemetry.coordinator.lock() {
            c.detecting = matches!(self.mode, Mode::Detecting(_));
            if c.baseline_written.is_none() {
                let meta = std::fs::metadata(&self.config.baseline).ok();
                c.baseline_written = meta.as_ref().and_then(|m| m.modified().ok());
                c.baseline_bytes = meta.map_or(0, |m| m.len());
            }
        }
    }

    /// Takes the merger's latency samples and counters into the metrics.
    pub fn publish(&mut self, merger: &mut Merger) {
        if let Ok(mut c) = self.telemetry.coordinator.lock() {
            merger.take_latency(&mut c.score);
            c.learn_for_secs = self.config.learn_for_secs;
            match &self.mode {
                Mode::Detecting(d) => {
                    c.held_back = d.held_back();
                    c.host_scan_untracked = d.clients_untracked();
                }
                Mode::Learning(l) => {
                    c.learned_secs = l.learner.learned_secs();
                    c.pairs_not_learned = l.learner.pairs_not_learned();
                }
            }
        }
    }
}

fn detecting(config: &CoordinatorConfig, b: &Baseline) -> Result<Mode, CoordinatorError> {
    eprintln!(
        "otsensor: detecting against {} ({} learned, {} pairs)",
        config.baseline.display(),
        human_duration(b.learning.duration_secs),
        b.pairs.len()
    );
    let mut d = Detector::new(b)
        .map_err(|e| CoordinatorError::Baseline(BaselineFileError::Invalid(config.baseline.clone(), e)))?;
    d.set_max_new_pairs(crate::memory::limits().max_new_pairs);
    d.set_max_clients(crate::memory::limits().max_clients);
    Ok(Mode::Detecting(Box::new(d)))
}

fn learning(mut learner: Learner, base_secs: f64) -> Mode {
    crate::memory::limits().apply_to_learner(&mut learner);
    Mode::Learning(Box::new(Learning {
        learner,
        watch: Detector::critical_only(),
        base_secs,
        first_ns: None,
        novelty: Novelty::default(),
    }))
}

impl Learning {
    /// Warns when, past half of the learning time, a period brings many new pairs or
    /// function codes: an attacker present during learning poisons the baseline.
    fn check_novelty(&mut self, ns: i64, learn_for: f64) {
        let next = *self.novelty.next_ns.get_or_insert(ns + NOVELTY_PERIOD_NS);
        if ns < next {
            return;
        }
        self.novelty.next_ns = Some(ns + NOVELTY_PERIOD_NS);
        let (pairs, functions) = (self.learner.pairs(), self.learner.functions());
        let new_pairs = pairs.saturating_sub(self.novelty.pairs);
        let new_functions = functions.saturating_sub(self.novelty.functions);
        let learned = self.base_secs + self.first_ns.map_or(0.0, |f| (ns - f) as f64 * 1e-9);
        let late = learned >= 0.5 * learn_for;
        let burst = |new: usize, before: usize| new >= 3 && new * 5 >= before;
        if late && (burst(new_pairs, self.novelty.pairs) || burst(new_functions, self.novelty.functions)) {
            eprintln!(
                "otsensor: warning: {new_pairs} new pairs and {new_functions} new function codes in the last minute of \
                 packet time, {} into {} of learning: review the baseline before trusting it (an attacker present \
                 while learning is learned as normal)",
                human_duration(learned),
                human_duration(learn_for)
            );
        }
        self.novelty.pairs = pairs;
        self.novelty.functions = functions;
    }
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::engine::{Engine, EngineConfig};
    use otsensor_dissectors::event::{Pdu, Timestamp};
    use otsensor_dissectors::packet::linktype;
    use otsensor_models::ObservationLog;

    use super::*;

    /// A raw IPv4/TCP packet from 10.0.0.9:40000 to 10.0.0.2:502 carrying `payload`.
    fn packet(payload: &[u8]) -> Vec<u8> {
        crate::testutil::modbus_segment([10, 0, 0, 9], [10, 0, 0, 2], payload)
    }

    #[test]
    fn alerts_written_while_capture_loses_packets_say_so() {
        let dir = std::env::temp_dir().join(format!("otsensor-coord-loss-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("b.json");
        let mut empty = Learner::new().finish();
        baseline_file::save(&path, &mut empty).expect("baseline saved");
        let telemetry = Arc::new(Telemetry::new(1));
        let config = CoordinatorConfig {
            baseline_keys: Default::default(),
            baseline: path,
            learn_for_secs: 0.0,
            checkpoint: Duration::from_secs(3600),
            timing: AlertTiming::OnOpen,
            policy: None,
            reload_policy: Arc::default(),
            outputs: None,
            alert_format: AlertFormat::Json,
        };
        let mut out = Vec::new();
        {
            let mut c = Coordinator::new(config, &mut out, None, Arc::clone(&telemetry)).expect("coordinator");
            telemetry.loss_now.store(true, Ordering::Relaxed);
            c.update_loss();
            // MBAP: transaction 1, protocol 0, length 6, unit 1; FC 8 restart communications.
            let restart = packet(&[0, 1, 0, 0, 0, 6, 1, 8, 0, 1, 0, 0]);
            let mut log = ObservationLog::new();
            let mut engine = Engine::new(EngineConfig::default());
            let ts = Timestamp { secs: 1_700_000_000, nanos: 0 };
            engine.process(ts, 1, linktype::RAW, &restart, &mut |p: &Pdu<'_>| {
                log.push(p);
            });
            let obs = log.get(0).expect("the restart was dissected");
            c.apply(Finding::Observation(obs));
            c.finish().expect("finished");
        }
        let text = String::from_utf8(out).expect("UTF-8");
        let restart = text.lines().find(|l| l.contains("\"id\":\"modbus.cold_restart\"")).expect("restart alerted");
        assert!(restart.contains("\"capture_loss\":true"), "{restart}");
        let loss = telemetry.coordinator.lock().map(|c| c.capture_loss).unwrap_or(false);
        assert!(loss, "the metric says capture loss");
        std::fs::remove_dir_all(&dir).ok();
    }
}
