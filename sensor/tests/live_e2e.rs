//! `otsensor run` on a real (virtual) network: a PLC, an HMI polling it and an attacker, on a
//! bridge whose host ports are mirrored to a span port the sensor captures on.
//!
//! ```text
//!   ns plc 10.250.0.1 ──┐
//!   ns hmi 10.250.0.2 ──┤ br0 (ns br)   tc ingress on each host port:
//!   ns atk 10.250.0.3 ──┘               mirred egress mirror -> span0 ══ span1 (ns sen)
//!                                                                       otsensor run, Prometheus
//! ```
//!
//! Mirroring the ingress of every host port sees each frame once, requests and responses
//! alike, and the span port is a plain veth with no address and IPv6 disabled before it comes
//! up, so the kernel has nothing to send on it: the test proves the sensor does not either
//! (`tx_packets` and `tx_bytes` unchanged). Every namespace is this run's own (prefix + pid)
//! and none has a route out, so no traffic leaves them.
//!
//! Needs root, iproute2 (`ip`, `tc`), Prometheus and python3 with pymodbus. Without them the
//! test prints a notice and passes, except under `CI=true`, where a missing piece fails it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The hosts on the bridge: namespace role, interface address.
const PLC: (&str, &str) = ("plc", "10.250.0.1");
const HMI: (&str, &str) = ("hmi", "10.250.0.2");
const ATTACKER: (&str, &str) = ("atk", "10.250.0.3");
/// The sensor's capture interface (in the sensor namespace) and its peer on the bridge side.
const SPAN: &str = "span1";
const SPAN_PEER: &str = "span0";
/// Fixed ports are safe: 127.0.0.1 here is the sensor namespace's own loopback.
const METRICS: &str = "127.0.0.1:9750";
const PROMETHEUS: &str = "127.0.0.1:9090";
/// No test may hang: every wait is also bounded by this, counted from the start.
const OVERALL: Duration = Duration::from_secs(60);
/// Alerts must be on disk this soon after the attack's request left.
const ALERT_LATENCY: Duration = Duration::from_secs(2);

#[test]
fn live_sensor_alerts_on_an_attack_without_sending_and_is_scraped_by_prometheus() {
    let Some(python) = prerequisites() else { return };
    let deadline = Instant::now() + OVERALL;
    let mut lab = Lab::new(python);
    lab.build_topology();

    // Prometheus first: it takes a few seconds before its first scrape.
    let prom_config = lab.dir.join("prometheus.yml");
    let template = std::fs::read_to_string(scripts().join("prometheus.yml.in")).expect("read prometheus.yml.in");
    std::fs::write(&prom_config, template.replace("@TARGET@", METRICS)).expect("write prometheus.yml");
    let prom_data = lab.dir.join("prometheus-data");
    let prom = lab.netns("sen");
    lab.spawn(
        "prometheus",
        Command::new("ip").args(["netns", "exec", &prom, "prometheus"]).args([
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", prom_data.display()),
            format!("--web.listen-address={PROMETHEUS}"),
        ]),
    );

    // The PLC, then the sensor, then the HMI, so learning sees the HMI's connection open.
    let plc_script = script("plc.py");
    let mut cmd = lab.in_ns(PLC.0, &lab.python, &[&plc_script, PLC.1, "502"]);
    lab.spawn("plc", &mut cmd);
    let plc_out = lab.dir.join("plc.out");
    wait_for("the PLC to listen", Duration::from_secs(15), deadline, || {
        std::fs::read_to_string(&plc_out).is_ok_and(|s| s.contains("ready")).then_some(())
    });

    let before = lab.span_counters();
    let baseline = lab.dir.join("baseline.json");
    let alerts = lab.dir.join("alerts.jsonl");
    // OTSENSOR_E2E_BIN runs another build (a release binary, an installed package).
    let bin = std::env::var("OTSENSOR_E2E_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_otsensor").to_string());
    let mut sensor = lab.in_ns(
        "sen",
        &bin,
        &[
            "run",
            "--interface",
            SPAN,
            "--baseline",
            &baseline.to_string_lossy(),
            "--learn-for",
            "5s",
            "--checkpoint",
            "2s",
            "--alerts",
            &alerts.to_string_lossy(),
            "--metrics",
            METRICS,
            "--workers",
            "2",
            "-q",
        ],
    );
    lab.spawn("sensor", &mut sensor);
    let hmi_script = script("hmi.py");
    let mut cmd = lab.in_ns(HMI.0, &lab.python, &[&hmi_script, PLC.1, "502"]);
    lab.spawn("hmi", &mut cmd);

    // Learning ends after 5 s of packet time; the gauge says when.
    let metrics_url = format!("http://{METRICS}/metrics");
    wait_for("otsensor_baseline_state 1 (learning over)", Duration::from_secs(25), deadline, || {
        lab.assert_running("sensor");
        let body = lab.fetch(&metrics_url)?;
        (metric(&body, "otsensor_baseline_state") == Some(1.0)).then_some(())
    });
    let metrics = lab.fetch(&metrics_url).expect("GET /metrics");
    for name in ["otsensor_capture_packets_total", "otsensor_build_info"] {
        assert!(metrics.lines().any(|l| l.starts_with(name)), "/metrics lacks {name}:\n{metrics}");
    }
    assert!(metric(&metrics, "otsensor_capture_packets_total").unwrap_or(0.0) > 0.0, "no packets counted:\n{metrics}");
    assert!(lab.fetch(&format!("http://{METRICS}/healthz")).is_some(), "GET /healthz failed");

    // The attack: FC 16 then FC 8/1, from a host the sensor never saw while learning.
    let (sent, attacker) = lab.attack();
    let fc16 = sent.recv_timeout(Duration::from_secs(5)).expect("the attacker sent FC 16");
    let mut fc8: Option<Instant> = None;
    let from_attacker = |a: &Value| a["src_ip"] == ATTACKER.1;
    let is_restart = |a: &Value| from_attacker(a) && a["id"] == "modbus.cold_restart" && a["severity"] == "critical";
    let mut first_seen: Option<Instant> = None;
    let mut restart_seen: Option<Instant> = None;
    // Polled from the moment FC 16 left, so the times below are when each line was first
    // readable, to within one 50 ms poll.
    wait_for("alerts naming the attacker", ALERT_LATENCY * 3, deadline, || {
        if fc8.is_none() {
            fc8 = sent.try_recv().ok();
        }
        let all = read_alerts(&alerts);
        let now = Instant::now();
        if first_seen.is_none() && all.iter().any(from_attacker) {
            first_seen = Some(now);
        }
        if restart_seen.is_none() && all.iter().any(is_restart) {
            restart_seen = Some(now);
        }
        (first_seen.is_some() && restart_seen.is_some()).then_some(())
    });
    // The restart alert cannot precede its request; were the "sent" line still in the pipe,
    // FC 16's send time stands in (a longer, so stricter, latency).
    let fc8 = fc8.unwrap_or(fc16);
    let first_latency = first_seen.map(|t| t.saturating_duration_since(fc16)).unwrap_or_default();
    let restart_latency = restart_seen.map(|t| t.saturating_duration_since(fc8)).unwrap_or_default();
    eprintln!(
        "live e2e: first alert naming the attacker read {} ms after FC 16 was sent; the restart alert {} ms after FC 8",
        first_latency.as_millis(),
        restart_latency.as_millis()
    );
    assert!(first_latency <= ALERT_LATENCY, "first attacker alert took {first_latency:?}");
    assert!(restart_latency <= ALERT_LATENCY, "restart alert took {restart_latency:?}");
    lab.wait_exit(attacker, "attacker", Duration::from_secs(5).min(deadline.saturating_duration_since(Instant::now())));

    // What the alerts say.
    let all = read_alerts(&alerts);
    let keys = [
        "ts",
        "ts_last",
        "pkt_first",
        "pkt_last",
        "id",
        "rule_id",
        "severity",
        "score",
        "proto",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "summary",
        "evidence",
        "count",
        "mitre",
    ];
    for a in &all {
        for k in keys {
            assert!(a.get(k).is_some(), "alert lacks {k}: {a}");
        }
        // Written only when true (as is `update` on a final tally).
        assert!(a.get("capture_loss").map_or(true, Value::is_boolean), "capture_loss is not a boolean: {a}");
    }
    let ids: Vec<&str> = all.iter().filter(|a| from_attacker(a)).filter_map(|a| a["id"].as_str()).collect();
    eprintln!("live e2e: alerts naming the attacker: {ids:?}");
    let write_noticed = ["modbus.new_pair", "modbus.write_on_read_only_pair", "modbus.write_outside_baseline"];
    assert!(ids.iter().any(|id| write_noticed.contains(id)), "the attacker's write raised none of {write_noticed:?}");
    let restart = all.iter().find(|a| is_restart(a)).expect("restart alert");
    assert_eq!(restart["dst_ip"], PLC.1, "the restart alert names the PLC: {restart}");
    assert_eq!(restart["proto"], "modbus", "{restart}");

    // Prometheus scraped the sensor and sees the alerts.
    wait_for(
        "Prometheus: up{job=\"otsensor\"} == 1 and otsensor_alerts_total > 0",
        Duration::from_secs(20),
        deadline,
        || {
            lab.assert_running("prometheus");
            let up = lab.prom_query("up{job=\"otsensor\"}")?;
            let alerts_total = lab.prom_query("sum(otsensor_alerts_total)")?;
            (up == 1.0 && alerts_total > 0.0).then_some(())
        },
    );

    // SIGTERM: checkpoint and exit 0.
    let status =
        lab.terminate("sensor", Duration::from_secs(10).min(deadline.saturating_duration_since(Instant::now())));
    assert!(status.success(), "otsensor run exited with {status} on SIGTERM");
    let saved = std::fs::metadata(&baseline).map(|m| m.len()).unwrap_or(0);
    assert!(saved > 0, "no baseline at {} after SIGTERM", baseline.display());

    // Passive: the span port sent nothing, and did receive the mirror.
    let after = lab.span_counters();
    eprintln!("live e2e: {SPAN} before the sensor {before:?}, after it stopped {after:?}");
    assert_eq!(
        (before.tx_packets, before.tx_bytes),
        (after.tx_packets, after.tx_bytes),
        "something sent on the span port"
    );
    assert!(after.rx_packets > before.rx_packets, "the mirror delivered nothing");
}

/// What the test needs, or `None` (after a notice) when it cannot run here; under `CI=true`
/// a missing piece is a failure instead. Returns the python interpreter that has pymodbus.
fn prerequisites() -> Option<String> {
    let mut missing = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved fs": the effective uid decides.
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        missing.push("root (network namespaces)".to_string());
    }
    for (tool, arg, what) in
        [("ip", "-V", "ip (iproute2)"), ("tc", "-V", "tc (iproute2)"), ("prometheus", "--version", "prometheus")]
    {
        if !Command::new(tool).arg(arg).output().is_ok_and(|o| o.status.success()) {
            missing.push(what.to_string());
        }
    }
    // The interpreter's own path, so `ip netns exec` runs it directly (no shim).
    let python = Command::new("python3")
        .args(["-c", "import sys, pymodbus; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if python.is_none() {
        missing.push("python3 with pymodbus (python3 -m pip install pymodbus)".to_string());
    }
    if missing.is_empty() {
        return python;
    }
    let why = format!("the live end-to-end test needs {}", missing.join(", "));
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}; CI=true, so this is a failure, not a skip (.ci/run installs them as root)");
    }
    eprintln!("notice: {why}; skipped");
    None
}

/// The helper scripts, `tests/e2e/`.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn script(name: &str) -> String {
    scripts().join(name).to_string_lossy().into_owned()
}

/// Polls `f` every 50 ms until it gives a value, for at most `bound` and never past
/// `deadline`; panics naming `what` otherwise.
fn wait_for<T>(what: &str, bound: Duration, deadline: Instant, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    let until = (start + bound).min(deadline);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= until {
            panic!("timed out after {:?} waiting for {what}", start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the first sample of `name` (any labels) in a Prometheus text exposition.
fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
}

/// Complete alert lines written so far (a line still being written is left for next time).
fn read_alerts(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |i| &text[..i]);
    complete.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[derive(Debug, Clone, Copy)]
struct SpanCounters {
    rx_packets: u64,
    tx_packets: u64,
    tx_bytes: u64,
}

/// The namespaces, processes and files of one run; `Drop` kills and deletes them all, and on
/// a failure prints the sensor's stderr, the alerts and the other logs first.
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    children: Vec<(&'static str, Child)>,
    dir: PathBuf,
    python: String,
}

impl Lab {
    fn new(python: String) -> Lab {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("otsensor-e2e-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test directory");
        Lab { prefix: format!("ote2e{pid}"), namespaces: Vec::new(), children: Vec::new(), dir, python }
    }

    fn netns(&self, role: &str) -> String {
        format!("{}{role}", self.prefix)
    }

    /// Runs `ip ARGS` (or `tc`, `sysctl` through `ip netns exec`); panics with its stderr.
    fn run(&self, program: &str, args: &[&str]) {
        let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }

    /// `ip netns exec NS program args`.
    fn in_ns(&self, role: &str, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns(role), program]).args(args);
        c
    }

    fn sysctl(&self, role: &str, settings: &[&str]) {
        let ns = self.netns(role);
        let mut args = vec!["netns", "exec", &ns, "sysctl", "-qw"];
        args.extend_from_slice(settings);
        self.run("ip", &args);
    }

    fn build_topology(&mut self) {
        for role in ["br", "sen", PLC.0, HMI.0, ATTACKER.0] {
            let ns = self.netns(role);
            self.run("ip", &["netns", "add", &ns]);
            self.namespaces.push(ns.clone());
            // No IPv6 anywhere: no router solicitations, ND or MLD to muddy the baseline.
            self.sysctl(role, &["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
            self.run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        let br = self.netns("br");
        self.run("ip", &["-n", &br, "link", "add", "br0", "type", "bridge"]);
        self.run("ip", &["-n", &br, "link", "set", "br0", "up"]);
        // The span port: span0 on the bridge side (not enslaved), span1 in the sensor
        // namespace; IPv6 off on both before they come up, no addresses.
        let sen = self.netns("sen");
        self.run("ip", &["-n", &br, "link", "add", SPAN_PEER, "type", "veth", "peer", "name", SPAN, "netns", &sen]);
        self.sysctl("br", &[&format!("net.ipv6.conf.{SPAN_PEER}.disable_ipv6=1")]);
        self.sysctl("sen", &[&format!("net.ipv6.conf.{SPAN}.disable_ipv6=1")]);
        self.run("ip", &["-n", &br, "link", "set", SPAN_PEER, "up"]);
        self.run("ip", &["-n", &sen, "link", "set", SPAN, "up"]);
        for (role, addr) in [PLC, HMI, ATTACKER] {
            let host = self.netns(role);
            let port = format!("v{role}");
            self.run("ip", &["-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &host]);
            self.run("ip", &["-n", &br, "link", "set", &port, "master", "br0"]);
            self.run("ip", &["-n", &br, "link", "set", &port, "up"]);
            self.run("ip", &["-n", &host, "addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
            self.run("ip", &["-n", &host, "link", "set", "eth0", "up"]);
            // Mirror everything the host sends into the bridge to the span port. Ingress on
            // every host port sees each frame once, whichever way it goes. The u32 match-all
            // rather than `matchall`, which some kernels build without.
            self.run("tc", &["-n", &br, "qdisc", "add", "dev", &port, "ingress"]);
            self.run(
                "tc",
                &[
                    "-n", &br, "filter", "add", "dev", &port, "parent", "ffff:", "protocol", "all", "prio", "1", "u32",
                    "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", SPAN_PEER,
                ],
            );
        }
    }

    /// Starts `cmd` with stdout and stderr in `<name>.out` and `<name>.err`.
    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let out = std::fs::File::create(self.dir.join(format!("{name}.out"))).expect("create log");
        let err = std::fs::File::create(self.dir.join(format!("{name}.err"))).expect("create log");
        let child =
            cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        self.children.push((name, child));
    }

    /// Panics if `name` has exited.
    fn assert_running(&mut self, name: &str) {
        if let Some((_, c)) = self.children.iter_mut().find(|(n, _)| *n == name) {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("{name} exited early with {status}");
            }
        }
    }

    /// Sends SIGTERM to `name` and waits (bounded) for it to exit.
    fn terminate(&mut self, name: &'static str, bound: Duration) -> ExitStatus {
        let i = self.children.iter().position(|(n, _)| *n == name).expect("known process");
        let (_, child) = self.children.remove(i);
        // `ip netns exec` execs the program, so the child's pid is the sensor's own.
        self.run("kill", &["-TERM", &child.id().to_string()]);
        self.wait_exit(child, name, bound)
    }

    fn wait_exit(&mut self, mut child: Child, name: &'static str, bound: Duration) -> ExitStatus {
        let until = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() >= until {
                // Back under the guard, which kills it.
                self.children.push((name, child));
                panic!("{name} did not exit within {bound:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the attacker; the receiver gets the instant each "sent ..." line was read.
    fn attack(&mut self) -> (mpsc::Receiver<Instant>, Child) {
        let script = script("attacker.py");
        let mut child = self
            .in_ns(ATTACKER.0, &self.python, &[&script, PLC.1, "502"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the attacker");
        let stdout = child.stdout.take().expect("attacker stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let now = Instant::now();
                eprintln!("attacker: {line}");
                if line.starts_with("sent ") && tx.send(now).is_err() {
                    break;
                }
            }
        });
        (rx, child)
    }

    /// GET `url` from inside the sensor namespace; `None` on any error.
    fn fetch(&self, url: &str) -> Option<String> {
        let out = self.in_ns("sen", &self.python, &[&script("fetch.py"), url]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The value of a PromQL instant query with one result, through the HTTP API.
    fn prom_query(&self, query: &str) -> Option<f64> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body = self.fetch(&format!("http://{PROMETHEUS}/api/v1/query?query={encoded}"))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// The span interface's counters, read inside the sensor namespace.
    fn span_counters(&self) -> SpanCounters {
        let read = |counter: &str| -> u64 {
            let path = format!("/sys/class/net/{SPAN}/statistics/{counter}");
            let out = self.in_ns("sen", "cat", &[&path]).output().expect("cat");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("cannot read {path}"))
        };
        SpanCounters { rx_packets: read("rx_packets"), tx_packets: read("tx_packets"), tx_bytes: read("tx_bytes") }
    }

    fn dump(&self, file: &str, last_lines: usize) {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("---- {file} (last {} of {} lines)", last_lines.min(lines.len()), lines.len());
        for l in &lines[lines.len().saturating_sub(last_lines)..] {
            eprintln!("{l}");
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() {
            self.dump("sensor.err", 200);
            self.dump("alerts.jsonl", 200);
            self.dump("plc.err", 20);
            self.dump("hmi.out", 5);
            self.dump("prometheus.err", 20);
            eprintln!("---- files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
