//! The coordinator's merge: the workers' findings, back in global packet order.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use otsensor_dissectors::event::{NetEvent, Notice};
use otsensor_models::Observation;

use super::{EventKind, WorkerOutput};

/// One finding handed to the coordinator.
#[derive(Clone, Copy, Debug)]
pub enum Finding<'a> {
    /// A PDU.
    Observation(Observation<'a>),
    /// An engine notice.
    Notice(Notice),
    /// A conversation record, ARP packet or L2 conversation.
    Net(NetEvent),
}

/// The coordinator's ends of one worker's rings.
pub struct MergeLink {
    /// Findings from the worker.
    pub outputs: rtrb::Consumer<WorkerOutput>,
    /// Emptied outputs back to the worker.
    pub back: rtrb::Producer<WorkerOutput>,
}

struct Lane {
    link: MergeLink,
    queue: VecDeque<WorkerOutput>,
    /// Next event of the front output.
    cursor: usize,
    /// Every finding of this worker up to this sequence number has arrived.
    mark: u64,
}

impl Lane {
    fn head_seq(&self) -> Option<u64> {
        self.queue.front().and_then(|o| o.events.get(self.cursor)).map(|e| e.seq)
    }

    /// Drops fully applied outputs from the front, handing them back for reuse.
    fn pop_done(&mut self, latency: &mut Histogram<u64>) {
        while self.queue.front().is_some_and(|o| self.cursor >= o.events.len()) {
            if let Some(mut o) = self.queue.pop_front() {
                if let Some(sent) = o.sent {
                    latency.saturating_record(sent.elapsed().as_nanos() as u64);
                }
                o.clear();
                let _ = self.link.back.push(o);
            }
            self.cursor = 0;
        }
    }
}

/// Merges the workers' findings by packet sequence number.
pub struct Merger {
    lanes: Vec<Lane>,
    packets: u64,
    /// Capture thread to the end of scoring, per batch.
    latency: Histogram<u64>,
}

impl Merger {
    /// A merger over one link per worker.
    pub fn new(links: Vec<MergeLink>) -> Self {
        let lanes = links.into_iter().map(|link| Lane { link, queue: VecDeque::new(), cursor: 0, mark: 0 }).collect();
        Merger { lanes, packets: 0, latency: crate::metrics::registry::new_histogram() }
    }

    /// Takes what the workers have sent; whether anything arrived.
    pub fn poll(&mut self) -> bool {
        let mut any = false;
        for lane in &mut self.lanes {
            while let Ok(out) = lane.link.outputs.pop() {
                lane.mark = lane.mark.max(out.through);
                self.packets += out.packets;
                lane.queue.push_back(out);
                any = true;
            }
            if lane.link.outputs.is_abandoned() && lane.link.outputs.is_empty() {
                lane.mark = u64::MAX;
            }
        }
        any
    }

    /// Moves the latency samples into `into`.
    pub fn take_latency(&mut self, into: &mut Histogram<u64>) {
        let _ = into.add(&self.latency);
        self.latency.reset();
    }

    /// Packets whose findings have arrived (applied or waiting).
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Whether every worker has stopped and every finding was applied.
    pub fn finished(&self) -> bool {
        self.lanes.iter().all(|l| l.mark == u64::MAX && l.queue.iter().all(|o| o.events.is_empty()))
            && self.lanes.iter().all(|l| l.head_seq().is_none())
    }

    /// Applies, in sequence order, every finding up to the lowest watermark: no worker can
    /// send anything earlier. Returns how many were applied.
    pub fn apply(&mut self, f: &mut dyn FnMut(Finding<'_>)) -> usize {
        for lane in &mut self.lanes {
            lane.pop_done(&mut self.latency);
        }
        let safe = self.lanes.iter().map(|l| l.mark).min().unwrap_or(u64::MAX);
        let mut n = 0;
        loop {
            // A handful of workers: a linear scan beats a heap.
            let next = self
                .lanes
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.head_seq().map(|s| (s, i)))
                .min()
                .filter(|&(s, _)| s <= safe);
            let Some((_, i)) = next else { break };
            let Some(lane) = self.lanes.get_mut(i) else { break };
            if let Some(out) = lane.queue.front() {
                if let Some(e) = out.events.get(lane.cursor) {
                    match e.kind {
                        EventKind::Observation(k) => {
                            if let Some(obs) = out.log.get(k as usize) {
                                f(Finding::Observation(obs));
                            }
                        }
                        EventKind::Notice(notice) => f(Finding::Notice(notice)),
                        EventKind::Net(e) => f(Finding::Net(e)),
                    }
                    n += 1;
                }
            }
            lane.cursor += 1;
            lane.pop_done(&mut self.latency);
        }
        n
    }
}
