//! Alerts as JSON lines, and the ranked summary on stderr.
//!
//! Keys: `ts`, `ts_last` (packet times), `pkt_first`, `pkt_last`, `id`, `rule_id`, `rev`,
//! `name`, `severity`, `score`, `proto` (null for network rules), `src_ip`, `src_port`,
//! `dst_ip`, `dst_port`, `summary`, `evidence`, `count`, `mitre` (null when no technique
//! fits).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use otsensor_models::{Alert, Severity};

use std::sync::Arc;

use super::chain::Chain;
use super::ecs::write_alert_ecs;
use super::json::JsonBuf;
use super::queue::Topic;
use super::sinks::Outputs;
use crate::policy::{Applier, Enrichment};

/// What an alert line is, beyond the alert itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// An alert whose fold closed (the only kind `detect` writes).
    Closed,
    /// An alert written as it opened (count 1), in live capture.
    Opened,
    /// The final tally of an alert already written as it opened: `"update": true`.
    Update,
}

/// How alert lines are written to a file or stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertFormat {
    /// otsensor's own keys (above).
    #[default]
    Json,
    /// The Elastic Common Schema ([`super::ecs`]).
    Ecs,
}

impl std::str::FromStr for AlertFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(AlertFormat::Json),
            "ecs" => Ok(AlertFormat::Ecs),
            _ => Err(format!("alert format {s:?} is neither json nor ecs")),
        }
    }
}

/// Writes one alert as a JSON line.
pub fn write_alert(out: &mut JsonBuf, a: &Alert) {
    write_alert_line(out, a, LineKind::Closed, false, None, None);
}

/// Writes one alert as a JSON line, with `"update": true` for an update,
/// `"capture_loss": true` when capture was losing packets, and what the policy adds (zones,
/// asset names, maintenance window), each key only when it has a value.
pub fn write_alert_line(
    out: &mut JsonBuf,
    a: &Alert,
    kind: LineKind,
    capture_loss: bool,
    policy: Option<&Enrichment>,
    chain: Option<&Chain>,
) {
    out.begin();
    out.key_ts("ts", a.ts_first);
    out.key_ts("ts_last", a.ts_last);
    out.key_u64("pkt_first", a.pkt_first);
    out.key_u64("pkt_last", a.pkt_last);
    out.key_str("id", &a.id);
    out.key_u64("rule_id", u64::from(a.rule_id));
    out.key_u64("rev", u64::from(a.rev));
    out.key_str("name", a.name);
    out.key_str("severity", a.severity.name());
    out.key_u64("score", u64::from(a.score));
    match a.protocol {
        Some(p) => out.key_str("proto", p.name()),
        None => out.key_null("proto"),
    }
    out.key_ip("src_ip", a.src.ip);
    out.key_u64("src_port", u64::from(a.src.port));
    out.key_ip("dst_ip", a.dst.ip);
    out.key_u64("dst_port", u64::from(a.dst.port));
    out.key_str("summary", &a.summary);
    out.key_str("evidence", &a.evidence);
    out.key_u64("count", a.count);
    match a.mitre {
        Some(m) => out.key_str("mitre", m),
        None => out.key_null("mitre"),
    }
    write_tail(out, a, (kind, capture_loss), policy, chain, &PLAIN_TAIL);
}

/// The names of the keys every alert line ends with, in one format.
pub(super) struct TailKeys {
    occurrence: &'static str,
    learn: &'static str,
    update: &'static str,
    capture_loss: &'static str,
    /// Source and destination zones and assets, and the maintenance window.
    policy: [&'static str; 5],
}

/// The tail of the plain JSON lines.
const PLAIN_TAIL: TailKeys = TailKeys {
    occurrence: "occurrence",
    learn: "learn",
    update: "update",
    capture_loss: "capture_loss",
    policy: ["src_zone", "dst_zone", "src_asset", "dst_asset", "maintenance"],
};

/// The tail of the ECS lines (fields ECS has no place for, under `otsensor.*`).
pub(super) const ECS_TAIL: TailKeys = TailKeys {
    occurrence: "otsensor.occurrence",
    learn: "otsensor.learn",
    update: "otsensor.update",
    capture_loss: "otsensor.capture_loss",
    policy: [
        "otsensor.src_zone",
        "otsensor.dst_zone",
        "otsensor.src_asset",
        "otsensor.dst_asset",
        "otsensor.maintenance",
    ],
};

/// Ends an alert line, in any format: the recurrence, what accepting it learns, whether it
/// is an update or was written during capture loss, what the policy adds (each key only
/// with a value), and the chain's stamp.
pub(super) fn write_tail(
    out: &mut JsonBuf,
    a: &Alert,
    (kind, capture_loss): (LineKind, bool),
    policy: Option<&Enrichment>,
    chain: Option<&Chain>,
    keys: &TailKeys,
) {
    if a.occurrence > 1 {
        out.key_u64(keys.occurrence, u64::from(a.occurrence));
    }
    if let Some(l) = a.learn {
        out.key_str(keys.learn, &l.to_words());
    }
    if kind == LineKind::Update {
        out.key_bool(keys.update, true);
    }
    if capture_loss {
        out.key_bool(keys.capture_loss, true);
    }
    if let Some(e) = policy {
        let values = [&e.src_zone, &e.dst_zone, &e.src_asset, &e.dst_asset, &e.maintenance];
        for (k, v) in keys.policy.iter().zip(values) {
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

/// Writes alerts to a sink as they come and remembers enough for the summary.
pub struct AlertWriter<'w> {
    buf: JsonBuf,
    out: &'w mut dyn Write,
    error: Option<io::Error>,
    seen: Vec<Alert>,
    capture_loss: bool,
    policy: Option<Applier>,
    chain: Option<Chain>,
    format: AlertFormat,
    /// The network outputs every alert is also queued for, in otsensor's own JSON.
    outputs: Option<Arc<Outputs>>,
    queued: JsonBuf,
}

impl std::fmt::Debug for AlertWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWriter").field("alerts", &self.seen.len()).finish()
    }
}

impl<'w> AlertWriter<'w> {
    /// A writer to `out`.
    pub fn new(out: &'w mut dyn Write) -> Self {
        AlertWriter {
            buf: JsonBuf::new(),
            out,
            error: None,
            seen: Vec::new(),
            capture_loss: false,
            policy: None,
            chain: None,
            format: AlertFormat::Json,
            outputs: None,
            queued: JsonBuf::new(),
        }
    }

    /// Writes lines in `format` from now on.
    pub fn set_format(&mut self, format: AlertFormat) {
        self.format = format;
    }

    /// Queues every alert written from now on for these network outputs too.
    pub fn set_outputs(&mut self, outputs: Option<Arc<Outputs>>) {
        self.outputs = outputs;
    }

    /// Writes `alerts` and keeps them for the summary.
    pub fn write(&mut self, alerts: &mut Vec<Alert>) {
        self.write_kind(alerts, LineKind::Closed);
    }

    /// Marks the next lines written as written while capture was losing packets.
    pub fn set_capture_loss(&mut self, loss: bool) {
        self.capture_loss = loss;
    }

    /// Links every record written from now on into `chain` (`seq` and `prev` keys), for an
    /// alerts file.
    pub fn set_chain(&mut self, chain: Option<Chain>) {
        self.chain = chain;
    }

    /// Applies `policy` to every alert written from now on (suppressions, maintenance
    /// windows, zones and asset names); returns the one it replaces.
    pub fn set_policy(&mut self, policy: Option<Applier>) -> Option<Applier> {
        std::mem::replace(&mut self.policy, policy)
    }

    /// The policy applied, if any.
    pub fn policy(&self) -> Option<&Applier> {
        self.policy.as_ref()
    }

    /// The policy applied, to check observations against it.
    pub fn policy_mut(&mut self) -> Option<&mut Applier> {
        self.policy.as_mut()
    }

    /// Writes `alerts` as lines of `kind`; keeps all but updates for the summary.
    pub fn write_kind(&mut self, alerts: &mut Vec<Alert>, kind: LineKind) {
        let extra = self.policy.as_mut().map(|p| p.apply(alerts));
        for (i, a) in alerts.iter().enumerate() {
            let e = extra.as_ref().and_then(|x| x.get(i));
            let start = self.buf.len();
            match self.format {
                AlertFormat::Json => {
                    write_alert_line(&mut self.buf, a, kind, self.capture_loss, e, self.chain.as_ref())
                }
                AlertFormat::Ecs => write_alert_ecs(&mut self.buf, a, kind, self.capture_loss, e, self.chain.as_ref()),
            }
            if let Some(o) = &self.outputs {
                self.queued.clear();
                write_alert_line(&mut self.queued, a, kind, self.capture_loss, e, None);
                o.append(Topic::Alerts, self.queued.as_bytes().trim_ascii_end());
            }
            if let Some(c) = &mut self.chain {
                c.advance(self.buf.as_bytes().get(start..).unwrap_or_default());
                c.checkpoint(&mut self.buf, false);
            }
        }
        if self.error.is_none() && !self.buf.is_empty() {
            if let Err(e) = self.buf.flush_to(self.out) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
        if kind == LineKind::Update {
            alerts.clear();
        } else {
            self.seen.append(alerts);
        }
    }

    /// Pushes what was written to the destination.
    pub fn flush(&mut self) -> io::Result<()> {
        match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }

    /// Writes the closing checkpoint of a signed chain, flushes; the first write error, if any.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        // Taken: a file is closed once, and nothing written after it is chained.
        if let Some(mut c) = self.chain.take() {
            self.buf.clear();
            c.checkpoint(&mut self.buf, true);
            self.buf.flush_to(self.out)?;
            self.buf.clear();
        }
        self.out.flush()
    }

    /// Alerts written.
    pub fn alerts(&self) -> &[Alert] {
        &self.seen
    }
}

/// Alerts per severity and rule, and the ten highest-scored, for stderr.
pub fn ranked_summary(alerts: &[Alert]) -> String {
    let mut s = String::new();
    let mut by_sev = [0u64; 4];
    let mut by_rule: BTreeMap<(std::cmp::Reverse<Severity>, &str), (u64, u64)> = BTreeMap::new();
    for a in alerts {
        if let Some(c) = by_sev.get_mut(a.severity as usize) {
            *c += 1;
        }
        let e = by_rule.entry((std::cmp::Reverse(a.severity), a.id.as_str())).or_default();
        e.0 += 1;
        e.1 += a.count;
    }
    let _ = writeln!(
        s,
        "otsensor: {} alerts: {} critical, {} high, {} medium, {} low",
        alerts.len(),
        by_sev[3],
        by_sev[2],
        by_sev[1],
        by_sev[0]
    );
    for ((sev, id), (n, occ)) in &by_rule {
        let _ = writeln!(s, "  {:<8} {id}: {n} alerts ({occ} occurrences)", sev.0.name());
    }
    let mut top: Vec<&Alert> = alerts.iter().collect();
    top.sort_by(|a, b| b.score.cmp(&a.score).then(a.ts_first.cmp(&b.ts_first)).then(a.rule_id.cmp(&b.rule_id)));
    if !top.is_empty() {
        let _ = writeln!(s, "  top alerts:");
    }
    for a in top.into_iter().take(10) {
        let _ = writeln!(s, "  {:>3} {:<8} {} (pkt {}): {}", a.score, a.severity.name(), a.id, a.pkt_first, a.summary);
    }
    s
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::event::{Endpoint, Timestamp};
    use otsensor_models::Severity;

    use super::*;

    fn alert() -> Alert {
        let ep = |ip: [u8; 4], port| Endpoint { ip: ip.into(), port };
        Alert {
            id: "modbus.cold_restart".into(),
            rule_id: 9_100_120,
            rev: 1,
            name: "Device restart",
            severity: Severity::Critical,
            score: 95,
            ts_first: Timestamp { secs: 1_700_000_000, nanos: 500_000_000 },
            ts_last: Timestamp { secs: 1_700_000_001, nanos: 0 },
            pkt_first: 7,
            pkt_last: 9,
            src: ep([10, 0, 0, 9], 40000),
            dst: ep([10, 0, 0, 2], 502),
            protocol: None,
            summary: "s".into(),
            evidence: "e".into(),
            count: 2,
            mitre: Some("T0816"),
            point: None,
            occurrence: 1,
            learn: None,
        }
    }

    fn line(kind: LineKind, loss: bool) -> serde_json::Value {
        let mut out = Vec::new();
        let mut w = AlertWriter::new(&mut out);
        w.set_capture_loss(loss);
        w.write_kind(&mut vec![alert()], kind);
        w.finish().expect("written");
        serde_json::from_slice(&out).expect("one JSON line")
    }

    #[test]
    fn closed_alerts_carry_no_extra_keys_and_live_ones_say_what_they_are() {
        let closed = line(LineKind::Closed, false);
        assert_eq!(closed["count"], 2);
        assert!(closed.get("update").is_none() && closed.get("capture_loss").is_none(), "{closed}");
        let update = line(LineKind::Update, true);
        assert_eq!((update["update"].as_bool(), update["capture_loss"].as_bool()), (Some(true), Some(true)));
        assert!(line(LineKind::Opened, false).get("update").is_none());
    }
}
