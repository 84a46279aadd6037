//! Fuzzes the S7 stream dissector: TPKT/COTP framing, COTP reassembly, S7comm and
//! S7comm-plus decoding, in both directions of one connection.
//!
//! The input is one direction's stream bytes, as `seed.sh` extracts them from real captures
//! (`payloads s7comm s7`: the TCP payloads of every S7 frame of `pcaps/` and the shared
//! corpus; add S7comm-plus with `payloads 'tcp.port==102' s7`). It is parsed whole towards
//! the PLC, then again towards the client cut into segments at every 0xFE byte, with a gap
//! before the second segment when the input's length is odd, so that segment boundaries,
//! resynchronisation and reassembly are exercised too. Every accessor the engine and the JSON
//! writer use is called on each PDU.
//!
//! ```sh
//! dissectors/fuzz/seed.sh && cd dissectors/fuzz && cargo +nightly fuzz run s7 corpus/s7
//! ```
#![no_main]
use libfuzzer_sys::fuzz_target;
use otsensor_dissectors::event::{Direction, PduBody};
use otsensor_dissectors::s7::S7Stream;
use otsensor_dissectors::stream::StreamDissector;

fn touch(b: &PduBody<'_>) {
    let _ = (b.func(), b.func_name(), b.class(), b.critical(), b.error_code(), b.flags().bits(), b.is_request());
    b.for_each_point(&mut |_| {});
    b.for_each_value(&mut |_| {});
    if let PduBody::S7(p) = b {
        for _ in p.items() {}
        for _ in p.data_items() {}
    }
}

/// Feeds `chunks` towards `dir` as the engine does, keeping unconsumed bytes.
fn feed<'a>(s7: &mut S7Stream, dir: Direction, chunks: impl Iterator<Item = &'a [u8]>, gap_at: Option<usize>) {
    let mut pending: Vec<u8> = Vec::new();
    for (i, chunk) in chunks.enumerate() {
        if gap_at == Some(i) {
            pending.clear();
            s7.gap(dir);
        }
        pending.extend_from_slice(chunk);
        let parsed = s7.parse(&pending, dir, &mut |b| touch(b));
        assert!(parsed.skipped <= parsed.consumed && parsed.consumed <= pending.len());
        pending.drain(..parsed.consumed);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s7 = S7Stream::default();
    feed(&mut s7, Direction::ToServer, std::iter::once(data), None);
    let gap = (data.len() % 2 == 1).then_some(1);
    feed(&mut s7, Direction::ToClient, data.split(|&b| b == 0xfe), gap);
});
