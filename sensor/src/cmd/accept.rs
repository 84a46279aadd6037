//! `otsensor baseline accept BASELINE --alerts REVIEWED.jsonl [--id ID...]`: the subjects of
//! reviewed alerts learned into a baseline, re-sealed and saved, so that they never fire
//! again. What can be learned this way is [`otsensor_models::accept`]'s.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use otsensor_models::accept::{accept, Reviewed};
use otsensor_models::alert::Learnable;
use serde_json::Value;

use super::detect::ModelCmdError;
use crate::baseline_file;

/// Arguments of `baseline accept`.
#[derive(Clone, Debug)]
pub struct AcceptArgs {
    /// The baseline, rewritten in place.
    pub baseline: PathBuf,
    /// Reviewed alerts, JSON lines as `detect` writes them.
    pub alerts: PathBuf,
    /// Only alerts with these ids (`net.new_service`); all when empty.
    pub ids: Vec<String>,
    /// Verify the baseline loaded (`--baseline-key`), sign the one written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
}

/// Runs `baseline accept`; returns what was learned, one sentence each.
pub fn run(args: &AcceptArgs) -> Result<Vec<String>, ModelCmdError> {
    let mut b = baseline_file::load_with(&args.baseline, &args.baseline_keys).map_err(ModelCmdError::Baseline)?;
    let text = std::fs::read_to_string(&args.alerts)
        .map_err(|e| ModelCmdError::Usage(format!("{}: {e}", args.alerts.display())))?;
    let reviewed = reviewed_alerts(&args.alerts, &text, &args.ids)?;
    let learned = accept(&mut b, &reviewed);
    baseline_file::save_with(&args.baseline, &mut b, &args.baseline_keys).map_err(ModelCmdError::Baseline)?;
    Ok(learned)
}

/// The alerts of `text` that say what accepting them learns, filtered by `ids`. A line that
/// is not an alert is an error with its line number; an alert without a `learn` key (a
/// critical operation, a flood) is skipped.
fn reviewed_alerts(path: &Path, text: &str, ids: &[String]) -> Result<Vec<Reviewed>, ModelCmdError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |why: &str| ModelCmdError::Usage(format!("{}:{}: {why}", path.display(), i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| bad(&format!("not JSON: {e}")))?;
        let id = v["id"].as_str().ok_or_else(|| bad("no \"id\": not an alert line"))?;
        if !ids.is_empty() && !ids.iter().any(|x| x == id) {
            continue;
        }
        let Some(learn) = v["learn"].as_str() else { continue };
        let learn = Learnable::parse(learn).ok_or_else(|| bad(&format!("unknown \"learn\" {learn:?}")))?;
        let ip =
            |k: &str| v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok()).ok_or_else(|| bad(&format!("bad {k:?}")));
        out.push(Reviewed { id: id.to_string(), src: ip("src_ip")?, dst: ip("dst_ip")?, learn });
    }
    Ok(out)
}
