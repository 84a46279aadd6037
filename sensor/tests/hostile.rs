//! Hostile traffic under a memory cap (issue 15): a plant's polling mixed with a million
//! distinct hostile flows (SYN floods, Modbus mid-stream floods, endless out-of-order data,
//! overlapping and contradictory segments, DNP3 fragments that never finish, S7 jobs with
//! absurd item counts, Modbus lengths of 0 and 65535, an ARP storm) and one real attack, a
//! Modbus write from a master never seen before. The capture is generated here
//! (`otsensor_gen::hostile`, what `gencap --load hostile` writes), otsensor runs on it as a
//! child process under `--memory-cap`, and the test measures the child's peak RSS itself
//! (`wait4`'s `ru_maxrss`): it must stay under the cap, the run must succeed, what was evicted
//! must be counted, and the legitimate traffic must still be dissected (every PDU of it) and
//! scored (the attack's alerts are there).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use otsensor::capture::FileReader;
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::Pdu;
use otsensor_gen::hostile::{hostile_into, HostileMix, HostileReport, ATTACK_MASTER};
use otsensor_gen::{generate, PcapWriter, Plan, Proto};
use serde_json::Value;

/// The cap the tests run under: small enough that a million flows, a thousand reordered
/// streams each holding its 64 KiB, and a quarter of a million spoofed clients would each
/// overrun it on their own (the capture file alone is some 200 MB).
const CAP: u64 = 64 << 20;
/// Seconds of clean polling before the hostile traffic starts: `replay` learns from them.
const CLEAN_SECS: u64 = 300;

struct Hostile {
    dir: PathBuf,
    path: PathBuf,
    report: HostileReport,
}

/// The tests of this module; the last to finish removes the capture (some 200 MB). A static
/// is never dropped, so they are counted instead; a failed test leaves the capture in Cargo's
/// test scratch directory for a look.
const TESTS: usize = 6;
static FINISHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn finished() {
    if FINISHED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == TESTS {
        let _ = std::fs::remove_dir_all(&hostile().dir);
    }
}

/// The hostile capture, generated once for all the tests of this module.
fn hostile() -> &'static Hostile {
    static H: OnceLock<Hostile> = OnceLock::new();
    H.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hostile.pcap");
        let plan = Plan {
            proto: Proto::Plant,
            masters: 4,
            devices: 40,
            packets: 1_500_000,
            seed: 1,
            start_us: 1_700_000_000_000_000,
        };
        let mix = HostileMix { per_legit: 40, clean_us: CLEAN_SECS * 1_000_000, flows: 1_000_000 };
        let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, File::create(&path).unwrap())).unwrap();
        let report = hostile_into(&plan, &mix, &mut w).unwrap();
        w.finish().unwrap();
        Hostile { dir, path, report }
    })
}

/// What a child process did: its exit, what it wrote to stderr, its peak RSS in bytes.
struct Measured {
    ok: bool,
    stderr: String,
    peak_rss: u64,
}

/// Runs otsensor with `args`, handing each line of its stdout to `line`, and measures its
/// peak resident set size as the kernel accounted it (`ru_maxrss` from `wait4`: every page
/// it ever had resident, not a sample).
///
/// Not spawned from this process: `Command` spawns with `CLONE_VM` (posix_spawn), and at
/// `exec` the kernel folds the high-water mark of the memory the child shared until then,
/// this test process's, into the child's `ru_maxrss`: with other tests running beside these,
/// that is hundreds of MiB that are not otsensor's. So a small process, this test binary
/// started afresh on [`measure_helper`] alone, spawns otsensor, waits for it with `wait4`
/// and writes its exit status and `ru_maxrss` to a file; otsensor's stdout comes straight
/// through to `line` (with the harness's few lines of its own, which callers tell apart).
fn run_measured(args: &[&str], mut line: impl FnMut(&str)) -> Measured {
    let name = args.first().copied().unwrap_or("run");
    let (err_path, rss_path) =
        (hostile().dir.join(format!("stderr-{name}")), hostile().dir.join(format!("rss-{name}")));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "hostile::measure_helper", "--quiet", "--test-threads", "1"])
        .env("OTSENSOR_MEASURE_ARGS", args.join("\u{1f}"))
        .env("OTSENSOR_MEASURE_OUT", &rss_path)
        .stdout(Stdio::piped())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    for l in BufReader::new(out).lines() {
        line(&l.unwrap());
    }
    assert!(child.wait().unwrap().success(), "the measuring helper failed");
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let measured = std::fs::read_to_string(&rss_path).unwrap_or_else(|e| panic!("no measurement: {e}: {stderr}"));
    let (status, kib) = measured.trim().split_once(' ').unwrap();
    Measured { ok: status == "0", stderr, peak_rss: kib.parse::<u64>().unwrap() * 1024 }
}

/// Says the command's peak RSS, and fails unless it succeeded within [`CAP`].
fn assert_ran_under_the_cap(m: &Measured, command: &str) {
    eprintln!("{command} --memory-cap {:.0} MiB: peak RSS {:.1} MiB", mib(CAP), mib(m.peak_rss));
    assert!(m.ok, "{command}: {}", m.stderr);
    assert!(m.peak_rss < CAP, "{command}: peak RSS {:.1} MiB over the {:.0} MiB cap", mib(m.peak_rss), mib(CAP));
}

/// The measuring helper of [`run_measured`]: spawns otsensor with the arguments it is given,
/// waits for it, and writes its wait status and `ru_maxrss` (KiB). Does nothing when not run
/// as the helper.
#[test]
#[ignore = "a helper: the hostile tests run it to measure otsensor from a small process"]
// The child is waited for by `wait4`, which `Child::wait` cannot do with the resource usage.
#[allow(clippy::zombie_processes)]
fn measure_helper() {
    let (Ok(args), Ok(out)) = (std::env::var("OTSENSOR_MEASURE_ARGS"), std::env::var("OTSENSOR_MEASURE_OUT")) else {
        return;
    };
    let child = Command::new(env!("CARGO_BIN_EXE_otsensor")).args(args.split('\u{1f}')).spawn().unwrap();
    let (status, usage) = wait4(child.id());
    std::fs::write(out, format!("{status} {}", usage.ru_maxrss)).unwrap();
}

/// Waits for the child `pid` and returns its wait status and resource usage. (`Child::wait`
/// gives no resource usage; `getrusage(RUSAGE_CHILDREN)` would mix in the children of the
/// other tests running at the same time.)
#[allow(unsafe_code)]
fn wait4(pid: u32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: `rusage` is plain old data for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live, writable locals of the right types; `pid` is a
        // child of this process not yet waited for (its `Child` is never waited on).
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            return (status, usage);
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
}

/// A number after `label` in the summary otsensor wrote to stderr.
fn summary_number(stderr: &str, label: &str) -> u64 {
    let at = stderr.find(label).unwrap_or_else(|| panic!("no {label:?} in the summary: {stderr}"));
    let digits: String = stderr[at + label.len()..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {label:?}: {stderr}"))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// A plant master (10.1.0.10 to 10.1.0.13) or device (10.2.0.0/16), as the generator
/// numbers them: not a spoofed source (100.64.0.0/10), not the attacker (10.1.0.66).
fn is_plant(ip: IpAddr) -> bool {
    let IpAddr::V4(v4) = ip else { return false };
    let o = v4.octets();
    (o[0], o[1]) == (10, 2) || (o[..3] == [10, 1, 0] && (10..=13).contains(&o[3]))
}

/// Whether a PDU is the plant's own traffic: between a plant master and a plant device,
/// neither end spoofed nor the attacker.
fn legitimate(src: IpAddr, dst: IpAddr) -> bool {
    is_plant(src) && is_plant(dst)
}

/// PDUs of the plant's own conversations in the capture, dissected in this process by an
/// engine with no bound in reach and fed only the plant's packets: what the capped sensor
/// must still find among the hostile traffic.
fn legitimate_pdus(path: &Path) -> u64 {
    let mut engine = Engine::new(EngineConfig { max_flows: 1 << 20, ..EngineConfig::default() });
    let mut n = 0u64;
    let mut sink = |p: &Pdu<'_>| n += u64::from(legitimate(p.src.ip, p.dst.ip));
    let mut r = FileReader::open(path).unwrap();
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        // IPv4 over Ethernet: the addresses at bytes 26..34.
        let (Some(s), Some(d)) = (p.data.get(26..30), p.data.get(30..34)) else { continue };
        let ip = |b: &[u8]| IpAddr::from([b[0], b[1], b[2], b[3]]);
        if p.data.get(12..14) == Some(&[8, 0]) && legitimate(ip(s), ip(d)) {
            engine.process(p.ts, p.index, p.linktype, p.data, &mut sink);
        }
    }
    n
}

#[test]
fn the_hostile_capture_holds_every_kind_of_hostile_traffic_and_a_million_flows() {
    let r = &hostile().report;
    assert!(r.flows >= 1_000_000, "{r:?}");
    for (kind, n) in [
        ("SYN flood", r.syn),
        ("mid-stream flood", r.midstream),
        ("out-of-order", r.out_of_order),
        ("overlapping", r.overlapping),
        ("unfinished DNP3", r.dnp3_unfinished),
        ("absurd S7", r.s7_absurd),
        ("Modbus bad length", r.modbus_bad_length),
        ("ARP storm", r.arp),
    ] {
        assert!(n >= 10_000, "{kind}: {n} in {r:?}");
    }
    assert!(r.attack_pkt > 0 && r.legit_frames > 100_000, "{r:?}");
    finished();
}

#[test]
fn dissect_under_a_memory_cap_finds_every_pdu_of_the_plant_among_a_million_hostile_flows() {
    let h = hostile();
    let path = h.path.to_str().unwrap();
    let cap = CAP.to_string();
    let mut legit = 0u64;
    let mut pdus = 0u64;
    let m = run_measured(&["dissect", "--no-progress", "--memory-cap", &cap, path], |line| {
        if !line.starts_with('{') {
            return; // the measuring helper's harness
        }
        pdus += 1;
        let v: Value = serde_json::from_str(line).unwrap();
        let ip = |k: &str| v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
        if let (Some(s), Some(d)) = (ip("src_ip"), ip("dst_ip")) {
            legit += u64::from(legitimate(s, d));
        }
    });
    assert_ran_under_the_cap(&m, "dissect");
    assert!(summary_number(&m.stderr, "flows:") >= 1_000_000, "{}", m.stderr);
    // The summary's line: "memory bounds: N flows evicted (table full), M reassembly buffers
    // shed (B bytes) ...": both bounds bit, and said so.
    assert!(summary_number(&m.stderr, "memory bounds:") > 900_000, "flows evicted: {}", m.stderr);
    assert!(summary_number(&m.stderr, "flows evicted (table full),") > 0, "reassembly buffers shed: {}", m.stderr);
    let want = legitimate_pdus(&h.path);
    assert!(want > 50_000, "{want}");
    assert!(pdus > want);
    assert_eq!(legit, want, "PDUs of the plant's own conversations");

    // The control: without the cap, the same run needs more than the cap (so the cap is what
    // kept it down, not a capture too small to matter).
    let free = run_measured(&["dissect", "--no-progress", "--format", "none", "-q", path], |_| {});
    eprintln!("dissect with no cap: peak RSS {:.1} MiB", mib(free.peak_rss));
    assert!(free.ok, "{}", free.stderr);
    assert!(free.peak_rss > CAP, "with no cap, {:.1} MiB: the capture does not test the cap", mib(free.peak_rss));
    finished();
}

#[test]
fn replay_under_a_memory_cap_still_alerts_on_the_write_from_a_new_master() {
    let h = hostile();
    let alerts = h.dir.join("alerts.jsonl");
    let m = run_measured(
        &[
            "replay",
            "--no-progress",
            "--memory-cap",
            "64M",
            "--learn-for",
            &format!("{}s", CLEAN_SECS - 10),
            "--alerts",
            alerts.to_str().unwrap(),
            h.path.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_ran_under_the_cap(&m, "replay");
    assert!(summary_number(&m.stderr, "flows:") >= 1_000_000, "{}", m.stderr);
    let text = std::fs::read_to_string(&alerts).unwrap();
    assert_attack_alerted(&text);
    // The floods are seen for what they are, too.
    assert!(text.contains("\"id\":\"net.syn_flood\""), "no SYN flood alert");
    finished();
}

#[test]
fn detect_under_a_memory_cap_against_a_clean_baseline_still_alerts_on_the_write() {
    let h = hostile();
    // The same plant, another stretch of its polling, clean: the baseline a site would have.
    let clean = h.dir.join("clean.pcap");
    let plan = Plan {
        proto: Proto::Plant,
        masters: 4,
        devices: 40,
        packets: 200_000,
        seed: 1,
        start_us: 1_690_000_000_000_000,
    };
    generate(&plan, BufWriter::new(File::create(&clean).unwrap())).unwrap();
    let baseline = h.dir.join("clean-baseline.json");
    let learned = Command::new(env!("CARGO_BIN_EXE_otsensor"))
        .args(["learn", "--no-progress", "-q", "--fresh", "--baseline"])
        .args([&baseline, &clean])
        .output()
        .unwrap();
    assert!(learned.status.success(), "{}", String::from_utf8_lossy(&learned.stderr));
    let mut alerts = String::new();
    let m = run_measured(
        &[
            "detect",
            "--no-progress",
            "--memory-cap",
            "64M",
            "--baseline",
            baseline.to_str().unwrap(),
            h.path.to_str().unwrap(),
        ],
        |l| {
            if l.starts_with('{') {
                alerts.push_str(l);
                alerts.push('\n');
            }
        },
    );
    assert_ran_under_the_cap(&m, "detect");
    assert!(summary_number(&m.stderr, "flows:") >= 1_000_000, "{}", m.stderr);
    assert_attack_alerted(&alerts);
    finished();
}

#[test]
fn learn_under_a_memory_cap_bounds_the_baseline_and_keeps_every_pair_of_the_plant() {
    let h = hostile();
    let baseline = h.dir.join("learned.json");
    let m = run_measured(
        &[
            "learn",
            "--no-progress",
            "--fresh",
            "--memory-cap",
            "64M",
            "--baseline",
            baseline.to_str().unwrap(),
            h.path.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_ran_under_the_cap(&m, "learn");
    // A quarter of a million spoofed masters were not learned, and the summary says so.
    assert!(summary_number(&m.stderr, "memory bounds:") > 200_000, "{}", m.stderr);
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    let pairs = b["pairs"].as_array().unwrap();
    assert!(pairs.len() < 5_000, "{} pairs learned under the cap", pairs.len());
    let ip = |p: &Value, k: &str| p[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
    let plant =
        pairs.iter().filter(|p| matches!((ip(p, "client"), ip(p, "server")), (Some(c), Some(s)) if legitimate(c, s)));
    // The plant's 40 devices, each polled by its master: every pair learned (the clean
    // period comes first, and a pair once learned is never pushed out).
    assert_eq!(plant.count(), 40);
    finished();
}

/// The attack's alerts, by rule id: a service never seen between the new master and the
/// device, and a write on a pair that never wrote.
fn assert_attack_alerted(alerts: &str) {
    let attacker = IpAddr::from(ATTACK_MASTER).to_string();
    let of_attack: Vec<Value> = alerts
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| a["src_ip"] == attacker.as_str() && a["dst_ip"] == "10.2.0.2")
        .collect();
    let ids: Vec<(&str, u64)> =
        of_attack.iter().map(|a| (a["id"].as_str().unwrap_or(""), a["rule_id"].as_u64().unwrap_or(0))).collect();
    for want in [("net.new_service", 9_100_050), ("modbus.write_on_read_only_pair", 9_100_104)] {
        assert!(ids.contains(&want), "{want:?} missing from the attack's alerts {ids:?}");
    }
}

#[test]
fn run_under_a_memory_cap_learns_then_alerts_on_the_write_through_its_pipeline() {
    let h = hostile();
    let (baseline, alerts) = (h.dir.join("run-baseline.json"), h.dir.join("run-alerts.jsonl"));
    let m = run_measured(
        &[
            "run",
            "--read",
            h.path.to_str().unwrap(),
            "--workers",
            "2",
            "--memory-cap",
            "64M",
            "--learn-for",
            &format!("{}s", CLEAN_SECS - 10),
            "--baseline",
            baseline.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_ran_under_the_cap(&m, "run");
    assert!(summary_number(&m.stderr, "flows:") >= 1_000_000, "{}", m.stderr);
    assert!(summary_number(&m.stderr, "flows evicted (table full),") > 0, "reassembly buffers shed: {}", m.stderr);
    assert_attack_alerted(&std::fs::read_to_string(&alerts).unwrap());
    finished();
}
