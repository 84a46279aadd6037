//! Alert and baseline writes against a full disk (a small tmpfs, mounted by the test: root
//! is needed, and CI runs as root) and a write torn by a kill: they fail loudly, are retried,
//! and never damage what was already written.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{bundled_pcaps, require};

fn otsensor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_otsensor"))
}

fn capture() -> String {
    bundled_pcaps().join("modbus/iti-modbus_test.pcap").to_string_lossy().into_owned()
}

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a `kib` KiB tmpfs, or `None` (with a notice, a failure under CI) when this is
    /// not root.
    fn mount(name: &str, kib: u32) -> Option<SmallDisk> {
        let dir = std::env::temp_dir().join(format!("otsensor-disk-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        require(mounted, "root, to mount a small tmpfs (mount -t tmpfs)")?;
        Some(SmallDisk { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fills the disk to the last byte with `filler`.
    fn fill(&self) -> PathBuf {
        let p = self.path("filler");
        let mut f = std::fs::File::create(&p).expect("filler");
        while f.write_all(&[0u8; 512]).is_ok() {}
        while f.write_all(&[0u8; 1]).is_ok() {}
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_into(alerts: &Path, baseline: &Path) -> Command {
    let mut c = otsensor();
    c.args(["run", "--read", &capture(), "--learn-for", "5s", "--workers", "1", "-q", "--baseline"])
        .arg(baseline)
        .arg("--alerts")
        .arg(alerts);
    c
}

fn verify(alerts: &Path) -> String {
    let out = otsensor().arg("verify-alerts").arg(alerts).output().expect("verify");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_full_disk_fails_alert_writes_loudly_and_leaves_the_file_whole() {
    let Some(disk) = SmallDisk::mount("alerts-full", 128) else { return };
    let (alerts, baseline) = (disk.path("alerts.jsonl"), std::env::temp_dir().join("otsensor-disk-full-b.json"));
    let _ = std::fs::remove_file(&baseline);
    let first = run_into(&alerts, &baseline).output().expect("first run");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let written = std::fs::read(&alerts).expect("alerts");
    disk.fill();
    let second = run_into(&alerts, &baseline).output().expect("second run");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a full disk must fail the run: {stderr}");
    assert!(stderr.contains("attempt 1 of 5, retrying in 200 ms"), "retried, loudly: {stderr}");
    assert!(
        stderr.contains("No space left on device")
            && stderr.contains("after 5 attempts")
            && stderr.contains(&format!("intact up to byte {}", written.len())),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&alerts).expect("alerts"), written, "what was written is untouched");
    verify(&alerts);
    let _ = std::fs::remove_file(&baseline);
}

#[test]
fn an_alert_write_retried_after_space_is_freed_lands_whole() {
    let Some(disk) = SmallDisk::mount("alerts-retry", 128) else { return };
    let (alerts, baseline) = (disk.path("alerts.jsonl"), std::env::temp_dir().join("otsensor-disk-retry-b.json"));
    let _ = std::fs::remove_file(&baseline);
    let filler = disk.fill();
    let mut child = run_into(&alerts, &baseline).stderr(Stdio::piped()).spawn().expect("run");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while stderr.read_line(&mut line).is_ok_and(|n| n > 0) && !line.contains("retrying in") {
        line.clear();
    }
    assert!(line.contains("writing alerts failed (No space left on device"), "{line}");
    // The operator frees space while the sensor retries.
    std::fs::remove_file(&filler).expect("free space");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(child.wait().expect("exit").success(), "{rest}");
    let report = verify(&alerts);
    assert!(report.contains("records, the chain is intact"), "{report}");
    let _ = std::fs::remove_file(&baseline);
}

#[test]
fn a_full_disk_fails_a_baseline_write_and_keeps_the_old_baseline() {
    let Some(disk) = SmallDisk::mount("baseline-full", 128) else { return };
    let b = disk.path("b.json");
    let learn = |cap: &str| otsensor().args(["learn", cap, "-q", "--baseline"]).arg(&b).output().expect("learn");
    assert!(learn(&capture()).status.success());
    let before = std::fs::read(&b).expect("baseline");
    disk.fill();
    let other = bundled_pcaps().join("modbus/iti-modicon_test.pcap").to_string_lossy().into_owned();
    let out = learn(&other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(std::fs::read(&b).expect("baseline"), before, "the old baseline is untouched");
    let left: Vec<_> = std::fs::read_dir(&disk.dir).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left.len(), 2, "the baseline and the filler, no temporary file: {left:?}");
    let detect = otsensor().args(["detect", &capture(), "-q", "--baseline"]).arg(&b).output().expect("detect");
    assert!(detect.status.success(), "{}", String::from_utf8_lossy(&detect.stderr));
}

#[test]
fn a_record_torn_by_a_kill_is_set_aside_and_the_sensor_restarts() {
    let dir = std::env::temp_dir().join(format!("otsensor-torn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (alerts, baseline) = (dir.join("alerts.jsonl"), dir.join("b.json"));
    assert!(run_into(&alerts, &baseline).status().expect("first").success());
    let whole = std::fs::read(&alerts).expect("alerts");
    // What a kill in the middle of a write leaves: half a record.
    let half = b"{\"ts\":1493388726.839559,\"ts_last\":14933";
    std::fs::OpenOptions::new().append(true).open(&alerts).expect("open").write_all(half).expect("tear");
    let out = run_into(&alerts, &baseline).output().expect("restart");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("its last record was cut short (39 bytes"), "{stderr}");
    let text = std::fs::read(&alerts).expect("alerts");
    assert!(text.starts_with(&whole), "the records before are untouched");
    let notice: serde_json::Value =
        serde_json::from_slice(text[whole.len()..].split(|&b| b == b'\n').next().expect("notice")).expect("JSON");
    assert_eq!(notice["notice"], "torn_tail");
    let saved = PathBuf::from(notice["saved_to"].as_str().expect("saved_to"));
    assert_eq!(std::fs::read(&saved).expect("torn bytes kept"), half);
    verify(&alerts);
    std::fs::remove_dir_all(&dir).ok();
}
