//! Fuzzes the DNP3 stream dissector (link frames, CRCs, transport reassembly and everything
//! above): the input is cut in two at a point its first byte chooses; the first part is the
//! master's stream, the second the outstation's, both parsed in chunks with the engine's
//! buffering contract (unconsumed bytes come back with the next chunk). CRC checks are
//! bypassed under `cfg(fuzzing)`, so mutated frames reach the application layer.
//!
//! Seed from real captures' TCP payloads: `dissectors/fuzz/seed.sh` fills `corpus/dnp3_link`
//! (tshark `-Y dnp3 -e tcp.payload`), or by hand:
//! `tshark -r ../../../shared/pcaps/dnp3/emreekin/DNP3Value.pcap -Y dnp3 -T fields -e tcp.payload |
//!   while read h; do echo "$h" | xxd -r -p > corpus/dnp3_link/$(echo "$h" | sha1sum | cut -c1-16); done`
//! Run: `cargo +nightly fuzz run dnp3_link`

#![no_main]

use libfuzzer_sys::fuzz_target;
use otsensor_dissectors::dnp3::Dnp3Stream;
use otsensor_dissectors::event::{Direction, PduBody};
use otsensor_dissectors::stream::StreamDissector;

fn feed(s: &mut Dnp3Stream, data: &[u8], dir: Direction, chunk: usize) {
    let mut pending = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        let parsed = s.parse(&pending, dir, &mut |b| {
            if let PduBody::Dnp3(d) = b {
                let _ = (d.func_name(), d.class(), d.critical(), d.error_code());
                d.for_each_point(&mut |_| {});
                d.for_each_value(&mut |_| {});
                let _ = d.crobs().count() + d.analog_outputs().count();
            }
        });
        assert!(parsed.consumed <= pending.len());
        assert!(parsed.skipped <= parsed.consumed);
        pending.drain(..parsed.consumed);
        // Never more than one partial frame is left waiting.
        assert!(pending.len() < 10 + 250 + 32);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let cut = usize::from(first) * rest.len() / 256;
    let (master, outstation) = rest.split_at(cut);
    let mut s = Dnp3Stream::new();
    feed(&mut s, master, Direction::ToServer, usize::from(first % 61) + 1);
    feed(&mut s, outstation, Direction::ToClient, usize::from(first % 37) + 1);
    if first & 1 == 1 {
        s.gap(Direction::ToClient);
    }
    let _ = s.parse_datagram(rest, Direction::ToClient, &mut |_| {});
});
