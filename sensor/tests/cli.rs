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

/// A classic pcap (link type RAW) of IPv4/TCP packets 10.0.0.1:40000 -> 10.0.0.2:502.
fn raw_tcp_pcap(payloads: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(0xa1b2_c3d4u32.to_le_bytes()); // magic
    v.extend([2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version 2.4, zone, sigfigs
    v.extend(65535u32.to_le_bytes()); // snaplen
    v.extend(101u32.to_le_bytes()); // LINKTYPE_RAW
    let mut seq = 1000u32;
    for (i, p) in payloads.iter().enumerate() {
        let mut pkt = vec![0x45, 0]; // IPv4, IHL 5
        pkt.extend(((40 + p.len()) as u16).to_be_bytes()); // total length
        pkt.extend([0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]); // id, DF, TTL, TCP, addresses
        pkt.extend(40000u16.to_be_bytes());
        pkt.extend(502u16.to_be_bytes());
        pkt.extend(seq.to_be_bytes());
        pkt.extend([0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0]); // ack, offset 5, PSH+ACK
        pkt.extend_from_slice(p);
        seq += p.len() as u32;
        v.extend((1_600_000_000 + i as u32).to_le_bytes());
        v.extend(0u32.to_le_bytes());
        v.extend((pkt.len() as u32).to_le_bytes());
        v.extend((pkt.len() as u32).to_le_bytes());
        v.extend(pkt);
    }
    v
}

#[test]
fn traffic_on_502_that_is_not_modbus_is_reported_and_not_misparsed() {
    let http: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: plc\r\n\r\n";
    let dir = std::env::temp_dir().join(format!("otsensor-cli-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("http-on-502.pcap");
    std::fs::write(&path, raw_tcp_pcap(&[http; 10])).unwrap();
    let out = otsensor(&["dissect", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "no PDU is made up from HTTP");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("10.0.0.1:40000 -> 10.0.0.2:502: traffic on a modbus port is not modbus"), "{err}");
    assert!(err.contains("not their port's protocol: 1"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn rules_check_accepts_the_example_and_names_the_line_of_an_error() {
    let example = crate::common::workspace_root().join("rules/examples/plant.toml");
    let out = otsensor(&["rules", "check", &example.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("valid: 2 zones, 1 conduits"), "{stderr}");
    let bad = std::env::temp_dir().join(format!("otsensor-bad-policy-{}.toml", std::process::id()));
    std::fs::write(&bad, "[[zone]]\nname = \"a\"\nnetworks = [\"10.0.0.0/24\"]\nsecurity_level = 2\n\n[[conduit]]\nfrom = \"a\"\nto = \"b\"\nprotocols = [\"modbus\"]\n").expect("write");
    let out = otsensor(&["rules", "check", &bad.to_string_lossy()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a broken policy must fail");
    assert!(stderr.contains(&format!("{}:8:6: unknown zone \"b\"", bad.display())), "{stderr}");
    std::fs::remove_file(&bad).ok();
}

#[test]
fn alerts_files_are_chained_and_verify_alerts_finds_tampering() {
    let dir = std::env::temp_dir().join(format!("otsensor-chain-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let alerts = dir.join("alerts.jsonl");
    let a = alerts.to_string_lossy().into_owned();
    let cap = fixture("modbus/iti-modbus_test.pcap");
    let b = dir.join("b.json").to_string_lossy().into_owned();
    // Two runs appending to one file: the second continues the first's chain.
    for _ in 0..2 {
        let out = otsensor(&["run", "--read", &cap, "--baseline", &b, "--learn-for", "30s", "--alerts", &a, "-q"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&alerts).expect("alerts written");
    let n = text.lines().count();
    assert!(n >= 4, "two runs wrote {n} records");
    let records = lines(text.as_bytes());
    assert!(records.iter().enumerate().all(|(i, r)| r["seq"] == i as u64 + 1), "one sequence over both runs");
    let ok = otsensor(&["verify-alerts", &a]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stderr).contains(&format!("{n} records, the chain is intact")));
    // A score lowered in record 2 breaks the chain at record 3.
    let second = text.lines().nth(1).expect("record 2");
    let tampered = text.replacen(second, &second.replacen("\"score\":", "\"score\":1", 1), 1);
    std::fs::write(&alerts, tampered).expect("tamper");
    let bad = otsensor(&["verify-alerts", &a]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("line 3: does not chain to the record before it: line 2 was altered"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
