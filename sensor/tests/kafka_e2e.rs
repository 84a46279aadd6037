//! Kafka end to end, against a real broker that speaks the Kafka protocol: `tansu`
//! (`.ci/run` installs it; under CI=true its absence is a failure). Two sensors (two
//! `run --read --pace` processes with different sensor ids) publish to one broker while
//! `otsensor consume` reads the alerts back; the broker is killed between two bursts of alerts
//! and started again while the second burst happens; every alert of both sensors must arrive,
//! keyed by sensor id and in each sensor's order.
//!
//! tansu runs with in-memory storage (`memory://`): a restarted broker starts empty, its
//! logs and the group's offsets gone. So the test kills it only once the consumer has read
//! everything sent so far, and reads the restarted broker with a second consumer from its
//! beginning (a consumer that carried on would resume at an offset of the old log). What it
//! shows is the sensors' side: nothing produced while the broker is away is lost.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use serde_json::Value;

use super::common::require;

/// Alerts in each burst, per sensor.
const BURST: u8 = 6;
/// Seconds of capture time between the two bursts.
const GAP_SECS: u32 = 8;

fn tansu() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).find(|f| f.is_file()))
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path.or_else(|| cargo_home.map(|c| c.join("bin/tansu")).filter(|f| f.is_file()))
}

/// A tansu broker on loopback, killed when dropped.
struct Broker {
    bin: PathBuf,
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Broker {
    fn start(bin: &Path, port: u16, log: PathBuf) -> Broker {
        let mut b = Broker { bin: bin.to_path_buf(), port, log, child: None };
        b.restart();
        b
    }

    fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("broker log");
        let child = Command::new(&self.bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(t.elapsed() < Duration::from_secs(20), "tansu did not listen: {}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A classic pcap (LINKTYPE_RAW) of Modbus restart requests (FC 8, sub-function 1): two
/// bursts of [`BURST`], each from its own client, so that each is an alert of its own.
fn capture(path: &Path) {
    let mut f = std::fs::File::create(path).expect("capture");
    // Magic, version 2.4, zone, sigfigs, snaplen, LINKTYPE_RAW (101).
    let mut out = vec![];
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(101u32.to_le_bytes());
    for burst in 0..2u8 {
        for i in 0..BURST {
            // MBAP: transaction i, protocol 0, length 6, unit 1; FC 8, restart communications.
            let pdu = [0, i, 0, 0, 0, 6, 1, 8, 0, 1, 0, 0];
            let mut p = vec![0x45, 0];
            p.extend(((40 + pdu.len()) as u16).to_be_bytes());
            p.extend([0, 1, 0x40, 0, 64, 6, 0, 0]);
            p.extend([10, 0, burst + 1, i + 1]); // a client of its own
            p.extend([10, 0, 0, 2]);
            p.extend(40000u16.to_be_bytes());
            p.extend(502u16.to_be_bytes());
            p.extend(1000u32.to_be_bytes());
            p.extend(0u32.to_be_bytes());
            p.extend([0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
            p.extend(pdu);
            let secs = 1_700_000_000 + u32::from(burst) * GAP_SECS;
            out.extend(secs.to_le_bytes());
            out.extend((u32::from(i) * 100_000).to_le_bytes());
            out.extend((p.len() as u32).to_le_bytes());
            out.extend((p.len() as u32).to_le_bytes());
            out.extend(p);
        }
    }
    f.write_all(&out).expect("write capture");
}

fn sensor(dir: &Path, id: &str, cap: &Path, port: u16) -> Child {
    let d = dir.join(id);
    std::fs::create_dir_all(&d).expect("sensor dir");
    Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .arg("run")
        .arg("--read")
        .arg(cap)
        .arg("--pace")
        .arg("--baseline")
        .arg(d.join("b.json"))
        .args(["--learn-for", "1d", "--alert-on", "open", "--workers", "1", "--alerts"])
        .arg(d.join("alerts.jsonl"))
        .args(["--output", &format!("kafka://127.0.0.1:{port}"), "--sensor-id", id, "--site", "north"])
        .args(["--drain", "60s"])
        .stderr(std::fs::File::create(d.join("stderr")).expect("stderr file"))
        .spawn()
        .expect("otsensor runs")
}

/// `otsensor consume` of the alerts into `out`, from the beginning, in a group of its own.
fn consume(dir: &Path, port: u16, out: &Path) -> Child {
    let name = out.file_stem().and_then(|n| n.to_str()).unwrap_or("consume").to_string();
    Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["consume", "--kafka", &format!("127.0.0.1:{port}"), "--from-beginning", "--idle-exit", "90s"])
        .args(["--group", &name])
        .stdout(std::fs::File::create(out).expect("consumer output"))
        .stderr(std::fs::File::create(dir.join(format!("{name}.stderr"))).expect("stderr"))
        .spawn()
        .expect("otsensor consume runs")
}

/// SIGTERM (consume stops cleanly on it), then waits.
fn stop(mut c: Child) {
    let _ = Command::new("kill").arg(c.id().to_string()).status();
    let _ = c.wait();
}

/// The source address of each alert a sensor wrote to its file, in order.
fn written(dir: &Path, id: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(id).join("alerts.jsonl")).expect("alerts file");
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON")["src_ip"].as_str().expect("src").to_string())
        .collect()
}

/// The alerts `otsensor consume` wrote so far.
fn consumed(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first arrival of each alert of `id`, in order of arrival (at-least-once: a record
/// sent again after the broker came back may arrive twice).
fn arrivals(records: &[Value], id: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for r in records.iter().filter(|r| r["sensor_id"] == id) {
        let src = r["src_ip"].as_str().expect("src").to_string();
        if !seen.contains(&src) {
            seen.push(src);
        }
    }
    seen
}

#[test]
fn two_sensors_publish_to_kafka_and_a_broker_restart_loses_nothing() {
    let Some(()) = require(tansu().is_some(), "tansu (cargo install tansu --locked --features dynostore)") else {
        return;
    };
    let bin = tansu().unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("otsensor-kafka-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let mut broker = Broker::start(&bin, port, dir.join("tansu.log"));
    let cap = dir.join("restarts.pcap");
    capture(&cap);

    let before = dir.join("consumed-before.jsonl");
    let after = dir.join("consumed-after.jsonl");
    let mut consumer = consume(&dir, port, &before);
    let mut a = sensor(&dir, "sensor-a", &cap, port);
    let mut b = sensor(&dir, "sensor-b", &cap, port);

    // The first burst arrives; then the broker goes away before the second one.
    let first = usize::from(BURST) * 2;
    wait_until("the first burst from both sensors", Duration::from_secs(30), || consumed(&before).len() >= first);
    let t_kill = Instant::now();
    broker.kill();
    // With no broker, leaving the group would wait out the session: this one is just killed.
    let _ = consumer.kill();
    let _ = consumer.wait();
    // Capture time runs on: the second burst is written while the broker is down.
    std::thread::sleep(Duration::from_secs(u64::from(GAP_SECS)));
    broker.restart();
    consumer = consume(&dir, port, &after);
    let killed_for = t_kill.elapsed();
    for (name, s) in [("sensor-a", &mut a), ("sensor-b", &mut b)] {
        let status = s.wait().expect("sensor ends");
        let err = std::fs::read_to_string(dir.join(name).join("stderr")).unwrap_or_default();
        assert!(status.success(), "{name}: {err}");
        assert!(err.contains("0 dropped, 0 left in the queue"), "{name} delivered everything: {err}");
    }
    let total = first * 2;
    let all = || [consumed(&before), consumed(&after)].concat();
    wait_until("every alert after the restart", Duration::from_secs(60), || {
        ["sensor-a", "sensor-b"].iter().all(|id| arrivals(&all(), id).len() == total / 2)
    });
    stop(consumer);

    let got = all();
    for id in ["sensor-a", "sensor-b"] {
        let expected = written(&dir, id);
        assert_eq!(expected.len(), total / 2, "{id} alerted every restart");
        assert_eq!(arrivals(&got, id), expected, "{id}: every alert, in the sensor's order");
        let mut numbers = std::collections::BTreeMap::new();
        for r in got.iter().filter(|r| r["sensor_id"] == id) {
            assert_eq!((r["site"].as_str(), r["version"].as_str()), (Some("north"), Some(env!("CARGO_PKG_VERSION"))));
            let n = r["record_id"].as_u64().expect("record_id");
            // A copy delivered again carries the number of the first: consumers can drop it.
            assert_eq!(*numbers.entry(r["src_ip"].to_string()).or_insert(n), n, "{id}: {r}");
        }
    }
    eprintln!("the broker was away for {killed_for:?}; {} records consumed for {total} alerts", got.len());

    // Keys, and the other topics, straight from the (restarted) broker.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("group.id", "e2e-keys")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&["otsensor.alerts", "otsensor.assets", "otsensor.stats"]).expect("subscribe");
    let mut topics = std::collections::BTreeSet::new();
    let t = Instant::now();
    while topics.len() < 3 && t.elapsed() < Duration::from_secs(30) {
        let Some(Ok(m)) = c.poll(Duration::from_millis(200)) else { continue };
        let v: Value = serde_json::from_slice(m.payload().expect("value")).expect("JSON value");
        let key = std::str::from_utf8(m.key().expect("keyed")).expect("UTF-8 key");
        assert_eq!(v["sensor_id"], key, "{}: keyed by sensor id", m.topic());
        topics.insert(m.topic().to_string());
    }
    assert_eq!(topics.len(), 3, "alerts, assets and stats records: {topics:?}\n{}", broker.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}
