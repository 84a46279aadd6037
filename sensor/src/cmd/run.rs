//! `otsensor run`: the sensor. Live capture on a mirror port (or capture files through the
//! same pipeline), learning in place, detection, checkpoints, metrics.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::live::{self, LiveSource};
use crate::capture::store::{FrameRef, FrameStore};
use crate::capture::FileReader;
use crate::config::{RunOptions, Source};
use crate::metrics::http::MetricsServer;
use crate::metrics::registry::Telemetry;
use crate::output::alerts::ranked_summary;
use crate::output::append_file::AppendFile;
use crate::output::chain::Chain;
use crate::output::sinks::Outputs;
use crate::pipeline::coordinator::CoordinatorError;
use crate::pipeline::dispatch::{Dispatcher, WhenFull};
use crate::pipeline::threads::{Pipeline, PipelineConfig, StartError};
use crate::run::summary;

/// How long the capture thread waits for a ring block before moving the watermarks on.
const LIVE_POLL: Duration = Duration::from_millis(20);
/// Bytes of a capture file read at a time into the pipeline.
pub const PIPELINE_BLOCK: usize = 1 << 20;
/// How often capture loss is measured.
const LOSS_PERIOD: Duration = Duration::from_secs(1);

/// Why `run` failed.
#[derive(Debug)]
pub enum RunCmdError {
    /// Opening or reading the capture failed.
    Capture(String),
    /// The baseline or the alerts failed.
    Coordinator(CoordinatorError),
    /// Anything else with side effects (metrics address, alerts file, privileges).
    Setup(String),
}

impl std::fmt::Display for RunCmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunCmdError::Capture(s) | RunCmdError::Setup(s) => f.write_str(s),
            RunCmdError::Coordinator(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunCmdError {}

/// Runs the sensor until the captures end or SIGTERM/SIGINT.
pub fn run(opts: &RunOptions) -> Result<(), RunCmdError> {
    let started = Instant::now();
    if let Some(limits) = opts.memory {
        crate::memory::set_limits(limits);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| RunCmdError::Setup(format!("signals: {e}")))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&opts.coordinator.reload_policy))
        .map_err(|e| RunCmdError::Setup(format!("signals: {e}")))?;
    // The capture opens with privileges; nothing after it needs them.
    let live = match &opts.source {
        Source::Live { config, backend } => {
            Some(live::open(*backend, config).map_err(|e| RunCmdError::Capture(e.to_string()))?)
        }
        Source::Files { .. } => None,
    };
    if let Some(user) = &opts.user {
        live::drop_privileges(user).map_err(|e| RunCmdError::Setup(format!("--user {user}: {e}")))?;
    }
    let telemetry = Arc::new(Telemetry::new(opts.workers));
    let server = start_metrics(opts, &telemetry)?;
    let (out, durable) = open_alerts(opts)?;
    let outputs = start_outputs(opts, &telemetry)?;
    let mut opts = opts.clone();
    opts.coordinator.outputs = outputs.clone();
    let opts = &opts;

    // A file can always be read again: waiting beats dropping. Live, the capture never waits;
    // --pace stands in for live capture and drops the same way.
    let when_full = match opts.source {
        Source::Files { pace: false, .. } => WhenFull::Wait,
        _ => WhenFull::Drop,
    };
    let config = PipelineConfig {
        workers: opts.workers,
        engine: opts.engine.clone(),
        coordinator: opts.coordinator.clone(),
        when_full,
    };
    let (mut pipeline, dispatcher) =
        Pipeline::start(&config, out, durable, &telemetry, &stop).map_err(|e| match e {
            StartError::Coordinator(e) => RunCmdError::Coordinator(e),
            StartError::Thread(e) => RunCmdError::Setup(e),
        })?;
    let captured = match (live, &opts.source) {
        (Some(src), _) => capture_live(src, dispatcher, &telemetry, &stop),
        (None, Source::Files { paths, pace }) => capture_files(paths, *pace, dispatcher, &telemetry, &stop),
        (None, Source::Live { .. }) => Ok(()),
    };
    let alerts = pipeline.finish();
    // Senders drain while the metrics are still served.
    let delivered = outputs.map(|o| o.finish());
    if let Some(s) = server {
        s.shutdown();
    }
    if let (Some(d), true) = (&delivered, opts.summary) {
        eprint!("{d}");
    }
    let alerts = alerts.map_err(RunCmdError::Coordinator)?;
    if opts.summary {
        let (engine, _, _) = telemetry.engine_totals();
        eprint!("{}", summary(&engine, started.elapsed()));
        eprint!("{}", ranked_summary(&alerts));
    }
    captured
}

fn start_metrics(opts: &RunOptions, telemetry: &Arc<Telemetry>) -> Result<Option<MetricsServer>, RunCmdError> {
    let Some(addr) = opts.metrics else { return Ok(None) };
    let (t1, t2) = (Arc::clone(telemetry), Arc::clone(telemetry));
    let (render, health) = (Arc::new(move || t1.render()), Arc::new(move || t2.healthy.load(Ordering::Relaxed)));
    MetricsServer::start_with_token(addr, render, health, opts.metrics_token.clone())
        .map(Some)
        .map_err(|e| RunCmdError::Setup(format!("--metrics {addr}: {e}")))
}

/// Starts the network outputs and shows their counters on `/metrics`.
fn start_outputs(opts: &RunOptions, telemetry: &Telemetry) -> Result<Option<Arc<Outputs>>, RunCmdError> {
    let Some(config) = &opts.outputs.net else { return Ok(None) };
    let outputs = Outputs::start(config).map_err(RunCmdError::Setup)?;
    if let (Some(o), Ok(mut c)) = (&outputs, telemetry.outputs.lock()) {
        *c = o.counters().to_vec();
    }
    Ok(outputs)
}

type AlertOut = (Box<dyn Write + Send>, Option<(File, Chain)>);

/// The alerts file, appended to (a restart keeps what was written), or stdout.
fn open_alerts(opts: &RunOptions) -> Result<AlertOut, RunCmdError> {
    match &opts.alerts {
        Some(p) => {
            // The chain goes on from the last record a previous run wrote.
            let chain = Chain::continue_file(p)
                .map_err(|e| RunCmdError::Setup(e.to_string()))?
                .signed_with(opts.alerts_key.as_ref());
            let setup = |e: io::Error| RunCmdError::Setup(format!("{}: {e}", p.display()));
            // Whole records only: a full disk is retried, and never leaves half a record.
            let f = AppendFile::open(p, false).map_err(setup)?;
            let sync = OpenOptions::new().append(true).open(p).map_err(setup)?;
            Ok((Box::new(f), Some((sync, chain))))
        }
        None => Ok((Box::new(BufWriter::new(io::stdout())), None)),
    }
}

/// Reads capture files into the pipeline, in order, as one stream.
fn capture_files(
    paths: &[std::path::PathBuf],
    pace: bool,
    mut dispatcher: Dispatcher,
    telemetry: &Telemetry,
    stop: &AtomicBool,
) -> Result<(), RunCmdError> {
    let mut clock: Option<(i64, Instant)> = None;
    let mut loss = LossMeter::default();
    let mut result = Ok(());
    'files: for path in paths {
        // Blocks of 1 MiB rather than 4: the workers hold on to the blocks their frames are
        // in, several at once, and under a memory cap that adds up.
        let opened = std::fs::File::open(path).map_err(crate::capture::OpenError::Io);
        let mut reader = match opened.and_then(|f| FileReader::with_block(Box::new(f), PIPELINE_BLOCK)) {
            Ok(r) => r,
            Err(e) => {
                result = Err(RunCmdError::Capture(format!("{}: {e}", path.display())));
                break;
            }
        };
        // Frames go to the workers as ranges of the reader's current block; when the reader
        // moves on to a new block, the workers keep the old one alive until they are done.
        let mut generation = None;
        let mut base = 0usize;
        while let Some(item) = reader.next_packet() {
            let p = match item {
                Ok(p) => p,
                Err(e) => {
                    result = Err(RunCmdError::Capture(format!("{}: {e}", path.display())));
                    break 'files;
                }
            };
            let (index, ts, ptr, len, orig_len, linktype) =
                (p.index, p.ts, p.data.as_ptr() as usize, p.data.len(), p.orig_len, p.linktype);
            if generation != Some(reader.generation()) {
                generation = Some(reader.generation());
                let store = reader.store();
                base = store_base(&store);
                dispatcher.set_store(store as Arc<dyn FrameStore>);
            }
            let at = FrameRef { offset: ptr.saturating_sub(base), len, wire_len: orig_len, ts, linktype };
            let seq = dispatcher.frame(at, Some(index));
            if pace {
                follow_capture_time(&mut clock, ts.as_nanos(), &mut dispatcher, stop);
                // Paced replay drops like live capture, and so holds timing rules back too.
                loss.measure(None, telemetry);
            }
            if (pace || seq % 1024 == 0) && stop.load(Ordering::Relaxed) {
                break 'files;
            }
        }
    }
    dispatcher.finish();
    result
}

/// The address of a block's first byte: frames are given as offsets from it.
fn store_base(store: &Arc<crate::capture::Block>) -> usize {
    FrameStore::bytes(store.as_ref()).as_ptr() as usize
}

/// Sleeps until the wall clock has advanced as far as capture time has since the first
/// packet, handing the workers what is pending first; wakes early on `stop`.
fn follow_capture_time(clock: &mut Option<(i64, Instant)>, ns: i64, dispatcher: &mut Dispatcher, stop: &AtomicBool) {
    let (first, start) = *clock.get_or_insert((ns, Instant::now()));
    let due = Duration::from_nanos(u64::try_from(ns - first).unwrap_or(0));
    if due <= start.elapsed() + Duration::from_millis(1) {
        return;
    }
    dispatcher.flush_all();
    while !stop.load(Ordering::Relaxed) {
        let Some(left) = due.checked_sub(start.elapsed()) else { break };
        thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Reads the live interface into the pipeline until `stop`.
fn capture_live(
    mut src: Box<dyn LiveSource>,
    mut dispatcher: Dispatcher,
    telemetry: &Telemetry,
    stop: &AtomicBool,
) -> Result<(), RunCmdError> {
    let mut loss = LossMeter::default();
    let mut result = Ok(());
    while !stop.load(Ordering::Relaxed) {
        match src.next_block(LIVE_POLL) {
            Ok(Some(block)) => {
                dispatcher.set_store(block.store);
                for f in block.frames {
                    dispatcher.frame(f, None);
                }
                dispatcher.flush_all();
                // The block goes back to the kernel when the workers are done with it.
                dispatcher.release_store();
            }
            // Nothing new: move the watermarks so the coordinator is not kept waiting.
            Ok(None) => dispatcher.flush_all(),
            Err(e) => {
                telemetry.healthy.store(false, Ordering::Relaxed);
                result = Err(RunCmdError::Capture(format!("{}: {e}", src.interface())));
                break;
            }
        }
        loss.measure(Some(src.as_mut()), telemetry);
    }
    dispatcher.finish();
    result
}

/// Whether the kernel or a ring dropped packets in the last period.
#[derive(Default)]
struct LossMeter {
    last: Option<Instant>,
    kernel: u64,
    rings: u64,
}

impl LossMeter {
    fn measure(&mut self, src: Option<&mut dyn LiveSource>, telemetry: &Telemetry) {
        if self.last.is_some_and(|t| t.elapsed() < LOSS_PERIOD) {
            return;
        }
        self.last = Some(Instant::now());
        let kernel = src.and_then(|s| s.kernel_stats().ok()).map_or(self.kernel, |k| k.drops);
        let rings: u64 = telemetry.workers.iter().map(|w| w.ring_dropped_packets.load(Ordering::Relaxed)).sum();
        telemetry.kernel_drops.store(kernel, Ordering::Relaxed);
        let lost = kernel > self.kernel || rings > self.rings;
        telemetry.loss_now.store(lost, Ordering::Relaxed);
        self.kernel = kernel;
        self.rings = rings;
    }
}
