//! Alerts in the Elastic Common Schema (`--alert-format ecs`), as ecs-logging writes them:
//! one JSON object per line with dotted field names (`"source.ip"`), which Elasticsearch and
//! Filebeat expand into objects. The mapping is documented in `docs/OUTPUTS.md`; fields ECS
//! has no place for are under `otsensor.*`.

use otsensor_models::Alert;

use super::alerts::{write_tail, LineKind, ECS_TAIL};
use super::chain::Chain;
use super::json::JsonBuf;
use super::siem::cef_severity;
use crate::policy::Enrichment;
use crate::report::page::rfc3339;

/// The ECS version the mapping follows.
pub const ECS_VERSION: &str = "8.11.0";

/// Writes one alert as an ECS JSON line (with `seq` and `prev` when chained).
pub fn write_alert_ecs(
    out: &mut JsonBuf,
    a: &Alert,
    kind: LineKind,
    capture_loss: bool,
    policy: Option<&Enrichment>,
    chain: Option<&Chain>,
) {
    out.begin();
    out.key_str("@timestamp", &rfc3339(a.ts_first));
    out.key_str("ecs.version", ECS_VERSION);
    out.key_str("message", &a.summary);
    out.key_str("log.level", a.severity.name());
    out.key_str("event.kind", "alert");
    out.begin_array("event.category");
    out.str("network");
    out.str("intrusion_detection");
    out.end_array();
    out.begin_array("event.type");
    out.str("info");
    out.end_array();
    out.key_str("event.module", "otsensor");
    out.key_str("event.dataset", "otsensor.alerts");
    out.key_str("event.code", &a.id);
    out.key_u64("event.severity", u64::from(cef_severity(a.severity.name())));
    out.key_u64("event.risk_score", u64::from(a.score));
    out.key_str("event.start", &rfc3339(a.ts_first));
    out.key_str("event.end", &rfc3339(a.ts_last));
    out.key_str("event.reason", &a.evidence);
    out.key_str("rule.id", &a.rule_id.to_string());
    out.key_str("rule.name", a.name);
    out.key_str("rule.version", &a.rev.to_string());
    out.key_str("rule.category", a.id.split_once('.').map_or(a.id.as_str(), |(f, _)| f));
    out.key_str("rule.ruleset", "otsensor");
    out.key_ip("source.ip", a.src.ip);
    out.key_u64("source.port", u64::from(a.src.port));
    out.key_ip("destination.ip", a.dst.ip);
    out.key_u64("destination.port", u64::from(a.dst.port));
    if let Some(p) = a.protocol {
        out.key_str("network.protocol", p.name());
    }
    if let Some(m) = a.mitre {
        out.key_str("threat.framework", "MITRE ATT&CK");
        out.begin_array("threat.technique.id");
        out.str(m);
        out.end_array();
    }
    out.key_str("observer.type", "ids");
    out.key_str("observer.vendor", "otsensor");
    out.key_str("observer.product", "otsensor");
    out.key_str("observer.version", env!("CARGO_PKG_VERSION"));
    out.key_u64("otsensor.count", a.count);
    out.key_u64("otsensor.pkt_first", a.pkt_first);
    out.key_u64("otsensor.pkt_last", a.pkt_last);
    write_tail(out, a, (kind, capture_loss), policy, chain, &ECS_TAIL);
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::event::{Endpoint, Protocol, Timestamp};
    use otsensor_models::Severity;

    use super::*;

    #[test]
    fn an_alert_maps_onto_ecs_fields() {
        let ep = |ip: [u8; 4], port| Endpoint { ip: ip.into(), port };
        let a = Alert {
            id: "dnp3.cold_restart".into(),
            rule_id: 9_100_220,
            rev: 2,
            name: "Device restart",
            severity: Severity::Critical,
            score: 95,
            ts_first: Timestamp { secs: 1_422_552_945, nanos: 48_062_000 },
            ts_last: Timestamp { secs: 1_422_552_946, nanos: 0 },
            pkt_first: 4,
            pkt_last: 6,
            src: ep([192, 168, 60, 1], 49423),
            dst: ep([192, 168, 60, 130], 20000),
            protocol: Some(Protocol::Dnp3),
            summary: "Device restart".into(),
            evidence: "COLD_RESTART".into(),
            count: 3,
            mitre: Some("T0816"),
            point: None,
            occurrence: 2,
            learn: None,
        };
        let mut out = JsonBuf::new();
        write_alert_ecs(&mut out, &a, LineKind::Update, true, None, Some(&Chain::new()));
        let v: serde_json::Value = serde_json::from_slice(out.as_bytes()).expect("one JSON line");
        for (k, want) in [
            ("@timestamp", "2015-01-29T17:35:45.048062Z"),
            ("event.kind", "alert"),
            ("event.code", "dnp3.cold_restart"),
            ("event.end", "2015-01-29T17:35:46.000000Z"),
            ("event.reason", "COLD_RESTART"),
            ("message", "Device restart"),
            ("rule.id", "9100220"),
            ("rule.name", "Device restart"),
            ("rule.version", "2"),
            ("rule.category", "dnp3"),
            ("source.ip", "192.168.60.1"),
            ("destination.ip", "192.168.60.130"),
            ("network.protocol", "dnp3"),
            ("log.level", "critical"),
        ] {
            assert_eq!(v[k], want, "{k}");
        }
        assert_eq!((v["source.port"].as_u64(), v["destination.port"].as_u64()), (Some(49423), Some(20000)));
        assert_eq!((v["event.severity"].as_u64(), v["event.risk_score"].as_u64()), (Some(10), Some(95)));
        assert_eq!(v["threat.technique.id"], serde_json::json!(["T0816"]));
        assert_eq!(v["event.category"], serde_json::json!(["network", "intrusion_detection"]));
        assert_eq!((v["otsensor.count"].as_u64(), v["otsensor.update"].as_bool()), (Some(3), Some(true)));
        assert_eq!((v["seq"].as_u64(), v["otsensor.capture_loss"].as_bool()), (Some(1), Some(true)));
        assert_eq!(v["otsensor.occurrence"].as_u64(), Some(2));
    }
}
