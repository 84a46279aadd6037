//! The packet pipeline: one capture thread, N dissecting workers, one scoring coordinator.
//!
//! ```text
//!  capture ──batches──▶ worker 0 ──observations──▶
//!   (dispatch: shard     worker 1 ──observations──▶ coordinator (merge in packet order,
//!    by IP pair)         ...                         learn or score, alerts)
//! ```
//!
//! - The capture thread ([`dispatch::Dispatcher`]) reads frames (a capture file a block at a time, or
//!   the kernel's ring: never copied), assigns each a global sequence number and hands it to
//!   the worker of its IP pair (a symmetric hash of the two addresses, so both directions
//!   and every connection of a device pair meet in one worker and one flow table).
//! - Each worker ([`worker`]) owns an [`Engine`](otsensor_dissectors::engine::Engine):
//!   decoding, flows, TCP reassembly and dissection, the per-packet work. It turns each PDU
//!   into an [`Observation`](otsensor_models::Observation) in a reused
//!   [`ObservationLog`], so the coordinator gets flat,
//!   owned records without an allocation per PDU.
//! - The coordinator ([`merge::Merger`]) applies observations and notices in global packet
//!   order. Each worker's output carries a watermark (every packet of that worker up to it
//!   is accounted for), so the merge never waits on chance and the result does not depend
//!   on how threads interleave: `run --read` gives the alerts `detect` gives, whatever the
//!   number of workers.
//!
//! Between threads: `rtrb` single-producer single-consumer rings of whole batches, and the
//! same rings back for the emptied buffers, so nothing is locked or allocated per packet.
//! A full ring to a worker drops the batch and counts it when capturing live (the capture
//! never stalls); when reading files it waits, since a file can always be read later.

pub mod coordinator;
pub mod dispatch;
pub mod merge;
pub mod threads;
pub mod worker;

use std::sync::Arc;
use std::time::Instant;

use otsensor_dissectors::event::{NetEvent, Notice};
use otsensor_models::ObservationLog;

use crate::capture::store::{FrameRef, FrameStore};

/// Packets a batch to one worker holds at most.
pub const BATCH_PACKETS: usize = 256;
/// Batches each capture-to-worker ring holds.
pub const RING_BATCHES: usize = 256;

/// A frame on its way to a worker.
#[derive(Clone, Copy, Debug)]
pub struct Frame {
    /// Where it is in the batch's store.
    pub at: FrameRef,
    /// Global sequence number (1-based, in capture order across every input).
    pub seq: u64,
    /// 1-based index of the packet in its capture file (live: equal to `seq`).
    pub pkt: u64,
}

/// Frames of one store for one worker.
pub struct Batch {
    /// The memory the frames live in; `None` for a batch that only moves the watermark.
    pub store: Option<Arc<dyn FrameStore>>,
    /// The frames, in capture order.
    pub frames: Vec<Frame>,
    /// Watermark: every packet with a sequence number up to this that belongs to this
    /// worker is in this batch or an earlier one (or was dropped and counted).
    pub through: u64,
    /// When the capture thread sent it (for the stage latency histogram only).
    pub sent: Instant,
}

/// What a worker found in a packet, in order.
#[derive(Clone, Copy, Debug)]
pub enum EventKind {
    /// A PDU: the index of its observation in the output's log.
    Observation(u32),
    /// A notice of the engine.
    Notice(Notice),
    /// A conversation record, ARP packet or L2 conversation.
    Net(NetEvent),
}

/// One finding, with the sequence number of the packet that completed it.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// Global sequence number of the packet.
    pub seq: u64,
    /// What.
    pub kind: EventKind,
}

/// A worker's findings for one batch.
#[derive(Debug, Default)]
pub struct WorkerOutput {
    /// Observations of the PDUs.
    pub log: ObservationLog,
    /// PDUs and notices in capture order.
    pub events: Vec<Event>,
    /// The batch's watermark.
    pub through: u64,
    /// Packets the batch held.
    pub packets: u64,
    /// When the capture thread sent the batch (for the stage latency histogram only).
    pub sent: Option<Instant>,
}

impl WorkerOutput {
    /// Empties it for reuse, keeping its memory.
    pub fn clear(&mut self) {
        self.log.clear();
        self.events.clear();
        self.through = 0;
        self.packets = 0;
        self.sent = None;
    }
}
