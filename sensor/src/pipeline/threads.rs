//! Starting and stopping the pipeline's threads: the coordinator, then the workers, wired
//! with their rings.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_models::Alert;

use super::coordinator::{Coordinator, CoordinatorConfig, CoordinatorError};
use super::dispatch::{Dispatcher, WhenFull, WorkerLink};
use super::merge::{MergeLink, Merger};
use super::worker::{self, WorkerEnds};
use super::RING_BATCHES;
use crate::metrics::registry::Telemetry;
use crate::output::chain::Chain;

/// What a pipeline is made of.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Dissecting workers.
    pub workers: usize,
    /// The engine's ports and bounds (`max_flows` for the whole pipeline).
    pub engine: EngineConfig,
    /// Learning, checkpoints, alert timing.
    pub coordinator: CoordinatorConfig,
    /// What a full worker ring does to the capture.
    pub when_full: WhenFull,
}

/// Why a pipeline did not start.
#[derive(Debug)]
pub enum StartError {
    /// The coordinator refused its baseline or output.
    Coordinator(CoordinatorError),
    /// A thread could not be started.
    Thread(String),
}

/// The worker and coordinator threads of a running pipeline; the capture side is the
/// [`Dispatcher`] that [`Pipeline::start`] hands back.
pub struct Pipeline {
    workers: Vec<JoinHandle<()>>,
    coordinator: Option<JoinHandle<Result<Vec<Alert>, CoordinatorError>>>,
}

impl Pipeline {
    /// Starts the coordinator (which loads or creates the baseline) and the workers.
    pub fn start(
        config: &PipelineConfig,
        out: Box<dyn Write + Send>,
        file: Option<(File, Chain)>,
        telemetry: &Arc<Telemetry>,
        stop: &Arc<AtomicBool>,
    ) -> Result<(Pipeline, Dispatcher), StartError> {
        let n = config.workers.max(1);
        let mut merge_links = Vec::with_capacity(n);
        let mut worker_sides = Vec::with_capacity(n);
        let mut capture_sides = Vec::with_capacity(n);
        // Under a memory cap the rings are shallower: the frames and outputs they hold (and
        // the capture blocks those frames keep alive) are memory too.
        let depth = crate::memory::limits().ring_batches.clamp(2, RING_BATCHES);
        for _ in 0..n {
            let (batches, batches_rx) = rtrb::RingBuffer::new(depth);
            let (frames_back, returned) = rtrb::RingBuffer::new(depth);
            let (outputs, outputs_rx) = rtrb::RingBuffer::new(depth);
            let (back, outputs_back) = rtrb::RingBuffer::new(depth);
            merge_links.push(MergeLink { outputs: outputs_rx, back });
            worker_sides.push((batches_rx, frames_back, outputs, outputs_back));
            capture_sides.push((batches, returned));
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        let cfg = config.coordinator.clone();
        let (t, s) = (Arc::clone(telemetry), Arc::clone(stop));
        let coordinator = thread::Builder::new()
            .name("otsensor-coordinator".into())
            .spawn(move || coordinate(cfg, out, file, t, s, merge_links, ready_tx))
            .map_err(|e| StartError::Thread(format!("coordinator thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = coordinator.join();
                return Err(StartError::Coordinator(e));
            }
            Err(_) => return Err(StartError::Thread("the coordinator thread died while starting".into())),
        }
        let engine_cfg = EngineConfig {
            max_flows: config.engine.max_flows.div_ceil(n).max(1),
            // The reassembly budget is the pipeline's too, shared out like the flows.
            reassembly_budget: config.engine.reassembly_budget.div_ceil(n),
            ..config.engine.clone()
        };
        let mut workers = Vec::with_capacity(n);
        let mut links = Vec::with_capacity(n);
        for (i, ((batches, frames_back, outputs, outputs_back), (tx, returned))) in
            worker_sides.into_iter().zip(capture_sides).enumerate()
        {
            let ends =
                WorkerEnds { batches, frames_back, outputs, outputs_back, coordinator: coordinator.thread().clone() };
            let engine = Engine::new(engine_cfg.clone());
            let wt = telemetry.workers.get(i).cloned().unwrap_or_default();
            let h = thread::Builder::new()
                .name(format!("otsensor-worker-{i}"))
                .spawn(move || worker::run(engine, ends, wt))
                .map_err(|e| StartError::Thread(format!("worker thread: {e}")))?;
            links.push(WorkerLink { batches: tx, returned, thread: h.thread().clone() });
            workers.push(h);
        }
        let dispatcher = Dispatcher::new(links, config.when_full, Arc::clone(telemetry));
        Ok((Pipeline { workers, coordinator: Some(coordinator) }, dispatcher))
    }

    /// Waits for the workers and the coordinator to finish (the dispatcher must have been
    /// finished or dropped first); the alerts written, for the summary.
    pub fn finish(&mut self) -> Result<Vec<Alert>, CoordinatorError> {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match self.coordinator.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(CoordinatorError::Output(io::Error::other("the coordinator thread panicked"))),
            None => Ok(Vec::new()),
        }
    }
}

/// The coordinator thread: merge, learn or score, write, checkpoint.
fn coordinate(
    cfg: CoordinatorConfig,
    mut out: Box<dyn Write + Send>,
    file: Option<(File, Chain)>,
    telemetry: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
    links: Vec<MergeLink>,
    ready: mpsc::Sender<Result<(), CoordinatorError>>,
) -> Result<Vec<Alert>, CoordinatorError> {
    let mut coord = match Coordinator::new(cfg, &mut *out, file, telemetry) {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(Vec::new());
        }
    };
    let mut merger = Merger::new(links);
    let mut last_publish = Instant::now();
    loop {
        let got = merger.poll();
        let applied = merger.apply(&mut |f| coord.apply(f));
        coord.set_packets(merger.packets());
        coord.housekeeping();
        if last_publish.elapsed() >= Duration::from_millis(250) {
            last_publish = Instant::now();
            coord.publish(&mut merger);
        }
        if coord.failed() {
            // Stop capturing: what cannot be written must not be scored in silence.
            stop.store(true, Ordering::Relaxed);
        }
        if merger.finished() {
            break;
        }
        if !got && applied == 0 {
            thread::park_timeout(Duration::from_millis(5));
        }
    }
    coord.publish(&mut merger);
    coord.finish()
}
