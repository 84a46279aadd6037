//! Learning: PDUs in, a [`Baseline`] out.

use std::net::IpAddr;

use otsensor_dissectors::event::{FunctionClass, Notice, NoticeKind, Pdu};

use rustc_hash::FxHashMap;

use crate::baseline::{Baseline, BaselineError, PortNotice, PortNoticeKind};
use crate::model::{Model, PairKey, PairModel, PointKey, Poll, ValueKey};
use crate::net::NetLearner;
use crate::observation::{identity_key, Observation, ObservationLog};
use crate::stats;
use crate::window::{ClientAcc, WindowAcc, WindowSummary};
use otsensor_dissectors::event::NetEvent;

/// Intervals longer than this many periods are gaps, not samples of the period.
const OUTLIER_PERIODS: f64 = 10.0;
/// A response later than this after the pending request is not its answer.
const MAX_LATENCY_NS: i64 = 30_000_000_000;

/// Pairs a baseline learns at most (a flood of spoofed sources during learning makes a new
/// pair per packet: past this, their PDUs are counted, not learned, and neither are their
/// assets). A plant's busiest sensors see a few thousand pairs; each learned pair costs a
/// few kilobytes.
pub const MAX_LEARNED_PAIRS: usize = 65_536;

/// Per-pair state that is not part of the baseline.
#[derive(Clone, Debug, Default)]
struct PairRt {
    win: WindowAcc,
    prev_func: Option<u16>,
    pending_req_ns: Option<i64>,
}

/// Learns a baseline from PDUs and notices, in capture order.
///
/// ```
/// use otsensor_models::Learner;
/// let learner = Learner::new();
/// let baseline = learner.finish();
/// assert!(baseline.pairs.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct Learner {
    model: Model,
    rt: Vec<PairRt>,
    clients: FxHashMap<IpAddr, ClientAcc>,
    run_first_ns: Option<i64>,
    run_last_ns: i64,
    pdus: u64,
    packets: u64,
    /// Every window of this run (up to [`stats::MAX_THRESHOLD_WINDOWS`]), for the threshold.
    windows: Vec<[f64; stats::NF]>,
    /// Reused by [`Learner::pdu`] to build observations without allocating.
    scratch: ObservationLog,
    /// Windows of the network section.
    net: NetLearner,
    /// Most pairs the baseline may hold: [`MAX_LEARNED_PAIRS`] unless a memory cap says fewer.
    max_pairs: usize,
    /// PDUs of pairs not learned because the baseline held [`Learner::set_max_pairs`] pairs.
    pairs_not_learned: u64,
}

impl Default for Learner {
    fn default() -> Self {
        Learner {
            model: Model::default(),
            rt: Vec::new(),
            clients: FxHashMap::default(),
            run_first_ns: None,
            run_last_ns: 0,
            pdus: 0,
            packets: 0,
            windows: Vec::new(),
            scratch: ObservationLog::default(),
            net: NetLearner::default(),
            max_pairs: MAX_LEARNED_PAIRS,
            pairs_not_learned: 0,
        }
    }
}

impl Learner {
    /// A learner with an empty baseline.
    pub fn new() -> Self {
        Learner::default()
    }

    /// A learner that continues from `baseline` (already verified).
    pub fn continue_from(baseline: &Baseline) -> Result<Self, BaselineError> {
        let model = Model::from_baseline(baseline)?;
        let rt = model.pairs.iter().map(|_| PairRt::default()).collect();
        Ok(Learner { model, rt, ..Learner::default() })
    }

    /// Counts packets read (for the baseline's record).
    pub fn add_packets(&mut self, n: u64) {
        self.packets += n;
    }

    /// Capture time learned so far in this run, seconds.
    pub fn run_secs(&self) -> f64 {
        self.run_first_ns.map_or(0.0, |f| (self.run_last_ns - f) as f64 * 1e-9)
    }

    /// PDUs learned so far in this run.
    pub fn run_pdus(&self) -> u64 {
        self.pdus
    }

    /// Pairs known so far.
    pub fn pairs(&self) -> usize {
        self.model.pairs.len()
    }

    /// Bounds the pairs the baseline may hold below [`MAX_LEARNED_PAIRS`] (a memory cap); the
    /// PDUs of the pairs past it are not learned (nor their assets) and are counted.
    pub fn set_max_pairs(&mut self, n: usize) {
        self.max_pairs = n.clamp(1, MAX_LEARNED_PAIRS);
    }

    /// PDUs not learned because the baseline held as many pairs as it may.
    pub fn pairs_not_learned(&self) -> u64 {
        self.pairs_not_learned
    }

    fn pair_index(&mut self, key: PairKey) -> Option<usize> {
        if let Some(&i) = self.model.index.get(&key) {
            return Some(i as usize);
        }
        if self.model.pairs.len() >= self.max_pairs {
            self.pairs_not_learned += 1;
            return None;
        }
        let i = self.model.add_pair(PairModel::new(key));
        self.rt.push(PairRt::default());
        Some(i)
    }

    /// Learns one PDU (through its [`Observation`], built in a reused buffer).
    pub fn pdu(&mut self, pdu: &Pdu<'_>) {
        let mut log = std::mem::take(&mut self.scratch);
        self.observe(&log.one(pdu));
        self.scratch = log;
    }

    /// Learns one observation.
    pub fn observe(&mut self, obs: &Observation<'_>) {
        let ns = obs.ts.as_nanos();
        self.note_time(ns);
        self.pdus += 1;
        self.model.net.learn_ttl(obs.src.ip, obs.ttl);
        let key = PairKey::of_observation(obs);
        let Some(i) = self.pair_index(key) else { return };
        self.learn_assets(obs, key);
        let (Some(pm), Some(rt)) = (self.model.pairs.get_mut(i), self.rt.get_mut(i)) else { return };
        if let Some(sum) = rt.win.roll(ns, obs.pkt) {
            fold_window(pm, &mut self.model.samples, &mut self.windows, &sum);
        }
        rt.win.record(obs);
        if obs.is_request {
            learn_request(pm, rt, obs);
            if let Some((n, _, _)) = self.clients.entry(key.client).or_default().record(obs, key.server) {
                let a = self.model.assets.entry(key.client).or_default();
                a.max_servers = a.max_servers.max(n);
            }
        } else {
            learn_response(pm, rt, obs);
            if obs.has_identity() {
                let id = &mut self.model.assets.entry(key.server).or_default().identity;
                for (oid, value) in obs.identity() {
                    id.insert(identity_key(obs.protocol, oid), String::from_utf8_lossy(value).into_owned());
                }
            }
        }
        let unit = obs.unit;
        for v in obs.values {
            pm.add_value(ValueKey { unit, space: v.space, index: v.index, access: v.access }, v.value);
        }
        if !obs.flags.is_empty() {
            for name in obs.flags.iter() {
                if !pm.violations.contains(name) {
                    pm.violations.insert(name.to_string());
                }
            }
        }
    }

    /// The client's and the server's asset: MAC, role, protocols, PDUs.
    fn learn_assets(&mut self, obs: &Observation<'_>, key: PairKey) {
        // By address, not direction (as learning always did): a host talking to itself keeps
        // the MAC it was first seen with on each side.
        let (client_mac, server_mac) =
            if obs.src.ip == key.client { (obs.src_mac, obs.dst_mac) } else { (obs.dst_mac, obs.src_mac) };
        let c = self.model.assets.entry(key.client).or_default();
        c.mac_varies |= matches!((c.mac, client_mac), (Some(a), Some(b)) if a != b);
        c.mac = c.mac.or(client_mac);
        c.client = true;
        c.pdus += 1;
        c.protocols.insert(key.protocol);
        if obs.is_request && (obs.class == FunctionClass::Program || obs.critical.is_some()) {
            c.engineering = true;
        }
        let s = self.model.assets.entry(key.server).or_default();
        s.mac_varies |= matches!((s.mac, server_mac), (Some(a), Some(b)) if a != b);
        s.mac = s.mac.or(server_mac);
        s.server = true;
        s.pdus += 1;
        s.protocols.insert(key.protocol);
    }

    /// Learns one notice (ports carrying another protocol).
    pub fn notice(&mut self, n: &Notice) {
        if let NoticeKind::PathChanged { ttl, mac, relayed: true, .. } = n.kind {
            self.net.relayed(n.src.ip, ttl, mac);
        }
        if let Some(pn) = port_notice(n) {
            self.model.port_notices.insert(pn);
        }
    }

    /// Learns one conversation record, ARP packet or L2 conversation. Its time counts in the
    /// learning window like a PDU's: learning starts with the first packet, not the first
    /// ICS message.
    pub fn net(&mut self, e: &NetEvent) {
        self.note_time(e.ts().as_nanos());
        self.net.learn(&mut self.model.net, e);
    }

    fn note_time(&mut self, ns: i64) {
        if self.run_first_ns.is_none() {
            self.run_first_ns = Some(ns);
        }
        self.run_last_ns = self.run_last_ns.max(ns);
    }

    /// The baseline as it would be if learning ended now, leaving this learner to go on:
    /// for checkpoints.
    pub fn snapshot(&self) -> Baseline {
        self.clone().finish()
    }

    /// Distinct function codes learned, summed over pairs: with [`Learner::pairs`], what a
    /// burst of novelty late in learning shows up in.
    pub fn functions(&self) -> usize {
        self.model.pairs.iter().map(|p| p.funcs.len()).sum()
    }

    /// Seconds of packet time learned, earlier runs included.
    pub fn learned_secs(&self) -> f64 {
        self.model.learning.duration_secs + self.run_secs()
    }

    /// Closes the learning run and returns the baseline (checksum not yet set; see
    /// [`Baseline::to_json`]).
    pub fn finish(mut self) -> Baseline {
        self.finish_model();
        self.model.to_baseline()
    }

    /// Closes the learning run and returns the model, for detection without a file.
    pub(crate) fn finish_model(&mut self) -> &Model {
        self.net.finish(&mut self.model.net);
        for (pm, rt) in self.model.pairs.iter_mut().zip(self.rt.iter_mut()) {
            if let Some(sum) = rt.win.close() {
                fold_window(pm, &mut self.model.samples, &mut self.windows, &sum);
            }
        }
        let mut clients: Vec<(&IpAddr, &mut ClientAcc)> = self.clients.iter_mut().collect();
        clients.sort_by_key(|(ip, _)| **ip);
        for (ip, ca) in clients {
            if let Some((n, _, _)) = ca.close() {
                let a = self.model.assets.entry(*ip).or_default();
                a.max_servers = a.max_servers.max(n);
            }
        }
        if let Some(first) = self.run_first_ns {
            let last = self.run_last_ns;
            for pm in &mut self.model.pairs {
                for p in pm.polls.values_mut() {
                    if let (Some(f), Some(l)) = (p.first_ns.take(), p.last_ns.take()) {
                        let head = (f - first) as f64 * 1e-9;
                        let tail = (last - l) as f64 * 1e-9;
                        p.max_gap = p.max_gap.max(head).max(tail);
                    }
                }
            }
            let l = &mut self.model.learning;
            l.first_ns = if l.runs == 0 { first } else { l.first_ns.min(first) };
            l.last_ns = l.last_ns.max(last);
            l.duration_secs = crate::baseline::round6(l.duration_secs + (last - first) as f64 * 1e-9);
            l.runs += 1;
        }
        self.model.learning.pdus += self.pdus;
        self.model.learning.packets += self.packets;
        self.pdus = 0;
        self.packets = 0;
        self.run_first_ns = None;
        self.model.stat = stats::fit(&self.model.samples, &self.windows);
        self.windows = Vec::new();
        &self.model
    }
}

/// A request: its function, unit, transition, points and polling period.
fn learn_request(pm: &mut PairModel, rt: &mut PairRt, obs: &Observation<'_>) {
    let (ns, func, unit) = (obs.ts.as_nanos(), obs.func, obs.unit);
    pm.requests += 1;
    pm.func_entry(func, obs.func_name, obs.class).requests += 1;
    pm.units.insert(unit);
    if let Some(prev) = rt.prev_func {
        pm.add_transition(prev, func);
    }
    rt.prev_func = Some(func);
    for r in obs.points {
        let last = r.start.saturating_add(r.count.max(1) - 1);
        pm.add_range(PointKey { unit, space: r.space, access: r.access }, r.start, last);
    }
    let (start, count) = obs.first_range();
    if let Some(p) = pm.poll_entry(obs.poll_signature(), func, unit, start, count) {
        learn_period(p, ns);
    }
    if rt.pending_req_ns.is_none() {
        rt.pending_req_ns = Some(ns);
    }
}

/// One more occurrence of a recurring request at `ns`.
fn learn_period(p: &mut Poll, ns: i64) {
    if let Some(last) = p.last_ns {
        let dt = (ns - last).max(0) as f64 * 1e-9;
        // Every gap counts for silence; only ordinary ones for the period, so that the night
        // between two captures learned together leaves the period alone.
        p.max_gap = p.max_gap.max(dt);
        if p.n < 4 || dt <= OUTLIER_PERIODS * p.mean {
            p.n += 1;
            let d = dt - p.mean;
            p.mean += d / p.n as f64;
            p.m2 += d * (dt - p.mean);
            p.min_gap = p.min_gap.min(dt);
        }
    } else {
        p.first_ns = Some(ns);
    }
    p.last_ns = Some(ns);
}

/// A response: its function's counts, errors and the latency since the pending request.
fn learn_response(pm: &mut PairModel, rt: &mut PairRt, obs: &Observation<'_>) {
    let ns = obs.ts.as_nanos();
    pm.responses += 1;
    let err = obs.error_code.is_some();
    let fs = pm.func_entry(obs.func, obs.func_name, obs.class);
    fs.responses += 1;
    if err {
        fs.exceptions += 1;
        pm.exceptions += 1;
    }
    if let Some(t) = rt.pending_req_ns.take().filter(|&t| ns - t <= MAX_LATENCY_NS) {
        let dt = (ns - t).max(0) as f64 * 1e-9;
        pm.lat_n += 1;
        pm.lat_mean += (dt - pm.lat_mean) / pm.lat_n as f64;
        pm.lat_max = pm.lat_max.max(dt);
    }
}

fn fold_window(pm: &mut PairModel, samples: &mut Vec<Vec<f64>>, all: &mut Vec<[f64; stats::NF]>, s: &WindowSummary) {
    if all.len() < stats::MAX_THRESHOLD_WINDOWS {
        all.push(s.features);
    }
    let r = &mut pm.rates;
    r.windows += 1;
    r.sum_requests += s.requests as f64;
    r.max_requests = r.max_requests.max(s.requests);
    r.max_exceptions = r.max_exceptions.max(s.exceptions);
    r.max_points = r.max_points.max(s.points);
    r.max_funcs = r.max_funcs.max(s.funcs);
    r.max_units = r.max_units.max(s.units);
    stats::push_sample(samples, &s.features);
}

/// The port notice a notice records: the server side is the lower port.
pub(crate) fn port_notice(n: &Notice) -> Option<PortNotice> {
    let server = if n.dst.port <= n.src.port { n.dst } else { n.src };
    let kind = match n.kind {
        NoticeKind::UnexpectedPort { found } => PortNoticeKind::UnexpectedPort(found),
        NoticeKind::NotProtocol { expected } => PortNoticeKind::NotProtocol(expected),
        NoticeKind::RetransmissionConflict { .. } => PortNoticeKind::RetransmissionConflict,
        NoticeKind::StreamGap { .. } | NoticeKind::Resync { .. } | NoticeKind::PathChanged { .. } => return None,
    };
    Some(PortNotice { server: server.ip, port: server.port, kind })
}
