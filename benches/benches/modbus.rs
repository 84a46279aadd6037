//! Modbus/TCP dissection over a real capture (ITI Plant1: one SCADA master polling many
//! devices, 15,387 packets): decoding alone, and decoding with `otsensor dissect`'s JSON.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otsensor::output::json::JsonBuf;
use otsensor_benches::fixtures::{dissect_count, dissect_json, find_capture, load, OwnedPacket};

fn packets() -> Vec<OwnedPacket> {
    ["modbus/iti-plant1-modbustcp.pcap", "modbus/iti-modbus_test.pcap"]
        .into_iter()
        .find_map(find_capture)
        .map(|p| load(&p))
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let pkts = packets();
    assert!(dissect_count(&pkts) > 0, "no Modbus capture found");
    let mut g = c.benchmark_group("dissectors/modbus");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("parse", |b| b.iter(|| dissect_count(&pkts)));
    g.finish();
    let mut g = c.benchmark_group("sensor/modbus");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    let mut buf = JsonBuf::new();
    g.bench_function("json", |b| b.iter(|| dissect_json(&pkts, &mut buf)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
