//! Learning: PDUs in, a [`Baseline`] out.

use std::net::IpAddr;

use otsensor_dissectors::event::{FunctionClass, Notice, NoticeKind, Pdu};

use crate::observation::{Observation, ObservationLog};
use otsensor_dissectors::modbus::device_id_object_name;
use rustc_hash::FxHashMap;

use crate::baseline::{Baseline, BaselineError, PortNotice};
use crate::model::{hash64, Model, PairKey, PairModel, PointKey, Poll, ValueKey};
use crate::stats;
use crate::window::{ClientAcc, WindowAcc, WindowSummary};

/// Intervals longer than this many periods are gaps, not samples of the period.
const OUTLIER_PERIODS: f64 = 10.0;
/// A response later than this after the pending request is not its answer.
const MAX_LATENCY_NS: i64 = 30_000_000_000;

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
#[derive(Clone, Debug, Default)]
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
}

/// Points of the first range of a request: its polling signature.
#[derive(Clone, Copy, Default)]
struct FirstRange {
    start: u32,
    count: u32,
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

    fn pair_index(&mut self, key: PairKey) -> usize {
        if let Some(&i) = self.model.index.get(&key) {
            return i as usize;
        }
        let i = self.model.pairs.len();
        self.model.index.insert(key, i as u32);
        self.model.pairs.push(PairModel::new(key));
        self.rt.push(PairRt::default());
        i
    }

    /// Learns one PDU (through its [`Observation`], built in a reused buffer).
    pub fn pdu(&mut self, pdu: &Pdu<'_>) {
        let mut log = std::mem::take(&mut self.scratch);
        log.clear();
        let i = log.push(pdu);
        if let Some(obs) = log.get(i) {
            self.observe(&obs);
        }
        self.scratch = log;
    }

    /// Learns one observation.
    pub fn observe(&mut self, obs: &Observation<'_>) {
        let ns = obs.ts.as_nanos();
        if self.run_first_ns.is_none() {
            self.run_first_ns = Some(ns);
        }
        self.run_last_ns = self.run_last_ns.max(ns);
        self.pdus += 1;
        let key = PairKey::of_observation(obs);
        let i = self.pair_index(key);
        let body = obs;
        let is_req = body.is_request;
        let func = body.func;
        let class = body.class;
        let unit = obs.unit;
        let bytes = body.bytes;
        let protocol = key.protocol;

        {
            let (client_mac, server_mac) =
                if obs.src.ip == key.client { (obs.src_mac, obs.dst_mac) } else { (obs.dst_mac, obs.src_mac) };
            let c = self.model.assets.entry(key.client).or_default();
            c.mac_varies |= matches!((c.mac, client_mac), (Some(a), Some(b)) if a != b);
            c.mac = c.mac.or(client_mac);
            c.client = true;
            c.pdus += 1;
            c.protocols.insert(protocol);
            if is_req && (class == FunctionClass::Program || body.critical.is_some()) {
                c.engineering = true;
            }
            let s = self.model.assets.entry(key.server).or_default();
            s.mac_varies |= matches!((s.mac, server_mac), (Some(a), Some(b)) if a != b);
            s.mac = s.mac.or(server_mac);
            s.server = true;
            s.pdus += 1;
            s.protocols.insert(protocol);
        }

        let (Some(pm), Some(rt)) = (self.model.pairs.get_mut(i), self.rt.get_mut(i)) else { return };
        if let Some(sum) = rt.win.roll(ns, obs.pkt) {
            fold_window(pm, &mut self.model.samples, &mut self.windows, &sum);
        }
        if is_req {
            pm.requests += 1;
            pm.func_entry(func, body.func_name, class).requests += 1;
            pm.units.insert(unit);
            if let Some(prev) = rt.prev_func {
                pm.add_transition(prev, func);
            }
            rt.prev_func = Some(func);
            let mut first: Option<FirstRange> = None;
            let win = &mut rt.win;
            body.for_each_point(&mut |r| {
                let last = r.start.saturating_add(r.count.max(1) - 1);
                pm.add_range(PointKey { unit, space: r.space, access: r.access }, r.start, last);
                win.points.set_hash(hash64(&(unit, r.space, r.start)));
                if first.is_none() {
                    first = Some(FirstRange { start: r.start, count: r.count });
                }
            });
            let f = first.unwrap_or_default();
            let sig = Poll::signature(func, unit, f.start, f.count);
            if let Some(p) = pm.poll_entry(sig, func, unit, f.start, f.count) {
                if let Some(last) = p.last_ns {
                    let dt = (ns - last).max(0) as f64 * 1e-9;
                    // Every gap counts for silence; only ordinary ones for the period, so that
                    // the night between two captures learned together leaves the period alone.
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
            rt.win.request(ns, func, unit, class, bytes);
            if rt.pending_req_ns.is_none() {
                rt.pending_req_ns = Some(ns);
            }
            let ca = self.clients.entry(key.client).or_default();
            if let Some((n, _, _)) = ca.roll(ns, obs.pkt) {
                let a = self.model.assets.entry(key.client).or_default();
                a.max_servers = a.max_servers.max(n);
            }
            ca.servers.set_hash(hash64(&key.server));
        } else {
            pm.responses += 1;
            let code = body.error_code;
            let err = code.is_some();
            let fs = pm.func_entry(func, body.func_name, class);
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
            rt.win.response(code, bytes);
            if body.has_identity() {
                let id = &mut self.model.assets.entry(key.server).or_default().identity;
                for (oid, value) in body.identity() {
                    id.insert(identity_key(oid), String::from_utf8_lossy(value).into_owned());
                }
            }
        }
        let Some(pm) = self.model.pairs.get_mut(i) else { return };
        body.for_each_value(&mut |v| {
            pm.add_value(ValueKey { unit, space: v.space, index: v.index, access: v.access }, v.value);
        });
        let flags = body.flags;
        if !flags.is_empty() {
            for name in flags.iter() {
                if !pm.violations.contains(name) {
                    pm.violations.insert(name.to_string());
                }
            }
        }
    }

    /// Learns one notice (ports carrying another protocol).
    pub fn notice(&mut self, n: &Notice) {
        if let Some(pn) = port_notice(n) {
            self.model.port_notices.insert(pn);
        }
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
            l.duration_secs = crate::model::round6(l.duration_secs + (last - first) as f64 * 1e-9);
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

/// The identity key of a Modbus device identification object: its name (`VendorName`,
/// `ProductCode`, `MajorMinorRevision`...), or `object_<id>` for reserved and private ones.
pub(crate) fn identity_key(oid: u8) -> String {
    match device_id_object_name(oid) {
        "Reserved" | "Private" => format!("object_{oid}"),
        n => n.to_string(),
    }
}

/// `kind` of the port notice recording a retransmission whose bytes differ.
pub(crate) const RETRANSMISSION_CONFLICT: &str = "retransmission_conflict";

/// The port notice a notice records: the server side is the lower port.
pub(crate) fn port_notice(n: &Notice) -> Option<PortNotice> {
    let server = if n.dst.port <= n.src.port { n.dst } else { n.src };
    let kind = match n.kind {
        NoticeKind::UnexpectedPort { found } => format!("unexpected_port:{}", found.name()),
        NoticeKind::NotProtocol { expected } => format!("not_protocol:{}", expected.name()),
        NoticeKind::RetransmissionConflict { .. } => RETRANSMISSION_CONFLICT.to_string(),
        NoticeKind::StreamGap { .. } | NoticeKind::Resync { .. } => return None,
    };
    Some(PortNotice { server: server.ip, port: server.port, kind })
}
