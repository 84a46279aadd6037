//! S7comm against tshark, and the S7 captures' critical operations and S7comm-plus streams.
//!
//! For every S7 capture of the shared corpus (`../shared/pcaps/{s7comm,mixed,attacks}`) and of
//! the bundled `pcaps/s7comm/`, every S7comm PDU tshark decodes is matched to ours (the JSON
//! objects `otsensor dissect` writes) by frame number, then by order within the frame, and
//! `rosctr`, `pdu_ref`, `func` (the parameter function), `userdata_group`, `subfunc`,
//! `error_class` and `error_code` must agree. Disagreements judged to be tshark's errors are
//! listed, with the reason, in `pcaps/tshark-differences/s7comm.md` and excused. The tests
//! print a notice and pass when the corpus or tshark is missing.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use otsensor::capture::Capture;
use otsensor_dissectors::engine::{Engine, EngineConfig, EngineStats};
use otsensor_dissectors::event::{CriticalOp, Pdu, PduBody};
use otsensor_dissectors::packet::Skip;
use serde_json::Value;

use crate::common::*;

/// Packets after its tshark frame within which a PDU delayed by a capture hole may be reported.
const LATE_WINDOW: u64 = 64;

/// Every S7 capture: the shared corpus's S7 directories (when present) and the bundled
/// `pcaps/s7comm` (fixtures copied from the corpus are taken once).
fn s7_captures(shared: Option<&Path>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["s7comm", "mixed", "attacks/qut-s7comm-2017"] {
        if let Some(shared) = shared {
            v.extend(captures_under(&shared.join(sub)));
        }
    }
    for p in captures_under(&bundled_pcaps().join("s7comm")) {
        if !v.iter().any(|q| q.file_name() == p.file_name()) {
            v.push(p);
        }
    }
    v
}

/// The compared fields of one S7comm PDU as tshark decodes it, `None` where tshark has no
/// such field.
fn theirs(s: &Value) -> [(&'static str, Option<u64>); 7] {
    let header = &s["s7comm.header"];
    let ud = &s["s7comm.param"];
    let rosctr = num(header, "s7comm.header.rosctr");
    [
        ("rosctr", rosctr),
        ("pdu_ref", num(header, "s7comm.header.pduref")),
        ("func", if rosctr == Some(7) { None } else { num(&s["s7comm.param"], "s7comm.param.func") }),
        ("userdata_group", num(ud, "s7comm.param.userdata.funcgroup")),
        ("subfunc", num(ud, "s7comm.param.userdata.subfunc")),
        ("error_class", num(header, "s7comm.header.errcls")),
        ("error_code", num(header, "s7comm.header.errcod")),
    ]
}

/// Whether our JSON object `m` agrees with tshark's fields: every field tshark has must be
/// ours too; the error keys must be null where tshark has none.
fn agrees(m: &Value, fields: &[(&'static str, Option<u64>)]) -> Result<(), String> {
    let mut diffs = Vec::new();
    for (k, t) in fields {
        let o = m[*k].as_u64();
        let required = matches!(*k, "rosctr" | "pdu_ref" | "error_class" | "error_code");
        if (t.is_some() || required) && *t != o {
            diffs.push(format!("{k}: tshark {t:?}, ours {o:?}"));
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

fn compare(path: &Path, known: &HashSet<(String, u64)>) -> (Tally, u64) {
    let name = short_name(path);
    let frames = tshark_frames(path, "s7comm", "frame s7comm", &[]);
    let mut t = Tally::default();
    if frames.is_empty() {
        return (t, 0);
    }
    let (ours, _) = dissect_json(path, EngineConfig::default());
    // S7comm PDUs only: COTP connection PDUs share proto "s7comm" but have no ROSCTR.
    let ours: Vec<Value> = ours.into_iter().filter(|p| p["proto"] == "s7comm" && p["rosctr"].is_u64()).collect();
    let mine = by_packet(&ours, "s7comm");
    let mut used: BTreeMap<(u64, usize), ()> = BTreeMap::new();
    let mut late = 0;
    for (n, layers) in frames {
        for (i, s) in as_list(&layers["s7comm"]).iter().enumerate() {
            t.compared += 1;
            if known.contains(&(name.clone(), n)) {
                t.excused += 1;
                continue;
            }
            let fields = theirs(s);
            // The same frame, in order; then a later one, for a PDU our reassembly could only
            // deliver after a capture hole (tshark dissects each segment alone).
            let same = mine.get(&n).into_iter().flatten().enumerate().map(|(j, m)| ((n, j), m));
            let later = mine
                .range(n + 1..=n + LATE_WINDOW)
                .flat_map(|(k, v)| v.iter().enumerate().map(move |(j, m)| ((*k, j), m)));
            let mut first_diff = None;
            let hit = same.chain(later).find(|(key, m)| {
                if used.contains_key(key) {
                    return false;
                }
                match agrees(m, &fields) {
                    Ok(()) => true,
                    Err(d) => {
                        first_diff.get_or_insert(d);
                        false
                    }
                }
            });
            match hit {
                Some((key, _)) => {
                    late += u64::from(key.0 != n);
                    used.insert(key, ());
                    t.agreed += 1;
                }
                None => t.disagreements.push(format!(
                    "{name} packet {n} PDU {i}: {}",
                    first_diff.unwrap_or_else(|| "tshark decodes a PDU we do not".to_string())
                )),
            }
        }
    }
    eprintln!("  {name}: {} of {} agree, {late} reported after a capture hole", t.agreed, t.compared);
    (t, late)
}

#[test]
fn s7comm_agrees_with_tshark_on_every_capture() {
    if !tshark_available() {
        return;
    }
    let known = known_differences("s7comm");
    let mut total = Tally::default();
    let mut late = 0;
    for path in s7_captures(shared_pcaps().as_deref()) {
        let (t, l) = compare(&path, &known);
        total.add(t);
        late += l;
    }
    eprintln!("s7comm: {late} PDUs reported after a capture hole");
    total.check("s7comm", 0.999);
}

/// Runs our engine over a capture, calling `f` for each PDU; returns the engine's counters.
fn run(path: &Path, f: &mut dyn FnMut(&Pdu<'_>)) -> EngineStats {
    let cap = Capture::open(path).expect("open capture");
    let mut engine = Engine::new(EngineConfig::default());
    let mut sink = |pdu: &Pdu<'_>| f(pdu);
    for p in cap.reader().expect("capture reader") {
        let Ok(p) = p else { break };
        engine.process(p.ts, p.index, p.linktype, p.data, &mut sink);
    }
    engine.stats().clone()
}

/// `(func_name, critical)` of every request in a capture.
fn requests(path: &Path) -> Vec<(String, Option<CriticalOp>)> {
    let mut v = Vec::new();
    run(path, &mut |pdu| {
        if pdu.is_request() {
            v.push((pdu.body.func_name().to_string(), pdu.body.critical()));
        }
    });
    v
}

#[test]
fn critical_operations_in_s7_captures_are_named() {
    let Some(shared) = shared_pcaps() else { return };
    let g = shared.join("s7comm/gymgit-s300-s400");
    let cases: &[(&str, &str, CriticalOp)] = &[
        ("step7_s300_stop.pcapng", "PLC_STOP", CriticalOp::PlcStop),
        ("snap7_s300_stop.pcapng", "PLC_STOP", CriticalOp::PlcStop),
        ("step7_s300_download.pcapng", "REQUEST_DOWNLOAD", CriticalOp::ProgramDownload),
        ("step7_s300_download.pcapng", "PI_SERVICE", CriticalOp::ProgramDownload),
        ("tia_s300_downloadOb1.pcapng", "REQUEST_DOWNLOAD", CriticalOp::ProgramDownload),
        ("tia_s300_downloadHwConfig.pcapng", "REQUEST_DOWNLOAD", CriticalOp::ProgramDownload),
        ("tia_s300_downloadHwConfig.pcapng", "PI_SERVICE", CriticalOp::BlockDelete),
        ("tia_s300_downloadHwConfig.pcapng", "PLC_STOP", CriticalOp::PlcStop),
        ("step7_s300_copyRamToRom.pcapng", "PI_SERVICE", CriticalOp::MemoryOperation),
        ("step7_s300_AuthPassword.pcapng", "SECURITY_PLC_PASSWORD", CriticalOp::ProtectionChange),
    ];
    for (file, func, op) in cases {
        let reqs = requests(&g.join(file));
        assert!(
            reqs.iter().any(|(n, c)| n == func && *c == Some(*op)),
            "{file}: no {func} request with critical {op:?} in {reqs:?}"
        );
    }
}

#[test]
fn s7_1200_stop_and_start_are_recognised_in_s7comm_plus() {
    let Some(shared) = shared_pcaps() else { return };
    let a = shared.join("s7comm/s7-1200-agentcarter");
    let stop = requests(&a.join("paket_stop.pcapng"));
    assert!(stop.iter().any(|(n, c)| n == "SET_VARIABLE" && *c == Some(CriticalOp::PlcStop)));
    let start = requests(&a.join("paket_start.pcapng"));
    assert!(start.iter().any(|(n, c)| n == "SET_VARIABLE" && *c == Some(CriticalOp::PlcStart)));
    let both = requests(&a.join("s71200_OnlineStopStart.pcapng"));
    assert!(both.iter().any(|(_, c)| *c == Some(CriticalOp::PlcStop)));
    assert!(both.iter().any(|(_, c)| *c == Some(CriticalOp::PlcStart)));
}

/// The manifest's "S7comm-plus(0x72)" count (COTP data whose first byte is 0x72) per capture.
fn manifest_plus_counts(shared: &Path) -> Vec<(PathBuf, u64)> {
    let text = std::fs::read_to_string(shared.join("MANIFEST.md")).unwrap_or_default();
    let mut v = Vec::new();
    for line in text.lines() {
        let Some(path) = line.split('|').nth(1).map(str::trim) else { continue };
        let Some(at) = line.find("S7comm-plus(0x72) ") else { continue };
        let n: String = line.get(at + 18..).unwrap_or("").chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = n.parse() {
            v.push((shared.join(path), n));
        }
    }
    v
}

#[test]
fn s7comm_plus_captures_never_lose_the_stream() {
    let Some(shared) = shared_pcaps() else { return };
    let counts = manifest_plus_counts(&shared);
    assert!(counts.len() >= 15, "manifest rows with S7comm-plus counts: {}", counts.len());
    for (path, want) in counts {
        let mut plus = 0u64;
        let st = run(&path, &mut |pdu| plus += u64::from(matches!(pdu.body, PduBody::S7Plus(_))));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        eprintln!("  {name}: {plus} S7comm-plus PDUs (manifest {want}), resync {} bytes", st.resync_bytes);
        // Every TSDU starting with 0x72 is one PDU; a lost stream would lose many. Frames the
        // packet decoder rejects (TSO frames with an IPv4 total length of 0, in
        // s71200_GoOfline_HWCompileDownload) each lose at most two TPDUs, and the resync after
        // such a gap skips at most one TPDU's worth of bytes.
        let malformed = st.skipped[EngineStats::skip_index(Skip::Malformed)];
        let lost = want.saturating_sub(plus);
        eprintln!("  {malformed} frames rejected as malformed, {} gaps", st.gaps);
        assert!(lost <= 2 * malformed && plus <= want + want / 100 + 1, "{name}: {plus} vs {want}");
        assert!(st.resync_bytes <= 64 + 1024 * st.gaps, "{name}: resync storm of {} bytes", st.resync_bytes);
    }
}
