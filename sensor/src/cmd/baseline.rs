//! `otsensor baseline diff | promote | rollback | log`: a baseline directory keeps every
//! promoted baseline as a numbered version, so that a model change can always be explained
//! (who, when, why, and `diff`) and undone (`rollback`).
//!
//! The directory (`--dir`) holds `v0001.json`, `v0002.json`, ... (each with its `.sig` when
//! signed), never changed once written; `current.json`, a copy of the version in force, for
//! the sensor's `--baseline`; and `history.jsonl`, one line per promotion or rollback. Every
//! file is written atomically and synced before the history line that names it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::baseline_file::{self, sig_path, write_atomic, BaselineKeys};

/// `--dir DIR`: the baseline directory.
#[derive(Args, Debug, Clone)]
pub struct StoreFlags {
    /// The baseline directory (versions, current.json, history.jsonl).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/otsensor/baselines")]
    pub dir: PathBuf,
}

/// `--by WHO --why TEXT`: who made a change and why.
#[derive(Args, Debug, Clone)]
pub struct Provenance {
    /// Who makes the change (default: $SUDO_USER, else $USER).
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
    /// Why: the review, ticket or incident behind the change.
    #[arg(long, value_name = "TEXT")]
    pub why: String,
}

/// One line of `history.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Entry {
    /// `promote` or `rollback`.
    pub action: String,
    /// The version in force after this change.
    pub version: u32,
    /// The version in force before it (0 for none).
    pub from: u32,
    /// Who made it.
    pub by: String,
    /// When, UTC.
    pub at: String,
    /// Why.
    pub why: String,
    /// The file promoted (promotions only).
    pub source: Option<String>,
    /// The checksum of the baseline now in force.
    pub checksum: String,
}

/// `baseline diff A B` (both verified, with their signatures when a key is given).
pub fn diff(a: &Path, b: &Path, keys: &BaselineKeys) -> Result<String, String> {
    let load = |p: &Path| baseline_file::load_with(p, keys).map_err(|e| format!("baseline {e}"));
    Ok(crate::baseline_diff::diff(&load(a)?, &load(b)?))
}

fn version_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("v{n:04}.json"))
}

/// `current.json` in the directory: what the sensor's `--baseline` names.
pub fn current_path(dir: &Path) -> PathBuf {
    dir.join("current.json")
}

/// The history, oldest first.
pub fn history(dir: &Path) -> Result<Vec<Entry>, String> {
    let p = dir.join("history.jsonl");
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    text.lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}: line {}: {e}", p.display(), i + 1)))
        .collect()
}

/// Copies a baseline and its signature (if any) to `dest`, signature first, each atomically.
fn install(src: &Path, dest: &Path) -> Result<(), String> {
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    match read(&sig_path(src)) {
        Ok(sig) => write_atomic(&sig_path(dest), &sig).map_err(|e| format!("{}: {e}", dest.display()))?,
        Err(_) => {
            let _ = fs::remove_file(sig_path(dest));
        }
    }
    write_atomic(dest, &read(src)?).map_err(|e| format!("{}: {e}", dest.display()))
}

fn append(dir: &Path, entry: &Entry) -> Result<(), String> {
    let p = dir.join("history.jsonl");
    let line = serde_json::to_string(entry).map_err(|e| e.to_string())? + "\n";
    let result = (|| {
        let mut f = OpenOptions::new().create(true).append(true).open(&p)?;
        f.write_all(line.as_bytes())?;
        f.sync_all()
    })();
    result.map_err(|e| format!("{}: {e}", p.display()))
}

fn who(p: &Provenance) -> String {
    p.by.clone()
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn now_utc() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let ts = otsensor_dissectors::event::Timestamp { secs: d.as_secs() as i64, nanos: d.subsec_nanos() };
    format!("{}Z", crate::report::page::utc(ts))
}

/// Makes version `n` current and records why.
fn make_current(dir: &Path, n: u32, entry: Entry) -> Result<String, String> {
    install(&version_path(dir, n), &current_path(dir))?;
    append(dir, &entry)?;
    Ok(format!(
        "{}: version {n} is current ({} by {}: {})",
        current_path(dir).display(),
        entry.action,
        entry.by,
        entry.why
    ))
}

/// `baseline promote FILE`: FILE becomes the next version and the current baseline. With a
/// public key, FILE must be signed by it; with a private key, the version is (re)signed.
pub fn promote(file: &Path, store: &StoreFlags, why: &Provenance, keys: &BaselineKeys) -> Result<String, String> {
    let b = baseline_file::load_with(file, keys).map_err(|e| format!("baseline {e}"))?;
    fs::create_dir_all(&store.dir).map_err(|e| format!("{}: {e}", store.dir.display()))?;
    let past = history(&store.dir)?;
    let from = past.last().map_or(0, |e| e.version);
    let n = past.iter().map(|e| e.version).max().unwrap_or(0) + 1;
    let dest = version_path(&store.dir, n);
    if dest.exists() {
        return Err(format!("{}: exists but is in no history line: refusing to overwrite it", dest.display()));
    }
    install(file, &dest)?;
    let mut checksum = b.checksum;
    if keys.sign.is_some() {
        baseline_file::seal(&dest, keys).map_err(|e| format!("baseline {e}"))?;
        checksum = baseline_file::load(&dest).map_err(|e| format!("baseline {e}"))?.checksum;
    }
    let entry = Entry {
        action: "promote".into(),
        version: n,
        from,
        by: who(why),
        at: now_utc(),
        why: why.why.clone(),
        source: Some(file.display().to_string()),
        checksum,
    };
    make_current(&store.dir, n, entry)
}

/// `baseline rollback [N]`: version N (default: the one in force before the current one)
/// becomes current again, verified first.
pub fn rollback(n: Option<u32>, store: &StoreFlags, why: &Provenance, keys: &BaselineKeys) -> Result<String, String> {
    let past = history(&store.dir)?;
    let Some(last) = past.last() else {
        return Err(format!("{}: no version has been promoted", store.dir.display()));
    };
    let target = match n {
        Some(n) => n,
        None if last.from == 0 => return Err(format!("version {} is the first: nothing to go back to", last.version)),
        None => last.from,
    };
    if target == last.version {
        return Err(format!("version {target} is already current"));
    }
    let path = version_path(&store.dir, target);
    if !path.exists() {
        return Err(format!("{}: no version {target}", path.display()));
    }
    let b = baseline_file::load_with(&path, keys).map_err(|e| format!("baseline {e}"))?;
    let entry = Entry {
        action: "rollback".into(),
        version: target,
        from: last.version,
        by: who(why),
        at: now_utc(),
        why: why.why.clone(),
        source: None,
        checksum: b.checksum,
    };
    make_current(&store.dir, target, entry)
}

/// `baseline log`: one line per change, oldest first.
pub fn log(store: &StoreFlags) -> Result<String, String> {
    let mut out = String::new();
    for e in history(&store.dir)? {
        out.push_str(&format!("{}  {:<8} v{} (from v{})  by {}: {}\n", e.at, e.action, e.version, e.from, e.by, e.why));
    }
    Ok(out)
}
