//! DNP3 keys of the dissect schema.

use otsensor_dissectors::dnp3::Dnp3Pdu;

use super::json::JsonBuf;

pub(super) fn write(out: &mut JsonBuf, d: &Dnp3Pdu<'_>) {
    out.key_hex("raw", d.raw);
}
