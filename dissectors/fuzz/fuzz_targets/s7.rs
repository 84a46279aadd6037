//! Fuzzes the S7 stream dissector: TPKT/COTP framing, COTP reassembly, S7comm and
//! S7comm-plus decoding, in both directions of one connection.
//!
//! The first byte steers: its bits choose, per chunk, the direction and whether a gap
//! precedes it; the rest is cut into chunks at the positions of 0xFE bytes, so the fuzzer
//! learns segment boundaries as well as contents. Every accessor the engine and the JSON
//! writer use is called on each PDU.
//!
//! Seed the corpus from real captures, one file per TCP payload direction, e.g.:
//!
//! ```sh
//! mkdir -p corpus/s7
//! for f in ../../shared/pcaps/s7comm/*/*.pcap*; do
//!   tshark -r "$f" -Y 'tcp.port==102 && tcp.len>0' -T fields -e tcp.payload \
//!     | while read -r hex; do printf '\x00%s' "$(echo "$hex" | xxd -r -p)" > "corpus/s7/$(echo "$hex" | sha1sum | cut -c1-16)"; done
//! done
//! cargo +nightly fuzz run s7 corpus/s7
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

fuzz_target!(|data: &[u8]| {
    let Some((&steer, rest)) = data.split_first() else { return };
    let mut s7 = S7Stream::default();
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (i, chunk) in rest.split(|&b| b == 0xfe).enumerate() {
        let bit = steer.rotate_left(i as u32 % 8);
        let dir = if bit & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let buf = &mut pending[dir.index()];
        if bit & 2 != 0 {
            buf.clear();
            s7.gap(dir);
        }
        buf.extend_from_slice(chunk);
        let parsed = s7.parse(buf, dir, &mut |b| touch(&b));
        assert!(parsed.skipped <= parsed.consumed && parsed.consumed <= buf.len());
        buf.drain(..parsed.consumed);
    }
});
