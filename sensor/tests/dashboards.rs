//! The Grafana dashboards and Prometheus files of `dashboards/`: the JSON parses and imports
//! as it is (a `${DS_PROMETHEUS}` input on every panel), `promtool` accepts the scrape
//! configuration and the rules, and every metric name any panel, variable or rule uses is
//! exported by `otsensor run --metrics` on a real capture: a metric renamed in the code
//! without the dashboards fails here.
//!
//! promtool (Debian package `prometheus`) and the shared corpus are needed; without them the
//! tests print a notice and pass, except under `CI=true`, where they fail.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::require;

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

fn dashboard_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("dashboards/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

fn load(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// The PromQL of a dashboard: its targets' `expr`, and its query variables' metric names
/// (`label_values(metric, label)` gives `metric`).
fn dashboard_exprs(d: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push(e.to_string());
            }
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str()).unwrap_or("");
        if let Some(args) = q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
            // label_values(label) alone names no metric.
            if let Some((metric, _label)) = args.split_once(',') {
                out.push(metric.trim().to_string());
            }
        }
    }
    out
}

/// The `expr:` values of a rules file: one line, or a folded/literal block below it.
fn rule_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let Some(pos) = line.find("expr:") else { continue };
        if line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let value = line[pos + 5..].trim();
        if !value.is_empty() && !value.starts_with('>') && !value.starts_with('|') {
            out.push(value.to_string());
            continue;
        }
        let mut block = String::new();
        while i < lines.len() {
            let l = lines[i];
            let ind = l.len() - l.trim_start().len();
            if !l.trim().is_empty() && ind <= indent {
                break;
            }
            block.push_str(l.trim());
            block.push(' ');
            i += 1;
        }
        out.push(block);
    }
    out
}

/// Words that are PromQL, not metric names, when they are not called like functions.
const KEYWORDS: [&str; 13] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
];

/// The metric names a PromQL expression selects: identifiers that are not functions
/// (followed by `(`) or aggregations (`sum by (...)`), keywords, label names (inside `{}` or the parentheses of `by`,
/// `without`, `on`, `ignoring`, `group_left`, `group_right`), strings, durations or Grafana
/// variables (`$__rate_interval`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Depth inside `{...}` and `[...]`, where nothing is a metric name.
    let (mut braces, mut brackets) = (0usize, 0usize);
    // Set when the last word takes a label list in parentheses.
    let mut label_list_next = false;
    let mut in_label_list = 0usize;
    let mut paren_depth = 0usize;
    let mut label_list_depth = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '(' => {
                paren_depth += 1;
                if label_list_next {
                    label_list_depth.push(paren_depth);
                    in_label_list += 1;
                }
                label_list_next = false;
            }
            ')' => {
                if label_list_depth.last() == Some(&paren_depth) {
                    label_list_depth.pop();
                    in_label_list -= 1;
                }
                paren_depth = paren_depth.saturating_sub(1);
            }
            '$' => {
                // A Grafana variable: `$name` or `${name}`.
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_{}".contains(chars[i])) {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            // A number such as 1e-9 starts with a digit and never gets here; `e` after a
            // digit is skipped below.
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            // A function call, or an aggregation whose clause comes first: `sum by (x) (...)`.
            let next: String = chars[j..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').collect();
            let called = chars.get(j) == Some(&'(') || next == "by" || next == "without";
            let lower = word.to_ascii_lowercase();
            if ["by", "without", "on", "ignoring", "group_left", "group_right"].contains(&lower.as_str()) {
                label_list_next = called;
            } else if braces == 0
                && brackets == 0
                && in_label_list == 0
                && !called
                && !KEYWORDS.contains(&lower.as_str())
            {
                names.insert(word);
            }
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            // Numbers, durations (5m, 1h30m) and exponents (1e-9).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

/// Every metric name the dashboards and the rules use, with where.
fn used_names() -> Vec<(String, String)> {
    let mut used = Vec::new();
    for f in dashboard_files() {
        let d = load(&f);
        let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for e in dashboard_exprs(&d) {
            used.extend(metric_names(&e).into_iter().map(|n| (n, file.clone())));
        }
    }
    let rules = std::fs::read_to_string(dashboards_dir().join("prometheus/rules.yml")).expect("rules.yml");
    for e in rule_exprs(&rules) {
        used.extend(metric_names(&e).into_iter().map(|n| (n, "prometheus/rules.yml".to_string())));
    }
    used.sort();
    used.dedup();
    used
}

/// Names the sensor exports in a scrape: every sample's name and every declared family
/// (`# TYPE`), a histogram's as its `_bucket`, `_sum` and `_count` series. A labelled family
/// whose label sets are not known in advance (`otsensor_alerts_total{severity,family}`) is
/// declared before its first sample.
fn exported_names(body: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (it.next(), it.next()) {
                if kind == "histogram" || kind == "summary" {
                    for s in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{s}"));
                    }
                } else {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Series Prometheus writes itself for every target, not the sensor.
const PROMETHEUS_SERIES: [&str; 1] = ["up"];

fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.contains(" 200 ").then(|| body.to_string()))
}

fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn dashboards_are_grafana_json_with_a_ds_prometheus_input_on_every_panel() {
    let files = dashboard_files();
    let names: Vec<String> =
        files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["alerts.json", "ot-traffic.json", "sensor-health.json"]);
    let mut uids = BTreeSet::new();
    for f in &files {
        let d = load(f);
        let what = f.display();
        assert!(uids.insert(d["uid"].as_str().unwrap_or_default().to_string()), "{what}: duplicate uid");
        let inputs = d["__inputs"].as_array().unwrap_or_else(|| panic!("{what}: no __inputs"));
        assert!(
            inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
            "{what}: no DS_PROMETHEUS input"
        );
        // Provisioned (not imported) dashboards resolve ${DS_PROMETHEUS} through this variable.
        assert!(
            d["templating"]["list"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource" && v["query"] == "prometheus"),
            "{what}: no DS_PROMETHEUS data source variable"
        );
        let mut ids = BTreeSet::new();
        let all = panels(&d);
        assert!(all.len() >= 5, "{what}: only {} panels", all.len());
        for p in all {
            assert!(ids.insert(p["id"].as_u64()), "{what}: duplicate panel id {}", p["id"]);
            if p["type"] == "row" {
                continue;
            }
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{what}: panel {}", p["title"]);
            let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{what}: {} has no targets", p["title"]));
            assert!(!targets.is_empty(), "{what}: {} has no query", p["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{what}: a target of {}", p["title"]);
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{what}: empty query in {}", p["title"]);
            }
            let g = &p["gridPos"];
            assert!(g["w"].as_u64().is_some_and(|w| w > 0 && w <= 24), "{what}: {} width", p["title"]);
        }
    }
}

#[test]
fn the_dashboards_cover_what_the_issue_asks() {
    let titles = |f: &str| -> String {
        let d = load(&dashboards_dir().join(f));
        panels(&d).iter().filter_map(|p| p["title"].as_str()).collect::<Vec<_>>().join("|").to_lowercase()
    };
    let health = titles("sensor-health.json");
    for t in ["packets per second", "bytes per second", "kernel drops", "ring drops", "ring depth", "latency"] {
        assert!(health.contains(t), "sensor health lacks {t}: {health}");
    }
    for t in ["flows active", "evicted", "memory", "baseline state", "baseline age"] {
        assert!(health.contains(t), "sensor health lacks {t}: {health}");
    }
    let ot = titles("ot-traffic.json");
    for t in ["by protocol", "operation class", "writes, control and program", "protocol violations"] {
        assert!(ot.contains(t), "OT traffic lacks {t}: {ot}");
    }
    let alerts = titles("alerts.json");
    for t in ["by severity", "by family", "latest critical alerts"] {
        assert!(alerts.contains(t), "alerts lacks {t}: {alerts}");
    }
}

#[test]
fn promtool_accepts_the_scrape_configuration_and_the_rules() {
    let ok = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    let Some(()) = require(ok, "promtool (Debian package prometheus)") else { return };
    let dir = dashboards_dir().join("prometheus");
    for args in [["check", "rules", "rules.yml"], ["check", "config", "otsensor.yml"]] {
        let out = Command::new("promtool").args(args).current_dir(&dir).output().expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The rules the issue names are there.
    let rules = std::fs::read_to_string(dir.join("rules.yml")).expect("rules.yml");
    for a in [
        "OtsensorDown",
        "OtsensorCaptureDrops",
        "OtsensorCriticalAlert",
        "OtsensorBaselineNotCheckpointed",
        "OtsensorLearningOverdue",
    ] {
        assert!(rules.contains(&format!("alert: {a}")), "rules.yml lacks {a}");
    }
}

#[test]
fn metric_names_are_found_in_promql() {
    let n = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        n(
            r#"histogram_quantile(0.99, sum by (le, stage) (rate(otsensor_stage_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))"#
        ),
        ["otsensor_stage_latency_seconds_bucket"]
    );
    assert_eq!(
        n(r#"sum without (worker) (rate(otsensor_pipeline_ring_drops_total[5m])) > 0"#),
        ["otsensor_pipeline_ring_drops_total"]
    );
    assert_eq!(
        n(
            r#"a_total{x="b_total"} / clamp_min(rate(c_total[5m]) + rate(d[1h30m]), 1e-9) > 0.001 or absent(up{job="x"})"#
        ),
        ["a_total", "c_total", "d", "up"]
    );
    assert_eq!(n(r#"sum by (f) (x_total unless x_total offset 5m) and on (instance) y == bool 0"#), ["x_total", "y"]);
    assert_eq!(n("max_over_time(timestamp(changes(z[5m]) > 0)[$__range:1m]) * 1000"), ["z"]);
}

#[test]
fn every_metric_name_in_the_dashboards_and_rules_is_exported_by_run() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    let capture = corpus.join("attacks/lemay-cset16/characterization_modbus_6RTU_with_operate.pcap");
    let Some(()) = require(capture.is_file(), "the shared corpus (../shared/pcaps)") else { return };
    let used = used_names();
    assert!(used.len() >= 15, "too few names found: {used:?}");
    for n in ["otsensor_stage_latency_seconds_bucket", "otsensor_alerts_total", "otsensor_pdus_total", "up"] {
        assert!(used.iter().any(|(u, _)| u == n), "{n} not found in the dashboards: {used:?}");
    }

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboards-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A free port: bound and released; nothing else on this host races for it in a test.
    let addr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["run", "--pace", "--read"])
        .arg(&capture)
        .args(["--metrics", &addr, "--learn-for", "1s", "--workers", "2", "-q", "--baseline"])
        .arg(dir.join("baseline.json"))
        .arg("--alerts")
        .arg(dir.join("alerts.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start otsensor run");
    // Wait until packets are counted and learning (1 s of packet time) is over.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Some(b) = http_get(&addr, "/metrics") {
            if sample(&b, "otsensor_capture_packets_total").unwrap_or(0.0) > 0.0
                && sample(&b, "otsensor_baseline_state") == Some(1.0)
            {
                break b;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("otsensor run exited early ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "no scrape with packets and detection within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    };
    // It stops on SIGTERM, as a service does.
    let _ = Command::new("sh").args(["-c", &format!("kill -TERM {}", child.id())]).status();
    let status = child.wait().expect("wait for otsensor");
    assert!(status.success(), "otsensor run did not exit cleanly on SIGTERM: {status}");

    let exported = exported_names(&body);
    let missing: Vec<String> = used
        .iter()
        .filter(|(n, _)| !exported.contains(n) && !PROMETHEUS_SERIES.contains(&n.as_str()))
        .map(|(n, f)| format!("{n} (in {f})"))
        .collect();
    assert!(missing.is_empty(), "used in dashboards/ but not exported by otsensor run: {missing:#?}\n{body}");
    // And the other way round, as a reminder: a metric no dashboard shows is listed.
    let shown: BTreeSet<&str> = used.iter().map(|(n, _)| n.as_str()).collect();
    let unshown: Vec<&String> = exported.iter().filter(|n| !shown.contains(n.as_str())).collect();
    eprintln!("exported but on no dashboard or rule: {unshown:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills a child process on drop, so a failed assertion leaves nothing running.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> String {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").to_string()
}

#[test]
fn the_critical_alert_rule_fires_in_prometheus_on_the_first_critical_alert_of_run() {
    let ok = Command::new("prometheus").arg("--version").output().is_ok_and(|o| o.status.success());
    let Some(()) = require(ok, "prometheus (Debian package prometheus)") else { return };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboards-rules-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (prom, metrics) = (free_port(), free_port());
    // The rules as shipped; scrape and evaluate every second so the test is short.
    let rules = dashboards_dir().join("prometheus/rules.yml").canonicalize().expect("rules.yml");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  \
         - job_name: otsensor\n    scrape_timeout: 1s\n    static_configs:\n      - targets: [\"{metrics}\"]\n",
        rules.display()
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
    let _prometheus = Reaper(
        Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(&prom, "/-/ready").is_none() {
        assert!(Instant::now() < deadline, "prometheus not ready within 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A DNP3 cold restart 1.4 s into a 16 s capture, at the capture's pace: critical
    // operations are alerted while learning, as they open.
    let capture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps/dnp3/iti-cold-restart.pcap");
    let mut sensor = Reaper(
        Command::new(env!("CARGO_BIN_EXE_otsensor"))
            .args(["run", "--pace", "--read"])
            .arg(&capture)
            .args(["--metrics", &metrics, "--learn-for", "1h", "--alert-on", "open", "-q", "--baseline"])
            .arg(dir.join("baseline.json"))
            .arg("--alerts")
            .arg(dir.join("alerts.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start otsensor run"),
    );
    let firing = loop {
        let body = http_get(&prom, "/api/v1/alerts").unwrap_or_default();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let found = v["data"]["alerts"].as_array().into_iter().flatten().find(|a| {
            a["labels"]["alertname"] == "OtsensorCriticalAlert"
                && a["state"] == "firing"
                && a["labels"]["family"] == "dnp3"
        });
        if let Some(a) = found {
            break a.clone();
        }
        assert!(
            sensor.0.try_wait().ok().flatten().is_none(),
            "otsensor run ended and OtsensorCriticalAlert never fired: {body}"
        );
        assert!(Instant::now() < deadline, "OtsensorCriticalAlert did not fire within 30 s: {body}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(firing["labels"]["severity"], "critical", "{firing}");
    // The README's picture of the rules at work: Prometheus's own alerts page (Grafana is not
    // packaged for Debian, so the dashboards themselves are not pictured).
    if std::env::var("OTSENSOR_WRITE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img/prometheus-alerts.png");
        let out = Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,900"])
            .arg(format!("--user-data-dir={}", dir.join("chromium").display()))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!("http://{prom}/classic/alerts"))
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        eprintln!("written to {}", png.display());
    }
    let _ = Command::new("sh").args(["-c", &format!("kill -TERM {}", sensor.0.id())]).status();
    let _ = sensor.0.wait();
    drop(sensor);
    let _ = std::fs::remove_dir_all(&dir);
}
