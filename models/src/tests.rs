//! Tests on crafted Modbus/TCP conversations: real frames through the dissectors' engine,
//! learned, then scored with one deviation each. The helpers are shared with the rules'
//! own tests (in `checks/`); the tests here are about the detector as a whole.

pub(crate) use std::collections::HashMap;

use otsensor_dissectors::engine::{Engine, EngineConfig};
pub(crate) use otsensor_dissectors::event::{Endpoint, NetEvent, Notice, NoticeKind, Pdu, Protocol, Sink, Timestamp};
use otsensor_dissectors::packet::linktype;
use proptest::prelude::*;

pub(crate) use crate::{Alert, Baseline, Detector, Learner, Severity};

/// Raw IPv4/TCP frames of Modbus exchanges, with per-connection sequence numbers.
/// One TCP segment: time, source, destination, ports and payload.
pub(crate) type Seg = (Timestamp, [u8; 4], [u8; 4], u16, u16, Vec<u8>);

#[derive(Default)]
pub(crate) struct Traffic {
    pub(crate) frames: Vec<Seg>,
    pub(crate) tid: u16,
    /// When set, frames are Ethernet with MAC `02:00:<ip>` except for the overrides.
    pub(crate) ethernet: Option<HashMap<[u8; 4], [u8; 6]>>,
}

pub(crate) fn mac_of(ip: [u8; 4], overrides: &HashMap<[u8; 4], [u8; 6]>) -> [u8; 6] {
    overrides.get(&ip).copied().unwrap_or([2, 0, ip[0], ip[1], ip[2], ip[3]])
}

pub(crate) fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 20 + payload.len()) as u16;
    let mut f = vec![0x45, 0]; // IPv4, header 20 bytes; DSCP
    f.extend_from_slice(&total.to_be_bytes()); // total length
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]); // id, DF, TTL 64, TCP, checksum 0
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes()); // sequence number
    f.extend_from_slice(&[0, 0, 0, 1]); // ack
    f.extend_from_slice(&[0x50, 0x18, 0x20, 0, 0, 0, 0, 0]); // offset 5, PSH|ACK, window, checksum, urgent
    f.extend_from_slice(payload);
    f
}

pub(crate) fn adu(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut a = tid.to_be_bytes().to_vec(); // transaction id
    a.extend_from_slice(&[0, 0]); // protocol id
    a.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes()); // length
    a.push(unit);
    a.extend_from_slice(pdu);
    a
}

pub(crate) fn ts(t: f64) -> Timestamp {
    Timestamp::from_nanos(1_600_000_000_000_000_000 + (t * 1e9) as i64)
}

impl Traffic {
    /// A request from `client` to `server`:502 at `t` and, if given, its response 5 ms later.
    pub(crate) fn exchange(
        &mut self,
        t: f64,
        client: [u8; 4],
        server: [u8; 4],
        unit: u8,
        req: &[u8],
        resp: Option<&[u8]>,
    ) {
        let cport = 40000 + u16::from(client[3]);
        self.tid = self.tid.wrapping_add(1);
        self.frames.push((ts(t), client, server, cport, 502, adu(self.tid, unit, req)));
        if let Some(resp) = resp {
            self.frames.push((ts(t + 0.005), server, client, 502, cport, adu(self.tid, unit, resp)));
        }
    }

    pub(crate) fn read_holding(&mut self, t: f64, c: [u8; 4], s: [u8; 4], addr: u16, qty: u16, base: u16) {
        let mut req = vec![3];
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&qty.to_be_bytes());
        let mut resp = vec![3, (qty * 2) as u8];
        for i in 0..qty {
            resp.extend_from_slice(&(base + i).to_be_bytes());
        }
        self.exchange(t, c, s, 1, &req, Some(&resp));
    }

    pub(crate) fn read_input(&mut self, t: f64, c: [u8; 4], s: [u8; 4], addr: u16, qty: u16) {
        let mut req = vec![4];
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&qty.to_be_bytes());
        let mut resp = vec![4, (qty * 2) as u8];
        for i in 0..qty {
            resp.extend_from_slice(&(100 + i).to_be_bytes());
        }
        self.exchange(t, c, s, 1, &req, Some(&resp));
    }

    pub(crate) fn write_register(&mut self, t: f64, c: [u8; 4], s: [u8; 4], addr: u16, value: u16) {
        let mut req = vec![6];
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&value.to_be_bytes());
        let resp = req.clone();
        self.exchange(t, c, s, 1, &req, Some(&resp));
    }

    /// Runs the segments in time order through the engine, numbering TCP sequences then.
    pub(crate) fn run(&self, f: &mut dyn FnMut(&Pdu<'_>)) {
        self.run_sink(&mut |p: &Pdu<'_>| f(p));
    }

    /// [`Traffic::run`] with the conversation records too.
    pub(crate) fn run_sink(&self, sink: &mut dyn Sink) {
        let mut engine = Engine::new(EngineConfig::default());
        let mut order: Vec<&Seg> = self.frames.iter().collect();
        order.sort_by_key(|s| s.0);
        let mut seqs: HashMap<([u8; 4], u16, [u8; 4], u16), u32> = HashMap::new();
        for (i, (t, src, dst, sport, dport, payload)) in order.into_iter().enumerate() {
            let seq = seqs.entry((*src, *sport, *dst, *dport)).or_insert(1000);
            let mut fr = frame(*src, *dst, *sport, *dport, *seq, payload);
            *seq = seq.wrapping_add(payload.len() as u32);
            let lt = match &self.ethernet {
                Some(over) => {
                    let mut eth = mac_of(*dst, over).to_vec(); // destination MAC
                    eth.extend_from_slice(&mac_of(*src, over)); // source MAC
                    eth.extend_from_slice(&[0x08, 0x00]); // IPv4
                    eth.extend_from_slice(&fr);
                    fr = eth;
                    linktype::ETHERNET
                }
                None => linktype::RAW,
            };
            engine.process(*t, i as u64 + 1, lt, &fr, sink);
        }
    }
}

pub(crate) const MASTER: [u8; 4] = [10, 0, 0, 1];
pub(crate) const PLC: [u8; 4] = [10, 0, 0, 2];
pub(crate) const RTU: [u8; 4] = [10, 0, 0, 3];
pub(crate) const ROGUE: [u8; 4] = [10, 0, 0, 9];

/// Normal plant traffic from `from` to `to` seconds: the master polls the PLC every second
/// (holding 0-9, input 100-104) and writes register 10 (0 or 1) every 5 s; it polls the RTU's
/// holding 0-3 every 2 s, read only. `skip_rtu` leaves the RTU out from that time on.
pub(crate) fn normal(tr: &mut Traffic, from: u32, to: u32, skip_rtu: Option<u32>) {
    for s in from..to {
        let t = f64::from(s);
        tr.read_holding(t, MASTER, PLC, 0, 10, 0);
        tr.read_input(t + 0.1, MASTER, PLC, 100, 5);
        if s % 5 == 0 {
            tr.write_register(t + 0.2, MASTER, PLC, 10, u16::from(s % 10 == 0));
        }
        if s % 2 == 0 && skip_rtu.map_or(true, |k| s < k) {
            tr.read_holding(t + 0.3, MASTER, RTU, 0, 4, 7);
        }
    }
}

pub(crate) fn learn(tr: &Traffic) -> Baseline {
    let mut l = Learner::new();
    tr.run(&mut |p| l.pdu(p));
    let mut b = l.finish();
    let text = b.to_json();
    Baseline::from_json(&text).expect("round trip")
}

pub(crate) fn detect(b: &Baseline, tr: &Traffic) -> Vec<Alert> {
    let mut d = Detector::new(b).expect("detector");
    let mut out = Vec::new();
    tr.run(&mut |p| d.pdu(p));
    d.finish(&mut out);
    out
}

pub(crate) fn baseline_600s() -> Baseline {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 600, None);
    learn(&tr)
}

/// 120 s of normal traffic after learning, plus `inject` at 650 s.
pub(crate) fn scenario(inject: impl FnOnce(&mut Traffic)) -> Vec<Alert> {
    scenario_on(&baseline_600s(), inject)
}

/// [`scenario`] against `b`.
pub(crate) fn scenario_on(b: &Baseline, inject: impl FnOnce(&mut Traffic)) -> Vec<Alert> {
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    inject(&mut tr);
    detect(b, &tr)
}

/// `b` as if learning had lasted eight days (the rules that judge rates, periods and
/// envelopes trust a baseline fully from a week of learning).
pub(crate) fn matured(mut b: Baseline) -> Baseline {
    b.learning.duration_secs = 8.0 * 86_400.0;
    b
}

pub(crate) fn ids(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.id.as_str()).collect()
}

pub(crate) fn find<'a>(alerts: &'a [Alert], id: &str) -> &'a Alert {
    alerts.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("no {id} in {:#?}", alerts))
}

#[test]
fn normal_traffic_scored_against_its_own_baseline_raises_nothing() {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 600, None);
    let b = learn(&tr);
    let alerts = detect(&b, &tr);
    assert!(alerts.is_empty(), "{alerts:#?}");
    assert!(b.model.is_some(), "enough windows for the statistical model");
}

#[test]
fn later_normal_traffic_raises_nothing_of_medium_or_above() {
    let alerts = scenario(|_| {});
    let loud: Vec<_> = alerts.iter().filter(|a| a.severity >= Severity::Medium).collect();
    assert!(loud.is_empty(), "{loud:#?}");
}

#[test]
fn asset_criticality_scales_the_score() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    tr.write_register(650.0, MASTER, RTU, 2, 1);
    let score = |crit: f64| {
        let mut d = Detector::new(&b).expect("detector");
        d.set_asset_criticality(std::net::IpAddr::from(RTU), crit);
        let mut out = Vec::new();
        tr.run(&mut |p| d.pdu(p));
        d.finish(&mut out);
        out.iter().find(|a| a.id == "modbus.write_on_read_only_pair").map(|a| a.score).expect("alert")
    };
    assert!(score(0.5) < score(1.0));
    // Weight 85 x impact 0.9 (a write) x 0.903 (ten minutes of learning behind a novelty).
    assert_eq!(score(1.0), 69);
}

#[test]
fn repeats_fold_into_one_alert_with_a_count() {
    let alerts = scenario(|tr| {
        for i in 0..10 {
            tr.exchange(650.0 + f64::from(i), MASTER, PLC, 1, &[8, 0, 1, 0, 0], None);
        }
    });
    let restarts: Vec<_> = alerts.iter().filter(|a| a.id == "modbus.cold_restart").collect();
    assert_eq!(restarts.len(), 1);
    assert_eq!(restarts[0].count, 10);
    assert!(restarts[0].pkt_last > restarts[0].pkt_first);
}

#[test]
fn thousands_of_new_talkers_give_a_bounded_number_of_alerts() {
    let alerts = scenario(|tr| {
        for i in 0..3000u32 {
            let src = [10, 9, (i / 250) as u8, (i % 250) as u8];
            tr.read_holding(650.0 + f64::from(i) * 0.001, src, PLC, 0, 10, 0);
        }
    });
    let new_pairs = alerts.iter().filter(|a| a.id == "modbus.new_pair").count();
    assert!(new_pairs <= crate::alert::MAX_FOLDS_PER_RULE as usize + 2, "{new_pairs}");
    let folded: u64 = alerts.iter().filter(|a| a.id == "modbus.new_pair").map(|a| a.count).sum();
    assert!(folded >= 3000, "{folded}");
}

#[test]
fn scoring_is_deterministic() {
    let inject = |tr: &mut Traffic| {
        for i in 0..200u16 {
            tr.read_holding(650.0 + f64::from(i) * 0.02, ROGUE, PLC, i, 1, 0);
            tr.write_register(650.0 + f64::from(i) * 0.03, MASTER, PLC, 300 + i, i);
        }
    };
    let a = scenario(inject);
    let b = scenario(inject);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn a_flood_of_one_kind_cannot_bury_the_others() {
    let alerts = scenario(|tr| {
        for i in 0..200u16 {
            tr.write_register(650.0 + f64::from(i) * 0.1, MASTER, PLC, 300 + i, i);
        }
        tr.exchange(660.0, MASTER, PLC, 1, &[8, 0, 1, 0, 0], None);
    });
    let outside = alerts.iter().filter(|a| a.id == "modbus.write_outside_baseline").count();
    assert!(outside <= 2 * crate::alert::MAX_FOLDS_PER_RULE_PAIR as usize + 2, "{outside}");
    find(&alerts, "modbus.cold_restart");
}

#[test]
fn baselines_round_trip_and_refuse_edits() {
    let mut b = baseline_600s();
    let text = b.to_json();
    assert_eq!(Baseline::from_json(&text).expect("verifies").to_json(), text);
    let edited = text.replacen("\"requests\": ", "\"requests\": 1", 1);
    let err = Baseline::from_json(&edited).expect_err("edited");
    assert!(err.to_string().contains("otsensor baseline seal"), "{err}");
    let resealed = crate::reseal(&edited).expect("reseal");
    assert!(Baseline::from_json(&resealed).is_ok());
    assert!(Baseline::from_json("{\"format\":\"x\"}").is_err());
}

#[test]
fn two_captures_a_day_apart_keep_the_learned_period() {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 300, None);
    normal(&mut tr, 86_400, 86_700, None);
    let b = learn(&tr);
    let plc = std::net::IpAddr::from(PLC);
    let pair = b.pairs.iter().find(|p| p.server == plc).expect("pair");
    let poll = pair.polling.iter().find(|q| q.func == 3).expect("FC 3 recurs");
    assert!((poll.period_secs - 1.0).abs() < 0.01, "{poll:?}");
    assert!(poll.max_gap_secs > 86_000.0, "{poll:?}");
    let alerts = detect(&b, &tr);
    assert!(alerts.iter().all(|a| a.severity < Severity::Medium), "{alerts:#?}");
}

#[test]
fn learning_continues_from_a_baseline() {
    let b = baseline_600s();
    let mut l = Learner::continue_from(&b).expect("continue");
    let mut tr = Traffic::default();
    tr.write_register(700.0, MASTER, RTU, 2, 1);
    tr.run(&mut |p| l.pdu(p));
    let b2 = l.finish();
    assert_eq!(b2.learning.runs, 2);
    assert!(b2
        .pairs
        .iter()
        .any(|p| p.server == std::net::IpAddr::from(RTU) && p.functions.iter().any(|f| f.func == 6)));
}

#[test]
fn a_baseline_of_a_hundred_busy_devices_stays_under_a_few_megabytes() {
    // 100 PLCs, each polled for 3 x 125 holding registers of changing values, plus writes.
    let mut tr = Traffic::default();
    for s in 0..40u16 {
        for d in 0..100u8 {
            let plc = [10, 0, 1, d];
            let t = f64::from(s) * 2.0 + f64::from(d) * 0.01;
            for (k, addr) in [0u16, 200, 400].into_iter().enumerate() {
                tr.read_holding(
                    t + k as f64 * 0.002,
                    MASTER,
                    plc,
                    addr,
                    125,
                    s.wrapping_mul(37).wrapping_add(u16::from(d)),
                );
            }
            tr.write_register(t + 0.007, MASTER, plc, 1000 + u16::from(d % 7), s % 50);
        }
    }
    let mut b = learn(&tr);
    let json = b.to_json();
    assert_eq!(b.pairs.len(), 100);
    assert!(b.pairs.iter().all(|p| p.values.len() <= crate::MAX_VALUE_POINTS && p.values_truncated));
    eprintln!("baseline of 100 busy devices: {} bytes", json.len());
    assert!(json.len() < 3 << 20, "{} bytes", json.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any polling program scored against a baseline learned from itself raises nothing of
    /// medium or above, except the critical operations it contains.
    #[test]
    fn a_capture_scored_against_itself_raises_only_its_critical_operations(
        polls in proptest::collection::vec((1u8..5, 0u16..2000, 1u16..20, 1u32..6, 0u8..3), 1..6),
        restart_at in proptest::option::of(10u32..200),
        seconds in 60u32..240,
    ) {
        let mut tr = Traffic::default();
        for s in 0..seconds {
            for (k, &(func, addr, qty, every, server)) in polls.iter().enumerate() {
                if s % every != 0 {
                    continue;
                }
                let t = f64::from(s) + k as f64 * 0.05;
                let srv = [10, 0, 0, 20 + server];
                match func {
                    1 | 2 => {
                        let mut req = vec![func];
                        req.extend_from_slice(&addr.to_be_bytes());
                        req.extend_from_slice(&qty.to_be_bytes());
                        let bytes = usize::from(qty).div_ceil(8);
                        let mut resp = vec![func, bytes as u8];
                        resp.extend(std::iter::repeat((s % 3) as u8).take(bytes));
                        tr.exchange(t, MASTER, srv, 1, &req, Some(&resp));
                    }
                    3 => tr.read_holding(t, MASTER, srv, addr, qty, (s % 7) as u16),
                    _ => tr.write_register(t, MASTER, srv, addr, (s % 4) as u16),
                }
            }
            if restart_at == Some(s) {
                tr.exchange(f64::from(s) + 0.5, MASTER, [10, 0, 0, 20], 1, &[8, 0, 1, 0, 0], None);
            }
        }
            let b = learn(&tr);
        let alerts = detect(&b, &tr);
        for a in &alerts {
            prop_assert!(
                a.severity < Severity::Medium || a.id.ends_with(".cold_restart"),
                "{a:#?}"
            );
        }
        prop_assert_eq!(alerts.iter().any(|a| a.id == "modbus.cold_restart"), restart_at.is_some_and(|s| s < seconds));
    }
}

/// Scores `tr`, with capture loss reported from `loss.0` to `loss.1` seconds of packet time.
pub(crate) fn detect_with_loss(b: &Baseline, tr: &Traffic, loss: (f64, f64)) -> (Vec<Alert>, u64) {
    let mut d = Detector::new(b).expect("detector");
    tr.run(&mut |p| {
        let t = p.ts.as_secs_f64() - ts(0.0).as_secs_f64();
        d.set_capture_loss(t >= loss.0 && t < loss.1);
        d.pdu(p);
    });
    let mut out = Vec::new();
    d.finish(&mut out);
    (out, d.held_back())
}

#[test]
fn capture_loss_holds_back_silence_until_a_window_after_it_ends() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, Some(630));
    // Loss over the whole run: the RTU's silence may be nothing but lost packets.
    let (alerts, held) = detect_with_loss(&b, &tr, (600.0, 800.0));
    assert!(!alerts.iter().any(|a| a.id == "modbus.channel_silent"), "{:?}", ids(&alerts));
    assert!(held > 0, "nothing was held back");
    // Loss ending at 660 s: the silence is alerted again, one window (10 s) later at least.
    let (alerts, _) = detect_with_loss(&b, &tr, (600.0, 660.0));
    let a = find(&alerts, "modbus.channel_silent");
    let at = a.ts_first.as_secs_f64() - ts(0.0).as_secs_f64();
    assert!(at >= 670.0, "alerted at {at}");
    // Rules that do not judge timing are never held back.
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    tr.exchange(650.0, MASTER, PLC, 1, &[8, 0, 1, 0, 0], Some(&[8, 0, 1, 0, 0]));
    let (alerts, _) = detect_with_loss(&b, &tr, (600.0, 800.0));
    find(&alerts, "modbus.cold_restart");
}

#[test]
fn the_critical_only_detector_alerts_restarts_and_nothing_else() {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 60, None);
    tr.exchange(30.0, ROGUE, PLC, 1, &[8, 0, 1, 0, 0], Some(&[8, 0, 1, 0, 0]));
    tr.write_register(31.0, ROGUE, PLC, 10, 7);
    let mut d = Detector::critical_only();
    tr.run(&mut |p| d.pdu(p));
    let mut out = Vec::new();
    d.finish(&mut out);
    assert_eq!(ids(&out), ["modbus.cold_restart"], "{out:#?}");
}

#[test]
fn alerts_reported_on_open_come_at_once_and_again_with_their_final_count() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    for i in 0..10 {
        tr.exchange(650.0 + f64::from(i), MASTER, PLC, 1, &[8, 0, 1, 0, 0], None);
    }
    let mut d = Detector::new(&b).expect("detector");
    d.report_on_open(true);
    let mut opened = Vec::new();
    let mut at_pkt = None;
    tr.run(&mut |p| {
        d.pdu(p);
        let before = opened.len();
        d.drain_opened(&mut opened);
        if opened.len() > before && at_pkt.is_none() {
            at_pkt = Some(p.pkt);
        }
    });
    let first = find(&opened, "modbus.cold_restart");
    assert_eq!((first.count, Some(first.pkt_first)), (1, at_pkt), "handed over by the PDU that opened it");
    let mut closed = Vec::new();
    d.finish(&mut closed);
    assert_eq!(find(&closed, "modbus.cold_restart").count, 10);
}

/// Requests from `n` spoofed sources (172.16.0.0 up) to the PLC, from `t0` on, 10 us apart.
fn spoofed_requests(tr: &mut Traffic, n: usize, t0: f64) {
    for i in 0..n {
        let [_, a, b, c] = (i as u32).to_be_bytes();
        tr.exchange(t0 + i as f64 * 1e-5, [172, a | 16, b, c], PLC, 1, &[3, 0, 0, 0, 1], None);
    }
}

/// Hosts read by `client` from `t0` on, 10 ms apart: 30 servers, a host scan.
fn host_scan_by(tr: &mut Traffic, client: [u8; 4], t0: f64) {
    for i in 0..30u8 {
        tr.read_holding(t0 + f64::from(i) * 0.01, client, [10, 0, 1, i], 0, 1, 0);
    }
}

/// A flood of requests from more spoofed sources than [`crate::sources::MAX_STRANGERS`] in
/// one window: the host-scan state stays bounded (the excess is counted, not tracked), and a
/// stranger that started scanning before the flood is still seen.
#[test]
fn spoofed_clients_do_not_grow_the_host_scan_state_and_a_scanner_is_still_seen() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    host_scan_by(&mut tr, ROGUE, 650.0);
    spoofed_requests(&mut tr, crate::sources::MAX_STRANGERS + 1000, 650.5);
    let (untracked, alerts) = host_scans_scored(&b, &tr);
    assert_eq!(untracked, 1000 + 1, "the scanner, a stranger too, came first");
    assert!(alerts.iter().any(|a| a.id == "net.scan" && a.src.ip.to_string() == "10.0.0.9"), "{:?}", ids(&alerts));
}

/// Scores `tr`'s PDUs: the requests not followed for host scans, and the alerts.
fn host_scans_scored(b: &Baseline, tr: &Traffic) -> (u64, Vec<Alert>) {
    let mut d = Detector::new(b).expect("detector");
    tr.run(&mut |p| d.pdu(p));
    let mut alerts = Vec::new();
    d.finish(&mut alerts);
    (d.clients_untracked(), alerts)
}

/// A device of the baseline that starts scanning once a flood of spoofed sources has taken
/// all the room strangers get is still tracked, and its scan alerted: the flood cannot hide
/// a compromised master. (With one bound for all clients, the flood filled it first.)
#[test]
fn a_known_master_scanning_after_a_flood_filled_the_room_is_still_seen() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    // More than the whole table holds, as a flood of one bound for every client filled it.
    let spoofed = crate::detect::MAX_CLIENTS + 1000;
    spoofed_requests(&mut tr, spoofed, 650.0);
    host_scan_by(&mut tr, MASTER, 651.0);
    let (untracked, alerts) = host_scans_scored(&b, &tr);
    let past_the_bound = (spoofed - crate::sources::MAX_STRANGERS) as u64;
    assert_eq!(untracked, past_the_bound, "only spoofed sources past the bound are untracked");
    assert!(alerts.iter().any(|a| a.id == "net.scan" && a.src.ip.to_string() == "10.0.0.1"), "{:?}", ids(&alerts));
}

/// A device of the baseline that reaches a new server after a flood of spoofed pairs took
/// every runtime pairs unknown to the baseline get is still followed on its own: its burst
/// is alerted as its own flood, not counted with the spoofed sources in the shared runtime.
#[test]
fn a_known_master_on_a_new_pair_after_a_flood_of_spoofed_pairs_is_followed_on_its_own() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    spoofed_requests(&mut tr, crate::detect::MAX_NEW_PAIRS + 100, 650.0);
    let burst = crate::detect::NEW_PAIR_FLOOD_REQUESTS + 50;
    for i in 0..burst {
        tr.read_holding(661.0 + i as f64 * 0.01, MASTER, [10, 0, 0, 50], 0, 1, 0);
    }
    let mut d = Detector::new(&b).expect("detector");
    tr.run(&mut |p| d.pdu(p));
    let mut alerts = Vec::new();
    d.finish(&mut alerts);
    let own = alerts.iter().find(|a| a.id == "modbus.flood" && a.dst.ip.to_string() == "10.0.0.50");
    let own = own.unwrap_or_else(|| panic!("no flood alert toward 10.0.0.50: {:?}", ids(&alerts)));
    assert!(own.summary.starts_with(&format!("10.0.0.1 sent {burst} requests")), "{}", own.summary);
}

/// Learns or scores both the PDUs and the conversation records of some traffic.
struct Both<'a, T>(&'a mut T);

impl Sink for Both<'_, Learner> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self.0.pdu(pdu);
    }
    fn net(&mut self, e: &NetEvent) {
        self.0.net(e);
    }
}

impl Sink for Both<'_, Detector> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self.0.pdu(pdu);
    }
    fn net(&mut self, e: &NetEvent) {
        self.0.net(e);
    }
}

/// A new address whose first packet opens a conversation and carries a request is one
/// occurrence of `new_asset`: its conversation's start reports it, its PDU not again. (Each
/// spoofed source of a flood was counted twice.) Its second packet is a second occurrence.
#[test]
fn a_new_address_is_one_occurrence_per_packet() {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 600, None);
    let mut l = Learner::new();
    tr.run_sink(&mut Both(&mut l));
    let b = Baseline::from_json(&l.finish().to_json()).expect("round trip");
    let new_asset_count = |requests: u32| {
        let mut later = Traffic::default();
        normal(&mut later, 600, 700, None);
        for i in 0..requests {
            later.exchange(650.0 + f64::from(i), ROGUE, PLC, 1, &[3, 0, 0, 0, 1], None);
        }
        let mut d = Detector::new(&b).expect("detector");
        later.run_sink(&mut Both(&mut d));
        let mut alerts = Vec::new();
        d.finish(&mut alerts);
        find(&alerts, "net.new_asset").count
    };
    assert_eq!(new_asset_count(1), 1);
    assert_eq!(new_asset_count(2), 2);
}

/// Pairs past those followed one by one share a runtime: its flood alert speaks of the new
/// sources together, naming the first pair only as the first, not as the sender of all.
#[test]
fn a_flood_of_new_sources_is_reported_as_such_not_as_its_first_pair() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    for n in 0..300u32 {
        let [_, _, hi, lo] = n.to_be_bytes();
        tr.exchange(650.0 + f64::from(n) * 1e-3, [172, 16, hi, lo], PLC, 1, &[3, 0, 0, 0, 1], None);
    }
    let mut d = Detector::new(&b).expect("detector");
    d.set_max_new_pairs(1);
    tr.run(&mut |p| d.pdu(p));
    let mut alerts = Vec::new();
    d.finish(&mut alerts);
    let f = find(&alerts, "modbus.flood");
    assert!(
        f.summary.contains("from new sources beyond those followed one by one (the first: 172.16.0."),
        "{}",
        f.summary
    );
    assert!(f.evidence.contains("likely spoofed"), "{}", f.evidence);
}

/// A flood of spoofed sources while a baseline is learned: past [`crate::learn::MAX_LEARNED_PAIRS`]
/// pairs, their PDUs are counted and not learned, so the baseline (and the learner's memory)
/// stays bounded; the plant's own pairs, learned first, are all there.
#[test]
fn a_flood_while_learning_stops_at_the_bound_of_learned_pairs() {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 60, None);
    let over = 100;
    spoofed_requests(&mut tr, crate::learn::MAX_LEARNED_PAIRS + over, 61.0);
    let mut l = Learner::new();
    tr.run(&mut |p| l.pdu(p));
    assert_eq!(l.pairs(), crate::learn::MAX_LEARNED_PAIRS);
    let plant_pairs = learn(&{
        let mut t = Traffic::default();
        normal(&mut t, 0, 60, None);
        t
    })
    .pairs
    .len();
    assert!(plant_pairs > 0);
    assert_eq!(l.pairs_not_learned(), (over + plant_pairs) as u64, "one request each, none learned");
    let b = l.finish();
    assert_eq!(b.pairs.len(), crate::learn::MAX_LEARNED_PAIRS);
    assert!(b.pairs.iter().any(|p| p.server.to_string() == "10.0.0.2"), "the plant's pairs came first");
}

/// A flood of spoofed sources on new pairs takes the alerts strangers may open per window
/// ([`crate::alert::MAX_STRANGER_FOLDS_PER_RULE`]) and folds the rest into an overflow alert
/// of its own; the baseline's master reaching a new PLC in the same window is still alerted
/// on its own (with one limit for all, the flood took it and folded the master in).
#[test]
fn a_known_master_on_a_new_pair_during_a_flood_is_alerted_on_its_own() {
    let alerts = scenario(|tr| {
        spoofed_requests(tr, 3000, 650.0);
        tr.read_holding(651.0, MASTER, [10, 0, 0, 50], 0, 1, 0);
    });
    let new_pairs: Vec<&Alert> = alerts.iter().filter(|a| a.id == "modbus.new_pair").collect();
    let summaries: Vec<&str> = new_pairs.iter().map(|a| a.summary.as_str()).collect();
    let own = new_pairs.iter().find(|a| a.src.ip.to_string() == "10.0.0.1" && a.dst.ip.to_string() == "10.0.0.50");
    assert!(own.is_some_and(|a| a.count == 2), "request and response: {summaries:?}");
    let overflow: Vec<&&Alert> = new_pairs.iter().filter(|a| a.summary.starts_with("More ")).collect();
    assert_eq!(overflow.len(), 1, "{summaries:?}");
    assert!(overflow[0].summary.contains("from addresses the baseline does not know"), "{}", overflow[0].summary);
    let strangers = u64::from(crate::alert::MAX_STRANGER_FOLDS_PER_RULE);
    assert_eq!(new_pairs.len() as u64, strangers + 2, "the strangers' own, their overflow, the master's");
    assert_eq!(new_pairs.iter().map(|a| a.count).sum::<u64>(), 3000 + 2);
}

/// Pairs past those followed one by one share a runtime, but not their alerts: a new client
/// that comes after them (an attacker after a flood of spoofed pairs, or simply after many
/// new pairs in a long run) is alerted as its own new pair, naming itself, and not counted
/// into the alert of the pair that happened to open the shared runtime, nor kept quiet by it.
#[test]
fn a_new_pair_past_those_followed_one_by_one_is_alerted_as_itself() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 800, None);
    // The first followed on its own (the cap is one), the second opens the shared runtime.
    tr.exchange(640.0, [172, 16, 0, 1], PLC, 1, &[3, 0, 0, 0, 1], None);
    tr.exchange(641.0, [172, 16, 0, 2], PLC, 1, &[3, 0, 0, 0, 1], None);
    // Within the second's fold window.
    tr.exchange(645.0, [172, 16, 0, 3], PLC, 1, &[3, 0, 0, 0, 1], None);
    // Past the second's fold window, within its quiet period.
    tr.exchange(720.0, ROGUE, PLC, 1, &[6, 0, 0, 0, 1], None);
    let mut d = Detector::new(&b).expect("detector");
    d.set_max_new_pairs(1);
    tr.run(&mut |p| d.pdu(p));
    let mut alerts = Vec::new();
    d.finish(&mut alerts);
    let named = |id: &str, ip: &str| alerts.iter().any(|a| a.id == id && a.src.ip.to_string() == ip);
    assert!(named("modbus.new_pair", "172.16.0.3"), "{:?}", ids(&alerts));
    assert!(named("modbus.new_pair", "10.0.0.9"), "{:?}", ids(&alerts));
    assert!(named("modbus.write_on_read_only_pair", "10.0.0.9"), "{:?}", ids(&alerts));
    let second = alerts.iter().find(|a| a.id == "modbus.new_pair" && a.src.ip.to_string() == "172.16.0.2");
    assert_eq!(second.map(|a| a.count), Some(1), "{:?}", ids(&alerts));
}

/// The room for pairs followed one by one comes back as they go idle: a pair that took it
/// and then went quiet for [`crate::detect::IDLE_PAIR_SECS`] gives its runtime back, and a
/// new client's burst after that is followed, and alerted, as its own, not as the shared
/// runtime's flood from new sources.
#[test]
fn the_room_of_pairs_gone_idle_goes_to_the_pairs_that_come_later() {
    let b = baseline_600s();
    let burst = crate::detect::NEW_PAIR_FLOOD_REQUESTS + 50;
    let flood_of_rogue = |at: f64| {
        let mut tr = Traffic::default();
        normal(&mut tr, 600, 1500, None);
        // Takes the only room (the cap is one), then goes quiet; the second opens the shared one.
        tr.exchange(640.0, [172, 16, 0, 1], PLC, 1, &[3, 0, 0, 0, 1], None);
        tr.exchange(641.0, [172, 16, 0, 2], PLC, 1, &[3, 0, 0, 0, 1], None);
        for i in 0..burst {
            tr.read_holding(at + i as f64 * 0.01, ROGUE, PLC, 0, 1, 0);
        }
        let mut d = Detector::new(&b).expect("detector");
        d.set_max_new_pairs(1);
        tr.run(&mut |p| d.pdu(p));
        let mut alerts = Vec::new();
        d.finish(&mut alerts);
        let f = alerts.iter().find(|a| a.id == "modbus.flood").map(|a| a.summary.clone());
        f.unwrap_or_else(|| panic!("no flood alert: {:?}", ids(&alerts)))
    };
    let own = format!("10.0.0.9 sent {burst} requests");
    // Before the first pair went idle: the room is taken, the burst shares the runtime.
    let shared = flood_of_rogue(700.0);
    assert!(!shared.starts_with(&own), "{shared}");
    assert!(shared.contains("from new sources beyond those followed one by one"), "{shared}");
    // Ten minutes after: the room came back.
    let later = flood_of_rogue(640.0 + crate::detect::IDLE_PAIR_SECS as f64 + 30.0);
    assert!(later.starts_with(&own), "{later}");
}
