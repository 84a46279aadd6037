//! The other half of an alert's life: a reviewed alert's subject learned into the baseline
//! (the "learn" button of commercial sensors), so that it never fires again.
//!
//! An alert about something new carries what accepting it learns ([`Learnable`], the
//! `learn` key of its JSON line): a host, a service between two hosts, an ARP binding, a TTL.
//! Novelty inside an industrial protocol (a new pair, function or point) is accepted by
//! learning the traffic itself (`otsensor learn` continues a baseline), since one alert
//! cannot say all a pair does.

use std::net::IpAddr;

use otsensor_dissectors::net::{service_name, L4};

use crate::alert::Learnable;
use crate::baseline::{format_mac, parse_mac, Asset, Baseline, NetHost, Role, Service};

impl Learnable {
    /// The `learn` key of an alert line: `asset`, `service:tcp/445`, `function:7`,
    /// `binding:02:00:00:00:00:66`, `ttl:64`.
    pub fn to_words(self) -> String {
        match self {
            Learnable::Asset => "asset".to_string(),
            Learnable::Service(l4, port) => format!("service:{}/{port}", l4.name()),
            Learnable::Function(f) => format!("function:{f}"),
            Learnable::Binding(mac) => format!("binding:{}", format_mac(mac)),
            Learnable::Ttl(t) => format!("ttl:{t}"),
        }
    }

    /// Reads what [`Learnable::to_words`] wrote.
    pub fn parse(s: &str) -> Option<Learnable> {
        if s == "asset" {
            return Some(Learnable::Asset);
        }
        let (kind, rest) = s.split_once(':')?;
        match kind {
            "service" => {
                let (l4, port) = rest.split_once('/')?;
                Some(Learnable::Service(L4::parse(l4)?, port.parse().ok()?))
            }
            "function" => rest.parse().ok().map(Learnable::Function),
            "binding" => parse_mac(rest).map(Learnable::Binding),
            "ttl" => rest.parse().ok().map(Learnable::Ttl),
            _ => None,
        }
    }
}

/// One reviewed alert, as read back from its JSON line.
#[derive(Clone, Debug)]
pub struct Reviewed {
    /// The alert's id (`net.new_service`).
    pub id: String,
    /// Its source address.
    pub src: IpAddr,
    /// Its destination address.
    pub dst: IpAddr,
    /// What accepting it learns.
    pub learn: Learnable,
}

/// Learns the subjects of reviewed alerts into `b`; returns what was learned, one sentence
/// per fact, in the order given (facts already in the baseline are skipped). The caller
/// re-seals and saves the document.
pub fn accept(b: &mut Baseline, reviewed: &[Reviewed]) -> Vec<String> {
    let mut done = Vec::new();
    for r in reviewed {
        if let Some(words) = accept_one(b, r) {
            done.push(words);
        }
    }
    b.network.hosts.sort_by_key(|h| h.ip);
    b.network
        .services
        .sort_by(|a, c| (a.client, a.server, &a.transport, a.port).cmp(&(c.client, c.server, &c.transport, c.port)));
    b.assets.sort_by_key(|a| a.ip);
    done
}

fn accept_one(b: &mut Baseline, r: &Reviewed) -> Option<String> {
    match r.learn {
        Learnable::Asset => accept_asset(b, r.src),
        Learnable::Service(l4, port) => accept_service(b, r.src, r.dst, l4, port),
        Learnable::Binding(mac) => {
            let h = host(b, r.src)?;
            let m = format_mac(mac);
            if h.macs.contains(&m) {
                return None;
            }
            h.macs.push(m.clone());
            h.macs.sort();
            Some(format!("{} may be at {m}", r.src))
        }
        Learnable::Ttl(t) => {
            let h = host(b, r.src)?;
            if h.ttls.contains(&t) {
                return None;
            }
            h.ttls.push(t);
            h.ttls.sort_unstable();
            h.ttl_samples = h.ttl_samples.max(1);
            Some(format!("{} may send with TTL {t}", r.src))
        }
        // Functions are learned from traffic (see the module's page).
        Learnable::Function(_) => None,
    }
}

/// The network section's entry of `ip`, added when missing.
fn host(b: &mut Baseline, ip: IpAddr) -> Option<&mut NetHost> {
    if !b.network.hosts.iter().any(|h| h.ip == ip) {
        b.network.hosts.push(new_host(ip));
    }
    b.network.hosts.iter_mut().find(|h| h.ip == ip)
}

fn new_host(ip: IpAddr) -> NetHost {
    NetHost {
        ip,
        macs: Vec::new(),
        contested: 0,
        ttls: Vec::new(),
        ttl_samples: 0,
        ttl_contested: 0,
        via: Vec::new(),
        relay_contested: 0,
        max_half_open: 0,
        max_arp_targets: 0,
    }
}

fn accept_asset(b: &mut Baseline, ip: IpAddr) -> Option<String> {
    let known_host = b.network.hosts.iter().any(|h| h.ip == ip);
    let known_asset = b.assets.iter().any(|a| a.ip == ip);
    if known_host && known_asset {
        return None;
    }
    if !known_host {
        b.network.hosts.push(new_host(ip));
    }
    b.network.scanners.retain(|s| *s != ip);
    if !known_asset {
        b.assets.push(Asset {
            ip,
            mac: None,
            mac_varies: false,
            protocols: Vec::new(),
            role: Role::Unknown,
            identity: Default::default(),
            pdus: 0,
            max_servers_per_window: 0,
        });
    }
    Some(format!("{ip} is a known asset"))
}

fn accept_service(b: &mut Baseline, client: IpAddr, server: IpAddr, l4: L4, port: u16) -> Option<String> {
    let transport = l4.name();
    let known = b
        .network
        .services
        .iter()
        .any(|s| s.client == client && s.server == server && s.transport == transport && s.port == port);
    if known {
        return None;
    }
    b.network.services.push(Service {
        client,
        server,
        transport: transport.to_string(),
        port,
        name: service_name(l4, port).map(str::to_string),
        flows: 0,
        mean_interval_secs: 0.0,
    });
    Some(format!("{client} may use {} on {server}", crate::net::service_words(l4, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_alert_learns_reads_back() {
        for l in [
            Learnable::Asset,
            Learnable::Service(L4::Udp, 161),
            Learnable::Function(90),
            Learnable::Binding([2, 0, 0, 0, 0, 0x66]),
            Learnable::Ttl(63),
        ] {
            assert_eq!(Learnable::parse(&l.to_words()), Some(l));
        }
        assert_eq!(Learnable::parse("service:sctp/1"), None);
        assert_eq!(Learnable::parse("ttl:300"), None);
    }
}
