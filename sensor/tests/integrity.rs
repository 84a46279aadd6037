//! Signed alert checkpoints and signed, versioned baselines, through the command line: what
//! an attacker who can write the files can and cannot hide.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::bundled_pcaps;

fn otsensor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_otsensor")).args(args).output().expect("run otsensor")
}

fn ok(args: &[&str]) -> String {
    let out = otsensor(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "otsensor {args:?}: {stderr}");
    stderr
}

/// The error otsensor gives, asserting that it fails.
fn refused(args: &[&str]) -> String {
    let out = otsensor(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "otsensor {args:?} should fail: {stderr}");
    stderr
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("otsensor-integrity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn modbus_capture() -> String {
    bundled_pcaps().join("modbus/iti-modbus_test.pcap").to_string_lossy().into_owned()
}

/// An alerts file of `replay` signed with a new key, a checkpoint every 3 records.
fn signed_alerts(dir: &Path) -> (PathBuf, PathBuf) {
    ok(&["keygen", s(&dir.join("sensor"))]);
    let alerts = dir.join("alerts.jsonl");
    ok(&[
        "replay",
        &modbus_capture(),
        "--learn-for",
        "5s",
        "--alerts",
        s(&alerts),
        "--alerts-key",
        s(&dir.join("sensor.key")),
        "--checkpoint-every",
        "3",
        "-q",
    ]);
    (alerts, dir.join("sensor.pub"))
}

fn records(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).expect("alerts").lines().map(str::to_string).collect()
}

/// What an attacker who can write the file does after changing records from line `from + 1`
/// on: renumbers and re-hashes the chain from there so that the unkeyed check passes.
/// Checkpoints keep their signatures (the attacker has no private key).
fn rechain(lines: &[String], from: usize) -> String {
    let mut out: String = lines[..from].iter().map(|l| format!("{l}\n")).collect();
    let mut prev: [u8; 32] = Sha256::digest(format!("{}\n", lines[from - 1]).as_bytes()).into();
    for (i, l) in lines.iter().enumerate().skip(from) {
        let mut v: Value = serde_json::from_str(l).expect("record");
        v["seq"] = Value::from(i as u64 + 1);
        v["prev"] = Value::from(prev.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let line = format!("{v}\n");
        prev = Sha256::digest(line.as_bytes()).into();
        out.push_str(&line);
    }
    out
}

#[test]
fn signed_checkpoints_expose_a_rewritten_chain_and_a_cut_tail() {
    let dir = scratch("alerts");
    let (alerts, public) = signed_alerts(&dir);
    let (a, key) = (s(&alerts), s(&public));
    let good = records(&alerts);
    assert!(good.len() >= 12, "{} records", good.len());
    assert!(good.last().is_some_and(|l| l.starts_with("{\"checkpoint\":\"close\"")), "closed: {:?}", good.last());
    assert!(good[3].starts_with("{\"checkpoint\":\"periodic\""), "every 3 records: {}", good[3]);
    let intact = ok(&["verify-alerts", a, "--key", key]);
    assert!(intact.contains("the chain is intact and its") && intact.contains("ends with the closing checkpoint"));

    let tamper = |name: &str, lines: Vec<String>, want: &str| {
        std::fs::write(&alerts, rechain(&lines, 4)).expect("tampered");
        // The re-hashed chain fools the unkeyed check...
        ok(&["verify-alerts", a]);
        // ...not the signatures.
        let e = refused(&["verify-alerts", a, "--key", key]);
        assert!(e.contains(want), "{name}: {e}");
    };
    let rewritten = "line 8: checkpoint signature does not verify: the records after line 4 were rewritten";
    // Altered: record 5 gets a lower score.
    let mut altered = good.clone();
    altered[4] = altered[4].replacen("\"score\":", "\"score\":1", 1);
    tamper("altered", altered, rewritten);
    // Removed: record 6 gone (the checkpoint of line 8 moves up to line 7).
    let mut removed = good.clone();
    removed.remove(5);
    tamper("removed", removed, "line 7: checkpoint signature does not verify: the records after line 4");
    // Inserted: a copy of record 5 after it.
    let mut inserted = good.clone();
    inserted.insert(5, good[4].clone());
    tamper("inserted", inserted, "line 9: checkpoint signature does not verify: the records after line 4");
    // Reordered: records 5 and 6 swapped.
    let mut reordered = good.clone();
    reordered.swap(4, 5);
    tamper("reordered", reordered, rewritten);
    // Truncated at a record boundary, right after a periodic checkpoint: the chain is whole.
    let cut: Vec<String> = good[..8].to_vec();
    std::fs::write(&alerts, cut.join("\n") + "\n").expect("cut");
    ok(&["verify-alerts", a]);
    let e = refused(&["verify-alerts", a, "--key", key]);
    assert!(e.contains("does not end with a closing checkpoint") && e.contains("cut short after line 8"), "{e}");
    // Truncated in the middle of a record.
    std::fs::write(&alerts, &good.join("\n")[..300]).expect("cut");
    let e = refused(&["verify-alerts", a, "--key", key]);
    assert!(e.contains("line 1: cut short (no end of line): the file was truncated"), "{e}");

    // Another key: named as such.
    std::fs::write(&alerts, good.join("\n") + "\n").expect("restored");
    ok(&["keygen", s(&dir.join("other"))]);
    let e = refused(&["verify-alerts", a, "--key", s(&dir.join("other.pub"))]);
    assert!(e.contains("line 4: checkpoint signed by key") && e.contains("not by the key given"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unsigned_file_is_refused_when_a_key_is_given() {
    let dir = scratch("unsigned");
    ok(&["keygen", s(&dir.join("k"))]);
    let alerts = dir.join("a.jsonl");
    ok(&["replay", &modbus_capture(), "--learn-for", "5s", "--alerts", s(&alerts), "-q"]);
    ok(&["verify-alerts", s(&alerts)]);
    let e = refused(&["verify-alerts", s(&alerts), "--key", s(&dir.join("k.pub"))]);
    assert!(e.contains("no signed checkpoint in the file"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn keygen_never_overwrites_and_keys_others_can_read_are_refused() {
    let dir = scratch("keys");
    ok(&["keygen", s(&dir.join("k"))]);
    let e = refused(&["keygen", s(&dir.join("k"))]);
    assert!(e.contains("k.key") && e.contains("exists"), "{e}");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("k.key"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let alerts = dir.join("a.jsonl");
    let e = refused(&[
        "replay",
        &modbus_capture(),
        "--learn-for",
        "5s",
        "--alerts",
        s(&alerts),
        "--alerts-key",
        s(&dir.join("k.key")),
    ]);
    assert!(e.contains("private key is readable by others (mode 644)"), "{e}");
    assert!(!alerts.exists(), "nothing written before the key was refused");
    std::fs::remove_dir_all(&dir).ok();
}

/// A baseline learned from the Modbus capture and signed with `dir/k.key`.
fn signed_baseline(dir: &Path) -> PathBuf {
    ok(&["keygen", s(&dir.join("k"))]);
    let b = dir.join("b.json");
    ok(&["learn", &modbus_capture(), "--baseline", s(&b), "--sign-key", s(&dir.join("k.key")), "-q"]);
    b
}

#[test]
fn a_signed_baseline_is_refused_with_a_wrong_key_or_modified() {
    let dir = scratch("baseline-sig");
    let b = signed_baseline(&dir);
    assert!(dir.join("b.json.sig").exists());
    let (cap, key) = (modbus_capture(), dir.join("k.pub"));
    let detect = |key: &Path| otsensor(&["detect", &cap, "--baseline", s(&b), "--baseline-key", s(key), "-q"]);
    assert!(detect(&key).status.success());
    // Another key.
    ok(&["keygen", s(&dir.join("other"))]);
    let e = String::from_utf8_lossy(&detect(&dir.join("other.pub")).stderr).into_owned();
    assert!(e.contains("b.json: refused: it is signed by key") && e.contains("not by the key given"), "{e}");
    // Modified and re-sealed (the checksum matches again, the signature does not).
    let text = std::fs::read_to_string(&b).expect("baseline").replacen("\"runs\": 1", "\"runs\": 2", 1);
    std::fs::write(&b, text).expect("edit");
    ok(&["baseline", "seal", s(&b)]);
    let out = detect(&key);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("was modified after it was signed"), "{e}");
    // Every command that loads a baseline checks it: run, report, inventory, learn.
    let run = refused(&["run", "--read", &cap, "--baseline", s(&b), "--learn-for", "0s", "--baseline-key", s(&key)]);
    assert!(run.contains("was modified after it was signed"), "{run}");
    let html = dir.join("r.html");
    let report = refused(&["report", &cap, "--baseline", s(&b), "-o", s(&html), "--baseline-key", s(&key)]);
    assert!(report.contains("was modified after it was signed"), "{report}");
    let inv = refused(&["inventory", &cap, "--baseline", s(&b), "--baseline-key", s(&key)]);
    assert!(inv.contains("was modified after it was signed"), "{inv}");
    let learn = refused(&["learn", &cap, "--baseline", s(&b), "--baseline-key", s(&key)]);
    assert!(learn.contains("was modified after it was signed"), "{learn}");
    // Signing it again (the reviewer's act) makes it acceptable.
    ok(&["baseline", "seal", s(&b), "--sign-key", s(&dir.join("k.key"))]);
    assert!(detect(&key).status.success());
    // No signature at all.
    std::fs::remove_file(dir.join("b.json.sig")).expect("rm sig");
    let e = String::from_utf8_lossy(&detect(&key).stderr).into_owned();
    assert!(e.contains("it is not signed") && e.contains("b.json.sig is missing"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Edits a baseline document as JSON and re-seals it.
fn edit(path: &Path, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("baseline")).expect("JSON");
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).expect("JSON")).expect("write");
    ok(&["baseline", "seal", s(path)]);
}

#[test]
fn baseline_diff_says_what_changed_in_words() {
    let dir = scratch("diff");
    let a = dir.join("a.json");
    ok(&["learn", &modbus_capture(), "--baseline", s(&a), "-q"]);
    let same = ok(&["baseline", "diff", s(&a), s(&a)]);
    assert!(same.is_empty());
    assert_eq!(String::from_utf8_lossy(&otsensor(&["baseline", "diff", s(&a), s(&a)]).stdout), "no change\n");
    // B: the same network, plus the S7 capture's assets, one envelope wider, a polling
    // period doubled, a function dropped.
    let b = dir.join("b.json");
    std::fs::copy(&a, &b).expect("copy");
    let s7 = bundled_pcaps().join("s7comm");
    let s7cap = std::fs::read_dir(&s7)
        .expect("s7 captures")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pcap"))
        .expect("an S7 capture");
    ok(&["learn", s(&s7cap), "--baseline", s(&b), "-q"]);
    edit(&b, |v| {
        let pair = &mut v["pairs"][0];
        let env = &mut pair["values"][0];
        env["max"] = Value::from(env["max"].as_i64().expect("max") + 1000);
        let poll = &mut pair["polling"][0];
        poll["period_secs"] = Value::from(poll["period_secs"].as_f64().expect("period") * 2.0);
        pair["functions"].as_array_mut().expect("functions").pop();
        let host = &mut v["network"]["hosts"][0];
        host["ttls"].as_array_mut().expect("ttls").push(Value::from(128));
        host["macs"].as_array_mut().expect("macs").push(Value::from("02:00:00:00:00:99"));
    });
    let out = otsensor(&["baseline", "diff", s(&a), s(&b)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "learning: ",
        "new asset ",
        "new pair s7comm ",
        "envelope widened from [",
        "no longer used",
        ", was ",
        "new network service tcp ",
        "new IP TTLs 128",
        "ARP now also binds it to 02:00:00:00:00:99",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
    // And the other way round: what B had that A has not is removed.
    let back = String::from_utf8_lossy(&otsensor(&["baseline", "diff", s(&b), s(&a)]).stdout).into_owned();
    assert!(back.contains("removed asset ") && back.contains("removed pair s7comm "), "{back}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn promote_and_rollback_keep_numbered_versions_with_who_when_and_why() {
    let dir = scratch("promote");
    let b = signed_baseline(&dir);
    let store = dir.join("store");
    let (st, key, sk) = (s(&store), dir.join("k.pub"), dir.join("k.key"));
    let v1 = std::fs::read(&b).expect("b");
    ok(&[
        "baseline",
        "promote",
        s(&b),
        "--dir",
        st,
        "--by",
        "alice",
        "--why",
        "initial review",
        "--baseline-key",
        s(&key),
    ]);
    let b2 = dir.join("b2.json");
    std::fs::copy(&b, &b2).expect("copy");
    std::fs::copy(dir.join("b.json.sig"), dir.join("b2.json.sig")).expect("copy");
    edit(&b2, |v| v["learning"]["runs"] = Value::from(5));
    // Unsigned after the edit: a promotion that requires a signature refuses it...
    let e = refused(&["baseline", "promote", s(&b2), "--dir", st, "--why", "x", "--baseline-key", s(&key)]);
    assert!(e.contains("modified after it was signed"), "{e}");
    // ...and the reviewer signs it while promoting.
    ok(&["baseline", "promote", s(&b2), "--dir", st, "--by", "bob", "--why", "CHG-42 new pump", "--sign-key", s(&sk)]);
    let current = store.join("current.json");
    assert_eq!(std::fs::read(store.join("v0001.json")).expect("v1"), v1, "a version is the file promoted");
    assert_ne!(std::fs::read(&current).expect("current"), v1);
    ok(&["detect", &modbus_capture(), "--baseline", s(&current), "--baseline-key", s(&key), "-q"]);
    ok(&["baseline", "rollback", "--dir", st, "--by", "carol", "--why", "false positives", "--baseline-key", s(&key)]);
    assert_eq!(std::fs::read(&current).expect("current"), v1, "back to version 1");
    ok(&["detect", &modbus_capture(), "--baseline", s(&current), "--baseline-key", s(&key), "-q"]);
    ok(&["baseline", "rollback", "2", "--dir", st, "--why", "fixed"]);
    assert_eq!(std::fs::read(&current).expect("current"), std::fs::read(store.join("v0002.json")).expect("v2"));
    let e = refused(&["baseline", "rollback", "2", "--dir", st, "--why", "again"]);
    assert!(e.contains("version 2 is already current"), "{e}");
    let e = refused(&["baseline", "rollback", "9", "--dir", st, "--why", "x"]);
    assert!(e.contains("no version 9"), "{e}");
    let log = String::from_utf8_lossy(&otsensor(&["baseline", "log", "--dir", st]).stdout).into_owned();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4, "{log}");
    assert!(lines[0].contains("promote  v1 (from v0)  by alice: initial review"), "{log}");
    assert!(lines[1].contains("promote  v2 (from v1)  by bob: CHG-42 new pump"), "{log}");
    assert!(lines[2].contains("rollback v1 (from v2)  by carol: false positives"), "{log}");
    assert!(lines[3].contains("rollback v2 (from v1)"), "{log}");
    assert!(lines[0].get(..4).is_some_and(|y| y.parse::<u32>().is_ok_and(|y| y >= 2024)), "a UTC date: {log}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn config_policy_and_token_files_others_could_change_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("perms");
    let chmod = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    let config = dir.join("otsensor.toml");
    std::fs::write(&config, format!("read = [\"{}\"]\nbaseline = \"{}\"\n", modbus_capture(), s(&dir.join("b.json"))))
        .expect("config");
    chmod(&config, 0o666);
    let e = refused(&["run", "--config", s(&config), "--learn-for", "5s", "-q"]);
    assert!(e.contains("otsensor.toml: config file is writable by group or others (mode 666)"), "{e}");
    chmod(&config, 0o644);
    ok(&["run", "--config", s(&config), "--learn-for", "5s", "-q"]);
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "").expect("policy");
    chmod(&policy, 0o664);
    let e = refused(&["detect", &modbus_capture(), "--baseline", s(&dir.join("b.json")), "--policy", s(&policy)]);
    assert!(e.contains("policy.toml: policy file is writable by group or others (mode 664)"), "{e}");
    let token = dir.join("token");
    std::fs::write(&token, "0123456789abcdef0123\n").expect("token");
    chmod(&token, 0o644);
    let e = refused(&["run", "--config", s(&config), "--metrics", "127.0.0.1:0", "--metrics-token", s(&token), "-q"]);
    assert!(e.contains("token: metrics token file is readable by others (mode 644)"), "{e}");
    std::fs::write(&token, "short\n").expect("token");
    chmod(&token, 0o600);
    let e = refused(&["run", "--config", s(&config), "--metrics", "127.0.0.1:0", "--metrics-token", s(&token), "-q"]);
    assert!(e.contains("token: the token is shorter than 16 characters"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_sensor_signs_its_alerts_file_across_restarts() {
    let dir = scratch("run-signed");
    ok(&["keygen", s(&dir.join("sensor"))]);
    let (alerts, b, key) = (dir.join("alerts.jsonl"), dir.join("b.json"), dir.join("sensor.key"));
    let run = [
        "run",
        "--read",
        &modbus_capture(),
        "--baseline",
        s(&b),
        "--learn-for",
        "5s",
        "--alerts",
        s(&alerts),
        "--alerts-key",
        s(&key),
        "--checkpoint-every",
        "4",
        "-q",
    ];
    ok(&run);
    ok(&run);
    let lines = records(&alerts);
    let closes = lines.iter().filter(|l| l.starts_with("{\"checkpoint\":\"close\"")).count();
    assert_eq!(closes, 2, "one closing checkpoint per run");
    let report = ok(&["verify-alerts", s(&alerts), "--key", s(&dir.join("sensor.pub"))]);
    assert!(report.contains("ends with the closing checkpoint"), "{report}");
    let e =
        refused(&["run", "--read", &modbus_capture(), "--baseline", s(&b), "--alerts-key", s(&dir.join("sensor.key"))]);
    assert!(e.contains("give --alerts FILE too"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
