//! Alerts in the Elastic Common Schema (`--alert-format ecs`), as ecs-logging writes them:
//! one JSON object per line with dotted field names (`"source.ip"`), which Elasticsearch and
//! Filebeat expand into objects. The mapping is documented in `docs/OUTPUTS.md`; fields ECS
//! has no place for are under `otsensor.*`.

use otsensor_models::Alert;

use super::alerts::LineKind;
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
    if kind == LineKind::Update {
        out.key_bool("otsensor.update", true);
    }
    if capture_loss {
        out.key_bool("otsensor.capture_loss", true);
    }
    if let Some(e) = policy {
        for (k, v) in [
            ("otsensor.src_zone", &e.src_zone),
            ("otsensor.dst_zone", &e.dst_zone),
            ("otsensor.src_asset", &e.src_asset),
            ("otsensor.dst_asset", &e.dst_asset),
            ("otsensor.maintenance", &e.maintenance),
        ] {
            if let Some(v) = v {
                out.key_str(k, v);
            }
        }
    }
    if let Some(c) = chain {
        c.stamp(out);
    }
    out.end_line();
}
