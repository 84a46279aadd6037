//! The policy applied: to observations before the baseline scores them (conduits between
//! zones, guardrails on written values, allow and alert rules), and to alerts on their way
//! out (asset criticality into the score, zones and asset names into every alert,
//! suppressions, maintenance windows that mark and lower alerts, never drop them).
//!
//! Time here is the alert's packet time, so a replayed capture meets the windows its
//! packets fell in, exactly as the live sensor did.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use otsensor_dissectors::event::{Access, FunctionClass, Protocol, Space};
use otsensor_models::{Alert, Detector, Observation, PolicyFinding, Severity};
use otsensor_rules::policy::{
    Action, Conduit, Guardrail, HostSel, MaintenanceWindow, PointRef, Rule, Service, ValueType, WordOrder,
};
use otsensor_rules::Policy;

/// What the policy adds to an alert line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// Zone of the source.
    pub src_zone: Option<String>,
    /// Zone of the destination.
    pub dst_zone: Option<String>,
    /// Asset name of the source.
    pub src_asset: Option<String>,
    /// Asset name of the destination.
    pub dst_asset: Option<String>,
    /// The maintenance window the alert fell in.
    pub maintenance: Option<String>,
}

/// A policy, and what applying it has logged.
#[derive(Debug)]
pub struct Applier {
    policy: Policy,
    /// Windows whose end has been logged.
    ended: HashSet<usize>,
    /// Last value written per guardrail, with its time (seconds), for `max_rate`.
    last_values: HashMap<usize, (f64, f64)>,
}

/// Score factor of a criticality 1-5: 0.5 for a lab bench, 1.0 for an ordinary asset
/// (3), 1.5 for a safety system.
pub fn criticality_factor(c: u8) -> f64 {
    0.25 * f64::from(c.clamp(1, 5)) + 0.25
}

impl Applier {
    /// Applies `policy`.
    pub fn new(policy: Policy) -> Self {
        Applier { policy, ended: HashSet::new(), last_values: HashMap::new() }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Gives the detector every asset's criticality.
    pub fn configure(&self, d: &mut Detector) {
        for a in &self.policy.assets {
            d.set_asset_criticality(a.address, criticality_factor(a.criticality));
        }
    }

    /// Drops suppressed alerts, lowers and marks those in maintenance windows, and returns
    /// what each kept alert's line adds, in the same order.
    pub fn apply(&mut self, alerts: &mut Vec<Alert>) -> Vec<Enrichment> {
        alerts.retain(|a| !self.suppressed(a));
        alerts.iter_mut().map(|a| self.enrich(a)).collect()
    }

    fn suppressed(&self, a: &Alert) -> bool {
        let ts = a.ts_first.secs;
        self.policy.suppressions.iter().any(|s| {
            s.rule_id == a.rule_id
                && s.until.map_or(true, |u| ts < u)
                && s.pair.map_or(true, |(c, sv)| c == a.src.ip && sv == a.dst.ip)
                // A suppression limited to a point silences only alerts about that point.
                && s.point.map_or(true, |p| a.point.is_some_and(|ap| point_covers(&p, &ap)))
        })
    }

    fn enrich(&mut self, a: &mut Alert) -> Enrichment {
        self.weigh_level_gap(a);
        let zone = |ip| self.policy.zone_of(ip).map(|(_, z)| z.name.clone());
        let asset = |ip| self.policy.asset(ip).map(|x| x.name.clone());
        let mut e = Enrichment {
            src_zone: zone(a.src.ip),
            dst_zone: zone(a.dst.ip),
            src_asset: asset(a.src.ip),
            dst_asset: asset(a.dst.ip),
            maintenance: None,
        };
        let ts = a.ts_first.secs;
        self.log_ended_windows(ts);
        if let Some(w) = self.policy.maintenance.iter().find(|w| ts >= w.from && ts < w.to && self.covers(w, a)) {
            e.maintenance = Some(w.name.clone());
            a.severity = lower(a.severity);
        }
        e
    }

    /// An alert about traffic from a zone into one of a higher security level weighs more:
    /// +10% of its score per level crossed.
    fn weigh_level_gap(&self, a: &mut Alert) {
        let level = |ip| self.policy.zone_of(ip).map(|(_, z)| z.security_level);
        let (Some(from), Some(to)) = (level(a.src.ip), level(a.dst.ip)) else { return };
        let gap = to.saturating_sub(from);
        if gap == 0 {
            return;
        }
        let score = (f64::from(a.score) * (1.0 + 0.1 * f64::from(gap))).round().min(100.0) as u8;
        a.score = score;
        a.severity = a.severity.max(Severity::from_score(score));
    }

    fn covers(&self, w: &MaintenanceWindow, a: &Alert) -> bool {
        let inside =
            |ip: IpAddr| w.assets.contains(&ip) || self.policy.zone_of(ip).is_some_and(|(i, _)| w.zones.contains(&i));
        inside(a.src.ip) || inside(a.dst.ip)
    }

    /// Logs, once, each window that packet time `ts` has passed the end of.
    fn log_ended_windows(&mut self, ts: i64) {
        for (i, w) in self.policy.maintenance.iter().enumerate() {
            if ts >= w.to && self.ended.insert(i) {
                eprintln!("otsensor: maintenance window {:?} (approved by {}) has ended", w.name, w.approved_by);
            }
        }
    }
}

/// One severity level down (low stays low).
fn lower(s: Severity) -> Severity {
    match s {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium | Severity::Low => Severity::Low,
    }
}

/// What the policy says about one observation, before the baseline does.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Conduit, guardrail and rule findings, owned (the models borrow them to word alerts).
    pub findings: Vec<Finding>,
    /// An allow rule matched: the baseline is not asked about this observation.
    pub allowed: bool,
}

/// One finding, owned.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    /// See [`PolicyFinding::Conduit`].
    Conduit {
        /// Client zone.
        from: String,
        /// Server zone.
        to: String,
        /// In words.
        why: String,
        /// Read-only conduit written.
        read_only_written: bool,
    },
    /// See [`PolicyFinding::Guardrail`].
    Guardrail {
        /// Guardrail name.
        name: String,
        /// The value as the guardrail reads it.
        value: f64,
        /// In words.
        why: String,
    },
    /// See [`PolicyFinding::Rule`].
    Rule {
        /// Rule name.
        name: String,
        /// Its severity.
        severity: Severity,
    },
}

impl Finding {
    /// The borrowed form the models take.
    pub fn as_model(&self) -> PolicyFinding<'_> {
        match self {
            Finding::Conduit { from, to, why, read_only_written } => {
                PolicyFinding::Conduit { from, to, why, read_only_written: *read_only_written }
            }
            Finding::Guardrail { name, value, why } => PolicyFinding::Guardrail { name, value: *value, why },
            Finding::Rule { name, severity } => PolicyFinding::Rule { name, severity: *severity },
        }
    }
}

impl Applier {
    /// Checks an observation against the conduits, guardrails and rules. Requests only: a
    /// response follows what its request already said.
    pub fn check(&mut self, obs: &Observation<'_>) -> Verdict {
        let mut v = Verdict::default();
        if !obs.is_request {
            return v;
        }
        if let Some(f) = self.conduit(obs) {
            v.findings.push(f);
        }
        self.guardrails(obs, &mut v.findings);
        if let Some(r) = self.policy.rules.iter().find(|r| rule_matches(&self.policy, r, obs)) {
            match r.action {
                Action::Allow => v.allowed = true,
                Action::Alert(sev) => {
                    v.findings.push(Finding::Rule { name: r.name.clone(), severity: severity_of(sev) })
                }
            }
        }
        v
    }

    fn conduit(&self, obs: &Observation<'_>) -> Option<Finding> {
        let (client, server) = obs.client_server();
        let ((zc, c), (zs, s)) = (self.policy.zone_of(client.ip)?, self.policy.zone_of(server.ip)?);
        if zc == zs {
            return None;
        }
        let carries = |sv: &Service| match sv {
            Service::Ics(p) => *p == obs.protocol,
            Service::Tcp(port) | Service::Udp(port) => *port == server.port,
        };
        let conduits: Vec<_> = self
            .policy
            .conduits
            .iter()
            .filter(|k| k.from == zc && k.to == zs && k.services.iter().any(carries))
            .collect();
        let (from, to) = (c.name.clone(), s.name.clone());
        if conduits.is_empty() {
            let why = format!("no conduit from zone {from} to zone {to} carries {}", obs.protocol);
            return Some(Finding::Conduit { from, to, why, read_only_written: false });
        }
        let allows = |k: &&Conduit| k.classes.as_ref().map_or(true, |cs| cs.contains(&obs.class));
        if conduits.iter().any(allows) {
            return None;
        }
        let read_only =
            conduits.iter().all(|k| k.classes.as_ref().is_some_and(|cs| cs.iter().all(|c| *c == FunctionClass::Read)));
        let changes = matches!(obs.class, FunctionClass::Write | FunctionClass::Control | FunctionClass::Program);
        let why = format!("the conduit from zone {from} to zone {to} does not allow {} operations", obs.class.name());
        Some(Finding::Conduit { from, to, why, read_only_written: read_only && changes })
    }

    fn guardrails(&mut self, obs: &Observation<'_>, out: &mut Vec<Finding>) {
        let server = obs.client_server().1.ip;
        let ts = obs.ts.as_secs_f64();
        for (i, g) in self.policy.guardrails.iter().enumerate() {
            if g.device != server
                || !point_matches(&g.point, obs.protocol, obs.unit, |sp| written(obs, sp, g.point.index))
            {
                continue;
            }
            let Some(value) = read_value(g, obs) else { continue };
            let last = self.last_values.insert(i, (ts, value));
            if let Some(why) = guardrail_breach(g, value, last, ts) {
                out.push(Finding::Guardrail { name: g.name.clone(), value, why });
            }
        }
    }
}

/// The severity a rule names.
fn severity_of(name: &str) -> Severity {
    match name {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        _ => Severity::Low,
    }
}

/// Whether the observation writes a value at `index` of a space `space_ok` accepts.
fn written(obs: &Observation<'_>, space_ok: &dyn Fn(Space) -> bool, index: u32) -> bool {
    obs.values.iter().any(|v| v.access == Access::Write && v.index == index && space_ok(v.space))
}

/// Whether a guardrail's point is the one an observation touches.
fn point_matches(
    p: &PointRef,
    protocol: Protocol,
    unit: u16,
    touches: impl Fn(&dyn Fn(Space) -> bool) -> bool,
) -> bool {
    if p.protocol != protocol || p.unit.is_some_and(|u| u != unit) {
        return false;
    }
    let want = p.space;
    touches(&|sp: Space| match (want, sp) {
        (Space::Dnp3 { group, variation: 0 }, Space::Dnp3 { group: g, .. }) => g == group,
        (a, b) => a == b,
    })
}

/// The value a guardrail reads from the written values (two registers for 32-bit types).
fn read_value(g: &Guardrail, obs: &Observation<'_>) -> Option<f64> {
    let at = |i: u32| obs.values.iter().find(|v| v.access == Access::Write && v.index == i).map(|v| v.value);
    let first = at(g.point.index)?;
    if g.value_type.registers() == 1 {
        return Some(match g.value_type {
            ValueType::I16 => f64::from(first as u16 as i16),
            _ => first as f64,
        });
    }
    let second = at(g.point.index + 1)?;
    let (hi, lo) = match g.word_order {
        WordOrder::Big => (first as u16, second as u16),
        WordOrder::Little => (second as u16, first as u16),
    };
    let bits = (u32::from(hi) << 16) | u32::from(lo);
    Some(match g.value_type {
        ValueType::I32 => f64::from(bits as i32),
        ValueType::F32 => f64::from(f32::from_bits(bits)),
        _ => f64::from(bits),
    })
}

/// What a value breaks of a guardrail, given the previous write `(time, value)`.
fn guardrail_breach(g: &Guardrail, value: f64, last: Option<(f64, f64)>, ts: f64) -> Option<String> {
    if let Some((lo, hi)) = g.range.filter(|&(lo, hi)| !(lo..=hi).contains(&value)) {
        return Some(format!("outside its safe range [{lo}, {hi}]"));
    }
    if let Some(vs) = g.values.as_ref().filter(|vs| !vs.contains(&value)) {
        return Some(format!("not one of its allowed values {vs:?}"));
    }
    let (Some(max), Some((t0, v0))) = (g.max_rate, last) else { return None };
    let dt = (ts - t0).max(1e-3);
    let rate = (value - v0).abs() / dt;
    (rate > max).then(|| format!("changed by {} in {dt:.3} s ({rate:.1}/s, at most {max}/s)", value - v0))
}

/// Whether the points of an alert include a policy's point.
fn point_covers(p: &PointRef, ap: &otsensor_models::AlertPoint) -> bool {
    let space = match (p.space, ap.space) {
        (Space::Dnp3 { group, variation: 0 }, Space::Dnp3 { group: g, .. }) => g == group,
        (a, b) => a == b,
    };
    space && p.unit.map_or(true, |u| u == ap.unit) && (ap.first..=ap.last).contains(&p.index)
}

/// Whether a rule matches an observation.
fn rule_matches(policy: &Policy, r: &Rule, obs: &Observation<'_>) -> bool {
    let (client, server) = obs.client_server();
    let hosts = |sel: &HostSel, ip: IpAddr| match sel {
        HostSel::Any => true,
        HostSel::Zone(z) => policy.zone_of(ip).is_some_and(|(i, _)| i == *z),
        HostSel::Network(n) => n.contains(ip),
    };
    r.protocol.map_or(true, |p| p == obs.protocol)
        && r.function.map_or(true, |f| f == obs.func)
        && r.class.map_or(true, |c| c == obs.class)
        && r.unit.map_or(true, |u| u == obs.unit)
        && r.address.map_or(true, |(a, b)| {
            obs.points.iter().any(|p| p.start <= b && p.start.saturating_add(p.count.max(1) - 1) >= a)
        })
        && r.value
            .map_or(true, |(a, b)| obs.values.iter().any(|v| v.access == Access::Write && (a..=b).contains(&v.value)))
        && hosts(&r.src, client.ip)
        && hosts(&r.dst, server.ip)
}

/// Scores one observation under a policy: its findings first, then the baseline, unless an
/// allow rule matched.
pub fn observe(d: &mut Detector, policy: Option<&mut Applier>, obs: &Observation<'_>) {
    if let Some(p) = policy {
        let v = p.check(obs);
        for f in &v.findings {
            d.policy(obs, f.as_model());
        }
        if v.allowed {
            return;
        }
    }
    d.observe(obs);
}

/// [`observe`] for a PDU, through a reused observation buffer (the caller's, not the
/// detector's: the detector's own would have to be moved out and back for every PDU).
pub fn observe_pdu(
    d: &mut Detector,
    policy: Option<&mut Applier>,
    pdu: &otsensor_dissectors::event::Pdu<'_>,
    scratch: &mut otsensor_models::ObservationLog,
) {
    observe(d, policy, &scratch.one(pdu));
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::engine::{Engine, EngineConfig};
    use otsensor_dissectors::event::{Pdu, Protocol, Timestamp};
    use otsensor_dissectors::packet::linktype;
    use otsensor_models::ObservationLog;
    use otsensor_rules::Known;

    use super::*;

    /// A raw IPv4/TCP packet from 10.0.1.`src`:40000 to 10.0.2.`dst`:502 carrying `payload`.
    fn packet(src: u8, dst: u8, payload: &[u8]) -> Vec<u8> {
        crate::testutil::modbus_segment([10, 0, 1, src], [10, 0, 2, dst], payload)
    }

    /// MBAP (transaction 1, protocol 0, length, unit 1) and the PDU.
    fn adu(pdu: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 1, 0, 0];
        v.extend(((pdu.len() + 1) as u16).to_be_bytes());
        v.push(1);
        v.extend(pdu);
        v
    }

    /// The verdict on one request from 10.0.1.`src` to 10.0.2.`dst` at second `t`.
    fn verdict(a: &mut Applier, src: u8, dst: u8, pdu: &[u8], t: i64) -> Verdict {
        let mut log = ObservationLog::new();
        let mut engine = Engine::new(EngineConfig::default());
        let p = packet(src, dst, &adu(pdu));
        engine.process(Timestamp { secs: t, nanos: 0 }, 1, linktype::RAW, &p, &mut |pdu: &Pdu<'_>| {
            log.push(pdu);
        });
        let obs = log.get(0).expect("dissected");
        a.check(&obs)
    }

    fn applier(text: &str) -> Applier {
        let known = Known { rule_id: &|_| true };
        Applier::new(otsensor_rules::load("test.toml", text, &known).unwrap_or_else(|e| panic!("{e}")))
    }

    const ZONES: &str = "[[zone]]\nname = \"hmi\"\nnetworks = [\"10.0.1.0/24\"]\nsecurity_level = 2\n\
                         [[zone]]\nname = \"control\"\nnetworks = [\"10.0.2.0/24\"]\nsecurity_level = 3\n";
    // FC 3 read holding registers 0, quantity 1; FC 6 write single register 4 = value.
    const READ: [u8; 5] = [3, 0, 0, 0, 1];
    fn write(value: u16) -> Vec<u8> {
        let mut v = vec![6, 0, 4];
        v.extend(value.to_be_bytes());
        v
    }

    #[test]
    fn traffic_between_zones_without_a_conduit_is_a_violation() {
        let mut a = applier(ZONES);
        let v = verdict(&mut a, 5, 9, &READ, 0);
        assert!(
            matches!(&v.findings[..], [Finding::Conduit { read_only_written: false, why, .. }] if why.contains("no conduit from zone hmi to zone control carries modbus")),
            "{v:?}"
        );
    }

    #[test]
    fn a_write_over_a_read_only_conduit_is_critical_and_a_read_is_fine() {
        let mut a = applier(&format!(
            "{ZONES}[[conduit]]\nfrom = \"hmi\"\nto = \"control\"\nprotocols = [\"modbus\"]\nclasses = [\"read\"]\n"
        ));
        assert!(verdict(&mut a, 5, 9, &READ, 0).findings.is_empty());
        let v = verdict(&mut a, 5, 9, &write(7), 1);
        assert!(matches!(&v.findings[..], [Finding::Conduit { read_only_written: true, .. }]), "{v:?}");
    }

    const GUARD: &str = "[[guardrail]]\nname = \"setpoint\"\ndevice = \"10.0.2.9\"\n\
                         point = { protocol = \"modbus\", unit = 1, space = \"holding_registers\", address = 4 }\n";

    #[test]
    fn guardrails_check_range_allowed_values_and_rate() {
        let mut a = applier(&format!("{GUARD}range = [0.0, 100.0]\nmax_rate = 10.0\n"));
        assert!(verdict(&mut a, 5, 9, &write(50), 0).findings.is_empty());
        let v = verdict(&mut a, 5, 9, &write(500), 100);
        assert!(
            matches!(&v.findings[..], [Finding::Guardrail { value, why, .. }] if *value == 500.0 && why.contains("[0, 100]")),
            "{v:?}"
        );
        let v = verdict(&mut a, 5, 9, &write(90), 101);
        assert!(
            matches!(&v.findings[..], [Finding::Guardrail { why, .. }] if why.contains("at most 10/s")),
            "too fast: {v:?}"
        );
        let mut a = applier(&format!("{GUARD}values = [0.0, 1.0]\n"));
        assert!(verdict(&mut a, 5, 9, &write(1), 0).findings.is_empty());
        assert_eq!(verdict(&mut a, 5, 9, &write(2), 1).findings.len(), 1);
        assert!(verdict(&mut a, 5, 8, &write(2), 2).findings.is_empty(), "another device");
    }

    #[test]
    fn a_32_bit_float_across_two_registers_is_read_in_its_word_order() {
        let text = "[[guardrail]]\nname = \"temperature\"\ndevice = \"10.0.2.9\"\n\
                    point = { protocol = \"modbus\", space = \"holding_registers\", address = 100 }\n\
                    type = \"f32\"\nword_order = \"big\"\nrange = [20.0, 95.0]\n";
        let mut a = applier(text);
        let fc16 = |f: f32| {
            let b = f.to_bits();
            // FC 16, address 100, quantity 2, byte count 4, high word then low word.
            let mut v = vec![16, 0, 100, 0, 2, 4];
            v.extend(((b >> 16) as u16).to_be_bytes());
            v.extend((b as u16).to_be_bytes());
            v
        };
        assert!(verdict(&mut a, 5, 9, &fc16(80.5), 0).findings.is_empty());
        let v = verdict(&mut a, 5, 9, &fc16(120.25), 1);
        assert!(matches!(&v.findings[..], [Finding::Guardrail { value, .. }] if *value == 120.25), "{v:?}");
    }

    fn alert_at(secs: i64, src: [u8; 4]) -> Alert {
        use otsensor_dissectors::event::Endpoint;
        Alert {
            id: "modbus.new_pair".into(),
            rule_id: 9_100_102,
            rev: 1,
            name: "New communication pair",
            severity: Severity::High,
            score: 65,
            ts_first: Timestamp { secs, nanos: 0 },
            ts_last: Timestamp { secs, nanos: 0 },
            pkt_first: 1,
            pkt_last: 1,
            src: Endpoint { ip: src.into(), port: 40000 },
            dst: Endpoint { ip: [10, 0, 2, 9].into(), port: 502 },
            protocol: Some(Protocol::Modbus),
            summary: String::new(),
            evidence: String::new(),
            count: 1,
            mitre: None,
            point: None,
            occurrence: 1,
            learn: None,
        }
    }

    #[test]
    fn maintenance_windows_mark_and_lower_inside_and_stop_at_their_end() {
        // 2026-01-01T00:00:00Z is 1767225600.
        let mut a = applier(
            "[[maintenance]]\nname = \"retrofit\"\nfrom = 2026-01-01T00:00:00Z\nto = 2026-01-01T01:00:00Z\n\
             assets = [\"10.0.2.9\"]\napproved_by = \"x\"\n",
        );
        let mut alerts =
            vec![alert_at(1_767_225_600 + 60, [10, 0, 1, 5]), alert_at(1_767_225_600 + 3600, [10, 0, 1, 5])];
        let e = a.apply(&mut alerts);
        assert_eq!(e[0].maintenance.as_deref(), Some("retrofit"));
        assert_eq!(alerts[0].severity, Severity::Medium, "lowered one level");
        assert_eq!(e[1].maintenance, None, "the window ended");
        assert_eq!(alerts[1].severity, Severity::High);
    }

    #[test]
    fn rules_alert_with_their_severity_or_allow() {
        let text = format!(
            "{ZONES}[[conduit]]\nfrom = \"hmi\"\nto = \"control\"\nprotocols = [\"modbus\"]\n\
             [[rule]]\nname = \"no register 4 from .5\"\naction = \"alert\"\nseverity = \"high\"\nprotocol = \"modbus\"\n\
             function = \"WRITE_SINGLE_REGISTER\"\naddress = [4, 4]\nsrc = \"10.0.1.5\"\n\
             [[rule]]\nname = \"historian\"\naction = \"allow\"\nclass = \"read\"\nsrc = \"10.0.1.7\"\n"
        );
        let mut a = applier(&text);
        let v = verdict(&mut a, 5, 9, &write(1), 0);
        assert!(matches!(&v.findings[..], [Finding::Rule { severity: Severity::High, .. }]) && !v.allowed, "{v:?}");
        assert!(verdict(&mut a, 6, 9, &write(1), 0).findings.is_empty(), "another source");
        let v = verdict(&mut a, 7, 9, &READ, 0);
        assert!(v.allowed && v.findings.is_empty(), "{v:?}");
    }
}
