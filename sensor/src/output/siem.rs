//! Alerts for SIEMs: syslog (RFC 5424) with the alert as structured data and its JSON line as
//! the message, and ArcSight's CEF in the same syslog header. Both are made from the alert's
//! JSON line (the record the queue holds), so every destination says the same thing.
//!
//! Framing: one message per datagram over UDP (RFC 5426); octet counting, `LEN SP MSG`, over
//! TCP and TLS (RFC 6587 section 3.4.1, RFC 5425).

use serde_json::Value;

use crate::report::page::rfc3339;
use otsensor_dissectors::event::Timestamp;

/// The structured-data id: `otsensor` under the private enterprise number RFC 5612 reserves
/// for documentation (otsensor has none of its own yet).
pub const SD_ID: &str = "otsensor@32473";
/// Syslog facility: local0.
const FACILITY: u8 = 16;

/// Who sends: the sensor's id (the syslog HOSTNAME, CEF `dvchost`) and site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The sensor's id.
    pub sensor_id: String,
    /// Its site.
    pub site: String,
}

/// Syslog severity of an alert severity: critical 2, high 3 (error), medium 4 (warning),
/// low 5 (notice).
fn syslog_severity(sev: &str) -> u8 {
    match sev {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        _ => 5,
    }
}

/// CEF severity (0-10) of an alert severity: low 3, medium 5, high 8, critical 10.
pub fn cef_severity(sev: &str) -> u8 {
    match sev {
        "critical" => 10,
        "high" => 8,
        "medium" => 5,
        _ => 3,
    }
}

/// A JSON time (`1700000000.123456`) as a timestamp, to the microsecond.
pub fn json_ts(v: &Value) -> Timestamp {
    let f = v.as_f64().unwrap_or(0.0);
    let micros = (f * 1e6).round() as i64;
    Timestamp { secs: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1000) as u32 }
}

fn text<'v>(a: &'v Value, k: &str) -> &'v str {
    a.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A field as text: strings as they are, numbers and booleans written out, null as "".
fn field(a: &Value, k: &str) -> String {
    match a.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The RFC 5424 header: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID `.
fn header(alert: &Value, origin: &Origin) -> String {
    let pri = FACILITY * 8 + syslog_severity(text(alert, "severity"));
    let host = printable(&origin.sensor_id, 255);
    // MSGID is at most 32 printable characters; alert ids are shorter.
    let msgid = printable(text(alert, "id"), 32);
    format!("<{pri}>1 {} {host} otsensor {} {msgid} ", rfc3339(json_ts(&alert["ts"])), std::process::id())
}

/// Header fields are printable US-ASCII without spaces; `-` when empty.
fn printable(s: &str, max: usize) -> String {
    let t: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 section 6.3.3).
fn sd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keys of the alert carried as structured data, in this order (when present).
const SD_KEYS: [&str; 22] = [
    "id",
    "rule_id",
    "rev",
    "name",
    "severity",
    "score",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "count",
    "mitre",
    "pkt_first",
    "pkt_last",
    "occurrence",
    "learn",
    "src_zone",
    "dst_zone",
    "src_asset",
    "dst_asset",
    "maintenance",
];

/// An alert as an RFC 5424 message: the alert's fields as structured data
/// (`[otsensor@32473 id="..." ...]` plus `site`, `version` and the queue's `record_id`, the
/// same when a record is delivered again), its JSON line as the message.
pub fn syslog(alert: &Value, line: &[u8], origin: &Origin, record_id: u64) -> String {
    let mut m = header(alert, origin);
    m.push('[');
    m.push_str(SD_ID);
    for k in SD_KEYS {
        let v = field(alert, k);
        if !v.is_empty() {
            m.push_str(&format!(" {k}=\"{}\"", sd_escape(&v)));
        }
    }
    m.push_str(&format!(
        " site=\"{}\" version=\"{}\" record_id=\"{record_id}\"]",
        sd_escape(&origin.site),
        env!("CARGO_PKG_VERSION")
    ));
    m.push(' ');
    m.push_str(String::from_utf8_lossy(line).trim_end());
    m
}

/// A CEF header field: `\` and `|` escaped.
fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

/// A CEF extension value: `\`, `=` and line ends escaped.
fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('=', "\\=").replace('\r', "\\r").replace('\n', "\\n")
}

/// Milliseconds since the epoch, as CEF's `start` and `end` want them.
fn millis(v: &Value) -> String {
    let t = json_ts(v);
    (t.secs * 1000 + i64::from(t.nanos / 1_000_000)).to_string()
}

/// An alert as CEF (`CEF:0|otsensor|otsensor|VERSION|RULE_ID|NAME|SEVERITY|EXTENSION`) in an
/// RFC 5424 header. The extension: `src`, `spt`, `dst`, `dpt`, `app` (the industrial
/// protocol), `proto` (TCP for Modbus and S7; DNP3 runs over TCP or UDP and the alert does not
/// say which, so it has none), `act` (always `alert`: the sensor is passive), `start`, `end`,
/// `cnt`, `msg` (the summary), `dvchost` (the sensor id), `cn1` score, `cs1` alert id, `cs2`
/// ATT&CK technique, `cs3` evidence, `cs4` site, `cs5` source zone, `cs6` destination zone,
/// each `csN` with its `csNLabel`, and `externalId`, the queue's record id (the same when a
/// record is delivered again).
pub fn cef(alert: &Value, origin: &Origin, record_id: u64) -> String {
    let mut m = header(alert, origin);
    m.push_str("- ");
    m.push_str(&format!(
        "CEF:0|otsensor|otsensor|{}|{}|{}|{}|",
        env!("CARGO_PKG_VERSION"),
        cef_header(&field(alert, "rule_id")),
        cef_header(text(alert, "name")),
        cef_severity(text(alert, "severity"))
    ));
    let proto = text(alert, "proto");
    let transport = match proto {
        "modbus" | "s7comm" | "s7comm_plus" => "TCP",
        _ => "",
    };
    let ext: [(&str, String); 27] = [
        ("src", field(alert, "src_ip")),
        ("spt", field(alert, "src_port")),
        ("dst", field(alert, "dst_ip")),
        ("dpt", field(alert, "dst_port")),
        ("app", proto.to_string()),
        ("proto", transport.to_string()),
        ("act", "alert".into()),
        ("start", millis(&alert["ts"])),
        ("end", millis(&alert["ts_last"])),
        ("cnt", field(alert, "count")),
        ("msg", field(alert, "summary")),
        ("dvchost", origin.sensor_id.clone()),
        ("cn1", field(alert, "score")),
        ("cn1Label", "score".into()),
        ("cs1", field(alert, "id")),
        ("cs1Label", "alertId".into()),
        ("cs2", field(alert, "mitre")),
        ("cs2Label", "mitreTechnique".into()),
        ("cs3", field(alert, "evidence")),
        ("cs3Label", "evidence".into()),
        ("cs4", origin.site.clone()),
        ("cs4Label", "site".into()),
        ("cs5", field(alert, "src_zone")),
        ("cs5Label", "sourceZone".into()),
        ("cs6", field(alert, "dst_zone")),
        ("cs6Label", "destinationZone".into()),
        ("externalId", record_id.to_string()),
    ];
    let mut first = true;
    for (i, (k, v)) in ext.iter().enumerate() {
        // A label goes only with its value.
        let labelled_empty = k.ends_with("Label") && ext.get(i.wrapping_sub(1)).is_some_and(|(_, v)| v.is_empty());
        if v.is_empty() || labelled_empty {
            continue;
        }
        if !first {
            m.push(' ');
        }
        first = false;
        m.push_str(k);
        m.push('=');
        m.push_str(&cef_value(v));
    }
    m
}

/// A message framed by octet counting (TCP and TLS).
pub fn octet_counted(msg: &str) -> Vec<u8> {
    let mut f = format!("{} ", msg.len()).into_bytes();
    f.extend_from_slice(msg.as_bytes());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> (Value, Vec<u8>) {
        let line = br#"{"ts":1700000000.500000,"ts_last":1700000001.000000,"pkt_first":7,"pkt_last":9,"id":"modbus.cold_restart","rule_id":9100120,"rev":1,"name":"Device restart","severity":"critical","score":95,"proto":"modbus","src_ip":"10.0.0.9","src_port":40000,"dst_ip":"10.0.0.2","dst_port":502,"summary":"a=b | c]","evidence":"e\"vid\\ence","count":2,"mitre":"T0816"}
"#;
        (serde_json::from_slice(line).expect("JSON"), line.to_vec())
    }

    fn origin() -> Origin {
        Origin { sensor_id: "plant-1 sensor".into(), site: "north".into() }
    }

    #[test]
    fn syslog_carries_the_alert_as_structured_data_and_json() {
        let (a, line) = alert();
        let m = syslog(&a, &line, &origin(), 7);
        let head = format!(
            "<130>1 2023-11-14T22:13:20.500000Z plant-1sensor otsensor {} modbus.cold_restart [",
            std::process::id()
        );
        assert!(m.starts_with(&head), "{m}");
        assert!(m.contains(r#"summary"#) && m.contains(r#" rule_id="9100120" "#), "{m}");
        let tail = format!(r#" site="north" version="{}" record_id="7"]"#, env!("CARGO_PKG_VERSION"));
        assert!(m.contains(&tail), "{m}");
        let json = m.split_once("] ").map(|(_, j)| j).expect("message");
        assert_eq!(serde_json::from_str::<Value>(json).expect("JSON message"), a);
    }

    #[test]
    fn cef_escapes_and_maps_severity() {
        let (a, _) = alert();
        let m = cef(&a, &origin(), 7);
        let cef = m.split_once("- CEF:").map(|(_, c)| c).expect("CEF");
        assert!(
            cef.starts_with(&format!("0|otsensor|otsensor|{}|9100120|Device restart|10|", env!("CARGO_PKG_VERSION"))),
            "{cef}"
        );
        assert!(cef.contains("src=10.0.0.9 spt=40000 dst=10.0.0.2 dpt=502 app=modbus proto=TCP act=alert start=1700000000500 end=1700000001000 cnt=2"), "{cef}");
        assert!(cef.contains(r"msg=a\=b | c]"), "{cef}");
        assert!(cef.contains(r#"cs3=e"vid\\ence cs3Label=evidence"#), "{cef}");
        assert!(!cef.contains("cs5"), "no zone, no label: {cef}");
        assert!(cef.ends_with(" externalId=7"), "{cef}");
    }

    #[test]
    fn octet_counting_prefixes_the_length_in_bytes() {
        assert_eq!(octet_counted("é"), b"2 \xc3\xa9");
    }
}
