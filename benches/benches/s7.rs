//! `dissectors/s7comm/parse`: the engine (L2-L4, TCP reassembly, TPKT/COTP, S7comm) over real
//! S7 captures held in memory, in packets per second; `dissectors/s7comm_plus/parse` over an
//! S7-1200 TIA Portal session. The captures come from the shared corpus (`../shared/pcaps`);
//! a missing capture is reported and skipped.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use otsensor::capture::Capture;
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Pdu, Timestamp};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps");

/// A captured packet, copied out of the capture file.
struct Packet {
    ts: Timestamp,
    index: u64,
    linktype: u32,
    data: Vec<u8>,
}

fn load(rel: &str) -> Option<Vec<Packet>> {
    let path = Path::new(SHARED).join(rel);
    let cap = match Capture::open(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("notice: {} not benchmarked: {e}", path.display());
            return None;
        }
    };
    let reader = cap.reader().ok()?;
    let packets: Vec<Packet> = reader
        .map_while(Result::ok)
        .map(|p| Packet { ts: p.ts, index: p.index, linktype: p.linktype, data: p.data.to_vec() })
        .collect();
    Some(packets)
}

/// Runs a fresh engine over `packets`; returns the number of PDUs.
fn run(packets: &[Packet]) -> u64 {
    let mut engine = Engine::new(EngineConfig::default());
    let mut pdus = 0u64;
    let mut sink = |pdu: &Pdu<'_>| {
        black_box(pdu.body.func());
        pdus += 1;
    };
    for p in packets {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
    }
    pdus
}

fn bench(c: &mut Criterion, name: &str, rel: &str) {
    let Some(packets) = load(rel) else { return };
    let pdus = run(&packets);
    assert!(pdus > 0, "{rel}: no PDU decoded");
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("parse", |b| b.iter(|| run(black_box(&packets))));
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
