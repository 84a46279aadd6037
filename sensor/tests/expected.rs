//! Expected output of `otsensor dissect` on every bundled capture: `pcaps/<dir>/<capture>` has
//! `<capture>.expected.jsonl` beside it, exactly what `otsensor dissect <capture>` writes (one
//! line per PDU, keys in the schema's fixed order), and the output must match it byte for
//! byte (model: ICSNPP's btest baselines). Timestamps are kept, unlike ICSNPP's: the captures
//! are fixed, and the digits of a timestamp are part of the schema.
//!
//! After an intended change of the output, regenerate the files and review the diff:
//!
//! ```text
//! OTSENSOR_BLESS=1 cargo test -p otsensor --test tests expected
//! git diff pcaps/
//! ```

use std::path::{Path, PathBuf};

use otsensor::cmd::dissect::{dissect_to, DissectArgs, Format};
use otsensor_dissectors::engine::EngineConfig;
use serde_json::Value;

use crate::common::*;

/// The expected-output file of `capture`.
fn expected_path(capture: &Path) -> PathBuf {
    let mut name = capture.file_name().unwrap_or_default().to_os_string();
    name.push(".expected.jsonl");
    capture.with_file_name(name)
}

/// `otsensor dissect` on `capture` with the default ports, one line per PDU.
fn dissect_lines(capture: &Path) -> Vec<String> {
    let args = DissectArgs {
        captures: vec![capture.to_path_buf()],
        output: None,
        engine: EngineConfig::default(),
        progress: false,
        summary: false,
        format: Format::Json,
    };
    let mut out = Vec::new();
    // A broken capture fails after writing what came before the damage: that is compared.
    let _ = dissect_to(&args, &mut out);
    String::from_utf8(out)
        .expect("dissect writes UTF-8")
        .lines()
        .map(|l| {
            let _: Value = serde_json::from_str(l).expect("dissect writes JSON lines");
            l.to_string()
        })
        .collect()
}

#[test]
fn expected_output_of_every_bundled_capture() {
    let bless = std::env::var_os("OTSENSOR_BLESS").is_some();
    let captures = captures_under(&bundled_pcaps());
    assert!(captures.len() >= 10, "the bundled captures are missing: {captures:?}");
    let mut failures = Vec::new();
    for capture in &captures {
        let got = dissect_lines(capture);
        let path = expected_path(capture);
        if bless {
            let mut text = got.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write expected output");
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!("{}: no {} (see this file's header to create it)", short_name(capture), path.display()));
            continue;
        };
        let want: Vec<&str> = text.lines().collect();
        if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i).map(String::as_str) != want.get(i).copied()) {
            failures.push(format!(
                "{}: {} PDUs, {} expected; first difference at line {}:\n  got:      {}\n  expected: {}",
                short_name(capture),
                got.len(),
                want.len(),
                i + 1,
                got.get(i).map_or("(nothing)", String::as_str),
                want.get(i).copied().unwrap_or("(nothing)"),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "dissect output differs from the expected files; if the change is intended, run \
         OTSENSOR_BLESS=1 cargo test -p otsensor --test tests expected and review git diff pcaps/\n{}",
        failures.join("\n")
    );
}
