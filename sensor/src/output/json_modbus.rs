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
        out.key_str("exception_name", exception_code_name(code));
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
            out.key_str("sub_function_name", diagnostic_subfunction_name(sub));
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
        for (id, value) in objs {
            match device_id_object_name(id) {
                "Reserved" | "Private" => out.key_bytes_lossy(&format!("object_{id}"), value),
                name => out.key_bytes_lossy(name, value),
            }
        }
        out.end();
    }
    if !m.is_request && !m.matched {
        out.key_bool("matched", false);
    }
}
