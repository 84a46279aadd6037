//! `readlimit FILE`: walks a classic pcap's records with pcap-parser's streaming reader and
//! does nothing else: the upper bound any tool reading the file can reach. Timed from opening
//! the file, as `otsensor` is. Prints one line of JSON.

use std::fs::File;
use std::process::ExitCode;
use std::time::Instant;

use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: readlimit FILE.pcap");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("readlimit: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut reader = match LegacyPcapReader::new(1 << 20, file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("readlimit: {path}: {e:?}");
            return ExitCode::FAILURE;
        }
    };
    let mut packets = 0u64;
    let mut bytes = 0u64;
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                if let PcapBlockOwned::Legacy(b) = block {
                    packets += 1;
                    bytes += u64::from(b.caplen);
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    break;
                }
            }
            Err(e) => {
                eprintln!("readlimit: {path}: {e:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"packets\":{packets},\"bytes\":{bytes},\"seconds\":{secs:.6},\"packets_per_second\":{:.0}}}",
        packets as f64 / secs
    );
    ExitCode::SUCCESS
}
