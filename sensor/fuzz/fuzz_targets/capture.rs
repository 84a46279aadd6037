//! Fuzzes the capture-file reader (pcap, pcapng) and everything after it: each packet goes
//! through the engine, so L2-L4 decoding, reassembly and the dissectors are reached too
//! (`otsensor::fuzz_support::capture`, which the stable harness `sensor/tests/fuzz_corpus.rs`
//! also runs).
//!
//! Seed: `sensor/fuzz/seed.sh` (whole small captures of `pcaps/` and the shared corpus)
//! Run:  `cargo +nightly fuzz run capture`

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = otsensor::fuzz_support::capture(data);
});
