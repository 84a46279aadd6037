//! Differential test of the DNP3 dissector against tshark.
//!
//! For every DNP3 capture under the shared corpus (`../shared/pcaps/dnp3/**`, the 5.5 h
//! `attacks/dnp3-dataset-2017-...` capture, the five QUT DNP3 2017 attacker captures, unzipped
//! into the temporary directory) and the project's `pcaps/dnp3/`, every
//! application-layer message tshark decodes (a `dnp3.al.func`) is matched to ours by frame
//! number, then by order within the frame, and `link_src`, `link_dst`, `func`, `iin` and the
//! list of object groups and variations must agree. Disagreements judged to be tshark's
//! errors are listed in `pcaps/tshark-differences/dnp3.md` and excluded. The test fails when
//! agreement is below 99.9 %, and skips with a notice when tshark or the corpus is missing.
//!
//! tshark runs once per capture with `-T fields`; frames holding more than one DNP3 link frame
//! (where the field lists cannot say which address belongs to which message) are decoded a
//! second time as PDML, restricted to those frames.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use otsensor::capture::Capture;
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Pdu, PduBody};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");
const LOCAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps");
const DIFFERENCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/tshark-differences/dnp3.md");
/// Agreement below this fails the test.
const MIN_AGREEMENT: f64 = 0.999;

/// One application message: link source and destination, function, IIN, objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Msg {
    src: u16,
    dst: u16,
    func: u16,
    iin: Option<u16>,
    objects: Vec<(u8, u8)>,
}

fn tshark_available() -> bool {
    Command::new("tshark").arg("-v").output().is_ok_and(|o| o.status.success())
}

fn num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn list(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').collect()
    }
}

fn obj(v: &str) -> Option<(u8, u8)> {
    let n = num(v)?;
    Some(norm((n >> 8) as u8, n as u8))
}

/// tshark names octet strings and virtual terminal objects (groups 110-113) with variation 0
/// whatever their wire variation (which is their length), so those compare by group only.
fn norm(group: u8, variation: u8) -> (u8, u8) {
    if (110..=113).contains(&group) {
        (group, 0)
    } else {
        (group, variation)
    }
}

/// tshark's messages, by frame number.
fn tshark_messages(path: &Path) -> BTreeMap<u64, Vec<Msg>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", "dnp3.al.func", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"])
        .args(["-e", "frame.number", "-e", "dnp3.src", "-e", "dnp3.dst", "-e", "dnp3.al.func"])
        .args(["-e", "dnp3.al.iin", "-e", "dnp3.al.obj"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "tshark failed on {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut msgs = BTreeMap::new();
    let mut multi = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let col = |i: usize| cols.get(i).copied().unwrap_or("");
        let Some(frame) = num(col(0)) else { continue };
        let (srcs, dsts, funcs) = (list(col(1)), list(col(2)), list(col(3)));
        if srcs.len() > 1 || funcs.len() > 1 {
            multi.push(frame);
            continue;
        }
        let m = Msg {
            src: srcs.first().and_then(|s| num(s)).unwrap_or(0) as u16,
            dst: dsts.first().and_then(|s| num(s)).unwrap_or(0) as u16,
            func: funcs.first().and_then(|s| num(s)).unwrap_or(0) as u16,
            iin: list(col(4)).first().and_then(|s| num(s)).map(|v| v as u16),
            objects: list(col(5)).into_iter().filter_map(obj).collect(),
        };
        msgs.insert(frame, vec![m]);
    }
    if !multi.is_empty() {
        msgs.extend(tshark_pdml(path, &multi));
    }
    msgs
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = line.find(&key)? + key.len();
    let len = line.get(start..)?.find('"')?;
    line.get(start..start + len)
}

/// Decodes `frames` as PDML and splits their DNP3 layers into messages.
fn tshark_pdml(path: &Path, frames: &[u64]) -> BTreeMap<u64, Vec<Msg>> {
    let set: Vec<String> = frames.iter().map(u64::to_string).collect();
    let filter = format!("frame.number in {{{}}}", set.join(","));
    let out =
        Command::new("tshark").arg("-r").arg(path).args(["-Y", &filter, "-T", "pdml"]).output().expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut msgs: BTreeMap<u64, Vec<Msg>> = BTreeMap::new();
    let mut frame = 0u64;
    let mut cur: Option<(Msg, bool)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("<field name=\"num\"") && frame == 0 {
            frame = attr(t, "show").and_then(num).unwrap_or(0);
        } else if t.starts_with("<packet>") {
            frame = 0;
        } else if t.starts_with("<proto name=\"dnp3\"") {
            cur = Some((Msg::default(), false));
        } else if line.starts_with("  </proto>") {
            if let Some((m, true)) = cur.take() {
                msgs.entry(frame).or_default().push(m);
            }
            cur = None;
        } else if let Some((m, has_app)) = cur.as_mut() {
            let v = || attr(t, "show").and_then(num);
            match attr(t, "name") {
                Some("dnp3.src") => m.src = v().unwrap_or(0) as u16,
                Some("dnp3.dst") => m.dst = v().unwrap_or(0) as u16,
                Some("dnp3.al.func") => {
                    m.func = v().unwrap_or(0) as u16;
                    *has_app = true;
                }
                Some("dnp3.al.iin") => m.iin = v().map(|x| x as u16),
                Some("dnp3.al.obj") => m.objects.extend(attr(t, "show").and_then(obj)),
                _ => {}
            }
        }
    }
    msgs
}

/// Our messages, by packet number.
fn our_messages(path: &Path) -> BTreeMap<u64, Vec<Msg>> {
    let cap = Capture::open(path).expect("capture opens");
    let mut engine = Engine::new(EngineConfig::default());
    let mut msgs: BTreeMap<u64, Vec<Msg>> = BTreeMap::new();
    let mut sink = |pdu: &Pdu<'_>| {
        let PduBody::Dnp3(d) = &pdu.body else { return };
        let Some(app) = d.app else { return };
        msgs.entry(pdu.pkt).or_default().push(Msg {
            src: d.link.src,
            dst: d.link.dst,
            func: u16::from(app.func),
            iin: app.iin,
            objects: d.objects().map(|h| norm(h.group, h.variation)).collect(),
        });
    };
    for p in cap.reader().expect("capture reads") {
        let Ok(p) = p else { break };
        engine.process(p.ts, p.index, p.linktype, p.data, &mut sink);
    }
    msgs
}

/// Excluded `(capture file name, packet)` pairs from the differences file: table rows
/// `| capture | packets | reason |`, packets as `n`, `a-b` or a comma-separated list.
fn excluded() -> BTreeSet<(String, u64)> {
    let mut set = BTreeSet::new();
    let Ok(text) = std::fs::read_to_string(DIFFERENCES) else { return set };
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(cap), Some(pkts)) = (cells.get(1), cells.get(2)) else { continue };
        let cap = cap.trim_matches('`');
        for part in pkts.split(',').map(str::trim) {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            if let (Ok(a), Ok(b)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
                for n in a..=b.min(a + 1_000_000) {
                    set.insert((cap.to_string(), n));
                }
            }
        }
    }
    set
}

fn captures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(&Path::new(SHARED).join("dnp3"), &mut v);
    let big = Path::new(SHARED).join("attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap");
    if big.exists() {
        v.push(big);
    }
    walk(&Path::new(LOCAL).join("dnp3"), &mut v);
    walk(&Path::new(LOCAL).join("crafted"), &mut v);
    v.extend(qut_captures());
    v
}

/// The QUT DNP3 2017 attacker captures (zipped, 50 MB each, mostly GOOSE and PTP), extracted
/// once into the temporary directory with `python3 -m zipfile`; skipped if that fails.
fn qut_captures() -> Vec<PathBuf> {
    let root = Path::new(SHARED).join("attacks/qut-dnp3-2017/training");
    let Ok(rd) = std::fs::read_dir(&root) else { return Vec::new() };
    let mut runs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    runs.sort();
    let mut out = Vec::new();
    for run in runs {
        let zip = run.join("attacker.pcap.zip");
        let Some(name) = run.file_name() else { continue };
        let dir = std::env::temp_dir().join("otsensor-tshark-dnp3").join(name);
        let pcap = dir.join("attacker.pcap");
        if !pcap.exists() && zip.exists() {
            let ok = Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&zip)
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("tshark_dnp3: could not extract {}, skipped", zip.display());
                continue;
            }
        }
        if pcap.exists() {
            out.push(pcap);
        }
    }
    out
}

/// The name a capture goes by in the differences file: its path under the corpus root.
fn capture_name(p: &Path) -> String {
    let tmp = std::env::temp_dir().join("otsensor-tshark-dnp3");
    if let Ok(rel) = p.strip_prefix(&tmp) {
        // <run>/attacker.pcap, extracted from attacks/qut-dnp3-2017/training/<run>/attacker.pcap.zip
        return format!("attacks/qut-dnp3-2017/training/{}.zip", rel.to_string_lossy());
    }
    for root in [SHARED, LOCAL] {
        if let Ok(rel) = p.strip_prefix(root) {
            return rel.to_string_lossy().into_owned();
        }
    }
    p.to_string_lossy().into_owned()
}

#[test]
fn dnp3_agrees_with_tshark() {
    if !tshark_available() {
        eprintln!("tshark_dnp3: tshark not found, skipped");
        return;
    }
    if !Path::new(SHARED).join("dnp3").is_dir() {
        assert!(!crate::common::in_ci(), "{SHARED}/dnp3 is missing, and CI=true");
        eprintln!("tshark_dnp3: {SHARED}/dnp3 missing, skipped");
    }
    let excluded = excluded();
    let (mut total, mut agree, mut skipped_total) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for path in captures() {
        let name = capture_name(&path);
        let theirs = tshark_messages(&path);
        let ours = our_messages(&path);
        let (mut t, mut a, mut skipped) = (0u64, 0u64, 0u64);
        for (frame, msgs) in &theirs {
            for (i, m) in msgs.iter().enumerate() {
                if excluded.contains(&(name.clone(), *frame)) {
                    skipped += 1;
                    continue;
                }
                t += 1;
                let mine = ours.get(frame).and_then(|v| v.get(i));
                if mine == Some(m) {
                    a += 1;
                } else if failures.len() < 40 || std::env::var_os("DNP3_DIFF_ALL").is_some() {
                    failures.push(format!("{name} frame {frame} #{i}: tshark {m:?}, ours {mine:?}"));
                }
            }
        }
        let extra: usize = ours.iter().map(|(f, v)| v.len().saturating_sub(theirs.get(f).map_or(0, Vec::len))).sum();
        let rate = if t == 0 { 100.0 } else { 100.0 * a as f64 / t as f64 };
        println!(
            "tshark_dnp3: {name}: {a}/{t} agree ({rate:.2} %), {skipped} excluded as tshark differences, {extra} messages only we decode"
        );
        total += t;
        agree += a;
        skipped_total += skipped;
    }
    for f in &failures {
        println!("  {f}");
    }
    let rate = if total == 0 { 1.0 } else { agree as f64 / total as f64 };
    println!("tshark_dnp3: overall {agree}/{total} agree ({:.3} %), {skipped_total} excluded", 100.0 * rate);
    assert!(total > 0 || !Path::new(SHARED).join("dnp3").is_dir(), "no DNP3 message compared");
    assert!(rate >= MIN_AGREEMENT, "agreement {:.3} % below {:.1} %", 100.0 * rate, 100.0 * MIN_AGREEMENT);
}
