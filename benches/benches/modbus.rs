//! Placeholder until the modbus bench lands.

fn main() {}
