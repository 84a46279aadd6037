//! `otsensor inventory`: the assets and conversations a capture shows, with what an asset
//! owner looks at first: assets in no zone, flows no conduit allows, engineering stations,
//! assets the baseline does not know.

mod oui;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use otsensor_models::baseline::{Baseline, Pair};
use otsensor_rules::policy::Service;
use otsensor_rules::Policy;
use serde::Serialize;

/// The vendor registered for a MAC address's prefix, among the vendors of OT networks
/// (`sensor/src/inventory/oui.rs`).
pub fn vendor(mac: [u8; 6]) -> Option<&'static str> {
    let prefix = u32::from_be_bytes([0, mac[0], mac[1], mac[2]]);
    oui::OUI.binary_search_by_key(&prefix, |&(p, _)| p).ok().and_then(|i| oui::OUI.get(i)).map(|&(_, v)| v)
}

/// Parses `02:00:5e:10:00:01` (the baseline's spelling of a MAC).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// How a pair stands against the policy's conduits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ConduitVerdict {
    /// No policy, or client and server in one zone.
    NotApplicable,
    /// A conduit allows it.
    Allowed,
    /// Nothing allows it: why.
    NotAllowed {
        /// In words.
        why: String,
    },
}

/// One asset.
#[derive(Clone, Debug, Serialize)]
pub struct AssetRow {
    /// Address.
    pub ip: IpAddr,
    /// MAC address, when the frames were Ethernet and it never changed.
    pub mac: Option<String>,
    /// Vendor of the MAC's prefix.
    pub vendor: Option<&'static str>,
    /// Policy zone.
    pub zone: Option<String>,
    /// Policy asset name.
    pub name: Option<String>,
    /// Policy criticality.
    pub criticality: Option<u8>,
    /// Role inferred from behaviour.
    pub role: String,
    /// Protocols it spoke.
    pub protocols: Vec<String>,
    /// Identity the protocol revealed (Modbus device identification).
    pub identity: BTreeMap<String, String>,
    /// Whether the baseline given knows it; absent without a baseline.
    pub in_baseline: Option<bool>,
}

/// One conversation.
#[derive(Clone, Debug, Serialize)]
pub struct PairRow {
    /// Client.
    pub client: IpAddr,
    /// Server.
    pub server: IpAddr,
    /// Server port.
    pub port: u16,
    /// Protocol.
    pub protocol: String,
    /// Operation classes used.
    pub classes: Vec<String>,
    /// Units (Modbus unit ids, DNP3 outstation link addresses).
    pub units: Vec<u16>,
    /// Requests.
    pub requests: u64,
    /// Against the conduits.
    pub conduit: ConduitVerdict,
}

/// What to look at first.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    /// Assets in no zone of the policy.
    pub not_in_a_zone: Vec<IpAddr>,
    /// Pairs no conduit allows, in words.
    pub flows_not_allowed: Vec<String>,
    /// Clients that program, restart or configure.
    pub engineering_stations: Vec<IpAddr>,
    /// Assets the baseline does not know.
    pub not_in_baseline: Vec<IpAddr>,
}

/// An inventory.
#[derive(Clone, Debug, Serialize)]
pub struct Inventory {
    /// Assets, by address.
    pub assets: Vec<AssetRow>,
    /// Pairs, by client, server, port, protocol.
    pub pairs: Vec<PairRow>,
    /// What to look at.
    pub findings: Findings,
}

/// The inventory of what `seen` learned, against an optional baseline and policy.
pub fn build(seen: &Baseline, baseline: Option<&Baseline>, policy: Option<&Policy>) -> Inventory {
    let known: Option<BTreeSet<IpAddr>> = baseline.map(|b| b.assets.iter().map(|a| a.ip).collect());
    let mut f = Findings::default();
    let assets: Vec<AssetRow> = seen
        .assets
        .iter()
        .map(|a| {
            let zone = policy.and_then(|p| p.zone_of(a.ip)).map(|(_, z)| z.name.clone());
            let pa = policy.and_then(|p| p.asset(a.ip));
            let role = a.role.name().to_string();
            if policy.is_some() && zone.is_none() {
                f.not_in_a_zone.push(a.ip);
            }
            if role == "engineering_station" {
                f.engineering_stations.push(a.ip);
            }
            let in_baseline = known.as_ref().map(|k| k.contains(&a.ip));
            if in_baseline == Some(false) {
                f.not_in_baseline.push(a.ip);
            }
            AssetRow {
                ip: a.ip,
                mac: a.mac.clone(),
                vendor: a.mac.as_deref().and_then(parse_mac).and_then(vendor),
                zone,
                name: pa.map(|x| x.name.clone()),
                criticality: pa.map(|x| x.criticality),
                role,
                protocols: a.protocols.clone(),
                identity: a.identity.clone(),
                in_baseline,
            }
        })
        .collect();
    let pairs: Vec<PairRow> = seen
        .pairs
        .iter()
        .map(|p| {
            let mut classes: Vec<String> = p.functions.iter().map(|x| x.class.name().to_string()).collect();
            classes.sort();
            classes.dedup();
            let conduit = policy.map_or(ConduitVerdict::NotApplicable, |pol| verdict(pol, p, &classes));
            if let ConduitVerdict::NotAllowed { why } = &conduit {
                f.flows_not_allowed.push(format!("{} -> {}:{} {}: {why}", p.client, p.server, p.port, p.protocol));
            }
            PairRow {
                client: p.client,
                server: p.server,
                port: p.port,
                protocol: p.protocol.clone(),
                classes,
                units: p.units.clone(),
                requests: p.requests,
                conduit,
            }
        })
        .collect();
    Inventory { assets, pairs, findings: f }
}

/// A pair against the conduits between its client's and server's zones.
fn verdict(policy: &Policy, p: &Pair, classes: &[String]) -> ConduitVerdict {
    let zone = |ip| policy.zone_of(ip);
    let (Some((zc, c)), Some((zs, s))) = (zone(p.client), zone(p.server)) else {
        let outside = if zone(p.client).is_none() { p.client } else { p.server };
        return ConduitVerdict::NotAllowed { why: format!("{outside} is in no zone") };
    };
    if zc == zs {
        return ConduitVerdict::NotApplicable;
    }
    let carries = |sv: &Service| match sv {
        Service::Ics(proto) => proto.name() == p.protocol,
        Service::Tcp(port) | Service::Udp(port) => *port == p.port,
    };
    let conduits: Vec<_> =
        policy.conduits.iter().filter(|k| k.from == zc && k.to == zs && k.services.iter().any(carries)).collect();
    if conduits.is_empty() {
        return ConduitVerdict::NotAllowed {
            why: format!("no conduit from zone {} to zone {} carries {}", c.name, s.name, p.protocol),
        };
    }
    let allowed = |class: &String| {
        conduits.iter().any(|k| k.classes.as_ref().map_or(true, |cs| cs.iter().any(|x| x.name() == class)))
    };
    match classes.iter().find(|c| !allowed(c)) {
        None => ConduitVerdict::Allowed,
        Some(class) => ConduitVerdict::NotAllowed {
            why: format!("the conduit from zone {} to zone {} does not allow {class} operations", c.name, s.name),
        },
    }
}

/// The inventory as a table for a terminal.
pub fn table(inv: &Inventory) -> String {
    let mut s = String::new();
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        s,
        "{:<16} {:<18} {:<28} {:<12} {:<14} {:<20} {:<12} IDENTITY",
        "ADDRESS", "MAC", "VENDOR", "ZONE", "NAME", "ROLE", "PROTOCOLS"
    );
    for a in &inv.assets {
        let identity: Vec<String> = a.identity.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "{:<16} {:<18} {:<28} {:<12} {:<14} {:<20} {:<12} {}{}",
            a.ip.to_string(),
            dash(&a.mac),
            a.vendor.unwrap_or("-"),
            dash(&a.zone),
            dash(&a.name),
            a.role,
            a.protocols.join(","),
            identity.join(" "),
            if a.in_baseline == Some(false) { "  [not in the baseline]" } else { "" }
        );
    }
    let _ = writeln!(
        s,
        "\n{:<16} {:<22} {:<12} {:<28} {:<10} CONDUIT",
        "CLIENT", "SERVER", "PROTOCOL", "CLASSES", "REQUESTS"
    );
    for p in &inv.pairs {
        let conduit = match &p.conduit {
            ConduitVerdict::NotApplicable => "-".to_string(),
            ConduitVerdict::Allowed => "allowed".to_string(),
            ConduitVerdict::NotAllowed { why } => format!("NOT ALLOWED: {why}"),
        };
        let _ = writeln!(
            s,
            "{:<16} {:<22} {:<12} {:<28} {:<10} {conduit}",
            p.client.to_string(),
            format!("{}:{}", p.server, p.port),
            p.protocol,
            p.classes.join(","),
            p.requests
        );
    }
    let f = &inv.findings;
    let list = |v: &[IpAddr]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let _ = writeln!(s, "\nTo look at:");
    let _ = writeln!(
        s,
        "  engineering stations: {}",
        if f.engineering_stations.is_empty() { "none".into() } else { list(&f.engineering_stations) }
    );
    if !f.not_in_a_zone.is_empty() {
        let _ = writeln!(s, "  assets in no zone: {}", list(&f.not_in_a_zone));
    }
    for w in &f.flows_not_allowed {
        let _ = writeln!(s, "  flow not allowed: {w}");
    }
    if !f.not_in_baseline.is_empty() {
        let _ = writeln!(s, "  not in the baseline: {}", list(&f.not_in_baseline));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_of_plant_equipment_are_named() {
        assert_eq!(vendor([0x00, 0x00, 0xbc, 1, 2, 3]), Some("Rockwell Automation"));
        assert_eq!(vendor([0x00, 0x01, 0x05, 0, 0, 1]), Some("Beckhoff Automation GmbH"));
        assert_eq!(vendor([0x02, 0x00, 0x00, 0, 0, 1]), None, "locally administered");
        assert!(oui::OUI.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicate");
    }

    #[test]
    fn macs_parse_as_the_baseline_writes_them() {
        assert_eq!(parse_mac("00:0e:8c:aa:bb:cc"), Some([0x00, 0x0e, 0x8c, 0xaa, 0xbb, 0xcc]));
        assert_eq!(parse_mac("00:0e:8c:aa:bb"), None);
        assert_eq!(parse_mac("00:0e:8c:aa:bb:cc:dd"), None);
    }
}
