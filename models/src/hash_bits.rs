//! A set of hashes in a fixed array of bits: answers "maybe" or "certainly not" with one
//! memory read, so that a lookup of something never added (a spoofed address, a fold key of
//! a subject never seen) skips the probes of the hash maps behind it.

/// 2^`log2` bits, indexed by a hash's top bits (the best mixed of an FxHash). Never a false
/// "absent": [`HashBits::may_hold`] is false only for a hash not added since the last clear.
#[derive(Clone, Debug)]
pub(crate) struct HashBits {
    bits: Vec<u64>,
    shift: u32,
}

impl HashBits {
    /// An empty set of 2^`log2` bits (`log2` between 6 and 32).
    pub(crate) fn new(log2: u32) -> Self {
        let log2 = log2.clamp(6, 32);
        HashBits { bits: vec![0; 1 << (log2 - 6)], shift: 64 - log2 }
    }

    /// The word and the bit of `hash`.
    fn place(&self, hash: u64) -> (usize, u64) {
        let bit = hash >> self.shift;
        ((bit >> 6) as usize, 1 << (bit & 63))
    }

    pub(crate) fn add(&mut self, hash: u64) {
        let (word, bit) = self.place(hash);
        if let Some(w) = self.bits.get_mut(word) {
            *w |= bit;
        }
    }

    /// False only if `hash` was not added since the last clear.
    pub(crate) fn may_hold(&self, hash: u64) -> bool {
        let (word, bit) = self.place(hash);
        !matches!(self.bits.get(word), Some(w) if w & bit == 0)
    }

    pub(crate) fn clear(&mut self) {
        self.bits.fill(0);
    }

    /// Bits set (for tests of what a rebuild dropped).
    #[cfg(test)]
    pub(crate) fn count(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }
}
