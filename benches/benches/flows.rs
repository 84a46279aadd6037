//! The flow table and the TCP reassembler under the loads of [`otsensor_benches::gen`]:
//! flows found (long-lived polling), missed and inserted (a SYN flood with room for every
//! flow), missed with an eviction each (the same flood in a small table, and a mid-stream
//! flood whose every segment is a Modbus request to dissect); and one direction's
//! reassembly in order, out of order, and with holes.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use otsensor_benches::fixtures::OwnedPacket;
use otsensor_benches::gen::hostile::{flood_into, long_lived_into, Flood};
use otsensor_benches::gen::{Frames, Plan, Proto};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Pdu, Timestamp};
use otsensor_dissectors::tcp::{Accepted, HalfStream};

/// Generated frames kept in memory, so that criterion times the engine, not the disk.
#[derive(Default)]
struct InMemory(Vec<OwnedPacket>);

impl Frames for InMemory {
    fn frame(&mut self, ts_us: u64, frame: &[u8]) -> std::io::Result<()> {
        let ts = Timestamp { secs: (ts_us / 1_000_000) as i64, nanos: (ts_us % 1_000_000) as u32 * 1000 };
        let index = self.0.len() as u64 + 1;
        self.0.push(OwnedPacket { ts, index, linktype: 1, data: frame.to_vec() });
        Ok(())
    }
    fn packets(&self) -> u64 {
        self.0.len() as u64
    }
}

const PACKETS: u64 = 200_000;
const START_US: u64 = 1_700_000_000_000_000;

fn run(engine: &mut Engine, pkts: &[OwnedPacket]) -> u64 {
    let mut n = 0u64;
    let mut sink = |_: &Pdu<'_>| n += 1;
    for p in pkts {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
    }
    n
}

fn flow_table(c: &mut Criterion) {
    let mut long = InMemory::default();
    long_lived_into(10_000, PACKETS, 1, START_US, &mut long).unwrap_or_default();
    let plan = Plan { proto: Proto::Modbus, masters: 4, devices: 40, packets: PACKETS, seed: 1, start_us: START_US };
    let mut flood = InMemory::default();
    flood_into(&plan, Flood::Syn, 9, &mut flood).unwrap_or_default();
    // Each spoofed segment a whole Modbus request: a flow created, dissected and evicted.
    let mut midstream = InMemory::default();
    flood_into(&plan, Flood::Midstream, 9, &mut midstream).unwrap_or_default();
    let mut g = c.benchmark_group("dissectors/flowtable");
    let cases = [
        ("hit", &long.0, 1 << 20),
        ("miss_insert", &flood.0, 1 << 20),
        ("evict", &flood.0, 4096),
        ("evict_midstream", &midstream.0, 4096),
    ];
    for (name, pkts, max_flows) in cases {
        g.throughput(Throughput::Elements(pkts.len() as u64));
        let config = EngineConfig { max_flows, ..EngineConfig::default() };
        g.bench_function(name, |b| {
            b.iter_batched_ref(|| Engine::new(config.clone()), |e| run(e, pkts), BatchSize::LargeInput)
        });
    }
    g.finish();
}

/// One direction's segments of 64 bytes from sequence number 1000.
fn segments(n: u32) -> Vec<(u32, Vec<u8>)> {
    (0..n).map(|i| (1000 + 64 * i, vec![i as u8; 64])).collect()
}

/// Reassembles `segs` as the engine does (skipping a hole when the queue is full); returns
/// the bytes delivered.
fn reassemble(segs: &[(u32, Vec<u8>)]) -> usize {
    let mut h = HalfStream::default();
    let mut n = 0;
    for (seq, d) in segs {
        match h.accept(*seq, false, false, d) {
            Accepted::Data(x) | Accepted::Late(x) | Accepted::AfterGap { data: x, .. } => n += x.len(),
            Accepted::Queued if h.over_limit() => {
                h.skip_hole();
            }
            _ => {}
        }
        while let Some(x) = h.pop_ready() {
            n += x.len();
        }
    }
    n
}

fn reassembler(c: &mut Criterion) {
    let in_order = segments(10_000);
    // Each pair swapped: every other segment waits in the queue for one packet.
    let mut out_of_order = in_order.clone();
    for pair in out_of_order.chunks_exact_mut(2) {
        pair.swap(0, 1);
    }
    // Every eighth segment lost on the mirror port.
    let gaps: Vec<_> = in_order.iter().enumerate().filter(|(i, _)| i % 8 != 7).map(|(_, s)| s.clone()).collect();
    let mut g = c.benchmark_group("dissectors/tcp/reassemble");
    for (name, segs) in [("in_order", &in_order), ("out_of_order", &out_of_order), ("gaps", &gaps)] {
        g.throughput(Throughput::Bytes(segs.iter().map(|(_, d)| d.len() as u64).sum()));
        g.bench_function(name, |b| b.iter(|| reassemble(segs)));
    }
    g.finish();
}

criterion_group!(benches, flow_table, reassembler);
criterion_main!(benches);
