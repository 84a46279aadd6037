//! Fuzzes the capture-file reader (pcap, pcapng) and everything after it: each packet goes
//! through the engine, so L2-L4 decoding, reassembly and the dissectors are reached too.
//!
//! Seed: `sensor/fuzz/seed.sh` (whole small captures of `pcaps/` and the shared corpus)
//! Run:  `cargo +nightly fuzz run capture`

#![no_main]

use libfuzzer_sys::fuzz_target;
use otsensor::capture::CaptureReader;
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::Pdu;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = CaptureReader::new(data) else { return };
    let mut engine = Engine::new(EngineConfig { max_flows: 64, ..EngineConfig::default() });
    let mut sink = |pdu: &Pdu<'_>| {
        // Touch every accessor a downstream consumer uses.
        let _ = (pdu.body.func_name(), pdu.body.flags().iter().count(), pdu.body.class(), pdu.body.critical());
        pdu.body.for_each_point(&mut |_| {});
        pdu.body.for_each_value(&mut |_| {});
    };
    for p in reader {
        match p {
            Ok(p) => engine.process(p.ts, p.index, p.linktype, p.data, &mut sink),
            Err(_) => break,
        }
    }
});
