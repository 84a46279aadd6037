//! The `otsensor` binary as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::bundled_pcaps;

fn otsensor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otsensor")).args(args).output().expect("run otsensor")
}

fn fixture(rel: &str) -> String {
    bundled_pcaps().join(rel).to_string_lossy().into_owned()
}

fn lines(out: &[u8]) -> Vec<Value> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("JSON line"))
        .collect()
}

#[test]
fn dissect_writes_one_json_object_per_pdu_with_the_required_keys() {
    let out = otsensor(&["dissect", &fixture("modbus/iti-modbus_test.pcap")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pdus = lines(&out.stdout);
    assert_eq!(pdus.len(), 2258, "tshark counts 2,258 Modbus ADUs in this capture");
    let required = [
        "ts",
        "pkt",
        "proto",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "is_request",
        "func",
        "func_name",
        "flags",
        "tid",
        "unit",
        "exception_code",
        "address",
        "quantity",
        "values",
    ];
    for p in &pdus {
        for k in required {
            assert!(p.get(k).is_some(), "missing {k} in {p}");
        }
    }
    // Capture order, and responses carry their request's address.
    assert!(pdus.windows(2).all(|w| w[0]["pkt"].as_u64() <= w[1]["pkt"].as_u64()));
    let responses: Vec<_> = pdus.iter().filter(|p| p["is_request"] == false).collect();
    // Only the first response, whose request preceded the capture, lacks its address.
    let carried = responses.iter().filter(|p| p["address"].is_u64()).count();
    assert_eq!(carried + 1, responses.len(), "responses carry their request's address");
    assert!(responses.iter().filter(|p| p["func"] == 4).skip(1).all(|p| p["quantity"].is_u64()));
    assert!(pdus.iter().any(|p| p["func_name"] == "WRITE_SINGLE_REGISTER"));
    // The summary goes to stderr.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2257 packets") && err.contains("modbus 2258"), "{err}");
}

#[test]
fn dissect_output_option_writes_the_same_lines_to_a_file() {
    let dir = std::env::temp_dir().join(format!("otsensor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join("out.jsonl");
    let out =
        otsensor(&["dissect", "-q", &fixture("modbus/iti-modicon_test.pcap"), "--output", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout with --output");
    let pdus = lines(&std::fs::read(&path).unwrap());
    assert_eq!(pdus.len(), 180);
    assert!(pdus.iter().all(|p| p["func_name"] == "UMAS"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_capture_is_located_and_what_came_before_is_kept() {
    let path = fixture("broken/truncated-modbus.pcap");
    let out = otsensor(&["dissect", &path]);
    assert!(!out.status.success(), "a truncated capture is an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated-modbus.pcap"), "names the file: {err}");
    assert!(err.contains("packet 101"), "names the packet: {err}");
    assert!(err.contains("byte offset 8752"), "names the offset: {err}");
    let pdus = lines(&out.stdout);
    let whole = lines(&otsensor(&["dissect", "-q", &fixture("modbus/iti-modbus_test.pcap")]).stdout);
    let before = whole.iter().filter(|p| p["pkt"].as_u64().unwrap() <= 100).count();
    assert_eq!(pdus.len(), before, "the PDUs of the 100 whole packets are written");
    assert!(before >= 100);
    assert!(!err.contains("panicked"));
}

#[test]
fn unsupported_link_type_is_a_clear_message_not_a_crash() {
    let out = otsensor(&["dissect", &fixture("broken/ieee802_11-linktype.pcap")]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("link type 105") && err.contains("not supported"), "{err}");
}

#[test]
fn a_file_that_is_not_a_capture_is_refused() {
    let out = otsensor(&["dissect", &bundled_pcaps().join("README.md").to_string_lossy()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a pcap or pcapng file"), "{err}");
    let out = otsensor(&["dissect", "/nonexistent/x.pcap"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"));
}
