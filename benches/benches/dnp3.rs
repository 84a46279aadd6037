//! Placeholder until the dnp3 bench lands.

fn main() {}
