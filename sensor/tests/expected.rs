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
            failures.push(format!(
                "{}: no {} (see this file's header to create it)",
                short_name(capture),
                path.display()
            ));
            continue;
        };
        let want: Vec<&str> = text.lines().collect();
        if let Some(i) =
            (0..got.len().max(want.len())).find(|&i| got.get(i).map(String::as_str) != want.get(i).copied())
        {
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

/// What each crafted capture (`pcaps/crafted/make.py`) was made to show, asserted by name so
/// that a regeneration of the expected files cannot quietly lose it.
#[test]
fn crafted_captures_show_what_they_were_made_for() {
    let crafted = bundled_pcaps().join("crafted");
    let flags = |v: &Value| -> Vec<String> {
        v["flags"].as_array().into_iter().flatten().filter_map(|f| f.as_str().map(str::to_string)).collect()
    };
    let flagged = |pdus: &[Value], flag: &str| pdus.iter().filter(|p| flags(p).iter().any(|f| f == flag)).count();

    // 1. Function codes 0 and 99 (and their exceptions) are PDUs, named and flagged.
    let (fuzz, _) = dissect_json(&crafted.join("modbus-fuzz-unknown-functions.pcap"), EngineConfig::default());
    assert_eq!(fuzz.len(), 13);
    let unknown: Vec<_> = fuzz.iter().filter(|p| flags(p).contains(&"unknown_function".to_string())).collect();
    let names: Vec<_> = unknown.iter().map(|p| p["func_name"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, ["unknown-0", "unknown-0", "unknown-99", "unknown-99", "unknown-0"]);
    // 5. Unknown exception codes and sub-functions are unknown-<n>; a repeated object id has
    // a key of its own.
    assert!(fuzz.iter().any(|p| p["exception_name"] == "unknown-42"));
    assert!(fuzz.iter().any(|p| p["sub_function_name"] == "unknown-99"));
    let dev = fuzz.iter().find(|p| p["device_id"].is_object()).expect("device identification");
    assert_eq!(
        (dev["device_id"]["VendorName"].as_str(), dev["device_id"]["VendorName_2"].as_str()),
        (Some("Acme"), Some("Evil"))
    );

    // 2. A connection opened from port 502: requests still go to 502, responses match them.
    let (rev, _) = dissect_json(&crafted.join("modbus-reversed-connection.pcap"), EngineConfig::default());
    assert_eq!(rev.len(), 6);
    assert_eq!(flagged(&rev, "reversed_orientation"), 6);
    assert!(rev.iter().all(|p| (p["dst_port"] == 502) == (p["is_request"] == true)));
    assert!(rev.iter().filter(|p| p["is_request"] == false).all(|p| p["address"] == 0 && p.get("matched").is_none()));

    // 3. Wild sequence numbers: 31 of 36 ADUs, 26 through the per-segment fallback.
    let (wild, _) = dissect_json(&crafted.join("modbus-wild-sequence-numbers.pcap"), EngineConfig::default());
    assert_eq!((wild.len(), flagged(&wild, "per_segment")), (31, 26));

    // 2 and 4. DNP3 from an outstation that opened the connection, and cold restarts hidden
    // behind link functions that carry no user data; 5. floats as floats.
    let (dnp3, _) = dissect_json(&crafted.join("dnp3-reversed-and-hidden-user-data.pcap"), EngineConfig::default());
    assert_eq!(flagged(&dnp3, "reversed_orientation"), dnp3.len());
    let restarts: Vec<_> = dnp3.iter().filter(|p| p["func_name"] == "COLD_RESTART").collect();
    assert_eq!(restarts.len(), 2);
    assert!(restarts.iter().all(|p| p["is_request"] == true && flags(p).contains(&"unexpected_user_data".to_string())));
    let values: Vec<_> =
        dnp3.iter().filter_map(|p| p["values"].as_array()).flatten().map(|v| v["value"].clone()).collect();
    assert_eq!(values, [serde_json::json!(1.1), serde_json::json!(-1.5)]);
}
