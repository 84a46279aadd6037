//! Benchmarks of otsensor; see `benches/` for the criterion targets.
