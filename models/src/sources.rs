//! Per-address state that a flood of new addresses cannot crowd out.
//!
//! Host-scan counts (per client, over ICS requests) and scan windows (per source, over
//! conversations and ARP) keep state per address. A spoofed flood brings a new address per
//! packet; were every address admitted up to one cap, the flood would fill it within a
//! second of each window, and a device of the baseline that starts scanning after that (a
//! compromised engineering workstation, the likeliest scanner in a plant) would go unseen,
//! while every flood packet paid a cache miss in a table of megabytes.
//!
//! So addresses the baseline does not know ("strangers") get state only while fewer than
//! [`MAX_STRANGERS`] of them hold some; the baseline's own devices get it up to the whole
//! cap. Past either bound the caller counts what it could not follow. The table stays small
//! under a flood (a few hundred kilobytes: it lives in cache), and a stranger that was
//! admitted first (a scanner that started before the flood) keeps its state.

use std::collections::hash_map::Entry;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::hash_bits::HashBits;
use crate::model::hash64;

/// Addresses unknown to the baseline that hold state at once, per table.
pub const MAX_STRANGERS: usize = 4_096;

/// Bits of a table's address filter: 128 Ki (16 KiB), a few percent of them set by the
/// [`MAX_STRANGERS`] strangers and the devices of a plant.
const HELD_BITS_LOG2: u32 = 17;

/// State per address, bounded as the module says.
#[derive(Debug)]
pub(crate) struct SourceTable<V> {
    map: FxHashMap<IpAddr, Tracked<V>>,
    /// Holds at least every address of `map`: a flood's new address, turned away once the
    /// strangers are at their bound, is told so with one read instead of a probe of `map`.
    held: HashBits,
    /// Entries whose address the baseline does not know.
    strangers: usize,
    max: usize,
    max_strangers: usize,
}

#[derive(Debug)]
struct Tracked<V> {
    known: bool,
    state: V,
}

impl<V: Default> SourceTable<V> {
    /// A table of at most `max` addresses, of which at most [`MAX_STRANGERS`] unknown.
    pub(crate) fn new(max: usize) -> Self {
        let mut t = SourceTable {
            map: FxHashMap::default(),
            held: HashBits::new(HELD_BITS_LOG2),
            strangers: 0,
            max: 0,
            max_strangers: 0,
        };
        t.set_max(max);
        t
    }

    /// Bounds the table (a memory cap): strangers are held to the same bound when it is
    /// lower than [`MAX_STRANGERS`].
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max.max(1);
        self.max_strangers = MAX_STRANGERS.min(self.max);
    }

    /// Addresses that hold state.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether `ip` holds state or would be given some by [`SourceTable::admit`] (`known`
    /// asked only when that depends on it).
    pub(crate) fn has_room(&self, ip: &IpAddr, known: impl FnOnce() -> bool) -> bool {
        if self.map.len() >= self.max {
            return self.map.contains_key(ip);
        }
        self.strangers < self.max_strangers || self.map.contains_key(ip) || known()
    }

    /// The state of `ip`, created (default) if the bounds leave room for an address the
    /// baseline does (`known`) or does not know; `None` if they do not. `known` is asked
    /// only for an address not yet in the table.
    pub(crate) fn admit(&mut self, ip: IpAddr, known: impl FnOnce() -> bool) -> Option<&mut V> {
        let (len, strangers, max, max_strangers) = (self.map.len(), self.strangers, self.max, self.max_strangers);
        let room = |known: bool| len < max && (known || strangers < max_strangers);
        let (mut ask, mut answer) = (Some(known), None);
        let mut is_known = || *answer.get_or_insert_with(|| ask.take().is_some_and(|f| f()));
        let hash = hash64(&ip);
        if !self.held.may_hold(hash) && !room(is_known()) {
            return None;
        }
        match self.map.entry(ip) {
            Entry::Occupied(o) => Some(&mut o.into_mut().state),
            Entry::Vacant(v) => {
                let known = is_known();
                if !room(known) {
                    return None;
                }
                self.strangers += usize::from(!known);
                self.held.add(hash);
                Some(&mut v.insert(Tracked { known, state: V::default() }).state)
            }
        }
    }

    /// Keeps the addresses whose state `keep` says to keep.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        let mut strangers = 0;
        self.held.clear();
        let held = &mut self.held;
        self.map.retain(|ip, t| {
            let kept = keep(&mut t.state);
            strangers += usize::from(kept && !t.known);
            if kept {
                held.add(hash64(ip));
            }
            kept
        });
        self.strangers = strangers;
    }

    /// Every address and its state, in no order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&IpAddr, &mut V)> {
        self.map.iter_mut().map(|(ip, t)| (ip, &mut t.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn strangers_stop_at_their_bound_and_known_addresses_still_get_state() {
        let mut t: SourceTable<u32> = SourceTable::new(MAX_STRANGERS + 10);
        for n in 0..MAX_STRANGERS as u32 {
            assert!(t.admit(ip(n), || false).is_some(), "stranger {n} admitted within the bound");
        }
        assert!(t.admit(ip(1 << 30), || false).is_none(), "one stranger past the bound");
        assert!(t.admit(ip(7), || false).is_some(), "an admitted stranger keeps its state");
        for n in 0..10 {
            assert!(t.admit(ip(2 << 30 | n), || true).is_some(), "known address {n}");
        }
        assert!(t.admit(ip(3 << 30), || true).is_none(), "the whole table is full");
        assert_eq!(t.len(), MAX_STRANGERS + 10);
    }

    #[test]
    fn retain_frees_room_for_new_strangers() {
        let mut t: SourceTable<u32> = SourceTable::new(1 << 20);
        for n in 0..MAX_STRANGERS as u32 {
            *t.admit(ip(n), || false).expect("room") = n;
        }
        assert!(!t.has_room(&ip(1 << 30), || false));
        assert!(t.has_room(&ip(5), || false), "a tracked address has room");
        assert!(t.has_room(&ip(1 << 30), || true), "a known address has room");
        t.retain(|n| *n < 100);
        assert_eq!(t.len(), 100);
        assert!(t.admit(ip(1 << 30), || false).is_some(), "room again after the retain");
    }

    #[test]
    fn a_memory_cap_below_the_stranger_bound_bounds_strangers_too() {
        let mut t: SourceTable<u8> = SourceTable::new(MAX_STRANGERS);
        t.set_max(3);
        let admitted = (0..10).filter(|&n| t.admit(ip(n), || false).is_some()).count();
        assert_eq!(admitted, 3);
    }

    proptest::proptest! {
        /// Whatever the admits and retains, an address with state is never turned away by
        /// the filter (it finds its state again), and one turned away was really not held.
        #[test]
        fn the_filter_holds_every_address_with_state(
            ops in proptest::collection::vec((0u32..6000, proptest::bool::ANY, 0u8..20), 1..3000)
        ) {
            let mut t: SourceTable<u32> = SourceTable::new(5000);
            for (n, known, op) in ops {
                if op == 0 {
                    t.retain(|v| *v % 3 != 0);
                    continue;
                }
                let before = t.map.contains_key(&ip(n));
                let got = t.admit(ip(n), || known).map(|v| { *v = n; n });
                proptest::prop_assert_eq!(got.is_some(), before || t.map.contains_key(&ip(n)));
                proptest::prop_assert!(!before || got.is_some(), "held address {} refused", n);
                for k in t.map.keys() {
                    proptest::prop_assert!(t.held.may_hold(hash64(k)));
                }
            }
        }
    }
}
