//! The in-memory model: the baseline in structures built for lookups on the per-PDU path
//! (hash maps keyed by small `Copy` keys, bitmaps of function codes), and its conversion to
//! and from the [`Baseline`] document.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use otsensor_dissectors::event::{Access, Direction, FuncName, FunctionClass, Pdu, Protocol, Space};

use crate::hash_bits::HashBits;
use crate::observation::Observation;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};

use crate::baseline::{
    format_mac, parse_mac, parse_protocol, parse_space, round6, space_name, Asset, Baseline, BaselineError,
    EnvelopeKind, Function, Latency, Learning, Pair, PointRanges, Polling, PortNotice, Rates, Role, StatModel,
    ValueEnvelope, FORMAT, VERSION,
};
use crate::{
    MAX_POLLS, MAX_RANGES, MAX_READ_VALUE_POINTS, MAX_SET_VALUES, MAX_TRANSITIONS, MAX_WRITE_VALUE_POINTS, WINDOW_SECS,
};

/// A client-server conversation in one protocol: the unit of the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    /// Requesting side.
    pub client: IpAddr,
    /// Answering side.
    pub server: IpAddr,
    /// Server port.
    pub port: u16,
    /// Protocol.
    pub protocol: Protocol,
}

impl PairKey {
    /// The pair an observation belongs to (its connection's client and server).
    pub fn of_observation(obs: &Observation<'_>) -> PairKey {
        let (c, s) = obs.client_server();
        PairKey { client: c.ip, server: s.ip, port: s.port, protocol: obs.protocol }
    }

    /// The pair a PDU belongs to (its connection's client and server).
    pub fn of(pdu: &Pdu<'_>) -> PairKey {
        let (c, s) = match pdu.direction {
            Direction::ToServer => (pdu.src, pdu.dst),
            Direction::ToClient => (pdu.dst, pdu.src),
        };
        PairKey { client: c.ip, server: s.ip, port: s.port, protocol: pdu.body.protocol() }
    }

    /// A stable hash, for fold keys.
    pub(crate) fn hash64(&self) -> u64 {
        hash64(self)
    }
}

/// FxHash of anything hashable: deterministic across runs and platforms of one width.
pub(crate) fn hash64<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut h = FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

/// Points of one unit, space and access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PointKey {
    pub(crate) unit: u16,
    pub(crate) space: Space,
    pub(crate) access: Access,
}

/// One point of one unit, space and access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ValueKey {
    pub(crate) unit: u16,
    pub(crate) space: Space,
    pub(crate) index: u32,
    pub(crate) access: Access,
}

/// Sorted, disjoint, inclusive ranges; at most [`MAX_RANGES`], merging the closest
/// neighbours beyond (so the set only ever grows: no false "outside" from the cap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    pub(crate) ranges: Vec<(u32, u32)>,
    pub(crate) coarsened: bool,
}

impl RangeSet {
    pub(crate) fn insert(&mut self, first: u32, last: u32) {
        if self.contains(first, last) {
            return;
        }
        // Position of the first range that ends at or after first - 1 (touching ranges merge).
        let lo = first.saturating_sub(1);
        let i = self.ranges.partition_point(|&(_, e)| e < lo);
        let mut new = (first, last);
        let mut j = i;
        while let Some(&(s, e)) = self.ranges.get(j) {
            if s > last.saturating_add(1) {
                break;
            }
            new = (new.0.min(s), new.1.max(e));
            j += 1;
        }
        self.ranges.splice(i..j, std::iter::once(new));
        while self.ranges.len() > MAX_RANGES {
            self.coarsen();
        }
    }

    fn coarsen(&mut self) {
        let best = self
            .ranges
            .windows(2)
            .enumerate()
            .min_by_key(|(i, w)| match w {
                [a, b] => (b.0.saturating_sub(a.1), *i),
                _ => (u32::MAX, *i),
            })
            .map(|(i, _)| i);
        if let Some(i) = best {
            if let (Some(&(s, _)), Some(&(_, e))) = (self.ranges.get(i), self.ranges.get(i + 1)) {
                self.ranges.splice(i..i + 2, std::iter::once((s, e)));
                self.coarsened = true;
            }
        }
    }

    /// Whether `first..=last` lies inside one range.
    pub(crate) fn contains(&self, first: u32, last: u32) -> bool {
        let i = self.ranges.partition_point(|&(s, _)| s <= first);
        i > 0 && self.ranges.get(i - 1).is_some_and(|&(_, e)| e >= last)
    }
}

/// What one point's values looked like: a small set of distinct values, else a range, with
/// never-decreasing counters recognised (KICS-style).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub(crate) set: Vec<i64>,
    pub(crate) overflow: bool,
    pub(crate) min: i64,
    pub(crate) max: i64,
    pub(crate) last: i64,
    pub(crate) monotonic: bool,
    pub(crate) samples: u64,
}

/// Fewest samples for a never-decreasing point to count as a counter.
const COUNTER_MIN_SAMPLES: u64 = 8;
/// Fewest samples before an envelope is enforced: one or two values are no evidence of
/// what a point may hold.
pub const MIN_ENVELOPE_SAMPLES: u64 = 3;

impl Envelope {
    pub(crate) fn observe(&mut self, v: i64) {
        if self.samples == 0 {
            self.min = v;
            self.max = v;
            self.monotonic = true;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            if v < self.last {
                self.monotonic = false;
            }
        }
        self.last = v;
        self.samples += 1;
        if !self.overflow {
            if let Err(i) = self.set.binary_search(&v) {
                if self.set.len() >= MAX_SET_VALUES {
                    self.overflow = true;
                    self.set = Vec::new();
                } else {
                    self.set.insert(i, v);
                }
            }
        }
    }

    pub(crate) fn kind(&self) -> EnvelopeKind {
        if !self.overflow {
            EnvelopeKind::Set
        } else if self.monotonic && self.samples >= COUNTER_MIN_SAMPLES {
            EnvelopeKind::Counter
        } else {
            EnvelopeKind::Range
        }
    }

    /// The learned range widened by a tenth of its span (at least 1) each way.
    fn widened_range(&self) -> (i64, i64) {
        // In i128: the span of the widest i64 range overflows i64.
        let margin = ((i128::from(self.max) - i128::from(self.min)) / 10).max(1);
        let clamp = |x: i128| i64::try_from(x).unwrap_or(if x < 0 { i64::MIN } else { i64::MAX });
        (clamp(i128::from(self.min) - margin), clamp(i128::from(self.max) + margin))
    }

    /// What the envelope admits, compiled for checking many values: anything before
    /// [`MIN_ENVELOPE_SAMPLES`]; then a value of the set; for a counter, not below its first
    /// value (counters grow past what learning saw); else the range widened by a tenth of its
    /// span.
    pub(crate) fn admit(&self) -> Admit {
        if self.samples < MIN_ENVELOPE_SAMPLES {
            return Admit::Any;
        }
        match self.kind() {
            EnvelopeKind::Set => Admit::OneOf(self.set.clone().into_boxed_slice()),
            EnvelopeKind::Counter => Admit::AtLeast(self.min),
            EnvelopeKind::Range => {
                let (lo, hi) = self.widened_range();
                Admit::Within(lo, hi)
            }
        }
    }
}

impl Envelope {
    /// The envelope in words.
    pub(crate) fn describe(&self) -> String {
        match self.kind() {
            EnvelopeKind::Set => {
                let vals: Vec<String> = self.set.iter().map(|v| v.to_string()).collect();
                format!("only ever {{{}}}", vals.join(", "))
            }
            EnvelopeKind::Counter => format!("a counter that never went below {}", self.min),
            EnvelopeKind::Range => format!("within {}..{}", self.min, self.max),
        }
    }
}

/// The values an [`Envelope`] admits, in the form detection checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Too few samples to judge.
    Any,
    /// One of a sorted set.
    OneOf(Box<[i64]>),
    /// A counter: not below this.
    AtLeast(i64),
    /// Within these bounds, inclusive.
    Within(i64, i64),
}

impl Admit {
    /// Whether `v` fits.
    #[inline]
    pub(crate) fn admits(&self, v: i64) -> bool {
        match *self {
            Admit::Any => true,
            Admit::OneOf(ref set) => set.binary_search(&v).is_ok(),
            Admit::AtLeast(min) => v >= min,
            Admit::Within(lo, hi) => v >= lo && v <= hi,
        }
    }
}

/// Statistics of one function code on a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FuncStat {
    pub(crate) name: String,
    pub(crate) class: FunctionClass,
    pub(crate) requests: u64,
    pub(crate) responses: u64,
    pub(crate) exceptions: u64,
}

/// A recurring request: its identity and inter-arrival statistics (Welford).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Poll {
    pub(crate) func: u16,
    pub(crate) unit: u16,
    pub(crate) start: u32,
    pub(crate) count: u32,
    pub(crate) n: u64,
    pub(crate) mean: f64,
    pub(crate) m2: f64,
    pub(crate) max_gap: f64,
    pub(crate) min_gap: f64,
    pub(crate) first_ns: Option<i64>,
    pub(crate) last_ns: Option<i64>,
}

impl Poll {
    pub(crate) fn spread(&self) -> f64 {
        if self.n > 1 {
            (self.m2 / (self.n - 1) as f64).sqrt()
        } else {
            0.0
        }
    }
    /// Whether it is regular enough to expect: enough intervals and a spread below the mean.
    pub(crate) fn recurring(&self) -> bool {
        self.n >= 4 && self.mean > 0.0 && self.spread() <= self.mean
    }
    /// Intervals shorter than this break the learned period: half the shortest learned
    /// interval and a quarter of the mean.
    pub(crate) fn too_fast_below(&self) -> f64 {
        (0.5 * self.min_gap).min(0.25 * self.mean)
    }
    /// Seconds of silence after which the channel counts as silent.
    pub(crate) fn silence_after(&self) -> f64 {
        (3.0 * self.mean).max(self.mean + 6.0 * self.spread()).max(1.5 * self.max_gap).max(5.0)
    }
    pub(crate) fn signature(func: u16, unit: u16, start: u32, count: u32) -> u64 {
        hash64(&(func, unit, start, count))
    }
}

/// Per-window maxima.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct RateStats {
    pub(crate) windows: u64,
    pub(crate) sum_requests: f64,
    pub(crate) max_requests: u64,
    pub(crate) max_exceptions: u64,
    pub(crate) max_points: u32,
    pub(crate) max_funcs: u32,
    pub(crate) max_units: u32,
}

/// One pair's model.
#[derive(Clone, Debug)]
pub(crate) struct PairModel {
    pub(crate) key: PairKey,
    pub(crate) requests: u64,
    pub(crate) responses: u64,
    pub(crate) funcs: BTreeMap<u16, FuncStat>,
    func_bits: [u64; 4],
    pub(crate) units: BTreeSet<u16>,
    pub(crate) wrote: bool,
    pub(crate) ranges: FxHashMap<PointKey, RangeSet>,
    pub(crate) values: FxHashMap<ValueKey, Envelope>,
    pub(crate) values_truncated: bool,
    /// Envelopes kept, of read and of written points.
    value_points: [usize; 2],
    pub(crate) polls: FxHashMap<u64, Poll>,
    pub(crate) transitions: FxHashMap<(u16, u16), u64>,
    pub(crate) transitions_truncated: bool,
    pub(crate) lat_n: u64,
    pub(crate) lat_mean: f64,
    pub(crate) lat_max: f64,
    pub(crate) exceptions: u64,
    pub(crate) rates: RateStats,
    pub(crate) violations: BTreeSet<String>,
}

impl PairModel {
    pub(crate) fn new(key: PairKey) -> Self {
        PairModel {
            key,
            requests: 0,
            responses: 0,
            funcs: BTreeMap::new(),
            func_bits: [0; 4],
            units: BTreeSet::new(),
            wrote: false,
            ranges: FxHashMap::default(),
            values: FxHashMap::default(),
            values_truncated: false,
            value_points: [0, 0],
            polls: FxHashMap::default(),
            transitions: FxHashMap::default(),
            transitions_truncated: false,
            lat_n: 0,
            lat_mean: 0.0,
            lat_max: 0.0,
            exceptions: 0,
            rates: RateStats::default(),
            violations: BTreeSet::new(),
        }
    }

    /// Whether the pair used `func` (a bitmap test for codes below 256).
    pub(crate) fn has_func(&self, func: u16) -> bool {
        match self.func_bits.get(usize::from(func >> 6)) {
            Some(w) if func < 256 => w & (1u64 << (func & 63)) != 0,
            _ => self.funcs.contains_key(&func),
        }
    }

    pub(crate) fn func_entry(&mut self, func: u16, name: FuncName, class: FunctionClass) -> &mut FuncStat {
        if let Some(w) = self.func_bits.get_mut(usize::from(func >> 6)) {
            if func < 256 {
                *w |= 1u64 << (func & 63);
            }
        }
        if matches!(class, FunctionClass::Write | FunctionClass::Control) {
            self.wrote = true;
        }
        self.funcs.entry(func).or_insert_with(|| FuncStat {
            name: name.to_string(),
            class,
            requests: 0,
            responses: 0,
            exceptions: 0,
        })
    }

    pub(crate) fn add_transition(&mut self, from: u16, to: u16) {
        let n = self.transitions.len();
        match self.transitions.get_mut(&(from, to)) {
            Some(c) => *c += 1,
            None if n < MAX_TRANSITIONS => {
                self.transitions.insert((from, to), 1);
            }
            None => self.transitions_truncated = true,
        }
    }

    /// Whether `from -> to` was seen (or could have been, past the table's cap).
    pub(crate) fn knows_transition(&self, from: u16, to: u16) -> bool {
        self.transitions_truncated || self.transitions.contains_key(&(from, to))
    }

    pub(crate) fn add_range(&mut self, k: PointKey, first: u32, last: u32) {
        self.ranges.entry(k).or_default().insert(first, last);
    }

    pub(crate) fn add_value(&mut self, k: ValueKey, v: i64) {
        let [reads, writes] = self.value_points;
        let (n, cap) = match k.access {
            Access::Read => (reads, MAX_READ_VALUE_POINTS),
            Access::Write => (writes, MAX_WRITE_VALUE_POINTS),
        };
        match self.values.get_mut(&k) {
            Some(e) => e.observe(v),
            None if n < cap => {
                let mut e = Envelope::default();
                e.observe(v);
                self.values.insert(k, e);
                self.count_value_point(k.access);
            }
            None => self.values_truncated = true,
        }
    }

    fn count_value_point(&mut self, access: Access) {
        let [reads, writes] = &mut self.value_points;
        match access {
            Access::Read => *reads += 1,
            Access::Write => *writes += 1,
        }
    }

    pub(crate) fn poll_entry(&mut self, sig: u64, func: u16, unit: u16, start: u32, count: u32) -> Option<&mut Poll> {
        let n = self.polls.len();
        if n >= MAX_POLLS && !self.polls.contains_key(&sig) {
            return None;
        }
        Some(self.polls.entry(sig).or_insert(Poll {
            func,
            unit,
            start,
            count,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            max_gap: 0.0,
            min_gap: f64::INFINITY,
            first_ns: None,
            last_ns: None,
        }))
    }
}

/// One device's model.
#[derive(Clone, Debug, Default)]
pub(crate) struct AssetModel {
    /// The first Ethernet address seen for the IP (behind a router, the router's).
    pub(crate) mac: Option<[u8; 6]>,
    /// Seen behind more than one MAC while learning.
    pub(crate) mac_varies: bool,
    pub(crate) protocols: BTreeSet<Protocol>,
    pub(crate) client: bool,
    pub(crate) server: bool,
    pub(crate) engineering: bool,
    pub(crate) identity: BTreeMap<String, String>,
    pub(crate) pdus: u64,
    pub(crate) max_servers: u32,
}

impl AssetModel {
    pub(crate) fn role(&self) -> Role {
        match (self.engineering, self.client, self.server) {
            (true, _, _) => Role::EngineeringStation,
            (false, true, true) => Role::ClientServer,
            (false, true, false) => Role::Client,
            (false, false, true) => Role::Server,
            (false, false, false) => Role::Unknown,
        }
    }

    fn from_doc(a: &Asset) -> Result<AssetModel, BaselineError> {
        let mut am = AssetModel {
            client: a.role.is_client(),
            server: a.role.is_server(),
            engineering: a.role == Role::EngineeringStation,
            identity: a.identity.clone(),
            pdus: a.pdus,
            max_servers: a.max_servers_per_window,
            mac_varies: a.mac_varies,
            mac: match a.mac.as_deref() {
                Some(m) => Some(parse_mac(m).ok_or_else(|| BaselineError::Invalid(format!("mac {m:?}")))?),
                None => None,
            },
            ..AssetModel::default()
        };
        for p in &a.protocols {
            am.protocols.insert(parse_protocol(p).ok_or_else(|| BaselineError::Invalid(format!("protocol {p}")))?);
        }
        Ok(am)
    }

    fn to_doc(&self, ip: IpAddr, dnp3_addresses: Option<&BTreeSet<u16>>) -> Asset {
        let mut identity = self.identity.clone();
        if let Some(addrs) = dnp3_addresses {
            let list: Vec<String> = addrs.iter().map(u16::to_string).collect();
            identity.insert("dnp3_address".to_string(), list.join(", "));
        }
        Asset {
            ip,
            mac: self.mac.map(format_mac),
            mac_varies: self.mac_varies,
            protocols: self.protocols.iter().map(|p| p.name().to_string()).collect(),
            role: self.role(),
            identity,
            pdus: self.pdus,
            max_servers_per_window: self.max_servers,
        }
    }
}

/// The whole model.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub(crate) pairs: Vec<PairModel>,
    pub(crate) index: FxHashMap<PairKey, u32>,
    /// (client, server) of every pair in `index`, whatever the port and protocol.
    pub(crate) hosts_of_pairs: FxHashSet<(IpAddr, IpAddr)>,
    pub(crate) assets: FxHashMap<IpAddr, AssetModel>,
    pub(crate) port_notices: BTreeSet<PortNotice>,
    pub(crate) learning: Learning,
    pub(crate) stat: Option<StatModel>,
    pub(crate) samples: Vec<Vec<f64>>,
    pub(crate) net: crate::net::NetModel,
    /// The devices [`Model::knows`], gathered once from `assets` and `net` when the model is
    /// built from a baseline: asked several times a packet, one probe instead of three.
    known: FxHashSet<IpAddr>,
    /// Every address of `assets` and `net.hosts` (a superset of `known`) and every client of
    /// `net.services`, set when the model is built from a baseline: the address of each
    /// packet of a spoofed flood is asked of all of them several times a packet, and one read
    /// of this answers "not there".
    addresses: Option<HashBits>,
}

/// Bits of [`Model`]'s address filter: 64 Ki (8 KiB), under 2% false "maybe" for a
/// baseline of a thousand devices.
const ADDRESS_BITS_LOG2: u32 = 16;

fn invalid_space(s: &str) -> BaselineError {
    BaselineError::Invalid(format!("space {s:?}"))
}

impl PairModel {
    /// The runtime model of one pair of the document.
    fn from_doc(p: &Pair) -> Result<PairModel, BaselineError> {
        let protocol =
            parse_protocol(&p.protocol).ok_or_else(|| BaselineError::Invalid(format!("protocol {:?}", p.protocol)))?;
        let key = PairKey { client: p.client, server: p.server, port: p.port, protocol };
        let mut pm = PairModel::new(key);
        pm.requests = p.requests;
        pm.responses = p.responses;
        for f in &p.functions {
            let e = pm.func_entry(f.func, FuncName::Unknown(f.func), f.class.into());
            e.name.clone_from(&f.name);
            e.requests = f.requests;
            e.responses = f.responses;
            e.exceptions = f.exceptions;
        }
        pm.units = p.units.iter().copied().collect();
        for r in &p.points {
            let space = parse_space(&r.space).ok_or_else(|| invalid_space(&r.space))?;
            // Inserted one by one, so a reviewer's hand-sorted or overlapping ranges still
            // make a sorted, disjoint set.
            let set = pm.ranges.entry(PointKey { unit: r.unit, space, access: r.access.into() }).or_default();
            for &[a, b] in &r.ranges {
                set.insert(a.min(b), a.max(b));
            }
            set.coarsened |= r.coarsened;
        }
        for v in &p.values {
            let space = parse_space(&v.space).ok_or_else(|| invalid_space(&v.space))?;
            let access: Access = v.access.into();
            pm.values.insert(ValueKey { unit: v.unit, space, index: v.index, access }, Envelope::from_doc(v));
            pm.count_value_point(access);
        }
        pm.values_truncated = p.values_truncated;
        for q in &p.polling {
            pm.polls.insert(Poll::signature(q.func, q.unit, q.start, q.count), Poll::from_doc(q));
        }
        pm.lat_n = p.latency.samples;
        pm.lat_mean = p.latency.mean_secs;
        pm.lat_max = p.latency.max_secs;
        pm.exceptions = (p.exception_rate * p.responses as f64).round() as u64;
        for &[from, to, count] in &p.transitions {
            pm.transitions.insert((from as u16, to as u16), count);
        }
        pm.transitions_truncated = p.transitions.len() >= MAX_TRANSITIONS;
        pm.rates = RateStats::from_doc(&p.rates);
        pm.violations = p.violations.iter().cloned().collect();
        Ok(pm)
    }
}

impl Envelope {
    fn from_doc(v: &ValueEnvelope) -> Envelope {
        let is_set = v.kind == EnvelopeKind::Set;
        let mut set = if is_set { v.values.clone() } else { Vec::new() };
        set.sort_unstable();
        set.dedup();
        Envelope {
            set,
            overflow: !is_set,
            min: v.min,
            max: v.max,
            last: v.max,
            monotonic: v.kind == EnvelopeKind::Counter,
            samples: v.samples.max(if v.kind == EnvelopeKind::Counter { COUNTER_MIN_SAMPLES } else { 1 }),
        }
    }

    fn to_doc(&self, k: ValueKey) -> ValueEnvelope {
        ValueEnvelope {
            unit: k.unit,
            space: space_name(k.space),
            index: k.index,
            access: k.access.into(),
            kind: self.kind(),
            values: self.set.clone(),
            min: self.min,
            max: self.max,
            samples: self.samples,
        }
    }
}

impl Poll {
    fn from_doc(q: &Polling) -> Poll {
        let n = q.samples;
        Poll {
            func: q.func,
            unit: q.unit,
            start: q.start,
            count: q.count,
            n,
            mean: q.period_secs,
            m2: q.spread_secs * q.spread_secs * n.saturating_sub(1) as f64,
            max_gap: q.max_gap_secs,
            min_gap: q.min_gap_secs,
            first_ns: None,
            last_ns: None,
        }
    }

    fn to_doc(&self) -> Polling {
        Polling {
            func: self.func,
            unit: self.unit,
            start: self.start,
            count: self.count,
            period_secs: round6(self.mean),
            spread_secs: round6(self.spread()),
            max_gap_secs: round6(self.max_gap),
            min_gap_secs: round6(self.min_gap),
            samples: self.n,
        }
    }
}

impl RateStats {
    fn from_doc(r: &Rates) -> RateStats {
        RateStats {
            windows: r.windows,
            sum_requests: r.mean_requests * r.windows as f64,
            max_requests: r.max_requests,
            max_exceptions: r.max_exceptions,
            max_points: r.max_distinct_points,
            max_funcs: r.max_distinct_functions,
            max_units: r.max_distinct_units,
        }
    }

    fn to_doc(self) -> Rates {
        Rates {
            window_secs: WINDOW_SECS as u32,
            windows: self.windows,
            mean_requests: if self.windows > 0 { round6(self.sum_requests / self.windows as f64) } else { 0.0 },
            max_requests: self.max_requests,
            max_exceptions: self.max_exceptions,
            max_distinct_points: self.max_points,
            max_distinct_functions: self.max_funcs,
            max_distinct_units: self.max_units,
        }
    }
}

impl Model {
    /// Adds a pair to the model; returns its index.
    pub(crate) fn add_pair(&mut self, pm: PairModel) -> usize {
        let i = self.pairs.len();
        self.index.insert(pm.key, i as u32);
        self.hosts_of_pairs.insert((pm.key.client, pm.key.server));
        self.pairs.push(pm);
        i
    }

    /// Whether `ip` is a device of the baseline (an ICS asset or a network host), not one
    /// that scanned while learning (whose bindings are kept, to recognise its MAC).
    pub(crate) fn knows(&self, ip: IpAddr) -> bool {
        self.may_have(ip) && self.known.contains(&ip)
    }

    /// The ICS asset learned at `ip`.
    pub(crate) fn asset(&self, ip: IpAddr) -> Option<&AssetModel> {
        if !self.may_have(ip) {
            return None;
        }
        self.assets.get(&ip)
    }

    /// The network host learned at `ip`.
    pub(crate) fn host(&self, ip: IpAddr) -> Option<&crate::net::HostModel> {
        if !self.may_have(ip) {
            return None;
        }
        self.net.hosts.get(&ip)
    }

    /// Whether the network model has `key`'s service.
    pub(crate) fn has_service(&self, key: &crate::net::ServiceKey) -> bool {
        self.may_have(key.client) && self.net.services.contains_key(key)
    }

    /// False only for an address neither an asset, a host nor a service's client of the model
    /// (true for a model still learned, which has no filter).
    #[inline]
    fn may_have(&self, ip: IpAddr) -> bool {
        self.addresses.as_ref().map_or(true, |b| b.may_hold(hash64(&ip)))
    }

    /// Whether some pair of the model runs from `client` to `server`.
    pub(crate) fn has_pair_between(&self, client: IpAddr, server: IpAddr) -> bool {
        self.hosts_of_pairs.contains(&(client, server))
    }

    /// The model of a verified baseline document.
    pub fn from_baseline(b: &Baseline) -> Result<Model, BaselineError> {
        let mut m = Model { learning: b.learning.clone(), stat: b.model.clone(), ..Model::default() };
        if let Some(s) = &m.stat {
            m.samples = s.samples.clone();
            let nf = crate::stats::FEATURES.len();
            if s.mean.len() != nf || s.std.len() != nf || s.components.iter().any(|c| c.len() != nf) {
                return Err(BaselineError::Invalid("statistical model has the wrong number of features".into()));
            }
        }
        for a in &b.assets {
            m.assets.insert(a.ip, AssetModel::from_doc(a)?);
        }
        for p in &b.pairs {
            let pm = PairModel::from_doc(p)?;
            m.add_pair(pm);
        }
        m.port_notices = b.port_notices.iter().cloned().collect();
        m.net = crate::net::NetModel::from_doc(&b.network)?;
        let hosts = m.assets.keys().chain(m.net.hosts.keys());
        let mut addresses = HashBits::new(ADDRESS_BITS_LOG2);
        for ip in hosts.clone().chain(m.net.services.keys().map(|k| &k.client)) {
            addresses.add(hash64(ip));
        }
        m.addresses = Some(addresses);
        m.known = hosts.filter(|ip| !m.net.scanners.contains(ip)).copied().collect();
        Ok(m)
    }

    /// The baseline document of this model (checksum not yet set).
    pub fn to_baseline(&self) -> Baseline {
        // DNP3 outstation addresses are the units of the pairs that reach them.
        let mut dnp3: BTreeMap<IpAddr, BTreeSet<u16>> = BTreeMap::new();
        for p in self.pairs.iter().filter(|p| p.key.protocol == Protocol::Dnp3) {
            dnp3.entry(p.key.server).or_default().extend(p.units.iter().copied());
        }
        // What hosts did while scanning the network during learning is not learned.
        let scanners = &self.net.scanners;
        let mut assets: Vec<Asset> = self
            .assets
            .iter()
            .filter(|(ip, _)| !scanners.contains(ip))
            .map(|(ip, a)| a.to_doc(*ip, dnp3.get(ip)))
            .collect();
        assets.sort_by_key(|a| a.ip);
        let mut pairs: Vec<Pair> =
            self.pairs.iter().filter(|p| !scanners.contains(&p.key.client)).map(PairModel::to_doc).collect();
        pairs.sort_by(|a, b| (a.client, a.server, a.port, &a.protocol).cmp(&(b.client, b.server, b.port, &b.protocol)));
        Baseline {
            format: FORMAT.to_string(),
            version: VERSION,
            checksum: String::new(),
            software: concat!("otsensor ", env!("CARGO_PKG_VERSION")).to_string(),
            learning: self.learning.clone(),
            assets,
            pairs,
            port_notices: self.port_notices.iter().cloned().collect(),
            model: self.stat.clone(),
            network: self.net.to_doc(),
        }
    }

    /// Duration of learning, seconds.
    pub fn learned_secs(&self) -> f64 {
        self.learning.duration_secs
    }
}

/// Re-seals a reviewed document: parses it without checking the checksum, checks that a
/// model can be built from it, and returns it with a fresh checksum. For
/// `otsensor baseline seal`.
pub fn reseal(text: &str) -> Result<String, BaselineError> {
    let mut b = Baseline::from_json_unverified(text)?;
    Model::from_baseline(&b)?;
    Ok(b.to_json())
}

impl PairModel {
    /// The document of this pair: every table sorted.
    fn to_doc(&self) -> Pair {
        let functions = self
            .funcs
            .iter()
            .map(|(&func, f)| Function {
                func,
                name: f.name.clone(),
                class: f.class.into(),
                requests: f.requests,
                responses: f.responses,
                exceptions: f.exceptions,
            })
            .collect();
        let mut points: Vec<(PointKey, &RangeSet)> = self.ranges.iter().map(|(k, v)| (*k, v)).collect();
        points.sort_by_key(|(k, _)| *k);
        let points = points
            .into_iter()
            .map(|(k, r)| PointRanges {
                unit: k.unit,
                space: space_name(k.space),
                access: k.access.into(),
                ranges: r.ranges.iter().map(|&(a, b)| [a, b]).collect(),
                coarsened: r.coarsened,
            })
            .collect();
        let mut values: Vec<(ValueKey, &Envelope)> = self.values.iter().map(|(k, v)| (*k, v)).collect();
        values.sort_by_key(|(k, _)| *k);
        let mut polling: Vec<Polling> = self.polls.values().filter(|q| q.recurring()).map(Poll::to_doc).collect();
        polling.sort_by_key(|a| (a.func, a.unit, a.start, a.count));
        let mut transitions: Vec<[u64; 3]> =
            self.transitions.iter().map(|(&(a, b), &c)| [u64::from(a), u64::from(b), c]).collect();
        transitions.sort_unstable();
        Pair {
            client: self.key.client,
            server: self.key.server,
            port: self.key.port,
            protocol: self.key.protocol.name().to_string(),
            requests: self.requests,
            responses: self.responses,
            functions,
            units: self.units.iter().copied().collect(),
            points,
            values: values.into_iter().map(|(k, e)| e.to_doc(k)).collect(),
            values_truncated: self.values_truncated,
            polling,
            latency: Latency { mean_secs: round6(self.lat_mean), max_secs: round6(self.lat_max), samples: self.lat_n },
            exception_rate: if self.responses > 0 {
                round6(self.exceptions as f64 / self.responses as f64)
            } else {
                0.0
            },
            transitions,
            rates: self.rates.to_doc(),
            violations: self.violations.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What an envelope admits, restated from its fields.
    fn reference_admits(e: &Envelope, v: i64) -> bool {
        if e.samples < MIN_ENVELOPE_SAMPLES {
            true
        } else if !e.overflow {
            e.set.contains(&v)
        } else if e.monotonic && e.samples >= COUNTER_MIN_SAMPLES {
            v >= e.min
        } else {
            let margin = (i128::from(e.max) - i128::from(e.min)) / 10;
            let v = i128::from(v);
            v >= i128::from(e.min) - margin.max(1) && v <= i128::from(e.max) + margin.max(1)
        }
    }

    proptest! {
        /// The compiled form admits exactly what the envelope admits, for sets, counters and
        /// ranges alike (a few samples of small values make sets; many or wide ones, ranges).
        #[test]
        fn compiled_envelopes_admit_what_envelopes_admit(
            learned in prop::collection::vec(prop_oneof![-50i64..50, any::<i64>()], 0..40),
            sorted in any::<bool>(),
            probes in prop::collection::vec(prop_oneof![-60i64..60, any::<i64>()], 1..40),
        ) {
            let mut learned = learned;
            if sorted {
                learned.sort_unstable(); // a counter
            }
            let mut e = Envelope::default();
            learned.iter().for_each(|&v| e.observe(v));
            let a = e.admit();
            for v in probes.into_iter().chain(learned) {
                prop_assert_eq!(a.admits(v), reference_admits(&e, v), "{:?} {:?} {}", e, a, v);
            }
        }
    }

    #[test]
    fn range_set_merges_touching_ranges_and_coarsens_at_the_cap() {
        let mut r = RangeSet::default();
        r.insert(10, 19);
        r.insert(20, 29);
        r.insert(0, 4);
        assert_eq!(r.ranges, [(0, 4), (10, 29)]);
        assert!(r.contains(12, 29));
        assert!(!r.contains(5, 5));
        for i in 0..(MAX_RANGES as u32 * 2) {
            r.insert(1000 + i * 10, 1000 + i * 10);
        }
        assert!(r.ranges.len() <= MAX_RANGES);
        assert!(r.coarsened);
        assert!(r.contains(1000, 1000));
    }

    #[test]
    fn envelopes_keep_small_sets_then_ranges_and_recognise_counters() {
        let mut e = Envelope::default();
        for v in [0, 1, 0, 1] {
            e.observe(v);
        }
        assert_eq!(e.kind(), EnvelopeKind::Set);
        assert!(!e.admit().admits(2));
        let mut c = Envelope::default();
        for v in 0..100 {
            c.observe(v * 3);
        }
        assert_eq!(c.kind(), EnvelopeKind::Counter);
        assert!(c.admit().admits(10_000));
        assert!(!c.admit().admits(-1));
        let mut r = Envelope::default();
        for v in [50, 10, 90, 30, 70, 20, 60, 40, 80, 55, 65] {
            r.observe(v);
        }
        assert_eq!(r.kind(), EnvelopeKind::Range);
        assert!(r.admit().admits(95));
        assert!(!r.admit().admits(200));
    }
}
