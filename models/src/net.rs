//! The network baseline: for every pair of hosts, the services between them (TCP and UDP
//! ports, ICMP types) with counts and rhythm, whatever the protocol; for every address, the
//! MACs ARP bound it to and the IP TTLs its packets carried; the non-IP EtherTypes each MAC
//! speaks. Learned from the engine's [`NetEvent`]s (and the TTL of each PDU), in the
//! [`Network`] section of the baseline document.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use otsensor_dissectors::net::{tcp_seen, ArpOp, ArpPacket, FlowPhase, FlowRecord, L2Record, NetEvent, L4};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::baseline::{format_mac, parse_mac, BaselineError};

/// Services (pair of hosts, transport, port) kept; beyond, new ones are not learned.
pub const MAX_NET_SERVICES: usize = 16_384;
/// Hosts kept.
pub const MAX_NET_HOSTS: usize = 8_192;
/// MACs kept per address.
pub const MAX_MACS: usize = 4;
/// Distinct TTLs kept per address.
pub const MAX_TTLS: usize = 8;
/// (MAC, EtherType) conversations kept.
pub const MAX_L2: usize = 2_048;
/// Seconds of the windows that count SYNs and ARP requests.
pub const NET_WINDOW_SECS: i64 = 10;

/// The network section of a baseline document.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Services between hosts, sorted by client, server, transport, port.
    pub services: Vec<Service>,
    /// Hosts that sent traffic, sorted by address.
    pub hosts: Vec<NetHost>,
    /// Non-IP conversations, sorted by MAC and EtherType.
    pub l2: Vec<L2Service>,
    /// Hosts that scanned or swept the network while learning: nothing they did was
    /// learned (an attacker present then must not learn into the baseline), so they are
    /// new assets to detection. Listed for the reviewer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scanners: Vec<IpAddr>,
}

impl Network {
    /// Whether nothing was learned (a baseline from before the network section).
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.hosts.is_empty() && self.l2.is_empty() && self.scanners.is_empty()
    }
}

/// A service one host used on another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// The side that opened the conversations.
    pub client: IpAddr,
    /// The side called.
    pub server: IpAddr,
    /// `tcp`, `udp` or `icmp`.
    pub transport: String,
    /// Server port (ICMP: type).
    pub port: u16,
    /// Service name, where the port is one an OT network cares about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Conversations learned.
    pub flows: u64,
    /// Mean seconds between the starts of successive conversations (0 with one).
    pub mean_interval_secs: f64,
}

/// What was learned about one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetHost {
    /// The address.
    pub ip: IpAddr,
    /// MACs that ARP bound it to.
    pub macs: Vec<String>,
    /// ARP claims of the address by another MAC while its MAC was active (not learned).
    #[serde(default)]
    pub contested: u64,
    /// IP TTLs of its packets.
    pub ttls: Vec<u8>,
    /// Packets whose TTL was recorded.
    pub ttl_samples: u64,
    /// Packets in its name with a TTL of another family than its own (not learned).
    #[serde(default)]
    pub ttl_contested: u64,
    /// MACs that relayed second copies of its packets (a router the mirror also sees).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// Copies of its packets relayed by the MAC of another host (a man in the middle
    /// forwarding its traffic): not learned.
    #[serde(default)]
    pub relay_contested: u64,
    /// Most TCP SYNs toward it in one window that did not complete a handshake.
    pub max_half_open: u32,
    /// Most distinct addresses it asked ARP for in one window.
    pub max_arp_targets: u32,
}

/// A non-IP EtherType a MAC sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct L2Service {
    /// Source MAC.
    pub mac: String,
    /// EtherType.
    pub ether_type: u16,
    /// Its name, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A service's identity: client, server, transport, port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ServiceKey {
    pub(crate) client: IpAddr,
    pub(crate) server: IpAddr,
    pub(crate) l4: L4,
    pub(crate) port: u16,
}

impl ServiceKey {
    pub(crate) fn of(f: &FlowRecord) -> ServiceKey {
        ServiceKey { client: f.client.ip, server: f.server.ip, l4: f.l4, port: f.server.port }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ServiceStats {
    pub(crate) flows: u64,
    pub(crate) mean_interval_secs: f64,
    pub(crate) last_ns: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct HostModel {
    pub(crate) macs: BTreeSet<[u8; 6]>,
    pub(crate) contested: u64,
    pub(crate) ttls: BTreeSet<u8>,
    pub(crate) ttl_samples: u64,
    pub(crate) ttl_contested: u64,
    pub(crate) via: BTreeSet<[u8; 6]>,
    pub(crate) relay_contested: u64,
    pub(crate) max_half_open: u32,
    pub(crate) max_arp_targets: u32,
    /// Last time the address was claimed by one of its MACs (learning only).
    pub(crate) mac_last_ns: i64,
}

/// The learned network, in the form learning and detection use.
#[derive(Clone, Debug, Default)]
pub struct NetModel {
    pub(crate) services: FxHashMap<ServiceKey, ServiceStats>,
    pub(crate) hosts: FxHashMap<IpAddr, HostModel>,
    pub(crate) l2: BTreeSet<([u8; 6], u16)>,
    /// Hosts that scanned while learning (see [`Network::scanners`]).
    pub(crate) scanners: BTreeSet<IpAddr>,
}

/// Whether an address stands for many hosts or none (broadcast, multicast, unspecified):
/// such addresses are never assets.
pub(crate) fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified() || v4.octets()[3] == 255,
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    }
}

impl NetModel {
    /// Whether the baseline holds a network section (learned by a build that has one).
    pub(crate) fn learned(&self) -> bool {
        !self.hosts.is_empty() || !self.services.is_empty()
    }

    pub(crate) fn from_doc(n: &Network) -> Result<NetModel, BaselineError> {
        let mut m = NetModel::default();
        for s in &n.services {
            let l4 = L4::parse(&s.transport)
                .ok_or_else(|| BaselineError::Invalid(format!("network service transport {:?}", s.transport)))?;
            let key = ServiceKey { client: s.client, server: s.server, l4, port: s.port };
            let st = ServiceStats { flows: s.flows, mean_interval_secs: s.mean_interval_secs, last_ns: None };
            m.services.insert(key, st);
        }
        for h in &n.hosts {
            let mut macs = BTreeSet::new();
            for s in &h.macs {
                macs.insert(parse_mac(s).ok_or_else(|| BaselineError::Invalid(format!("MAC {s:?} of {}", h.ip)))?);
            }
            let mut via = BTreeSet::new();
            for s in &h.via {
                via.insert(parse_mac(s).ok_or_else(|| BaselineError::Invalid(format!("MAC {s:?} of {}", h.ip)))?);
            }
            let hm = HostModel {
                via,
                relay_contested: h.relay_contested,
                macs,
                contested: h.contested,
                ttls: h.ttls.iter().copied().collect(),
                ttl_samples: h.ttl_samples,
                ttl_contested: h.ttl_contested,
                max_half_open: h.max_half_open,
                max_arp_targets: h.max_arp_targets,
                mac_last_ns: i64::MIN,
            };
            m.hosts.insert(h.ip, hm);
        }
        for l in &n.l2 {
            let mac = parse_mac(&l.mac).ok_or_else(|| BaselineError::Invalid(format!("MAC {:?}", l.mac)))?;
            m.l2.insert((mac, l.ether_type));
        }
        m.scanners = n.scanners.iter().copied().collect();
        Ok(m)
    }

    pub(crate) fn to_doc(&self) -> Network {
        let mut services: Vec<Service> = self
            .services
            .iter()
            .filter(|(k, _)| !self.scanners.contains(&k.client))
            .map(|(k, s)| Service {
                client: k.client,
                server: k.server,
                transport: k.l4.name().to_string(),
                port: k.port,
                name: otsensor_dissectors::net::service_name(k.l4, k.port).map(str::to_string),
                flows: s.flows,
                mean_interval_secs: (s.mean_interval_secs * 1000.0).round() / 1000.0,
            })
            .collect();
        services.sort_by(|a, b| {
            (a.client, a.server, &a.transport, a.port).cmp(&(b.client, b.server, &b.transport, b.port))
        });
        let mut hosts: Vec<NetHost> = self
            .hosts
            .iter()
            .map(|(ip, h)| NetHost {
                ip: *ip,
                macs: h.macs.iter().map(|m| format_mac(*m)).collect(),
                contested: h.contested,
                ttls: h.ttls.iter().copied().collect(),
                ttl_samples: h.ttl_samples,
                ttl_contested: h.ttl_contested,
                via: h.via.iter().map(|m| format_mac(*m)).collect(),
                relay_contested: h.relay_contested,
                max_half_open: h.max_half_open,
                max_arp_targets: h.max_arp_targets,
            })
            .collect();
        hosts.sort_by_key(|h| h.ip);
        let l2 = self
            .l2
            .iter()
            .map(|(mac, t)| L2Service {
                mac: format_mac(*mac),
                ether_type: *t,
                name: otsensor_dissectors::net::ether_type_name(*t).map(str::to_string),
            })
            .collect();
        Network { services, hosts, l2, scanners: self.scanners.iter().copied().collect() }
    }

    /// The host entry of `ip`, created while there is room.
    fn host(&mut self, ip: IpAddr) -> Option<&mut HostModel> {
        if is_group(ip) {
            return None;
        }
        if !self.hosts.contains_key(&ip) && self.hosts.len() >= MAX_NET_HOSTS {
            return None;
        }
        Some(self.hosts.entry(ip).or_default())
    }

    /// Records a TTL of `ip`. A TTL of another initial-TTL family than the address's first
    /// (64 for Unix-likes, 128 for Windows, 255 for network gear) means another machine
    /// sends in its name: counted as contested, not learned, so a spoofer active while
    /// learning does not become normal.
    pub(crate) fn learn_ttl(&mut self, ip: IpAddr, ttl: u8) {
        if ttl == 0 {
            return;
        }
        if let Some(h) = self.host(ip) {
            let family = ttl_family(ttl);
            if h.ttls.first().is_some_and(|t| ttl_family(*t) != family) {
                h.ttl_contested += 1;
                return;
            }
            h.ttl_samples += 1;
            if h.ttls.len() < MAX_TTLS {
                h.ttls.insert(ttl);
            }
        }
    }

    fn learn_service(&mut self, key: ServiceKey, ns: i64) {
        if is_group(key.server) {
            return;
        }
        if !self.services.contains_key(&key) && self.services.len() >= MAX_NET_SERVICES {
            return;
        }
        let s = self.services.entry(key).or_default();
        s.flows += 1;
        if let Some(last) = s.last_ns {
            let dt = (ns - last).max(0) as f64 * 1e-9;
            let n = (s.flows - 1) as f64;
            s.mean_interval_secs += (dt - s.mean_interval_secs) / n;
        }
        s.last_ns = Some(ns);
    }

    /// Learns an ARP binding; a second MAC claiming an address whose MAC was active within
    /// the last [`CONTEST_SECS`] is counted as contested, not learned (a poisoning during
    /// learning must not become normal).
    fn learn_arp(&mut self, a: &ArpPacket) {
        let ip = IpAddr::V4(a.sender_ip);
        let ns = a.ts.as_nanos();
        let Some(h) = self.host(ip) else { return };
        if h.macs.contains(&a.sender_mac) {
            h.mac_last_ns = ns;
        } else if h.macs.is_empty() || ns.saturating_sub(h.mac_last_ns) > CONTEST_SECS * 1_000_000_000 {
            if h.macs.len() < MAX_MACS {
                h.macs.insert(a.sender_mac);
            }
            h.mac_last_ns = ns;
        } else {
            h.contested += 1;
        }
    }
}

/// The initial TTL a TTL was most likely sent with: 32, 64, 128 or 255.
pub(crate) fn ttl_family(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32,
        33..=64 => 64,
        65..=128 => 128,
        _ => 255,
    }
}

/// An address whose MAC claimed it within this many seconds is contested by another MAC.
pub const CONTEST_SECS: i64 = 3_600;

/// Distinct addresses one host asks ARP for in a window that make it a scanner while
/// learning (an nmap sweep of a /24 asks 254; a busy gateway a handful).
pub const LEARN_SWEEP_TARGETS: usize = 64;
/// Distinct ports of one host whose connections were refused or left half-open, in a
/// window, that make the client a scanner while learning.
pub const LEARN_SCAN_PORTS: usize = 12;

/// Per-window counts of learning: SYNs and handshakes toward each server, ARP targets of
/// each asker, refused connections of each client.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetLearner {
    syn: FxHashMap<IpAddr, (i64, u32, u32)>,
    arp: FxHashMap<IpAddr, (i64, BTreeSet<std::net::Ipv4Addr>)>,
    refused: FxHashMap<IpAddr, (i64, BTreeSet<(IpAddr, u16)>)>,
    /// Copies of packets relayed by another path: (source, TTL, MAC), judged at the end
    /// when every ARP binding is known.
    relays: BTreeSet<(IpAddr, u8, Option<[u8; 6]>)>,
}

/// Relayed paths remembered while learning.
const MAX_RELAYS: usize = 4096;

/// Whether `mac` is bound by ARP to another address than `ip`.
pub(crate) fn mac_of_another(m: &NetModel, ip: IpAddr, mac: [u8; 6]) -> Option<IpAddr> {
    let mut owners: Vec<IpAddr> =
        m.hosts.iter().filter(|(h, hm)| **h != ip && hm.macs.contains(&mac)).map(|(h, _)| *h).collect();
    owners.sort_unstable();
    owners.first().copied()
}

impl NetLearner {
    /// Learns one event into `m`.
    pub(crate) fn learn(&mut self, m: &mut NetModel, e: &NetEvent) {
        match e {
            NetEvent::Flow(f) => self.flow(m, f),
            NetEvent::Arp(a) => self.arp(m, a),
            NetEvent::L2(l) => learn_l2(m, l),
        }
    }

    fn flow(&mut self, m: &mut NetModel, f: &FlowRecord) {
        let ns = f.ts.as_nanos();
        match f.phase {
            FlowPhase::Start => {
                // A TCP client is learned once its handshake completes: a SYN alone may come
                // from a spoofed address, and a flood must not fill the baseline.
                if f.l4 != L4::Tcp || f.saw(tcp_seen::MIDSTREAM) {
                    m.learn_ttl(f.client.ip, f.ttl[0]);
                    m.learn_service(ServiceKey::of(f), ns);
                }
                if f.l4 == L4::Tcp && f.saw(tcp_seen::SYN) {
                    self.count_syn(m, f.server.ip, ns, 1, 0);
                }
            }
            FlowPhase::Established => {
                m.learn_ttl(f.client.ip, f.ttl[0]);
                m.learn_ttl(f.server.ip, f.ttl[1]);
                m.learn_service(ServiceKey::of(f), ns);
                self.count_syn(m, f.server.ip, ns, 0, 1);
            }
            FlowPhase::End(_) => {
                if f.packets[1] > 0 {
                    m.learn_ttl(f.server.ip, f.ttl[1]);
                }
                if f.l4 == L4::Tcp && !f.saw(tcp_seen::ESTABLISHED) && !f.saw(tcp_seen::MIDSTREAM) {
                    self.refused(m, f);
                }
            }
        }
    }

    /// Counts a connection that never completed; too many distinct ports of one host in a
    /// window make the client a scanner.
    fn refused(&mut self, m: &mut NetModel, f: &FlowRecord) {
        let w = f.ts.as_nanos().div_euclid(60_000_000_000);
        if !self.refused.contains_key(&f.client.ip) && self.refused.len() >= MAX_NET_HOSTS {
            return;
        }
        let e = self.refused.entry(f.client.ip).or_insert_with(|| (w, BTreeSet::new()));
        if e.0 != w {
            *e = (w, BTreeSet::new());
        }
        if e.1.len() < 4096 {
            e.1.insert((f.server.ip, f.server.port));
        }
        let ports = e.1.iter().filter(|(ip, _)| *ip == f.server.ip).count();
        if ports >= LEARN_SCAN_PORTS {
            m.scanners.insert(f.client.ip);
        }
    }

    fn count_syn(&mut self, m: &mut NetModel, server: IpAddr, ns: i64, syn: u32, est: u32) {
        let w = ns.div_euclid(NET_WINDOW_SECS * 1_000_000_000);
        if !self.syn.contains_key(&server) && self.syn.len() >= MAX_NET_HOSTS {
            return;
        }
        let e = self.syn.entry(server).or_insert((w, 0, 0));
        if e.0 != w {
            learn_half_open(m, server, e.1.saturating_sub(e.2));
            *e = (w, 0, 0);
        }
        e.1 += syn;
        e.2 += est;
    }

    fn arp(&mut self, m: &mut NetModel, a: &ArpPacket) {
        if a.sender_ip.is_unspecified() {
            return;
        }
        m.learn_arp(a);
        if a.op != ArpOp::Request || a.is_gratuitous() {
            return;
        }
        let ip = IpAddr::V4(a.sender_ip);
        let w = a.ts.as_nanos().div_euclid(NET_WINDOW_SECS * 1_000_000_000);
        if !self.arp.contains_key(&ip) && self.arp.len() >= MAX_NET_HOSTS {
            return;
        }
        let e = self.arp.entry(ip).or_insert_with(|| (w, BTreeSet::new()));
        if e.0 != w {
            e.0 = w;
            e.1.clear();
        }
        if e.1.len() < 4096 {
            e.1.insert(a.target_ip);
        }
        let n = e.1.len();
        if n >= LEARN_SWEEP_TARGETS {
            m.scanners.insert(ip);
        }
        if let Some(h) = m.host(ip) {
            h.max_arp_targets = h.max_arp_targets.max(n as u32);
        }
    }

    /// A copy of a packet of `src` relayed with `ttl` by `mac`.
    pub(crate) fn relayed(&mut self, src: IpAddr, ttl: u8, mac: Option<[u8; 6]>) {
        if self.relays.len() < MAX_RELAYS {
            self.relays.insert((src, ttl, mac));
        }
    }

    /// Closes the open windows into `m` (at the end of learning).
    pub(crate) fn finish(&mut self, m: &mut NetModel) {
        for (ip, ttl, mac) in std::mem::take(&mut self.relays) {
            if let Some(mac) = mac {
                if mac_of_another(m, ip, mac).is_some() {
                    if let Some(h) = m.host(ip) {
                        h.relay_contested += 1;
                    }
                    continue;
                }
            }
            m.learn_ttl(ip, ttl);
            if let (Some(mac), Some(h)) = (mac, m.host(ip)) {
                if h.via.len() < MAX_MACS {
                    h.via.insert(mac);
                }
            }
        }
        let mut syn: Vec<(IpAddr, u32)> = self.syn.drain().map(|(ip, (_, s, e))| (ip, s.saturating_sub(e))).collect();
        syn.sort_unstable();
        for (ip, half_open) in syn {
            learn_half_open(m, ip, half_open);
        }
    }
}

/// Learns a window's half-open connections toward `server`, unless they were a flood
/// already (a flood while learning must not raise the bar for the next one).
fn learn_half_open(m: &mut NetModel, server: IpAddr, half_open: u32) {
    if half_open >= crate::checks::net::SYN_FLOOD_MIN {
        return;
    }
    if let Some(h) = m.host(server) {
        h.max_half_open = h.max_half_open.max(half_open);
    }
}

fn learn_l2(m: &mut NetModel, l: &L2Record) {
    if m.l2.len() < MAX_L2 {
        m.l2.insert((l.src, l.ether_type));
    }
}

/// Services learned per server, for words: `"tcp/502 (modbus), udp/123 (ntp)"`.
pub(crate) fn services_of(m: &NetModel, client: IpAddr, server: IpAddr) -> String {
    let mut v: BTreeMap<(L4, u16), ()> = BTreeMap::new();
    for k in m.services.keys().filter(|k| k.client == client && k.server == server) {
        v.insert((k.l4, k.port), ());
    }
    if v.is_empty() {
        return "none".to_string();
    }
    let names: Vec<String> = v.keys().take(8).map(|(l4, p)| service_words(*l4, *p)).collect();
    let more = if v.len() > 8 { format!(" and {} more", v.len() - 8) } else { String::new() };
    format!("{}{more}", names.join(", "))
}

/// `"tcp/445 (smb)"`.
pub(crate) fn service_words(l4: L4, port: u16) -> String {
    match (l4, otsensor_dissectors::net::service_name(l4, port)) {
        (L4::Icmp, Some(n)) => format!("icmp type {port} ({n})"),
        (L4::Icmp, None) => format!("icmp type {port}"),
        (_, Some(n)) => format!("{}/{port} ({n})", l4.name()),
        (_, None) => format!("{}/{port}", l4.name()),
    }
}
