//! What each fuzz target of `sensor/fuzz` runs, in one place, so that the stable test
//! harness (`sensor/tests/fuzz_corpus.rs`) runs the very same code over the committed corpora
//! and every regression input where cargo-fuzz (nightly) cannot run. Not an API.

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Pdu, Timestamp};
use otsensor_models::baseline::Baseline;
use otsensor_models::{Detector, Learner};

use crate::capture::CaptureReader;

/// Touches every accessor a downstream consumer uses.
fn consume(pdu: &Pdu<'_>) {
    let _ = (pdu.body.func_name(), pdu.body.flags().iter().count(), pdu.body.class(), pdu.body.critical());
    pdu.body.for_each_point(&mut |_| {});
    pdu.body.for_each_value(&mut |_| {});
}

/// `capture`: a pcap or pcapng file through the reader and the engine (L2-L4, flows,
/// reassembly, every dissector). Returns the PDUs dissected.
pub fn capture(data: &[u8]) -> u64 {
    let Ok(reader) = CaptureReader::new(data) else { return 0 };
    let mut engine = Engine::new(EngineConfig { max_flows: 64, ..EngineConfig::default() });
    let mut pdus = 0u64;
    let mut sink = |pdu: &Pdu<'_>| {
        pdus += 1;
        consume(pdu);
    };
    let mut packets = Vec::new();
    for p in reader {
        match p {
            Ok(p) => {
                packets.push((p.index, p.offset, p.data.len()));
                engine.process(p.ts, p.index, p.linktype, p.data, &mut sink);
            }
            Err(_) => break,
        }
    }
    // The block reader the commands use, with blocks small enough that records straddle
    // them, must find the very same packets.
    if let Ok(mut r) = crate::capture::FileReader::with_block(Box::new(std::io::Cursor::new(data.to_vec())), 64) {
        let mut i = 0;
        while let Some(Ok(p)) = r.next_packet() {
            assert_eq!(packets.get(i), Some(&(p.index, p.offset, p.data.len())), "block reader disagrees");
            i += 1;
        }
        assert_eq!(i, packets.len(), "block reader found fewer packets");
    }
    pdus
}

/// Segments per input, at most.
const MAX_SEGMENTS: usize = 4096;

/// `reassembly`: TCP segments between 8 clients and a Modbus, a DNP3 and an S7 server, with
/// sequence numbers, flags and payloads the input chooses, through a flow table of 4 (so
/// evictions happen): reassembly with overlaps, gaps, reordering and retransmissions.
///
/// Each segment is `[conn, flags, seq_hi, seq_lo, len, payload...]`: `conn` picks the client
/// (low 3 bits), the server (next 2) and the direction (top bit); `flags` are TCP's.
/// Returns the PDUs dissected.
pub fn reassembly(data: &[u8]) -> u64 {
    let mut engine = Engine::new(EngineConfig { max_flows: 4, ..EngineConfig::default() });
    let mut pdus = 0u64;
    let mut sink = |pdu: &Pdu<'_>| {
        pdus += 1;
        consume(pdu);
    };
    let mut rest = data;
    let mut n = 0u64;
    while let [conn, flags, hi, lo, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (payload, after) = tail.split_at(take);
        rest = after;
        n += 1;
        let packet = segment(*conn, *flags, u32::from(u16::from_be_bytes([*hi, *lo])), payload);
        engine.process(Timestamp { secs: 1_700_000_000 + (n / 16) as i64, nanos: 0 }, n, 101, &packet, &mut sink);
        if n as usize >= MAX_SEGMENTS {
            break;
        }
    }
    pdus
}

/// A raw IPv4/TCP packet (LINKTYPE_RAW) for [`reassembly`].
fn segment(conn: u8, flags: u8, seq: u32, payload: &[u8]) -> Vec<u8> {
    let client = [10, 0, 0, 10 + (conn & 7)];
    let (server, port) = match (conn >> 3) & 3 {
        0 => ([10, 0, 0, 1], 502u16),
        1 => ([10, 0, 0, 2], 20000),
        _ => ([10, 0, 0, 3], 102),
    };
    let cport = 40000 + u16::from(conn & 7);
    let ((src, sport), (dst, dport)) =
        if conn & 0x80 == 0 { ((client, cport), (server, port)) } else { ((server, port), (client, cport)) };
    let mut v = vec![0x45, 0];
    v.extend(((40 + payload.len()) as u16).to_be_bytes()); // total length
    v.extend([0, 1, 0x40, 0, 64, 6, 0, 0]); // id, don't fragment, TTL, TCP, checksum
    v.extend(src);
    v.extend(dst);
    v.extend(sport.to_be_bytes());
    v.extend(dport.to_be_bytes());
    v.extend(seq.to_be_bytes());
    v.extend(0u32.to_be_bytes()); // acknowledgement
    v.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]); // offset 5, flags, window, checksum, urgent
    v.extend(payload);
    v
}

/// `baseline`: a baseline document through the loader (checksum verified, as `load` does),
/// then, with the checksum skipped so the fuzzer gets past it, into the detector and the
/// learner as `detect` and `learn` build them.
/// Returns whether the document loaded as `load` would load it.
pub fn baseline(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let loaded = Baseline::from_json(text).is_ok();
    if let Ok(b) = Baseline::from_json_unverified(text) {
        let _ = Detector::new(&b);
        let _ = Learner::continue_from(&b);
        let _ = crate::baseline_diff::diff(&b, &b);
    }
    loaded
}

/// `alerts_file`: an alerts file through `verify-alerts`, without and with a key (the key
/// of the seeds: [`SEED_KEY`]).
/// Returns whether it verified with the key.
pub fn alerts_file(data: &[u8]) -> bool {
    let key = ed25519_dalek::SigningKey::from_bytes(&SEED_KEY).verifying_key();
    let _ = crate::output::chain::verify(data);
    crate::output::chain::verify_signed(data, Some(&key)).is_ok()
}

/// The private key the `alerts_file` seeds are signed with (a test key, public here).
pub const SEED_KEY: [u8; 32] = [7; 32];
