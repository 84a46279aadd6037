//! Rules about all traffic, from the engine's conversation records, ARP packets and L2
//! conversations: `new_service`, `remote_access`, `file_transfer`, `new_asset` (any
//! protocol), `port_scan`, `host_sweep`, `syn_flood`, `arp_spoofing`, `ttl_changed`,
//! `tcp_injection`.
//!
//! The rules that compare with the baseline's network section stay off for a baseline that
//! has none (learned before it existed); scans, floods and injection need no baseline.

use std::net::{IpAddr, Ipv4Addr};

use otsensor_dissectors::event::{Endpoint, Notice, NoticeKind, Timestamp};
use otsensor_dissectors::net::{
    service_kind, tcp_seen, ArpOp, ArpPacket, FlowPhase, FlowRecord, L2Record, ServiceKind, L4,
};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::alert::{Folder, Learnable, Occ};
use crate::model::{hash64, Model};
use crate::net::{is_group, ServiceKey, NET_WINDOW_SECS};
use crate::rules_catalog::{Family, Kind};
use crate::words;

/// Distinct ports of one host, never used by the source, probed in one scan window.
pub const PORT_SCAN_PORTS: usize = 12;
/// Distinct hosts the source never talked to, probed in one scan window (ARP included).
pub const HOST_SWEEP_HOSTS: usize = 12;
/// Seconds of the scan windows (scans are often slow on purpose: longer than the rate
/// windows).
pub const SCAN_WINDOW_SECS: i64 = 60;
/// Half-open SYNs toward one host in one window that make a flood, at least (or ten times
/// the most learned, whichever is more).
pub const SYN_FLOOD_MIN: u32 = 200;
/// TTL samples an address needs in the baseline before a TTL outside its set is alerted
/// (one hop more or less: a route may change).
pub const MIN_TTL_SAMPLES: u64 = 20;
/// TTL samples an address needs before a TTL of another initial-TTL family is alerted
/// (another operating system sending in its name needs less evidence).
pub const MIN_TTL_FAMILY_SAMPLES: u64 = 3;
/// Sources and servers tracked by the scan and flood windows; beyond, new ones share no
/// state (a spoofed flood from a million sources is still seen per server).
pub const MAX_TRACKED: usize = 16_384;
/// Entries a window's sets keep.
const MAX_SET: usize = 1_024;

/// What one source did in the current scan window.
#[derive(Debug, Default)]
struct SourceWin {
    w: i64,
    ports: FxHashMap<IpAddr, FxHashSet<(L4, u16)>>,
    hosts: FxHashSet<IpAddr>,
}

/// Detection state of the network rules (rebuilt for each run).
#[derive(Debug, Default)]
pub(crate) struct NetRt {
    sources: FxHashMap<IpAddr, SourceWin>,
    syn: FxHashMap<IpAddr, (i64, u32, u32)>,
}

/// What every network rule reads.
pub(crate) struct NetCx<'a> {
    pub(crate) model: &'a Model,
    pub(crate) learned: &'a str,
    pub(crate) crit: &'a FxHashMap<IpAddr, f64>,
    /// Watching while a baseline is learned: only what needs no baseline, and only what
    /// cannot be a device starting up (refused connections, sweeps of a whole subnet).
    pub(crate) watch: bool,
}

impl NetCx<'_> {
    fn occ(&self, kind: Kind, ts: Timestamp, pkt: u64, src: Endpoint, dst: Endpoint) -> Occ {
        Occ {
            kind,
            family: Family::Net,
            subject: hash64(&(src.ip, dst.ip)),
            detail: 0,
            ts,
            pkt,
            ts_last: ts,
            pkt_last: pkt,
            src,
            dst,
            protocol: None,
            class: None,
            deviation: 1.0,
            criticality: self.crit.get(&dst.ip).copied().unwrap_or(1.0),
            min_score: 0,
            point: None,
            learn: None,
        }
    }
    fn baseline(&self) -> bool {
        self.model.net.learned()
    }
    /// Whether `ip` is a device of the baseline (an ICS asset or a network host).
    fn known(&self, ip: IpAddr) -> bool {
        self.model.assets.contains_key(&ip) || self.model.net.hosts.contains_key(&ip)
    }
}

impl NetRt {
    /// One conversation record.
    pub(crate) fn flow(&mut self, f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
        if cx.watch {
            return self.watch_flow(f, cx, folder);
        }
        match f.phase {
            FlowPhase::Start => {
                new_asset(f.client.ip, f.server, f.ts, f.pkt, cx, folder);
                ttl_changed(f.client, f.server, f.ttl[0], f.ts, f.pkt, cx, folder);
                if f.saw(tcp_seen::SYN_PAYLOAD) {
                    tcp_injection_syn(f, cx, folder);
                }
                if f.l4 != L4::Tcp {
                    new_service(f, cx, folder);
                }
                self.scan(f, cx, folder);
                if f.l4 == L4::Tcp && f.saw(tcp_seen::SYN) {
                    self.syn(f, 1, 0, cx, folder);
                }
            }
            FlowPhase::Established => {
                new_asset(f.server.ip, f.client, f.ts, f.pkt, cx, folder);
                ttl_changed(f.server, f.client, f.ttl[1], f.ts, f.pkt, cx, folder);
                new_service(f, cx, folder);
                self.syn(f, 0, 1, cx, folder);
            }
            FlowPhase::End(_) => {}
        }
    }

    /// While learning: SYN floods, SYNs with data, and scans seen as refused connections.
    fn watch_flow(&mut self, f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
        match f.phase {
            FlowPhase::Start if f.l4 == L4::Tcp => {
                if f.saw(tcp_seen::SYN_PAYLOAD) {
                    tcp_injection_syn(f, cx, folder);
                }
                if f.saw(tcp_seen::SYN) {
                    self.syn(f, 1, 0, cx, folder);
                }
            }
            FlowPhase::Established => self.syn(f, 0, 1, cx, folder),
            FlowPhase::End(_) if f.l4 == L4::Tcp && !f.saw(tcp_seen::ESTABLISHED | tcp_seen::MIDSTREAM) => {
                self.scan(f, cx, folder);
            }
            _ => {}
        }
    }

    /// Counts a conversation toward a service its client never used in the source's scan
    /// window; alerts when the window holds too many ports of one host, or too many hosts.
    fn scan(&mut self, f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
        let key = ServiceKey::of(f);
        if cx.model.net.services.contains_key(&key) || is_group(f.server.ip) {
            return;
        }
        let (ports, hosts) = {
            let Some(s) = self.source(f.client.ip, f.ts) else { return };
            let ports = s.ports.entry(f.server.ip).or_default();
            if ports.len() < MAX_SET {
                ports.insert((f.l4, f.server.port));
            }
            let n_ports = ports.len();
            if s.hosts.len() < MAX_SET {
                s.hosts.insert(f.server.ip);
            }
            (n_ports, s.hosts.len())
        };
        if ports >= PORT_SCAN_PORTS {
            let mut o = cx.occ(Kind::PortScan, f.ts, f.pkt, f.client, Endpoint { ip: f.server.ip, port: 0 });
            o.deviation = crate::checks::deviation(ports as f64, PORT_SCAN_PORTS as f64);
            folder.hit(o, || words::port_scan(f.client.ip, f.server.ip, ports, SCAN_WINDOW_SECS, cx.learned));
        }
        if hosts >= HOST_SWEEP_HOSTS {
            self.sweep_alert(f.client.ip, hosts, f.ts, f.pkt, "connections", cx, folder);
        }
    }

    fn source(&mut self, ip: IpAddr, ts: Timestamp) -> Option<&mut SourceWin> {
        let w = ts.as_nanos().div_euclid(SCAN_WINDOW_SECS * 1_000_000_000);
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_TRACKED {
            self.sources.retain(|_, s| s.w >= w);
            if self.sources.len() >= MAX_TRACKED {
                return None;
            }
        }
        let s = self.sources.entry(ip).or_default();
        if s.w != w {
            *s = SourceWin { w, ..SourceWin::default() };
        }
        Some(s)
    }

    #[allow(clippy::too_many_arguments)]
    fn sweep_alert(
        &self,
        src: IpAddr,
        hosts: usize,
        ts: Timestamp,
        pkt: u64,
        how: &'static str,
        cx: &NetCx<'_>,
        folder: &mut Folder,
    ) {
        let any = Endpoint { ip: src, port: 0 };
        let mut o = cx.occ(Kind::HostSweep, ts, pkt, any, any);
        o.subject = hash64(&src);
        o.deviation = crate::checks::deviation(hosts as f64, HOST_SWEEP_HOSTS as f64);
        folder.hit(o, || words::host_sweep(src, hosts, how, SCAN_WINDOW_SECS, cx.learned));
    }

    /// Counts SYNs and completed handshakes toward a server; alerts far more half-open
    /// connections in a window than learned.
    fn syn(&mut self, f: &FlowRecord, syn: u32, est: u32, cx: &NetCx<'_>, folder: &mut Folder) {
        let server = f.server.ip;
        let w = f.ts.as_nanos().div_euclid(NET_WINDOW_SECS * 1_000_000_000);
        if !self.syn.contains_key(&server) && self.syn.len() >= MAX_TRACKED {
            self.syn.retain(|_, e| e.0 >= w);
            if self.syn.len() >= MAX_TRACKED {
                return;
            }
        }
        let e = self.syn.entry(server).or_insert((w, 0, 0));
        if e.0 != w {
            *e = (w, 0, 0);
        }
        e.1 += syn;
        e.2 += est;
        let half_open = e.1.saturating_sub(e.2);
        let learned_max = cx.model.net.hosts.get(&server).map_or(0, |h| h.max_half_open);
        let threshold = SYN_FLOOD_MIN.max(learned_max.saturating_mul(10));
        if syn == 0 || half_open < threshold {
            return;
        }
        let dst = Endpoint { ip: server, port: f.server.port };
        let mut o = cx.occ(Kind::SynFlood, f.ts, f.pkt, f.client, dst);
        o.subject = hash64(&server);
        o.deviation = crate::checks::deviation(f64::from(half_open), f64::from(threshold));
        folder.hit(o, || words::syn_flood(dst, half_open, NET_WINDOW_SECS, learned_max, cx.learned));
    }

    /// One ARP packet: bindings against the learned ones, and ARP sweeps.
    pub(crate) fn arp(&mut self, a: &ArpPacket, cx: &NetCx<'_>, folder: &mut Folder) {
        if a.sender_ip.is_unspecified() {
            return;
        }
        let sender = IpAddr::V4(a.sender_ip);
        if cx.baseline() {
            let fake = Endpoint { ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), port: 0 };
            new_asset(sender, fake, a.ts, a.pkt, cx, folder);
            arp_spoofing(a, cx, folder);
        }
        if a.op != ArpOp::Request || a.is_gratuitous() {
            return;
        }
        let target = IpAddr::V4(a.target_ip);
        if cx.known(target) && cx.model.net.hosts.get(&sender).is_some() {
            // Asking for a device it may well talk to: only unknown targets make a sweep.
            return;
        }
        let hosts = {
            let Some(s) = self.source(sender, a.ts) else { return };
            if s.hosts.len() < MAX_SET {
                s.hosts.insert(target);
            }
            s.hosts.len()
        };
        let learned_max = cx.model.net.hosts.get(&sender).map_or(0, |h| h.max_arp_targets as usize);
        let floor = if cx.watch { crate::net::LEARN_SWEEP_TARGETS } else { HOST_SWEEP_HOSTS };
        if hosts >= floor.max(learned_max.saturating_mul(2)) {
            self.sweep_alert(sender, hosts, a.ts, a.pkt, "ARP requests", cx, folder);
        }
    }
}

/// Deviation of a new asset that talks to another host, below the ICS rule's (a device
/// that speaks an industrial protocol is the one that matters most).
const NEW_HOST_TALKS: f64 = 0.8;
/// Deviation of a new asset seen only announcing itself (ARP, broadcasts, multicast):
/// worth a look, not an investigation.
const NEW_HOST_ANNOUNCES: f64 = 0.5;

/// `new_asset` for any protocol: an address that sends, never seen while learning.
fn new_asset(ip: IpAddr, other: Endpoint, ts: Timestamp, pkt: u64, cx: &NetCx<'_>, folder: &mut Folder) {
    if !cx.baseline() || is_group(ip) || cx.known(ip) {
        return;
    }
    let me = Endpoint { ip, port: 0 };
    let mut o = cx.occ(Kind::NewAsset, ts, pkt, me, other);
    o.subject = hash64(&ip);
    o.deviation = if is_group(other.ip) { NEW_HOST_ANNOUNCES } else { NEW_HOST_TALKS };
    o.learn = Some(Learnable::Asset);
    if folder.is_done(o.kind, o.family, o.subject, 0, ts.as_nanos()) {
        return;
    }
    folder.hit(o, || words::new_net_asset(ip, other.ip, cx.learned));
}

/// `new_service`, `remote_access`, `file_transfer`: a pair of known hosts on a service it
/// never used.
fn new_service(f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
    let key = ServiceKey::of(f);
    if !cx.baseline() || is_group(f.server.ip) || cx.model.net.services.contains_key(&key) {
        return;
    }
    if f.app.is_some() && cx.model.index.keys().any(|k| k.client == key.client && k.server == key.server) {
        // An ICS conversation of a known pair: the protocol rules judge it.
        return;
    }
    let kind = match service_kind(f.l4, f.server.port) {
        ServiceKind::RemoteAccess => Kind::RemoteAccess,
        ServiceKind::FileTransfer => Kind::FileTransfer,
        ServiceKind::Other => Kind::NewService,
    };
    let mut o = cx.occ(kind, f.ts, f.pkt, f.client, f.server);
    o.detail = u64::from(f.server.port) | (f.l4 as u64) << 16;
    o.learn = Some(Learnable::Service(f.l4, f.server.port));
    if !(cx.known(f.client.ip) && cx.known(f.server.ip)) {
        // A newcomer is alerted as a new asset; its services count for less.
        o.deviation = 0.8;
    }
    if folder.is_done(o.kind, o.family, o.subject, o.detail, f.ts.as_nanos()) {
        return;
    }
    let known = crate::net::services_of(&cx.model.net, f.client.ip, f.server.ip);
    folder.hit(o, || words::new_service(f, &known, cx.learned));
}

/// `ttl_changed`: a packet from a known address with a TTL outside the set learned for it.
#[allow(clippy::too_many_arguments)]
fn ttl_changed(from: Endpoint, to: Endpoint, ttl: u8, ts: Timestamp, pkt: u64, cx: &NetCx<'_>, folder: &mut Folder) {
    ttl_check(from, to, ttl, ts, pkt, cx, folder);
}

/// The TTL check, also run for each PDU.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ttl_check(
    from: Endpoint,
    to: Endpoint,
    ttl: u8,
    ts: Timestamp,
    pkt: u64,
    cx: &NetCx<'_>,
    folder: &mut Folder,
) {
    if ttl == 0 {
        return;
    }
    let Some(h) = cx.model.net.hosts.get(&from.ip) else { return };
    if h.ttls.contains(&ttl) {
        return;
    }
    // Another initial TTL is another machine; one hop more or less, a new router or a
    // forwarding man in the middle.
    let other_family = h.ttls.first().is_some_and(|t| crate::net::ttl_family(*t) != crate::net::ttl_family(ttl));
    let needed = if other_family { MIN_TTL_FAMILY_SAMPLES } else { MIN_TTL_SAMPLES };
    if h.ttl_samples < needed {
        return;
    }
    let mut o = cx.occ(Kind::TtlChanged, ts, pkt, from, to);
    o.subject = hash64(&from.ip);
    o.detail = u64::from(ttl);
    o.learn = Some(Learnable::Ttl(ttl));
    o.deviation = if other_family { 1.2 } else { 1.0 };
    let learned_ttls: Vec<u8> = h.ttls.iter().copied().collect();
    folder.hit(o, || words::ttl_changed(from.ip, to, ttl, &learned_ttls, h.ttl_samples, cx.learned));
}

/// `arp_spoofing`: an address bound by ARP to another MAC than learned (a gratuitous ARP
/// or a reply claiming a known address).
fn arp_spoofing(a: &ArpPacket, cx: &NetCx<'_>, folder: &mut Folder) {
    let ip = IpAddr::V4(a.sender_ip);
    let Some(h) = cx.model.net.hosts.get(&ip) else { return };
    if h.macs.is_empty() || h.macs.contains(&a.sender_mac) {
        return;
    }
    let me = Endpoint { ip, port: 0 };
    let target = Endpoint { ip: IpAddr::V4(a.target_ip), port: 0 };
    let mut o = cx.occ(Kind::ArpSpoofing, a.ts, a.pkt, me, target);
    o.subject = hash64(&ip);
    o.detail = hash64(&a.sender_mac);
    o.learn = Some(Learnable::Binding(a.sender_mac));
    let learned: Vec<[u8; 6]> = h.macs.iter().copied().collect();
    folder.hit(o, || words::arp_spoofing(a, &learned, cx.learned));
}

/// `tcp_injection` from a SYN that carries payload.
fn tcp_injection_syn(f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
    let o = cx.occ(Kind::TcpInjection, f.ts, f.pkt, f.client, f.server);
    folder.hit(o, || words::tcp_injection_syn(f.client, f.server));
}

/// `tcp_injection` from a segment of an ICS connection that came by another path.
pub(crate) fn path_changed(n: &Notice, cx: &NetCx<'_>, folder: &mut Folder) {
    let NoticeKind::PathChanged { ttl_before, ttl, mac_changed, rst } = n.kind else { return };
    let o = cx.occ(Kind::TcpInjection, n.ts, n.pkt, n.src, n.dst);
    folder.hit(o, || words::tcp_injection_path(n.src, n.dst, ttl_before, ttl, mac_changed, rst));
}

/// `new_service` for a MAC that starts speaking a non-IP EtherType (GOOSE, PROFINET...).
pub(crate) fn l2(l: &L2Record, cx: &NetCx<'_>, folder: &mut Folder) {
    if !cx.baseline() || cx.model.net.l2.contains(&(l.src, l.ether_type)) {
        return;
    }
    let none = Endpoint { ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), port: 0 };
    let mut o = cx.occ(Kind::NewService, l.ts, l.pkt, none, none);
    o.subject = hash64(&l.src);
    o.detail = u64::from(l.ether_type) | 1 << 40;
    if folder.is_done(o.kind, o.family, o.subject, o.detail, l.ts.as_nanos()) {
        return;
    }
    folder.hit(o, || words::new_l2_service(l, cx.learned));
}
