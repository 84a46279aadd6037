//! `gencap`: writes a large realistic ICS capture for benchmarks.
//!
//! ```text
//! gencap --proto modbus --packets 3000000 --masters 4 --devices 40 --seed 1 -o modbus-3M.pcap
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use otsensor_benches::gen::{generate, Plan, Proto};

fn main() -> ExitCode {
    let mut plan = Plan {
        proto: Proto::Modbus,
        masters: 4,
        devices: 40,
        packets: 1_000_000,
        seed: 1,
        start_us: 1_700_000_000_000_000,
    };
    let mut output = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--proto" => match Proto::parse(&val()) {
                Some(p) => plan.proto = p,
                None => return usage("--proto takes modbus, dnp3 or s7"),
            },
            "--packets" => plan.packets = val().parse().unwrap_or(plan.packets),
            "--masters" => plan.masters = val().parse::<u32>().unwrap_or(plan.masters).max(1),
            "--devices" => plan.devices = val().parse::<u32>().unwrap_or(plan.devices).clamp(1, 60_000),
            "--seed" => plan.seed = val().parse().unwrap_or(plan.seed),
            "-o" | "--output" => output = Some(val()),
            _ => return usage(&format!("unknown argument {a}")),
        }
    }
    let Some(path) = output else { return usage("-o FILE is required") };
    let file = match File::create(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gencap: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match generate(&plan, BufWriter::with_capacity(1 << 20, file)) {
        Ok(n) => {
            eprintln!("gencap: wrote {n} packets to {path}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gencap: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("gencap: {msg}\nusage: gencap [--proto modbus|dnp3|s7] [--packets N] [--masters N] [--devices N] [--seed N] -o FILE");
    ExitCode::from(2)
}
