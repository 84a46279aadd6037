//! `dissectors/s7comm/parse`: the engine (L2-L4, TCP reassembly, TPKT/COTP, S7comm) over real
//! S7 captures held in memory, in packets per second; `dissectors/s7comm_plus/parse` over an
//! S7-1200 TIA Portal session. The captures come from the shared corpus (`../shared/pcaps`);
//! a missing capture is reported and skipped.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otsensor_benches::fixtures::{dissect_count, find_capture, load, OwnedPacket};

fn packets(rel: &str) -> Option<Vec<OwnedPacket>> {
    match find_capture(rel) {
        Some(p) => Some(load(&p)),
        None => {
            eprintln!("notice: {rel} not found; not benchmarked");
            None
        }
    }
}

fn bench(c: &mut Criterion, name: &str, rel: &str) {
    let Some(packets) = packets(rel) else { return };
    let pdus = dissect_count(&packets);
    assert!(pdus > 0, "{rel}: no PDU decoded");
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("parse", |b| b.iter(|| dissect_count(black_box(&packets))));
    g.finish();
}

fn s7(c: &mut Criterion) {
    // 10,171 packets of libnodave read/write var polling (Wireshark wiki sample).
    bench(c, "dissectors/s7comm", "s7comm/wireshark-wiki/s7comm_varservice_libnodavedemo_bench.pcap");
    // 2,590 packets of TIA Portal <-> S7-1200 S7comm-plus.
    bench(c, "dissectors/s7comm_plus", "s7comm/s7-1200-1500/emreekin-cotp-tia.pcap");
}

criterion_group!(benches, s7);
criterion_main!(benches);
