//! Shared helpers: where the captures are, running otsensor in-process, running tshark, and
//! the bookkeeping of differential tests.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use otsensor::capture::{FileReader, OpenError};
use otsensor::output::json::{write_pdu, JsonBuf};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::Pdu;
use serde_json::Value;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The bundled fixtures, `pcaps/` in the workspace.
pub fn bundled_pcaps() -> PathBuf {
    workspace_root().join("pcaps")
}

/// Whether the tests run in CI (`CI=true`, as GitHub Actions and most CI systems set it),
/// where everything a test needs must be there: nothing is skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The shared corpus beside the checkout (`../shared/pcaps`), or `None` with a notice; under
/// `CI=true` a missing corpus is a failure.
pub fn shared_pcaps() -> Option<PathBuf> {
    let p = workspace_root().join("../shared/pcaps");
    if p.is_dir() {
        Some(p)
    } else {
        assert!(!in_ci(), "{} is missing, and CI=true: the tests on the shared captures need it", p.display());
        eprintln!("notice: {} is missing; tests on the shared captures are skipped", p.display());
        None
    }
}

/// `Some(())` when `what` is there; otherwise a notice, or a failure under `CI=true`.
pub fn require(ok: bool, what: &str) -> Option<()> {
    if ok {
        return Some(());
    }
    assert!(!in_ci(), "{what} is missing, and CI=true: .ci/run installs it");
    eprintln!("notice: {what} is missing; test skipped");
    None
}

/// Whether tshark can be run; prints a notice when it cannot.
pub fn tshark_available() -> bool {
    let ok = Command::new("tshark").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("notice: tshark is not installed; differential tests are skipped (apt-get install tshark)");
    }
    ok
}

/// Capture files (`.pcap`, `.pcapng`) under `dir`, recursively, sorted.
pub fn captures_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs the engine over `path` and returns every PDU as the JSON object `otsensor dissect`
/// writes, and whether the capture read to its end without error.
pub fn dissect_json(path: &Path, config: EngineConfig) -> (Vec<Value>, bool) {
    let mut engine = Engine::new(config);
    let mut buf = JsonBuf::new();
    let mut out = Vec::new();
    let mut ok = true;
    // The block reader the commands use, so that the differential tests cover it.
    match FileReader::open(path) {
        Ok(mut reader) => {
            let mut sink = |pdu: &Pdu<'_>| {
                buf.clear();
                write_pdu(&mut buf, pdu);
                out.push(serde_json::from_slice(buf.as_bytes()).expect("dissect output is valid JSON"));
            };
            while let Some(p) = reader.next_packet() {
                match p {
                    Ok(p) => engine.process(p.ts, p.index, p.linktype, p.data, &mut sink),
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
        }
        Err(OpenError::Io(e)) => panic!("{}: {e}", path.display()),
        Err(OpenError::Capture(_)) => ok = false,
    }
    (out, ok)
}

/// Our PDUs of protocol `proto`, grouped by packet number, in order within each packet.
pub fn by_packet(pdus: &[Value], proto: &str) -> BTreeMap<u64, Vec<Value>> {
    let mut m: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for p in pdus.iter().filter(|p| p["proto"] == proto) {
        m.entry(p["pkt"].as_u64().unwrap_or(0)).or_default().push(p.clone());
    }
    m
}

/// Runs tshark over `path` with display filter `filter` and returns, per frame number, the
/// JSON layers object (duplicate layers merged into arrays).
pub fn tshark_frames(path: &Path, filter: &str, layers: &str, extra: &[&str]) -> Vec<(u64, Value)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-Y", filter, "-T", "json", "--no-duplicate-keys", "-J", layers])
        .args(extra)
        .output()
        .expect("run tshark");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(Vec::new()));
    let mut frames = Vec::new();
    for f in v.as_array().into_iter().flatten() {
        let layers = &f["_source"]["layers"];
        let n = layers["frame"]["frame.number"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        frames.push((n, layers.clone()));
    }
    frames
}

/// A layer that tshark gives as one object or, repeated in a frame, as an array.
pub fn as_list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A tshark field as a number (decimal or 0x hex), if present.
pub fn num(v: &Value, field: &str) -> Option<u64> {
    let s = match &v[field] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.first()?.as_str()?.to_string(),
        _ => return None,
    };
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Disagreements judged to be tshark's errors: lines `| capture | packet | reason |` in
/// `pcaps/tshark-differences/<proto>.md`.
pub fn known_differences(proto: &str) -> HashSet<(String, u64)> {
    let path = bundled_pcaps().join("tshark-differences").join(format!("{proto}.md"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let pkt = cols.get(2)?.parse().ok()?;
            Some((cols.get(1)?.trim_matches('`').to_string(), pkt))
        })
        .collect()
}

/// Tally of a differential test.
#[derive(Default, Debug)]
pub struct Tally {
    pub compared: u64,
    pub agreed: u64,
    pub excused: u64,
    pub disagreements: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.compared += other.compared;
        self.agreed += other.agreed;
        self.excused += other.excused;
        self.disagreements.extend(other.disagreements);
    }

    pub fn rate(&self) -> f64 {
        if self.compared == 0 {
            1.0
        } else {
            (self.agreed + self.excused) as f64 / self.compared as f64
        }
    }

    /// Prints the result and fails below `min_rate`.
    pub fn check(&self, what: &str, min_rate: f64) {
        eprintln!(
            "{what}: {} of {} PDUs agree with tshark ({} excused as tshark's errors): {:.4}%",
            self.agreed,
            self.compared,
            self.excused,
            self.rate() * 100.0
        );
        for d in self.disagreements.iter().take(30) {
            eprintln!("  disagreement: {d}");
        }
        assert!(self.compared > 0, "{what}: nothing was compared");
        assert!(
            self.rate() >= min_rate,
            "{what}: agreement {:.4}% is below {:.1}%",
            self.rate() * 100.0,
            min_rate * 100.0
        );
    }
}

/// Relative name of a capture for reports and the differences files.
pub fn short_name(path: &Path) -> String {
    let s = path.to_string_lossy();
    match s.find("pcaps/") {
        Some(i) => s[i + 6..].to_string(),
        None => s.into_owned(),
    }
}
