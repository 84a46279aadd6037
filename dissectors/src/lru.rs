//! The flow table: a hash index over a slab of slots, the slots kept in least recently used
//! order by doubly linked lists threaded through them (indices, not pointers).
//!
//! Two lists, as in a segmented LRU: new entries are on probation; an entry the caller
//! [promotes](LruTable::promote) (a flow that proved to be a real conversation) moves to the
//! protected list. Eviction takes the least recently used entry on probation, and a
//! protected one only when none is on probation: a flood of new flows (spoofed SYNs, a scan)
//! evicts its own flows, not the plant's polled connections, however fast it comes.
//!
//! Every operation the engine does per packet is O(1): find, touch (move to the front),
//! insert, remove, and evict the least recently used. There is no scan of the table, so a
//! flood of new flows costs the same per packet whether the table holds ten flows or a
//! million (a scan for the oldest eighth, as before, cost O(n) per eviction round and
//! dominated a flood). The order is that of the engine's packets, so it is deterministic.
//!
//! The key lives once, in its slot; the index holds only the slot's number (4 bytes and a
//! control byte per entry) and rehashes from the slot's key.

// Reviewed for `clippy::arithmetic_side_effects` (issue 15): only the table's own counts
// (bounded by the engine's `max_flows` and 31-bit slot numbers) and a size constant; nothing
// from a packet.
#![allow(clippy::arithmetic_side_effects)]

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

/// No slot: the end of a list. Slot numbers are 31 bits: the top bit of a slot's `prev` is
/// its list, so that the links cost 8 bytes a flow, not 16 with padding.
const NIL: u32 = 0x7fff_ffff;
/// The bit of `prev` that holds the list.
const LIST_BIT: u32 = 1 << 31;

/// One slot of the slab: its neighbours in recency order (or, when free, the next free
/// slot in `next`) and its entry.
#[derive(Debug)]
struct Slot<K, V> {
    /// The previous slot, and in the top bit the list it is on ([`PROBATION`] or
    /// [`PROTECTED`]).
    prev_list: u32,
    next: u32,
    entry: Option<(K, V)>,
}

impl<K, V> Slot<K, V> {
    fn prev(&self) -> u32 {
        self.prev_list & !LIST_BIT
    }
    fn list(&self) -> u8 {
        (self.prev_list >> 31) as u8
    }
    fn set_prev(&mut self, prev: u32) {
        self.prev_list = (self.prev_list & LIST_BIT) | (prev & !LIST_BIT);
    }
    fn set_prev_list(&mut self, prev: u32, list: u8) {
        self.prev_list = (u32::from(list & 1) << 31) | (prev & !LIST_BIT);
    }
}

/// The list of new entries.
const PROBATION: u8 = 0;
/// The list of promoted entries.
const PROTECTED: u8 = 1;

/// Slots in chunks of [`CHUNK`]: the table grows a chunk at a time and never reallocates
/// what it holds, so its peak memory is what it holds (a growing `Vec` of a million flows
/// would hold the old and the new buffer at once, half a gigabyte more at the peak).
#[derive(Debug)]
struct Slab<K, V> {
    chunks: Vec<Vec<Slot<K, V>>>,
    len: u32,
}

/// Slots per chunk (about 2 MB of flows).
const CHUNK: u32 = 4096;

impl<K, V> Slab<K, V> {
    fn get(&self, i: u32) -> Option<&Slot<K, V>> {
        self.chunks.get((i / CHUNK) as usize)?.get((i % CHUNK) as usize)
    }
    fn get_mut(&mut self, i: u32) -> Option<&mut Slot<K, V>> {
        self.chunks.get_mut((i / CHUNK) as usize)?.get_mut((i % CHUNK) as usize)
    }
    /// Appends a slot; its number.
    fn push(&mut self, slot: Slot<K, V>) -> u32 {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK as usize));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(slot);
        }
        self.len += 1;
        self.len - 1
    }
}

/// A map from `K` to `V` that knows which entry was used least recently.
#[derive(Debug)]
pub(crate) struct LruTable<K, V> {
    index: HashTable<u32>,
    slots: Slab<K, V>,
    /// First free slot (a list through `next`).
    free: u32,
    /// Most recently used, per list.
    head: [u32; 2],
    /// Least recently used, per list.
    tail: [u32; 2],
    len: usize,
    /// Entries on each list.
    lens: [usize; 2],
}

impl<K: Hash + Eq, V> Default for LruTable<K, V> {
    fn default() -> Self {
        LruTable {
            index: HashTable::new(),
            slots: Slab { chunks: Vec::new(), len: 0 },
            free: NIL,
            head: [NIL; 2],
            tail: [NIL; 2],
            len: 0,
            lens: [0; 2],
        }
    }
}

fn hash<K: Hash>(k: &K) -> u64 {
    FxBuildHasher.hash_one(k)
}

impl<K: Hash + Eq, V> LruTable<K, V> {
    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Entries on probation (never promoted).
    pub(crate) fn probation_len(&self) -> usize {
        self.lens.get(usize::from(PROBATION)).copied().unwrap_or(0)
    }

    /// Slot numbers in use or free: every entry is at a slot below this.
    pub(crate) fn slot_count(&self) -> u32 {
        self.slots.len
    }

    fn key_at(slots: &Slab<K, V>, i: u32) -> Option<&K> {
        slots.get(i)?.entry.as_ref().map(|(k, _)| k)
    }

    /// The slot of `k`.
    pub(crate) fn find(&self, k: &K) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(hash(k), |&i| Self::key_at(slots, i) == Some(k)).copied()
    }

    /// The value in slot `i`.
    pub(crate) fn at(&self, i: u32) -> Option<&V> {
        self.slots.get(i)?.entry.as_ref().map(|(_, v)| v)
    }

    /// The value in slot `i`, to change.
    pub(crate) fn at_mut(&mut self, i: u32) -> Option<&mut V> {
        self.slots.get_mut(i)?.entry.as_mut().map(|(_, v)| v)
    }

    /// The value of `k` (its recency unchanged).
    #[cfg(test)]
    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        self.at(self.find(k)?)
    }

    fn set_next(&mut self, list: usize, i: u32, next: u32) {
        match self.slots.get_mut(i) {
            Some(s) => s.next = next,
            None => {
                if let Some(h) = self.head.get_mut(list) {
                    *h = next;
                }
            }
        }
    }

    fn set_prev(&mut self, list: usize, i: u32, prev: u32) {
        match self.slots.get_mut(i) {
            Some(s) => s.set_prev(prev),
            None => {
                if let Some(t) = self.tail.get_mut(list) {
                    *t = prev;
                }
            }
        }
    }

    /// Takes slot `i` out of its recency list.
    fn unlink(&mut self, i: u32) {
        let Some(s) = self.slots.get(i) else { return };
        let (prev, next, list) = (s.prev(), s.next, usize::from(s.list()));
        // A missing neighbour (NIL) is the list's end: the head or tail moves instead.
        self.set_next(list, prev, next);
        self.set_prev(list, next, prev);
        if let Some(n) = self.lens.get_mut(list) {
            *n -= 1;
        }
    }

    /// Puts slot `i` at the front (most recent) of `list`.
    fn push_front(&mut self, list: u8, i: u32) {
        let l = usize::from(list);
        let head = self.head.get(l).copied().unwrap_or(NIL);
        if let Some(s) = self.slots.get_mut(i) {
            s.set_prev_list(NIL, list);
            s.next = head;
        }
        self.set_prev(l, head, i);
        if let Some(h) = self.head.get_mut(l) {
            *h = i;
        }
        if let Some(n) = self.lens.get_mut(l) {
            *n += 1;
        }
    }

    /// Marks slot `i` as the most recently used of its list.
    #[cfg(test)]
    fn touch(&mut self, i: u32) {
        self.touch_or_promote(i, |_| false);
    }

    /// Marks slot `i` as the most recently used, on the protected list.
    #[cfg(test)]
    fn promote(&mut self, i: u32) {
        self.touch_or_promote(i, |_| true);
    }

    /// Marks slot `i` as the most recently used: of the protected list when it is on it or
    /// when `proven` holds for its value, else of probation. (What `touch` or `promote` would do,
    /// with one look at the slot: this is every packet's.)
    pub(crate) fn touch_or_promote(&mut self, i: u32, proven: impl FnOnce(&V) -> bool) {
        let Some(s) = self.slots.get(i) else { return };
        let list = s.list();
        let to = if list == PROTECTED || s.entry.as_ref().is_some_and(|(_, v)| proven(v)) { PROTECTED } else { list };
        if to == list && self.head.get(usize::from(list)) == Some(&i) {
            return;
        }
        let (prev, next, l) = (s.prev(), s.next, usize::from(list));
        self.set_next(l, prev, next);
        self.set_prev(l, next, prev);
        if let Some(n) = self.lens.get_mut(l) {
            *n -= 1;
        }
        self.push_front(to, i);
    }

    /// Whether slot `i` was promoted.
    #[cfg(test)]
    fn is_protected(&self, i: u32) -> bool {
        self.slots.get(i).map(Slot::list) == Some(PROTECTED)
    }

    /// Bytes one entry costs the table: its slot, and its index entry (a slot number and a
    /// control byte) at the index's highest load factor (7/8).
    pub(crate) const fn entry_bytes() -> usize {
        std::mem::size_of::<Slot<K, V>>() + (std::mem::size_of::<u32>() + 1) * 8 / 7
    }

    /// Inserts `k` (which must not be held: see [`LruTable::find`]) as the most recently
    /// used; returns its slot.
    pub(crate) fn insert(&mut self, k: K, v: V) -> u32 {
        self.insert_with(k, || v)
    }

    /// Inserts `k` (which must not be held) with the value `make` returns, as the most
    /// recently used; returns its slot. The value is made where the slot is written, so
    /// that an entry of several hundred bytes is not built elsewhere and copied in (under a
    /// flood of new flows, once per packet).
    pub(crate) fn insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> u32 {
        let h = hash(&k);
        let i = if self.free != NIL {
            let i = self.free;
            if let Some(s) = self.slots.get_mut(i) {
                self.free = s.next;
                s.entry = Some((k, make()));
            }
            i
        } else {
            // Beyond 2^31 - 1 slots the numbers would collide with NIL: a table that large
            // (a terabyte of flow state) is refused by the caller's bound long before.
            self.slots.push(Slot { prev_list: NIL, next: NIL, entry: Some((k, make())) })
        };
        let slots = &self.slots;
        self.index.insert_unique(h, i, |&j| Self::key_at(slots, j).map_or(0, hash));
        self.push_front(PROBATION, i);
        self.len += 1;
        i
    }

    /// Takes slot `i` out of the index and the recency list, onto the free list; its entry
    /// is still in place.
    fn release(&mut self, i: u32) -> Option<&mut Slot<K, V>> {
        let h = hash(Self::key_at(&self.slots, i)?);
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        self.unlink(i);
        let free = self.free;
        let s = self.slots.get_mut(i)?;
        s.set_prev_list(NIL, PROBATION);
        s.next = free;
        self.free = i;
        self.len -= 1;
        Some(s)
    }

    /// Removes the entry in slot `i`.
    pub(crate) fn remove_at(&mut self, i: u32) -> Option<(K, V)> {
        self.release(i)?.entry.take()
    }

    /// Removes and drops the entry in slot `i` where it lies: an entry of several hundred
    /// bytes is not copied out only to be dropped (under a flood, once per packet).
    pub(crate) fn discard_at(&mut self, i: u32) -> bool {
        self.release(i).map(|s| s.entry = None).is_some()
    }

    /// Removes `k`'s entry.
    #[cfg(test)]
    fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.find(k)?;
        self.remove_at(i).map(|(_, v)| v)
    }

    /// The next to evict: the least recently used entry on probation, else the least
    /// recently used protected one.
    fn victim(&self) -> u32 {
        match self.tail {
            [NIL, protected] => protected,
            [probation, _] => probation,
        }
    }

    /// The value [`LruTable::pop_oldest`] would remove.
    #[cfg(test)]
    fn oldest(&self) -> Option<&V> {
        self.at(self.victim())
    }

    /// Removes the least recently used entry on probation, or when there is none the least
    /// recently used protected one.
    #[cfg(test)]
    fn pop_oldest(&mut self) -> Option<(K, V)> {
        self.remove_at(self.victim())
    }

    /// Drops what [`LruTable::pop_oldest`] would return; false when empty.
    pub(crate) fn discard_oldest(&mut self) -> bool {
        self.discard_at(self.victim())
    }

    /// Shrinks the index when it holds far fewer entries than it has room for (a table that
    /// was full sheds most of its flows under pressure): a lookup in a sparse index of a
    /// million slots' capacity is a cache miss, in a compact one it is not. One rehash of
    /// what is left, once per shrink, as growing it is once per doubling: amortised O(1).
    pub(crate) fn compact_index(&mut self) {
        if self.index.capacity() <= 8 * self.len.max(1024) {
            return;
        }
        let slots = &self.slots;
        self.index.shrink_to(self.len * 2, |&j| Self::key_at(slots, j).map_or(0, hash));
    }

    /// The least recently used entry on probation: its slot and value.
    pub(crate) fn oldest_on_probation(&self) -> Option<(u32, &V)> {
        let i = self.tail.get(usize::from(PROBATION)).copied().unwrap_or(NIL);
        self.at(i).map(|v| (i, v))
    }

    /// The least recently used value of each list, probation first (to time out idle
    /// entries of both).
    pub(crate) fn oldest_of_each(&self) -> [(u32, Option<&V>); 2] {
        self.tail.map(|i| (i, self.at(i)))
    }

    /// The values in eviction order (for tests).
    #[cfg(test)]
    fn oldest_first(&self) -> Vec<&V> {
        let mut out = Vec::new();
        for &tail in &self.tail {
            let mut i = tail;
            while let Some(s) = self.slots.get(i) {
                if let Some((_, v)) = &s.entry {
                    out.push(v);
                }
                i = s.prev();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_in_order_of_last_use() {
        let mut t = LruTable::default();
        for k in 0..5u32 {
            t.insert(k, k * 10);
        }
        let two = t.find(&2).unwrap();
        t.touch(two);
        let zero = t.find(&0).unwrap();
        t.touch(zero);
        assert_eq!(t.oldest_first(), [&10, &30, &40, &20, &0]);
        assert_eq!(t.pop_oldest(), Some((1, 10)));
        assert_eq!(t.pop_oldest(), Some((3, 30)));
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(&4), Some(&40));
        assert_eq!(t.get(&1), None);
    }

    #[test]
    fn reuses_freed_slots_and_keeps_the_order_through_removals() {
        let mut t = LruTable::default();
        for k in 0..4u32 {
            t.insert(k, k);
        }
        assert_eq!(t.remove(&1), Some(1));
        assert_eq!(t.remove(&3), Some(3)); // the head
        assert_eq!(t.remove(&0), Some(0)); // the tail
        let slot = t.insert(7, 7);
        assert!(slot < 4, "a freed slot is reused, the slab does not grow");
        t.insert(8, 8);
        assert_eq!(t.oldest_first(), [&2, &7, &8]);
        assert_eq!(t.oldest(), Some(&2));
        while t.pop_oldest().is_some() {}
        assert_eq!((t.len(), t.oldest()), (0, None));
        t.insert(9, 9);
        assert_eq!(t.oldest_first(), [&9]);
    }

    #[test]
    fn evicts_what_is_on_probation_before_what_was_promoted() {
        let mut t = LruTable::default();
        let a = t.insert('a', 1);
        t.promote(a);
        for (k, v) in [('b', 2), ('c', 3)] {
            t.insert(k, v);
        }
        assert!(t.is_protected(a));
        assert_eq!(t.oldest_first(), [&2, &3, &1]);
        assert_eq!(t.pop_oldest(), Some(('b', 2)));
        assert_eq!(t.pop_oldest(), Some(('c', 3)));
        assert_eq!(t.pop_oldest(), Some(('a', 1)), "only then the promoted one");
        let d = t.insert('d', 4);
        assert!(!t.is_protected(d), "a reused slot starts on probation");
    }

    /// The count of entries on probation follows every move between the lists (the engine's
    /// pressure mode sheds by it), and the index still finds every key once compacted.
    #[test]
    fn counts_what_is_on_probation_through_promotions_removals_and_compaction() {
        let mut t = LruTable::default();
        for k in 0..20_000u32 {
            let i = t.insert(k, k);
            if k % 4 == 0 {
                t.promote(i);
            }
            if k % 7 == 0 {
                t.touch(i);
            }
        }
        assert_eq!(t.probation_len(), 15_000);
        for k in 0..18_000u32 {
            t.remove(&k);
        }
        let on_probation = (18_000..20_000u32).filter(|k| k % 4 != 0).count();
        assert_eq!((t.len(), t.probation_len()), (2_000, on_probation));
        t.compact_index();
        assert!(t.index.capacity() < 8 * 2_048, "compacted: {}", t.index.capacity());
        assert!((18_000..20_000u32).all(|k| t.get(&k) == Some(&k)));
        while let Some((_, &v)) = t.oldest_on_probation() {
            assert!(v % 4 != 0, "only what was never promoted");
            let i = t.find(&v).unwrap();
            assert!(t.discard_at(i));
        }
        assert_eq!((t.len(), t.probation_len()), (500, 0));
    }

    #[test]
    fn holds_many_keys_through_rehashing() {
        let mut t = LruTable::default();
        for k in 0..10_000u64 {
            t.insert(k, k);
            if k % 3 == 0 {
                t.remove(&(k / 2));
            }
        }
        for k in 0..10_000u64 {
            assert_eq!(t.get(&k).is_some(), t.find(&k).is_some());
        }
        assert_eq!(t.oldest_first().len(), t.len());
        let mut prev = None;
        while let Some((k, _)) = t.pop_oldest() {
            assert!(prev < Some(k), "never touched again: evicted in insertion order");
            prev = Some(k);
        }
    }
}
