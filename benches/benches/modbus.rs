//! Modbus/TCP dissection over a real capture (ITI Plant1: one SCADA master polling many
//! devices, 15,387 packets): decoding alone, and decoding with `otsensor dissect`'s JSON.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otsensor::output::json::{write_pdu, JsonBuf};
use otsensor_benches::fixtures::{find_capture, load, OwnedPacket};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::Pdu;

fn packets() -> Vec<OwnedPacket> {
    ["modbus/iti-plant1-modbustcp.pcap", "modbus/iti-modbus_test.pcap"]
        .into_iter()
        .find_map(find_capture)
        .map(|p| load(&p))
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let pkts = packets();
    assert!(!pkts.is_empty(), "no Modbus capture found");
    let mut g = c.benchmark_group("dissectors/modbus");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let mut engine = Engine::new(EngineConfig::default());
            let mut n = 0u64;
            let mut sink = |_: &Pdu<'_>| n += 1;
            for p in &pkts {
                engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
            }
            n
        })
    });
    g.finish();
    let mut g = c.benchmark_group("sensor/modbus");
    g.throughput(Throughput::Elements(pkts.len() as u64));
    g.bench_function("json", |b| {
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
            for p in &pkts {
                engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
            }
            bytes
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
