//! The episode scorer: the five QUT DNP3 2017 training runs (24 h each, captured on the
//! attacker's host, with the attack script's log of every episode), learned from their
//! first hour of capture time and scored on the rest, as `otsensor replay --learn-for 1h`
//! does.
//!
//! An episode (a START/END pair of the log, local time UTC+10) counts as detected when an
//! alert of medium or above starts inside [START - 2 s, END + 30 s]; an alert of medium or
//! above outside every episode (+120 s) is false. Episodes that start inside the learning
//! hour are reported apart (only the watch that runs while learning can see them). The
//! per-kind table is what `docs/DETECTIONS.md` reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use otsensor::cmd::replay::{replay_to, ReplayArgs};
use otsensor_dissectors::engine::EngineConfig;
use serde_json::Value;

use crate::common::{require, shared_pcaps};

const RUNS: [&str; 5] =
    ["flooding-infrequent", "injection-frequent", "masquerading-infrequent", "mitm-frequent", "replay-frequent"];
/// The log's local time is UTC+10.
const LOG_UTC_OFFSET_SECS: f64 = 10.0 * 3600.0;
const LEARN_SECS: f64 = 3600.0;

/// One attack episode of a script log.
#[derive(Debug)]
struct Episode {
    kind: String,
    start: f64,
    end: f64,
}

/// Seconds since the epoch of `2016-08-13 10:11:38.008652` read as UTC.
fn parse_time(date: &str, time: &str) -> Option<f64> {
    let d: Vec<i64> = date.split('-').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (h, rest) = time.split_once(':')?;
    let (m, s) = rest.split_once(':')?;
    let (&[y, mo, day], h, m, s) =
        (d.as_slice(), h.parse::<i64>().ok()?, m.parse::<i64>().ok()?, s.parse::<f64>().ok()?)
    else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + m * 60) as f64 + s)
}

/// The episodes of a log: `<date> <time> <kind> [args] START|END` lines.
fn episodes(log: &str) -> Vec<Episode> {
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(date), Some(time), Some(kind), Some(edge)) = (f.first(), f.get(1), f.get(2), f.last()) else {
            continue;
        };
        let Some(t) = parse_time(date, time).map(|t| t - LOG_UTC_OFFSET_SECS) else { continue };
        match *edge {
            "START" => {
                open.insert(kind.to_string(), t);
            }
            "END" => {
                if let Some(start) = open.remove(*kind) {
                    out.push(Episode { kind: kind.to_string(), start, end: t });
                }
            }
            _ => {}
        }
    }
    out
}

/// Extracts `member` of `zip` into `dir` (once) with unzip.
fn unzip(zip: &Path, member: &str, dir: &Path) -> Option<PathBuf> {
    let out = dir.join(member);
    if out.is_file() {
        return Some(out);
    }
    std::fs::create_dir_all(dir).ok()?;
    let ok = Command::new("unzip").arg("-o").arg("-q").arg(zip).arg(member).arg("-d").arg(dir).status();
    require(ok.is_ok_and(|s| s.success()), "unzip")?;
    Some(out)
}

/// Time of the first packet of a classic little-endian pcap.
fn first_packet_secs(pcap: &Path) -> f64 {
    let b = std::fs::read(pcap).expect("capture");
    let rd = |at: usize| f64::from(u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")));
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian microsecond pcap");
    rd(24) + rd(28) * 1e-6
}

/// Per kind: (detected, episodes); false alerts; (alerted, episodes) in the learning hour.
struct RunScore {
    kinds: BTreeMap<String, (u32, u32)>,
    false_alerts: Vec<String>,
    learning: (u32, u32),
}

fn score(eps: &[Episode], alerts: &[Value], learn_end: f64) -> RunScore {
    let serious: Vec<(f64, &Value)> = alerts
        .iter()
        .filter(|a| matches!(a["severity"].as_str(), Some("medium" | "high" | "critical")))
        .map(|a| (a["ts"].as_f64().unwrap_or(0.0), a))
        .collect();
    let mut s = RunScore { kinds: BTreeMap::new(), false_alerts: Vec::new(), learning: (0, 0) };
    for e in eps {
        let hit = serious.iter().any(|(t, _)| *t >= e.start - 2.0 && *t <= e.end + 30.0);
        if e.start < learn_end {
            s.learning.0 += u32::from(hit);
            s.learning.1 += 1;
            continue;
        }
        let k = s.kinds.entry(e.kind.clone()).or_default();
        k.0 += u32::from(hit);
        k.1 += 1;
    }
    for (t, a) in &serious {
        if !eps.iter().any(|e| *t >= e.start - 2.0 && *t <= e.end + 120.0) {
            s.false_alerts.push(format!("{t:.3} {} {}", a["id"], a["summary"]));
        }
    }
    s
}

fn replay(capture: &Path) -> Vec<Value> {
    let args = ReplayArgs {
        alerts_key: None,
        baseline_keys: Default::default(),
        capture: capture.to_path_buf(),
        learn_for_secs: LEARN_SECS,
        alerts: None,
        save_baseline: None,
        engine: EngineConfig::default(),
        policy: None,
        progress: false,
        summary: false,
    };
    let mut out = Vec::new();
    replay_to(&args, &mut out).expect("replay");
    String::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .filter(|a| a.get("update").is_none())
        .collect()
}

#[test]
fn qut_dnp3_episodes_are_detected_without_false_alerts() {
    let Some(shared) = shared_pcaps() else { return };
    let tmp = std::env::temp_dir().join("otsensor-qut-dnp3");
    let (mut detected, mut total, mut false_alerts) = (0u32, 0u32, Vec::new());
    let mut table: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for run in RUNS {
        let dir = shared.join("attacks/qut-dnp3-2017/training").join(run);
        let Some(pcap) = unzip(&dir.join("attacker.pcap.zip"), "attacker.pcap", &tmp.join(run)) else { return };
        let Some(log) = unzip(&dir.join("Attack_script_log.log.zip"), "Attack_script_log.log", &tmp.join(run)) else {
            return;
        };
        let eps = episodes(&std::fs::read_to_string(&log).expect("log"));
        assert!(eps.len() >= 11, "{run}: {} episodes in its log", eps.len());
        let alerts = replay(&pcap);
        let s = score(&eps, &alerts, first_packet_secs(&pcap) + LEARN_SECS);
        let (d, t) = s.kinds.values().fold((0, 0), |(d, t), (kd, kt)| (d + kd, t + kt));
        eprintln!(
            "{run}: {d}/{t} episodes after learning; {}/{} in the learning hour; {} false",
            s.learning.0,
            s.learning.1,
            s.false_alerts.len()
        );
        for (k, (kd, kt)) in &s.kinds {
            eprintln!("  {k}: {kd}/{kt}");
            let e = table.entry(k.clone()).or_default();
            e.0 += kd;
            e.1 += kt;
        }
        detected += d;
        total += t;
        false_alerts.extend(s.false_alerts.into_iter().map(|f| format!("{run}: {f}")));
    }
    eprintln!("| attack | detected |\n|---|---|");
    for (k, (d, t)) in &table {
        eprintln!("| {k} | {d}/{t} |");
    }
    eprintln!("all: {detected}/{total}");
    assert!(total >= 200, "{total} episodes after learning");
    assert!(false_alerts.is_empty(), "false alerts:\n{}", false_alerts.join("\n"));
    assert!(f64::from(detected) >= 0.9 * f64::from(total), "{detected}/{total} episodes detected, under 90%");
}

#[test]
fn a_script_log_line_is_read_in_utc() {
    let eps = episodes("2016-08-13 10:11:38.5 nmap START\n2016-08-13 10:11:40.5 nmap END\n");
    assert_eq!(eps.len(), 1);
    // 2016-08-13 00:11:38.5 UTC.
    assert!((eps[0].start - 1_471_047_098.5).abs() < 1e-6, "{}", eps[0].start);
    assert!((eps[0].end - eps[0].start - 2.0).abs() < 1e-6);
}
