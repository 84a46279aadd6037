//! `otsensor report`: one self-contained HTML file about captures, for the engineer who reads
//! it after an incident without tools.
//!
//! The captures run once through the engine into two sinks: a [`Learner`] that collects the
//! inventory (assets with roles and identities, pairs with functions and points) from every
//! PDU, and the scorer of `detect` (with `--baseline`), of `replay` (with `--learn-for`), or
//! a detector of critical operations only (with neither). The page is rendered by
//! [`crate::report`] from capture data alone: no wall-clock time, so the same captures give
//! the same bytes.

use std::io;
use std::path::PathBuf;

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Notice, Pdu, Sink, Timestamp};
use otsensor_models::{Detector, Learner};

use super::detect::{DetectSink, ModelCmdError};
use super::replay::ReplaySink;
use crate::baseline_file::{self, BaselineFileError};
use crate::output::alerts::{ranked_summary, AlertWriter};
use crate::policy::Applier;
use crate::report::{CaptureInfo, ReportData, Scoring};
use crate::run::{run_captures, summary, Progress, RunError};

/// Options of `otsensor report`.
#[derive(Debug)]
pub struct ReportArgs {
    /// Captures, processed in order.
    pub captures: Vec<PathBuf>,
    /// Keys: verify baselines loaded (`--baseline-key`), sign those written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
    /// Score against this baseline file.
    pub baseline: Option<PathBuf>,
    /// Without a baseline: learn this many seconds of capture time, score the rest.
    pub learn_for_secs: Option<f64>,
    /// The HTML file to write.
    pub output: PathBuf,
    /// Policy: the map groups by zone, alerts carry its effects.
    pub policy: Option<PathBuf>,
    /// Engine configuration (ports).
    pub engine: EngineConfig,
    /// Whether to show a progress bar.
    pub progress: bool,
    /// Whether to print the summaries on stderr.
    pub summary: bool,
}

/// Feeds every PDU to the inventory and to the scorer.
struct Tee<'s> {
    inventory: Learner,
    scorer: &'s mut dyn Sink,
}

impl Sink for Tee<'_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self.inventory.pdu(pdu);
        self.scorer.pdu(pdu);
    }
    fn notice(&mut self, n: &Notice) {
        self.inventory.notice(n);
        self.scorer.notice(n);
    }
    fn net(&mut self, e: &otsensor_dissectors::event::NetEvent) {
        self.inventory.net(e);
        self.scorer.net(e);
    }
}

/// Packets and the first and last packet time of each capture: a cheap pass over the
/// captures (the engine does not keep packet times).
fn capture_infos(paths: &[PathBuf]) -> Result<Vec<CaptureInfo>, RunError> {
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let mut reader = crate::run::open_capture(path)?;
        let mut info = CaptureInfo {
            name: path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            packets: 0,
            first: None,
            last: None,
        };
        let mut min: Option<Timestamp> = None;
        let mut max: Option<Timestamp> = None;
        // A corrupt tail is reported by the main pass; the span is what was readable.
        while let Some(Ok(p)) = reader.next_packet() {
            info.packets += 1;
            min = Some(min.map_or(p.ts, |m| m.min(p.ts)));
            max = Some(max.map_or(p.ts, |m| m.max(p.ts)));
        }
        info.first = min;
        info.last = max;
        out.push(info);
    }
    Ok(out)
}

/// Runs the captures and gathers everything the report shows.
pub fn gather(args: &ReportArgs) -> Result<ReportData, ModelCmdError> {
    if args.baseline.is_some() && args.learn_for_secs.is_some() {
        return Err(ModelCmdError::Usage("--baseline and --learn-for exclude each other".into()));
    }
    let captures = capture_infos(&args.captures).map_err(ModelCmdError::Run)?;
    let mut engine = Engine::new(args.engine.clone());
    let mut progress = Progress::new(args.progress);
    let mut out = io::sink();
    let mut writer = AlertWriter::new(&mut out);
    let policy = super::rules::load_policy_opt(&args.policy).map_err(ModelCmdError::Usage)?;
    writer.set_policy(policy.clone().map(Applier::new));
    let criticality = policy.clone().map(Applier::new);
    let configure = |mut d: Detector| {
        if let Some(p) = &criticality {
            p.configure(&mut d);
        }
        d
    };
    let (scoring, run, inventory) = match (&args.baseline, args.learn_for_secs) {
        (Some(path), _) => {
            let baseline = baseline_file::load_with(path, &args.baseline_keys).map_err(ModelCmdError::Baseline)?;
            let detector = configure(
                Detector::new(&baseline)
                    .map_err(|e| ModelCmdError::Baseline(BaselineFileError::Invalid(path.clone(), e)))?,
            );
            let mut sink = DetectSink::new(detector, &mut writer);
            let mut tee = Tee { inventory: crate::memory::capped_learner(), scorer: &mut sink };
            let run = run_captures(&args.captures, &mut engine, &mut tee, &mut progress);
            let inventory = tee.inventory;
            sink.finish();
            let file =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            (Scoring::Baseline { file, learned_secs: baseline.learning.duration_secs }, run, inventory)
        }
        (None, Some(secs)) => {
            let mut sink = ReplaySink::new(secs, &mut writer);
            let mut tee = Tee { inventory: crate::memory::capped_learner(), scorer: &mut sink };
            let run = run_captures(&args.captures, &mut engine, &mut tee, &mut progress);
            let inventory = tee.inventory;
            let scored = sink.finish()?;
            (Scoring::LearnFor { secs, learned_pdus: sink.learned_pdus(), scored }, run, inventory)
        }
        (None, None) => {
            let detector = configure(Detector::critical_only());
            let mut sink = DetectSink::new(detector, &mut writer);
            let mut tee = Tee { inventory: crate::memory::capped_learner(), scorer: &mut sink };
            let run = run_captures(&args.captures, &mut engine, &mut tee, &mut progress);
            let inventory = tee.inventory;
            sink.finish();
            (Scoring::CriticalOnly, run, inventory)
        }
    };
    run.map_err(ModelCmdError::Run)?;
    let mut alerts = writer.alerts().to_vec();
    alerts.sort_by(|a, b| {
        (a.ts_first, a.pkt_first, a.rule_id, &a.summary, a.src.ip, a.dst.ip).cmp(&(
            b.ts_first,
            b.pkt_first,
            b.rule_id,
            &b.summary,
            b.src.ip,
            b.dst.ip,
        ))
    });
    if args.summary {
        eprint!("{}", summary(engine.stats(), progress.elapsed()));
        eprint!("{}", ranked_summary(&alerts));
    }
    Ok(ReportData { captures, scoring, stats: engine.stats().clone(), inventory: inventory.finish(), alerts, policy })
}

/// Runs `report` and writes the HTML file.
pub fn report(args: &ReportArgs) -> Result<(), ModelCmdError> {
    let data = gather(args)?;
    let html = crate::report::render(&data);
    std::fs::write(&args.output, html)
        .map_err(|e| ModelCmdError::Usage(format!("writing {}: {e}", args.output.display())))?;
    if args.summary {
        eprintln!(
            "otsensor: report {} ({} assets, {} pairs, {} alerts)",
            args.output.display(),
            data.inventory.assets.len(),
            data.inventory.pairs.len(),
            data.alerts.len()
        );
    }
    Ok(())
}
