//! S7comm and S7comm-plus keys of the dissect schema.

use otsensor_dissectors::s7::{S7Pdu, S7PlusPdu};

use super::json::JsonBuf;

pub(super) fn write(out: &mut JsonBuf, s: &S7Pdu<'_>) {
    out.key_hex("raw", s.raw);
}

pub(super) fn write_plus(_out: &mut JsonBuf, _s: &S7PlusPdu) {}
