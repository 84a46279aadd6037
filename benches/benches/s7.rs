//! Placeholder until the s7 bench lands.

fn main() {}
