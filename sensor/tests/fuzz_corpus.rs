//! The stable harness of the sensor's fuzz targets: every committed seed and regression input
//! (`sensor/fuzz/seeds/<target>/`, `sensor/fuzz/regressions/<target>/`), the local corpus when
//! there is one (`sensor/fuzz/corpus/<target>/`, not committed) and, for `capture`, every
//! bundled capture, through the same functions the cargo-fuzz targets call
//! (`otsensor::fuzz_support`). No input may panic; the seeds must do what they are for.

use std::path::{Path, PathBuf};

use otsensor::fuzz_support;

use crate::common::{bundled_pcaps, captures_under, workspace_root};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    v.sort();
    v
}

/// The inputs of `target`: seeds, regressions and the local corpus.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = workspace_root().join("sensor/fuzz");
    ["seeds", "regressions", "corpus"].iter().flat_map(|d| files_in(&fuzz.join(d).join(target))).collect()
}

/// Runs `f` over every input of `target`, naming the input that panics.
fn run_all<T>(target: &str, extra: Vec<PathBuf>, f: impl Fn(&[u8]) -> T) -> Vec<(PathBuf, T)> {
    let mut all = inputs(target);
    all.extend(extra);
    assert!(!all.is_empty(), "{target}: no seeds in sensor/fuzz/seeds/{target}");
    all.into_iter()
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&data)))
                .unwrap_or_else(|_| panic!("fuzz target {target} panics on {}", p.display()));
            (p, out)
        })
        .collect()
}

fn named<'a, T>(results: &'a [(PathBuf, T)], name: &str) -> &'a T {
    &results.iter().find(|(p, _)| p.ends_with(name)).unwrap_or_else(|| panic!("seed {name} missing")).1
}

#[test]
fn the_capture_target_runs_its_corpus_and_every_bundled_capture() {
    let results = run_all("capture", captures_under(&bundled_pcaps()), fuzz_support::capture);
    let modbus = named(&results, "modbus/iti-modbus_test.pcap");
    assert!(*modbus > 1000, "the Modbus capture gives its PDUs: {modbus}");
}

#[test]
fn the_reassembly_target_runs_its_corpus() {
    let results = run_all("reassembly", Vec::new(), fuzz_support::reassembly);
    assert!(*named(&results, "modbus-handshake-split-retransmit") >= 3, "request, response, split request");
    assert!(*named(&results, "s7-eight-clients-evicted") >= 1, "S7 connect requests through a full flow table");
}

#[test]
fn the_baseline_target_runs_its_corpus() {
    let results = run_all("baseline", Vec::new(), fuzz_support::baseline);
    assert!(*named(&results, "modicon.json"), "a learned baseline loads");
}

#[test]
fn the_alerts_file_target_runs_its_corpus() {
    let results = run_all("alerts_file", Vec::new(), fuzz_support::alerts_file);
    assert!(*named(&results, "signed-every-3.jsonl"), "the signed seed verifies with the seed key");
    assert!(!*named(&results, "cut.jsonl"), "a cut file does not");
}
