//! The policy applied to alerts on their way out: asset criticality into the score, zones
//! and asset names into every alert, suppressions, and maintenance windows that mark and
//! lower alerts (never drop them).
//!
//! Time here is the alert's packet time, so a replayed capture meets the windows its
//! packets fell in, exactly as the live sensor did.

use std::collections::HashSet;
use std::net::IpAddr;

use otsensor_models::{Alert, Detector, Severity};
use otsensor_rules::policy::MaintenanceWindow;
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
}

/// Score factor of a criticality 1-5: 0.5 for a lab bench, 1.0 for an ordinary asset
/// (3), 1.5 for a safety system.
pub fn criticality_factor(c: u8) -> f64 {
    0.25 * f64::from(c.clamp(1, 5)) + 0.25
}

impl Applier {
    /// Applies `policy`.
    pub fn new(policy: Policy) -> Self {
        Applier { policy, ended: HashSet::new() }
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
                // An alert names no point in structured form yet: a suppression limited to a
                // point never matches rather than silencing the whole pair.
                && s.point.is_none()
        })
    }

    fn enrich(&mut self, a: &mut Alert) -> Enrichment {
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
