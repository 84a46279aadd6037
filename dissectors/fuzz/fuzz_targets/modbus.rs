//! Fuzzes the Modbus/TCP stream dissector: the input is cut in two at a point its first byte
//! chooses; the first part is a request stream, the second a response stream, both parsed
//! with the engine's buffering contract (unconsumed bytes come back with the next chunk).
//!
//! Seed from real captures' TCP payloads, e.g.
//! `tshark -r ../../pcaps/modbus/iti-modbus_test.pcap -Y mbtcp -T fields -e tcp.payload | head -200 |
//!   while read h; do echo "$h" | xxd -r -p > corpus/modbus/$(echo "$h" | sha1sum | cut -c1-16); done`
//! Run: `cargo +nightly fuzz run modbus`

#![no_main]

use libfuzzer_sys::fuzz_target;
use otsensor_dissectors::event::{Direction, PduBody};
use otsensor_dissectors::modbus::ModbusStream;
use otsensor_dissectors::stream::StreamDissector;

fn feed(s: &mut ModbusStream, data: &[u8], dir: Direction, chunk: usize) {
    let mut pending = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        pending.extend_from_slice(piece);
        let parsed = s.parse(&pending, dir, &mut |b| {
            if let PduBody::Modbus(m) = b {
                let _ = m.values.iter().count();
                if let Some(objs) = m.device_identification() {
                    let _ = objs.count();
                }
            }
        });
        assert!(parsed.consumed <= pending.len());
        assert!(parsed.skipped <= parsed.consumed);
        pending.drain(..parsed.consumed);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let cut = usize::from(first) * rest.len() / 256;
    let (req, resp) = rest.split_at(cut);
    let mut s = ModbusStream::new();
    feed(&mut s, req, Direction::ToServer, usize::from(first % 13) + 1);
    feed(&mut s, resp, Direction::ToClient, usize::from(first % 7) + 1);
});
