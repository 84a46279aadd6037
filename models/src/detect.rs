//! Detection: PDUs scored against a baseline, alerts out.
//!
//! The per-PDU path does one hash lookup for the pair, bitmap tests for function codes,
//! range look-ups for points and envelope look-ups for values; nothing is formatted or
//! allocated unless an alert opens. Time is the packets': windows close and silence is
//! judged as packet time advances, never by the wall clock.

use std::net::IpAddr;

use otsensor_dissectors::event::{Access, Direction, Endpoint, FunctionClass, Notice, Pdu, Protocol, Space, Timestamp};

use crate::observation::{Observation, ObservationLog};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::alert::{Alert, Folder, Occ};
use crate::baseline::{space_name, Baseline, BaselineError};
use crate::learn::{port_notice, RETRANSMISSION_CONFLICT};
use crate::model::{hash64, Model, PairKey, PairModel, PointKey, Poll, ValueKey};
use crate::rules_catalog::{Family, Kind};
use crate::stats;
use crate::window::{window_of, ClientAcc, WindowAcc, WindowSummary};

/// Requests per window above which a pair unknown to the baseline counts as flooding.
pub const NEW_PAIR_FLOOD_REQUESTS: u64 = 200;
/// Distinct points per window above which a pair unknown to the baseline is scanning.
pub const NEW_PAIR_SCAN_POINTS: u32 = 32;
/// Pairs unknown to the baseline tracked one by one; beyond, they share one runtime.
pub const MAX_NEW_PAIRS: usize = 16_384;
/// Consecutive intervals under a recurring request's fast limit, spanning at least its
/// learned period, before it counts as broken.
pub const POLL_FAST_STREAK: u8 = 5;
/// Fewest distinct function codes, unit ids or hosts in a window for a scan.
pub const MIN_SCAN_SPREAD: u32 = 5;

#[derive(Debug)]
struct Rt {
    key: PairKey,
    subject: u64,
    base: Option<u32>,
    assets_known: bool,
    client: Endpoint,
    server: Endpoint,
    win: WindowAcc,
    prev_func: Option<u16>,
    /// Per recurring request seen: last time, consecutive too-fast intervals, and when they began.
    poll_seen: FxHashMap<u64, (i64, u8, i64)>,
    silent: FxHashSet<u64>,
    polls_sorted: Vec<u64>,
    /// Criticality of the server.
    crit: f64,
    /// Learned MACs of the client and the server, when known.
    macs: [Option<[u8; 6]>; 2],
}

/// Scores PDUs against a baseline.
#[derive(Debug)]
pub struct Detector {
    model: Model,
    rts: Vec<Rt>,
    index: FxHashMap<PairKey, u32>,
    clients: FxHashMap<IpAddr, ClientAcc>,
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
}

/// Critical operations (stop, download, restart, ...): alerted whatever the baseline says.
fn check_critical(folder: &mut Folder, obs: &Observation<'_>, occ: Occ) {
    let Some(op) = obs.critical.filter(|_| obs.is_request) else { return };
    let (fname, protocol, client, server) = (obs.func_name, obs.protocol, occ.src, occ.dst);
    // The operation is its own impact: a disabled report stream is as critical as a stop.
    folder.hit(Occ { kind: Kind::Critical(op), detail: 0, class: None, ..occ }, || {
        let title = Kind::Critical(op).info().title;
        (
            format!("{title}: {} sent {fname} to {}", client.ip, server),
            format!(
                "{fname} ({}) from {} to {} ({protocol}); critical operations are alerted whatever the baseline",
                op.name(),
                client,
                server
            ),
        )
    });
}

/// "3 h 12 min", "14 min 5 s", "42 s".
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec} s"),
        (0, _) => format!("{m} min {sec} s"),
        _ => format!("{h} h {m} min"),
    }
}

/// How far an observation is above its threshold, as a score factor in 0.8-1.3.
fn deviation(observed: f64, threshold: f64) -> f64 {
    if threshold <= 0.0 {
        return 1.3;
    }
    (0.8 + 0.2 * (observed / threshold).max(1e-9).log2()).clamp(0.8, 1.3)
}

impl Detector {
    /// A detector for a verified baseline.
    pub fn new(baseline: &Baseline) -> Result<Self, BaselineError> {
        Ok(Detector::from_model(Model::from_baseline(baseline)?))
    }

    fn from_model(model: Model) -> Self {
        let mut d = Detector {
            learned: human_duration(model.learned_secs()),
            rts: Vec::new(),
            index: FxHashMap::default(),
            clients: FxHashMap::default(),
            folder: Folder::new(),
            start_ns: None,
            tick: i64::MIN,
            pdus: 0,
            overflow_rt: None,
            criticality: FxHashMap::default(),
            scratch: ObservationLog::new(),
            critical_only: false,
            model,
        };
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

    fn push_rt(&mut self, key: PairKey, base: Option<u32>, polls_sorted: Vec<u64>) -> usize {
        let i = self.rts.len();
        let assets_known = self.model.assets.contains_key(&key.client) && self.model.assets.contains_key(&key.server);
        self.rts.push(Rt {
            key,
            subject: key.hash64(),
            base,
            assets_known,
            client: Endpoint { ip: key.client, port: 0 },
            server: Endpoint { ip: key.server, port: key.port },
            win: WindowAcc::default(),
            prev_func: None,
            poll_seen: FxHashMap::default(),
            silent: FxHashSet::default(),
            polls_sorted,
            crit: self.criticality.get(&key.server).copied().unwrap_or(1.0),
            macs: [
                self.model.assets.get(&key.client).filter(|a| !a.mac_varies).and_then(|a| a.mac),
                self.model.assets.get(&key.server).filter(|a| !a.mac_varies).and_then(|a| a.mac),
            ],
        });
        self.index.insert(key, i as u32);
        i
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
    /// for the time a baseline is being learned: an attacker present then is still seen.
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

    /// PDUs scored so far.
    pub fn pdus(&self) -> u64 {
        self.pdus
    }

    /// Scores one PDU (through its [`Observation`], built in a reused buffer).
    pub fn pdu(&mut self, pdu: &Pdu<'_>) {
        let mut log = std::mem::take(&mut self.scratch);
        log.clear();
        let i = log.push(pdu);
        if let Some(obs) = log.get(i) {
            self.observe(&obs);
        }
        self.scratch = log;
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
            self.silence(ns, obs.ts, obs.pkt, start);
            self.folder.sweep(ns);
        }
        let key = PairKey::of_observation(obs);
        let ri = match self.index.get(&key) {
            Some(&i) => i as usize,
            None if self.rts.len() - self.model.pairs.len() < MAX_NEW_PAIRS => self.push_rt(key, None, Vec::new()),
            // Past the cap, unknown pairs share one runtime (its windows then count them
            // together, which is what a spoofed-source flood deserves).
            None => match self.overflow_rt {
                Some(i) => i,
                None => {
                    let i = self.push_rt(key, None, Vec::new());
                    self.overflow_rt = Some(i);
                    i
                }
            },
        };
        let Detector { model, rts, folder, clients, learned, critical_only, .. } = self;
        let Some(rt) = rts.get_mut(ri) else { return };
        let body = obs;
        let protocol = key.protocol;
        let family = Family::Proto(protocol);
        let is_req = body.is_request;
        let func = body.func;
        let class = body.class;
        let unit = obs.unit;
        let (client, server) = match obs.direction {
            Direction::ToServer => (obs.src, obs.dst),
            Direction::ToClient => (obs.dst, obs.src),
        };
        rt.client = client;
        rt.server = server;
        let base: Option<&PairModel> = rt.base.and_then(|b| model.pairs.get(b as usize));
        let occ = Occ {
            kind: Kind::NewPair,
            family,
            subject: rt.subject,
            detail: 0,
            ts: obs.ts,
            pkt: obs.pkt,
            ts_last: obs.ts,
            pkt_last: obs.pkt,
            src: client,
            dst: server,
            protocol: Some(protocol),
            class: Some(class),
            deviation: 1.0,
            criticality: rt.crit,
        };

        if *critical_only {
            check_critical(folder, body, occ);
            return;
        }

        if !rt.assets_known {
            for (ip, other, sends) in [(key.client, key.server, true), (key.server, key.client, false)] {
                if model.assets.contains_key(&ip) {
                    continue;
                }
                let o = Occ { kind: Kind::NewAsset, family: Family::Net, subject: hash64(&ip), ..occ };
                if folder.is_done(o.kind, o.family, o.subject, 0) {
                    continue;
                }
                let fname = body.func_name;
                folder.hit(o, || {
                    let what = if sends {
                        format!("{ip} sent {fname} to {other} ({protocol})")
                    } else {
                        format!("{ip} answered {protocol} requests from {other}")
                    };
                    (
                        format!("New asset {ip} speaking {protocol}"),
                        format!("{what}; no device at this address spoke an industrial protocol during {learned} of learning"),
                    )
                });
            }
        }

        // Each side's MAC against the learned one (two array compares, no look-up).
        let (client_mac, server_mac) = match obs.direction {
            Direction::ToServer => (obs.src_mac, obs.dst_mac),
            Direction::ToClient => (obs.dst_mac, obs.src_mac),
        };
        let [client_learned, server_learned] = rt.macs;
        for (ip, learned_mac, seen_mac) in
            [(key.client, client_learned, client_mac), (key.server, server_learned, server_mac)]
        {
            let (Some(l), Some(m)) = (learned_mac, seen_mac) else { continue };
            if l == m {
                continue;
            }
            let o = Occ {
                kind: Kind::MacChanged,
                family: Family::Net,
                subject: hash64(&ip),
                detail: hash64(&m),
                class: None,
                ..occ
            };
            folder.hit(o, || {
                (
                    format!("{ip} now comes from MAC {} (learned {})", mac_words(m), mac_words(l)),
                    format!(
                        "{ip} was always seen at {} during {learned} of learning and now at {}: ARP spoofing for a man in the middle, a replaced device, or a new router in the path",
                        mac_words(l),
                        mac_words(m)
                    ),
                )
            });
        }

        if base.is_none() && !folder.is_done(Kind::NewPair, family, rt.subject, 0) {
            let fname = body.func_name;
            let client_role = model.assets.get(&key.client).map(|a| a.role());
            folder.hit(occ, || {
                let role = match client_role {
                    Some(r) => format!("; {} was known as {r}", key.client),
                    None => String::new(),
                };
                (
                    format!("New {protocol} pair: {} talks to {}:{} ({fname})", key.client, key.server, key.port),
                    format!(
                        "{} never talked {protocol} to {}:{} during {learned} of learning{role}",
                        key.client, key.server, key.port
                    ),
                )
            });
        }

        if let Some(sum) = rt.win.roll(ns, obs.pkt) {
            check_window(model, folder, rt, base, &sum, learned);
        }

        if is_req {
            check_critical(folder, body, occ);
            let writes = matches!(class, FunctionClass::Write | FunctionClass::Control);
            let base_wrote = base.is_some_and(|b| b.wrote);
            if writes && !base_wrote {
                let fname = body.func_name;
                let known = base.is_some();
                folder.hit(Occ { kind: Kind::WriteOnReadOnlyPair, ..occ }, || {
                    let target = describe_points(body, unit);
                    let during = if known {
                        format!("this pair only read during {learned} of learning")
                    } else {
                        format!("this pair was not seen at all during {learned} of learning")
                    };
                    (
                        format!("{} wrote to {} ({fname}) on a pair that never wrote", client.ip, server),
                        format!("{fname} to {target} from {}: {during}", client.ip),
                    )
                });
            }
            let mut first: Option<(u32, u32)> = None;
            let win = &mut rt.win;
            let fname = body.func_name;
            body.for_each_point(&mut |r| {
                win.points.set_hash(hash64(&(unit, r.space, r.start)));
                if first.is_none() {
                    first = Some((r.start, r.count));
                }
                let Some(b) = base else { return };
                if r.access == Access::Write && !b.wrote {
                    return;
                }
                let last = r.start.saturating_add(r.count.max(1) - 1);
                let pk = PointKey { unit, space: r.space, access: r.access };
                if b.ranges.get(&pk).is_some_and(|s| s.contains(r.start, last)) {
                    return;
                }
                let kind =
                    if r.access == Access::Write { Kind::WriteOutsideBaseline } else { Kind::ReadOutsideBaseline };
                let detail = hash64(&(unit, r.space, r.start, r.count, r.access));
                let learned_ranges = b.ranges.get(&pk).map(|s| s.ranges.clone());
                folder.hit(Occ { kind, detail, ..occ }, || {
                    let at = unit_words(protocol, unit);
                    let what = points_words(r.space, r.start, last);
                    let area = area_name(r.space);
                    let (noun, verb) = match r.access {
                        Access::Write => ("writes", "wrote"),
                        Access::Read => ("reads", "read"),
                    };
                    let known = match learned_ranges {
                        Some(rs) if !rs.is_empty() => {
                            let shown: Vec<String> = rs
                                .iter()
                                .take(6)
                                .map(|&(a, b)| points_words(r.space, a, b).split_off(area.len() + 1))
                                .collect();
                            format!(
                                "this pair's {noun} of {at}{area} during {learned} of learning covered only {}{}",
                                shown.join(", "),
                                if rs.len() > 6 { ", ..." } else { "" }
                            )
                        }
                        _ => format!("this pair never {verb} {at}{area} during {learned} of learning"),
                    };
                    (
                        format!("{} {verb} {at}{what} on {}, outside the learned points", client.ip, server),
                        format!("{fname} of {at}{what} from {}: {known}", client.ip),
                    )
                });
            });
            if let Some(b) = base {
                // A critical operation's own alert says more than "new function code".
                if !b.has_func(func) && body.critical.is_none() {
                    let fname = body.func_name;
                    folder.hit(Occ { kind: Kind::NewFunctionCode, detail: u64::from(func), ..occ }, || {
                        let used: Vec<String> = b.funcs.values().map(|f| f.name.clone()).collect();
                        (
                            format!(
                                "{} used {fname} ({func}) on {}, a function this pair never used",
                                client.ip, server
                            ),
                            format!(
                                "{fname} from {} to {}{}: during {learned} of learning this pair used only {}",
                                client.ip,
                                unit_words(protocol, unit),
                                server,
                                if used.is_empty() { "no function".to_string() } else { used.join(", ") }
                            ),
                        )
                    });
                } else if let Some(prev) = rt.prev_func {
                    if b.has_func(prev) && !b.knows_transition(prev, func) {
                        let fname = body.func_name;
                        let pname = b.funcs.get(&prev).map(|f| f.name.clone()).unwrap_or_default();
                        folder.hit(
                            Occ { kind: Kind::UnseenFunctionSequence, detail: (u64::from(prev) << 16) | u64::from(func), ..occ },
                            || {
                                (
                                    format!("{} sent {fname} right after {pname} to {}, an order never seen", client.ip, server),
                                    format!(
                                        "{pname} -> {fname}: this transition never occurred on this pair during {learned} of learning"
                                    ),
                                )
                            },
                        );
                    }
                }
                let (start, count) = first.unwrap_or((0, 0));
                let sig = Poll::signature(func, unit, start, count);
                if let Some(p) = b.polls.get(&sig) {
                    let seen = rt.poll_seen.entry(sig).or_insert((ns, 0, ns));
                    let dt = (ns - seen.0) as f64 * 1e-9;
                    if seen.0 != ns && dt < p.too_fast_below() {
                        if seen.1 == 0 {
                            seen.2 = seen.0;
                        }
                        seen.1 = seen.1.saturating_add(1);
                    } else {
                        seen.1 = 0;
                    }
                    seen.0 = ns;
                    // Sustained: enough fast intervals, spanning at least one learned period
                    // (bursts of retransmissions or pipelined requests are not a new period).
                    let span = (ns - seen.2) as f64 * 1e-9;
                    if seen.1 >= POLL_FAST_STREAK && span >= p.mean {
                        seen.1 = 0;
                        let fname = body.func_name;
                        folder.hit(Occ { kind: Kind::PollingPeriodBroken, detail: sig, class: None, ..occ }, || {
                            (
                                format!(
                                    "{} polls {fname} of {}{} on {} far faster than learned",
                                    client.ip,
                                    unit_words(protocol, unit),
                                    poll_words(p),
                                    server
                                ),
                                format!(
                                    "{fname} of {}{}: {POLL_FAST_STREAK} intervals in a row under {:.3} s (the last {:.3} s); during {learned} of learning it came every {:.2} s (spread {:.2} s, never under {:.3} s)",
                                    unit_words(protocol, unit),
                                    poll_words(p),
                                    p.too_fast_below(),
                                    dt,
                                    p.mean,
                                    p.spread(),
                                    p.min_gap
                                ),
                            )
                        });
                    }
                    rt.silent.remove(&sig);
                }
            }
            rt.prev_func = Some(func);
            rt.win.request(ns, func, unit, class, body.bytes);
            let ca = clients.entry(key.client).or_default();
            if let Some((n, pkt0, ns0)) = ca.roll(ns, obs.pkt) {
                check_hosts(model, folder, key, n, pkt0, ns0, obs);
            }
            ca.servers.set_hash(hash64(&key.server));
        } else {
            rt.win.response(body.error_code, body.bytes);
            if body.has_identity() {
                if let Some(asset) = model.assets.get(&key.server) {
                    for (oid, value) in body.identity() {
                        let name = crate::learn::identity_key(oid);
                        let Some(learned_value) = asset.identity.get(&name) else { continue };
                        let seen = String::from_utf8_lossy(value);
                        if *learned_value == seen {
                            continue;
                        }
                        let o = Occ { kind: Kind::IdentityChanged, detail: u64::from(oid), class: None, ..occ };
                        folder.hit(o, || {
                            (
                                format!("{} now reports {name} {seen:?} (learned {learned_value:?})", server),
                                format!(
                                    "read device identification answered {name} = {seen:?} to {}; during {learned} of learning it was {learned_value:?}: the device was replaced, reflashed, or is impersonated",
                                    client.ip
                                ),
                            )
                        });
                    }
                }
            }
        }

        if let Some(b) = base {
            let fname = body.func_name;
            body.for_each_value(&mut |v| {
                let vk = ValueKey { unit, space: v.space, index: v.index, access: v.access };
                let Some(env) = b.values.get(&vk) else { return };
                if env.admits(v.value) {
                    return;
                }
                let write = v.access == Access::Write;
                let o = Occ {
                    kind: Kind::ValueOutsideEnvelope,
                    detail: hash64(&vk),
                    class: Some(if write { FunctionClass::Write } else { FunctionClass::Read }),
                    deviation: if write { 1.0 } else { 0.8 },
                    ..occ
                };
                folder.hit(o, || {
                    let at = unit_words(protocol, unit);
                    let point = points_words(v.space, v.index, v.index);
                    (
                        format!(
                            "{} value {} at {at}{point} on {}, outside its learned envelope",
                            if write { "Wrote" } else { "Read" },
                            v.value,
                            server
                        ),
                        format!(
                            "{fname} {} {at}{point} = {} ({}): during {learned} of learning it was {} ({} samples)",
                            if write { "to" } else { "from" },
                            v.value,
                            if write { format!("written by {}", client.ip) } else { format!("read by {}", client.ip) },
                            env.describe(),
                            env.samples
                        ),
                    )
                });
            });
        }

        let flags = body.flags;
        if !flags.is_empty() {
            for name in flags.iter() {
                if base.is_some_and(|b| b.violations.contains(name)) {
                    continue;
                }
                let fname = body.func_name;
                let src = obs.src;
                let dst = obs.dst;
                folder.hit(Occ { kind: Kind::ProtocolViolation, detail: hash64(name), src, dst, ..occ }, || {
                    (
                        format!("Malformed {protocol} message from {src} to {dst}: {name}"),
                        format!(
                            "{fname} from {src} flagged {name} by the dissector; this pair never sent such a message during {learned} of learning"
                        ),
                    )
                });
            }
        }
    }

    /// Scores one notice: a port carrying another protocol, or a retransmission whose bytes
    /// differ from the first copy.
    pub fn notice(&mut self, n: &Notice) {
        let Some(pn) = port_notice(n) else { return };
        if self.model.port_notices.contains(&pn) {
            return;
        }
        let learned = &self.learned;
        let conflict = pn.kind == RETRANSMISSION_CONFLICT;
        let occ = Occ {
            kind: if conflict { Kind::RetransmissionConflict } else { Kind::PortProtocolMismatch },
            family: Family::Net,
            subject: hash64(&(pn.server, pn.port)),
            detail: hash64(&pn.kind),
            ts: n.ts,
            pkt: n.pkt,
            ts_last: n.ts,
            pkt_last: n.pkt,
            src: n.src,
            dst: n.dst,
            protocol: None,
            class: None,
            deviation: 1.0,
            criticality: self.criticality.get(&pn.server).copied().unwrap_or(1.0),
        };
        if conflict {
            let bytes = match n.kind {
                otsensor_dissectors::event::NoticeKind::RetransmissionConflict { bytes } => bytes,
                _ => 0,
            };
            self.folder.hit(occ, || {
                (
                    format!("A TCP retransmission from {} to {} carried different bytes", n.src, n.dst),
                    format!(
                        "{bytes} bytes resent with content other than the copy first seen (the first copy was dissected): \
                         someone in the path rewrites traffic, or shows the sensor one thing and the device another; \
                         never seen on this connection's server during {learned} of learning"
                    ),
                )
            });
            return;
        }
        self.folder.hit(occ, || {
            let (summary, what) = match pn.kind.split_once(':') {
                Some(("unexpected_port", p)) => (
                    format!("{p} on a connection between {} and {} whose server port is not {p}'s", n.src, n.dst),
                    format!(
                        "{p} was identified by content on a connection whose server port is not configured for it \
                         (a non-standard port, tunnelling, or a reversed or spoofed connection)"
                    ),
                ),
                Some((_, p)) => (
                    format!("{}:{} is configured for {p} but carries something else", pn.server, pn.port),
                    format!("traffic between {} and {} on a {p} port is not {p}", n.src, n.dst),
                ),
                None => (pn.kind.clone(), pn.kind.clone()),
            };
            (summary, format!("{what}; not seen during {learned} of learning"))
        });
    }

    /// Channels silent for longer than their learned period allows.
    fn silence(&mut self, ns: i64, ts: Timestamp, pkt: u64, start: i64) {
        let Detector { model, rts, folder, learned, .. } = self;
        let holding = folder.holding();
        for rt in rts.iter_mut() {
            let Some(b) = rt.base.and_then(|i| model.pairs.get(i as usize)) else { continue };
            let mut newly: Vec<(&Poll, f64)> = Vec::new();
            for sig in &rt.polls_sorted {
                let Some(p) = b.polls.get(sig) else { continue };
                let last = rt.poll_seen.get(sig).map_or(start, |s| s.0);
                let gap = (ns - last) as f64 * 1e-9;
                if gap > p.silence_after() && !rt.silent.contains(sig) {
                    // While capture loss holds timing rules back, a silence is not taken
                    // as reported: it is judged again when the hold ends.
                    if !holding {
                        rt.silent.insert(*sig);
                    }
                    newly.push((p, gap));
                }
            }
            if newly.is_empty() {
                continue;
            }
            let occ = Occ {
                kind: Kind::ChannelSilent,
                family: Family::Proto(rt.key.protocol),
                subject: rt.subject,
                detail: 0,
                ts,
                pkt,
                ts_last: ts,
                pkt_last: pkt,
                src: rt.client,
                dst: rt.server,
                protocol: Some(rt.key.protocol),
                class: None,
                deviation: 1.0,
                criticality: rt.crit,
            };
            let key = rt.key;
            folder.hit(occ, || {
                let parts: Vec<String> = newly
                    .iter()
                    .take(4)
                    .map(|(p, gap)| {
                        let name = b.funcs.get(&p.func).map(|f| f.name.clone()).unwrap_or_else(|| p.func.to_string());
                        format!(
                            "{name} of {}{} was polled every {:.2} s (spread {:.2} s) and has been silent for {}",
                            unit_words(key.protocol, p.unit),
                            poll_words(p),
                            p.mean,
                            p.spread(),
                            human_duration(*gap)
                        )
                    })
                    .collect();
                (
                    format!(
                        "Polling from {} to {}:{} stopped ({} recurring request{})",
                        key.client,
                        key.server,
                        key.port,
                        newly.len(),
                        if newly.len() == 1 { "" } else { "s" }
                    ),
                    format!(
                        "{}{}; learned over {learned}",
                        parts.join("; "),
                        if newly.len() > 4 { "; ..." } else { "" }
                    ),
                )
            });
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
                let base = rt.base.and_then(|b| model.pairs.get(b as usize));
                check_window(model, folder, rt, base, &sum, learned);
            }
        }
        let mut cl: Vec<(&IpAddr, &mut ClientAcc)> = clients.iter_mut().collect();
        cl.sort_by_key(|(ip, _)| **ip);
        for (ip, ca) in cl {
            if let Some((n, pkt0, ns0)) = ca.close() {
                check_hosts_end(model, folder, *ip, n, pkt0, ns0);
            }
        }
        folder.close_all();
        folder.drain(out);
    }
}

/// "unit 1 holding_registers 40100-40101" for the points a request names (the first two).
fn describe_points(body: &Observation<'_>, unit: u16) -> String {
    let mut parts: Vec<String> = Vec::new();
    body.for_each_point(&mut |r| {
        if parts.len() < 2 {
            parts.push(points_words(r.space, r.start, r.start.saturating_add(r.count.max(1) - 1)));
        }
    });
    let at = unit_words(body.protocol, unit);
    if parts.is_empty() {
        at.trim_end().to_string()
    } else {
        format!("{at}{}", parts.join(", "))
    }
}

/// `aa:bb:cc:dd:ee:ff`.
fn mac_words(m: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = m;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// An error code as engineers read it: Modbus exception names, other codes in hex.
fn error_words(protocol: Protocol, code: Option<u16>) -> String {
    match (protocol, code) {
        (Protocol::Modbus, Some(c)) => {
            let name = u8::try_from(c).map_or("UNKNOWN", otsensor_dissectors::modbus::exception_code_name);
            format!("exception {c} {name}")
        }
        (_, Some(c)) => format!("error 0x{c:04x}"),
        (_, None) => "no code".to_string(),
    }
}

/// "unit 1 " (Modbus), "outstation 10 " (DNP3), nothing where the protocol has no unit.
fn unit_words(protocol: Protocol, unit: u16) -> String {
    match protocol {
        Protocol::Modbus => format!("unit {unit} "),
        Protocol::Dnp3 => format!("outstation {unit} "),
        Protocol::S7comm | Protocol::S7commPlus => String::new(),
    }
}

/// A space as engineers write it: S7 areas as `DB102`, `M`, `I`, `Q`; others by their
/// baseline name (`holding_registers`, `g30v1`).
fn area_name(space: Space) -> String {
    match space {
        Space::S7 { area: 0x84, db } => format!("DB{db}"),
        Space::S7 { area, .. } => match area {
            0x80 => "P".to_string(),
            0x81 => "I".to_string(),
            0x82 => "Q".to_string(),
            0x83 => "M".to_string(),
            0x1c => "C".to_string(),
            0x1d => "T".to_string(),
            a => format!("area 0x{a:02x}"),
        },
        other => space_name(other),
    }
}

/// Points as engineers write them: "holding_registers 40100-40101", "g30v1 0-3",
/// "DB102 byte 8", "DB102 bit 8.1" (S7 points are numbered in bits).
fn points_words(space: Space, first: u32, last: u32) -> String {
    let area = area_name(space);
    match space {
        Space::S7 { .. } => {
            let (b0, i0, b1, i1) = (first / 8, first % 8, last / 8, last % 8);
            if i0 == 0 && i1 == 7 {
                if b0 == b1 {
                    format!("{area} byte {b0}")
                } else {
                    format!("{area} bytes {b0}-{b1}")
                }
            } else if first == last {
                format!("{area} bit {b0}.{i0}")
            } else {
                format!("{area} bits {b0}.{i0}-{b1}.{i1}")
            }
        }
        _ if first == last => format!("{area} {first}"),
        _ => format!("{area} {first}-{last}"),
    }
}

/// A polling signature's points: "@0 x10", or "all points" for a whole-class poll.
fn poll_words(p: &Poll) -> String {
    if p.start == 0 && p.count == 0 {
        "all points".to_string()
    } else {
        format!("@{} x{}", p.start, p.count)
    }
}

/// Window checks: flood, exception burst, scans of points, functions and units, and the
/// statistical model.
fn check_window(
    model: &Model,
    folder: &mut Folder,
    rt: &Rt,
    base: Option<&PairModel>,
    s: &WindowSummary,
    learned: &str,
) {
    let key = rt.key;
    let protocol = key.protocol;
    let ts = Timestamp::from_nanos(s.first_ns);
    let occ = Occ {
        kind: Kind::Flood,
        family: Family::Proto(protocol),
        subject: rt.subject,
        detail: 0,
        ts,
        pkt: s.first_pkt,
        ts_last: Timestamp::from_nanos(s.last_ns),
        pkt_last: s.last_pkt,
        src: rt.client,
        dst: rt.server,
        protocol: Some(protocol),
        class: None,
        deviation: 1.0,
        criticality: rt.crit,
    };
    let win = crate::WINDOW_SECS;
    let r = base.map(|b| b.rates).unwrap_or_default();
    let flood_thr =
        if base.is_some() { (3 * r.max_requests).max(r.max_requests + 30) } else { NEW_PAIR_FLOOD_REQUESTS };
    if s.requests > flood_thr {
        folder.hit(Occ { deviation: deviation(s.requests as f64, flood_thr as f64), ..occ }, || {
            (
                format!("{} sent {} requests in {win} s to {}:{}", key.client, s.requests, key.server, key.port),
                if base.is_some() {
                    format!(
                        "{} requests in one {win} s window; the most in any window during {learned} of learning was {} (mean {:.1})",
                        s.requests,
                        r.max_requests,
                        if r.windows > 0 { r.sum_requests / r.windows as f64 } else { 0.0 }
                    )
                } else {
                    format!(
                        "{} requests in one {win} s window from a pair unknown to the baseline (limit {NEW_PAIR_FLOOD_REQUESTS})",
                        s.requests
                    )
                },
            )
        });
    }
    let exc_thr = (2 * r.max_exceptions).max(r.max_exceptions + 5);
    if s.exceptions > exc_thr {
        folder.hit(
            Occ { kind: Kind::ExceptionBurst, deviation: deviation(s.exceptions as f64, exc_thr as f64), ..occ },
            || {
                (
                    format!(
                        "{}:{} returned {} errors to {} in {win} s",
                        key.server, key.port, s.exceptions, key.client
                    ),
                    format!(
                        "{} error responses in one {win} s window (the last: {}); the most during {learned} of learning was {}",
                        s.exceptions,
                        error_words(protocol, s.last_error),
                        r.max_exceptions
                    ),
                )
            },
        );
    }
    let pts_thr = if base.is_some() { (2 * r.max_points).max(r.max_points + 32) } else { NEW_PAIR_SCAN_POINTS };
    if s.points > pts_thr {
        folder.hit(
            Occ { kind: Kind::Scan, detail: 1, deviation: deviation(f64::from(s.points), f64::from(pts_thr)), ..occ },
            || {
                (
                    format!(
                        "{} probed about {} distinct addresses of {}:{} in {win} s",
                        key.client, s.points, key.server, key.port
                    ),
                    format!(
                        "about {} distinct start addresses requested in one {win} s window; the most during {learned} of learning was {}",
                        s.points, r.max_points
                    ),
                )
            },
        );
    }
    let f_thr = (2 * r.max_funcs).max(r.max_funcs + 3).max(MIN_SCAN_SPREAD - 1);
    if s.funcs > f_thr {
        folder.hit(
            Occ { kind: Kind::Scan, detail: 2, deviation: deviation(f64::from(s.funcs), f64::from(f_thr)), ..occ },
            || {
                (
                    format!(
                        "{} tried {} function codes on {}:{} in {win} s",
                        key.client, s.funcs, key.server, key.port
                    ),
                    format!(
                    "{} distinct function codes in one {win} s window; the most during {learned} of learning was {}",
                    s.funcs, r.max_funcs
                ),
                )
            },
        );
    }
    let u_thr = (2 * r.max_units).max(r.max_units + 4).max(MIN_SCAN_SPREAD - 1);
    if s.units > u_thr {
        folder.hit(
            Occ { kind: Kind::Scan, detail: 3, deviation: deviation(f64::from(s.units), f64::from(u_thr)), ..occ },
            || {
                (
                    format!("{} addressed {} unit ids on {}:{} in {win} s", key.client, s.units, key.server, key.port),
                    format!(
                        "{} distinct unit ids in one {win} s window; the most during {learned} of learning was {}",
                        s.units, r.max_units
                    ),
                )
            },
        );
    }
    // Pairs unknown to the baseline are alerted as such; the model knows only learned pairs.
    if let (Some(sm), Some(_)) = (&model.stat, base) {
        let (err, res) = stats::error(sm, &s.features);
        if err > sm.threshold {
            folder.hit(
                Occ { kind: Kind::StatisticalAnomaly, deviation: deviation(err, sm.threshold * 2.0), ..occ },
                || {
                    let top = stats::top_features(sm, &s.features, &res);
                    (
                        format!(
                            "Traffic from {} to {}:{} in a {win} s window is unlike any learned window",
                            key.client, key.server, key.port
                        ),
                        format!(
                            "reconstruction error {err:.2} above the learned threshold {:.2} (the {:.0}th percentile of {} learning windows, with margin); moved most: {}",
                            sm.threshold,
                            sm.quantile * 100.0,
                            sm.samples.len(),
                            top.join("; ")
                        ),
                    )
                },
            );
        }
    }
}

fn host_threshold(model: &Model, ip: &IpAddr) -> u32 {
    let learned = model.assets.get(ip).map_or(0, |a| a.max_servers);
    (2 * learned).max(learned + 5).max(MIN_SCAN_SPREAD - 1)
}

fn check_hosts(model: &Model, folder: &mut Folder, key: PairKey, n: u32, pkt0: u64, ns0: i64, obs: &Observation<'_>) {
    let thr = host_threshold(model, &key.client);
    if n <= thr {
        return;
    }
    host_scan(model, folder, key.client, Some(key.protocol), n, thr, pkt0, ns0, obs.ts, obs.pkt);
}

fn check_hosts_end(model: &Model, folder: &mut Folder, ip: IpAddr, n: u32, pkt0: u64, ns0: i64) {
    let thr = host_threshold(model, &ip);
    if n <= thr {
        return;
    }
    let ts = Timestamp::from_nanos(ns0);
    host_scan(model, folder, ip, None, n, thr, pkt0, ns0, ts, pkt0);
}

#[allow(clippy::too_many_arguments)]
fn host_scan(
    model: &Model,
    folder: &mut Folder,
    ip: IpAddr,
    protocol: Option<Protocol>,
    n: u32,
    thr: u32,
    pkt0: u64,
    ns0: i64,
    ts_last: Timestamp,
    pkt_last: u64,
) {
    let learned_max = model.assets.get(&ip).map_or(0, |a| a.max_servers);
    let learned = human_duration(model.learned_secs());
    let win = crate::WINDOW_SECS;
    let occ = Occ {
        kind: Kind::Scan,
        family: Family::Net,
        subject: hash64(&ip),
        detail: 4,
        ts: Timestamp::from_nanos(ns0),
        pkt: pkt0,
        ts_last,
        pkt_last,
        src: Endpoint { ip, port: 0 },
        dst: Endpoint { ip, port: 0 },
        protocol,
        class: None,
        deviation: deviation(f64::from(n), f64::from(thr)),
        criticality: 1.0,
    };
    folder.hit(occ, || {
        (
            format!("{ip} contacted about {n} servers in {win} s"),
            format!(
                "about {n} distinct servers in one {win} s window; the most this host contacted during {learned} of learning was {learned_max}"
            ),
        )
    });
}

#[cfg(test)]
mod words {
    use super::*;

    #[test]
    fn s7_points_read_as_engineers_write_them() {
        let db = Space::S7 { area: 0x84, db: 102 };
        assert_eq!(points_words(db, 65, 65), "DB102 bit 8.1");
        assert_eq!(points_words(db, 64, 95), "DB102 bytes 8-11");
        assert_eq!(points_words(Space::S7 { area: 0x83, db: 0 }, 0, 7), "M byte 0");
        assert_eq!(points_words(Space::ModbusHoldingRegisters, 10, 10), "holding_registers 10");
    }
}
