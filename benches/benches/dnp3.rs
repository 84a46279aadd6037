//! DNP3 dissection over real captures: the EmreEkin simulator session `DNP3Value.pcap` (1,371
//! packets, all object families) and the 5.5 h `dnp3-dataset-2017` baseline (class polls,
//! confirms, select/operate, cold restarts, a SYN flood), decoding alone and with JSON.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otsensor::output::json::JsonBuf;
use otsensor_benches::fixtures::{dissect_count, dissect_json, find_capture, load, OwnedPacket};

const CAPTURES: [(&str, &str); 2] = [
    ("simulator", "dnp3/emreekin/DNP3Value.pcap"),
    ("baseline-5h", "attacks/dnp3-dataset-2017-baseline-coldrestart-synflood.pcap"),
];

fn bench(c: &mut Criterion) {
    let sets: Vec<(&str, Vec<OwnedPacket>)> =
        CAPTURES.iter().filter_map(|(name, rel)| find_capture(rel).map(|p| (*name, load(&p)))).collect();
    assert!(!sets.is_empty(), "no DNP3 capture found");
    let mut g = c.benchmark_group("dissectors/dnp3/parse");
    for (name, pkts) in &sets {
        assert!(dissect_count(pkts) > 0, "{name}: no DNP3 PDU decoded");
        g.throughput(Throughput::Elements(pkts.len() as u64));
        g.bench_function(*name, |b| b.iter(|| dissect_count(pkts)));
    }
    g.finish();
    let mut g = c.benchmark_group("sensor/dnp3/json");
    for (name, pkts) in &sets {
        g.throughput(Throughput::Elements(pkts.len() as u64));
        let mut buf = JsonBuf::new();
        g.bench_function(*name, |b| b.iter(|| dissect_json(pkts, &mut buf)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
