//! `gencap`: writes a large realistic ICS capture for benchmarks, or a hostile one.
//!
//! ```text
//! gencap --proto modbus --packets 3000000 --masters 4 --devices 40 --seed 1 -o modbus-3M.pcap
//! gencap --proto plant --packets 1000000 -o plant-1M.pcap           # Modbus, DNP3, S7, IT, reconnects
//! gencap --load syn-flood --per-legit 9 --packets 1000000 -o syn.pcap  # 9 flood frames per legit one
//! gencap --load midstream-flood --packets 1000000 -o mid.pcap
//! gencap --load half-open --packets 1000000 -o half.pcap
//! gencap --load long-lived --flows 1000000 --packets 5000000 -o long.pcap
//! # A plant's polling, 300 s clean, then SYN floods, mid-stream floods, endless
//! # out-of-order data, contradictory segments, unfinished DNP3 fragments, absurd S7 item
//! # counts, Modbus lengths 0 and 65535 and an ARP storm until 1 M hostile flows, and one
//! # Modbus write from a new master halfway (the hostile-traffic tests' capture):
//! gencap --proto plant --load hostile --flows 1000000 --clean-secs 300 --packets 1500000 -o hostile.pcap
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use otsensor_benches::gen::hostile::{flood_into, hostile_into, long_lived_into, Flood, HostileMix};
use otsensor_benches::gen::{generate_into, PcapWriter, Plan, Proto};

/// What to write: the plan's polling alone, with a flood, or many long-lived flows.
enum Load {
    Plain,
    Flood(Flood),
    LongLived,
    Hostile,
}

fn main() -> ExitCode {
    let mut plan = Plan {
        proto: Proto::Modbus,
        masters: 4,
        devices: 40,
        packets: 1_000_000,
        seed: 1,
        start_us: 1_700_000_000_000_000,
    };
    let mut load = Load::Plain;
    let mut per_legit = 9u32;
    let mut flows = 100_000u32;
    let mut per_legit_set = false;
    let mut clean_secs = 300u64;
    let mut output = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_default();
        match a.as_str() {
            "--proto" => match Proto::parse(&val()) {
                Some(p) => plan.proto = p,
                None => return usage("--proto takes modbus, dnp3, s7 or plant"),
            },
            "--load" => {
                load = match val().as_str() {
                    "plain" => Load::Plain,
                    "long-lived" => Load::LongLived,
                    "hostile" => Load::Hostile,
                    other => match Flood::parse(other) {
                        Some(f) => Load::Flood(f),
                        None => {
                            return usage(
                                "--load takes plain, syn-flood, midstream-flood, half-open, long-lived or hostile",
                            )
                        }
                    },
                }
            }
            "--per-legit" => {
                per_legit = val().parse().unwrap_or(per_legit);
                per_legit_set = true;
            }
            "--clean-secs" => clean_secs = val().parse().unwrap_or(clean_secs),
            "--flows" => flows = val().parse().unwrap_or(flows),
            "--packets" => plan.packets = val().parse().unwrap_or(plan.packets),
            "--masters" => plan.masters = val().parse::<u32>().unwrap_or(plan.masters).max(1),
            "--devices" => plan.devices = val().parse::<u32>().unwrap_or(plan.devices).clamp(1, 60_000),
            "--seed" => plan.seed = val().parse().unwrap_or(plan.seed),
            "-o" | "--output" => output = Some(val()),
            _ => return usage(&format!("unknown argument {a}")),
        }
    }
    let Some(path) = output else { return usage("-o FILE is required") };
    let written = File::create(&path).and_then(|file| {
        let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;
        let note = match load {
            Load::Plain => {
                generate_into(&plan, &mut w)?;
                String::new()
            }
            Load::Flood(f) => format!(", {} flood flows", flood_into(&plan, f, per_legit, &mut w)?),
            Load::LongLived => {
                long_lived_into(flows, plan.packets, plan.seed, plan.start_us, &mut w)?;
                format!(", {flows} long-lived flows")
            }
            Load::Hostile => {
                let mix = HostileMix {
                    per_legit: if per_legit_set { per_legit } else { 40 },
                    clean_us: clean_secs * 1_000_000,
                    flows: u64::from(flows),
                };
                let r = hostile_into(&plan, &mix, &mut w)?;
                format!(", hostile: {r:?}")
            }
        };
        let n = w.packets;
        w.finish()?;
        Ok((n, note))
    });
    match written {
        Ok((n, note)) => {
            eprintln!("gencap: wrote {n} packets to {path}{note}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gencap: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!(
        "gencap: {msg}\nusage: gencap [--proto modbus|dnp3|s7|plant] [--load plain|syn-flood|midstream-flood|half-open|long-lived|hostile] \
         [--per-legit N] [--flows N] [--clean-secs N] [--packets N] [--masters N] [--devices N] [--seed N] -o FILE"
    );
    ExitCode::from(2)
}
