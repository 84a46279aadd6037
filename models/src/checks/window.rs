//! Rules judged when a pair's (or a client's) 10 s window closes: `flood`,
//! `exception_burst`, `scan` (of points, functions, units, and of servers), and the
//! statistical model's `statistical_anomaly`.

use std::net::IpAddr;

use otsensor_dissectors::event::{Endpoint, Protocol, Timestamp};

use crate::alert::{Folder, Occ};
use crate::model::{hash64, Model, PairKey};
use crate::rules_catalog::{Family, Kind};
use crate::stats;
use crate::window::WindowSummary;
use crate::words::{self, ScanOf};

use super::{deviation, PairState};

/// Requests per window above which a pair unknown to the baseline counts as flooding.
pub const NEW_PAIR_FLOOD_REQUESTS: u64 = 200;
/// Distinct points per window above which a pair unknown to the baseline is scanning.
pub const NEW_PAIR_SCAN_POINTS: u32 = 32;
/// Fewest distinct function codes, unit ids or hosts in a window for a scan.
pub const MIN_SCAN_SPREAD: u32 = 5;

/// What the window rules of one pair read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowCtx<'a> {
    pub(crate) model: &'a Model,
    /// Whether the baseline knows the pair.
    pub(crate) known: bool,
    /// Whether the window counts the pairs past those followed one by one, together.
    pub(crate) shared: bool,
    pub(crate) key: PairKey,
    /// The occurrence the rules start from, spanning the window.
    pub(crate) occ: Occ,
    pub(crate) learned: &'a str,
}

/// Every window rule of one pair, on its closed window `s`.
pub(crate) fn check_window(model: &Model, rt: &PairState, s: &WindowSummary, learned: &str, folder: &mut Folder) {
    let base = rt.base.and_then(|b| model.pairs.get(b as usize));
    let protocol = rt.key.protocol;
    let occ = Occ {
        kind: Kind::Flood,
        family: Family::Proto(protocol),
        subject: rt.subject,
        detail: 0,
        ts: Timestamp::from_nanos(s.first_ns),
        pkt: s.first_pkt,
        ts_last: Timestamp::from_nanos(s.last_ns),
        pkt_last: s.last_pkt,
        src: rt.client,
        dst: rt.server,
        protocol: Some(protocol),
        class: None,
        deviation: 1.0,
        criticality: rt.crit,
        min_score: 0,
        point: None,
        learn: None,
        stranger: rt.shared || !rt.client_known,
    };
    let cx = WindowCtx { model, known: base.is_some(), shared: rt.shared, key: rt.key, occ, learned };
    let r = base.map(|b| b.rates).unwrap_or_default();
    flood(&cx, s, (r.max_requests, r.sum_requests, r.windows), folder);
    exception_burst(&cx, s, r.max_exceptions, folder);
    let points_thr = if cx.known { (2 * r.max_points).max(r.max_points + 32) } else { NEW_PAIR_SCAN_POINTS };
    for (what, n, learned_max, thr) in [
        (ScanOf::Points, s.points, r.max_points, points_thr),
        (ScanOf::Functions, s.funcs, r.max_funcs, scan_threshold(r.max_funcs, 3)),
        (ScanOf::Units, s.units, r.max_units, scan_threshold(r.max_units, 4)),
    ] {
        let detail = match what {
            ScanOf::Points => 1,
            ScanOf::Functions => 2,
            _ => 3,
        };
        // A DNP3 master probing link addresses is looking for outstations behind a gateway.
        let (kind, what) = if matches!(what, ScanOf::Units) && protocol == Protocol::Dnp3 {
            (Kind::LinkAddressSweep, ScanOf::LinkAddresses)
        } else {
            (Kind::Scan, what)
        };
        scan(Occ { kind, detail, ..occ }, what, (n, thr, learned_max), rt.server, learned, folder);
    }
    // Pairs unknown to the baseline are alerted as such; the model knows only learned pairs.
    // A window cut short by the end of the input, or with a single request (no
    // inter-arrival time), is not a window the model learned the shape of.
    if cx.known && !s.partial && s.requests >= 2 {
        statistical_anomaly(&cx, s, folder);
    }
}

/// max(2 x, + `add`) the learned maximum, and at least [`MIN_SCAN_SPREAD`] - 1.
pub(crate) fn scan_threshold(learned_max: u32, add: u32) -> u32 {
    (2 * learned_max).max(learned_max + add).max(MIN_SCAN_SPREAD - 1)
}

/// `flood`: requests in a window above max(3 x, +30) the learned maximum, or
/// [`NEW_PAIR_FLOOD_REQUESTS`] for a pair unknown to the baseline. `learned`: the most
/// requests in a window, their sum and the windows.
fn flood(cx: &WindowCtx<'_>, s: &WindowSummary, (max, sum, windows): (u64, f64, u64), folder: &mut Folder) {
    let thr = if cx.known { (3 * max).max(max + 30) } else { NEW_PAIR_FLOOD_REQUESTS };
    if s.requests <= thr {
        return;
    }
    let n = s.requests;
    folder.hit(Occ { deviation: deviation(n as f64, thr as f64), ..cx.occ }, || {
        let learned = cx.known.then(|| (max, if windows > 0 { sum / windows as f64 } else { 0.0 }));
        words::flood(cx.key, n, learned, cx.shared, cx.learned)
    });
}

/// `exception_burst`: error responses in a window above max(2 x, +5) the learned maximum.
fn exception_burst(cx: &WindowCtx<'_>, s: &WindowSummary, max: u64, folder: &mut Folder) {
    let thr = (2 * max).max(max + 5);
    if s.exceptions <= thr {
        return;
    }
    let n = s.exceptions;
    let o = Occ { kind: Kind::ExceptionBurst, deviation: deviation(n as f64, thr as f64), ..cx.occ };
    folder.hit(o, || words::exception_burst(cx.key, n, s.last_error, max, cx.learned));
}

/// `scan`, the one check for every kind of spread: `n` distinct points, functions, units
/// or servers in one window above `thr` (`learned_max`: the most learned in one window).
fn scan(
    occ: Occ,
    what: ScanOf,
    (n, thr, learned_max): (u32, u32, u32),
    server: Endpoint,
    learned: &str,
    folder: &mut Folder,
) {
    if n <= thr {
        return;
    }
    let client = occ.src.ip;
    folder.hit(Occ { deviation: deviation(f64::from(n), f64::from(thr)), ..occ }, || {
        words::scan(what, n, learned_max, client, server, learned)
    });
}

/// `scan` of servers (family `net`): a client contacting, in one window, more servers than
/// max(2 x, +5) its learned maximum. `closed`: distinct servers, first packet and time of the
/// window; `last`: the time and packet it closed at; `protocol`: of the request that closed
/// it, `None` at the end of input.
pub(crate) fn host_scan(
    model: &Model,
    ip: IpAddr,
    (n, pkt0, ns0): (u32, u64, i64),
    (ts_last, pkt_last, protocol): (Timestamp, u64, Option<Protocol>),
    learned: &str,
    folder: &mut Folder,
) {
    let learned_max = model.asset(ip).map_or(0, |a| a.max_servers);
    let thr = scan_threshold(learned_max, 5);
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
        deviation: 1.0,
        criticality: 1.0,
        min_score: 0,
        point: None,
        learn: None,
        stranger: !model.knows(ip),
    };
    scan(occ, ScanOf::Servers, (n, thr, learned_max), Endpoint { ip, port: 0 }, learned, folder);
}

/// `statistical_anomaly`: the PCA reconstruction error of the window above the threshold.
fn statistical_anomaly(cx: &WindowCtx<'_>, s: &WindowSummary, folder: &mut Folder) {
    let Some(sm) = &cx.model.stat else { return };
    let (err, res) = stats::error(sm, &s.features);
    if err <= sm.threshold {
        return;
    }
    let o = Occ { kind: Kind::StatisticalAnomaly, deviation: deviation(err, sm.threshold * 2.0), ..cx.occ };
    folder.hit(o, || {
        let top = stats::top_features(sm, &s.features, &res);
        words::statistical_anomaly(cx.key, err, sm, &top)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn scan_thresholds_double_the_learned_spread_with_a_floor() {
        assert_eq!(scan_threshold(0, 3), 4);
        assert_eq!(scan_threshold(0, 5), 5);
        assert_eq!(scan_threshold(2, 4), 6);
        assert_eq!(scan_threshold(10, 4), 20);
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
        assert!(
            alerts.iter().any(|a| a.id == "modbus.scan" && a.summary.contains("function codes")),
            "{:?}",
            ids(&alerts)
        );
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

    /// A DNP3 link frame from master link address 1 to `dst`, carrying one READ of class 0
    /// (transport and application headers with their CRCs).
    fn dnp3_read(dst: u16, seq: u8) -> Vec<u8> {
        use otsensor_dissectors::dnp3::crc::crc16;
        let user = [
            0xC0 | (seq & 0x3F), // transport: FIR, FIN, sequence
            0xC0 | (seq & 0x0F), // application control: FIR, FIN, sequence
            0x01,                // function: READ
            0x3C,
            0x01,
            0x06, // g60v1 (class 0), qualifier 0x06: all
        ];
        let mut f = vec![0x05, 0x64, 5 + user.len() as u8, 0xC4]; // start, length, DIR|PRM unconfirmed data
        f.extend_from_slice(&dst.to_le_bytes()); // destination link address
        f.extend_from_slice(&1u16.to_le_bytes()); // source link address (the master)
        let crc = crc16(&f);
        f.extend_from_slice(&crc.to_le_bytes()); // header CRC
        f.extend_from_slice(&user);
        let crc = crc16(&user);
        f.extend_from_slice(&crc.to_le_bytes()); // data block CRC
        f
    }

    #[test]
    fn a_dnp3_client_addressing_many_outstations_is_a_link_address_sweep() {
        let mut tr = Traffic::default();
        for s in 0..600u32 {
            tr.frames.push((ts(f64::from(s)), MASTER, PLC, 40001, 20000, dnp3_read(10, s as u8)));
        }
        let b = learn(&tr);
        let mut later = Traffic::default();
        for (i, dst) in (100..120u16).enumerate() {
            later.frames.push((ts(650.0 + i as f64 * 0.1), MASTER, PLC, 40001, 20000, dnp3_read(dst, i as u8)));
        }
        let alerts = detect(&b, &later);
        let a = find(&alerts, "dnp3.link_address_sweep");
        assert_eq!(a.rule_id, 9_100_259);
        // The distinct count is an estimate (a small sketch per window): 20 give 20 or 21.
        assert!(a.summary.contains("addressed 20 DNP3") || a.summary.contains("addressed 21 DNP3"), "{}", a.summary);
        assert!(!alerts.iter().any(|a| a.id == "dnp3.scan"), "{:?}", ids(&alerts));
        // Polling the one learned outstation is not a sweep.
        let mut same = Traffic::default();
        for i in 0..20u32 {
            same.frames.push((ts(650.0 + f64::from(i) * 0.1), MASTER, PLC, 40001, 20000, dnp3_read(10, i as u8)));
        }
        assert!(!detect(&b, &same).iter().any(|a| a.id == "dnp3.link_address_sweep"));
    }
}
