//! Tests on crafted Modbus/TCP conversations: real frames through the dissectors' engine,
//! learned, then scored with one deviation each.

use std::collections::HashMap;

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Endpoint, Notice, NoticeKind, Pdu, Protocol, Timestamp};
use otsensor_dissectors::packet::linktype;
use proptest::prelude::*;

use crate::{Alert, Baseline, Detector, Learner, Severity};

/// Raw IPv4/TCP frames of Modbus exchanges, with per-connection sequence numbers.
/// One TCP segment: time, source, destination, ports and payload.
type Seg = (Timestamp, [u8; 4], [u8; 4], u16, u16, Vec<u8>);

#[derive(Default)]
struct Traffic {
    frames: Vec<Seg>,
    tid: u16,
    /// When set, frames are Ethernet with MAC `02:00:<ip>` except for the overrides.
    ethernet: Option<HashMap<[u8; 4], [u8; 6]>>,
}

fn mac_of(ip: [u8; 4], overrides: &HashMap<[u8; 4], [u8; 6]>) -> [u8; 6] {
    overrides.get(&ip).copied().unwrap_or([2, 0, ip[0], ip[1], ip[2], ip[3]])
}

fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
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

fn adu(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut a = tid.to_be_bytes().to_vec(); // transaction id
    a.extend_from_slice(&[0, 0]); // protocol id
    a.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes()); // length
    a.push(unit);
    a.extend_from_slice(pdu);
    a
}

fn ts(t: f64) -> Timestamp {
    Timestamp::from_nanos(1_600_000_000_000_000_000 + (t * 1e9) as i64)
}

impl Traffic {
    /// A request from `client` to `server`:502 at `t` and, if given, its response 5 ms later.
    fn exchange(&mut self, t: f64, client: [u8; 4], server: [u8; 4], unit: u8, req: &[u8], resp: Option<&[u8]>) {
        let cport = 40000 + u16::from(client[3]);
        self.tid = self.tid.wrapping_add(1);
        self.frames.push((ts(t), client, server, cport, 502, adu(self.tid, unit, req)));
        if let Some(resp) = resp {
            self.frames.push((ts(t + 0.005), server, client, 502, cport, adu(self.tid, unit, resp)));
        }
    }

    fn read_holding(&mut self, t: f64, c: [u8; 4], s: [u8; 4], addr: u16, qty: u16, base: u16) {
        let mut req = vec![3];
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&qty.to_be_bytes());
        let mut resp = vec![3, (qty * 2) as u8];
        for i in 0..qty {
            resp.extend_from_slice(&(base + i).to_be_bytes());
        }
        self.exchange(t, c, s, 1, &req, Some(&resp));
    }

    fn read_input(&mut self, t: f64, c: [u8; 4], s: [u8; 4], addr: u16, qty: u16) {
        let mut req = vec![4];
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&qty.to_be_bytes());
        let mut resp = vec![4, (qty * 2) as u8];
        for i in 0..qty {
            resp.extend_from_slice(&(100 + i).to_be_bytes());
        }
        self.exchange(t, c, s, 1, &req, Some(&resp));
    }

    fn write_register(&mut self, t: f64, c: [u8; 4], s: [u8; 4], addr: u16, value: u16) {
        let mut req = vec![6];
        req.extend_from_slice(&addr.to_be_bytes());
        req.extend_from_slice(&value.to_be_bytes());
        let resp = req.clone();
        self.exchange(t, c, s, 1, &req, Some(&resp));
    }

    /// Runs the segments in time order through the engine, numbering TCP sequences then.
    fn run(&self, f: &mut dyn FnMut(&Pdu<'_>)) {
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
            engine.process(*t, i as u64 + 1, lt, &fr, &mut |p: &Pdu<'_>| f(p));
        }
    }
}

const MASTER: [u8; 4] = [10, 0, 0, 1];
const PLC: [u8; 4] = [10, 0, 0, 2];
const RTU: [u8; 4] = [10, 0, 0, 3];
const ROGUE: [u8; 4] = [10, 0, 0, 9];

/// Normal plant traffic from `from` to `to` seconds: the master polls the PLC every second
/// (holding 0-9, input 100-104) and writes register 10 (0 or 1) every 5 s; it polls the RTU's
/// holding 0-3 every 2 s, read only. `skip_rtu` leaves the RTU out from that time on.
fn normal(tr: &mut Traffic, from: u32, to: u32, skip_rtu: Option<u32>) {
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

fn learn(tr: &Traffic) -> Baseline {
    let mut l = Learner::new();
    tr.run(&mut |p| l.pdu(p));
    let mut b = l.finish();
    let text = b.to_json();
    Baseline::from_json(&text).expect("round trip")
}

fn detect(b: &Baseline, tr: &Traffic) -> Vec<Alert> {
    let mut d = Detector::new(b).expect("detector");
    let mut out = Vec::new();
    tr.run(&mut |p| d.pdu(p));
    d.finish(&mut out);
    out
}

fn baseline_600s() -> Baseline {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 600, None);
    learn(&tr)
}

/// 120 s of normal traffic after learning, plus `inject` at 650 s.
fn scenario(inject: impl FnOnce(&mut Traffic)) -> Vec<Alert> {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, None);
    inject(&mut tr);
    detect(&b, &tr)
}

fn ids(alerts: &[Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.id.as_str()).collect()
}

fn find<'a>(alerts: &'a [Alert], id: &str) -> &'a Alert {
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
fn new_host_is_a_new_asset_and_a_new_pair() {
    let alerts = scenario(|tr| tr.read_holding(650.0, ROGUE, PLC, 0, 10, 0));
    let a = find(&alerts, "net.new_asset");
    assert_eq!(a.rule_id, 9_100_001);
    assert!(a.evidence.contains("10.0.0.9"), "{}", a.evidence);
    let p = find(&alerts, "modbus.new_pair");
    assert!(p.evidence.contains("min 59 s of learning"), "{}", p.evidence);
    assert!(p.severity >= Severity::Medium);
}

#[test]
fn diagnostics_on_a_polling_pair_is_a_new_function_code() {
    let alerts =
        scenario(|tr| tr.exchange(650.0, MASTER, PLC, 1, &[8, 0, 0, 0x12, 0x34], Some(&[8, 0, 0, 0x12, 0x34])));
    let a = find(&alerts, "modbus.new_function_code");
    assert!(a.evidence.contains("READ_HOLDING_REGISTERS"), "{}", a.evidence);
    assert_eq!(a.mitre, Some("T0855"));
}

#[test]
fn a_write_on_a_read_only_pair_is_alerted_high() {
    let alerts = scenario(|tr| tr.write_register(650.0, MASTER, RTU, 2, 1));
    let a = find(&alerts, "modbus.write_on_read_only_pair");
    assert!(a.severity >= Severity::High, "{a:#?}");
    assert!(a.evidence.contains("this pair only read during 9 min 59 s of learning"), "{}", a.evidence);
}

#[test]
fn a_write_to_a_point_never_written_is_outside_the_baseline() {
    let alerts = scenario(|tr| tr.write_register(650.5, MASTER, PLC, 500, 1));
    let a = find(&alerts, "modbus.write_outside_baseline");
    assert!(a.evidence.contains("covered only 10 ") || a.evidence.ends_with("covered only 10"), "{}", a.evidence);
}

#[test]
fn a_read_of_addresses_never_polled_is_outside_the_baseline() {
    let alerts = scenario(|tr| tr.read_holding(650.5, MASTER, PLC, 1000, 2, 0));
    let a = find(&alerts, "modbus.read_outside_baseline");
    assert_eq!(a.severity, Severity::Low);
}

#[test]
fn a_written_value_outside_its_set_is_outside_the_envelope() {
    let alerts = scenario(|tr| tr.write_register(650.5, MASTER, PLC, 10, 999));
    let a = find(&alerts, "modbus.value_outside_envelope");
    assert!(a.evidence.contains("only ever {0, 1}"), "{}", a.evidence);
    assert!(a.severity >= Severity::Medium);
}

#[test]
fn a_channel_that_stops_polling_is_silent() {
    let b = baseline_600s();
    let mut tr = Traffic::default();
    normal(&mut tr, 600, 700, Some(630));
    let alerts = detect(&b, &tr);
    let a = find(&alerts, "modbus.channel_silent");
    assert!(a.summary.contains("10.0.0.3"), "{}", a.summary);
    assert!(a.severity >= Severity::Medium);
}

#[test]
fn a_poll_repeated_ten_times_faster_breaks_its_period() {
    let alerts = scenario(|tr| {
        for i in 0..20 {
            tr.read_holding(650.05 + f64::from(i) * 0.1, MASTER, PLC, 0, 10, 0);
        }
    });
    let a = find(&alerts, "modbus.polling_period_broken");
    assert!(a.evidence.contains("came every 1.00 s"), "{}", a.evidence);
    assert!(a.severity >= Severity::Medium);
    assert!(!alerts.iter().any(|a| a.id == "modbus.flood"), "{:?}", ids(&alerts));
}

/// A Read Device Identification exchange (FC 43 / MEI 14) with the given revision.
fn identify(tr: &mut Traffic, t: f64, revision: &str) {
    let mut resp = vec![
        0x2b, 0x0e, // function, MEI type 14
        0x01, 0x01, // read device id code, conformity level
        0x00, 0x00, // more follows, next object id
        0x03, // number of objects
        0x00, 4, b'A', b'C', b'M', b'E', // VendorName
        0x01, 2, b'P', b'1', // ProductCode
    ];
    resp.extend_from_slice(&[0x02, revision.len() as u8]); // MajorMinorRevision
    resp.extend_from_slice(revision.as_bytes());
    tr.exchange(t, MASTER, PLC, 1, &[0x2b, 0x0e, 0x01, 0x00], Some(&resp));
}

#[test]
fn a_device_answering_with_another_revision_changed_identity() {
    let mut tr = Traffic::default();
    normal(&mut tr, 0, 600, None);
    identify(&mut tr, 300.5, "1.0");
    let b = learn(&tr);
    let plc = b.assets.iter().find(|a| a.ip == std::net::IpAddr::from(PLC)).expect("asset");
    assert_eq!(plc.identity.get("VendorName").map(String::as_str), Some("ACME"));
    let mut later = Traffic::default();
    normal(&mut later, 600, 700, None);
    identify(&mut later, 650.5, "2.0");
    let alerts = detect(&b, &later);
    let a = find(&alerts, "modbus.identity_changed");
    assert!(a.summary.contains("\"2.0\"") && a.summary.contains("\"1.0\""), "{}", a.summary);
    assert!(a.severity >= Severity::High);
    let mut same = Traffic::default();
    normal(&mut same, 600, 700, None);
    identify(&mut same, 650.5, "1.0");
    assert!(!detect(&b, &same).iter().any(|a| a.id == "modbus.identity_changed"));
}

#[test]
fn two_writes_in_a_row_are_an_unseen_sequence() {
    let alerts = scenario(|tr| {
        tr.write_register(650.5, MASTER, PLC, 10, 1);
        tr.write_register(650.6, MASTER, PLC, 10, 0);
    });
    find(&alerts, "modbus.unseen_function_sequence");
}

#[test]
fn many_exceptions_are_a_burst() {
    let alerts = scenario(|tr| {
        for i in 0..20 {
            tr.exchange(650.0 + f64::from(i) * 0.01, MASTER, PLC, 1, &[3, 0, 0, 0, 10], Some(&[0x83, 2]));
        }
    });
    let a = find(&alerts, "modbus.exception_burst");
    assert!(a.evidence.contains("exception 2 ILLEGAL_DATA_ADDRESS"), "{}", a.evidence);
}

#[test]
fn a_request_storm_is_a_flood_and_unlike_any_learned_window() {
    let alerts = scenario(|tr| {
        for i in 0..600 {
            tr.read_holding(650.0 + f64::from(i) * 0.01, MASTER, PLC, 0, 10, 0);
        }
    });
    let a = find(&alerts, "modbus.flood");
    assert!(a.severity >= Severity::High);
    assert_eq!(a.mitre, Some("T0814"));
    let s = find(&alerts, "modbus.statistical_anomaly");
    assert!(s.evidence.contains("moved most"), "{}", s.evidence);
}

#[test]
fn reading_one_address_after_another_is_a_scan() {
    let alerts = scenario(|tr| {
        for i in 0..200u16 {
            tr.read_holding(650.0 + f64::from(i) * 0.02, ROGUE, PLC, i, 1, 0);
        }
    });
    let a = find(&alerts, "modbus.scan");
    assert_eq!(a.mitre, Some("T0846"));
    assert!(a.severity >= Severity::High);
}

#[test]
fn addressing_many_unit_ids_is_a_scan() {
    let alerts = scenario(|tr| {
        for u in 1..=40u8 {
            tr.exchange(650.0 + f64::from(u) * 0.05, MASTER, PLC, u, &[3, 0, 0, 0, 10], Some(&[0x83, 0x0b]));
        }
    });
    assert!(alerts.iter().any(|a| a.id == "modbus.scan" && a.summary.contains("unit ids")), "{:?}", ids(&alerts));
}

#[test]
fn trying_many_function_codes_is_a_scan() {
    let alerts = scenario(|tr| {
        for (i, f) in [7u8, 11, 12, 17, 20, 24, 43, 90].into_iter().enumerate() {
            tr.exchange(650.0 + i as f64 * 0.05, ROGUE, PLC, 1, &[f], Some(&[f | 0x80, 1]));
        }
    });
    assert!(alerts.iter().any(|a| a.id == "modbus.scan" && a.summary.contains("function codes")), "{:?}", ids(&alerts));
}

#[test]
fn probing_many_hosts_is_a_scan() {
    let alerts = scenario(|tr| {
        for i in 0..30u8 {
            tr.read_holding(650.0 + f64::from(i) * 0.05, ROGUE, [10, 0, 1, i], 0, 1, 0);
        }
    });
    assert!(alerts.iter().any(|a| a.id == "net.scan" && a.summary.contains("servers")), "{:?}", ids(&alerts));
}

#[test]
fn a_malformed_request_is_a_protocol_violation() {
    // Read Holding Registers with a 5-byte body instead of 4.
    let alerts = scenario(|tr| tr.exchange(650.0, MASTER, PLC, 1, &[3, 0, 0, 0, 10, 0], None));
    let a = find(&alerts, "modbus.protocol_violation");
    assert!(a.summary.contains("bad_length"), "{}", a.summary);
}

#[test]
fn a_restart_is_critical_whatever_the_baseline() {
    let alerts = scenario(|tr| tr.exchange(650.0, MASTER, PLC, 1, &[8, 0, 1, 0, 0], Some(&[8, 0, 1, 0, 0])));
    let a = find(&alerts, "modbus.cold_restart");
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.mitre, Some("T0816"));
    assert_eq!(a.rule_id, 9_100_120);
}

#[test]
fn a_port_carrying_another_protocol_is_alerted_once() {
    let b = baseline_600s();
    let mut d = Detector::new(&b).expect("detector");
    let n = Notice {
        ts: ts(650.0),
        pkt: 7,
        src: Endpoint { ip: [10, 0, 0, 9].into(), port: 50000 },
        dst: Endpoint { ip: [10, 0, 0, 2].into(), port: 8080 },
        kind: NoticeKind::UnexpectedPort { found: Protocol::Dnp3 },
    };
    d.notice(&n);
    d.notice(&Notice { ts: ts(800.0), ..n });
    let mut out = Vec::new();
    d.finish(&mut out);
    assert_eq!(ids(&out), ["net.port_protocol_mismatch"]);
    assert!(out[0].summary.contains("dnp3") && out[0].evidence.contains("identified by content"), "{:?}", out[0]);
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
    assert_eq!(score(1.0), 77);
}

#[test]
fn a_device_answering_from_another_mac_is_alerted_once() {
    let mut tr = Traffic { ethernet: Some(HashMap::new()), ..Traffic::default() };
    normal(&mut tr, 0, 600, None);
    let b = learn(&tr);
    let plc = b.assets.iter().find(|a| a.ip == std::net::IpAddr::from(PLC)).expect("asset");
    assert_eq!(plc.mac.as_deref(), Some("02:00:0a:00:00:02"));
    let mut spoofed = HashMap::new();
    spoofed.insert(PLC, [0x02, 0xee, 0xee, 0xee, 0xee, 0xee]);
    let mut later = Traffic { ethernet: Some(spoofed), ..Traffic::default() };
    normal(&mut later, 600, 700, None);
    let alerts = detect(&b, &later);
    let macs: Vec<_> = alerts.iter().filter(|a| a.id == "net.mac_changed").collect();
    assert_eq!(macs.len(), 1, "{:?}", ids(&alerts));
    assert!(macs[0].summary.contains("02:ee:ee:ee:ee:ee"), "{}", macs[0].summary);
    let mut same = Traffic { ethernet: Some(HashMap::new()), ..Traffic::default() };
    normal(&mut same, 600, 700, None);
    assert!(detect(&b, &same).is_empty());
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
fn detect_with_loss(b: &Baseline, tr: &Traffic, loss: (f64, f64)) -> (Vec<Alert>, u64) {
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
