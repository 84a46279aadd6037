//! Differential test against tshark: every Modbus/TCP ADU tshark decodes in the real
//! captures is matched to ours (by frame number, then order within the frame), and `tid`,
//! `unit`, `func`, `exception_code`, `address` and `quantity` must agree.

use std::path::Path;

use otsensor_dissectors::engine::EngineConfig;
use serde_json::Value;

use crate::common::*;

/// Ports that carry Modbus in the corpus (the AgentCarter lab uses 502-505).
fn config() -> EngineConfig {
    EngineConfig { modbus_ports: vec![502, 503, 504, 505], ..EngineConfig::default() }
}

fn compare(path: &Path, known: &std::collections::HashSet<(String, u64)>) -> Tally {
    let name = short_name(path);
    let frames = tshark_frames(path, "mbtcp", "frame mbtcp modbus", &["-d", "tcp.port==503-505,mbtcp"]);
    let (ours, _) = dissect_json(path, config());
    let ours = by_packet(&ours, "modbus");
    let mut t = Tally::default();
    for (n, layers) in frames {
        let heads = as_list(&layers["mbtcp"]);
        let bodies = as_list(&layers["modbus"]);
        let mine = ours.get(&n).cloned().unwrap_or_default();
        for (i, head) in heads.iter().enumerate() {
            t.compared += 1;
            let body = bodies.get(i).cloned().unwrap_or(Value::Null);
            let Some(m) = mine.get(i) else {
                if known.contains(&(name.clone(), n)) {
                    t.excused += 1;
                } else {
                    t.disagreements.push(format!("{name} packet {n} ADU {i}: tshark decodes an ADU we do not"));
                }
                continue;
            };
            let mut diffs = Vec::new();
            let mut field = |what: &str, theirs: Option<u64>, ours: &Value, required: bool| {
                let ours = ours.as_u64();
                if (theirs.is_some() || required) && theirs != ours {
                    diffs.push(format!("{what}: tshark {theirs:?}, ours {ours:?}"));
                }
            };
            field("tid", num(head, "mbtcp.trans_id"), &m["tid"], true);
            field("unit", num(head, "mbtcp.unit_id"), &m["unit"], true);
            field("func", num(&body, "modbus.func_code"), &m["func"], false);
            field("exception_code", num(&body, "modbus.exception_code"), &m["exception_code"], true);
            let address = num(&body, "modbus.reference_num").or_else(|| num(&body, "modbus.read_reference_num"));
            field("address", address, &m["address"], false);
            let quantity = num(&body, "modbus.word_cnt")
                .or_else(|| num(&body, "modbus.bit_cnt"))
                .or_else(|| num(&body, "modbus.read_word_cnt"));
            field("quantity", quantity, &m["quantity"], false);
            if diffs.is_empty() {
                t.agreed += 1;
            } else if known.contains(&(name.clone(), n)) {
                t.excused += 1;
            } else {
                t.disagreements.push(format!("{name} packet {n} ADU {i}: {}", diffs.join("; ")));
            }
        }
    }
    eprintln!("  {name}: {} of {} agree", t.agreed, t.compared);
    t
}

#[test]
fn modbus_agrees_with_tshark_on_every_capture() {
    if !tshark_available() {
        return;
    }
    let known = known_differences("modbus");
    let mut dirs = vec![bundled_pcaps()];
    if let Some(shared) = shared_pcaps() {
        dirs.push(shared);
    }
    let mut total = Tally::default();
    for dir in dirs {
        for path in captures_under(&dir) {
            // Only captures in which tshark finds Modbus contribute comparisons.
            total.add(compare(&path, &known));
        }
    }
    total.check("modbus", 0.999);
}
