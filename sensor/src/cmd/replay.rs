//! `otsensor replay`: learn from the first part of a capture (capture time), then detect on
//! the rest; forensics with no prior baseline. The engine runs once over the capture, so
//! connections that span the boundary are followed across it.

use std::io::Write;
use std::path::PathBuf;

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{NetEvent, Notice, Pdu, Sink};
use otsensor_models::detect::human_duration;
use otsensor_models::{Baseline, Detector, Learner};

use super::detect::{with_output, ModelCmdError, Sending};
use crate::config::OutputOptions;
use crate::output::alerts::{ranked_summary, AlertWriter};
use crate::run::{run_captures, summary, Progress};

/// Options of `otsensor replay`.
#[derive(Debug)]
pub struct ReplayArgs {
    /// The capture.
    pub capture: PathBuf,
    /// Seconds of capture time to learn from.
    pub learn_for_secs: f64,
    /// Alerts file; stdout when `None`.
    pub alerts: Option<PathBuf>,
    /// Signs the alerts file's checkpoints (`--alerts-key`), if given.
    pub alerts_key: Option<crate::output::chain::SignWith>,
    /// Keys: verify baselines loaded (`--baseline-key`), sign those written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
    /// Where to save the learned baseline, if anywhere.
    pub save_baseline: Option<PathBuf>,
    /// Engine configuration (ports).
    pub engine: EngineConfig,
    /// Policy file applied to the alerts.
    pub policy: Option<PathBuf>,
    /// Whether to show a progress bar.
    pub progress: bool,
    /// Whether to print the summaries on stderr.
    pub summary: bool,
}

/// Parses `90s`, `10m`, `1h`, `1h30m`, `2d` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let bad = || format!("invalid duration {s:?} (use e.g. 90s, 10m, 1h, 1h30m)");
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return if v >= 0.0 { Ok(v) } else { Err(bad()) };
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let v: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += v * match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            _ => return Err(bad()),
        };
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

enum Phase {
    /// Learning, with a watch that alerts what needs no baseline (critical operations,
    /// scans, floods, injection) meanwhile, as `run` does.
    Learning {
        learner: Box<Learner>,
        until_ns: Option<i64>,
        watch: Box<Detector>,
    },
    Detecting(Box<Detector>),
    Failed,
}

/// A sink learning the first part of the capture time and scoring the rest (also used by
/// `otsensor report --learn-for`).
pub(crate) struct ReplaySink<'a, 'w> {
    phase: Phase,
    learn_ns: i64,
    writer: &'a mut AlertWriter<'w>,
    pending: Vec<Alert>,
    baseline: Option<Baseline>,
    learned_pdus: u64,
    error: Option<ModelCmdError>,
    /// Reused to build observations when a policy is checked.
    scratch: otsensor_models::ObservationLog,
}

use otsensor_models::Alert;

impl<'a, 'w> ReplaySink<'a, 'w> {
    /// Learns `learn_secs` of capture time from the first packet, then scores, writing to
    /// `writer`.
    pub(crate) fn new(learn_secs: f64, writer: &'a mut AlertWriter<'w>) -> Self {
        ReplaySink {
            phase: Phase::Learning {
                learner: {
                    let mut l = Box::<Learner>::default();
                    crate::memory::limits().apply_to_learner(&mut l);
                    l
                },
                until_ns: None,
                watch: Box::new(Detector::critical_only()),
            },
            learn_ns: (learn_secs * 1e9) as i64,
            writer,
            pending: Vec::new(),
            baseline: None,
            learned_pdus: 0,
            error: None,
            scratch: otsensor_models::ObservationLog::new(),
        }
    }

    /// Ends the run: closes and writes the last alerts, or, when the capture was not longer
    /// than the learning time, ends learning (then the result is `Ok(false)`: nothing was
    /// scored).
    pub(crate) fn finish(&mut self) -> Result<bool, ModelCmdError> {
        let mut scored = true;
        match &mut self.phase {
            Phase::Detecting(d) => {
                d.finish(&mut self.pending);
                self.writer.write(&mut self.pending);
            }
            Phase::Learning { .. } => {
                scored = false;
                self.switch();
            }
            Phase::Failed => {}
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(scored),
        }
    }

    /// PDUs learned so far.
    pub(crate) fn learned_pdus(&self) -> u64 {
        self.learned_pdus
    }

    fn switch(&mut self) {
        let Phase::Learning { learner, mut watch, .. } = std::mem::replace(&mut self.phase, Phase::Failed) else {
            return;
        };
        watch.finish(&mut self.pending);
        self.writer.write(&mut self.pending);
        let mut baseline = learner.finish();
        // Seal and verify as a file would be, so replay scores exactly what detect would.
        let text = baseline.to_json();
        match Baseline::from_json(&text).and_then(|b| Detector::new(&b).map(|d| (b, d))) {
            Ok((b, mut d)) => {
                d.set_max_new_pairs(crate::memory::limits().max_new_pairs);
                d.set_max_clients(crate::memory::limits().max_clients);
                if let Some(p) = self.writer.policy() {
                    p.configure(&mut d);
                }
                self.baseline = Some(b);
                self.phase = Phase::Detecting(Box::new(d));
            }
            Err(e) => {
                self.error = Some(ModelCmdError::Usage(format!("learned baseline refused: {e}")));
            }
        }
    }
}

impl ReplaySink<'_, '_> {
    /// Whether packet time `ns` is still in the learning window, which starts at the first
    /// packet that gave anything (a conversation, an ARP packet or a PDU); ends learning
    /// when it is not.
    fn learning(&mut self, ns: i64) -> bool {
        if let Phase::Learning { until_ns, .. } = &mut self.phase {
            let until = *until_ns.get_or_insert(ns.saturating_add(self.learn_ns));
            if ns < until {
                return true;
            }
            self.switch();
        }
        false
    }
}

impl Sink for ReplaySink<'_, '_> {
    fn net(&mut self, e: &NetEvent) {
        if self.learning(e.ts().as_nanos()) {
            if let Phase::Learning { learner, watch, .. } = &mut self.phase {
                learner.net(e);
                watch.net(e);
            }
        } else if let Phase::Detecting(d) = &mut self.phase {
            d.net(e);
        }
    }
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        if self.learning(pdu.ts.as_nanos()) {
            if let Phase::Learning { learner, watch, .. } = &mut self.phase {
                learner.pdu(pdu);
                watch.pdu(pdu);
                self.learned_pdus += 1;
            }
            return;
        }
        if let Phase::Detecting(d) = &mut self.phase {
            crate::policy::observe_pdu(d, self.writer.policy_mut(), pdu, &mut self.scratch);
            if d.pdus() % 4096 == 0 {
                d.drain(&mut self.pending);
                if !self.pending.is_empty() {
                    self.writer.write(&mut self.pending);
                }
            }
        }
    }
    fn notice(&mut self, n: &Notice) {
        match &mut self.phase {
            Phase::Learning { learner, until_ns, watch } => {
                if until_ns.map_or(true, |u| n.ts.as_nanos() < u) {
                    learner.notice(n);
                    watch.notice(n);
                }
            }
            Phase::Detecting(d) => d.notice(n),
            Phase::Failed => {}
        }
    }
}

/// Runs `replay`.
pub fn replay(args: &ReplayArgs) -> Result<(), ModelCmdError> {
    with_output(&args.alerts, |out| replay_to(args, out))
}

/// Runs `replay` with `--output` destinations.
pub fn replay_with(args: &ReplayArgs, o: &OutputOptions) -> Result<(), ModelCmdError> {
    let sending = Sending::start(o)?;
    let result = with_output(&args.alerts, |out| replay_out(args, out, &sending));
    sending.finish(args.summary);
    result
}

/// Runs `replay`, writing alerts to `out`.
pub fn replay_to(args: &ReplayArgs, out: &mut dyn Write) -> Result<(), ModelCmdError> {
    replay_out(args, out, &Sending::default())
}

fn replay_out(args: &ReplayArgs, out: &mut dyn Write, sending: &Sending) -> Result<(), ModelCmdError> {
    let mut engine = Engine::new(args.engine.clone());
    let mut writer = AlertWriter::new(out);
    sending.configure(&mut writer);
    writer.set_policy(super::detect::policy_of(&args.policy)?);
    writer.set_chain(
        args.alerts.as_ref().map(|_| crate::output::chain::Chain::new().signed_with(args.alerts_key.as_ref())),
    );
    let mut sink = ReplaySink::new(args.learn_for_secs, &mut writer);
    let mut progress = Progress::new(args.progress);
    let run = run_captures(std::slice::from_ref(&args.capture), &mut engine, &mut sink, &mut progress);
    let mut note = String::new();
    if !sink.finish()? {
        note = format!(
            "otsensor: the capture is not longer than --learn-for ({}); everything was learned, nothing scored\n",
            human_duration(args.learn_for_secs)
        );
    }
    if let (Some(path), Some(b)) = (&args.save_baseline, sink.baseline.as_mut()) {
        crate::baseline_file::save_with(path, b, &args.baseline_keys).map_err(ModelCmdError::Baseline)?;
    }
    let learned = sink.learned_pdus;
    let write_result = writer.finish();
    if args.summary {
        eprint!("{}", summary(engine.stats(), progress.elapsed()));
        eprint!("{note}");
        eprintln!(
            "otsensor: learned from the first {} of capture time ({learned} PDUs), scored the rest",
            human_duration(args.learn_for_secs)
        );
        eprint!("{}", ranked_summary(writer.alerts()));
    }
    run.map_err(ModelCmdError::Run)?;
    write_result.map_err(ModelCmdError::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("10m"), Ok(600.0));
        assert_eq!(parse_duration("1h30m"), Ok(5400.0));
        assert_eq!(parse_duration("45"), Ok(45.0));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("m").is_err());
    }
}
