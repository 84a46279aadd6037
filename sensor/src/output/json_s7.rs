//! S7comm and S7comm-plus keys of the dissect schema.
//!
//! S7comm PDUs: `rosctr`, `rosctr_name`, `pdu_ref`, `error_class`, `error_code` (null where
//! absent); userdata adds `userdata_type`, `userdata_group`, `subfunc` with their names and
//! `seq`; read/write var add `items` (the job's variable specifications, with the data items'
//! transport size and length on write jobs and responses, and their return codes on
//! responses) and `values` (written by write jobs, read by matched read responses: bits 0/1,
//! bytes, words and dwords unsigned, INT/DINT signed, REAL truncated); `pdu_size` and the
//! AMQs for setup communication; `szl_id`/`szl_index`; `block_type`/`block_number`/`filename`
//! for transfers; `pi_service`.
//! COTP connection requests, confirms and disconnects (func_name `COTP_*`, `rosctr` null)
//! add `src_tsap`, `dst_tsap` (hex), `rack`, `slot` and `tpdu_size`.
//!
//! S7comm-plus PDUs: `version`, `version_name`, `opcode`, `opcode_name`, `seq`,
//! `session_id`, `fragment`, `data_len`, and `operating_state` for a CPU state request.

use otsensor_dissectors::s7::{names, DataItem, Item, S7Pdu, S7PlusPdu};

use super::json::JsonBuf;

pub(super) fn write(out: &mut JsonBuf, s: &S7Pdu<'_>) {
    if let Some(c) = &s.cotp {
        out.key_null("rosctr");
        out.key_str("rosctr_name", "COTP");
        out.key_null("pdu_ref");
        out.key_null("error_class");
        out.key_null("error_code");
        out.key_u64("cotp_type", u64::from(c.code));
        out.key_u64("dst_ref", u64::from(c.dst_ref));
        out.key_u64("src_ref", u64::from(c.src_ref));
        out.key_hex("src_tsap", c.src_tsap);
        out.key_hex("dst_tsap", c.dst_tsap);
        let rs = c.rack_slot();
        out.key_opt_u64("rack", rs.map(|r| u64::from(r.0)));
        out.key_opt_u64("slot", rs.map(|r| u64::from(r.1)));
        out.key_opt_u64("tpdu_size", c.tpdu_size.map(|t| 1u64 << (t & 31)));
        return;
    }
    // Tag 7: the ROSCTR keys, from the ROSCTR alone.
    out.memo(7u128 << 120 | u128::from(s.rosctr), |out| {
        out.key_u64("rosctr", u64::from(s.rosctr));
        out.key_str("rosctr_name", names::rosctr_name(s.rosctr));
    });
    out.key_u64("pdu_ref", u64::from(s.pdu_ref));
    // Tag 8: the error keys, from the class and code (each absent, bit 16 or 17, or a byte).
    let key = 8u128 << 120
        | u128::from(s.error_class.is_none()) << 16
        | u128::from(s.error_code.is_none()) << 17
        | u128::from(s.error_class.unwrap_or(0)) << 8
        | u128::from(s.error_code.unwrap_or(0));
    out.memo(key, |out| {
        out.key_opt_u64("error_class", s.error_class.map(u64::from));
        out.key_opt_u64("error_code", s.error_code.map(u64::from));
        if let Some(c) = s.error_class.filter(|&c| c != 0) {
            out.key_str("error_class_name", names::error_class_name(c));
        }
    });
    if let Some(u) = &s.userdata {
        out.key_u64("userdata_type", u64::from(u.utype));
        out.key_str("userdata_type_name", names::userdata_type_name(u.utype));
        out.key_u64("userdata_group", u64::from(u.group));
        out.key_str("userdata_group_name", names::userdata_group_name(u.group));
        out.key_u64("subfunc", u64::from(u.subfunc));
        match names::userdata_subfunc_name(u.group, u.subfunc) {
            Some(n) => out.key_str("subfunc_name", n),
            None => out.key_null("subfunc_name"),
        }
        out.key_u64("seq", u64::from(u.seq));
        out.key_opt_u64("return_code", u.return_code.map(u64::from));
        if let Some(e) = u.error_code {
            out.key_u64("userdata_error_code", u64::from(e));
        }
    }
    if let Some(st) = &s.setup {
        out.key_u64("pdu_size", u64::from(st.pdu_size));
        out.key_u64("amq_calling", u64::from(st.amq_calling));
        out.key_u64("amq_called", u64::from(st.amq_called));
    }
    if let Some((id, index)) = s.szl {
        out.key_u64("szl_id", u64::from(id));
        out.key_u64("szl_index", u64::from(index));
    }
    if let Some(b) = &s.block {
        out.key_str("block_type", b.type_name());
        out.key_u64("block_number", u64::from(b.number));
    }
    if !s.filename.is_empty() {
        out.key_bytes_lossy("filename", s.filename);
    }
    if !s.pi_service.is_empty() {
        out.key_bytes_lossy("pi_service", s.pi_service);
    }
    if matches!(s.func, Some(0x04 | 0x05)) {
        write_items(out, s);
        // Values written by a write job or read by a matched read response, in item order.
        out.begin_array("values");
        s.for_each_value(|v| out.i64(v.value));
        out.end_array();
    }
    if !s.is_request && !s.matched && s.rosctr != 7 {
        out.key_bool("matched", false);
    }
}

fn write_items(out: &mut JsonBuf, s: &S7Pdu<'_>) {
    out.begin_array("items");
    let mut specs = s.items();
    let mut data = s.data_items();
    // Bounded by the item counts (one byte each).
    loop {
        let (spec, d) = (specs.next(), data.next());
        if spec.is_none() && d.is_none() {
            break;
        }
        // The object with its braces, so that a memoised item is one copy.
        let object = |b: &mut JsonBuf| {
            b.begin();
            write_item(b, s.is_request, spec.as_ref(), d.as_ref());
            b.end();
        };
        match item_key(s.is_request, spec.as_ref(), d.as_ref()) {
            Some(key) => out.memo(key, object),
            None => object(out),
        }
    }
    out.end_array();
}

/// The memo key of an item: every field its keys are written from (the data item's in bits
/// 0-31, the specification's in 32-55 and 64-119, which of them are present and the direction
/// in 56-58), and the tag 1 in the top byte; `None` for the specifications written as hex and
/// for fields too wide to pack.
fn item_key(is_request: bool, spec: Option<&Item<'_>>, d: Option<&DataItem<'_>>) -> Option<u128> {
    let mut key = 1u128 << 120 | u128::from(is_request) << 56;
    if let Some(i) = spec {
        if !matches!(i.syntax_id, 0x10 | 0xb0) || i.address >= 1 << 24 {
            return None;
        }
        key |= 1 << 57
            | u128::from(i.syntax_id) << 64
            | u128::from(i.transport_size) << 72
            | u128::from(i.length) << 80
            | u128::from(i.db) << 96
            | u128::from(i.area) << 112
            | u128::from(i.address) << 32;
    }
    if let Some(d) = d {
        let len = u16::try_from(d.data.len()).ok()?;
        key |= 1 << 58 | u128::from(d.return_code) | u128::from(d.transport_size) << 8 | u128::from(len) << 16;
    }
    Some(key)
}

/// The keys of one item: its specification, its data item's header, either or both.
fn write_item(out: &mut JsonBuf, is_request: bool, spec: Option<&Item<'_>>, d: Option<&DataItem<'_>>) {
    if let Some(i) = spec {
        out.key_u64("syntax_id", u64::from(i.syntax_id));
        out.key_str("syntax_name", names::syntax_id_name(i.syntax_id));
        if matches!(i.syntax_id, 0x10 | 0xb0) {
            out.key_u64("transport_size", u64::from(i.transport_size));
            out.key_str("transport_size_name", names::transport_size_name(i.transport_size));
            out.key_u64("length", u64::from(i.length));
            out.key_u64("area", u64::from(i.area));
            out.key_str("area_name", names::area_name(i.area));
            out.key_u64("db", u64::from(i.db));
            out.key_u64("byte", u64::from(i.byte()));
            out.key_u64("bit", u64::from(i.bit()));
        } else {
            out.key_hex("spec", i.spec);
        }
    }
    if let Some(d) = d {
        // A write job's data items carry 0x00 where responses carry the return code.
        if !is_request {
            out.key_u64("return_code", u64::from(d.return_code));
            out.key_str("return_code_name", names::return_code_name(d.return_code));
        }
        if !d.data.is_empty() || d.transport_size != 0 {
            out.key_u64("data_transport_size", u64::from(d.transport_size));
            out.key_u64("data_len", d.data.len() as u64);
        }
    }
}

pub(super) fn write_plus(out: &mut JsonBuf, s: &S7PlusPdu) {
    out.key_u64("version", u64::from(s.version));
    out.key_str("version_name", names::plus_version_name(s.version));
    out.key_u64("data_len", u64::from(s.data_len));
    out.key_opt_u64("opcode", s.opcode.map(u64::from));
    if let Some(op) = s.opcode {
        out.key_str("opcode_name", names::plus_opcode_name(op));
    }
    out.key_opt_u64("seq", s.seq.map(u64::from));
    out.key_opt_u64("session_id", s.session_id.map(u64::from));
    out.key_str("fragment", s.fragment.name());
    if let Some(v) = s.operating_state {
        out.key_u64("operating_state", u64::from(v));
    }
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::event::{Direction, PduBody};
    use otsensor_dissectors::s7::S7Stream;
    use otsensor_dissectors::stream::StreamDissector;

    use super::*;

    /// The S7 keys of each PDU `bytes` hold, as JSON values.
    fn keys(st: &mut S7Stream, dir: Direction, bytes: &[u8]) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        st.parse(bytes, dir, &mut |b: &mut PduBody<'_>| {
            let mut j = JsonBuf::new();
            j.begin();
            match &*b {
                PduBody::S7(s) => write(&mut j, s),
                PduBody::S7Plus(s) => write_plus(&mut j, s),
                _ => {}
            }
            j.end_line();
            out.push(serde_json::from_slice(j.as_bytes()).expect("valid JSON"));
        });
        out
    }

    fn dt(s7: &[u8]) -> Vec<u8> {
        let mut v = vec![0x03, 0x00, 0x00, (s7.len() + 7) as u8, 0x02, 0xf0, 0x80];
        v.extend_from_slice(s7);
        v
    }

    #[test]
    fn cotp_connection_request_shows_tsaps_rack_and_slot() {
        let cr = [
            0x03, 0x00, 0x00, 0x16, 0x11, 0xe0, 0x00, 0x00, 0x00, 0x01, 0x00, // TPKT, CR header
            0xc0, 0x01, 0x0a, 0xc1, 0x02, 0x01, 0x00, 0xc2, 0x02, 0x03, 0x23, // TPDU size, TSAPs
        ];
        let v = keys(&mut S7Stream::new(), Direction::ToServer, &cr);
        assert_eq!(v[0]["rosctr"], serde_json::Value::Null);
        assert_eq!(v[0]["pdu_ref"], serde_json::Value::Null);
        assert_eq!((v[0]["src_tsap"].as_str(), v[0]["dst_tsap"].as_str()), (Some("0100"), Some("0323")));
        assert_eq!(
            (v[0]["rack"].as_u64(), v[0]["slot"].as_u64(), v[0]["tpdu_size"].as_u64()),
            (Some(1), Some(3), Some(1024))
        );
    }

    #[test]
    fn read_var_response_lists_the_job_items_with_return_codes() {
        let job = [
            0x32, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x0e, 0x00, 0x00, // job, ref 5, param 14
            0x04, 0x01, 0x12, 0x0a, 0x10, 0x02, 0x00, 0x02, 0x00, 0x07, 0x84, 0x00, 0x00,
            0x53, // DB7.DBB10.3, 2 bytes
        ];
        let ack = [
            0x32, 0x03, 0x00, 0x00, 0x00, 0x05, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, // ack-data, ref 5
            0x04, 0x01, 0xff, 0x04, 0x00, 0x10, 0x12, 0x34, // read var, 1 item, success, 16 bits
        ];
        let mut st = S7Stream::new();
        let j = keys(&mut st, Direction::ToServer, &dt(&job));
        assert_eq!((j[0]["rosctr"].as_u64(), j[0]["rosctr_name"].as_str()), (Some(1), Some("JOB")));
        assert_eq!(j[0]["error_class"], serde_json::Value::Null);
        let a = keys(&mut st, Direction::ToClient, &dt(&ack));
        let item = &a[0]["items"][0];
        assert_eq!((item["area_name"].as_str(), item["db"].as_u64()), (Some("DATA_BLOCKS"), Some(7)));
        assert_eq!(
            (item["byte"].as_u64(), item["bit"].as_u64(), item["length"].as_u64()),
            (Some(10), Some(3), Some(2))
        );
        assert_eq!((item["return_code_name"].as_str(), item["data_len"].as_u64()), (Some("SUCCESS"), Some(2)));
        assert_eq!((a[0]["error_class"].as_u64(), a[0]["error_code"].as_u64()), (Some(0), Some(0)));
        assert!(a[0].get("matched").is_none());
        assert_eq!(a[0]["values"], serde_json::json!([0x12, 0x34]));
    }

    #[test]
    fn szl_read_shows_group_subfunction_and_szl() {
        let ud = [
            0x32, 0x07, 0x00, 0x00, 0x05, 0x00, 0x00, 0x08, 0x00, 0x08, // userdata, param 8, data 8
            0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00, // request, CPU functions, read SZL
            0xff, 0x09, 0x00, 0x04, 0x00, 0x11, 0x00, 0x01, // SZL 0x0011 index 1
        ];
        let v = keys(&mut S7Stream::new(), Direction::ToServer, &dt(&ud));
        assert_eq!(
            (v[0]["userdata_group_name"].as_str(), v[0]["subfunc_name"].as_str()),
            (Some("CPU_FUNCTIONS"), Some("READ_SZL"))
        );
        assert_eq!((v[0]["szl_id"].as_u64(), v[0]["szl_index"].as_u64()), (Some(0x11), Some(1)));
    }

    #[test]
    fn s7comm_plus_shows_its_header() {
        let plus = [
            0x72, 0x01, 0x00, 0x0e, // S7comm-plus V1, data length 14
            0x31, 0x00, 0x00, 0x04, 0xbb, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x36, // explore request
            0x72, 0x01, 0x00, 0x00, // trailer
        ];
        let v = keys(&mut S7Stream::new(), Direction::ToServer, &dt(&plus));
        assert_eq!((v[0]["version_name"].as_str(), v[0]["opcode_name"].as_str()), (Some("V1"), Some("REQUEST")));
        assert_eq!(
            (v[0]["seq"].as_u64(), v[0]["session_id"].as_u64(), v[0]["fragment"].as_str()),
            (Some(2), Some(9), Some("whole"))
        );
    }
}
