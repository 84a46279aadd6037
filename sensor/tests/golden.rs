//! Golden alerts: every detection test's scenario and every command of docs/DETECTIONS.md
//! on the shared corpus, with its alerts written as `otsensor detect` writes them, compared
//! byte for byte with `tests/golden/<scenario>.jsonl`.
//!
//! Recorded before the restructuring of `models/` (issue #10), kept so that refactoring the
//! models cannot change an alert unnoticed. A change that is meant to change alerts
//! re-records them with `OTSENSOR_BLESS=1 cargo test -p otsensor --test tests golden` and
//! says why in its commit. Without the corpus the test is skipped with a notice; under
//! `CI=true` that is a failure.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use otsensor::cmd::replay::{replay_to, ReplayArgs};
use otsensor::output::alerts::write_alert;
use otsensor::output::json::JsonBuf;
use otsensor_dissectors::engine::EngineConfig;
use otsensor_models::model::PairKey;
use otsensor_models::{Alert, Baseline};

use crate::detect::{cap, corpus, detect, learn, qut_dnp3_in, remove_extracted};

/// Alerts as JSON lines, exactly as `detect` writes them.
fn lines(alerts: &[Alert]) -> String {
    let mut buf = JsonBuf::new();
    for a in alerts {
        write_alert(&mut buf, a);
    }
    String::from_utf8(buf.as_bytes().to_vec()).expect("alerts are UTF-8")
}

fn caps(rels: &[&str]) -> Vec<PathBuf> {
    rels.iter().map(|r| cap(r).unwrap_or_else(|| panic!("{r} is missing from the corpus"))).collect()
}

/// `learn LEARN [--exclude-client X] && detect SCORE`.
fn learn_detect(learn_on: &[&str], exclude: Option<IpAddr>, score: &[&str]) -> String {
    let b = learn(&caps(learn_on), |pdu| exclude.map_or(true, |x| PairKey::of(pdu).client != x));
    lines(&detect(&b, &caps(score)))
}

fn detect_with(b: &Baseline, score: &[&str]) -> String {
    lines(&detect(b, &caps(score)))
}

/// `replay X --learn-for D`.
fn replay(rel: &str, learn_for_secs: f64) -> String {
    let args = ReplayArgs {
        alerts_key: None,
        baseline_keys: Default::default(),
        capture: caps(&[rel]).remove(0),
        learn_for_secs,
        alerts: None,
        save_baseline: None,
        engine: EngineConfig::default(),
        policy: None,
        progress: false,
        summary: false,
    };
    let mut out: Vec<u8> = Vec::new();
    replay_to(&args, &mut out).expect("replay");
    String::from_utf8(out).expect("alerts are UTF-8")
}

/// Every scenario: its name (the golden file's) and its alerts.
fn scenarios() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, text: String| v.push((name.to_string(), text));
    // Clean captures scored against their own baselines.
    for (name, rel) in [
        ("self_modbus_test_2", "modbus/iti-modbus_test_2.pcap"),
        ("self_plant1", "modbus/iti-plant1-modbustcp.pcap"),
        ("self_modbus_test", "modbus/iti-modbus_test.pcap"),
        ("self_modicon_test", "modbus/iti-modicon_test.pcap"),
        ("self_emreekin_analog", "modbus/emreekin/modbusAnalog.pcap"),
        ("self_mixed_lab", "mixed/agentcarter-s71200-lab-2.pcapng"),
        ("self_s7comm_clean", "s7comm/iti-s7comm_clean.pcap"),
        ("self_wincc_s400", "s7comm/gymgit-s300-s400/wincc_s400_production.pcapng"),
        ("self_s7_1200_stable", "s7comm/s7-1200-agentcarter/stabil_haberlesme.pcapng"),
        ("self_dnp3_malformed", "dnp3/openics/DNP3-Malformed.pcap"),
        ("self_dnp3_dataset_2017", "attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap"),
    ] {
        add(name, learn_detect(&[rel], None, &[rel]));
    }
    // Replays of clean captures, and of the attacks.
    for (name, rel, secs) in [
        ("replay_modbus_test_2_5m", "modbus/iti-modbus_test_2.pcap", 300.0),
        ("replay_plant1_40s", "modbus/iti-plant1-modbustcp.pcap", 40.0),
        ("replay_modbus_test_60s", "modbus/iti-modbus_test.pcap", 60.0),
        ("replay_s7comm_clean_5m", "s7comm/iti-s7comm_clean.pcap", 300.0),
        ("replay_wincc_s400_30m", "s7comm/gymgit-s300-s400/wincc_s400_production.pcapng", 1800.0),
        ("replay_dnp3_dataset_2017_1h", "attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap", 3600.0),
        ("replay_lemay_60s", "attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap", 60.0),
    ] {
        add(name, replay(rel, secs));
    }
    // Attacks against a learned baseline.
    let lemay = "attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap";
    add("lemay_recon", learn_detect(&[lemay], Some([192, 168, 1, 101].into()), &[lemay]));
    let emre = |f: &str| format!("modbus/emreekin/{f}");
    add(
        "emreekin_crash",
        learn_detect(&[&emre("FC1-permit.pcap"), &emre("ReadCoil.pcap")], None, &[&emre("crash.pcap")]),
    );
    add("emreekin_force_coils", learn_detect(&[&emre("ReadCoil.pcap")], None, &[&emre("WriteMultipleCoil.pcap")]));
    add("modicon_umas", learn_detect(&["modbus/iti-modbus_test.pcap"], None, &["modbus/iti-modicon_test.pcap"]));
    let fw = |f: &str| format!("dnp3/iti-fw-suite/{f}.pcap");
    let same_master = [fw("assign_class"), fw("immediate_freeze"), fw("serial_time_sync")];
    let same_master: Vec<&str> = same_master.iter().map(String::as_str).collect();
    for f in ["auth_change_session_keys", "auth_control_challenge_response"] {
        add(&format!("dnp3_{f}"), learn_detect(&same_master, None, &[&fw(f)]));
    }
    add("dnp3_malformed", learn_detect(&["dnp3/openics/DNP3-Read.pcap"], None, &["dnp3/openics/DNP3-Malformed.pcap"]));
    // Critical operations: with no baseline (the tests) and against the docs' baselines.
    let empty = learn(&[], |_| true);
    let read = learn(&caps(&["dnp3/openics/DNP3-Read.pcap"]), |_| true);
    for f in [
        "cold_restart_and_response",
        "warm_restart_and_response",
        "disable_unsolcited_and_response",
        "file_write",
        "file_delete",
        "file_read",
        "file_list_directory",
        "directoperate_and_response",
    ] {
        add(&format!("dnp3_{f}_empty"), detect_with(&empty, &[&fw(f)]));
        add(&format!("dnp3_{f}"), detect_with(&read, &[&fw(f)]));
    }
    let gym = |f: &str| format!("s7comm/gymgit-s300-s400/{f}.pcapng");
    let wincc = learn(&caps(&[&gym("wincc_s400_production")]), |_| true);
    for f in [
        "step7_s300_stop",
        "snap7_s300_stop",
        "step7_s300_download",
        "tia_s300_downloadOb1",
        "step7_s300_AuthPassword",
        "step7_s300_copyRamToRom",
        "tia_s300_downloadHwConfig",
    ] {
        add(&format!("s7_{f}_empty"), detect_with(&empty, &[&gym(f)]));
        add(&format!("s7_{f}"), detect_with(&wincc, &[&gym(f)]));
    }
    let ac = |f: &str| format!("s7comm/s7-1200-agentcarter/{f}.pcapng");
    let stable = learn(&caps(&[&ac("stabil_haberlesme")]), |_| true);
    for f in ["s71200_OnlineStopStart", "s71200_GoOfline_HWCompileDownload", "paket_stop", "paket_start"] {
        add(&format!("s7plus_{f}_empty"), detect_with(&empty, &[&ac(f)]));
        add(&format!("s7plus_{f}"), detect_with(&stable, &[&ac(f)]));
    }
    // QUT S7comm: the HMI's traffic learned, the attacker's scored.
    let qut = "attacks/qut-s7comm-2017";
    let flood = format!(
        "{qut}/20161215191717.ChangeUpperThreshold_Flooding/20161215191717.ChangeUpperThreshold_Flooding.master.pcap"
    );
    let attacker: IpAddr = [10, 10, 10, 66].into();
    let hmi = learn(&caps(&[&flood]), |pdu| PairKey::of(pdu).client != attacker);
    add("qut_s7_flooding", detect_with(&hmi, &[&flood]));
    for slice in [
        "20161215172609.ConveyorBeltOff",
        "20161215173329.WaterTankOff",
        "20161215174308.ReactorOff",
        "20161215174700.ConveyorBeltGateChangeDirection",
        "20161215175616.WaterTankOnManu",
    ] {
        let name = slice.split_once('.').map_or(slice, |(_, n)| n);
        add(&format!("qut_s7_{name}"), detect_with(&hmi, &[&format!("{qut}/{slice}/{slice}.master.pcap")]));
    }
    // QUT DNP3, attacker side, with no baseline: as the docs say (`learn --fresh crash.pcap`,
    // a Modbus capture, so no DNP3 pair or host is known) and as the test does (empty).
    let docs_empty = learn(&caps(&[&emre("crash.pcap")]), |_| true);
    for run in
        ["injection-frequent", "masquerading-infrequent", "replay-frequent", "mitm-frequent", "flooding-infrequent"]
    {
        let p = qut_dnp3_in("golden", run).unwrap_or_else(|| panic!("{run}: attacker.pcap.zip could not be extracted"));
        let text = lines(&detect(&docs_empty, std::slice::from_ref(&p)));
        let text_empty = lines(&detect(&empty, std::slice::from_ref(&p)));
        remove_extracted(&p);
        add(&format!("qut_dnp3_{run}"), text);
        add(&format!("qut_dnp3_{run}_empty"), text_empty);
    }
    v
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[test]
fn alerts_of_every_detection_scenario_are_byte_identical_to_the_golden_files() {
    if corpus().is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but ../shared/pcaps is missing");
        return;
    }
    let bless = std::env::var_os("OTSENSOR_BLESS").is_some();
    let dir = golden_dir();
    let mut differ = Vec::new();
    let mut total = 0usize;
    for (name, text) in scenarios() {
        total += text.lines().count();
        let path = dir.join(format!("{name}.jsonl"));
        if bless {
            std::fs::create_dir_all(&dir).expect("golden dir");
            std::fs::write(&path, &text).expect("write golden file");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if want != text {
            let first = want.lines().zip(text.lines()).position(|(a, b)| a != b);
            differ.push(format!(
                "{name}: {} golden lines, {} now; first difference at line {:?}\n  golden: {:?}\n  now:    {:?}",
                want.lines().count(),
                text.lines().count(),
                first,
                first.and_then(|i| want.lines().nth(i)),
                first.and_then(|i| text.lines().nth(i)),
            ));
        }
    }
    eprintln!("golden: {total} alerts compared");
    assert!(differ.is_empty(), "alerts changed:\n{}", differ.join("\n"));
}
