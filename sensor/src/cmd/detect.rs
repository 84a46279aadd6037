//! `otsensor detect`: captures scored against a baseline; alerts as JSON lines.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{NetEvent, Notice, Pdu, Sink};
use otsensor_models::{Alert, Detector};

use crate::baseline_file::{self, BaselineFileError};
use crate::config::OutputOptions;
use crate::output::alerts::AlertFormat;
use crate::output::alerts::{ranked_summary, AlertWriter};
use crate::output::append_file::AppendFile;
use crate::output::chain::Chain;
use crate::output::sinks::Outputs;
use crate::policy::Applier;
use crate::run::{run_captures, summary, Progress, RunError};

/// Hand closed alerts to the writer every this many PDUs.
const DRAIN_EVERY: u64 = 4096;

/// Why `learn`, `detect` or `replay` failed.
#[derive(Debug)]
pub enum ModelCmdError {
    /// Reading a capture failed.
    Run(RunError),
    /// The baseline could not be read, verified or written.
    Baseline(BaselineFileError),
    /// Writing alerts failed.
    Output(io::Error),
    /// A bad argument.
    Usage(String),
}

impl std::fmt::Display for ModelCmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelCmdError::Run(e) => e.fmt(f),
            ModelCmdError::Baseline(e) => write!(f, "baseline {e}"),
            ModelCmdError::Output(e) => write!(f, "writing alerts: {e}"),
            ModelCmdError::Usage(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ModelCmdError {}

impl ModelCmdError {
    /// Whether this is a closed pipe on stdout (`| head`), which is not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, ModelCmdError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Options of `otsensor detect`.
#[derive(Debug)]
pub struct DetectArgs {
    /// Captures, processed in order.
    pub captures: Vec<PathBuf>,
    /// The baseline file.
    pub baseline: PathBuf,
    /// Alerts file; stdout when `None`.
    pub alerts: Option<PathBuf>,
    /// Signs the alerts file's checkpoints (`--alerts-key`), if given.
    pub alerts_key: Option<crate::output::chain::SignWith>,
    /// Keys: verify baselines loaded (`--baseline-key`), sign those written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
    /// Engine configuration (ports).
    pub engine: EngineConfig,
    /// Policy file applied to the alerts.
    pub policy: Option<PathBuf>,
    /// Whether to show a progress bar.
    pub progress: bool,
    /// Whether to print the summaries on stderr.
    pub summary: bool,
}

/// Loads the policy a command names, if any.
pub(crate) fn policy_of(path: &Option<PathBuf>) -> Result<Option<Applier>, ModelCmdError> {
    match path {
        Some(p) => super::rules::load_policy(p).map(|p| Some(Applier::new(p))).map_err(ModelCmdError::Usage),
        None => Ok(None),
    }
}

/// A sink scoring PDUs and writing alerts as they close.
pub(crate) struct DetectSink<'a, 'w> {
    pub(crate) detector: Detector,
    pub(crate) writer: &'a mut AlertWriter<'w>,
    pub(crate) pending: Vec<Alert>,
    /// Reused to build each PDU's observation.
    pub(crate) scratch: otsensor_models::ObservationLog,
}

impl<'a, 'w> DetectSink<'a, 'w> {
    /// A sink scoring with `detector`, writing to `writer`.
    pub(crate) fn new(mut detector: Detector, writer: &'a mut AlertWriter<'w>) -> Self {
        detector.set_max_new_pairs(crate::memory::limits().max_new_pairs);
        detector.set_max_clients(crate::memory::limits().max_clients);
        DetectSink { detector, writer, pending: Vec::new(), scratch: otsensor_models::ObservationLog::new() }
    }
}

impl DetectSink<'_, '_> {
    pub(crate) fn flush(&mut self) {
        self.detector.drain(&mut self.pending);
        if !self.pending.is_empty() {
            self.writer.write(&mut self.pending);
        }
    }
    pub(crate) fn finish(&mut self) {
        self.detector.finish(&mut self.pending);
        self.writer.write(&mut self.pending);
    }
}

impl Sink for DetectSink<'_, '_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        crate::policy::observe_pdu(&mut self.detector, self.writer.policy_mut(), pdu, &mut self.scratch);
        if self.detector.pdus() % DRAIN_EVERY == 0 {
            self.flush();
        }
    }
    fn notice(&mut self, n: &Notice) {
        self.detector.notice(n);
    }
    fn net(&mut self, e: &NetEvent) {
        self.detector.net(e);
    }
}

/// Runs `detect`, writing alerts to `out`.
pub fn detect_to(args: &DetectArgs, out: &mut dyn Write) -> Result<(), ModelCmdError> {
    detect_out(args, out, &Sending::default())
}

/// What alerts go to beyond the file or stdout: their format there, and the network outputs.
#[derive(Debug, Default)]
pub struct Sending {
    /// Format of the lines written to the file or stdout.
    pub format: AlertFormat,
    /// The network outputs, started.
    pub outputs: Option<Arc<Outputs>>,
}

impl Sending {
    /// Starts the network outputs `o` names.
    pub fn start(o: &OutputOptions) -> Result<Sending, ModelCmdError> {
        let outputs = match &o.net {
            Some(net) => Outputs::start(net).map_err(ModelCmdError::Usage)?,
            None => None,
        };
        Ok(Sending { format: o.format, outputs })
    }

    /// Sets a writer up to write and send as configured.
    pub(crate) fn configure(&self, w: &mut AlertWriter<'_>) {
        w.set_format(self.format);
        w.set_outputs(self.outputs.clone());
    }

    /// Waits for the outputs to drain (up to their drain time); their counters on stderr.
    pub fn finish(&self, summary: bool) {
        if let Some(o) = &self.outputs {
            let s = o.finish();
            if summary {
                eprint!("{s}");
            }
        }
    }
}

/// Runs `detect` with `--output` destinations.
pub fn detect_with(args: &DetectArgs, o: &OutputOptions) -> Result<(), ModelCmdError> {
    let sending = Sending::start(o)?;
    let result = with_output(&args.alerts, |out| detect_out(args, out, &sending));
    sending.finish(args.summary);
    result
}

/// Runs `detect`, writing alerts to `out` and sending them as `sending` says.
fn detect_out(args: &DetectArgs, out: &mut dyn Write, sending: &Sending) -> Result<(), ModelCmdError> {
    let baseline = baseline_file::load_with(&args.baseline, &args.baseline_keys).map_err(ModelCmdError::Baseline)?;
    let mut detector = Detector::new(&baseline)
        .map_err(|e| ModelCmdError::Baseline(BaselineFileError::Invalid(args.baseline.clone(), e)))?;
    let policy = policy_of(&args.policy)?;
    if let Some(p) = &policy {
        p.configure(&mut detector);
    }
    let mut engine = Engine::new(args.engine.clone());
    let mut writer = AlertWriter::new(out);
    sending.configure(&mut writer);
    writer.set_policy(policy);
    // A file (created anew by `with_output`) gets a tamper-evident chain; stdout does not.
    writer.set_chain(args.alerts.as_ref().map(|_| Chain::new().signed_with(args.alerts_key.as_ref())));
    let mut sink = DetectSink::new(detector, &mut writer);
    let mut progress = Progress::new(args.progress);
    let run = run_captures(&args.captures, &mut engine, &mut sink, &mut progress);
    sink.finish();
    let untracked = sink.detector.clients_untracked();
    let write_result = writer.finish();
    if args.summary {
        eprint!("{}", summary(engine.stats(), progress.elapsed()));
        if untracked > 0 {
            eprintln!(
                "  memory bounds: {untracked} requests from clients not followed for host scans \
                 (table full, or past the {} unknown addresses followed at once)",
                otsensor_models::sources::MAX_STRANGERS
            );
        }
        eprint!("{}", ranked_summary(writer.alerts()));
    }
    run.map_err(ModelCmdError::Run)?;
    write_result.map_err(ModelCmdError::Output)
}

/// Opens the alerts destination and runs `f` on it.
pub(crate) fn with_output(
    path: &Option<PathBuf>,
    f: impl FnOnce(&mut dyn Write) -> Result<(), ModelCmdError>,
) -> Result<(), ModelCmdError> {
    match path {
        Some(p) => {
            let mut file = AppendFile::open(p, true).map_err(ModelCmdError::Output)?;
            f(&mut file)?;
            file.sync().map_err(ModelCmdError::Output)
        }
        None => {
            let stdout = io::stdout();
            let mut lock = stdout.lock();
            f(&mut lock)
        }
    }
}

/// Runs `detect` to the file or stdout the arguments name.
pub fn detect(args: &DetectArgs) -> Result<(), ModelCmdError> {
    with_output(&args.alerts, |out| detect_to(args, out))
}
