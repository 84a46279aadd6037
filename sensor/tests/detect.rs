//! Baselines and detection on the real captures of `../shared/pcaps` (MANIFEST.md says which
//! hold attacks and which are clean): every attack or critical operation the dissectors can
//! see is detected with the right rule id, and clean captures scored against their own
//! baselines raise nothing of medium severity or above.
//!
//! Every capture a test names must be there and must give PDUs of its protocol: a dissector
//! that regresses to zero PDUs fails these tests. Only a missing corpus is skipped, with a
//! notice, and only outside CI: under `CI=true` it is a failure too.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use otsensor::cmd::replay::{replay_to, ReplayArgs};
use otsensor::run::{run_captures, Progress};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Notice, Pdu, Protocol, Sink};
use otsensor_models::model::PairKey;
use otsensor_models::{Alert, Baseline, Detector, Learner, Severity};
use serde_json::Value;

pub(crate) fn corpus() -> Option<PathBuf> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps"));
    if p.is_dir() {
        return Some(p.to_path_buf());
    }
    assert!(!crate::common::in_ci(), "{} is missing, and CI=true: the detection tests need it", p.display());
    eprintln!("notice: {} is missing; detection tests on real captures are skipped", p.display());
    None
}

/// A capture of the corpus; `None` only when the whole corpus is missing outside CI. A
/// capture missing from a corpus that is there is a failure.
pub(crate) fn cap(rel: &str) -> Option<PathBuf> {
    let p = corpus()?.join(rel);
    assert!(p.is_file(), "{} is missing from the corpus", p.display());
    Some(p)
}

struct Learn<'a, F: Fn(&Pdu<'_>) -> bool> {
    learner: &'a mut Learner,
    keep: F,
}

impl<F: Fn(&Pdu<'_>) -> bool> Sink for Learn<'_, F> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        if (self.keep)(pdu) {
            self.learner.pdu(pdu);
        }
    }
    fn notice(&mut self, n: &Notice) {
        self.learner.notice(n);
    }
}

/// Learns from `paths`, keeping the PDUs `keep` accepts; the baseline goes through JSON and
/// its checksum, as a file would.
pub(crate) fn learn(paths: &[PathBuf], keep: impl Fn(&Pdu<'_>) -> bool) -> Baseline {
    let mut learner = Learner::new();
    let mut engine = Engine::new(EngineConfig::default());
    run_captures(paths, &mut engine, &mut Learn { learner: &mut learner, keep }, &mut Progress::new(false))
        .expect("captures read");
    let mut b = learner.finish();
    Baseline::from_json(&b.to_json()).expect("baseline verifies")
}

struct Detect(Detector);

impl Sink for Detect {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self.0.pdu(pdu);
    }
    fn notice(&mut self, n: &Notice) {
        self.0.notice(n);
    }
}

pub(crate) fn detect(b: &Baseline, paths: &[PathBuf]) -> Vec<Alert> {
    let mut sink = Detect(Detector::new(b).expect("detector"));
    let mut engine = Engine::new(EngineConfig::default());
    run_captures(paths, &mut engine, &mut sink, &mut Progress::new(false)).expect("captures read");
    let mut out = Vec::new();
    sink.0.finish(&mut out);
    out
}

/// PDUs of `protocol` the current dissectors find in `path`.
fn pdus_of(path: &Path, protocol: Protocol) -> u64 {
    let mut engine = Engine::new(EngineConfig::default());
    let mut n = 0u64;
    let mut sink = |p: &Pdu<'_>| {
        if p.body.protocol() == protocol {
            n += 1;
        }
    };
    let _ = run_captures(&[path.to_path_buf()], &mut engine, &mut sink, &mut Progress::new(false));
    n
}

/// Fails unless the dissector for `protocol` finds PDUs in `path`: all three dissectors
/// exist, so a capture that gives none is a regression, never a reason to skip.
fn require_pdus(path: &Path, protocol: Protocol) {
    assert!(pdus_of(path, protocol) > 0, "no {protocol} PDU in {}: the dissector regressed", path.display());
}

fn loud(alerts: &[Alert]) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.severity >= Severity::Medium).collect()
}

fn has(alerts: &[Alert], id: &str) -> bool {
    alerts.iter().any(|a| a.id == id)
}

fn ids(alerts: &[Alert]) -> Vec<String> {
    let mut v: Vec<String> = alerts.iter().map(|a| format!("{} {}", a.id, a.severity.name())).collect();
    v.sort();
    v.dedup();
    v
}

fn self_scored_is_quiet(rel: &str, protocol: Protocol) {
    let Some(p) = cap(rel) else { return };
    require_pdus(&p, protocol);
    let paths = [p];
    let b = learn(&paths, |_| true);
    let alerts = detect(&b, &paths);
    assert!(loud(&alerts).is_empty(), "{rel}: {:#?}", loud(&alerts));
}

#[test]
fn clean_modbus_captures_scored_against_their_own_baselines_are_quiet() {
    for rel in ["modbus/iti-modbus_test_2.pcap", "modbus/iti-plant1-modbustcp.pcap", "modbus/iti-modbus_test.pcap"] {
        self_scored_is_quiet(rel, Protocol::Modbus);
    }
}

#[test]
fn clean_s7_captures_scored_against_their_own_baselines_are_quiet() {
    for rel in ["s7comm/iti-s7comm_clean.pcap", "s7comm/gymgit-s300-s400/wincc_s400_production.pcapng"] {
        self_scored_is_quiet(rel, Protocol::S7comm);
    }
}

#[test]
fn s7comm_plus_steady_state_scored_against_its_own_baseline_is_quiet() {
    self_scored_is_quiet("s7comm/s7-1200-agentcarter/stabil_haberlesme.pcapng", Protocol::S7commPlus);
}

#[test]
fn dnp3_capture_scored_against_itself_raises_only_its_critical_operations() {
    let Some(p) = cap("attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap") else { return };
    require_pdus(&p, Protocol::Dnp3);
    let paths = [p];
    let b = learn(&paths, |_| true);
    let alerts = detect(&b, &paths);
    for a in loud(&alerts) {
        assert!(matches!(a.id.as_str(), "dnp3.cold_restart" | "dnp3.disable_unsolicited"), "{a:#?}");
    }
    assert!(has(&alerts, "dnp3.cold_restart") && has(&alerts, "dnp3.disable_unsolicited"), "{:?}", ids(&alerts));
}

#[test]
fn mixed_lab_scored_against_its_own_baseline_is_quiet() {
    self_scored_is_quiet("mixed/agentcarter-s71200-lab-2.pcapng", Protocol::Modbus);
}

#[test]
fn lemay_recon_host_is_a_new_pair_and_an_address_scan() {
    let Some(p) = cap("attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap") else { return };
    // Learn the MTU's polling only: the compromised RTU .101 never acts as a client in it.
    let recon: IpAddr = [192, 168, 1, 101].into();
    let paths = [p];
    let b = learn(&paths, |pdu| PairKey::of(pdu).client != recon);
    let alerts = detect(&b, &paths);
    let from_recon: Vec<&Alert> = alerts.iter().filter(|a| a.src.ip == recon).collect();
    assert!(from_recon.iter().any(|a| a.id == "modbus.new_pair"), "{:?}", ids(&alerts));
    let scan = from_recon.iter().find(|a| a.id == "modbus.scan").unwrap_or_else(|| panic!("{:?}", ids(&alerts)));
    assert!(scan.severity >= Severity::High, "{scan:#?}");
    assert_eq!(scan.mitre, Some("T0846"));
    // Nothing loud about the legitimate master.
    let master: IpAddr = [192, 168, 1, 100].into();
    assert!(loud(&alerts).iter().all(|a| a.src.ip != master), "{:#?}", loud(&alerts));
}

#[test]
fn emreekin_crash_write_single_coil_is_a_write_from_an_unknown_pair() {
    let Some(crash) = cap("modbus/emreekin/crash.pcap") else { return };
    let Some(a) = cap("modbus/emreekin/FC1-permit.pcap") else { return };
    let Some(b2) = cap("modbus/emreekin/ReadCoil.pcap") else { return };
    let b = learn(&[a, b2], |_| true);
    let alerts = detect(&b, &[crash]);
    let w = alerts
        .iter()
        .find(|x| x.id == "modbus.write_on_read_only_pair")
        .unwrap_or_else(|| panic!("{:?}", ids(&alerts)));
    assert!(w.severity >= Severity::High);
    assert!(w.summary.contains("WRITE_SINGLE_COIL"), "{}", w.summary);
    assert!(has(&alerts, "net.new_asset") && has(&alerts, "modbus.new_pair"), "{:?}", ids(&alerts));
}

#[test]
fn emreekin_force_coils_on_a_reading_pair_is_a_new_function_and_a_first_write() {
    let Some(w) = cap("modbus/emreekin/WriteMultipleCoil.pcap") else { return };
    let Some(r) = cap("modbus/emreekin/ReadCoil.pcap") else { return };
    let b = learn(&[r], |_| true);
    let alerts = detect(&b, &[w]);
    assert!(
        alerts.iter().any(|a| a.id == "modbus.new_function_code" && a.summary.contains("WRITE_MULTIPLE_COILS")),
        "{:?}",
        ids(&alerts)
    );
    assert!(has(&alerts, "modbus.write_on_read_only_pair"), "{:?}", ids(&alerts));
}

#[test]
fn modicon_umas_after_plain_polling_is_a_new_function_code_from_a_new_station() {
    let Some(m) = cap("modbus/iti-modicon_test.pcap") else { return };
    let Some(t) = cap("modbus/iti-modbus_test.pcap") else { return };
    let b = learn(&[t], |_| true);
    let alerts = detect(&b, &[m]);
    assert!(has(&alerts, "modbus.new_pair") && has(&alerts, "net.new_asset"), "{:?}", ids(&alerts));
}

fn replay(rel: &str, learn_for_secs: f64) -> Option<Vec<Value>> {
    let p = cap(rel)?;
    let args = ReplayArgs {
        alerts_key: None,
        baseline_keys: Default::default(),
        capture: p,
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
    out.flush().ok();
    Some(
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each alert line is JSON"))
            .collect(),
    )
}

#[test]
fn dnp3_capture_replayed_after_an_hour_shows_cold_restarts_and_disable_unsolicited() {
    let rel = "attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap";
    let Some(p) = cap(rel) else { return };
    require_pdus(&p, Protocol::Dnp3);
    let alerts = replay(rel, 3600.0).unwrap_or_default();
    assert_eq!(Some(&alerts), replay(rel, 3600.0).as_ref(), "replay is deterministic");
    let count =
        |id: &str| -> u64 { alerts.iter().filter(|a| a["id"] == id).map(|a| a["count"].as_u64().unwrap_or(0)).sum() };
    assert_eq!(count("dnp3.cold_restart"), 11, "{alerts:#?}");
    assert_eq!(count("dnp3.disable_unsolicited"), 11, "{alerts:#?}");
    for a in alerts.iter().filter(|a| a["id"] == "dnp3.cold_restart") {
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["mitre"], "T0816");
    }
}

fn critical_in(rel: &str, protocol: Protocol, id: &str) {
    let Some(p) = cap(rel) else { return };
    require_pdus(&p, protocol);
    // No baseline at all: critical operations are alerted whatever it says.
    let b = learn(&[], |_| true);
    let alerts = detect(&b, &[p]);
    let a = alerts.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("{rel}: {:?}", ids(&alerts)));
    assert_eq!(a.severity, Severity::Critical, "{a:#?}");
}

#[test]
fn dnp3_function_suite_critical_operations_are_alerted() {
    critical_in("dnp3/iti-fw-suite/cold_restart_and_response.pcap", Protocol::Dnp3, "dnp3.cold_restart");
    critical_in("dnp3/iti-fw-suite/warm_restart_and_response.pcap", Protocol::Dnp3, "dnp3.warm_restart");
    critical_in("dnp3/iti-fw-suite/disable_unsolcited_and_response.pcap", Protocol::Dnp3, "dnp3.disable_unsolicited");
    critical_in("dnp3/iti-fw-suite/file_write.pcap", Protocol::Dnp3, "dnp3.file_operation");
    critical_in("dnp3/iti-fw-suite/file_delete.pcap", Protocol::Dnp3, "dnp3.file_operation");
    critical_in("dnp3/iti-fw-suite/file_read.pcap", Protocol::Dnp3, "dnp3.file_operation");
    critical_in("dnp3/iti-fw-suite/file_list_directory.pcap", Protocol::Dnp3, "dnp3.file_operation");
}

#[test]
fn dnp3_authentication_and_malformed_frames_against_a_baseline() {
    let dir = "dnp3/iti-fw-suite";
    let (Some(a), Some(f), Some(t), Some(auth), Some(read), Some(bad)) = (
        cap(&format!("{dir}/assign_class.pcap")),
        cap(&format!("{dir}/immediate_freeze.pcap")),
        cap(&format!("{dir}/serial_time_sync.pcap")),
        cap(&format!("{dir}/auth_change_session_keys.pcap")),
        cap("dnp3/openics/DNP3-Read.pcap"),
        cap("dnp3/openics/DNP3-Malformed.pcap"),
    ) else {
        return;
    };
    require_pdus(&auth, Protocol::Dnp3);
    // The same master and outstation, seen assigning classes, freezing and syncing time.
    let b = learn(&[a, f, t], |_| true);
    let alerts = detect(&b, &[auth]);
    assert!(
        alerts.iter().any(|x| x.id == "dnp3.new_function_code" && x.summary.contains("AUTHENTICATE_REQ")),
        "{:?}",
        ids(&alerts)
    );
    // 197 malformed operates: violations the baseline never showed.
    let b = learn(&[read], |_| true);
    let alerts = detect(&b, &[bad]);
    assert!(
        alerts.iter().any(|x| x.id == "dnp3.protocol_violation" && x.severity >= Severity::Medium),
        "{:?}",
        ids(&alerts)
    );
}

#[test]
fn s7_plc_stop_and_download_are_critical() {
    critical_in("s7comm/gymgit-s300-s400/step7_s300_stop.pcapng", Protocol::S7comm, "s7comm.plc_stop");
    critical_in("s7comm/gymgit-s300-s400/snap7_s300_stop.pcapng", Protocol::S7comm, "s7comm.plc_stop");
    critical_in("s7comm/gymgit-s300-s400/step7_s300_download.pcapng", Protocol::S7comm, "s7comm.program_download");
    critical_in("s7comm/gymgit-s300-s400/tia_s300_downloadOb1.pcapng", Protocol::S7comm, "s7comm.program_download");
    critical_in("s7comm/gymgit-s300-s400/step7_s300_AuthPassword.pcapng", Protocol::S7comm, "s7comm.protection_change");
    critical_in("s7comm/gymgit-s300-s400/step7_s300_copyRamToRom.pcapng", Protocol::S7comm, "s7comm.memory_operation");
    for id in ["s7comm.plc_stop", "s7comm.block_delete", "s7comm.program_download", "s7comm.plc_start"] {
        critical_in("s7comm/gymgit-s300-s400/tia_s300_downloadHwConfig.pcapng", Protocol::S7comm, id);
    }
}

#[test]
fn s7_1200_stop_and_start_over_s7comm_plus_are_critical() {
    let dir = "s7comm/s7-1200-agentcarter";
    for id in ["s7comm_plus.plc_stop", "s7comm_plus.plc_start"] {
        critical_in(&format!("{dir}/s71200_OnlineStopStart.pcapng"), Protocol::S7commPlus, id);
        critical_in(&format!("{dir}/s71200_GoOfline_HWCompileDownload.pcapng"), Protocol::S7commPlus, id);
    }
    critical_in(&format!("{dir}/paket_stop.pcapng"), Protocol::S7commPlus, "s7comm_plus.plc_stop");
    critical_in(&format!("{dir}/paket_start.pcapng"), Protocol::S7commPlus, "s7comm_plus.plc_start");
}

#[test]
fn qut_s7_injected_writes_come_from_a_new_talker() {
    let dir = "attacks/qut-s7comm-2017";
    let Some(flood) = cap(&format!(
        "{dir}/20161215191717.ChangeUpperThreshold_Flooding/20161215191717.ChangeUpperThreshold_Flooding.master.pcap"
    )) else {
        return;
    };
    require_pdus(&flood, Protocol::S7comm);
    let attacker: IpAddr = [10, 10, 10, 66].into();
    // The HMI's traffic to the PLC is the baseline; the attacker's is what is scored.
    let b = learn(std::slice::from_ref(&flood), |pdu| PairKey::of(pdu).client != attacker);
    let alerts = detect(&b, std::slice::from_ref(&flood));
    let by_attacker: Vec<&Alert> = alerts.iter().filter(|a| a.src.ip == attacker || a.dst.ip == attacker).collect();
    for id in ["net.new_asset", "s7comm.new_pair", "s7comm.flood"] {
        assert!(by_attacker.iter().any(|a| a.id == id), "{id}: {:?}", ids(&alerts));
    }
    for slice in [
        "20161215172609.ConveyorBeltOff",
        "20161215173329.WaterTankOff",
        "20161215174308.ReactorOff",
        "20161215174700.ConveyorBeltGateChangeDirection",
        "20161215175616.WaterTankOnManu",
    ] {
        let Some(p) = cap(&format!("{dir}/{slice}/{slice}.master.pcap")) else { continue };
        let alerts = detect(&b, &[p]);
        assert!(has(&alerts, "net.new_asset") && has(&alerts, "s7comm.new_pair"), "{slice}: {:?}", ids(&alerts));
        assert!(
            alerts.iter().any(|a| a.src.ip == attacker && a.severity >= Severity::Medium),
            "{slice}: {:?}",
            ids(&alerts)
        );
    }
}

#[test]
fn alerts_are_byte_identical_across_runs() {
    let rel = "attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap";
    let (Some(a), Some(b)) = (replay(rel, 60.0), replay(rel, 60.0)) else { return };
    assert_eq!(a, b);
    assert!(!a.is_empty());
    for k in [
        "id",
        "rule_id",
        "rev",
        "name",
        "severity",
        "score",
        "ts",
        "pkt_first",
        "pkt_last",
        "summary",
        "evidence",
        "count",
    ] {
        assert!(a[0].get(k).is_some(), "alert lacks {k}: {}", a[0]);
    }
}

#[test]
fn learn_then_detect_through_the_commands_writes_a_sealed_baseline_and_json_alerts() {
    use otsensor::cmd::detect::{detect as detect_cmd, DetectArgs};
    use otsensor::cmd::learn::{learn as learn_cmd, LearnArgs};
    let (Some(learn_on), Some(score)) =
        (cap("modbus/emreekin/ReadCoil.pcap"), cap("modbus/emreekin/WriteMultipleCoil.pcap"))
    else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("otsensor-detect-cmd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let baseline = dir.join("plant.json");
    let alerts = dir.join("alerts.jsonl");
    let largs = |fresh| LearnArgs {
        baseline_keys: Default::default(),
        captures: vec![learn_on.clone()],
        baseline: baseline.clone(),
        fresh,
        exclude_clients: Vec::new(),
        engine: EngineConfig::default(),
        progress: false,
        summary: false,
    };
    learn_cmd(&largs(true)).expect("learn");
    let first = std::fs::read_to_string(&baseline).expect("baseline written");
    // Learning again continues from the file: one more run, same pairs.
    learn_cmd(&largs(false)).expect("learn again");
    let b = Baseline::from_json(&std::fs::read_to_string(&baseline).expect("read")).expect("verifies");
    assert_eq!(b.learning.runs, 2);
    assert_eq!(Baseline::from_json(&first).expect("first verifies").pairs.len(), b.pairs.len());
    let dargs = DetectArgs {
        alerts_key: None,
        baseline_keys: Default::default(),
        captures: vec![score],
        baseline: baseline.clone(),
        alerts: Some(alerts.clone()),
        engine: EngineConfig::default(),
        policy: None,
        progress: false,
        summary: false,
    };
    detect_cmd(&dargs).expect("detect");
    let text = std::fs::read_to_string(&alerts).expect("alerts written");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert!(lines.iter().any(|a| a["id"] == "modbus.new_function_code" && a["rule_id"] == 9_100_103), "{text}");
    // A hand-edited baseline is refused with a clear message.
    let edited = std::fs::read_to_string(&baseline).expect("read").replacen("\"runs\": 2", "\"runs\": 3", 1);
    std::fs::write(&baseline, edited).expect("write");
    let err = detect_cmd(&dargs).expect_err("refused").to_string();
    assert!(err.contains("checksum mismatch") && err.contains("otsensor baseline seal"), "{err}");
    otsensor::baseline_file::seal(&baseline, &Default::default()).expect("seal");
    detect_cmd(&dargs).expect("detect after seal");
    std::fs::remove_dir_all(&dir).ok();
}

/// `attacks/qut-dnp3-2017/training/<run>/attacker.pcap.zip`, extracted into the temporary
/// directory (with `python3 -m zipfile`); `None` with a notice when that cannot be done.
fn qut_dnp3(run: &str) -> Option<PathBuf> {
    qut_dnp3_in("detect", run)
}

/// [`qut_dnp3`] into a directory of its own per `user` (tests run in parallel in one process).
pub(crate) fn qut_dnp3_in(user: &str, run: &str) -> Option<PathBuf> {
    let zip = corpus()?.join(format!("attacks/qut-dnp3-2017/training/{run}/attacker.pcap.zip"));
    let dir = std::env::temp_dir().join(format!("otsensor-{user}-qut-{run}-{}", std::process::id()));
    let pcap = dir.join("attacker.pcap");
    if !pcap.is_file() {
        std::fs::create_dir_all(&dir).ok()?;
        let ok = std::process::Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&zip)
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        // The corpus is there, so failing to read it is a failure, not a skip.
        assert!(ok && pcap.is_file(), "could not extract {} (python3 -m zipfile)", zip.display());
    }
    Some(pcap)
}

#[test]
fn qut_dnp3_injected_restarts_and_floods_are_alerted_with_no_baseline() {
    // DNP3 is visible in these attacker-side captures only while the attacker is in path or
    // injecting, so there is no clean stretch to learn from: critical operations, floods and
    // new talkers are what must show with an empty baseline.
    let empty = learn(&[], |_| true);
    let recon: IpAddr = [192, 168, 10, 66].into();
    if let Some(p) = qut_dnp3("injection-frequent") {
        let alerts = detect_extracted(&empty, &p);
        for id in ["dnp3.cold_restart", "dnp3.warm_restart"] {
            let a = alerts.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("{id}: {:?}", ids(&alerts)));
            assert_eq!(a.severity, Severity::Critical);
        }
        assert!(alerts.iter().any(|a| a.id == "dnp3.new_pair" && a.src.ip == recon), "{:?}", ids(&alerts));
    }
    for (run, id) in [
        ("masquerading-infrequent", "dnp3.scan"),
        ("replay-frequent", "net.port_protocol_mismatch"),
        ("mitm-frequent", "net.tcp_retransmission_conflict"),
    ] {
        let Some(p) = qut_dnp3(run) else { continue };
        let alerts = detect_extracted(&empty, &p);
        assert!(alerts.iter().any(|a| a.id == id && a.severity >= Severity::Medium), "{run}: {:?}", ids(&alerts));
    }
    if let Some(p) = qut_dnp3("flooding-infrequent") {
        let alerts = detect_extracted(&empty, &p);
        assert!(alerts.iter().any(|a| a.id == "dnp3.flood" && a.severity >= Severity::High), "{:?}", ids(&alerts));
    }
}

/// Detects on an extracted capture, which must give DNP3 PDUs, then removes it.
fn detect_extracted(b: &Baseline, p: &Path) -> Vec<Alert> {
    let pdus = pdus_of(p, Protocol::Dnp3);
    let alerts = if pdus > 0 { detect(b, &[p.to_path_buf()]) } else { Vec::new() };
    remove_extracted(p);
    assert!(pdus > 0, "no DNP3 PDU in {}: the dissector regressed", p.display());
    alerts
}

/// Removes the directory a capture was extracted into.
pub(crate) fn remove_extracted(p: &Path) {
    if let Some(d) = p.parent() {
        std::fs::remove_dir_all(d).ok();
    }
}
