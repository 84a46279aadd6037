//! Detection: observations scored against a baseline, alerts out.
//!
//! [`Detector::observe`] dispatches: it finds the pair's state, rolls the pair's window and
//! calls each rule of [`crate::checks`] in a fixed order (the order alerts open in, which the
//! golden alerts of `sensor/tests/golden` pin down). The per-PDU path does one hash lookup for
//! the pair, bitmap tests for function codes, range look-ups for points and envelope
//! look-ups for values; nothing is formatted or allocated unless an alert opens. Time is the
//! packets': windows close and silence is judged as packet time advances, never by the wall
//! clock.

use std::net::IpAddr;

use otsensor_dissectors::event::{Direction, Endpoint, NetEvent, Notice, NoticeKind, Pdu};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::alert::{Alert, Folder, Occ};
use crate::baseline::{Baseline, BaselineError};
use crate::checks::net::NetCx;
use crate::checks::{assets, critical, notices, pair, points, polling, window, Ctx, PairState};
use crate::learn::port_notice;
use crate::model::{Model, PairKey, Poll};
use crate::observation::{Observation, ObservationLog};
use crate::rules_catalog::{Family, Kind};
use crate::sources::SourceTable;
use crate::window::{window_of, ClientAcc, WindowAcc};

pub use crate::checks::net::{
    HOST_SWEEP_HOSTS, MAX_TRACKED, MIN_TTL_FAMILY_SAMPLES, MIN_TTL_SAMPLES, PORT_SCAN_PORTS, SCAN_WINDOW_SECS,
    SYN_FLOOD_MIN,
};
pub use crate::checks::polling::POLL_FAST_STREAK;
pub use crate::checks::window::{MIN_SCAN_SPREAD, NEW_PAIR_FLOOD_REQUESTS, NEW_PAIR_SCAN_POINTS};
pub use crate::words::human_duration;

/// Pairs unknown to the baseline tracked one by one; beyond, they share one runtime.
pub const MAX_NEW_PAIRS: usize = 16_384;

/// Of the [`MAX_NEW_PAIRS`], those whose client the baseline does not know either (a spoofed
/// flood makes one per packet): past this many, they share the one runtime, and the room
/// left stays for pairs of the baseline's own devices (a master reaching a new PLC).
pub const MAX_STRANGER_PAIRS: usize = 1_024;

/// A pair unknown to the baseline that sent no PDU for this long gives its runtime back, so
/// that the room for pairs followed one by one ([`MAX_NEW_PAIRS`], [`MAX_STRANGER_PAIRS`])
/// is not kept for good by a flood of spoofed pairs, or by months of passing laptops.
pub const IDLE_PAIR_SECS: i64 = 600;

/// Clients whose host-scan windows are tracked at once. Clients whose window closed with
/// nothing to say are forgotten at each window; beyond this many active ones, or beyond
/// [`crate::sources::MAX_STRANGERS`] unknown to the baseline (a flood of spoofed sources),
/// newcomers are not tracked for host scans until a window frees room.
pub const MAX_CLIENTS: usize = 65_536;

/// The MACs learned for the client and the server of a pair (none where it varied).
fn learned_macs(model: &Model, key: PairKey) -> [Option<[u8; 6]>; 2] {
    let mac = |ip: &IpAddr| model.asset(*ip).filter(|a| !a.mac_varies).and_then(|a| a.mac);
    [mac(&key.client), mac(&key.server)]
}

/// `ttl_changed` for a PDU's packet, not asked again while its side keeps sending a TTL the
/// model had nothing to say about. `own`: the runtime is the pair's own (the shared runtime
/// of pairs past the cap holds its first pair's TTLs, not this one's).
fn pdu_ttl(rt: &mut PairState, own: bool, obs: &Observation<'_>, cx: &NetCx<'_>, folder: &mut Folder) {
    let side = usize::from(obs.direction == Direction::ToClient);
    let Some(quiet) = rt.quiet_ttl.get_mut(side) else { return };
    if own && *quiet == Some(obs.ttl) {
        return;
    }
    if crate::checks::net::ttl_check(obs.src, obs.dst, obs.ttl, obs.ts, obs.pkt, cx, folder) && own {
        *quiet = Some(obs.ttl);
    }
}

/// Scores PDUs against a baseline.
#[derive(Debug)]
pub struct Detector {
    model: Model,
    rts: Vec<PairState>,
    index: FxHashMap<PairKey, u32>,
    /// Host-scan state per client: the baseline's devices first, strangers within their
    /// bound ([`crate::sources`]).
    clients: SourceTable<ClientAcc>,
    /// Requests of clients not tracked for host scans (no room left for them).
    clients_untracked: u64,
    folder: Folder,
    start_ns: Option<i64>,
    tick: i64,
    learned: String,
    pdus: u64,
    overflow_rt: Option<usize>,
    criticality: FxHashMap<IpAddr, f64>,
    /// Reused by [`Detector::pdu`] to build observations without allocating.
    scratch: ObservationLog,
    /// Only critical operations are checked (while a baseline is being learned).
    critical_only: bool,
    /// Scan, sweep and flood windows of the network rules.
    net: crate::checks::net::NetRt,
    /// The envelopes of each learned pair (by the model's pair index), laid out for checking.
    envelopes: Vec<points::EnvelopeIndex>,
    /// Pairs unknown to the baseline followed on their own ([`MAX_NEW_PAIRS`] unless a memory
    /// cap says fewer).
    max_new_pairs: usize,
    /// Pairs unknown to the baseline followed on their own now (the shared runtime not
    /// counted).
    new_pairs: usize,
    /// Of those, the pairs whose client the baseline does not know ([`MAX_STRANGER_PAIRS`]
    /// at most).
    stranger_pairs: usize,
    /// Runtimes given back ([`IDLE_PAIR_SECS`]), reused before new ones are made.
    free: Vec<u32>,
    /// The client, packet and time of the last conversation start that reported its client
    /// to `new_asset`: the PDU of the same packet does not report it again.
    announced: Option<(IpAddr, u64, i64)>,
}

impl Detector {
    /// Bounds the clients tracked for host scans at once (a memory cap; at most
    /// [`MAX_CLIENTS`]); past it, requests of new clients are counted in
    /// [`Detector::clients_untracked`].
    pub fn set_max_clients(&mut self, n: usize) {
        self.clients.set_max(n.clamp(1, MAX_CLIENTS));
    }

    /// Bounds the pairs unknown to the baseline that are followed each on its own (a memory
    /// cap; at most [`MAX_NEW_PAIRS`]); past it, they share one runtime.
    pub fn set_max_new_pairs(&mut self, n: usize) {
        self.max_new_pairs = n.clamp(1, MAX_NEW_PAIRS);
    }

    /// Bytes the runtime of one pair costs (its windows, timing and polling state).
    pub const fn pair_state_bytes() -> usize {
        std::mem::size_of::<PairState>()
    }

    /// A detector for a verified baseline.
    pub fn new(baseline: &Baseline) -> Result<Self, BaselineError> {
        Ok(Detector::from_model(Model::from_baseline(baseline)?))
    }

    fn from_model(model: Model) -> Self {
        let mut d = Detector {
            learned: human_duration(model.learned_secs()),
            rts: Vec::new(),
            index: FxHashMap::default(),
            clients: SourceTable::new(MAX_CLIENTS),
            clients_untracked: 0,
            folder: Folder::new(),
            start_ns: None,
            tick: i64::MIN,
            pdus: 0,
            overflow_rt: None,
            criticality: FxHashMap::default(),
            scratch: ObservationLog::new(),
            critical_only: false,
            net: crate::checks::net::NetRt::default(),
            envelopes: model.pairs.iter().map(points::EnvelopeIndex::of).collect(),
            max_new_pairs: MAX_NEW_PAIRS,
            new_pairs: 0,
            stranger_pairs: 0,
            free: Vec::new(),
            announced: None,
            model,
        };
        d.folder.set_learned_secs(d.model.learned_secs());
        for i in 0..d.model.pairs.len() {
            let Some(pm) = d.model.pairs.get(i) else { continue };
            let key = pm.key;
            let mut polls: Vec<(&Poll, u64)> = pm.polls.iter().map(|(s, p)| (p, *s)).collect();
            polls.sort_by_key(|(p, s)| (p.func, p.unit, p.start, p.count, *s));
            let polls_sorted = polls.into_iter().map(|(_, s)| s).collect();
            d.push_rt(key, Some(i as u32), polls_sorted);
        }
        d
    }

    /// A runtime for `key`, in a slot given back if there is one.
    fn push_rt(&mut self, key: PairKey, base: Option<u32>, polls_sorted: Vec<u64>) -> usize {
        let client_known = self.model.knows(key.client);
        let assets_known = self.model.asset(key.client).is_some() && self.model.asset(key.server).is_some();
        let state = PairState {
            key,
            subject: key.hash64(),
            base,
            assets_known,
            client_known,
            client: Endpoint { ip: key.client, port: 0 },
            server: Endpoint { ip: key.server, port: key.port },
            win: WindowAcc::default(),
            prev_func: None,
            poll_seen: FxHashMap::default(),
            silent: FxHashSet::default(),
            polls_sorted,
            crit: self.criticality.get(&key.server).copied().unwrap_or(1.0),
            macs: learned_macs(&self.model, key),
            quiet_ttl: [None; 2],
            shared: false,
            last_ns: i64::MIN,
            freed: false,
        };
        let reused = self.free.pop().and_then(|i| Some(i as usize).zip(self.rts.get_mut(i as usize)));
        let i = match reused {
            Some((i, slot)) => {
                *slot = state;
                i
            }
            None => {
                self.rts.push(state);
                self.rts.len() - 1
            }
        };
        self.index.insert(key, i as u32);
        i
    }

    /// Gives back the runtimes of pairs unknown to the baseline that sent no PDU for
    /// [`IDLE_PAIR_SECS`] before `ns`, their last window scored first (as it would have been
    /// when they next spoke). A pair that speaks again gets a runtime anew; what alerted about
    /// it stays with the folder, under its subject.
    fn reclaim_idle(&mut self, ns: i64, pkt: u64) {
        let idle_since = ns.saturating_sub(IDLE_PAIR_SECS * 1_000_000_000);
        let Detector { model, rts, index, folder, learned, free, new_pairs, stranger_pairs, .. } = self;
        for (i, rt) in rts.iter_mut().enumerate() {
            if rt.base.is_some() || rt.shared || rt.freed || rt.last_ns >= idle_since {
                continue;
            }
            if let Some(sum) = rt.win.roll(ns, pkt) {
                window::check_window(model, rt, &sum, learned, folder);
            }
            rt.win = WindowAcc::default();
            rt.freed = true;
            index.remove(&rt.key);
            free.push(i as u32);
            *new_pairs = new_pairs.saturating_sub(1);
            *stranger_pairs = stranger_pairs.saturating_sub(usize::from(!rt.client_known));
        }
    }

    /// Sets the criticality of an asset (a factor on the score of alerts about pairs it
    /// serves; 1.0 by default, 0.5 for a lab bench, 1.5 for a safety system). For the rules
    /// crate's asset inventory.
    pub fn set_asset_criticality(&mut self, ip: IpAddr, criticality: f64) {
        let c = if criticality.is_finite() { criticality.clamp(0.0, 10.0) } else { 1.0 };
        self.criticality.insert(ip, c);
        for rt in self.rts.iter_mut().filter(|rt| rt.key.server == ip) {
            rt.crit = c;
        }
    }

    /// A detector that alerts critical operations only (PLC stop, download, restart, ...),
    /// and scans, sweeps, SYN floods and TCP injection (which need no baseline), for the time
    /// a baseline is being learned: an attacker present then is still seen.
    pub fn critical_only() -> Detector {
        let mut d = Detector::from_model(Model::default());
        d.critical_only = true;
        d
    }

    /// Also hands over each alert when it opens (see [`Detector::drain_opened`]), for live
    /// capture, where waiting for a fold to close would delay an alert by a fold window.
    pub fn report_on_open(&mut self, yes: bool) {
        self.folder.report_on_open(yes);
    }

    /// Alerts opened since the last call (first occurrence, count 1), when
    /// [`Detector::report_on_open`] is on. The same alerts come again from
    /// [`Detector::drain`] when their fold closes, with their final count.
    pub fn drain_opened(&mut self, out: &mut Vec<Alert>) {
        self.folder.drain_opened(out);
    }

    /// Says whether capture is losing packets now. While it is, and for one window after,
    /// the rules that judge timing or absence (channel silent, polling period broken, the
    /// statistical model) are held back: lost packets would look like silence or odd rates.
    pub fn set_capture_loss(&mut self, loss: bool) {
        self.folder.set_hold_timing(loss);
    }

    /// Whether timing and absence rules are held back now (capture loss).
    pub fn timing_held(&self) -> bool {
        self.folder.holding()
    }

    /// Timing and absence alerts held back during capture loss so far.
    pub fn held_back(&self) -> u64 {
        self.folder.held_back()
    }

    /// Sources or servers the network rules' windows track now (bounded).
    pub fn net_tracked(&self) -> usize {
        self.net.tracked()
    }

    /// Requests from clients not tracked for host scans, because [`MAX_CLIENTS`] others were
    /// active in the same window.
    pub fn clients_untracked(&self) -> u64 {
        self.clients_untracked
    }

    /// PDUs scored so far.
    pub fn pdus(&self) -> u64 {
        self.pdus
    }

    /// Scores one PDU (through its [`Observation`], built in a reused buffer).
    pub fn pdu(&mut self, pdu: &Pdu<'_>) {
        let mut log = std::mem::take(&mut self.scratch);
        self.observe(&log.one(pdu));
        self.scratch = log;
    }

    /// Records what the operator's policy found about an observation (scored with the
    /// criticality of the pair's server, folded and rate-limited like every alert).
    pub fn policy(&mut self, obs: &Observation<'_>, finding: crate::PolicyFinding<'_>) {
        let server = obs.client_server().1.ip;
        let crit = self.criticality.get(&server).copied().unwrap_or(1.0);
        crate::checks::policy::policy_finding(obs, finding, crit, &mut self.folder);
    }

    /// Scores one observation.
    pub fn observe(&mut self, obs: &Observation<'_>) {
        let ns = obs.ts.as_nanos();
        self.pdus += 1;
        let start = *self.start_ns.get_or_insert(ns);
        self.folder.resume(ns);
        let w = window_of(ns);
        if w != self.tick {
            self.tick = w;
            self.silence((ns, obs.ts, obs.pkt, start));
            self.reclaim_idle(ns, obs.pkt);
            self.clients.retain(|c| !c.forgettable(w));
            self.folder.sweep(ns);
        }
        let key = PairKey::of_observation(obs);
        let ri = self.pair_state(key);
        let Detector { model, rts, folder, clients, learned, critical_only, clients_untracked, envelopes, .. } = self;
        let Some(rt) = rts.get_mut(ri) else { return };
        (rt.client, rt.server) = obs.client_server();
        rt.last_ns = ns;
        let base = rt.base.and_then(|b| model.pairs.get(b as usize));
        // The shared runtime of pairs past the cap holds its first pair's client and subject,
        // not this one's: each pair's occurrences fold under its own subject (else a new
        // client after the cap counted into, or stayed quiet behind, the first one's alerts).
        let own = rt.key == key;
        let client_known = if own { rt.client_known } else { model.knows(key.client) };
        let occ = Occ {
            kind: Kind::NewPair,
            family: Family::Proto(key.protocol),
            subject: if own { rt.subject } else { key.hash64() },
            detail: 0,
            ts: obs.ts,
            pkt: obs.pkt,
            ts_last: obs.ts,
            pkt_last: obs.pkt,
            src: rt.client,
            dst: rt.server,
            protocol: Some(key.protocol),
            class: Some(obs.class),
            deviation: 1.0,
            criticality: rt.crit,
            min_score: 0,
            point: None,
            learn: None,
            // While a baseline is learned (critical only) every address is new: none is a stranger.
            stranger: !*critical_only && !client_known,
        };
        if *critical_only {
            critical::critical_operation(obs, occ, folder);
            return;
        }
        let cx = Ctx { model, base, key, occ: &occ, learned };
        // The shared runtime knows its first pair's assets, not this one's.
        if !(own && rt.assets_known) {
            let same_packet = |&(_, pkt, t): &(IpAddr, u64, i64)| pkt == obs.pkt && t == ns;
            let counted = self.announced.take().filter(same_packet).map(|(ip, ..)| ip);
            assets::new_asset(obs, &cx, counted, folder);
        }
        let ncx = NetCx { model, learned, crit: &self.criticality, watch: false };
        pdu_ttl(rt, own, obs, &ncx, folder);
        // The shared runtime of pairs past the cap holds the first one's MACs, not this one's.
        let macs = if own { rt.macs } else { learned_macs(model, key) };
        assets::mac_changed(obs, &cx, macs, folder);
        pair::new_pair(obs, &cx, folder);
        if let Some(sum) = rt.win.roll(ns, obs.pkt) {
            window::check_window(model, rt, &sum, learned, folder);
        }
        rt.win.record(obs);
        if obs.is_request {
            critical::critical_operation(obs, occ, folder);
            pair::write_on_read_only_pair(obs, &cx, folder);
            if let Some(b) = base {
                points::outside_baseline(obs, &cx, b, folder);
                pair::new_function(obs, &cx, b, rt.prev_func, folder);
                polling::polling_period_broken(obs, &cx, b, rt, folder);
            }
            rt.prev_func = Some(obs.func);
            match clients.admit(key.client, || model.knows(key.client)) {
                Some(ca) => {
                    if let Some(closed) = ca.record(obs, key.server) {
                        let last = (obs.ts, obs.pkt, Some(key.protocol));
                        window::host_scan(model, key.client, closed, last, learned, folder);
                    }
                }
                None => *clients_untracked += 1,
            }
        } else {
            assets::identity_changed(obs, &cx, folder);
        }
        if let Some((b, ix)) = base.zip(rt.base.and_then(|i| envelopes.get(i as usize))) {
            points::value_outside_envelope(obs, &cx, (b, ix), folder);
        }
        pair::protocol_violation(obs, &cx, folder);
    }

    /// The index of the pair's state, created for a pair unknown to the baseline while there
    /// is room ([`Detector::room_for_pair`]); past it, unknown pairs share one.
    fn pair_state(&mut self, key: PairKey) -> usize {
        match self.index.get(&key).copied() {
            Some(i) => i as usize,
            None if self.room_for_pair(key) => self.push_rt(key, None, Vec::new()),
            // Past the cap, unknown pairs share one runtime (its windows then count them
            // together, which is what a spoofed-source flood deserves).
            None => match self.overflow_rt {
                Some(i) => i,
                None => {
                    let i = self.push_rt(key, None, Vec::new());
                    if let Some(rt) = self.rts.get_mut(i) {
                        rt.shared = true;
                    }
                    self.overflow_rt = Some(i);
                    i
                }
            },
        }
    }

    /// Whether a pair unknown to the baseline can have a runtime of its own (counted if so).
    fn room_for_pair(&mut self, key: PairKey) -> bool {
        if self.new_pairs >= self.max_new_pairs {
            return false;
        }
        let known = self.model.knows(key.client);
        let room = known || self.stranger_pairs < MAX_STRANGER_PAIRS.min(self.max_new_pairs);
        self.stranger_pairs += usize::from(room && !known);
        self.new_pairs += usize::from(room);
        room
    }

    /// Scores one notice: a port carrying another protocol, or a retransmission whose bytes
    /// differ from the first copy.
    pub fn notice(&mut self, n: &Notice) {
        if matches!(n.kind, NoticeKind::PathChanged { .. }) {
            let cx = NetCx {
                model: &self.model,
                learned: &self.learned,
                crit: &self.criticality,
                watch: self.critical_only,
            };
            crate::checks::net::path_changed(n, &cx, &mut self.folder);
            return;
        }
        let Some(pn) = port_notice(n) else { return };
        if self.model.port_notices.contains(&pn) {
            return;
        }
        let crit = self.criticality.get(&pn.server).copied().unwrap_or(1.0);
        notices::port_notice(n, &pn, crit, &self.learned, &mut self.folder);
    }

    /// Scores one conversation record, ARP packet or L2 conversation with the network
    /// rules. Its time advances the folds like a PDU's.
    pub fn net(&mut self, e: &NetEvent) {
        let ns = e.ts().as_nanos();
        self.folder.resume(ns);
        if window_of(ns) != self.tick {
            self.folder.sweep(ns);
        }
        let Detector { model, learned, criticality, folder, net, critical_only, .. } = self;
        let cx = NetCx { model, learned, crit: criticality, watch: *critical_only };
        match e {
            NetEvent::Flow(f) => {
                if crate::checks::net::announces_client(f) {
                    self.announced = Some((f.client.ip, f.pkt, ns));
                }
                net.flow(f, &cx, folder)
            }
            NetEvent::Arp(a) => net.arp(a, &cx, folder),
            NetEvent::L2(l) => crate::checks::net::l2(l, &cx, folder),
        }
    }

    /// Channels silent for longer than their learned period allows.
    fn silence(&mut self, now: (i64, otsensor_dissectors::event::Timestamp, u64, i64)) {
        let Detector { model, rts, folder, learned, .. } = self;
        for rt in rts.iter_mut() {
            let Some(b) = rt.base.and_then(|i| model.pairs.get(i as usize)) else { continue };
            polling::channel_silent(rt, b, now, learned, folder);
        }
    }

    /// Alerts closed so far (folds whose window passed), in a stable order.
    pub fn drain(&mut self, out: &mut Vec<Alert>) {
        self.folder.drain(out);
    }

    /// Ends the input: closes every window and fold, and hands over the remaining alerts.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        let Detector { model, rts, folder, clients, learned, .. } = self;
        for rt in rts.iter_mut() {
            if let Some(sum) = rt.win.close() {
                window::check_window(model, rt, &sum, learned, folder);
            }
        }
        // Only clients that reached enough servers can alert; the rest (every spoofed
        // source of a flood) need not be sorted.
        let mut cl: Vec<(&IpAddr, &mut ClientAcc)> =
            clients.iter_mut().filter(|(_, ca)| !ca.forgettable(i64::MAX)).collect();
        cl.sort_unstable_by_key(|(ip, _)| **ip);
        for (ip, ca) in cl {
            if let Some(closed) = ca.close() {
                let (_, pkt0, ns0) = closed;
                let last = (otsensor_dissectors::event::Timestamp::from_nanos(ns0), pkt0, None);
                window::host_scan(model, *ip, closed, last, learned, folder);
            }
        }
        folder.close_all();
        folder.drain(out);
    }
}
