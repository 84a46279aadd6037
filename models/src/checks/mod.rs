//! The rules: one function per rule, each reading the [`Observation`], the learned model and
//! the pair's runtime state, and reporting occurrences to the [`Folder`]. Their words are in
//! [`crate::words`]; [`crate::detect::Detector`] only dispatches.
//!
//! | module | rules |
//! |---|---|
//! | [`critical`] | the critical operations (restart, stop, download, ...) |
//! | [`assets`] | `new_asset`, `mac_changed`, `identity_changed` |
//! | [`pair`] | `new_pair`, `write_on_read_only_pair`, `new_function_code`, `unseen_function_sequence`, `protocol_violation` |
//! | [`points`] | `read_outside_baseline`, `write_outside_baseline`, `value_outside_envelope` |
//! | [`polling`] | `polling_period_broken`, `channel_silent` |
//! | [`window`] | `flood`, `exception_burst`, `scan` (points, functions, units, servers), `statistical_anomaly` |
//! | [`notices`] | `port_protocol_mismatch`, `tcp_retransmission_conflict` |
//! | [`net`] | `new_service`, `remote_access`, `file_transfer`, `new_asset` (any protocol), `port_scan`, `host_sweep`, `syn_flood`, `arp_spoofing`, `ttl_changed`, `tcp_injection` |
//! | [`policy`] | `policy.conduit_violation`, `policy.guardrail_violation`, `policy.rule`: what the caller's policy found |

use otsensor_dissectors::event::Endpoint;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::alert::Occ;
use crate::model::{Model, PairKey, PairModel};
use crate::window::WindowAcc;

pub(crate) mod assets;
pub(crate) mod critical;
pub(crate) mod net;
pub(crate) mod notices;
pub(crate) mod pair;
pub(crate) mod points;
pub(crate) mod policy;
pub(crate) mod polling;
pub(crate) mod window;

/// What every rule about one observation on one pair reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    /// The learned model.
    pub(crate) model: &'a Model,
    /// The pair's learned model; `None` for a pair unknown to the baseline.
    pub(crate) base: Option<&'a PairModel>,
    /// The pair.
    pub(crate) key: PairKey,
    /// The occurrence every rule starts from: the pair's subject, the client as source and
    /// the server as destination, the observation's time, packet and class. (Borrowed: the
    /// context is built per PDU, and a copy of the occurrence cost a memcpy each.)
    pub(crate) occ: &'a Occ,
    /// How long learning lasted, in words.
    pub(crate) learned: &'a str,
}

impl Ctx<'_> {
    /// The client side of the pair.
    pub(crate) fn client(&self) -> Endpoint {
        self.occ.src
    }
    /// The server side of the pair.
    pub(crate) fn server(&self) -> Endpoint {
        self.occ.dst
    }
}

/// Per-pair state of detection (not learned: rebuilt for each run).
#[derive(Debug)]
pub(crate) struct PairState {
    pub(crate) key: PairKey,
    pub(crate) subject: u64,
    /// Index of the pair's model, when the baseline knows it.
    pub(crate) base: Option<u32>,
    pub(crate) assets_known: bool,
    /// The baseline knows the client (for the shared runtime: its first pair's).
    pub(crate) client_known: bool,
    pub(crate) client: Endpoint,
    pub(crate) server: Endpoint,
    pub(crate) win: WindowAcc,
    pub(crate) prev_func: Option<u16>,
    /// Per recurring request seen: last time, consecutive too-fast intervals, and when they began.
    pub(crate) poll_seen: FxHashMap<u64, (i64, u8, i64)>,
    pub(crate) silent: FxHashSet<u64>,
    pub(crate) polls_sorted: Vec<u64>,
    /// Criticality of the server.
    pub(crate) crit: f64,
    /// Learned MACs of the client and the server, when known.
    pub(crate) macs: [Option<[u8; 6]>; 2],
    /// The TTL the client and the server each last sent that `ttl_changed` has nothing to
    /// say about: a side's TTL repeats packet after packet, so it is looked up once.
    pub(crate) quiet_ttl: [Option<u8>; 2],
    /// The runtime shared by the pairs unknown to the baseline past those followed one by
    /// one (a flood of new sources): `key` is only the first of them.
    pub(crate) shared: bool,
    /// Packet time of the pair's last PDU.
    pub(crate) last_ns: i64,
    /// Given back for another pair unknown to the baseline (idle too long): no pair's.
    pub(crate) freed: bool,
}

/// How far an observation is above its threshold, as a score factor in 0.8-1.3.
pub(crate) fn deviation(observed: f64, threshold: f64) -> f64 {
    if threshold <= 0.0 {
        return 1.3;
    }
    (0.8 + 0.2 * (observed / threshold).max(1e-9).log2()).clamp(0.8, 1.3)
}

#[cfg(test)]
mod tests {
    use super::deviation;

    #[test]
    fn deviation_grows_with_the_excess_and_stays_in_its_band() {
        assert_eq!(deviation(10.0, 0.0), 1.3);
        assert!((deviation(10.0, 10.0) - 0.8).abs() < 1e-12);
        assert!((deviation(20.0, 10.0) - 1.0).abs() < 1e-12);
        assert_eq!(deviation(1e9, 1.0), 1.3);
        assert_eq!(deviation(1.0, 10.0), 0.8);
    }
}
