//! Detection throughput: a baseline learned on the first half of a capture's packets, the
//! second half scored against it (engine and detector together, as `otsensor detect` runs).
//!
//! - `models/detect/modbus`: the ITI Plant1 capture (one SCADA master, many devices);
//! - `models/detect/modbus_generated`: a `gencap` Modbus capture, when `OTSENSOR_BENCH_CAPTURE`
//!   names one or `benches/out/modbus-3000000.pcap` exists (`benches/compare.sh` makes it);
//! - `dissectors/modbus/engine_only` on the same half, to read the detector's own share;
//! - `models/{modbus,dnp3,s7}/observe`: scoring alone, one observation at a time
//!   (`Detector::observe`), over the observations of a `gencap` capture's second half recorded
//!   beforehand, against the baseline learned from its first half: in observations per second.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otsensor_benches::fixtures::{find_capture, generate, load, workspace_root, OwnedPacket};
use otsensor_benches::gen::{Plan, Proto};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Notice, Pdu, Sink};
use otsensor_models::{Alert, Baseline, Detector, Learner, ObservationLog};

struct Learn<'a>(&'a mut Learner);

impl Sink for Learn<'_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self.0.pdu(pdu);
    }
    fn notice(&mut self, n: &Notice) {
        self.0.notice(n);
    }
}

struct Detect<'a>(&'a mut Detector);

impl Sink for Detect<'_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self.0.pdu(pdu);
    }
    fn notice(&mut self, n: &Notice) {
        self.0.notice(n);
    }
}

fn learn(pkts: &[OwnedPacket]) -> Baseline {
    let mut learner = Learner::new();
    let mut engine = Engine::new(EngineConfig::default());
    for p in pkts {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut Learn(&mut learner));
    }
    let mut b = learner.finish();
    Baseline::from_json(&b.to_json()).unwrap_or_else(|e| panic!("baseline: {e}"))
}

fn bench_capture(c: &mut Criterion, name: &str, pkts: &[OwnedPacket]) {
    let half = pkts.len() / 2;
    let (first, second) = pkts.split_at(half);
    let baseline = learn(first);
    let mut g = c.benchmark_group("models/detect");
    g.throughput(Throughput::Elements(second.len() as u64));
    g.sample_size(10);
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut detector = Detector::new(&baseline).unwrap_or_else(|e| panic!("detector: {e}"));
            let mut engine = Engine::new(EngineConfig::default());
            let mut alerts: Vec<Alert> = Vec::new();
            for p in second {
                engine.process(p.ts, p.index, p.linktype, &p.data, &mut Detect(&mut detector));
            }
            detector.finish(&mut alerts);
            alerts.len()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("dissectors/modbus");
    g.throughput(Throughput::Elements(second.len() as u64));
    g.sample_size(10);
    g.bench_function(format!("engine_only_{name}"), |b| {
        b.iter(|| {
            let mut engine = Engine::new(EngineConfig::default());
            let mut n = 0u64;
            let mut sink = |_: &Pdu<'_>| n += 1;
            for p in second {
                engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
            }
            n
        })
    });
    g.finish();
}

/// Packets of each generated capture scored by `models/<proto>/observe` (its first half is
/// learned): enough for every pair's windows and polling periods to be learned.
const OBSERVE_PACKETS: u64 = 200_000;

/// The observations of `pkts`, recorded once so that the bench times scoring alone.
fn observations(pkts: &[OwnedPacket]) -> ObservationLog {
    let mut log = ObservationLog::new();
    let mut engine = Engine::new(EngineConfig::default());
    let mut sink = |pdu: &Pdu<'_>| {
        log.push(pdu);
    };
    for p in pkts {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
    }
    log
}

/// `models/<proto>/observe`: a fresh detector (made outside the timing) scores every
/// observation of the second half, one `observe` call each.
fn bench_observe(c: &mut Criterion, name: &str, proto: Proto) {
    let plan =
        Plan { proto, masters: 4, devices: 40, packets: OBSERVE_PACKETS, seed: 1, start_us: 1_700_000_000_000_000 };
    let pkts = generate(&plan);
    let (first, second) = pkts.split_at(pkts.len() / 2);
    let baseline = learn(first);
    let log = observations(second);
    assert!(!log.is_empty(), "{name}: no observation recorded");
    let mut g = c.benchmark_group(format!("models/{name}"));
    g.throughput(Throughput::Elements(log.len() as u64));
    g.sample_size(10);
    g.bench_function("observe", |b| {
        b.iter_batched(
            || Detector::new(&baseline).unwrap_or_else(|e| panic!("detector: {e}")),
            |mut detector| {
                for obs in (0..log.len()).filter_map(|i| log.get(i)) {
                    detector.observe(&obs);
                }
                detector
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn generated() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OTSENSOR_BENCH_CAPTURE") {
        return Some(PathBuf::from(p));
    }
    let p = workspace_root().join("benches/out/modbus-3000000.pcap");
    p.is_file().then_some(p)
}

fn bench(c: &mut Criterion) {
    for (name, proto) in [("modbus", Proto::Modbus), ("dnp3", Proto::Dnp3), ("s7", Proto::S7)] {
        bench_observe(c, name, proto);
    }
    let real = find_capture("modbus/iti-plant1-modbustcp.pcap").map(|p| load(&p)).unwrap_or_default();
    assert!(!real.is_empty(), "no Modbus capture found");
    bench_capture(c, "modbus", &real);
    match generated() {
        Some(p) => {
            let pkts = load(&p);
            bench_capture(c, "modbus_generated", &pkts);
        }
        None => eprintln!(
            "notice: no generated capture (set OTSENSOR_BENCH_CAPTURE or run benches/compare.sh); modbus_generated skipped"
        ),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
