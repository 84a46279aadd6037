//! DNP3 dissection over real captures: the EmreEkin simulator session `DNP3Value.pcap` (1,371
//! packets, all object families) and the 5.5 h `dnp3-dataset-2017` baseline (class polls,
//! confirms, select/operate, cold restarts, a SYN flood), decoding alone and with JSON.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otsensor::output::json::{write_pdu, JsonBuf};
use otsensor_benches::fixtures::{find_capture, load, OwnedPacket};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::Pdu;

const CAPTURES: [(&str, &str); 2] = [
    ("simulator", "dnp3/emreekin/DNP3Value.pcap"),
    ("baseline-5h", "attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap"),
];

fn parse_all(pkts: &[OwnedPacket]) -> u64 {
    let mut engine = Engine::new(EngineConfig::default());
    let mut n = 0u64;
    let mut sink = |_: &Pdu<'_>| n += 1;
    for p in pkts {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
    }
    n
}

fn bench(c: &mut Criterion) {
    let sets: Vec<(&str, Vec<OwnedPacket>)> =
        CAPTURES.iter().filter_map(|(name, rel)| find_capture(rel).map(|p| (*name, load(&p)))).collect();
    assert!(!sets.is_empty(), "no DNP3 capture found");
    let mut g = c.benchmark_group("dissectors/dnp3/parse");
    for (name, pkts) in &sets {
        assert!(parse_all(pkts) > 0, "{name}: no DNP3 PDU decoded");
        g.throughput(Throughput::Elements(pkts.len() as u64));
        g.bench_function(*name, |b| b.iter(|| parse_all(pkts)));
    }
    g.finish();
    let mut g = c.benchmark_group("sensor/dnp3/json");
    for (name, pkts) in &sets {
        g.throughput(Throughput::Elements(pkts.len() as u64));
        g.bench_function(*name, |b| {
            let mut buf = JsonBuf::new();
            b.iter(|| {
                let mut engine = Engine::new(EngineConfig::default());
                let mut bytes = 0usize;
                let mut sink = |pdu: &Pdu<'_>| {
                    write_pdu(&mut buf, pdu);
                    if buf.len() > 1 << 16 {
                        bytes += buf.len();
                        buf.clear();
                    }
                };
                for p in pkts {
                    engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
                }
                bytes
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
