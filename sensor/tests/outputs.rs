//! The network outputs against real receivers on loopback: syslog and CEF over UDP, TCP and
//! TLS (with a CA the test makes), a receiver that is down for a while, the drop counter when
//! the queue's cap is hit, and a queue that outlives the process.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otsensor::output::dest::Destination;
use otsensor::output::queue::{Fsync, Topic};
use otsensor::output::siem::Origin;
use otsensor::output::sinks::{render_metrics, OutputConfig, Outputs};
use otsensor::output::tls::TlsFiles;
use serde_json::Value;

use super::common::bundled_pcaps;

type Inbox = Arc<Mutex<Vec<String>>>;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("otsensor-outputs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Reads octet-counted frames (`LEN SP MSG`) until the stream ends.
fn read_frames(stream: impl Read, inbox: &Inbox) {
    let mut r = BufReader::new(stream);
    loop {
        let mut len = Vec::new();
        match r.read_until(b' ', &mut len) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Ok(n) = String::from_utf8_lossy(&len).trim().parse::<usize>() else { return };
        let mut msg = vec![0; n];
        if r.read_exact(&mut msg).is_err() {
            return;
        }
        inbox.lock().expect("inbox").push(String::from_utf8(msg).expect("UTF-8 message"));
    }
}

/// A TCP receiver on `listener`, in a thread, for the rest of the test.
fn tcp_receiver(listener: TcpListener) -> Inbox {
    let inbox = Inbox::default();
    let i = Arc::clone(&inbox);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let i = Arc::clone(&i);
            std::thread::spawn(move || read_frames(conn, &i));
        }
    });
    inbox
}

fn udp_receiver() -> (SocketAddr, Inbox) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = s.local_addr().expect("addr");
    let inbox = Inbox::default();
    let i = Arc::clone(&inbox);
    std::thread::spawn(move || {
        let mut buf = vec![0; 65536];
        while let Ok(n) = s.recv(&mut buf) {
            i.lock().expect("inbox").push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (addr, inbox)
}

/// A CA and a certificate for `localhost` it signed: (CA PEM, server chain, server key).
fn test_pki() -> (String, rustls::pki_types::CertificateDer<'static>, rustls::pki_types::PrivateKeyDer<'static>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "otsensor test CA");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .signed_by(&server_key, &ca)
        .expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    (ca.pem(), server.der().clone(), key)
}

fn tls_receiver(
    chain: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (SocketAddr, Inbox) {
    tls_receiver_checking(chain, key, None)
}

/// A TLS receiver; with `client_ca`, it wants a client certificate that CA signed.
fn tls_receiver_checking(
    chain: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
    client_ca: Option<rustls::pki_types::CertificateDer<'static>>,
) -> (SocketAddr, Inbox) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca).expect("client CA");
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(vec![chain], key).expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let inbox = Inbox::default();
    let i = Arc::clone(&inbox);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (i, config) = (Arc::clone(&i), Arc::clone(&config));
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).expect("TLS server");
                read_frames(rustls::StreamOwned::new(conn, tcp), &i);
            });
        }
    });
    (addr, inbox)
}

/// Waits until `inbox` holds `n` messages (or 20 s).
fn wait_for(inbox: &Inbox, n: usize) -> Vec<String> {
    let t = Instant::now();
    while inbox.lock().expect("inbox").len() < n && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    inbox.lock().expect("inbox").clone()
}

/// The alerts file's records without the chain's keys: the alert as every destination gets it.
fn alerts_of(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("alerts file");
    text.lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).expect("JSON line");
            let o = v.as_object_mut().expect("object");
            o.remove("seq");
            o.remove("prev");
            v
        })
        .collect()
}

/// `key="value"` parameters of the structured data element.
fn sd_params(msg: &str) -> (String, Vec<(String, String)>, String) {
    let start = msg.find('[').expect("structured data");
    let header = msg[..start].to_string();
    let mut params = Vec::new();
    let mut rest = &msg[start + 1..];
    let (id, after) = rest.split_once(' ').expect("SD-ID");
    assert_eq!(id, "otsensor@32473");
    rest = after;
    loop {
        let (k, after) = rest.split_once("=\"").expect("param");
        let mut v = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("closing quote");
            match c {
                '\\' => v.push(chars.next().expect("escaped").1),
                '"' => break i,
                c => v.push(c),
            }
        };
        params.push((k.to_string(), v));
        rest = &after[end + 1..];
        if let Some(r) = rest.strip_prefix("] ") {
            return (header, params, r.to_string());
        }
        rest = rest.strip_prefix(' ').expect("next param");
    }
}

fn check_syslog(msg: &str, alert: &Value) {
    let (header, params, json) = sd_params(msg);
    let h: Vec<&str> = header.split(' ').collect();
    assert_eq!(h[0], "<130>1", "local0.critical, version 1: {msg}");
    assert_eq!(h[1], "2015-01-29T17:35:45.048062Z", "the alert's packet time");
    assert_eq!((h[2], h[3], h[5]), ("plant-1", "otsensor", "dnp3.cold_restart"));
    assert!(h[4].parse::<u32>().is_ok(), "PROCID {}", h[4]);
    let mut expected: Vec<(String, String)> = Vec::new();
    for k in [
        "id",
        "rule_id",
        "rev",
        "name",
        "severity",
        "score",
        "proto",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "count",
        "mitre",
        "pkt_first",
        "pkt_last",
    ] {
        let v = match &alert[k] {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        expected.push((k.to_string(), v));
    }
    expected.push(("site".into(), "north".into()));
    expected.push(("version".into(), env!("CARGO_PKG_VERSION").into()));
    expected.push(("record_id".into(), "1".into()));
    assert_eq!(params, expected);
    assert_eq!(&serde_json::from_str::<Value>(&json).expect("JSON message"), alert);
}

fn check_cef(msg: &str, alert: &Value) {
    let (_, cef) = msg.split_once(" - CEF:").expect("CEF after the syslog header");
    let fields: Vec<&str> = cef.splitn(8, '|').collect();
    assert_eq!(
        &fields[..7],
        ["0", "otsensor", "otsensor", env!("CARGO_PKG_VERSION"), "9100220", "Device restart", "10"]
    );
    // Extension: `key=value` pairs; a value runs to the next ` key=`.
    let ext = fields[7];
    let mut pairs = Vec::new();
    for token in ext.split(' ') {
        match token.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()) => {
                pairs.push((k.to_string(), v.to_string()))
            }
            _ => pairs.last_mut().expect("a key first").1.push_str(&format!(" {token}")),
        }
    }
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(get("src"), alert["src_ip"].as_str().expect("src"));
    assert_eq!(get("spt"), alert["src_port"].to_string());
    assert_eq!(get("dst"), alert["dst_ip"].as_str().expect("dst"));
    assert_eq!(get("dpt"), alert["dst_port"].to_string());
    assert_eq!(get("app"), "dnp3");
    assert_eq!(get("proto"), "", "DNP3's transport is not in the alert");
    assert_eq!(get("act"), "alert");
    assert_eq!(get("start"), "1422552945048");
    assert_eq!(get("end"), "1422552945048");
    assert_eq!(get("cnt"), alert["count"].to_string());
    assert_eq!(get("msg"), alert["summary"].as_str().expect("summary"));
    assert_eq!(get("dvchost"), "plant-1");
    assert_eq!((get("cn1"), get("cn1Label")), (alert["score"].to_string(), "score".into()));
    assert_eq!((get("cs1"), get("cs1Label")), ("dnp3.cold_restart".into(), "alertId".into()));
    assert_eq!((get("cs2"), get("cs2Label")), ("T0816".into(), "mitreTechnique".into()));
    assert_eq!(
        (get("cs3"), get("cs3Label")),
        (alert["evidence"].as_str().expect("evidence").into(), "evidence".into())
    );
    assert_eq!((get("cs4"), get("cs4Label")), ("north".into(), "site".into()));
    assert_eq!(get("externalId"), "1", "the queue's record id");
}

#[test]
fn syslog_and_cef_over_udp_tcp_and_tls_carry_every_field_of_an_alert() {
    let dir = temp("siem");
    let (ca, chain, key) = test_pki();
    std::fs::write(dir.join("ca.pem"), ca).expect("CA file");
    let tcp = |_: ()| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = l.local_addr().expect("addr");
        (a, tcp_receiver(l))
    };
    let receivers = [
        ("syslog+udp", udp_receiver()),
        ("syslog+tcp", tcp(())),
        ("syslog+tls", tls_receiver(chain.clone(), key.clone_key())),
        ("cef+udp", udp_receiver()),
        ("cef+tcp", tcp(())),
        ("cef+tls", tls_receiver(chain, key)),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otsensor"));
    cmd.arg("run").arg("--read").arg(bundled_pcaps().join("dnp3/iti-cold-restart.pcap"));
    cmd.arg("--baseline").arg(dir.join("b.json")).args(["--learn-for", "5s", "-q"]);
    cmd.arg("--alerts").arg(dir.join("alerts.jsonl")).arg("--state-dir").arg(dir.join("state"));
    cmd.args(["--sensor-id", "plant-1", "--site", "north", "--drain", "20s"]).arg("--tls-ca").arg(dir.join("ca.pem"));
    for (scheme, (addr, _)) in &receivers {
        // TLS checks the certificate's name: localhost, not the address.
        let host = if scheme.ends_with("tls") { format!("localhost:{}", addr.port()) } else { addr.to_string() };
        cmd.arg("--output").arg(format!("{scheme}://{host}"));
    }
    let out = cmd.output().expect("otsensor runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alerts = alerts_of(&dir.join("alerts.jsonl"));
    assert_eq!(alerts.len(), 1, "the cold restart");
    for (scheme, (_, inbox)) in &receivers {
        let got = wait_for(inbox, 1);
        assert_eq!(got.len(), 1, "{scheme}: {got:?}");
        if scheme.starts_with("syslog") {
            check_syslog(&got[0], &alerts[0]);
        } else {
            check_cef(&got[0], &alerts[0]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn config(dir: &Path, port: u16, queue_size: usize) -> OutputConfig {
    OutputConfig {
        destinations: vec![format!("syslog+tcp://127.0.0.1:{port}").parse::<Destination>().expect("URL")],
        state_dir: dir.to_path_buf(),
        queue_size,
        fsync: Fsync::Interval,
        origin: Origin { sensor_id: "s1".into(), site: "north".into() },
        tls: TlsFiles::default(),
        drain: Duration::from_secs(10),
    }
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port()
}

fn alert_json(n: u64) -> String {
    format!(
        r#"{{"ts":1700000000.{n:06},"ts_last":1700000000.{n:06},"id":"modbus.write","rule_id":1,"name":"n{n}","severity":"low","score":1}}"#
    )
}

/// The `name` of each alert received, in order.
fn names(msgs: &[String]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            let json = m.split_once("] ").expect("message").1;
            serde_json::from_str::<Value>(json).expect("JSON")["name"].as_str().expect("name").to_string()
        })
        .collect()
}

fn counters(o: &Outputs) -> (u64, u64, u64, u64) {
    let s = &o.counters()[0].1;
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    (l(&s.queued), l(&s.delivered), l(&s.dropped), l(&s.retried))
}

#[test]
fn a_receiver_down_for_a_while_gets_every_alert_once_it_is_back() {
    let dir = temp("down");
    let port = free_port();
    let outputs = Outputs::start(&config(&dir, port, 1000)).expect("start").expect("a network output");
    for n in 1..=20 {
        outputs.append(Topic::Alerts, alert_json(n).as_bytes());
    }
    // Down: every attempt fails and is counted; nothing is lost.
    std::thread::sleep(Duration::from_millis(700));
    let (queued, delivered, dropped, retried) = counters(&outputs);
    assert_eq!((queued, delivered, dropped), (20, 0, 0));
    assert!(retried >= 2, "{retried} retries");
    let inbox = tcp_receiver(TcpListener::bind(("127.0.0.1", port)).expect("the receiver comes back"));
    for n in 21..=25 {
        outputs.append(Topic::Alerts, alert_json(n).as_bytes());
    }
    let got = wait_for(&inbox, 25);
    let expected: Vec<String> = (1..=25).map(|n| format!("n{n}")).collect();
    // In order, each once (nothing failed mid-batch here, so at-least-once means exactly once).
    assert_eq!(names(&got), expected);
    print!("{}", outputs.finish());
    assert_eq!(counters(&outputs).1, 25);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn past_the_cap_the_oldest_are_dropped_and_counted_exactly() {
    let dir = temp("cap");
    let port = free_port();
    let outputs = Outputs::start(&config(&dir, port, 5)).expect("start").expect("a network output");
    for n in 1..=12 {
        outputs.append(Topic::Alerts, alert_json(n).as_bytes());
    }
    std::thread::sleep(Duration::from_millis(300));
    let (queued, delivered, dropped, _) = counters(&outputs);
    assert_eq!((queued, delivered, dropped), (12, 0, 7));
    let mut page = otsensor::metrics::text::TextEncoder::new();
    render_metrics(outputs.counters(), &mut page);
    let page = page.finish();
    let line = format!("otsensor_output_dropped_total{{destination=\"syslog+tcp://127.0.0.1:{port}\"}} 7");
    assert!(page.lines().any(|l| l == line), "{page}");
    let inbox = tcp_receiver(TcpListener::bind(("127.0.0.1", port)).expect("the receiver comes back"));
    let got = wait_for(&inbox, 5);
    assert_eq!(names(&got), ["n8", "n9", "n10", "n11", "n12"], "the newest five, once each");
    print!("{}", outputs.finish());
    assert_eq!(counters(&outputs), (12, 5, 7, counters(&outputs).3));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_queue_outlives_the_process_and_delivers_what_it_held() {
    let dir = temp("restart");
    let port = free_port();
    let run = |drain: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_otsensor"))
            .arg("run")
            .arg("--read")
            .arg(bundled_pcaps().join("dnp3/iti-cold-restart.pcap"))
            .arg("--baseline")
            .arg(dir.join("b.json"))
            .args(["--learn-for", "5s", "--alerts"])
            .arg(dir.join("alerts.jsonl"))
            .args(["--output", &format!("cef+tcp://127.0.0.1:{port}"), "--drain", drain, "--sensor-id", "s1"])
            .output()
            .expect("otsensor runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // No receiver: the alert stays queued (in the baseline's directory) when the run ends.
    let first = run("1s");
    assert!(first.contains(&format!("cef+tcp://127.0.0.1:{port}: 1 queued, 0 delivered")), "{first}");
    assert!(first.contains("1 left in the queue"), "{first}");
    let inbox = tcp_receiver(TcpListener::bind(("127.0.0.1", port)).expect("listen"));
    // The next run sends what the last one left, then its own alert.
    let second = run("20s");
    assert!(second.contains("2 delivered") && second.contains("0 left in the queue"), "{second}");
    let got = wait_for(&inbox, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|m| m.contains("|9100220|Device restart|10|")), "{got:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA, a server certificate for localhost and a client certificate, all signed by it:
/// (CA PEM, CA DER, server chain, server key, client PEM, client key PEM).
#[allow(clippy::type_complexity)]
fn mtls_pki() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
    String,
    String,
) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("key")).expect("CA");
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .signed_by(&server_key, &ca)
        .expect("cert");
    let client_key = rcgen::KeyPair::generate().expect("client key");
    let client = rcgen::CertificateParams::new(vec!["sensor".into()])
        .expect("params")
        .signed_by(&client_key, &ca)
        .expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    (ca.pem(), ca.der().clone(), server.der().clone(), key, client.pem(), client_key.serialize_pem())
}

fn tls_config(dir: &Path, port: u16, tls: TlsFiles) -> OutputConfig {
    OutputConfig {
        destinations: vec![format!("cef+tls://localhost:{port}").parse::<Destination>().expect("URL")],
        tls,
        ..config(dir, port, 100)
    }
}

#[test]
fn tls_sends_a_client_certificate_refuses_a_readable_key_and_an_unknown_ca() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp("mtls");
    let (ca_pem, ca_der, chain, key, client_pem, client_key) = mtls_pki();
    let (addr, inbox) = tls_receiver_checking(chain, key, Some(ca_der));
    let files = TlsFiles {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join("client.pem")),
        key: Some(dir.join("client.key")),
    };
    std::fs::write(dir.join("ca.pem"), &ca_pem).expect("CA");
    std::fs::write(dir.join("client.pem"), client_pem).expect("cert");
    std::fs::write(dir.join("client.key"), client_key).expect("key");
    // A key others can read is refused at start, with the file named.
    std::fs::set_permissions(dir.join("client.key"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = Outputs::start(&tls_config(&dir.join("q1"), addr.port(), files.clone())).expect_err("a readable key");
    assert!(e.contains("client.key") && e.contains("readable by others"), "{e}");
    std::fs::set_permissions(dir.join("client.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = Outputs::start(&tls_config(&dir.join("q2"), addr.port(), files.clone())).expect("start").expect("output");
    o.append(Topic::Alerts, alert_json(1).as_bytes());
    assert_eq!(wait_for(&inbox, 1).len(), 1, "delivered with the client certificate");
    o.finish();
    // A receiver whose certificate another CA signed is never sent anything.
    let (_, _, other_chain, other_key, _, _) = mtls_pki();
    let (other, other_inbox) = tls_receiver(other_chain, other_key);
    let o = Outputs::start(&tls_config(&dir.join("q3"), other.port(), files)).expect("start").expect("output");
    o.append(Topic::Alerts, alert_json(2).as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    let (queued, delivered, _, retried) = counters(&o);
    assert_eq!((queued, delivered), (1, 0));
    assert!(retried >= 1, "the handshake failed and is retried");
    assert!(other_inbox.lock().expect("inbox").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET /metrics` from the sensor's endpoint, or `None` while it does not answer.
fn scrape(addr: SocketAddr) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut page = String::new();
    s.read_to_string(&mut page).ok()?;
    Some(page)
}

fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok())
}

#[test]
fn run_shows_each_destination_on_metrics_and_writes_ecs_lines_that_chain() {
    let dir = temp("metrics");
    let port = free_port();
    let metrics: SocketAddr = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .arg("run")
        .arg("--read")
        .arg(bundled_pcaps().join("dnp3/iti-cold-restart.pcap"))
        .arg("--baseline")
        .arg(dir.join("b.json"))
        .args(["--learn-for", "5s", "--alert-format", "ecs", "--metrics", &metrics.to_string()])
        .arg("--output")
        .arg(format!("file:{}", dir.join("alerts.jsonl").display()))
        .args(["--output", &format!("syslog+tcp://127.0.0.1:{port}"), "--drain", "3s", "-q"])
        .spawn()
        .expect("otsensor runs");
    // Nothing listens: while the run drains, the endpoint shows the alert queued, the
    // attempts retried and its age.
    let dest = format!("{{destination=\"syslog+tcp://127.0.0.1:{port}\"}}");
    let mut seen = None;
    let t = Instant::now();
    while seen.is_none() && t.elapsed() < Duration::from_secs(20) {
        seen = scrape(metrics).filter(|p| sample(p, &format!("otsensor_output_retried_total{dest}")) >= Some(2.0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = seen.expect("the retries on /metrics");
    assert_eq!(sample(&page, &format!("otsensor_output_queued_total{dest}")), Some(1.0));
    assert_eq!(sample(&page, &format!("otsensor_output_delivered_total{dest}")), Some(0.0));
    assert_eq!(sample(&page, &format!("otsensor_output_dropped_total{dest}")), Some(0.0));
    assert!(sample(&page, &format!("otsensor_output_lag_seconds{dest}")) > Some(0.0), "{page}");
    assert!(child.wait().expect("ends").success());
    let alerts = std::fs::read_to_string(dir.join("alerts.jsonl")).expect("alerts file");
    let v: Value = serde_json::from_str(alerts.lines().next().expect("an alert")).expect("JSON");
    assert_eq!((v["event.code"].as_str(), v["rule.id"].as_str()), (Some("dnp3.cold_restart"), Some("9100220")));
    let verify = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .arg("verify-alerts")
        .arg(dir.join("alerts.jsonl"))
        .output()
        .expect("verify-alerts runs");
    assert!(verify.status.success(), "ECS lines chain too: {}", String::from_utf8_lossy(&verify.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
