//! `otsensor rules check`: a policy file validated, and the loading every command shares.

use std::collections::HashSet;
use std::path::Path;

use otsensor_models::rules_catalog::catalog;
use otsensor_rules::{Known, Policy};

/// Reads and validates the policy at `path`; the error names the file, line and column.
pub fn load_policy(path: &Path) -> Result<Policy, String> {
    // A policy silences and re-weighs alerts: one others could rewrite is refused.
    crate::file_perms::refuse_if_exposed(path, "policy file", crate::file_perms::Exposure::Config)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let ids: HashSet<u32> = catalog().into_iter().map(|r| r.rule_id).collect();
    let known = Known { rule_id: &|id| ids.contains(&id) };
    otsensor_rules::load(&path.display().to_string(), &text, &known).map_err(|e| e.to_string())
}

/// [`load_policy`] of an optional path.
pub fn load_policy_opt(path: &Option<std::path::PathBuf>) -> Result<Option<Policy>, String> {
    path.as_deref().map(load_policy).transpose()
}

/// One line saying what a valid policy holds.
pub fn describe(p: &Policy) -> String {
    format!(
        "{} zones, {} conduits, {} assets, {} guardrails, {} rules, {} suppressions, {} maintenance windows",
        p.zones.len(),
        p.conduits.len(),
        p.assets.len(),
        p.guardrails.len(),
        p.rules.len(),
        p.suppressions.len(),
        p.maintenance.len()
    )
}
