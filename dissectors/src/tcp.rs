//! TCP stream reassembly for one direction of a connection.
//!
//! Delivers payload in sequence order exactly once: retransmissions are dropped, overlaps
//! trimmed (the first copy wins, as in Suricata's default policy), segments that arrive
//! early are held in a bounded out-of-order queue. When the queue is full, or the connection
//! ends or idles with a hole, the hole is declared a gap and skipped; the dissector is told,
//! and resynchronises on the next valid header. A sensor on a mirror port usually starts
//! mid-connection, so the first segment seen sets the starting sequence number.

// Reviewed for `clippy::arithmetic_side_effects` (issue 15): sequence numbers move with
// `wrapping_add` and are compared through `seq_diff` (i64 differences of i32 values, which
// cannot overflow); byte counts are u64 counters or bounded by `MAX_OOO_BYTES`; the one
// length derived from two sequence numbers (`fill_hole`) saturates.
#![allow(clippy::arithmetic_side_effects)]

/// Segments held ahead of a hole, per direction.
pub const MAX_OOO_SEGMENTS: usize = 32;
/// Bytes held ahead of a hole, per direction.
pub const MAX_OOO_BYTES: usize = 64 * 1024;
/// Skipped holes remembered per direction, so that their bytes, if they arrive after all,
/// are still dissected (an attacker must not hide a PDU by sending it out of order).
pub const MAX_HOLES: usize = 8;
/// Segments remembered per direction (sequence number, length, digest), to tell an honest
/// retransmission from one whose bytes differ from the copy first seen: the mark of a
/// man-in-the-middle rewriting traffic, or of an evasion attempt.
pub const RECENT_SEGMENTS: usize = 8;
/// A segment further ahead than this is not a reordering but a new or desynchronised
/// stream: the reassembler jumps to it.
pub const MAX_SEQ_JUMP: u32 = 1 << 20;
/// Segments in a row that a direction may take out of order (queued ahead of a hole that is
/// not skipped at once, behind the stream and unlike any copy seen, beyond a jump,
/// conflicting) before it is deemed to
/// have lost sync; then each segment that starts with a valid header is dissected on its own
/// (as tshark and Zeek do) until the stream is consistent again. Large enough that a burst
/// of reordering or capture loss does not trigger it, small enough to bound what is lost.
pub const MAX_UNSYNCED_SEGMENTS: u32 = 4;
/// Segments in a row that must arrive in order for a direction that lost sync to return to
/// in-order reassembly.
pub const RESYNC_SEGMENTS: u32 = 2;

/// What [`HalfStream::accept`] made of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted<'p> {
    /// In-order new bytes, to deliver now (overlap already trimmed).
    Data(&'p [u8]),
    /// Nothing new: empty, or entirely a retransmission.
    Duplicate,
    /// Held in the out-of-order queue.
    Queued,
    /// A retransmission whose bytes differ from the copy already delivered; the first copy
    /// stands (what the receiver most likely kept), and this one is reported.
    Conflict {
        /// Length of the segment.
        bytes: u64,
    },
    /// Late bytes of a hole that was skipped: dissect them on their own.
    Late(&'p [u8]),
    /// Bytes wholly behind the stream that match no segment recently seen: an old
    /// retransmission, or a sequence number that cannot be right (a fuzzer, a stream picked
    /// up with gaps on every segment). Dropped, unless the direction lost sync.
    Stale(&'p [u8]),
    /// Bytes were lost before this in-order data: deliver a gap of `lost` bytes, then `data`.
    AfterGap {
        /// Bytes skipped.
        lost: u64,
        /// New bytes following the gap.
        data: &'p [u8],
    },
}

/// What a direction holds only once a segment arrives out of order: the queue of early
/// segments and the holes skipped. Boxed on demand, so that the many directions that never
/// see reordering (and the flows of a SYN flood) do not carry it.
#[derive(Debug, Default)]
struct Reorder {
    ooo: Vec<(u32, Vec<u8>)>,
    holes: Vec<(u32, u32)>,
}

/// A segment recently delivered: sequence number, length, digest of the bytes, digest of
/// the first [`PREFIX_BYTES`] (to compare a shorter retransmission). The digests are 32 bits:
/// they tell an honest retransmission from a rewrite by accident (a chance of 2^-32 of
/// missing one), and against an adversary FxHash was never a defence at any width; 16 bytes
/// a segment instead of 24 keep a tracked flow small.
#[derive(Clone, Copy, Debug, Default)]
struct Recent {
    seq: u32,
    len: u32,
    digest: u32,
    prefix: u32,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct HalfStream {
    next_seq: Option<u32>,
    /// Bytes in the out-of-order queue (kept here: checked on every segment).
    ooo_bytes: usize,
    reorder: Option<Box<Reorder>>,
    /// The first segment with payload is remembered in `first_recent`; the ring is boxed at
    /// the second: a direction that carries none or one (each flow of a SYN flood or of a
    /// mid-stream flood, a half-open connection) holds a pointer and one entry instead of
    /// 128 bytes, and allocates nothing.
    recent: Option<Box<[Recent; RECENT_SEGMENTS]>>,
    /// The ring's slot 0 until the ring is boxed.
    first_recent: Recent,
    recent_next: u8,
    /// Bytes received but not yet consumed by the dissector (a PDU split across segments).
    pub pending: Vec<u8>,
    /// Retransmitted or overlapping bytes dropped.
    pub retransmitted_bytes: u64,
    /// Bytes lost in gaps.
    pub gap_bytes: u64,
    /// Number of gaps.
    pub gaps: u64,
    /// FIN seen.
    pub fin: bool,
    /// Segments in a row taken out of order.
    /// (A u8, saturating: only compared with [`MAX_UNSYNCED_SEGMENTS`]; the flow's bytes
    /// are bounded.)
    unsynced: u8,
    /// In-order segments in a row since the direction lost sync.
    resynced: u8,
    /// Whether the direction lost sync: segments are dissected on their own.
    lost_sync: bool,
}

/// Bytes of a segment's start whose digest is kept, to compare a retransmission shorter than
/// the copy first seen (a rewrite that deleted objects).
pub const PREFIX_BYTES: usize = 32;

/// A 32-bit digest of a segment's bytes, to compare retransmissions (the high half of
/// FxHash's 64 bits, which mixes every byte in).
fn digest(b: &[u8]) -> u32 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(b);
    (h.finish() >> 32) as u32
}

/// Digest of the first [`PREFIX_BYTES`] of a segment.
fn prefix_digest(b: &[u8]) -> u32 {
    digest(b.get(..PREFIX_BYTES).unwrap_or(b))
}

/// Signed distance from `b` to `a` in sequence space.
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl HalfStream {
    /// Whether the first sequence number is known.
    pub fn started(&self) -> bool {
        self.next_seq.is_some()
    }

    /// Bytes held in the out-of-order queue.
    pub fn queued_bytes(&self) -> usize {
        self.ooo_bytes
    }

    /// Memory held by this direction.
    pub fn memory(&self) -> usize {
        self.ooo_bytes + self.pending.capacity()
    }

    /// Heap bytes this direction holds for reassembly: the buffer of a PDU split across
    /// segments and, once a segment came out of order, the queue and the holes. Zero for a
    /// direction whose PDUs all came whole and in order. (The digests of the last segments,
    /// boxed once payload flows, are not reassembly buffers.)
    pub fn allocated(&self) -> usize {
        let reorder = self.reorder.as_ref().map_or(0, |r| {
            std::mem::size_of::<Reorder>()
                + r.ooo.capacity() * std::mem::size_of::<(u32, Vec<u8>)>()
                + r.ooo.iter().map(|(_, d)| d.capacity()).sum::<usize>()
                + r.holes.capacity() * std::mem::size_of::<(u32, u32)>()
        });
        self.pending.capacity() + reorder
    }

    /// Drops everything this direction buffers (the out-of-order queue, the holes, a
    /// partial PDU) and frees it, to keep the engine within its reassembly budget; the next
    /// segment starts the stream again, as on a connection picked up mid-stream. Returns the
    /// bytes lost.
    pub fn shed(&mut self) -> u64 {
        let lost = self.ooo_bytes as u64 + self.pending.len() as u64;
        self.reorder = None;
        self.ooo_bytes = 0;
        self.pending = Vec::new();
        self.next_seq = None;
        self.gap_bytes += lost;
        lost
    }

    /// Whether the direction lost sync (more than [`MAX_UNSYNCED_SEGMENTS`] segments in a
    /// row out of order, and not yet [`RESYNC_SEGMENTS`] in order since).
    pub fn lost_sync(&self) -> bool {
        self.lost_sync
    }

    /// Restarts the direction at a segment dissected on its own: what is queued is dropped
    /// (and counted as lost), and the stream continues after the segment's `len` bytes at
    /// `seq` (of the SYN when `syn`).
    pub fn restart_at(&mut self, seq: u32, syn: bool, len: usize) {
        self.gap_bytes += self.ooo_bytes as u64;
        self.clear_queue();
        self.pending.clear();
        self.next_seq = Some(seq.wrapping_add(u32::from(syn)).wrapping_add(len as u32));
    }

    /// Takes a segment with sequence number `seq` (of the first payload byte, or of the SYN).
    pub fn accept<'p>(&mut self, seq: u32, syn: bool, fin: bool, payload: &'p [u8]) -> Accepted<'p> {
        let a = self.accept_inner(seq, syn, fin, payload);
        match a {
            Accepted::Data(_) => self.followed(),
            Accepted::Queued
            | Accepted::Stale(_)
            | Accepted::AfterGap { .. }
            | Accepted::Conflict { .. }
            | Accepted::Late(_) => {
                self.unsynced = self.unsynced.saturating_add(1);
                self.resynced = 0;
                if u32::from(self.unsynced) > MAX_UNSYNCED_SEGMENTS {
                    self.lost_sync = true;
                }
            }
            Accepted::Duplicate => {}
        }
        a
    }

    /// A segment was followed in order: the run of segments out of order ends.
    fn followed(&mut self) {
        self.unsynced = 0;
        if self.lost_sync {
            self.resynced = self.resynced.saturating_add(1);
            if u32::from(self.resynced) >= RESYNC_SEGMENTS {
                self.lost_sync = false;
            }
        }
    }

    /// The segment just queued ahead of a hole starts with a valid header and the hole is
    /// skipped at once: capture loss, which reassembly follows from that header on, so it
    /// counts as a segment in order, not as one more out of order.
    pub fn resumed(&mut self) {
        self.unsynced = self.unsynced.saturating_sub(1);
        self.followed();
    }

    fn accept_inner<'p>(&mut self, seq: u32, syn: bool, fin: bool, payload: &'p [u8]) -> Accepted<'p> {
        let seq = if syn {
            let data_seq = seq.wrapping_add(1);
            if self.next_seq.is_none() || !payload.is_empty() {
                self.next_seq.get_or_insert(data_seq);
            }
            data_seq
        } else {
            seq
        };
        if fin {
            self.fin = true;
        }
        if payload.is_empty() {
            return Accepted::Duplicate;
        }
        let next = *self.next_seq.get_or_insert(seq);
        let diff = seq_diff(seq, next);
        if diff == 0 {
            self.remember(seq, payload);
            self.advance(payload.len());
            Accepted::Data(payload)
        } else if diff < 0 {
            self.behind(seq, diff, payload)
        } else {
            self.ahead(seq, diff, payload)
        }
    }

    /// A segment that starts `-diff` bytes behind `next_seq`: a retransmission, the late
    /// fill of a skipped hole, or a retransmission that also carries new bytes. (Cold, like
    /// [`HalfStream::ahead`]: out of the in-order path every polled segment takes, so that
    /// [`HalfStream::accept`] saves fewer registers.)
    #[cold]
    fn behind<'p>(&mut self, seq: u32, diff: i64, payload: &'p [u8]) -> Accepted<'p> {
        let len = payload.len() as i64;
        if let Some(late) = self.fill_hole(seq, payload) {
            return Accepted::Late(late);
        }
        if diff + len <= 0 {
            self.retransmitted_bytes += payload.len() as u64;
            return match self.compare_recent(seq, payload) {
                Some(true) => Accepted::Conflict { bytes: payload.len() as u64 },
                Some(false) => Accepted::Duplicate,
                None => Accepted::Stale(payload),
            };
        }
        let overlap = (-diff) as usize;
        // A retransmission that also carries new bytes: its old part must be what was
        // delivered, or the segment was rewritten (objects inserted); the first copy
        // stands and the rest of the rewrite is not taken.
        if self.compare_recent(seq, payload.get(..overlap).unwrap_or_default()) == Some(true) {
            self.retransmitted_bytes += payload.len() as u64;
            return Accepted::Conflict { bytes: payload.len() as u64 };
        }
        self.retransmitted_bytes += overlap as u64;
        let fresh = payload.get(overlap..).unwrap_or_default();
        self.advance(fresh.len());
        Accepted::Data(fresh)
    }

    /// A segment that starts `diff` bytes past `next_seq`: queued ahead of the hole, or, too
    /// far ahead to be reordering, the restart of a stream that lost sync.
    #[cold]
    fn ahead<'p>(&mut self, seq: u32, diff: i64, payload: &'p [u8]) -> Accepted<'p> {
        if diff as u64 > u64::from(MAX_SEQ_JUMP) {
            self.clear_queue();
            self.next_seq = Some(seq);
            self.advance(payload.len());
            self.gaps += 1;
            Accepted::AfterGap { lost: 0, data: payload }
        } else {
            self.enqueue(seq, payload);
            Accepted::Queued
        }
    }

    /// The part of a segment behind `next_seq` that falls in a skipped hole, if any; the hole
    /// shrinks accordingly.
    fn fill_hole<'p>(&mut self, seq: u32, payload: &'p [u8]) -> Option<&'p [u8]> {
        let end = seq.wrapping_add(payload.len() as u32);
        let holes = &mut self.reorder.as_mut()?.holes;
        let i = holes.iter().position(|&(hs, he)| seq_diff(end, hs) > 0 && seq_diff(he, seq) > 0)?;
        let (hs, he) = *holes.get(i)?;
        let from = seq_diff(hs, seq).max(0) as usize;
        let to = payload.len().saturating_sub(seq_diff(end, he).max(0) as usize);
        let part = payload.get(from..to)?;
        let part_start = seq.wrapping_add(from as u32);
        let part_end = part_start.wrapping_add(part.len() as u32);
        if part_start == hs && part_end == he {
            holes.remove(i);
        } else if let Some(h) = holes.get_mut(i) {
            if part_start == hs {
                h.0 = part_end;
            } else {
                // A piece from the end or the middle: keep the hole's head open.
                h.1 = part_start;
            }
        }
        Some(part)
    }

    fn remember(&mut self, seq: u32, payload: &[u8]) {
        let whole = digest(payload);
        // A segment no longer than the prefix is its own prefix: one digest, not two.
        let prefix = if payload.len() <= PREFIX_BYTES { whole } else { prefix_digest(payload) };
        let entry = Recent { seq, len: payload.len() as u32, digest: whole, prefix };
        let i = usize::from(self.recent_next) % RECENT_SEGMENTS;
        self.recent_next = self.recent_next.wrapping_add(1);
        if self.recent.is_none() && i == 0 {
            self.first_recent = entry;
            return;
        }
        let first = self.first_recent;
        let recent = self.recent.get_or_insert_with(|| {
            let mut ring = Box::<[Recent; RECENT_SEGMENTS]>::default();
            if let Some(s) = ring.first_mut() {
                *s = first;
            }
            ring
        });
        if let Some(slot) = recent.get_mut(i) {
            *slot = entry;
        }
    }

    /// The segments remembered: the boxed ring, or before it the one inline entry (its
    /// length 0 while none was remembered, and so never matched).
    fn recent(&self) -> &[Recent] {
        match self.recent.as_deref() {
            Some(ring) => ring,
            None => std::slice::from_ref(&self.first_recent),
        }
    }

    /// Compares old bytes starting at `seq` with the recently delivered segment that started
    /// there, whatever the lengths: `Some(true)` when the bytes both hold differ, `Some(false)`
    /// when they agree, `None` when no remembered segment starts there (or the new copy is
    /// too short to compare). A longer copy is compared over the first one's length; a
    /// shorter one over their first [`PREFIX_BYTES`].
    fn compare_recent(&self, seq: u32, payload: &[u8]) -> Option<bool> {
        let mut verdict = None;
        for &Recent { len: rl, digest: rd, prefix: rp, .. } in
            self.recent().iter().filter(|e| e.seq == seq && e.len > 0)
        {
            let differs = if payload.len() >= rl as usize {
                payload.get(..rl as usize).map(digest) != Some(rd)
            } else if payload.len() >= PREFIX_BYTES && rl as usize >= PREFIX_BYTES {
                prefix_digest(payload) != rp
            } else {
                continue;
            };
            if differs {
                return Some(true);
            }
            verdict = Some(false);
        }
        verdict
    }

    fn advance(&mut self, n: usize) {
        if let Some(s) = self.next_seq.as_mut() {
            *s = s.wrapping_add(n as u32);
        }
    }

    fn clear_queue(&mut self) {
        if let Some(r) = self.reorder.as_mut() {
            r.ooo.clear();
        }
        self.ooo_bytes = 0;
    }

    fn enqueue(&mut self, seq: u32, payload: &[u8]) {
        let Some(next) = self.next_seq else { return };
        let key = seq_diff(seq, next);
        let ooo = &mut self.reorder.get_or_insert_with(Box::default).ooo;
        let pos = ooo.partition_point(|(s, _)| seq_diff(*s, next) < key);
        if let Some((s, d)) = ooo.get(pos) {
            if *s == seq && d.len() >= payload.len() {
                self.retransmitted_bytes += payload.len() as u64;
                return;
            }
        }
        ooo.insert(pos, (seq, payload.to_vec()));
        self.ooo_bytes += payload.len();
    }

    /// Sequence number of the first queued segment.
    pub fn first_queued(&self) -> Option<u32> {
        self.reorder.as_ref()?.ooo.first().map(|(s, _)| *s)
    }

    /// Whether the out-of-order queue is over its bounds, so the hole must be skipped.
    pub fn over_limit(&self) -> bool {
        self.reorder.as_ref().is_some_and(|r| r.ooo.len() > MAX_OOO_SEGMENTS) || self.ooo_bytes > MAX_OOO_BYTES
    }

    /// Pops the next queued segment if it is now in order (trimmed of overlap). Call after
    /// delivering in-order data until it returns `None`.
    pub fn pop_ready(&mut self) -> Option<Vec<u8>> {
        loop {
            let next = self.next_seq?;
            let ooo = &mut self.reorder.as_mut()?.ooo;
            let (seq, len) = ooo.first().map(|(s, d)| (*s, d.len()))?;
            let diff = seq_diff(seq, next);
            if diff > 0 {
                return None;
            }
            let (_, mut data) = ooo.remove(0);
            self.ooo_bytes -= len;
            let overlap = (-diff) as usize;
            if overlap >= len {
                self.retransmitted_bytes += len as u64;
                continue;
            }
            if overlap > 0 {
                self.retransmitted_bytes += overlap as u64;
                data.drain(..overlap);
            }
            self.advance(data.len());
            return Some(data);
        }
    }

    /// Skips the hole before the first queued segment; returns the bytes lost, or `None` when
    /// nothing is queued.
    pub fn skip_hole(&mut self) -> Option<u64> {
        let next = self.next_seq?;
        let seq = self.first_queued()?;
        let lost = seq_diff(seq, next).max(0) as u64;
        if lost > 0 {
            let holes = &mut self.reorder.get_or_insert_with(Box::default).holes;
            if holes.len() >= MAX_HOLES {
                holes.remove(0);
            }
            holes.push((next, seq));
        }
        self.next_seq = Some(seq);
        self.gaps += 1;
        self.gap_bytes += lost;
        Some(lost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_segment_is_remembered_without_a_heap_ring_and_a_rewrite_of_it_is_caught() {
        let mut h = HalfStream::default();
        assert_eq!(h.accept(100, false, false, b"abcdef"), Accepted::Data(b"abcdef"));
        assert!(h.recent.is_none(), "one segment: nothing on the heap");
        assert_eq!(h.accept(100, false, false, b"abcdeX"), Accepted::Conflict { bytes: 6 });
        assert_eq!(h.accept(106, false, false, b"ghi"), Accepted::Data(b"ghi"));
        assert!(h.recent.is_some(), "a second segment boxes the ring");
        assert_eq!(h.accept(100, false, false, b"abcdeX"), Accepted::Conflict { bytes: 6 }, "the first moved in");
        assert_eq!(h.accept(100, false, false, b"abcdef"), Accepted::Duplicate);
        assert_eq!(h.accept(106, false, false, b"ghX"), Accepted::Conflict { bytes: 3 });
    }

    #[test]
    fn delivers_in_order_and_drops_retransmissions() {
        let mut h = HalfStream::default();
        assert_eq!(h.accept(99, true, false, b""), Accepted::Duplicate);
        assert_eq!(h.accept(100, false, false, b"abc"), Accepted::Data(b"abc"));
        assert_eq!(h.accept(100, false, false, b"abc"), Accepted::Duplicate);
        assert_eq!(h.accept(101, false, false, b"bcde"), Accepted::Data(b"de"));
        assert_eq!(h.accept(100, false, false, b"a"), Accepted::Stale(b"a"), "unlike any segment seen");
        assert_eq!(h.retransmitted_bytes, 6);
    }

    #[test]
    fn reports_a_retransmission_whose_bytes_differ() {
        let mut h = HalfStream::default();
        assert_eq!(h.accept(100, false, false, b"write 1"), Accepted::Data(b"write 1"));
        assert_eq!(h.accept(100, false, false, b"write 1"), Accepted::Duplicate);
        assert_eq!(h.accept(100, false, false, b"write 9"), Accepted::Conflict { bytes: 7 });
    }

    #[test]
    fn compares_a_retransmission_of_another_length_over_the_bytes_both_hold() {
        let first: Vec<u8> = (0..40u8).collect();
        let mut h = HalfStream::default();
        assert_eq!(h.accept(100, false, false, &first), Accepted::Data(&first[..]));
        // Longer, same start: the old part agrees, the new bytes are taken.
        let mut longer = first.clone();
        longer.extend([40, 41]);
        assert_eq!(h.accept(100, false, false, &longer), Accepted::Data(&[40u8, 41][..]));
        // Longer, rewritten start (an object inserted): a conflict, the first copy stands.
        let mut h = HalfStream::default();
        h.accept(100, false, false, &first);
        let mut inserted = vec![0xff];
        inserted.extend(&first);
        assert_eq!(h.accept(100, false, false, &inserted), Accepted::Conflict { bytes: 41 });
        // Shorter (an object deleted): compared over the first 32 bytes.
        let mut deleted = first.clone();
        deleted.remove(5);
        assert_eq!(h.accept(100, false, false, &deleted[..35]), Accepted::Conflict { bytes: 35 });
        assert_eq!(h.accept(100, false, false, &first[..35]), Accepted::Duplicate);
        // Too short to compare: stale, as before.
        assert_eq!(h.accept(100, false, false, &first[..4]), Accepted::Stale(&first[..4]));
    }

    #[test]
    fn reorders_a_swapped_pair() {
        let mut h = HalfStream::default();
        assert_eq!(h.accept(0, false, false, b"ab"), Accepted::Data(b"ab"));
        assert_eq!(h.accept(4, false, false, b"ef"), Accepted::Queued);
        assert_eq!(h.accept(2, false, false, b"cd"), Accepted::Data(b"cd"));
        assert_eq!(h.pop_ready().as_deref(), Some(&b"ef"[..]));
        assert_eq!(h.pop_ready(), None);
    }

    #[test]
    fn skips_a_hole_when_asked() {
        let mut h = HalfStream::default();
        h.accept(0, false, false, b"ab");
        h.accept(10, false, false, b"kl");
        assert_eq!(h.skip_hole(), Some(8));
        assert_eq!(h.pop_ready().as_deref(), Some(&b"kl"[..]));
        assert_eq!(h.gap_bytes, 8);
    }

    #[test]
    fn bounds_the_out_of_order_queue() {
        let mut h = HalfStream::default();
        h.accept(0, false, false, b"a");
        for i in 0..=MAX_OOO_SEGMENTS as u32 {
            h.accept(10 + i * 10, false, false, b"x");
        }
        assert!(h.over_limit());
    }

    #[test]
    fn handles_sequence_wraparound() {
        let mut h = HalfStream::default();
        assert_eq!(h.accept(u32::MAX - 1, false, false, b"ab"), Accepted::Data(b"ab"));
        assert_eq!(h.accept(0, false, false, b"cd"), Accepted::Data(b"cd"));
    }

    #[test]
    fn loses_sync_after_a_run_of_segments_out_of_order_and_regains_it() {
        let mut h = HalfStream::default();
        assert_eq!(h.accept(1000, false, false, b"ab"), Accepted::Data(b"ab"));
        for i in 0..=MAX_UNSYNCED_SEGMENTS {
            assert!(!h.lost_sync());
            // Wild sequence numbers, all behind the stream.
            assert_eq!(h.accept(10 * i, false, false, b"xy"), Accepted::Stale(b"xy"));
        }
        assert!(h.lost_sync());
        h.restart_at(5000, false, 2);
        assert_eq!(h.accept(5002, false, false, b"cd"), Accepted::Data(b"cd"));
        assert!(h.lost_sync(), "one segment in order is not yet consistency");
        assert_eq!(h.accept(5004, false, false, b"ef"), Accepted::Data(b"ef"));
        assert!(!h.lost_sync());
    }

    #[test]
    fn honest_retransmissions_do_not_count_as_lost_sync() {
        let mut h = HalfStream::default();
        h.accept(0, false, false, b"ab");
        for _ in 0..10 {
            assert_eq!(h.accept(0, false, false, b"ab"), Accepted::Duplicate);
        }
        assert!(!h.lost_sync());
    }
}
