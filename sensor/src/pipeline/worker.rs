//! A worker: batches of frames in, observations and notices out.

use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use otsensor_dissectors::engine::Engine;
use otsensor_dissectors::event::{NetEvent, Notice, Pdu, Sink};

use super::{Batch, Event, EventKind, Frame, WorkerOutput};
use crate::metrics::registry::{PduCounts, WorkerTelemetry};

/// How long an idle worker sleeps before looking at its ring again (it is woken earlier
/// when a batch arrives).
const IDLE_PARK: Duration = Duration::from_millis(5);
/// Counters are published to the scrape side at most this often.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// A worker's ends of its rings.
pub struct WorkerEnds {
    /// Batches from the capture thread.
    pub batches: rtrb::Consumer<Batch>,
    /// Frame vectors back to the capture thread.
    pub frames_back: rtrb::Producer<Vec<Frame>>,
    /// Findings to the coordinator.
    pub outputs: rtrb::Producer<WorkerOutput>,
    /// Emptied outputs coming back from the coordinator.
    pub outputs_back: rtrb::Consumer<WorkerOutput>,
    /// The coordinator's thread, to wake it.
    pub coordinator: Thread,
}

/// Records what the engine finds into an output.
struct Recorder<'a> {
    out: &'a mut WorkerOutput,
    seq: u64,
    pdus: &'a mut PduCounts,
}

impl Sink for Recorder<'_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        let i = self.out.log.push(pdu);
        let head = self.out.log.get(i).map(|o| o.head);
        if let Some(h) = head {
            self.pdus.count(h.protocol, h.class, !h.flags.is_empty());
        }
        self.out.events.push(Event { seq: self.seq, kind: EventKind::Observation(i as u32) });
    }
    fn notice(&mut self, n: &Notice) {
        self.out.events.push(Event { seq: self.seq, kind: EventKind::Notice(*n) });
    }
    fn net(&mut self, e: &NetEvent) {
        self.out.events.push(Event { seq: self.seq, kind: EventKind::Net(*e) });
    }
}

/// Runs a worker until the capture thread closes its ring and every batch is done.
pub fn run(mut engine: Engine, mut ends: WorkerEnds, telemetry: Arc<WorkerTelemetry>) {
    let mut pdus = PduCounts::default();
    let mut latency = crate::metrics::registry::new_histogram();
    let mut last_publish = Instant::now();
    loop {
        let batch = match ends.batches.pop() {
            Ok(b) => b,
            Err(_) if ends.batches.is_abandoned() => break,
            Err(_) => {
                std::thread::park_timeout(IDLE_PARK);
                continue;
            }
        };
        let mut out = ends.outputs_back.pop().unwrap_or_default();
        out.clear();
        out.through = batch.through;
        out.packets = batch.frames.len() as u64;
        out.sent = Some(batch.sent);
        if let Some(store) = &batch.store {
            let mut rec = Recorder { out: &mut out, seq: 0, pdus: &mut pdus };
            for f in &batch.frames {
                rec.seq = f.seq;
                engine.process(f.at.ts, f.pkt, f.at.linktype, f.at.data(store.as_ref()), &mut rec);
            }
        }
        latency.saturating_record(batch.sent.elapsed().as_nanos() as u64);
        let Batch { frames, .. } = batch;
        // Frees the store (a ring block goes back to the kernel) before the output waits.
        let _ = ends.frames_back.push(frames);
        send(&mut ends, out);
        if last_publish.elapsed() >= PUBLISH_EVERY {
            last_publish = Instant::now();
            telemetry.publish(&engine, &pdus, &mut latency);
        }
    }
    telemetry.publish(&engine, &pdus, &mut latency);
}

/// Hands an output to the coordinator, waiting for room: findings are never dropped here
/// (a slow coordinator backs up into the capture ring, where drops are counted).
fn send(ends: &mut WorkerEnds, mut out: WorkerOutput) {
    loop {
        match ends.outputs.push(out) {
            Ok(()) => {
                ends.coordinator.unpark();
                return;
            }
            Err(rtrb::PushError::Full(o)) => {
                out = o;
                ends.coordinator.unpark();
                std::thread::park_timeout(Duration::from_micros(200));
            }
        }
        if ends.outputs.is_abandoned() {
            return;
        }
    }
}
