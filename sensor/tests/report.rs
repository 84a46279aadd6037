//! `otsensor report`: the HTML of an attack capture renders in headless Chromium without a
//! console message and without a single network request made for the page; the same
//! capture gives the same bytes; strings from captures are escaped; big inventories cluster
//! and paginate.
//!
//! Chromium (Debian package `chromium`) and the shared corpus are needed; without them the
//! tests print a notice and pass, except under `CI=true`, where they fail. The screenshot is
//! written to the test's temporary directory, and also to `docs/img/report.png` when
//! `OTSENSOR_WRITE_SCREENSHOTS=1` (how the README's picture is made).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use otsensor::cmd::report::{gather, ReportArgs};
use otsensor::report::{map, render};
use otsensor_dissectors::engine::EngineConfig;
use otsensor_dissectors::event::{Endpoint, Timestamp};
use otsensor_models::baseline::Asset;
use otsensor_models::{Alert, Severity};
use serde_json::Value;

use crate::common::require;

const ATTACK: &str = "attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap";

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps").join(rel);
    require(p.is_file(), &format!("{} (the shared corpus)", p.display()))?;
    Some(p)
}

fn bundled(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps").join(rel)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn otsensor_report(captures: &[&Path], extra: &[&str], out: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .arg("report")
        .args(captures)
        .args(extra)
        .arg("-q")
        .arg("-o")
        .arg(out)
        .output()
        .expect("run otsensor report");
    assert!(o.status.success(), "otsensor report failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Flags that keep Chromium's own background traffic (updates, spelling dictionaries) out of
/// the network log, so that every request left in it was made for the page.
const QUIET: [&str; 14] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=SpellcheckService,OptimizationHints,MediaRouter,Translate",
    "--enable-logging=stderr",
];

struct Render {
    dom: String,
    console: Vec<String>,
    page_requests: Vec<String>,
}

/// Opens `html` in headless Chromium, without a network namespace when root can make one:
/// the DOM after scripts ran, console messages, and the network requests made for the page
/// (the network log's requests whose isolation key is the `file://` page), and a screenshot
/// when `png` is given.
fn open(browser: &str, html: &Path, dir: &Path, png: Option<&Path>) -> Render {
    let url = format!("file://{}", html.canonicalize().expect("html path").display());
    let netlog = dir.join(format!("netlog-{}.json", html.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()));
    let profile = dir.join("chromium-profile");
    let unshare = Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success());
    let mut cmd = if unshare {
        let mut c = Command::new("unshare");
        c.args(["-n", browser]);
        c
    } else {
        eprintln!("notice: cannot make a network namespace (not root?); relying on the network log alone");
        Command::new(browser)
    };
    cmd.args(QUIET)
        .arg("--v=0")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", netlog.display()));
    match png {
        Some(p) => cmd.args(["--window-size=1400,1750", &format!("--screenshot={}", p.display())]),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(&url).output().expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Chromium's own pages (`chrome://` sources) log too, "Slow network is detected" on a busy
    // machine: only what the opened page logs is the page's.
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") && !l.contains("source: chrome://"))
        .map(str::to_string)
        .collect();
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&netlog).unwrap_or_default())
        .unwrap_or_else(|e| panic!("network log {}: {e}", netlog.display()));
    let mut page_requests: Vec<String> = log["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let p = &e["params"];
            let url = p["url"].as_str()?;
            let for_page = p["network_isolation_key"].as_str().is_some_and(|k| k.contains("file://"));
            (for_page && !url.starts_with("file:") && !url.starts_with("data:")).then(|| url.to_string())
        })
        .collect();
    page_requests.dedup();
    Render { dom: String::from_utf8_lossy(&out.stdout).into_owned(), console, page_requests }
}

#[test]
fn the_report_of_an_attack_capture_renders_in_chromium_without_errors_or_network() {
    let Some(browser) = require(chromium().is_some(), "chromium").and_then(|()| chromium()) else { return };
    let Some(capture) = shared(ATTACK) else { return };
    let dir = temp_dir("chromium");
    let html = dir.join("report.html");
    otsensor_report(&[&capture], &["--learn-for", "60s"], &html);
    let text = std::fs::read_to_string(&html).expect("report written");

    // Nothing in the file can name a resource elsewhere.
    for bad in ["http://", "https://", "<link", "src=", "@import", "//fonts", "<iframe", "<object"] {
        assert!(!text.contains(bad), "the report contains {bad:?}");
    }
    assert!(text.contains("default-src 'none'"), "no Content-Security-Policy forbidding outside resources");
    for id in ["summary", "map", "timeline", "alerts", "assets", "pairs"] {
        assert!(text.contains(&format!("<section id=\"{id}\"")), "no {id} section");
    }
    assert!(text.contains("<svg id=\"netmap\""), "no map");
    assert!(text.contains("<svg id=\"timeline-svg\""), "no timeline");
    // The attack is in it: the RTU turned client, the writes on a read-only pair.
    assert!(text.contains("modbus.write_on_read_only_pair"), "the writes are not alerted");
    assert!(text.contains("192.168.1.101"), "the compromised RTU is not shown");

    // First prove the network check sees a request when there is one.
    let bad = dir.join("control.html");
    std::fs::write(&bad, "<!DOCTYPE html><p>control</p><img src=\"https://example.invalid/x.png\">")
        .expect("write control page");
    let control = open(browser, &bad, &dir, None);
    assert!(
        control.page_requests.iter().any(|u| u.contains("example.invalid")),
        "the network log missed the control page's request: {:?}",
        control.page_requests
    );

    let r = open(browser, &html, &dir, None);
    assert!(r.console.is_empty(), "console messages: {:#?}", r.console);
    assert!(r.page_requests.is_empty(), "the report made network requests: {:#?}", r.page_requests);
    assert!(r.dom.contains("data-script=\"ok\""), "the inline script did not run to its end");
    assert!(r.dom.contains("class=\"pager\""), "the tables were not paginated");

    let png = dir.join("report.png");
    let shot = open(browser, &html, &dir, Some(&png));
    assert!(shot.console.is_empty(), "console messages: {:#?}", shot.console);
    assert!(shot.page_requests.is_empty(), "network requests: {:#?}", shot.page_requests);
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank page compresses to a few kilobytes; the report's is far larger.
    assert!(bytes.len() > 50_000, "the screenshot looks empty ({} bytes)", bytes.len());
    eprintln!("screenshot: {}", png.display());
    if std::env::var("OTSENSOR_WRITE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let dest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img/report.png");
        std::fs::create_dir_all(dest.parent().expect("docs/img")).expect("docs/img");
        std::fs::copy(&png, &dest).expect("copy the screenshot");
        eprintln!("written to {}", dest.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_same_capture_gives_a_byte_identical_report() {
    let Some(capture) = shared(ATTACK) else { return };
    let dir = temp_dir("determinism");
    for (tag, extra) in [("learn", &["--learn-for", "60s"][..]), ("critical", &[][..])] {
        let (a, b) = (dir.join(format!("{tag}-a.html")), dir.join(format!("{tag}-b.html")));
        otsensor_report(&[&capture], extra, &a);
        otsensor_report(&[&capture], extra, &b);
        let (a, b) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
        assert!(a.len() > 10_000, "{tag}: report too small");
        assert!(a == b, "{tag}: two runs gave different reports");
    }
    // A baseline file is scored against as `detect` does.
    let baseline = dir.join("baseline.json");
    let o = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["learn", "-q", "--baseline"])
        .arg(&baseline)
        .arg(bundled("modbus/iti-modbus_test.pcap"))
        .output()
        .expect("learn");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (dir.join("base-a.html"), dir.join("base-b.html"));
    let cap = bundled("modbus/iti-modbus_test.pcap");
    let flag = baseline.to_string_lossy().into_owned();
    otsensor_report(&[&cap], &["--baseline", &flag], &a);
    otsensor_report(&[&cap], &["--baseline", &flag], &b);
    let (a, b) = (std::fs::read_to_string(&a).expect("a"), std::fs::read_to_string(&b).expect("b"));
    assert_eq!(a, b);
    assert!(a.contains("Scored against the baseline <code>baseline.json</code>"), "scoring mode not said");
    let _ = std::fs::remove_dir_all(&dir);
}

fn args(captures: Vec<PathBuf>) -> ReportArgs {
    ReportArgs {
        baseline_keys: Default::default(),
        captures,
        baseline: None,
        learn_for_secs: None,
        output: PathBuf::from("unused.html"),
        policy: None,
        engine: EngineConfig::default(),
        progress: false,
        summary: false,
    }
}

#[test]
fn strings_from_the_capture_are_escaped() {
    let mut d = gather(&args(vec![bundled("modbus/iti-modbus_test.pcap")])).expect("gather");
    let asset = d.inventory.assets.first_mut().expect("an asset");
    asset.identity.insert("vendor_name".into(), "<script>alert(1)</script>".into());
    let ep = |ip: [u8; 4], port| Endpoint { ip: ip.into(), port };
    d.alerts.push(Alert {
        id: "modbus.cold_restart".into(),
        rule_id: 9_100_120,
        rev: 1,
        name: "Device restart",
        severity: Severity::Critical,
        score: 95,
        ts_first: Timestamp { secs: 1_700_000_000, nanos: 0 },
        ts_last: Timestamp { secs: 1_700_000_000, nanos: 0 },
        pkt_first: 7,
        pkt_last: 7,
        src: ep([10, 0, 0, 9], 40000),
        dst: ep([10, 0, 0, 2], 502),
        protocol: None,
        summary: "<img src=x onerror=alert(2)>".into(),
        evidence: "\"quoted\" & 'single'".into(),
        count: 1,
        mitre: None,
        point: None,
        occurrence: 1,
        learn: None,
    });
    let html = render(&d);
    assert!(!html.contains("<script>alert"), "identity not escaped");
    assert!(!html.contains("<img"), "summary not escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("&quot;quoted&quot; &amp; &#39;single&#39;"));
    // The alert's endpoints that spoke no PDU still appear on the map, in red.
    assert!(html.contains("10.0.0.9: named by an alert"), "alert-only node missing");
}

#[test]
fn big_inventories_cluster_on_the_map_and_paginate() {
    let mut d = gather(&args(vec![bundled("modbus/iti-modbus_test.pcap")])).expect("gather");
    let template = d.inventory.assets.first().expect("an asset").clone();
    d.inventory.assets = (0..300u32)
        .map(|i| {
            let ip: IpAddr = [10, 1, (i / 60) as u8, (i % 60) as u8 + 1].into();
            Asset { ip, identity: BTreeMap::new(), ..template.clone() }
        })
        .collect();
    let html = render(&d);
    let nodes = html.matches("<g class=\"node\">").count();
    assert_eq!(nodes, 5, "300 assets in 5 /24s should draw 5 cluster nodes");
    assert!(html.contains(&format!("More than {} addresses", map::MAX_NODES)));
    assert!(html.contains("10.1.4.0/24: 60 addresses"));
    assert!(html.contains("id=\"asset-table\" class=\"sortable\" data-page=\"50\""), "asset table not paginated");
    assert_eq!(html.matches("<tr><td data-v=").count(), 300, "every asset is in the table");
    // Deterministic with many nodes too.
    assert_eq!(html, render(&d));
}

#[test]
fn without_baseline_or_learning_only_critical_operations_alert() {
    let d = gather(&args(vec![bundled("dnp3/iti-cold-restart.pcap")])).expect("gather");
    assert!(d.alerts.iter().any(|a| a.id == "dnp3.cold_restart"), "{:#?}", d.alerts);
    assert!(d.alerts.iter().all(|a| a.severity >= Severity::High), "{:#?}", d.alerts);
    let html = render(&d);
    assert!(html.contains("No baseline: only critical operations"));
}

#[test]
fn with_a_policy_the_map_groups_by_zone() {
    // The ITI Modbus capture: an HMI at 192.168.0.2x polling a PLC at 192.168.0.20.
    let dir = temp_dir("report-policy");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[zone]]\nname = \"control\"\nnetworks = [\"192.168.0.16/28\"]\nsecurity_level = 3\n\n\
         [[asset]]\nname = \"PLC-20\"\naddress = \"192.168.0.20\"\ncriticality = 4\n",
    )
    .expect("policy written");
    let mut a = args(vec![bundled("modbus/iti-modbus_test.pcap")]);
    a.policy = Some(policy);
    a.learn_for_secs = Some(60.0);
    let d = gather(&a).expect("gather");
    assert!(d.alerts.iter().any(|x| x.dst.ip == std::net::IpAddr::from([192, 168, 0, 20])), "alerts about the PLC");
    let html = otsensor::report::render(&d);
    assert!(html.contains("zone control (SL 3)"), "the PLC's zone is a group of the map");
    assert!(html.contains(", in no zone"), "the rest is grouped by subnet, marked as in no zone");
    let _ = std::fs::remove_dir_all(&dir);
}
