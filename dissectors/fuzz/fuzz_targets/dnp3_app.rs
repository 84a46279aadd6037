//! Fuzzes the DNP3 application-layer parser directly: the input is one application fragment
//! (application control, function code, IIN for responses, object headers and objects), as
//! the transport layer hands it up; every accessor that walks the objects is exercised.
//!
//! Seed from real captures: run `seed.sh` for `corpus/dnp3_link` (TCP payloads), then strip
//! each single-frame payload's link header, block CRCs and transport byte into `corpus/dnp3_app`:
//! `for f in corpus/dnp3_link/*; do python3 -c 'import sys;d=open(sys.argv[1],"rb").read()[10:];
//!   u=b"".join(d[i:i+16] for i in range(0,len(d),18));open(sys.argv[2],"wb").write(u[1:])'
//!   "$f" corpus/dnp3_app/$(basename "$f"); done`
//! Run: `cargo +nightly fuzz run dnp3_app`

#![no_main]

use libfuzzer_sys::fuzz_target;
use otsensor_dissectors::dnp3::{Dnp3Pdu, LinkHeader, FLAG_NAMES};
use otsensor_dissectors::event::Flags;

fuzz_target!(|data: &[u8]| {
    // Link control: the first bit of the fragment's last byte picks master or outstation.
    let control = if data.last().is_some_and(|b| b & 1 == 1) { 0xC4 } else { 0x44 };
    let link = LinkHeader { len: 5, control, dst: 10, src: 1 };
    let pdu = Dnp3Pdu::parse_fragment(link, 0xC0, 1, data, Flags::new(FLAG_NAMES));
    let _ = (pdu.func_code(), pdu.func_name(), pdu.class(), pdu.critical(), pdu.error_code(), pdu.iin());
    let mut headers = pdu.objects();
    for h in headers.by_ref() {
        assert!(h.offset < data.len());
        for o in h.objects() {
            let _ = o;
        }
    }
    pdu.for_each_point(&mut |_| {});
    pdu.for_each_value(&mut |_| {});
    let _ = pdu.crobs().count() + pdu.analog_outputs().count();
});
