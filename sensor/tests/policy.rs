//! A policy applied to the alerts of a real capture: zones and asset names in every alert,
//! criticality in the score, a suppression, one that expired, and a maintenance window.

use std::process::Command;

use serde_json::Value;

use crate::common::shared_pcaps;

fn otsensor(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_otsensor")).args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

const POLICY: &str = r#"
[[zone]]
name = "hmi"
networks = ["192.168.10.0/28"]
security_level = 2

[[zone]]
name = "plc"
networks = ["192.168.10.48/28"]
security_level = 3

[[asset]]
name = "PLC-60"
address = "192.168.10.60"
criticality = 5
role = "plc"

[[suppression]]
rule_id = 9100102          # modbus.new_pair, for this pair, until 2030
pair = ["192.168.10.1", "192.168.10.60"]
until = 2030-01-01T00:00:00Z

[[suppression]]
rule_id = 9100001          # net.new_asset, but it expired in 2000
until = 2000-01-01T00:00:00Z

[[maintenance]]
name = "coil work"         # the capture was taken on 2011-02-11 at 11:29 UTC
from = 2011-02-11T00:00:00Z
to = 2011-02-12T12:00:00Z
assets = ["PLC-60"]
approved_by = "shift lead"
"#;

#[test]
fn detect_with_a_policy_enriches_scores_suppresses_and_marks_maintenance() {
    let Some(root) = shared_pcaps() else { return };
    let dir = std::env::temp_dir().join(format!("otsensor-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (baseline, policy) = (dir.join("b.json"), dir.join("policy.toml"));
    std::fs::write(&policy, POLICY).expect("policy written");
    let em = root.join("modbus/emreekin");
    let p = |f: &str| em.join(f).to_string_lossy().into_owned();
    let b = baseline.to_string_lossy().into_owned();
    otsensor(&["learn", &p("FC1-permit.pcap"), &p("ReadCoil.pcap"), "--baseline", &b, "--fresh", "-q"]);
    let plain = otsensor(&["detect", &p("crash.pcap"), "--baseline", &b, "-q"]);
    let with = otsensor(&["detect", &p("crash.pcap"), "--baseline", &b, "-q", "--policy", &policy.to_string_lossy()]);
    let find = |alerts: &[Value], id: &str| alerts.iter().find(|a| a["id"] == id).cloned();
    assert!(find(&plain, "modbus.new_pair").is_some(), "the baseline alone raises a new pair");
    assert!(find(&with, "modbus.new_pair").is_none(), "suppressed until 2030: {with:?}");
    let asset = find(&with, "net.new_asset").expect("an expired suppression no longer applies");
    assert_eq!((asset["src_zone"].as_str(), asset["dst_zone"].as_str()), (Some("hmi"), Some("plc")));
    assert_eq!(asset["dst_asset"], "PLC-60");
    let before = find(&plain, "modbus.write_on_read_only_pair").expect("the write");
    let after = find(&with, "modbus.write_on_read_only_pair").expect("the write, with the policy");
    assert!(after["score"].as_u64() > before["score"].as_u64(), "criticality 5 raises the score: {before} {after}");
    assert_eq!(after["maintenance"], "coil work", "{after}");
    let rank = |s: &Value| ["low", "medium", "high", "critical"].iter().position(|x| s == *x);
    let sev_unmarked =
        rank(&Value::from(otsensor_models::Severity::from_score(after["score"].as_u64().unwrap_or(0) as u8).name()));
    assert_eq!(rank(&after["severity"]).map(|r| r + 1), sev_unmarked, "lowered one level in the window: {after}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inventory_names_vendors_zones_and_the_flows_no_conduit_allows() {
    let dir = std::env::temp_dir().join(format!("otsensor-inventory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[[zone]]
name = "hmi"
networks = ["192.168.0.128/25"]
security_level = 2

[[zone]]
name = "control"
networks = ["192.168.0.16/28"]
security_level = 3

[[conduit]]
from = "hmi"
to = "control"
protocols = ["modbus"]
classes = ["read"]

[[asset]]
name = "PLC-20"
address = "192.168.0.20"
criticality = 4
"#,
    )
    .expect("policy written");
    let capture = crate::common::bundled_pcaps().join("modbus/iti-modbus_test.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["inventory", "--json", "--policy"])
        .arg(&policy)
        .arg(&capture)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inv: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let asset = |ip: &str| inv["assets"].as_array().and_then(|a| a.iter().find(|x| x["ip"] == ip)).cloned().expect(ip);
    let plc = asset("192.168.0.20");
    assert_eq!((plc["zone"].as_str(), plc["name"].as_str()), (Some("control"), Some("PLC-20")));
    assert_eq!(plc["vendor"], "Moxa Technologies Corp., Ltd.", "00:90:e8 is Moxa's prefix");
    let pair = |client: &str| {
        inv["pairs"].as_array().and_then(|a| a.iter().find(|x| x["client"] == client)).cloned().expect(client)
    };
    assert_eq!(pair("192.168.0.133")["conduit"]["verdict"], "allowed", "a read over the read-only conduit");
    let write = pair("192.168.0.156")["conduit"].clone();
    assert_eq!(write["verdict"], "not_allowed");
    assert!(write["why"].as_str().unwrap_or("").contains("does not allow write operations"), "{write}");
    let outside = pair("192.168.0.112")["conduit"].clone();
    assert!(outside["why"].as_str().unwrap_or("").contains("192.168.0.112 is in no zone"), "{outside}");
    assert_eq!(inv["findings"]["not_in_a_zone"], serde_json::json!(["192.168.0.112"]));
    let table = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["inventory", "--policy"])
        .arg(&policy)
        .arg(&capture)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("NOT ALLOWED: the conduit from zone hmi to zone control does not allow write"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_worked_example_raises_a_guardrail_and_a_conduit_violation_as_critical_and_marks_maintenance() {
    // rules/examples/iti-modbus.toml on the ITI capture (docs/POLICY.md shows this output).
    let root = crate::common::workspace_root();
    let capture = root.join("pcaps/modbus/iti-modbus_test.pcap");
    let policy = root.join("rules/examples/iti-modbus.toml");
    let alerts = otsensor(&[
        "replay",
        &capture.to_string_lossy(),
        "--learn-for",
        "60s",
        "--policy",
        &policy.to_string_lossy(),
        "-q",
    ]);
    let find = |id: &str, src: &str| alerts.iter().find(|a| a["id"] == id && a["src_ip"] == src).cloned();
    let guard = find("policy.guardrail_violation", "192.168.0.156").expect("the 2500 written to unit 7 register 4");
    assert_eq!(guard["severity"], "critical", "{guard}");
    assert!(guard["summary"].as_str().unwrap_or("").contains("wrote 2500"), "{guard}");
    assert_eq!(guard["rule_id"], 9_100_541);
    let written = find("policy.conduit_violation", "192.168.0.156").expect("writes over the read-only conduit");
    assert_eq!(written["severity"], "critical", "{written}");
    assert_eq!((written["src_zone"].as_str(), written["dst_zone"].as_str()), (Some("hmi"), Some("control")));
    let office = find("policy.conduit_violation", "192.168.0.112").expect("the office PC has no conduit");
    // 72 for the rule and the gateway's criticality, +20% for crossing from SL 1 to SL 3.
    assert_eq!((office["score"].as_u64(), office["severity"].as_str()), (Some(86), Some("critical")), "{office}");
    let marked: Vec<&Value> = alerts.iter().filter(|a| a["maintenance"] == "gateway commissioning").collect();
    assert!(!marked.is_empty(), "the operator station's alerts fall in the window");
    assert!(marked.iter().all(|a| a["src_ip"] == "192.168.0.21" || a["dst_ip"] == "192.168.0.21"));
    assert!(marked.iter().all(|a| a["severity"] == "low"), "lowered one level: {marked:?}");
}

#[test]
fn sighup_reloads_the_policy_and_a_broken_file_keeps_the_old_one() {
    let dir = std::env::temp_dir().join(format!("otsensor-sighup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.toml");
    let zone =
        |name: &str| format!("[[zone]]\nname = \"{name}\"\nnetworks = [\"192.168.0.0/24\"]\nsecurity_level = 2\n");
    std::fs::write(&policy, zone("plant")).expect("policy");
    let capture = crate::common::bundled_pcaps().join("modbus/iti-modbus_test.pcap");
    let child = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["run", "--pace", "--read"])
        .arg(&capture)
        .arg("--baseline")
        .arg(dir.join("b.json"))
        .arg("--policy")
        .arg(&policy)
        .args(["--learn-for", "1h", "--checkpoint", "0.2s", "--workers", "1", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        // The shell's built-in kill: no procps needed.
        let ok = Command::new("sh").args(["-c", &format!("kill {sig} {pid}")]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
        std::thread::sleep(std::time::Duration::from_millis(700));
    };
    // Its first checkpoint says it runs (and handles SIGHUP: the handlers come first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !dir.join("b.json").is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::write(&policy, zone("plant") + &zone("office").replace("192.168.0.0/24", "10.0.0.0/8"))
        .expect("rewritten");
    signal("-HUP");
    std::fs::write(&policy, "[[zone]]\nname = 1\n").expect("broken");
    signal("-HUP");
    signal("-TERM");
    let out = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("policy reloaded: 2 zones"), "{stderr}");
    assert!(
        stderr.contains("policy not reloaded, the previous one stays") && stderr.contains("policy.toml:2:"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_allow_rule_keeps_the_baseline_from_judging_what_it_allows() {
    let Some(root) = shared_pcaps() else { return };
    let dir = std::env::temp_dir().join(format!("otsensor-allow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (baseline, policy) = (dir.join("b.json"), dir.join("allow.toml"));
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"coil work\"\naction = \"allow\"\nclass = \"write\"\nsrc = \"192.168.10.1\"\n",
    )
    .expect("policy");
    let em = root.join("modbus/emreekin");
    let p = |f: &str| em.join(f).to_string_lossy().into_owned();
    let b = baseline.to_string_lossy().into_owned();
    otsensor(&["learn", &p("FC1-permit.pcap"), &p("ReadCoil.pcap"), "--baseline", &b, "--fresh", "-q"]);
    let plain = otsensor(&["detect", &p("crash.pcap"), "--baseline", &b, "-q"]);
    let allowed =
        otsensor(&["detect", &p("crash.pcap"), "--baseline", &b, "-q", "--policy", &policy.to_string_lossy()]);
    let has = |alerts: &[Value], id: &str| alerts.iter().any(|a| a["id"] == id);
    assert!(has(&plain, "modbus.write_on_read_only_pair"), "the baseline alone judges the write");
    assert!(!has(&allowed, "modbus.write_on_read_only_pair"), "allowed: {allowed:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inventory_reads_the_s7_module_identity_from_szl_responses() {
    // tshark on this capture: SZL 0x0011 record 1 "6ES7 151-8AB01-0AB0"; SZL 0x001C (over
    // two fragments) records 1, 2, 5: "IM151-8-CPU", "IM151-8 PN/DP CPU", "S C-C6TW74882012".
    let capture = crate::common::bundled_pcaps().join("s7comm/s7comm_reading_plc_status.pcap");
    let out = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["inventory", "--json"])
        .arg(&capture)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inv: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let plc =
        inv["assets"].as_array().and_then(|a| a.iter().find(|x| x["ip"] == "192.168.1.40")).cloned().expect("the PLC");
    let id = &plc["identity"];
    assert_eq!(id["order_number"], "6ES7 151-8AB01-0AB0", "{plc}");
    assert_eq!(id["system_name"], "IM151-8-CPU");
    assert_eq!(id["module_name"], "IM151-8 PN/DP CPU");
    assert_eq!(id["serial_number"], "S C-C6TW74882012");
    assert_eq!(plc["vendor"], "Siemens AG,", "00:1b:1b");
}

#[test]
fn a_suppression_limited_to_a_point_silences_that_point_only() {
    let dir = std::env::temp_dir().join(format!("otsensor-point-sup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[suppression]]\nrule_id = 9100107\npoint = { protocol = \"modbus\", unit = 1, space = \"input_registers\", address = 1 }\n",
    )
    .expect("policy");
    let capture = crate::common::bundled_pcaps().join("modbus/iti-modbus_test.pcap");
    let run = |extra: &[&str]| {
        let mut args = vec!["replay", capture.to_str().unwrap_or_default(), "--learn-for", "60s", "-q"];
        args.extend_from_slice(extra);
        otsensor(&args)
    };
    let about = |alerts: &[Value], what: &str| {
        alerts
            .iter()
            .filter(|a| {
                a["id"] == "modbus.value_outside_envelope" && a["summary"].as_str().unwrap_or("").contains(what)
            })
            .count()
    };
    let plain = run(&[]);
    let suppressed = run(&["--policy", &policy.to_string_lossy()]);
    assert!(about(&plain, "unit 1 input_registers 1 ") > 0, "the baseline alerts on that point");
    assert_eq!(about(&suppressed, "unit 1 input_registers 1 "), 0, "suppressed");
    assert!(about(&suppressed, "unit 2 input_registers 7 ") > 0, "another point still alerts");
    std::fs::remove_dir_all(&dir).ok();
}
