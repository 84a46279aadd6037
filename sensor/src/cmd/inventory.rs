//! `otsensor inventory`: the assets and conversations of captures, against a baseline and a
//! policy, as a table or JSON.

use std::path::PathBuf;

use otsensor_dissectors::engine::{Engine, EngineConfig};

use super::detect::ModelCmdError;
use super::learn::LearnSink;
use crate::baseline_file;
use crate::inventory::{build, table, Inventory};
use crate::run::{run_captures, Progress};

/// Options of `otsensor inventory`.
#[derive(Debug)]
pub struct InventoryArgs {
    /// Captures, processed in order.
    pub captures: Vec<PathBuf>,
    /// Keys: verify baselines loaded (`--baseline-key`), sign those written (`--sign-key`).
    pub baseline_keys: crate::baseline_file::BaselineKeys,
    /// A baseline to compare with (assets it does not know are pointed out).
    pub baseline: Option<PathBuf>,
    /// A policy: zones, asset names and conduits.
    pub policy: Option<PathBuf>,
    /// JSON instead of a table.
    pub json: bool,
    /// Engine configuration (ports).
    pub engine: EngineConfig,
    /// Whether to show a progress bar.
    pub progress: bool,
}

/// Builds the inventory of the captures.
pub fn gather(args: &InventoryArgs) -> Result<Inventory, ModelCmdError> {
    let baseline = args
        .baseline
        .as_deref()
        .map(|p| baseline_file::load_with(p, &args.baseline_keys))
        .transpose()
        .map_err(ModelCmdError::Baseline)?;
    let policy = super::rules::load_policy_opt(&args.policy).map_err(ModelCmdError::Usage)?;
    let mut learner = crate::memory::capped_learner();
    let mut engine = Engine::new(args.engine.clone());
    let mut progress = Progress::new(args.progress);
    let mut sink = LearnSink { learner: &mut learner, exclude: &[] };
    run_captures(&args.captures, &mut engine, &mut sink, &mut progress).map_err(ModelCmdError::Run)?;
    Ok(build(&learner.finish(), baseline.as_ref(), policy.as_ref()))
}

/// Runs `inventory`: the table or the JSON on stdout.
pub fn inventory(args: &InventoryArgs) -> Result<(), ModelCmdError> {
    let inv = gather(args)?;
    let text = if args.json {
        serde_json::to_string_pretty(&inv).map_err(|e| ModelCmdError::Usage(e.to_string()))? + "\n"
    } else {
        table(&inv)
    };
    use std::io::Write;
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(ModelCmdError::Output)
}
