//! What the operator's policy says about an observation: decided by the caller (the sensor
//! applies the rules crate's policy: this crate never depends on it), folded, rate-limited,
//! scored and worded here like every other alert.

use otsensor_dissectors::event::{FunctionClass, Protocol};

use crate::alert::{Folder, Occ};
use crate::model::hash64;
use crate::observation::Observation;
use crate::rules_catalog::{Family, Kind, Severity};

/// One finding of the policy about one observation.
#[derive(Clone, Copy, Debug)]
pub enum PolicyFinding<'a> {
    /// No conduit between the client's and the server's zones carries this flow, or the
    /// conduit does not allow its operation class.
    Conduit {
        /// The client's zone.
        from: &'a str,
        /// The server's zone.
        to: &'a str,
        /// In words.
        why: &'a str,
        /// A write, control or program operation over a conduit that allows only reads:
        /// critical.
        read_only_written: bool,
    },
    /// A written value outside a guardrail: critical whatever the baseline learned.
    Guardrail {
        /// The guardrail's name.
        name: &'a str,
        /// The value written, as the guardrail reads it (type, word order).
        value: f64,
        /// What it breaks, in words.
        why: &'a str,
    },
    /// A rule of the policy matched, with the severity it asks for.
    Rule {
        /// The rule's name.
        name: &'a str,
        /// Its severity.
        severity: Severity,
    },
}

/// The lowest score of a severity band.
fn floor(s: Severity) -> u8 {
    match s {
        Severity::Low => 0,
        Severity::Medium => 35,
        Severity::High => 60,
        Severity::Critical => 85,
    }
}

/// Records a policy finding about `obs` (whose pair's server has criticality `crit`).
pub(crate) fn policy_finding(obs: &Observation<'_>, f: PolicyFinding<'_>, crit: f64, folder: &mut Folder) {
    let (client, server) = obs.client_server();
    let (kind, detail, min_score) = match f {
        PolicyFinding::Conduit { from, to, read_only_written, .. } => {
            let min = if read_only_written { floor(Severity::Critical) } else { floor(Severity::High) };
            (Kind::ConduitViolation, hash64(&(from, to, obs.protocol, read_only_written)), min)
        }
        PolicyFinding::Guardrail { name, .. } => (Kind::GuardrailViolation, hash64(name), floor(Severity::Critical)),
        PolicyFinding::Rule { name, severity } => (Kind::PolicyRule, hash64(name), floor(severity)),
    };
    let occ = Occ {
        kind,
        family: Family::Policy,
        subject: hash64(&(client.ip, server.ip, server.port, obs.protocol)),
        detail,
        ts: obs.ts,
        pkt: obs.pkt,
        ts_last: obs.ts,
        pkt_last: obs.pkt,
        src: client,
        dst: server,
        protocol: Some(obs.protocol),
        class: Some(obs.class),
        deviation: 1.0,
        criticality: crit,
        min_score,
        point: None,
        learn: None,
        stranger: false,
    };
    let (fname, protocol, class) = (obs.func_name, obs.protocol, obs.class);
    folder.hit(occ, || words(f, client.ip, server, fname, protocol, class));
}

fn words(
    f: PolicyFinding<'_>,
    client: std::net::IpAddr,
    server: otsensor_dissectors::event::Endpoint,
    fname: otsensor_dissectors::event::FuncName,
    protocol: Protocol,
    class: FunctionClass,
) -> (String, String) {
    match f {
        PolicyFinding::Conduit { from, to, why, read_only_written } => (
            if read_only_written {
                format!("{client} sent {fname} ({}) to {server} over a read-only conduit", class.name())
            } else {
                format!("{protocol} from {client} (zone {from}) to {server} (zone {to}): no conduit allows it")
            },
            format!("{fname} ({}) from zone {from} to zone {to}: {why}; the policy's conduits say so, whatever the baseline", class.name()),
        ),
        PolicyFinding::Guardrail { name, value, why } => (
            format!("{client} wrote {value} to {server}: outside the guardrail {name:?}"),
            format!("{fname} from {client} wrote {value}, {why} (guardrail {name:?}); a guardrail is alerted whatever the baseline"),
        ),
        PolicyFinding::Rule { name, severity } => (
            format!("Policy rule {name:?}: {client} sent {fname} to {server}"),
            format!("{fname} ({protocol}, {}) from {client} to {server} matched the rule {name:?}, which asks for a {} alert", class.name(), severity.name()),
        ),
    }
}
