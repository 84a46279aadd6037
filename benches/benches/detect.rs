//! Placeholder until the detect bench lands.

fn main() {}
