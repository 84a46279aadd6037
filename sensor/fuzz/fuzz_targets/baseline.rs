//! Fuzz target `baseline`: see `otsensor::fuzz_support::baseline`, which the stable harness
//! (`sensor/tests/fuzz_corpus.rs`) also runs over the committed seeds and regressions.
//! Run: `cargo +nightly fuzz run baseline` (from sensor/fuzz)

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = otsensor::fuzz_support::baseline(data);
});
