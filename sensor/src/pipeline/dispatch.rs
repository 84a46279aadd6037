//! The capture side: frames to workers, sharded by IP pair.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use otsensor_dissectors::packet;
use rustc_hash::FxHasher;

use super::{Batch, Frame, BATCH_PACKETS};
use crate::capture::store::{FrameRef, FrameStore};
use crate::metrics::registry::Telemetry;

/// What to do when a worker's ring is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Drop the batch and count it (live capture: the capture never stalls).
    Drop,
    /// Wait for room (files: reading later loses nothing).
    Wait,
}

/// The worker that handles a frame: a symmetric hash of its two IP addresses, so both
/// directions of every connection between two hosts meet in one worker. Frames that are
/// not IP (or cannot be decoded) go to worker 0, which counts them.
pub fn shard(linktype: u32, data: &[u8], workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let Ok(d) = packet::decode(linktype, data) else { return 0 };
    let (a, b) = (ip_bits(d.src), ip_bits(d.dst));
    let mut h = FxHasher::default();
    h.write_u128(a.min(b));
    h.write_u128(a.max(b));
    // Multiply-shift: uniform over the workers without a division.
    ((u128::from(h.finish()) * workers as u128) >> 64) as usize
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// One worker's end of the pipeline, as the capture thread sees it.
pub struct WorkerLink {
    /// Where batches go.
    pub batches: rtrb::Producer<Batch>,
    /// Frame vectors coming back for reuse.
    pub returned: rtrb::Consumer<Vec<Frame>>,
    /// The worker's thread, to wake it.
    pub thread: Thread,
}

/// Hands frames to workers in batches.
pub struct Dispatcher {
    links: Vec<WorkerLink>,
    pending: Vec<Batch>,
    store: Option<Arc<dyn FrameStore>>,
    seq: u64,
    since_flush: usize,
    when_full: WhenFull,
    telemetry: Arc<Telemetry>,
    packets: u64,
    bytes: u64,
}

impl Dispatcher {
    /// A dispatcher over `links`, one per worker.
    pub fn new(links: Vec<WorkerLink>, when_full: WhenFull, telemetry: Arc<Telemetry>) -> Self {
        let pending = links.iter().map(|_| empty_batch(Vec::new())).collect();
        Dispatcher { links, pending, store: None, seq: 0, since_flush: 0, when_full, telemetry, packets: 0, bytes: 0 }
    }

    /// Frames dispatched so far (the last sequence number given).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sets the store the next frames live in; batches of the previous one are sent first.
    pub fn set_store(&mut self, store: Arc<dyn FrameStore>) {
        self.flush_all();
        self.store = Some(store);
    }

    /// Forgets the current store (after [`Dispatcher::flush_all`]), so that only the
    /// batches still in flight hold it: a ring block returns to the kernel as soon as the
    /// workers are done with it.
    pub fn release_store(&mut self) {
        self.store = None;
    }

    /// Hands one frame of the current store to its worker. `pkt` is its number in its
    /// capture file (`None`: live, the sequence number). Returns its sequence number.
    pub fn frame(&mut self, at: FrameRef, pkt: Option<u64>) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        let Some(store) = &self.store else { return seq };
        let data = at.data(store.as_ref());
        self.packets += 1;
        self.bytes += data.len() as u64;
        let w = shard(at.linktype, data, self.links.len());
        if let Some(b) = self.pending.get_mut(w) {
            b.frames.push(Frame { at, seq, pkt: pkt.unwrap_or(seq) });
        }
        self.since_flush += 1;
        if self.since_flush >= BATCH_PACKETS {
            self.flush_all();
        }
        seq
    }

    /// Sends every worker what it has pending, or an empty batch that moves its watermark,
    /// so the coordinator can go on merging up to here.
    pub fn flush_all(&mut self) {
        self.since_flush = 0;
        for w in 0..self.links.len() {
            self.flush(w);
        }
        self.telemetry.capture_packets.store(self.packets, std::sync::atomic::Ordering::Relaxed);
        self.telemetry.capture_bytes.store(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn flush(&mut self, w: usize) {
        let (Some(link), Some(slot)) = (self.links.get_mut(w), self.pending.get_mut(w)) else { return };
        let frames = link.returned.pop().map(|mut v| {
            v.clear();
            v
        });
        let mut batch = std::mem::replace(slot, empty_batch(frames.unwrap_or_default()));
        batch.through = self.seq;
        batch.store = if batch.frames.is_empty() { None } else { self.store.clone() };
        batch.sent = Instant::now();
        let Some(wt) = self.telemetry.workers.get(w) else { return };
        loop {
            match link.batches.push(batch) {
                Ok(()) => break,
                Err(rtrb::PushError::Full(b)) if self.when_full == WhenFull::Wait => {
                    batch = b;
                    link.thread.unpark();
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(rtrb::PushError::Full(b)) => {
                    if !b.frames.is_empty() {
                        wt.ring_drops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        wt.ring_dropped_packets.fetch_add(b.frames.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    break;
                }
            }
        }
        let depth = ring_depth(&link.batches);
        wt.ring_depth.store(depth as u64, std::sync::atomic::Ordering::Relaxed);
        link.thread.unpark();
    }

    /// Sends what is pending and closes the rings: the workers finish and stop.
    pub fn finish(mut self) {
        self.flush_all();
        for link in &self.links {
            link.thread.unpark();
        }
    }
}

/// Batches waiting in a ring.
fn ring_depth(p: &rtrb::Producer<Batch>) -> usize {
    p.buffer().capacity() - p.slots()
}

fn empty_batch(frames: Vec<Frame>) -> Batch {
    Batch { store: None, frames, through: 0, sent: Instant::now() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame between `a` and `b` (only what `decode` reads).
    fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&[0x08, 0x00]); // EtherType IPv4
        let ip = &mut f[14..34];
        ip[0] = 0x45; // version 4, IHL 5
        ip[2..4].copy_from_slice(&40u16.to_be_bytes()); // total length
        ip[8] = 64; // TTL
        ip[9] = 6; // protocol TCP
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[12] = 0x50; // data offset 5
        tcp[13] = 0x10; // ACK
        f
    }

    #[test]
    fn both_directions_and_every_port_of_a_pair_meet_in_one_worker() {
        let hmi = [10, 0, 0, 1];
        let plc = [10, 0, 0, 2];
        for workers in [2, 3, 4, 8] {
            let w = shard(1, &frame(hmi, plc, 40000, 502), workers);
            assert!(w < workers);
            assert_eq!(shard(1, &frame(plc, hmi, 502, 40000), workers), w);
            assert_eq!(shard(1, &frame(hmi, plc, 40001, 102), workers), w);
        }
    }

    #[test]
    fn pairs_spread_over_workers_and_non_ip_goes_to_worker_zero() {
        let mut seen = [0u32; 4];
        for i in 0..=255u8 {
            seen[shard(1, &frame([10, 0, 0, 1], [10, 0, 1, i], 40000, 502), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 32), "256 pairs over 4 workers: {seen:?}");
        let mut arp = frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        arp[12..14].copy_from_slice(&[0x08, 0x06]); // EtherType ARP
        assert_eq!(shard(1, &arp, 4), 0);
    }
}
