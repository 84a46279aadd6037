//! `--memory-cap`: one number that bounds everything that grows with the traffic.
//!
//! A sensor on a plant network sees hostile traffic by design: a flood of spoofed sources
//! makes a new flow (and a new client, and a new pair) per packet, reordered segments fill
//! reassembly queues, and each would grow without a bound. The cap is shared out among them:
//!
//! | what                            | share of the cap after [`BASE_BYTES`] | bound                          |
//! |---------------------------------|---------------------------------------|--------------------------------|
//! | the flow table                  | 40 %                                  | `max_flows` ([`FLOW_BYTES`] each) |
//! | reassembly buffers (all flows)  | 20 %                                  | `reassembly_budget`            |
//! | pairs unknown to the baseline (detecting), pairs learned (learning) | 10 % | `max_new_pairs` ([`pair_bytes`] each), `max_learned_pairs` ([`LEARNED_PAIR_BYTES`] each) |
//! | clients tracked for host scans  | 8 %                                   | `max_clients` ([`CLIENT_BYTES`] each) |
//! | the rest: models' fixed tables (new hosts and services), alert folds, queues, allocator slack | 22 % | (fixed bounds of their own) |
//!
//! Reading captures costs a block ([`crate::capture::file::BLOCK_BYTES`]) whatever their
//! size; the models' per-pair and per-host tables have fixed bounds of their own
//! (`MAX_NEW_PAIRS`, `MAX_NET_HOSTS`, ...), as do the pipeline's rings and the alert folds.
//! What was evicted, shed or not tracked is counted and shown in the summary (and in the
//! metrics of `run`): flows evicted, reassembly buffers shed, clients untracked.

use std::sync::OnceLock;

use otsensor_dissectors::engine::{Engine, EngineConfig};

/// What the process costs before any traffic: code, libraries, the allocator's arenas,
/// thread stacks, the read blocks, the baseline loaded, the models' fixed tables.
pub const BASE_BYTES: u64 = 28 << 20;
/// The smallest cap accepted.
pub const MIN_CAP: u64 = 40 << 20;
/// Bytes a tracked flow costs at most: its entry in the table, and what a flow that carries
/// data allocates beside it (digests of its last segments, a dissector's state, the
/// allocator's rounding).
pub const FLOW_BYTES: u64 = Engine::flow_entry_bytes() as u64 + 640;

/// The bounds a cap gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The cap, if one was given.
    pub cap: Option<u64>,
    /// Most flows tracked at once (all workers together).
    pub max_flows: usize,
    /// Bytes all flows may hold in reassembly buffers (all workers together).
    pub reassembly_budget: usize,
    /// Most pairs unknown to the baseline the detector follows each on its own.
    pub max_new_pairs: usize,
    /// Most clients the detector tracks at once for host scans.
    pub max_clients: usize,
    /// Most pairs a baseline learns (`None`: the models' own bound,
    /// [`otsensor_models::learn::MAX_LEARNED_PAIRS`]).
    pub max_learned_pairs: Option<usize>,
    /// Depth of each worker's rings in `run`'s pipeline, in batches of
    /// [`crate::pipeline::BATCH_PACKETS`] frames.
    pub ring_batches: usize,
}

/// Ring depth under a cap: 16 batches of 256 frames a worker hold about 0.6 MB of frames
/// (and keep the read blocks they are in alive), against 10 MB at the full depth; enough
/// to keep the workers busy between two reads.
pub const CAPPED_RING_BATCHES: usize = 16;

/// Bytes a client tracked for host scans costs the detector: its state and the map's entry,
/// doubled for the map's growth.
pub const CLIENT_BYTES: u64 = 256;

/// Bytes a learned pair costs while learning: its model (functions, point ranges, value
/// envelopes and polls, each with a fixed bound) and its runtime, for a pair that has seen a
/// handful of operations; a flood's pairs, one request each, cost less.
pub const LEARNED_PAIR_BYTES: u64 = 4096;

/// Bytes a pair unknown to the baseline costs the detector: its runtime, twice (the table
/// is a vector, and growing it holds the old and the new buffer at once), and the index.
pub const fn pair_bytes() -> u64 {
    2 * otsensor_models::Detector::pair_state_bytes() as u64 + 64
}

impl Default for Limits {
    /// No cap: the defaults of each part.
    fn default() -> Self {
        let e = EngineConfig::default();
        Limits {
            cap: None,
            max_flows: e.max_flows,
            reassembly_budget: e.reassembly_budget,
            max_new_pairs: otsensor_models::detect::MAX_NEW_PAIRS,
            max_clients: otsensor_models::detect::MAX_CLIENTS,
            max_learned_pairs: None,
            ring_batches: crate::pipeline::RING_BATCHES,
        }
    }
}

impl Limits {
    /// The bounds of `cap` bytes; an error when it is too small to run in.
    pub fn of_cap(cap: u64) -> Result<Limits, String> {
        if cap < MIN_CAP {
            return Err(format!("--memory-cap {} is below the {} MiB otsensor needs to run", cap, MIN_CAP >> 20));
        }
        let rest = cap - BASE_BYTES;
        let share = |pct: u64| rest / 100 * pct;
        let n = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX).max(1);
        Ok(Limits {
            cap: Some(cap),
            max_flows: n(share(40) / FLOW_BYTES),
            reassembly_budget: n(share(20)),
            max_new_pairs: n(share(10) / pair_bytes()).min(otsensor_models::detect::MAX_NEW_PAIRS),
            max_clients: n(share(8) / CLIENT_BYTES).min(otsensor_models::detect::MAX_CLIENTS),
            max_learned_pairs: Some(n(share(10) / LEARNED_PAIR_BYTES)),
            ring_batches: CAPPED_RING_BATCHES,
        })
    }

    /// Applies the bounds to a learner.
    pub fn apply_to_learner(&self, learner: &mut otsensor_models::Learner) {
        if let Some(n) = self.max_learned_pairs {
            learner.set_max_pairs(n);
        }
    }

    /// Applies the bounds to an engine's configuration: the smaller of the cap's and what
    /// was asked for (`--max-flows`).
    pub fn apply(&self, engine: &mut EngineConfig) {
        if self.cap.is_none() {
            // No cap: what was asked for stands (`--max-flows` above the default included).
            return;
        }
        engine.max_flows = engine.max_flows.min(self.max_flows).max(1);
        engine.reassembly_budget = engine.reassembly_budget.min(self.reassembly_budget);
    }
}

/// Parses a size in bytes: a number with an optional suffix `K`, `M`, `G`, `T` (powers of
/// 1024, as `ulimit` and `ps` count), with or without `iB`/`B`: `512M`, `1G`, `1.5GiB`,
/// `67108864`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {s:?} (use e.g. 512M, 1G, 67108864)");
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// A learner bounded by the process's limits (`report` and `inventory` learn assets and pairs
/// too).
pub fn capped_learner() -> otsensor_models::Learner {
    let mut l = otsensor_models::Learner::new();
    limits().apply_to_learner(&mut l);
    l
}

static LIMITS: OnceLock<Limits> = OnceLock::new();

/// Sets the process's bounds (once, from the command line, before any work).
pub fn set_limits(l: Limits) {
    let _ = LIMITS.set(l);
}

/// The process's bounds: those of `--memory-cap`, or the defaults.
pub fn limits() -> Limits {
    LIMITS.get().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_and_without_suffixes() {
        assert_eq!(parse_size("67108864"), Ok(64 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("100k"), Ok(102_400));
        for bad in ["", "M", "12Q", "-5M", "0", "1e400G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_bounds_of_a_cap_add_up_to_less_than_the_cap() {
        for cap in [MIN_CAP, 64 << 20, 512 << 20, 8 << 30] {
            let l = Limits::of_cap(cap).unwrap();
            let sum = BASE_BYTES
                + l.max_flows as u64 * FLOW_BYTES
                + l.reassembly_budget as u64
                + l.max_new_pairs as u64 * pair_bytes()
                + l.max_clients as u64 * CLIENT_BYTES;
            assert!(sum < cap, "{cap}: {sum}");
            assert!(sum > cap / 2, "{cap}: the cap is used, not wasted ({sum})");
        }
        // 64 MiB: some 12 thousand flows.
        let l = Limits::of_cap(64 << 20).unwrap();
        assert!((10_000..30_000).contains(&l.max_flows), "{}", l.max_flows);
        assert!(Limits::of_cap(16 << 20).is_err());
    }

    #[test]
    fn a_cap_lowers_the_engine_bounds_never_raises_them() {
        let l = Limits::of_cap(64 << 20).unwrap();
        let mut e = EngineConfig { max_flows: 100, ..EngineConfig::default() };
        l.apply(&mut e);
        assert_eq!(e.max_flows, 100, "--max-flows below the cap's stays");
        let mut e = EngineConfig::default();
        l.apply(&mut e);
        assert_eq!((e.max_flows, e.reassembly_budget), (l.max_flows, l.reassembly_budget));
        let mut e = EngineConfig { max_flows: 1_062_500, ..EngineConfig::default() };
        Limits::default().apply(&mut e);
        assert_eq!(e.max_flows, 1_062_500, "with no cap, --max-flows above the default stands");
    }
}
