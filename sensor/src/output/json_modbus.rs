//! Modbus keys of the dissect schema.

use otsensor_dissectors::modbus::{
    device_id_object_name, diagnostic_subfunction_name, exception_code_name, FunctionCode, ModbusPdu,
};

use super::json::JsonBuf;

pub(super) fn write(out: &mut JsonBuf, m: &ModbusPdu<'_>) {
    out.key_u64("tid", u64::from(m.tid));
    out.key_u64("unit", u64::from(m.unit));
    out.key_opt_u64("exception_code", m.exception_code.map(u64::from));
    if let Some(code) = m.exception_code {
        match exception_code_name(code) {
            "UNKNOWN" => out.key_str("exception_name", &format!("unknown-{code}")),
            name => out.key_str("exception_name", name),
        }
        if let Some(n) = m.func.exception_name() {
            out.key_str("exception_func_name", n);
        }
    }
    out.key_opt_u64("address", m.address.map(u64::from));
    out.key_opt_u64("quantity", m.quantity.map(u64::from));
    if m.write_address.is_some() || m.write_quantity.is_some() {
        out.key_opt_u64("write_address", m.write_address.map(u64::from));
        out.key_opt_u64("write_quantity", m.write_quantity.map(u64::from));
    }
    if let Some(sub) = m.sub_function {
        if m.func == FunctionCode::DIAGNOSTICS {
            out.key_u64("sub_function", u64::from(sub));
            match diagnostic_subfunction_name(sub) {
                "UNKNOWN" => out.key_str("sub_function_name", &format!("unknown-{sub}")),
                name => out.key_str("sub_function_name", name),
            }
        } else {
            out.key_u64("mei_type", u64::from(sub));
        }
    }
    out.begin_array("values");
    for v in m.values.iter() {
        out.u64(u64::from(v));
    }
    out.end_array();
    if let Some(objs) = m.device_identification() {
        out.begin_object("device_id");
        // Times each object id was written, so that a repeated id (flagged
        // `duplicate_device_id_object`) gets a key of its own (`VendorName_2`) rather than a
        // duplicate key, which a log pipeline would resolve by dropping one of the values.
        let mut seen = [0u8; 256];
        for (id, value) in objs {
            let n = seen.get_mut(usize::from(id)).map_or(1, |c| {
                *c = c.saturating_add(1);
                *c
            });
            let base = match device_id_object_name(id) {
                "Reserved" | "Private" => format!("object_{id}"),
                name => name.to_string(),
            };
            if n == 1 {
                out.key_bytes_lossy(&base, value);
            } else {
                out.key_bytes_lossy(&format!("{base}_{n}"), value);
            }
        }
        out.end();
    }
    if !m.is_request && !m.matched {
        out.key_bool("matched", false);
    }
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::event::{Direction, PduBody};
    use otsensor_dissectors::modbus::ModbusStream;
    use otsensor_dissectors::stream::StreamDissector;
    use serde_json::Value;

    use super::*;

    /// The JSON of each ADU of a request stream, then of a response stream, on one connection.
    fn lines(req: &[u8], resp: &[u8]) -> Vec<Value> {
        let mut s = ModbusStream::new();
        let mut out = Vec::new();
        for (bytes, dir) in [(req, Direction::ToServer), (resp, Direction::ToClient)] {
            s.parse(bytes, dir, &mut |b| {
                if let PduBody::Modbus(m) = b {
                    let mut buf = JsonBuf::new();
                    buf.begin();
                    write(&mut buf, m);
                    buf.end_line();
                    out.push(serde_json::from_slice(buf.as_bytes()).expect("valid JSON"));
                }
            });
        }
        out
    }

    #[test]
    fn names_unknown_exception_codes_and_sub_functions_as_unknown_n() {
        let req = [
            0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x01, // MBAP tid 1, length 6, unit 1
            0x08, // Diagnostics
            0x00, 0x63, // sub-function 99: not defined
            0x00, 0x00, // data
        ];
        let resp = [
            0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x01, // MBAP tid 1, length 3, unit 1
            0x88, // exception to Diagnostics
            0x2a, // exception code 42: not defined
        ];
        let v = lines(&req, &resp);
        assert_eq!(v[0]["sub_function_name"], "unknown-99");
        assert_eq!((v[1]["exception_code"].as_u64(), v[1]["exception_name"].as_str()), (Some(42), Some("unknown-42")));
    }

    #[test]
    fn a_repeated_device_id_object_gets_a_key_of_its_own() {
        let resp = [
            0x00, 0x15, 0x00, 0x00, 0x00, 0x1a, 0x01, // MBAP tid 21, length 26, unit 1
            0x2b, 0x0e, 0x01, // function 43, MEI 14, basic
            0x01, // conformity
            0x00, 0x00, // more follows, next object
            0x03, // three objects
            0x00, 0x04, b'A', b'c', b'm', b'e', // VendorName "Acme"
            0x00, 0x04, b'E', b'v', b'i', b'l', // VendorName again, "Evil"
            0x01, 0x04, b'P', b'L', b'C', b'1', // ProductCode "PLC1"
        ];
        let v = &lines(&[], &resp)[0];
        assert_eq!(
            v["device_id"],
            serde_json::json!({"VendorName": "Acme", "VendorName_2": "Evil", "ProductCode": "PLC1"})
        );
        // No key appears twice in the text itself.
        let mut buf = JsonBuf::new();
        let mut s = ModbusStream::new();
        s.parse(&resp, Direction::ToClient, &mut |b| {
            if let PduBody::Modbus(m) = b {
                buf.begin();
                write(&mut buf, m);
                buf.end_line();
            }
        });
        let text = String::from_utf8_lossy(buf.as_bytes()).into_owned();
        assert_eq!(text.matches("\"VendorName\"").count(), 1, "{text}");
    }
}
