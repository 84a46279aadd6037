//! `otsensor run --read` against `otsensor detect`: for every capture of the shared corpus,
//! the pipeline with 1, 2 and 4 workers writes exactly the alerts `detect` writes with the
//! same baseline (same ids, subjects, counts, packet numbers: the same lines).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{captures_under, shared_pcaps};

fn otsensor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otsensor"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("otsensor runs");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 alerts")
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

/// Learns `learn_on` into a baseline in `dir`, then compares `detect` with `run --read` on
/// `score` for 1, 2 and 4 workers. Returns the number of alerts compared.
fn compare(dir: &Path, tag: &str, learn_on: &[PathBuf], score: &[PathBuf]) -> usize {
    let baseline = dir.join(format!("{tag}.json"));
    run_ok(otsensor().arg("learn").args(learn_on).arg("--baseline").arg(&baseline).args(["--fresh", "-q"]));
    let expected = run_ok(otsensor().arg("detect").args(score).arg("--baseline").arg(&baseline).arg("-q"));
    for workers in ["1", "2", "4"] {
        // `run` may checkpoint its baseline: each run gets its own copy.
        let copy = dir.join(format!("{tag}-{workers}.json"));
        std::fs::copy(&baseline, &copy).expect("copy baseline");
        let got = run_ok(otsensor().arg("run").arg("--read").args(score).arg("--baseline").arg(&copy).args([
            "--learn-for",
            "0s",
            "--workers",
            workers,
            "-q",
        ]));
        assert_eq!(
            sorted_lines(&got),
            sorted_lines(&expected),
            "{tag}: run --read --workers {workers} differs from detect (learned from {learn_on:?}, scored {score:?})"
        );
    }
    expected.lines().count()
}

#[test]
fn run_read_gives_the_alerts_of_detect_for_1_2_and_4_workers_on_the_corpus() {
    // Under CI=true a missing corpus is a failure (shared_pcaps asserts it).
    let Some(root) = shared_pcaps() else { return };
    let dir = std::env::temp_dir().join(format!("otsensor-run-eq-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut compared = 0;
    let mut captures = 0;
    // Each capture scored against the baseline of the first capture of its folder (many
    // alerts: other devices, other functions), and each folder's captures in one run (one
    // stream over several files, packet numbers restarting per file).
    let mut folders: Vec<PathBuf> =
        captures_under(&root).iter().filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
    folders.sort();
    folders.dedup();
    for (i, folder) in folders.iter().enumerate() {
        let mut files: Vec<PathBuf> =
            captures_under(folder).into_iter().filter(|p| p.parent() == Some(folder)).collect();
        files.sort();
        let Some(first) = files.first().cloned() else { continue };
        for (j, f) in files.iter().enumerate() {
            compared += compare(&dir, &format!("f{i}-{j}"), std::slice::from_ref(&first), std::slice::from_ref(f));
            captures += 1;
        }
        if files.len() > 1 {
            compared += compare(&dir, &format!("f{i}-all"), std::slice::from_ref(&first), &files);
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("run --read = detect: {captures} captures, {compared} alerts compared");
    assert!(captures >= 50, "only {captures} captures found under {}", root.display());
    assert!(compared >= 200, "only {compared} alerts compared: the comparison says too little");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otsensor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn bundled(rel: &str) -> PathBuf {
    super::common::bundled_pcaps().join(rel)
}

fn baseline_json(p: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    // Written atomically and sealed: it must verify.
    otsensor_models::Baseline::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn learning_in_place_alerts_critical_operations_without_learning_them() {
    let dir = temp_dir("run-learn-critical");
    let baseline = dir.join("b.json");
    let out = otsensor()
        .args(["run", "--read"])
        .arg(bundled("dnp3/iti-cold-restart.pcap"))
        .arg("--baseline")
        .arg(&baseline)
        .args(["--learn-for", "1h", "--workers", "2", "-q"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alerts = String::from_utf8_lossy(&out.stdout);
    assert!(alerts.contains("\"id\":\"dnp3.cold_restart\""), "no cold restart alert while learning: {alerts}");
    let b = baseline_json(&baseline);
    let funcs: Vec<u64> = b["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .flat_map(|p| p["functions"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f["func"].as_u64())
        .collect();
    assert!(!funcs.is_empty(), "the checkpoint learned nothing");
    assert!(!funcs.contains(&13), "COLD_RESTART (13) was learned as normal: {funcs:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn learning_switches_to_detection_by_itself_in_packet_time() {
    let dir = temp_dir("run-learn-switch");
    let baseline = dir.join("b.json");
    let out = otsensor()
        .args(["run", "--read"])
        .arg(bundled("modbus/iti-modbus_test.pcap"))
        .arg("--baseline")
        .arg(&baseline)
        .args(["--learn-for", "60s", "--workers", "2", "-q"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("detecting from packet"), "{stderr}");
    let b = baseline_json(&baseline);
    let learned = b["learning"]["duration_secs"].as_f64().expect("duration");
    // The capture spans 119 s: learning stopped at the first PDU 60 s in.
    assert!((59.0..61.0).contains(&learned), "learned {learned} s");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_sensor_killed_while_learning_resumes_from_its_last_checkpoint() {
    let dir = temp_dir("run-kill");
    let baseline = dir.join("b.json");
    let capture = bundled("modbus/iti-modbus_test.pcap");
    // At the capture's own pace, checkpointing every 0.5 s, killed without warning.
    let mut child = otsensor()
        .args(["run", "--pace", "--read"])
        .arg(&capture)
        .arg("--baseline")
        .arg(&baseline)
        .args(["--learn-for", "1h", "--checkpoint", "0.5s", "--workers", "2", "-q"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    // Let it checkpoint at least once (a loaded machine may start it slowly), then a bit more.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !baseline.is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before = baseline_json(&baseline);
    let learned_before = before["learning"]["duration_secs"].as_f64().expect("duration");
    let pairs_before = before["pairs"].as_array().map_or(0, Vec::len);
    assert!(pairs_before > 0 && learned_before > 0.5, "checkpoint: {pairs_before} pairs, {learned_before} s");
    assert!(learned_before < 25.0, "a few seconds at the capture's pace cannot have learned {learned_before} s");
    let out = otsensor()
        .args(["run", "--read"])
        .arg(&capture)
        .arg("--baseline")
        .arg(&baseline)
        .args(["--learn-for", "1h", "--workers", "2", "-q"])
        .output()
        .expect("runs again");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("continuing to learn"), "{stderr}");
    let after = baseline_json(&baseline);
    let learned_after = after["learning"]["duration_secs"].as_f64().expect("duration");
    // The clock went on from the checkpoint: its seconds plus the whole capture's 119 s.
    assert!((learned_after - learned_before - 119.385).abs() < 0.01, "{learned_before} s then {learned_after} s");
    assert_eq!(after["learning"]["runs"].as_u64(), Some(before["learning"]["runs"].as_u64().unwrap_or(0) + 1));
    let pairs = |b: &serde_json::Value| -> Vec<String> {
        b["pairs"].as_array().into_iter().flatten().map(|p| format!("{}>{}", p["client"], p["server"])).collect()
    };
    let kept = pairs(&after);
    assert!(pairs(&before).iter().all(|p| kept.contains(p)), "{:?} lost from {kept:?}", pairs(&before));
    std::fs::remove_dir_all(&dir).ok();
}
