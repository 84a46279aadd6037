//! `otsensor baseline accept`: a reviewed alert's subject learned into the baseline never
//! fires again, on a real capture through the command line.

use std::process::Command;

use serde_json::Value;

use crate::common::shared_pcaps;

fn otsensor(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_otsensor")).args(args).output().expect("otsensor runs");
    assert!(out.status.success(), "otsensor {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn ids(jsonl: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(jsonl)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON")["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn an_accepted_file_transfer_is_learned_and_never_fires_again() {
    let Some(shared) = shared_pcaps() else { return };
    let capture = shared.join("attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap");
    let dir = std::env::temp_dir().join(format!("otsensor-accept-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (baseline, alerts) = (dir.join("b.json"), dir.join("a.jsonl"));
    let cap = capture.to_str().expect("path");
    let (b, a) = (baseline.to_str().expect("path"), alerts.to_str().expect("path"));
    // Sixty seconds of learning miss the RTU's first SMB session to the MTU.
    otsensor(&["replay", cap, "--learn-for", "60s", "--save-baseline", b, "--alerts", a, "-q", "--no-progress"]);
    let before = std::fs::read(&alerts).expect("alerts");
    assert!(ids(&before).iter().any(|i| i == "net.file_transfer"), "{:?}", ids(&before));
    let line = String::from_utf8_lossy(&before)
        .lines()
        .find(|l| l.contains("net.file_transfer"))
        .map(str::to_string)
        .expect("the alert line");
    assert!(line.contains(r#""learn":"service:tcp/139""#), "{line}");

    let out = otsensor(&["baseline", "accept", b, "--alerts", a, "--id", "net.file_transfer"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("192.168.1.104 may use tcp/139 (smb) on 192.168.1.100"), "{said}");
    let text = std::fs::read_to_string(&baseline).expect("baseline");
    otsensor_models::Baseline::from_json(&text).expect("re-sealed");

    let after = otsensor(&["detect", cap, "--baseline", b, "-q", "--no-progress"]).stdout;
    assert!(!ids(&after).iter().any(|i| i == "net.file_transfer"), "{:?}", ids(&after));
    // Only what was asked was accepted: the RTU's other novelties still alert.
    assert!(!ids(&after).is_empty());
    // A line that is not an alert is refused with its line number.
    std::fs::write(&alerts, "{\"id\":\"net.new_service\"}\nnot json\n").expect("write");
    let bad = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["baseline", "accept", b, "--alerts", a])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("a.jsonl:2: not JSON"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
