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
use crate::sources::SourceTable;
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
pub const SYN_FLOOD_MIN: u32 = 100;
/// TTL samples an address needs in the baseline before a TTL outside its set is alerted
/// (one hop more or less: a route may change).
pub const MIN_TTL_SAMPLES: u64 = 20;
/// TTL samples an address needs before a TTL of another initial-TTL family is alerted
/// (another operating system sending in its name needs less evidence).
pub const MIN_TTL_FAMILY_SAMPLES: u64 = 3;
/// Sources and servers tracked by the scan and flood windows (of the sources, at most
/// [`crate::sources::MAX_STRANGERS`] unknown to the baseline); beyond, new ones share no
/// state (a spoofed flood from a million sources is still seen per server).
pub const MAX_TRACKED: usize = 16_384;
/// Entries a window's sets keep.
const MAX_SET: usize = 1_024;

/// What one source did in the current scan window.
#[derive(Debug, Default)]
struct SourceWin {
    w: i64,
    /// The first host reached (and the service, for a conversation), held inline: most
    /// sources reach one host in a window, and a spoofed one always does.
    first: Option<(IpAddr, Option<(L4, u16)>)>,
    /// Every host and service reached, once there is more than the first.
    more: Option<Box<Reach>>,
}

/// Hosts a source reached in a window, and the services per host.
#[derive(Debug, Default)]
struct Reach {
    ports: FxHashMap<IpAddr, FxHashSet<(L4, u16)>>,
    hosts: FxHashSet<IpAddr>,
}

impl SourceWin {
    /// Records a conversation to `host` on `service`: the services reached on that host and
    /// the hosts reached so far.
    fn connect(&mut self, host: IpAddr, service: (L4, u16)) -> (usize, usize) {
        if self.more.is_none() {
            match self.first {
                None => self.first = Some((host, Some(service))),
                Some(f) if f == (host, Some(service)) => {}
                Some(_) => return self.spill().connect(host, service),
            }
            return (1, 1);
        }
        self.spill().connect(host, service)
    }

    /// Records that `host` was asked for (ARP): the hosts reached so far.
    fn reach(&mut self, host: IpAddr) -> usize {
        if self.more.is_none() {
            match self.first {
                None => self.first = Some((host, None)),
                Some((h, _)) if h == host => {}
                Some(_) => return self.spill().reach(host),
            }
            return 1;
        }
        self.spill().reach(host)
    }

    /// The full sets, made from the first host on the first call.
    fn spill(&mut self) -> &mut Reach {
        let first = self.first;
        self.more.get_or_insert_with(|| {
            let mut r = Box::<Reach>::default();
            match first {
                Some((h, Some(service))) => _ = r.connect(h, service),
                Some((h, None)) => _ = r.reach(h),
                None => {}
            }
            r
        })
    }
}

impl Reach {
    fn connect(&mut self, host: IpAddr, service: (L4, u16)) -> (usize, usize) {
        let ports = self.ports.entry(host).or_default();
        if ports.len() < MAX_SET {
            ports.insert(service);
        }
        let n_ports = ports.len();
        (n_ports, self.reach(host))
    }

    fn reach(&mut self, host: IpAddr) -> usize {
        if self.hosts.len() < MAX_SET {
            self.hosts.insert(host);
        }
        self.hosts.len()
    }
}

/// Detection state of the network rules (rebuilt for each run).
#[derive(Debug)]
pub(crate) struct NetRt {
    /// Scan windows per source: the baseline's devices first, strangers within their bound.
    sources: SourceTable<SourceWin>,
    syn: FxHashMap<IpAddr, (i64, u32, u32)>,
    /// The scan window in which the full maps were last pruned: at most once a window, so
    /// a flood from a million spoofed sources costs O(1) per packet, not a scan of the map.
    pruned: (i64, i64),
}

impl Default for NetRt {
    fn default() -> Self {
        NetRt { sources: SourceTable::new(MAX_TRACKED), syn: FxHashMap::default(), pruned: (0, 0) }
    }
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
            // While a baseline is learned every address is new: none is a stranger.
            stranger: !self.watch && !self.model.knows(src.ip),
        }
    }
    fn baseline(&self) -> bool {
        self.model.net.learned()
    }
    /// Whether `ip` is a device of the baseline (an ICS asset or a network host), not one
    /// that scanned while learning (whose bindings are kept, to recognise its MAC).
    fn known(&self, ip: IpAddr) -> bool {
        self.model.knows(ip)
    }
}

impl NetRt {
    /// Sources and servers tracked by the windows now (bounded by [`MAX_TRACKED`] each).
    pub(crate) fn tracked(&self) -> usize {
        self.sources.len().max(self.syn.len())
    }

    /// One conversation record.
    pub(crate) fn flow(&mut self, f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
        if cx.watch {
            return self.watch_flow(f, cx, folder);
        }
        match f.phase {
            FlowPhase::Start => {
                if announces_client(f) {
                    new_asset(f.client.ip, f.server, f.ts, f.pkt, cx, folder);
                }
                ttl_check(f.client, f.server, f.ttl[0], f.ts, f.pkt, cx, folder);
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
                new_asset(f.client.ip, f.server, f.ts, f.pkt, cx, folder);
                new_asset(f.server.ip, f.client, f.ts, f.pkt, cx, folder);
                ttl_check(f.server, f.client, f.ttl[1], f.ts, f.pkt, cx, folder);
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
        if cx.model.has_service(&key) || is_group(f.server.ip) {
            return;
        }
        let Some(s) = self.source(f.client.ip, f.ts, cx) else { return };
        let (ports, hosts) = s.connect(f.server.ip, (f.l4, f.server.port));
        if ports >= PORT_SCAN_PORTS {
            let mut o = cx.occ(Kind::PortScan, f.ts, f.pkt, f.client, Endpoint { ip: f.server.ip, port: 0 });
            o.deviation = crate::checks::deviation(ports as f64, PORT_SCAN_PORTS as f64);
            folder.hit(o, || words::port_scan(f.client.ip, f.server.ip, ports, SCAN_WINDOW_SECS, cx.learned));
        }
        if hosts >= HOST_SWEEP_HOSTS {
            self.sweep_alert(f.client.ip, hosts, f.ts, f.pkt, "connections", cx, folder);
        }
    }

    fn source(&mut self, ip: IpAddr, ts: Timestamp, cx: &NetCx<'_>) -> Option<&mut SourceWin> {
        let w = ts.as_nanos().div_euclid(SCAN_WINDOW_SECS * 1_000_000_000);
        if self.pruned.0 != w && !self.sources.has_room(&ip, || cx.known(ip)) {
            self.pruned.0 = w;
            self.sources.retain(|s| s.w >= w);
        }
        let s = self.sources.admit(ip, || cx.known(ip))?;
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
            if self.pruned.1 == w {
                return;
            }
            self.pruned.1 = w;
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
        let learned_max = cx.model.host(server).map_or(0, |h| h.max_half_open);
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
        if cx.known(target) && cx.model.host(sender).is_some() {
            // Asking for a device it may well talk to: only unknown targets make a sweep.
            return;
        }
        let Some(s) = self.source(sender, a.ts, cx) else { return };
        let hosts = s.reach(target);
        let learned_max = cx.model.host(sender).map_or(0, |h| h.max_arp_targets as usize);
        let floor = if cx.watch { crate::net::LEARN_SWEEP_TARGETS } else { HOST_SWEEP_HOSTS };
        if hosts >= floor.max(learned_max.saturating_mul(2)) {
            self.sweep_alert(sender, hosts, a.ts, a.pkt, "ARP requests", cx, folder);
        }
    }
}

/// Deviation of a copy relayed by the MAC that ARP binds to another host.
const RELAYED_BY_A_HOST: f64 = 1.2;
/// Deviation of a copy relayed by a MAC no host claimed.
const RELAYED_BY_UNKNOWN: f64 = 0.5;

/// Deviation of a new asset that talks to another host, below the ICS rule's (a device
/// that speaks an industrial protocol is the one that matters most).
const NEW_HOST_TALKS: f64 = 0.8;
/// Deviation of a new asset seen only announcing itself (ARP, broadcasts, multicast):
/// worth a look, not an investigation.
const NEW_HOST_ANNOUNCES: f64 = 0.5;

/// Whether a conversation's start makes its client an asset (`new_asset` when unknown): a
/// TCP client is one once its handshake completes, as a SYN alone may come from a spoofed
/// address (a flood from a million sources); data without a handshake and UDP make it one
/// at once.
pub(crate) fn announces_client(f: &FlowRecord) -> bool {
    f.phase == FlowPhase::Start && (f.l4 != L4::Tcp || f.saw(tcp_seen::MIDSTREAM))
}

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
    folder.hit(o, || words::new_net_asset(ip, other.ip, cx.learned));
}

/// `new_service`, `remote_access`, `file_transfer`: a pair of known hosts on a service it
/// never used.
fn new_service(f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
    let key = ServiceKey::of(f);
    if !cx.baseline() || is_group(f.server.ip) || cx.model.has_service(&key) {
        return;
    }
    if f.app.is_some() && cx.model.has_pair_between(key.client, key.server) {
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

/// `ttl_changed`: a packet (a conversation's first, or a PDU's) from a known address with
/// a TTL outside the set learned for it. True when the model has nothing to say about this
/// TTL from this address, whatever comes later (the model does not change while detecting),
/// so that a caller may skip the same question next time. Inlined: every conversation's start
/// and many PDUs ask, and nearly all are answered by the first two tests.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn ttl_check(
    from: Endpoint,
    to: Endpoint,
    ttl: u8,
    ts: Timestamp,
    pkt: u64,
    cx: &NetCx<'_>,
    folder: &mut Folder,
) -> bool {
    if ttl == 0 {
        return true;
    }
    let Some(h) = cx.model.host(from.ip) else { return true };
    if h.ttls.contains(&ttl) {
        return true;
    }
    ttl_outside(h, (from, to, ttl), (ts, pkt), cx, folder)
}

/// [`ttl_check`] of a TTL the host was never seen with.
#[inline(never)]
fn ttl_outside(
    h: &crate::net::HostModel,
    (from, to, ttl): (Endpoint, Endpoint, u8),
    (ts, pkt): (Timestamp, u64),
    cx: &NetCx<'_>,
    folder: &mut Folder,
) -> bool {
    // Another initial TTL is another machine; one hop more or less, a new router or a
    // forwarding man in the middle.
    let other_family = h.ttls.first().is_some_and(|t| crate::net::ttl_family(*t) != crate::net::ttl_family(ttl));
    let needed = if other_family { MIN_TTL_FAMILY_SAMPLES } else { MIN_TTL_SAMPLES };
    if h.ttl_samples < needed {
        return true;
    }
    let mut o = cx.occ(Kind::TtlChanged, ts, pkt, from, to);
    o.subject = hash64(&from.ip);
    o.detail = u64::from(ttl);
    o.learn = Some(Learnable::Ttl(ttl));
    o.deviation = if other_family { 1.2 } else { 1.0 };
    let learned_ttls: Vec<u8> = h.ttls.iter().copied().collect();
    folder.hit(o, || words::ttl_changed(from.ip, to, ttl, &learned_ttls, h.ttl_samples, cx.learned));
    false
}

/// `arp_spoofing`: an address bound by ARP to another MAC than learned (a gratuitous ARP
/// or a reply claiming a known address).
fn arp_spoofing(a: &ArpPacket, cx: &NetCx<'_>, folder: &mut Folder) {
    let ip = IpAddr::V4(a.sender_ip);
    let Some(h) = cx.model.host(ip) else { return };
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

/// `tcp_injection` from a SYN that carries payload (one alert per server: such SYNs often
/// come from many spoofed sources at once).
fn tcp_injection_syn(f: &FlowRecord, cx: &NetCx<'_>, folder: &mut Folder) {
    let mut o = cx.occ(Kind::TcpInjection, f.ts, f.pkt, f.client, f.server);
    o.subject = hash64(&f.server.ip);
    o.detail = 1;
    folder.hit(o, || words::tcp_injection_syn(f.client, f.server));
}

/// A segment of an ICS connection that came by another path: new bytes are
/// `tcp_injection`; a relayed copy is `ttl_changed` when its TTL or relaying MAC was never
/// learned for the source, or its MAC is another host's.
pub(crate) fn path_changed(n: &Notice, cx: &NetCx<'_>, folder: &mut Folder) {
    let NoticeKind::PathChanged { ttl_before, ttl, mac, rst, relayed } = n.kind else { return };
    if relayed {
        return relayed_copy(n, ttl, mac, cx, folder);
    }
    let o = cx.occ(Kind::TcpInjection, n.ts, n.pkt, n.src, n.dst);
    folder.hit(o, || words::tcp_injection_path(n.src, n.dst, ttl_before, ttl, mac, rst));
}

fn relayed_copy(n: &Notice, ttl: u8, mac: Option<[u8; 6]>, cx: &NetCx<'_>, folder: &mut Folder) {
    if cx.watch || !cx.baseline() {
        return;
    }
    let Some(h) = cx.model.host(n.src.ip) else { return };
    let owner = mac.and_then(|m| crate::net::mac_of_another(&cx.model.net, n.src.ip, m));
    let mac_ok = mac.map_or(true, |m| h.via.contains(&m) || h.macs.contains(&m)) && owner.is_none();
    if mac_ok && h.ttls.contains(&ttl) {
        return;
    }
    let mut o = cx.occ(Kind::TtlChanged, n.ts, n.pkt, n.src, n.dst);
    o.subject = hash64(&n.src.ip);
    o.detail = u64::from(ttl) | mac.map_or(0, |m| hash64(&m) << 8);
    // Relayed by the MAC of another known host: a man in the middle. By a MAC nobody
    // claimed: most likely a router or bridge the mirror also sees; worth a look.
    o.deviation = if owner.is_some() { RELAYED_BY_A_HOST } else { RELAYED_BY_UNKNOWN };
    let learned_ttls: Vec<u8> = h.ttls.iter().copied().collect();
    folder.hit(o, || words::relayed(n.src, n.dst, ttl, mac, owner, &learned_ttls, cx.learned));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::net::{IpAddr, Ipv4Addr};

    use otsensor_dissectors::event::{Endpoint, Notice, NoticeKind, Timestamp};
    use otsensor_dissectors::net::{tcp_seen, ArpOp, ArpPacket, FlowPhase, FlowRecord, NetEvent, L4};

    use crate::{Alert, Baseline, Detector, Learner, Severity};

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn ts(secs: f64) -> Timestamp {
        Timestamp::from_nanos((secs * 1e9) as i64)
    }

    /// A conversation record of `client` (port 40000) calling `server:port` at `secs`.
    fn flow(phase: FlowPhase, secs: f64, client: u8, server: u8, port: u16, ttl: [u8; 2], tcp: u8) -> NetEvent {
        NetEvent::Flow(FlowRecord {
            phase,
            ts: ts(secs),
            pkt: (secs * 10.0) as u64,
            first_ts: ts(secs),
            flow_id: 1,
            l4: L4::Tcp,
            client: Endpoint { ip: ip(client), port: 40000 },
            server: Endpoint { ip: ip(server), port },
            macs: [None; 2],
            ttl,
            packets: [1, 1],
            bytes: [0, 0],
            tcp,
            app: None,
        })
    }

    /// A completed connection: its start and its handshake.
    fn connection(secs: f64, client: u8, server: u8, port: u16, ttl: [u8; 2]) -> [NetEvent; 2] {
        [
            flow(FlowPhase::Start, secs, client, server, port, ttl, tcp_seen::SYN),
            flow(
                FlowPhase::Established,
                secs + 0.001,
                client,
                server,
                port,
                ttl,
                tcp_seen::SYN | tcp_seen::SYN_ACK | tcp_seen::ESTABLISHED,
            ),
        ]
    }

    fn arp(secs: f64, op: ArpOp, sender: u8, mac: [u8; 6], target: u8) -> NetEvent {
        NetEvent::Arp(ArpPacket {
            ts: ts(secs),
            pkt: (secs * 10.0) as u64,
            op,
            eth_src: mac,
            sender_mac: mac,
            sender_ip: Ipv4Addr::new(10, 0, 0, sender),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, target),
        })
    }

    /// An hour of a plant: 10.0.0.1 polls 10.0.0.2:502 and 10.0.0.3:502 over a new
    /// connection every minute (TTL 128 both ways), and both PLCs answer ARP from their MACs.
    fn plant() -> Vec<NetEvent> {
        let mut v = Vec::new();
        for m in 0..60 {
            let t = f64::from(m) * 60.0;
            v.extend(connection(t, 1, 2, 502, [128, 64]));
            v.extend(connection(t + 1.0, 1, 3, 502, [128, 64]));
            v.push(arp(t + 2.0, ArpOp::Reply, 2, MAC_A, 1));
            v.push(arp(t + 2.5, ArpOp::Request, 1, [2, 0, 0, 0, 0, 1], 3));
        }
        v
    }

    fn learn(events: &[NetEvent]) -> Baseline {
        let mut l = Learner::new();
        for e in events {
            l.net(e);
        }
        let mut b = l.finish();
        Baseline::from_json(&b.to_json()).unwrap()
    }

    fn detect(b: &Baseline, events: &[NetEvent]) -> Vec<Alert> {
        let mut d = Detector::new(b).unwrap();
        for e in events {
            d.net(e);
        }
        let mut out = Vec::new();
        d.finish(&mut out);
        out
    }

    fn ids(alerts: &[Alert]) -> Vec<&str> {
        alerts.iter().map(|a| a.id.as_str()).collect()
    }

    #[test]
    fn the_plant_scored_against_its_own_baseline_is_quiet() {
        let b = learn(&plant());
        assert_eq!(b.network.services.len(), 2, "{:?}", b.network.services);
        assert!((b.network.services[0].mean_interval_secs - 60.0).abs() < 1e-6);
        let later: Vec<NetEvent> = plant()
            .into_iter()
            .map(|e| match e {
                NetEvent::Flow(mut f) => {
                    f.ts = ts(f.ts.as_secs_f64() + 3600.0);
                    NetEvent::Flow(f)
                }
                NetEvent::Arp(mut a) => {
                    a.ts = ts(a.ts.as_secs_f64() + 3600.0);
                    NetEvent::Arp(a)
                }
                other => other,
            })
            .collect();
        assert!(detect(&b, &later).is_empty(), "{:?}", ids(&detect(&b, &later)));
    }

    #[test]
    fn a_service_whose_client_is_no_host_of_the_baseline_is_still_known() {
        // The host table is capped while learning, the service table apart: a service's
        // client need not be a host. The model's address filter must still let it through.
        let mut b = learn(&plant());
        b.network.hosts.retain(|h| h.ip != ip(1));
        b.assets.retain(|a| a.ip != ip(1));
        let m = crate::model::Model::from_baseline(&b).unwrap();
        for port in [502, 445] {
            let key = crate::net::ServiceKey { client: ip(1), server: ip(2), l4: L4::Tcp, port };
            assert_eq!(m.has_service(&key), port == 502, "port {port}");
        }
    }

    #[test]
    fn a_pair_on_a_service_it_never_used_is_named_by_kind() {
        let b = learn(&plant());
        let mut v = Vec::new();
        v.extend(connection(4000.0, 1, 2, 445, [128, 64]));
        v.extend(connection(4001.0, 1, 2, 3389, [128, 64]));
        v.extend(connection(4002.0, 1, 2, 8000, [128, 64]));
        let alerts = detect(&b, &v);
        assert_eq!(ids(&alerts), ["net.file_transfer", "net.remote_access", "net.new_service"]);
        let ft = &alerts[0];
        assert_eq!(ft.rule_id, 9_100_052);
        assert!(ft.evidence.contains("tcp/502 (modbus)"), "{}", ft.evidence);
        assert!(ft.summary.contains("tcp/445 (smb)"), "{}", ft.summary);
        assert!(ft.severity >= Severity::High, "{:?}", ft.severity);
        assert_eq!(ft.learn, Some(crate::alert::Learnable::Service(L4::Tcp, 445)));
    }

    #[test]
    fn a_host_never_seen_is_a_new_asset_whatever_it_speaks() {
        let b = learn(&plant());
        let alerts = detect(&b, &connection(4000.0, 9, 2, 22, [64, 64]));
        let a = alerts.iter().find(|a| a.id == "net.new_asset").expect("new asset");
        assert_eq!(a.src.ip, ip(9));
        assert_eq!(a.severity, Severity::Medium);
        // Announcing itself by ARP only: low.
        let quiet = detect(&b, &[arp(4000.0, ArpOp::Request, 9, MAC_B, 1)]);
        assert_eq!(quiet.iter().find(|a| a.id == "net.new_asset").map(|a| a.severity), Some(Severity::Low));
    }

    #[test]
    fn many_ports_of_one_host_are_a_port_scan_and_many_hosts_a_sweep() {
        let b = learn(&plant());
        let scan: Vec<NetEvent> = (0..30u16)
            .map(|p| flow(FlowPhase::Start, 4000.0 + f64::from(p) * 0.01, 1, 2, 1000 + p, [128, 0], tcp_seen::SYN))
            .collect();
        let alerts = detect(&b, &scan);
        let a = alerts.iter().find(|a| a.id == "net.port_scan").expect("port scan");
        assert!(a.summary.contains("probed 12 ports of 10.0.0.2"), "{}", a.summary);
        let sweep: Vec<NetEvent> =
            (10..40u8).map(|h| arp(4000.0 + f64::from(h) * 0.01, ArpOp::Request, 1, [2, 0, 0, 0, 0, 1], h)).collect();
        let alerts = detect(&b, &sweep);
        let a = alerts.iter().find(|a| a.id == "net.host_sweep").expect("sweep");
        assert!(a.evidence.contains("ARP requests"), "{}", a.evidence);
    }

    #[test]
    fn half_open_connections_far_above_the_learned_rate_are_a_syn_flood() {
        let b = learn(&plant());
        let flood: Vec<NetEvent> = (0..300u32)
            .map(|i| {
                let mut e = flow(FlowPhase::Start, 4000.0 + f64::from(i) * 0.001, 9, 2, 502, [64, 0], tcp_seen::SYN);
                if let NetEvent::Flow(f) = &mut e {
                    f.client.ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
                }
                e
            })
            .collect();
        let alerts = detect(&b, &flood);
        let a = alerts.iter().find(|a| a.id == "net.syn_flood").expect("syn flood");
        assert_eq!(a.dst.ip, ip(2));
        assert!(a.severity >= Severity::High);
        // Completed handshakes at the same rate are not a flood.
        let busy: Vec<NetEvent> =
            (0..300u32).flat_map(|i| connection(4000.0 + f64::from(i) * 0.001, 1, 2, 502, [128, 64])).collect();
        assert!(!detect(&b, &busy).iter().any(|a| a.id == "net.syn_flood"));
    }

    #[test]
    fn an_address_claimed_by_another_mac_is_arp_spoofing() {
        let b = learn(&plant());
        let plc = b.network.hosts.iter().find(|h| h.ip == ip(2)).unwrap();
        assert_eq!(plc.macs, ["02:00:00:00:00:0a"]);
        let alerts = detect(&b, &[arp(4000.0, ArpOp::Reply, 2, MAC_B, 1)]);
        let a = alerts.iter().find(|a| a.id == "net.arp_spoofing").expect("spoofing");
        assert!(a.summary.contains("02:00:00:00:00:0b"), "{}", a.summary);
        assert!(a.severity >= Severity::High);
        assert!(detect(&b, &[arp(4000.0, ArpOp::Reply, 2, MAC_A, 1)]).is_empty());
    }

    #[test]
    fn a_poisoning_while_learning_is_contested_not_learned() {
        let mut v = plant();
        v.push(arp(1800.0, ArpOp::Reply, 2, MAC_B, 1));
        let b = learn(&v);
        let plc = b.network.hosts.iter().find(|h| h.ip == ip(2)).unwrap();
        assert_eq!((plc.macs.len(), plc.contested), (1, 1));
    }

    #[test]
    fn a_known_address_with_another_ttl_is_alerted_at_each_burst() {
        let b = learn(&plant());
        let master = b.network.hosts.iter().find(|h| h.ip == ip(1)).unwrap();
        assert_eq!(master.ttls, [128]);
        let mut v = Vec::new();
        v.extend(connection(4000.0, 1, 2, 502, [64, 64]));
        v.extend(connection(4001.0, 1, 2, 502, [64, 64]));
        v.extend(connection(6000.0, 1, 2, 502, [64, 64]));
        let alerts = detect(&b, &v);
        let ttl: Vec<&Alert> = alerts.iter().filter(|a| a.id == "net.ttl_changed").collect();
        assert_eq!(ttl.len(), 2, "{:?}", ids(&alerts));
        assert_eq!(ttl[0].count, 2);
        assert!(ttl[0].evidence.contains("carried TTL 128"), "{}", ttl[0].evidence);
        // A TTL of another family while learning is contested, not learned.
        let mut v = plant();
        v.extend(connection(1800.5, 1, 2, 502, [64, 64]));
        let b = learn(&v);
        assert_eq!(b.network.hosts.iter().find(|h| h.ip == ip(1)).unwrap().ttls, [128]);
    }

    #[test]
    fn a_syn_with_data_and_a_segment_by_another_path_are_injection() {
        let b = learn(&plant());
        let syn = flow(FlowPhase::Start, 4000.0, 1, 2, 502, [128, 0], tcp_seen::SYN | tcp_seen::SYN_PAYLOAD);
        assert!(detect(&b, &[syn]).iter().any(|a| a.id == "net.tcp_injection"));
        let mut d = Detector::new(&b).unwrap();
        d.notice(&Notice {
            ts: ts(4000.0),
            pkt: 1,
            src: Endpoint { ip: ip(1), port: 40000 },
            dst: Endpoint { ip: ip(2), port: 502 },
            kind: NoticeKind::PathChanged { ttl_before: 128, ttl: 64, mac: Some(MAC_B), rst: false, relayed: false },
        });
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(ids(&out), ["net.tcp_injection"]);
        assert!(out[0].evidence.contains("TTL 64 (earlier 128) and from MAC 02:00:00:00:00:0b"), "{}", out[0].evidence);
    }

    #[test]
    fn something_new_that_comes_back_after_a_quiet_period_is_alerted_again() {
        let b = learn(&plant());
        let mut v = Vec::new();
        // Ten minutes of quiet after the first: occurrence 2; then the quiet period doubles
        // to twenty minutes, so a return after fifteen is not alerted, one after 25 is.
        for t in [4000.0, 4030.0, 4030.0 + 660.0, 4690.0 + 900.0, 5590.0 + 1500.0] {
            v.extend(connection(t, 1, 2, 445, [128, 64]));
        }
        let alerts = detect(&b, &v);
        let ft: Vec<&Alert> = alerts.iter().filter(|a| a.id == "net.file_transfer").collect();
        let occ: Vec<u32> = ft.iter().map(|a| a.occurrence).collect();
        assert_eq!(occ, [1, 2, 3], "{:?}", ft.iter().map(|a| (a.ts_first, a.occurrence)).collect::<Vec<_>>());
        assert!(ft[1].evidence.contains("occurrence 2: it came back after 11 min"), "{}", ft[1].evidence);
    }

    #[test]
    fn a_host_that_swept_the_network_while_learning_is_not_learned() {
        let mut v = plant();
        v.extend((10..90u8).map(|h| arp(1000.0 + f64::from(h) * 0.01, ArpOp::Request, 66, MAC_B, h)));
        v.extend(connection(1010.0, 66, 2, 20000, [64, 128]));
        let b = learn(&v);
        assert_eq!(b.network.scanners, [ip(66)]);
        // Its ARP binding is kept, to recognise its MAC relaying others' packets.
        assert_eq!(
            b.network.hosts.iter().find(|h| h.ip == ip(66)).map(|h| h.macs.clone()),
            Some(vec![String::from("02:00:00:00:00:0b")])
        );
        assert!(!b.network.services.iter().any(|s| s.client == ip(66)));
        let alerts = detect(&b, &connection(4000.0, 66, 2, 20000, [64, 128]));
        assert!(alerts.iter().any(|a| a.id == "net.new_asset" && a.src.ip == ip(66)), "{:?}", ids(&alerts));
    }

    #[test]
    fn the_watch_while_learning_sees_sweeps_not_a_master_starting_up() {
        let mut d = Detector::critical_only();
        for h in 10..30u8 {
            for e in connection(f64::from(h), 1, h, 502, [128, 64]) {
                d.net(&e);
            }
        }
        for h in 10..90u8 {
            d.net(&arp(100.0 + f64::from(h) * 0.01, ArpOp::Request, 66, MAC_B, h));
        }
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(ids(&out), ["net.host_sweep"]);
        assert_eq!(out[0].src.ip, ip(66));
    }

    fn relayed(secs: f64, ttl: u8, mac: [u8; 6]) -> Notice {
        Notice {
            ts: ts(secs),
            pkt: 1,
            src: Endpoint { ip: ip(1), port: 40000 },
            dst: Endpoint { ip: ip(2), port: 502 },
            kind: NoticeKind::PathChanged { ttl_before: 128, ttl, mac: Some(mac), rst: false, relayed: true },
        }
    }

    #[test]
    fn copies_relayed_by_another_hosts_mac_are_a_man_in_the_middle() {
        // Learning: a router (no ARP binding to another host) relays copies of the master's
        // packets; a man in the middle (MAC_B, which ARP binds to 10.0.0.66) does too.
        let mut l = Learner::new();
        for e in plant() {
            l.net(&e);
        }
        l.net(&arp(100.0, ArpOp::Reply, 66, MAC_B, 1));
        let router = [2, 0, 0, 0, 0, 0x99];
        l.notice(&relayed(200.0, 127, router));
        l.notice(&relayed(300.0, 127, MAC_B));
        let mut b = l.finish();
        let b = Baseline::from_json(&b.to_json()).unwrap();
        let master = b.network.hosts.iter().find(|h| h.ip == ip(1)).unwrap();
        assert_eq!(master.via, ["02:00:00:00:00:99"]);
        assert_eq!(master.relay_contested, 1);
        let mut d = Detector::new(&b).unwrap();
        d.notice(&relayed(4000.0, 127, router));
        d.notice(&relayed(4100.0, 127, MAC_B));
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(ids(&out), ["net.ttl_changed"]);
        assert!(out[0].summary.contains("the MAC of 10.0.0.66"), "{}", out[0].summary);
    }

    fn spoofed_syn(i: u32, secs: f64) -> NetEvent {
        let mut e = flow(FlowPhase::Start, secs, 9, 2, 502, [64, 0], tcp_seen::SYN);
        if let NetEvent::Flow(f) = &mut e {
            f.client.ip = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i));
        }
        e
    }

    #[test]
    fn a_flood_from_spoofed_sources_is_neither_learned_nor_tracked_without_bound() {
        let mut v = plant();
        v.extend((0..20_000u32).map(|i| spoofed_syn(i, 1000.0 + f64::from(i) * 1e-4)));
        let b = learn(&v);
        assert_eq!(b.network.hosts.len(), 3, "{:?}", b.network.hosts.iter().map(|h| h.ip).collect::<Vec<_>>());
        let mut d = Detector::new(&b).unwrap();
        let flood: Vec<NetEvent> =
            (0..(super::MAX_TRACKED as u32 + 5_000)).map(|i| spoofed_syn(i, 4000.0 + f64::from(i) * 1e-5)).collect();
        for e in &flood {
            d.net(e);
        }
        assert!(d.net_tracked() <= super::MAX_TRACKED, "{}", d.net_tracked());
        let mut out = Vec::new();
        d.finish(&mut out);
        assert!(out.iter().any(|a| a.id == "net.syn_flood"), "{:?}", ids(&out));
    }
}
