//! `otsensor learn`: captures in, a baseline file out.
//!
//! When the baseline file exists, learning continues from it (its checksum is verified
//! first) unless `--fresh` is given; the result replaces it atomically.

use std::net::IpAddr;
use std::path::PathBuf;

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{NetEvent, Notice, Pdu, Sink};
use otsensor_models::detect::human_duration;
use otsensor_models::model::PairKey;
use otsensor_models::Learner;

use super::detect::ModelCmdError;
use crate::baseline_file;
use crate::run::{run_captures, summary, Progress};

/// Options of `otsensor learn`.
#[derive(Debug)]
pub struct LearnArgs {
    /// Captures, processed in order.
    pub captures: Vec<PathBuf>,
    /// The baseline file to write (and to continue from, if it exists).
    pub baseline: PathBuf,
    /// Start from nothing even if the file exists.
    pub fresh: bool,
    /// Clients whose conversations are not learned (a known scanner, a pentester's laptop,
    /// or an attacker in a labelled capture).
    pub exclude_clients: Vec<IpAddr>,
    /// Keys: verify baselines loaded (`--baseline-key`), sign those written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
    /// Engine configuration (ports).
    pub engine: EngineConfig,
    /// Whether to show a progress bar.
    pub progress: bool,
    /// Whether to print the summaries on stderr.
    pub summary: bool,
}

/// A sink feeding a learner, leaving out excluded clients.
pub(crate) struct LearnSink<'a> {
    pub(crate) learner: &'a mut Learner,
    pub(crate) exclude: &'a [IpAddr],
}

impl Sink for LearnSink<'_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        if !self.exclude.is_empty() && self.exclude.contains(&PairKey::of(pdu).client) {
            return;
        }
        self.learner.pdu(pdu);
    }
    fn notice(&mut self, n: &Notice) {
        if self.exclude.contains(&n.src.ip) || self.exclude.contains(&n.dst.ip) {
            return;
        }
        self.learner.notice(n);
    }
    fn net(&mut self, e: &NetEvent) {
        if !self.exclude.is_empty() && excluded(self.exclude, e) {
            return;
        }
        self.learner.net(e);
    }
}

/// Whether a network event involves an excluded client.
fn excluded(exclude: &[IpAddr], e: &NetEvent) -> bool {
    match e {
        NetEvent::Flow(f) => exclude.contains(&f.client.ip),
        NetEvent::Arp(a) => exclude.contains(&IpAddr::V4(a.sender_ip)),
        NetEvent::L2(_) => false,
    }
}

/// Runs `learn`.
pub fn learn(args: &LearnArgs) -> Result<(), ModelCmdError> {
    let continuing = !args.fresh && args.baseline.exists();
    let mut learner = if continuing {
        let b = baseline_file::load_with(&args.baseline, &args.baseline_keys).map_err(ModelCmdError::Baseline)?;
        Learner::continue_from(&b)
            .map_err(|e| ModelCmdError::Baseline(baseline_file::BaselineFileError::Invalid(args.baseline.clone(), e)))?
    } else {
        Learner::new()
    };
    crate::memory::limits().apply_to_learner(&mut learner);
    let mut engine = Engine::new(args.engine.clone());
    let mut progress = Progress::new(args.progress);
    let mut sink = LearnSink { learner: &mut learner, exclude: &args.exclude_clients };
    let run = run_captures(&args.captures, &mut engine, &mut sink, &mut progress);
    // A capture error stops learning before anything is written: a partial baseline would
    // make everything after the error look new.
    run.map_err(ModelCmdError::Run)?;
    learner.add_packets(engine.stats().packets);
    let secs = learner.run_secs();
    let not_learned = learner.pairs_not_learned();
    if learner.run_pdus() == 0 {
        // Not an error (a quiet capture is a fact), but a baseline of nothing makes every
        // later conversation new.
        eprintln!("otsensor: warning: no Modbus, DNP3 or S7 message in the captures; nothing learned (check --modbus-ports, --dnp3-ports, --s7-ports)");
    }
    let mut baseline = learner.finish();
    let bytes = baseline_file::save_with(&args.baseline, &mut baseline, &args.baseline_keys)
        .map_err(ModelCmdError::Baseline)?;
    if args.summary {
        eprint!("{}", summary(engine.stats(), progress.elapsed()));
        eprintln!(
            "otsensor: {} {} of capture time: {} assets, {} pairs{}; baseline {} ({} bytes, {} runs, {} learned in all)",
            if continuing { "continued learning with" } else { "learned" },
            human_duration(secs),
            baseline.assets.len(),
            baseline.pairs.len(),
            if baseline.model.is_some() { ", statistical model fitted" } else { ", too few windows for the statistical model" },
            args.baseline.display(),
            bytes,
            baseline.learning.runs,
            human_duration(baseline.learning.duration_secs),
        );
        if not_learned > 0 {
            eprintln!(
                "  memory bounds: {not_learned} PDUs of new pairs not learned (the baseline held the {} pairs it may: \
                 {} at most, fewer under --memory-cap)",
                baseline.pairs.len(),
                otsensor_models::learn::MAX_LEARNED_PAIRS
            );
        }
    }
    Ok(())
}
