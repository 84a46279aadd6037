//! The decoding engine: packets in, PDUs out.
//!
//! For each packet: decode L2-L4 ([`crate::packet`]), find or create its flow, reassemble TCP
//! ([`crate::tcp`]), identify the application protocol by port *and* content, and run the
//! protocol's [`StreamDissector`]. Time comes only from packets. The flow table is bounded:
//! idle flows time out in packet time and, when the table is full, the least recently seen
//! flows are evicted and counted.

// Reviewed for `clippy::arithmetic_side_effects` (issue 15): the arithmetic here is counters
// (u64, incremented once per packet or by a packet's length: 2^64 is out of reach) and flow
// ids; no length field of a packet is added here (payload offsets are the dissectors' and
// `tcp`'s), and the reassembly budget's sums saturate.
#![allow(clippy::arithmetic_side_effects)]

use std::net::IpAddr;

use crate::dnp3::{self, Dnp3Stream};
use crate::event::{
    Direction, Endpoint, NetEvent, Notice, NoticeKind, Pdu, PduBody, PerDirection, Protocol, Sink, Timestamp,
    Transport, FLAG_PER_SEGMENT, FLAG_REVERSED_ORIENTATION,
};
use crate::lru::LruTable;
use crate::modbus::{self, ModbusStream};
use crate::net::{tcp_seen, ArpOp, ArpPacket, FlowEnd, FlowPhase, FlowRecord, L2Record, L4};
use crate::packet::{self, Skip, TcpSegment};
use crate::s7::{self, S7Stream};
use crate::stream::{DissectorCounters, Parsed, Probe, StreamDissector};
use crate::tcp::{Accepted, HalfStream};

pub use crate::tcp::MAX_UNSYNCED_SEGMENTS;

/// Payload segments of a flow examined before giving up on identifying its protocol.
pub const MAX_PROBE_SEGMENTS: u8 = 8;
/// Bytes held while the first bytes of a flow are too few to identify its protocol.
pub const MAX_PROBE_BYTES: usize = 512;
/// Bytes a direction may hold while waiting for the rest of a PDU; more means the dissector
/// lost framing, and the bytes are dropped as a gap.
pub const MAX_PENDING_BYTES: usize = 128 * 1024;
/// Distinct (source MAC, destination MAC, EtherType) conversations remembered to report
/// each once as an [`L2Record`]; beyond, new ones are counted, not reported.
pub const MAX_L2_CONVERSATIONS: usize = 4096;

/// Seconds of packet time the table stays under pressure once it is no longer full nor
/// shedding unproven flows: see [`EngineConfig::unproven_under_pressure`].
pub const PRESSURE_SECS: i64 = 10;

/// What the engine watches, and its bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// TCP ports watched for Modbus/TCP.
    pub modbus_ports: Vec<u16>,
    /// TCP ports watched for DNP3.
    pub dnp3_tcp_ports: Vec<u16>,
    /// UDP ports watched for DNP3.
    pub dnp3_udp_ports: Vec<u16>,
    /// TCP ports watched for S7comm and S7comm-plus.
    pub s7_ports: Vec<u16>,
    /// Whether to look for DNP3 and S7 by content on other ports (their headers carry strong
    /// signatures; Modbus's does not, so Modbus is only looked for on its ports).
    pub detect_on_any_port: bool,
    /// Most flows tracked at once.
    pub max_flows: usize,
    /// Most flows not yet proven to be conversations (payload both ways over TCP, an answer
    /// over UDP or ICMP) tracked at once while the table is under pressure: from the moment
    /// it is full until [`PRESSURE_SECS`] after the unproven flows last exceeded this. A
    /// flood's new flows then cycle through a few megabytes of slots that stay in the CPU's
    /// cache, instead of each taking the slot of the flow that came a whole table earlier (a
    /// cache miss per line of a 500-byte entry, every packet). The proven flows (the plant's
    /// connections) are not touched.
    pub unproven_under_pressure: usize,
    /// Seconds of packet time after which a silent flow is forgotten.
    pub idle_timeout_secs: i64,
    /// Bytes all flows together may hold in reassembly buffers (out-of-order queues, partial
    /// PDUs); past it, the flows holding the most are made to drop theirs (counted in
    /// [`EngineStats::reassembly_shed`]). Each direction is bounded on its own too
    /// ([`crate::tcp::MAX_OOO_BYTES`], [`MAX_PENDING_BYTES`]), but a flood of flows that
    /// each hold their bound would add up without this.
    pub reassembly_budget: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            modbus_ports: vec![502],
            dnp3_tcp_ports: vec![20000],
            dnp3_udp_ports: vec![20000],
            s7_ports: vec![102],
            detect_on_any_port: true,
            max_flows: 65_536,
            // 2 MB of flow slots: the L2 cache of most server cores. At 1.5 M new flows a
            // second, an unproven flow then lives ~3 ms under a flood: a LAN handshake and
            // first exchange take less; one that does not is picked up again mid-stream.
            unproven_under_pressure: 4_096,
            idle_timeout_secs: 600,
            // 64 Ki flows could each hold two directions at their bounds (2 x 192 KiB):
            // 24 GiB. A quarter of a gigabyte holds hundreds of reordered streams at once.
            reassembly_budget: 256 << 20,
        }
    }
}

/// Counters of everything the engine did; never reset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Packets offered.
    pub packets: u64,
    /// Bytes offered (captured lengths).
    pub bytes: u64,
    /// TCP segments.
    pub tcp_packets: u64,
    /// UDP datagrams.
    pub udp_packets: u64,
    /// Packets not decoded to TCP/UDP, by reason: unsupported link type, not IP, IP
    /// fragment, other transport, malformed.
    pub skipped: [u64; 5],
    /// Flows created.
    pub flows: u64,
    /// Flows forgotten after the idle timeout.
    pub flows_timed_out: u64,
    /// Flows evicted because the table was full, or, under pressure, because the flows not
    /// yet proven held their share ([`EngineConfig::unproven_under_pressure`]).
    pub flows_evicted: u64,
    /// Flows closed by FIN or RST.
    pub flows_closed: u64,
    /// Flows on a watched port whose content was not the port's protocol.
    pub flows_not_protocol: u64,
    /// Flows identified by content on a port not configured for their protocol.
    pub flows_unexpected_port: u64,
    /// PDUs per protocol, in [`Protocol::ALL`] order.
    pub pdus: [u64; 4],
    /// PDUs carrying at least one protocol-violation flag.
    pub violations: u64,
    /// Stream gaps (lost bytes, out-of-order overflow, lost framing).
    pub gaps: u64,
    /// Bytes lost in gaps.
    pub gap_bytes: u64,
    /// Bytes dissectors skipped while resynchronising.
    pub resync_bytes: u64,
    /// Retransmitted or overlapping bytes dropped.
    pub retransmitted_bytes: u64,
    /// Retransmissions whose bytes differed from the copy first seen.
    pub retransmission_conflicts: u64,
    /// What the dissectors counted (evicted requests, CRC errors, reassembly overflows).
    pub dissectors: DissectorCounters,
    /// TCP segments dissected on their own because their direction had lost sync
    /// ([`MAX_UNSYNCED_SEGMENTS`]).
    pub resync_per_segment: u64,
    /// PDUs decoded from those segments (flagged `per_segment`).
    pub per_segment_pdus: u64,
    /// Connections opened by the host on the watched port (flagged `reversed_orientation`).
    pub flows_reversed: u64,
    /// ARP packets.
    pub arp_packets: u64,
    /// ICMP and ICMPv6 messages.
    pub icmp_packets: u64,
    /// Non-IP conversations not reported because [`MAX_L2_CONVERSATIONS`] were known.
    pub l2_unreported: u64,
    /// Flow directions made to drop their reassembly buffers to keep all flows within
    /// [`EngineConfig::reassembly_budget`].
    pub reassembly_shed: u64,
    /// Bytes they dropped (also counted in `gap_bytes`).
    pub reassembly_shed_bytes: u64,
}

impl EngineStats {
    /// The index of a [`Skip`] reason in [`EngineStats::skipped`].
    pub const fn skip_index(s: Skip) -> usize {
        match s {
            Skip::LinkType(_) => 0,
            Skip::NotIp => 1,
            Skip::Fragment => 2,
            Skip::OtherTransport => 3,
            Skip::Malformed => 4,
        }
    }
    /// Total PDUs.
    pub fn total_pdus(&self) -> u64 {
        self.pdus.iter().sum()
    }
}

/// Sums the counters of several engines (the sensor's workers).
impl std::ops::AddAssign<&EngineStats> for EngineStats {
    fn add_assign(&mut self, o: &EngineStats) {
        let EngineStats {
            packets,
            bytes,
            tcp_packets,
            udp_packets,
            skipped,
            flows,
            flows_timed_out,
            flows_evicted,
            flows_closed,
            flows_not_protocol,
            flows_unexpected_port,
            pdus,
            violations,
            gaps,
            gap_bytes,
            resync_bytes,
            retransmitted_bytes,
            retransmission_conflicts,
            dissectors,
            resync_per_segment,
            per_segment_pdus,
            flows_reversed,
            arp_packets,
            icmp_packets,
            l2_unreported,
            reassembly_shed,
            reassembly_shed_bytes,
        } = o;
        self.packets += packets;
        self.bytes += bytes;
        self.tcp_packets += tcp_packets;
        self.udp_packets += udp_packets;
        for (a, b) in self.skipped.iter_mut().zip(skipped) {
            *a += b;
        }
        self.flows += flows;
        self.flows_timed_out += flows_timed_out;
        self.flows_evicted += flows_evicted;
        self.flows_closed += flows_closed;
        self.flows_not_protocol += flows_not_protocol;
        self.flows_unexpected_port += flows_unexpected_port;
        for (a, b) in self.pdus.iter_mut().zip(pdus) {
            *a += b;
        }
        self.violations += violations;
        self.gaps += gaps;
        self.gap_bytes += gap_bytes;
        self.resync_bytes += resync_bytes;
        self.retransmitted_bytes += retransmitted_bytes;
        self.retransmission_conflicts += retransmission_conflicts;
        self.dissectors.add(dissectors);
        self.resync_per_segment += resync_per_segment;
        self.per_segment_pdus += per_segment_pdus;
        self.flows_reversed += flows_reversed;
        self.arp_packets += arp_packets;
        self.icmp_packets += icmp_packets;
        self.l2_unreported += l2_unreported;
        self.reassembly_shed += reassembly_shed;
        self.reassembly_shed_bytes += reassembly_shed_bytes;
    }
}

/// A connection's 5-tuple in canonical order (lower endpoint first), packed so that hashing
/// and comparing cost a few integer operations (this is on every packet's path). The
/// addresses are held as pairs of u64, not u128: aligned to 8 the key is 40 bytes, not 48,
/// in every tracked flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKey {
    a: [u64; 2],
    b: [u64; 2],
    ports: u32,
    l4: L4,
}

fn halves(x: u128) -> [u64; 2] {
    [(x >> 64) as u64, x as u64]
}

/// An address as 128 bits: IPv4 as an IPv4-mapped IPv6 address.
fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FlowKey {
    fn new(x: Endpoint, y: Endpoint, l4: L4) -> Self {
        let (xa, ya) = (ip_bits(x.ip), ip_bits(y.ip));
        if (xa, x.port) <= (ya, y.port) {
            FlowKey { a: halves(xa), b: halves(ya), ports: u32::from(x.port) << 16 | u32::from(y.port), l4 }
        } else {
            FlowKey { a: halves(ya), b: halves(xa), ports: u32::from(y.port) << 16 | u32::from(x.port), l4 }
        }
    }
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let [ah, al] = self.a;
        let [bh, bl] = self.b;
        h.write_u64(al ^ ah);
        h.write_u64(bl ^ bh);
        h.write_u32(self.ports ^ (self.l4 as u32) << 30);
    }
}

#[derive(Debug)]
enum App {
    Undecided,
    Ignored,
    Modbus(ModbusStream),
    Dnp3(Box<Dnp3Stream>),
    S7(Box<S7Stream>),
}

impl App {
    fn new(p: Protocol) -> App {
        match p {
            Protocol::Modbus => App::Modbus(ModbusStream::new()),
            Protocol::Dnp3 => App::Dnp3(Box::default()),
            Protocol::S7comm | Protocol::S7commPlus => App::S7(Box::default()),
        }
    }
    fn dissector(&mut self) -> Option<&mut dyn StreamDissector> {
        match self {
            App::Modbus(d) => Some(d),
            App::Dnp3(d) => Some(d.as_mut()),
            App::S7(d) => Some(d.as_mut()),
            App::Undecided | App::Ignored => None,
        }
    }
}

/// A tracked flow. Its id and client are those of its `record` (kept once: the bytes of each
/// tracked flow are bounded, see `Engine::flow_entry_bytes`).
#[derive(Debug)]
struct Flow {
    expected: Option<Protocol>,
    /// Second (packet time) of the last packet: all the idle timeout needs.
    last_seen: i64,
    half: PerDirection<HalfStream>,
    app: App,
    probes: u8,
    /// Opened by the host on the watched port: its PDUs are flagged `reversed_orientation`.
    reversed: bool,
    /// What the conversation record says (counters, TTLs, MACs, TCP events).
    record: FlowRecord,
    /// TTL and source MAC of each direction's last packet, to see a packet come by
    /// another path ([`NoticeKind::PathChanged`]).
    last_path: [(u8, Option<[u8; 6]>); 2],
    /// The relayed path last reported in each direction, and when (seconds). Boxed on the
    /// first report: relayed copies are rare, and most flows never need it.
    relay_reported: Option<Box<[Relayed; 2]>>,
}

/// A relayed path reported: its TTL, its source MAC, and when (seconds).
type Relayed = (u8, Option<[u8; 6]>, i64);

/// What `relay_reported` holds before any report.
const NOT_RELAYED: Relayed = (0, None, i64::MIN);

fn probe(p: Protocol, data: &[u8]) -> Probe {
    match p {
        Protocol::Modbus => modbus::probe(data),
        Protocol::Dnp3 => dnp3::probe(data),
        Protocol::S7comm | Protocol::S7commPlus => s7::probe(data),
    }
}

fn app_protocol(app: &App) -> Option<Protocol> {
    match app {
        App::Modbus(_) => Some(Protocol::Modbus),
        App::Dnp3(_) => Some(Protocol::Dnp3),
        App::S7(_) => Some(Protocol::S7comm),
        App::Undecided | App::Ignored => None,
    }
}

/// The protocol a TCP port is watched for.
fn expected_tcp(c: &EngineConfig, port: u16) -> Option<Protocol> {
    if c.modbus_ports.contains(&port) {
        Some(Protocol::Modbus)
    } else if c.dnp3_tcp_ports.contains(&port) {
        Some(Protocol::Dnp3)
    } else if c.s7_ports.contains(&port) {
        Some(Protocol::S7comm)
    } else {
        None
    }
}

/// Where a new flow starts: its ends, transport and watched protocol, and the packet.
struct NewFlow {
    client: Endpoint,
    server: Endpoint,
    l4: L4,
    expected: Option<Protocol>,
    ts: Timestamp,
    pkt: u64,
}

fn new_flow(stats: &mut EngineStats, next_id: &mut u64, n: NewFlow) -> Flow {
    stats.flows += 1;
    let id = *next_id;
    *next_id += 1;
    Flow {
        expected: n.expected,
        last_seen: n.ts.secs,
        half: PerDirection::default(),
        app: App::Undecided,
        probes: 0,
        reversed: false,
        record: FlowRecord {
            phase: FlowPhase::Start,
            ts: n.ts,
            pkt: n.pkt,
            first_ts: n.ts,
            flow_id: id,
            l4: n.l4,
            client: n.client,
            server: n.server,
            macs: [None; 2],
            ttl: [0; 2],
            packets: [0; 2],
            bytes: [0; 2],
            tcp: 0,
            app: None,
        },
        last_path: [(0, None); 2],
        relay_reported: None,
    }
}

impl Flow {
    /// Whether the flow is a real conversation once a packet from `src` with `len` bytes
    /// of payload is counted, not one a spoofer or a scanner can make on its own: payload
    /// went both ways over TCP (a server sends data only on a connection it accepted; a
    /// spoofed SYN gets at most a SYN-ACK or a RST), or a UDP or ICMP peer answered.
    fn proven_with(&self, src: Endpoint, len: usize) -> bool {
        let r = &self.record;
        let this = usize::from(src != r.client);
        let counts = match r.l4 {
            L4::Tcp => r.bytes,
            _ => r.packets.map(u64::from),
        };
        let now = |i: usize, c: u64| if i == this && (len > 0 || r.l4 != L4::Tcp) { c + 1 } else { c };
        counts.iter().enumerate().all(|(i, &c)| now(i, c) > 0)
    }

    /// Counts a packet of `dir` in the flow's record.
    fn account(&mut self, dir: Direction, ctx: &PacketCtx, len: usize) {
        let i = dir as usize;
        let r = &mut self.record;
        let (Some(packets), Some(bytes), Some(ttl), Some(seen_mac)) =
            (r.packets.get_mut(i), r.bytes.get_mut(i), r.ttl.get_mut(i), r.macs.get_mut(i))
        else {
            return;
        };
        if *packets == 0 {
            *ttl = ctx.ttl;
            *seen_mac = ctx.macs.map(|m| m.src);
        }
        *packets = packets.saturating_add(1);
        *bytes += len as u64;
    }

    /// For a packet of `dir` that brought something new (bytes, or a RST): when it came
    /// with another TTL or source MAC than the direction's previous such packet, that
    /// packet's TTL and whether the MAC differs. (Copies of one packet seen twice on a
    /// mirror, before and after a router, are duplicates and never get here.)
    fn path_changed(&mut self, dir: Direction, ctx: &PacketCtx) -> Option<(u8, Option<[u8; 6]>)> {
        let last = self.last_path.get_mut(dir as usize)?;
        let mac = ctx.macs.map(|m| m.src);
        let before = std::mem::replace(last, (ctx.ttl, mac));
        let new_mac = mac.filter(|_| before.1.is_some() && before.1 != mac);
        (before.0 != 0 && (before.0 != ctx.ttl || new_mac.is_some())).then_some((before.0, new_mac))
    }

    /// For a second copy of bytes already seen: when it came by another path than the
    /// direction's last fresh packet, and that path was not reported in the last minute,
    /// the TTL it came with before and its new MAC.
    fn relayed(&mut self, dir: Direction, ctx: &PacketCtx) -> Option<(u8, Option<[u8; 6]>)> {
        let i = dir as usize;
        let (ttl_before, mac_before) = *self.last_path.get(i)?;
        let mac = ctx.macs.map(|m| m.src);
        let new_mac = mac.filter(|_| mac_before.is_some() && mac_before != mac);
        if ttl_before == 0 || (ttl_before == ctx.ttl && new_mac.is_none()) {
            return None;
        }
        let reported = self.relay_reported.get_or_insert_with(|| Box::new([NOT_RELAYED; 2])).get_mut(i)?;
        if reported.0 == ctx.ttl && reported.1 == mac && ctx.ts.secs < reported.2.saturating_add(60) {
            return None;
        }
        *reported = (ctx.ttl, mac, ctx.ts.secs);
        Some((ttl_before, new_mac))
    }

    /// The flow's record at `phase`, stamped with the packet of `ctx`.
    fn record_at(&self, phase: FlowPhase, ts: Timestamp, pkt: u64) -> FlowRecord {
        FlowRecord { phase, ts, pkt, app: app_protocol(&self.app), ..self.record }
    }
}

/// Context of the packet being processed, for building PDUs and notices.
struct PacketCtx {
    ts: Timestamp,
    pkt: u64,
    src: Endpoint,
    dst: Endpoint,
    transport: Transport,
    macs: Option<packet::Macs>,
    /// IP TTL or hop limit.
    ttl: u8,
    /// Engine flag bits to set on every PDU this packet completes.
    flags: u64,
}

/// The decoding engine. One per capture source; single-threaded and deterministic.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    /// In least recently seen order: eviction takes the oldest at O(1), with no scan.
    flows: LruTable<FlowKey, Flow>,
    next_flow_id: u64,
    last_sweep: i64,
    /// Until when (seconds of packet time) the table is under pressure.
    pressure_until: i64,
    stats: EngineStats,
    l2_seen: rustc_hash::FxHashSet<([u8; 6], [u8; 6], u16)>,
    /// An upper bound of the bytes all flows hold in reassembly buffers: what they held at
    /// the last count plus every growth since (releases are not tracked, so a count is due
    /// only once this passes the budget: no per-packet cost beyond two additions).
    buffered: usize,
}

impl Engine {
    /// An engine with `config`.
    pub fn new(config: EngineConfig) -> Self {
        Engine {
            config,
            flows: LruTable::default(),
            next_flow_id: 1,
            last_sweep: i64::MIN,
            pressure_until: i64::MIN,
            stats: EngineStats::default(),
            l2_seen: rustc_hash::FxHashSet::default(),
            buffered: 0,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Bytes each tracked flow costs the flow table, from the type sizes (its state, key,
    /// recency links and index entry); buffers of PDUs split across segments, of segments
    /// out of order, and dissectors' state beyond their inline part come on top, only when
    /// a flow needs them.
    pub const fn flow_entry_bytes() -> usize {
        LruTable::<FlowKey, Flow>::entry_bytes()
    }

    /// Flows currently tracked.
    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn udp_expected(&self, port: u16) -> Option<Protocol> {
        self.config.dnp3_udp_ports.contains(&port).then_some(Protocol::Dnp3)
    }

    /// Processes one captured frame of link type `linktype`, numbered `pkt` (1-based) in its
    /// capture and taken at `ts`. Never fails: what cannot be decoded is counted.
    pub fn process(&mut self, ts: Timestamp, pkt: u64, linktype: u32, data: &[u8], sink: &mut dyn Sink) {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        if ts.secs > self.last_sweep.saturating_add(10) {
            self.sweep(ts);
        }
        // Borrowed, not moved out of the result: a copy of the decoded headers per packet.
        let decoded = packet::decode(linktype, data);
        let d = match &decoded {
            Ok(d) => d,
            Err(skip) => {
                let skip = *skip;
                if let Some(c) = self.stats.skipped.get_mut(EngineStats::skip_index(skip)) {
                    *c += 1;
                }
                if skip == Skip::NotIp {
                    self.link(ts, pkt, linktype, data, sink);
                }
                return;
            }
        };
        let ctx = |sp, dp, transport| PacketCtx {
            ts,
            pkt,
            src: Endpoint { ip: d.src, port: sp },
            dst: Endpoint { ip: d.dst, port: dp },
            transport,
            macs: d.macs,
            ttl: d.ttl,
            flags: 0,
        };
        match d.transport {
            packet::Transport::Tcp(seg) => {
                self.stats.tcp_packets += 1;
                self.tcp(ctx(seg.src_port, seg.dst_port, Transport::Tcp), &seg, sink);
            }
            packet::Transport::Udp { src_port, dst_port, payload } => {
                self.stats.udp_packets += 1;
                self.udp(ctx(src_port, dst_port, Transport::Udp), payload, sink);
            }
            packet::Transport::Icmp { icmp_type, len } => {
                self.stats.icmp_packets += 1;
                self.icmp(ctx(0, 0, Transport::Udp), icmp_type, len, sink);
            }
        }
    }

    /// A frame that is not IP: ARP packets are reported one by one, other EtherTypes once
    /// per pair of MACs.
    fn link(&mut self, ts: Timestamp, pkt: u64, linktype: u32, data: &[u8], sink: &mut dyn Sink) {
        let Some(l) = packet::link_frame(linktype, data) else { return };
        if let Some(a) = l.arp {
            self.stats.arp_packets += 1;
            let op = if a.op == 2 { ArpOp::Reply } else { ArpOp::Request };
            sink.net(&NetEvent::Arp(ArpPacket {
                ts,
                pkt,
                op,
                eth_src: l.macs.src,
                sender_mac: a.sender_mac,
                sender_ip: a.sender_ip,
                target_mac: a.target_mac,
                target_ip: a.target_ip,
            }));
            return;
        }
        let key = (l.macs.src, l.macs.dst, l.ether_type);
        if self.l2_seen.contains(&key) {
            return;
        }
        if self.l2_seen.len() >= MAX_L2_CONVERSATIONS {
            self.stats.l2_unreported += 1;
            return;
        }
        self.l2_seen.insert(key);
        sink.net(&NetEvent::L2(L2Record { ts, pkt, src: l.macs.src, dst: l.macs.dst, ether_type: l.ether_type }));
    }

    /// An ICMP message: one conversation per pair of hosts, opened by the first sender,
    /// its type as the service.
    fn icmp(&mut self, ctx: PacketCtx, icmp_type: u8, len: usize, sink: &mut dyn Sink) {
        let key = FlowKey::new(ctx.src, ctx.dst, L4::Icmp);
        let slot = match self.expire_idle(&key, ctx.ts, ctx.pkt, sink) {
            Some(i) => i,
            None => {
                self.make_room(ctx.ts);
                let server = Endpoint { ip: ctx.dst.ip, port: u16::from(icmp_type) };
                let n = NewFlow { client: ctx.src, server, l4: L4::Icmp, expected: None, ts: ctx.ts, pkt: ctx.pkt };
                let mut flow = new_flow(&mut self.stats, &mut self.next_flow_id, n);
                flow.app = App::Ignored;
                sink.net(&NetEvent::Flow(flow.record));
                self.flows.insert(key, flow)
            }
        };
        self.touch(slot, ctx.src, len);
        let Some(flow) = self.flows.at_mut(slot) else { return };
        flow.last_seen = ctx.ts.secs;
        let dir = if ctx.src.ip == flow.record.client.ip { Direction::ToServer } else { Direction::ToClient };
        flow.account(dir, &ctx, len);
    }

    /// Forgets flows idle for longer than the timeout. (Not reported as ended: when sweeps
    /// run depends on the share of traffic an engine sees, and the sensor's workers must
    /// report what one engine would; a flow's own next packet reports it, see
    /// [`Engine::expire_idle`].)
    ///
    /// The table is in the order flows were last seen, so the idle ones are at its end and
    /// are taken from there, at O(1) each with no scan. (When a capture's timestamps go
    /// backwards, a flow seen last but stamped earlier can shield older ones from this
    /// sweep until it times out itself; each is still ended by its own next packet.)
    #[cold]
    fn sweep(&mut self, now: Timestamp) {
        self.last_sweep = now.secs;
        let limit = now.secs.saturating_sub(self.config.idle_timeout_secs);
        loop {
            let idle = self.flows.oldest_of_each().into_iter().find(|(_, f)| f.is_some_and(|f| f.last_seen < limit));
            let Some((slot, _)) = idle else { break };
            self.flows.discard_at(slot);
            self.stats.flows_timed_out += 1;
        }
    }

    /// Marks the flow in `slot` as just seen, by a packet from `src` with `len` bytes of
    /// payload; one that proved a real conversation is promoted, out of reach of a flood's
    /// evictions.
    fn touch(&mut self, slot: u32, src: Endpoint, len: usize) {
        self.flows.touch_or_promote(slot, |f| f.proven_with(src, len));
    }

    /// Forgets the flow of `key` if it has been idle past the timeout, exactly as a sweep at
    /// this instant would: whether a flow timed out then depends on its own packets only, not
    /// on when sweeps ran (so engines that see different shares of the traffic, the
    /// sensor's workers, agree with one engine that sees it all).
    ///
    /// Returns the slot of `key`'s flow when it is still tracked: the one lookup of the
    /// table a packet of a known flow costs.
    fn expire_idle(&mut self, key: &FlowKey, now: Timestamp, pkt: u64, sink: &mut dyn Sink) -> Option<u32> {
        let slot = self.flows.find(key)?;
        let limit = now.secs.saturating_sub(self.config.idle_timeout_secs);
        if self.flows.at(slot).is_some_and(|f| f.last_seen < limit) {
            self.time_out(slot, now, pkt, sink);
            return None;
        }
        Some(slot)
    }

    /// Ends the idle flow in `slot`, met again by a packet at `now`. (Cold: out of every
    /// packet's path.)
    #[cold]
    fn time_out(&mut self, slot: u32, now: Timestamp, pkt: u64, sink: &mut dyn Sink) {
        if let Some((_, f)) = self.flows.remove_at(slot) {
            sink.net(&NetEvent::Flow(f.record_at(FlowPhase::End(FlowEnd::Idle), now, pkt)));
        }
        self.stats.flows_timed_out += 1;
    }

    /// Makes room for one more flow: times out idle flows, then evicts the least recently
    /// seen one, in O(1) per new flow (no scan of the table). Under a flood of new flows the
    /// flood's own flows are the least recently seen, and the polled ICS connections,
    /// seen every few seconds, stay. A full table puts the engine under pressure, when the
    /// unproven flows also keep to their share (see [`Engine::shed_unproven`]).
    fn make_room(&mut self, now: Timestamp) {
        if self.flows.len() >= self.config.max_flows {
            self.pressure_until = now.secs.saturating_add(PRESSURE_SECS);
            self.sweep(now);
        }
        if now.secs < self.pressure_until {
            self.shed_unproven(now);
        }
        while self.flows.len() >= self.config.max_flows {
            if !self.flows.discard_oldest() {
                break;
            }
            self.stats.flows_evicted += 1;
        }
    }

    /// Under pressure, evicts the oldest unproven flows while they hold their share
    /// ([`EngineConfig::unproven_under_pressure`]): two at most per new flow, so that a full
    /// table comes down to its share one flow per new flow, in O(1) a packet. Shedding keeps
    /// the pressure on: it ends [`PRESSURE_SECS`] after the unproven flows fell below their
    /// share (after a flood, once its flows timed out).
    fn shed_unproven(&mut self, now: Timestamp) {
        for _ in 0..2 {
            if self.flows.probation_len() < self.config.unproven_under_pressure {
                return;
            }
            let Some((slot, _)) = self.flows.oldest_on_probation() else { return };
            if !self.flows.discard_at(slot) {
                return;
            }
            self.stats.flows_evicted += 1;
            self.pressure_until = now.secs.saturating_add(PRESSURE_SECS);
        }
        self.flows.compact_index();
    }

    fn tcp(&mut self, mut ctx: PacketCtx, seg: &TcpSegment<'_>, sink: &mut dyn Sink) {
        let (ts, src, dst) = (ctx.ts, ctx.src, ctx.dst);
        let key = FlowKey::new(src, dst, L4::Tcp);

        let mut found = self.expire_idle(&key, ts, ctx.pkt, sink);
        // A fresh SYN on a tuple that already carried traffic is a new connection.
        if let Some(i) = found.filter(|&i| {
            seg.syn && !seg.ack && self.flows.at(i).is_some_and(|f| f.half.iter().any(HalfStream::started))
        }) {
            found = None;
            self.close(i, false, &ctx, sink);
        }

        let mut created = false;
        let slot = match found {
            Some(i) => i,
            None => {
                created = true;
                if seg.rst || (seg.payload.is_empty() && !seg.syn) {
                    return;
                }
                // Only a segment that creates a flow may evict one: a flood of bare ACKs
                // or RSTs for unknown connections evicts nothing.
                self.make_room(ts);
                let expected_at = |port| expected_tcp(&self.config, port);
                let mut reversed = false;
                let (client, server) = if seg.syn {
                    let (opener, called) = if seg.ack { (dst, src) } else { (src, dst) };
                    // The watched port decides which end is the server, not who sent the
                    // SYN: a connection opened from the watched port is dissected the right
                    // way round, and flagged.
                    if expected_at(called.port).is_none() && expected_at(opener.port).is_some() {
                        reversed = true;
                        (called, opener)
                    } else {
                        (opener, called)
                    }
                } else if expected_at(dst.port).is_some() {
                    (src, dst)
                } else if expected_at(src.port).is_some() {
                    (dst, src)
                } else if src.port < dst.port {
                    // Servers listen on low ports; clients use ephemeral ones.
                    (dst, src)
                } else {
                    (src, dst)
                };
                let expected = expected_at(server.port);
                let n = NewFlow { client, server, l4: L4::Tcp, expected, ts, pkt: ctx.pkt };
                self.stats.flows_reversed += u64::from(reversed);
                let (stats, next_id) = (&mut self.stats, &mut self.next_flow_id);
                self.flows.insert_with(key, || {
                    let mut flow = new_flow(stats, next_id, n);
                    flow.reversed = reversed;
                    if !seg.syn {
                        flow.record.tcp |= tcp_seen::MIDSTREAM;
                    }
                    flow
                })
            }
        };
        self.touch(slot, src, seg.payload.len());
        let Some(flow) = self.flows.at_mut(slot) else { return };
        let held = buffered(flow);
        flow.last_seen = ts.secs;
        if flow.reversed {
            ctx.flags |= 1 << FLAG_REVERSED_ORIENTATION;
        }
        let dir = if src == flow.record.client { Direction::ToServer } else { Direction::ToClient };
        tcp_bookkeeping(flow, dir, seg, &ctx, sink);
        if created {
            sink.net(&NetEvent::Flow(flow.record_at(FlowPhase::Start, ts, ctx.pkt)));
        }
        let accepted = flow.half[dir].accept(seg.seq, seg.syn, seg.fin, seg.payload);
        let fresh = matches!(accepted, Accepted::Data(d) if !d.is_empty())
            || matches!(accepted, Accepted::AfterGap { .. } | Accepted::Queued | Accepted::Late(_));
        check_path(flow, dir, fresh, seg, &ctx, sink);
        let st = &mut self.stats;
        let cfg = &self.config;
        if !matches!(accepted, Accepted::Data(_) | Accepted::Duplicate | Accepted::Conflict { .. } | Accepted::Late(_))
            && flow.half[dir].lost_sync()
        {
            // Reassembly cannot follow this direction: a segment that starts with a valid
            // header is dissected on its own, and the stream restarts after it.
            let proto = app_protocol(&flow.app).or(flow.expected);
            let valid = !matches!(flow.app, App::Ignored) && proto.is_some_and(|p| probe(p, seg.payload) == Probe::Yes);
            if valid {
                flow.half[dir].restart_at(seg.seq, seg.syn, seg.payload.len());
                if let Some(dis) = flow.app.dissector() {
                    dis.gap(dir);
                }
                st.resync_per_segment += 1;
                ctx.flags |= 1 << FLAG_PER_SEGMENT;
                deliver(cfg, st, flow, dir, seg.payload, &ctx, sink);
                let done = settle(st, flow, held, seg);
                return self.tcp_done(slot, done, seg, &ctx, sink);
            }
        }
        match accepted {
            Accepted::Data(data) => deliver(cfg, st, flow, dir, data, &ctx, sink),
            Accepted::AfterGap { lost, data } => {
                gap(st, flow, dir, lost, &ctx, sink);
                deliver(cfg, st, flow, dir, data, &ctx, sink);
            }
            Accepted::Queued => {
                // A hole is usually capture loss on the mirror port, not reordering: when
                // nothing is half-parsed and the early segment starts with a valid header of
                // the flow's protocol, skip the hole now rather than hold every later PDU
                // (and its alerts) until the queue overflows or the connection ends.
                let h = &flow.half[dir];
                let resumable = h.pending.is_empty()
                    && h.first_queued() == Some(seg.seq)
                    && app_protocol(&flow.app).is_some_and(|p| probe(p, seg.payload) == Probe::Yes);
                if resumable {
                    flow.half[dir].resumed();
                }
                if resumable || flow.half[dir].over_limit() {
                    skip_hole(st, flow, dir, &ctx, sink);
                }
            }
            Accepted::Late(data) => deliver_late(st, flow, dir, data, &ctx, sink),
            Accepted::Conflict { bytes } => {
                st.retransmission_conflicts += 1;
                if !matches!(flow.app, App::Ignored | App::Undecided) {
                    notice(&ctx, NoticeKind::RetransmissionConflict { bytes }, sink);
                }
            }
            Accepted::Duplicate | Accepted::Stale(_) => {}
        }
        // Nothing queued (every in-order packet): no call to find the queue empty.
        if flow.half[dir].queued_bytes() > 0 {
            drain_ready(cfg, st, flow, dir, &ctx, sink);
        }
        if seg.fin || seg.rst {
            // Nothing more will fill a hole in this direction.
            while flow.half[dir].queued_bytes() > 0 {
                skip_hole(st, flow, dir, &ctx, sink);
                drain_ready(cfg, st, flow, dir, &ctx, sink);
            }
        }
        let done = settle(st, flow, held, seg);
        self.tcp_done(slot, done, seg, &ctx, sink);
    }

    /// After a TCP segment and [`settle`]: keeps to the reassembly budget and ends the
    /// connection when the segment closed it. Inlined: every packet's, and most have nothing
    /// to do here.
    #[inline]
    fn tcp_done(&mut self, slot: u32, settled: Settled, seg: &TcpSegment<'_>, ctx: &PacketCtx, sink: &mut dyn Sink) {
        self.buffered = self.buffered.saturating_add(settled.grown);
        if self.buffered > self.config.reassembly_budget {
            self.shed_reassembly();
        }
        if settled.done {
            self.close(slot, seg.rst, ctx, sink);
        }
    }

    /// Ends the connection in `slot`: reset (`rst`), or closed by both FINs or by a new SYN
    /// on its tuple. (Cold, like [`Engine::shed_reassembly`]: kept out of every packet's path
    /// so that [`Engine::tcp_done`] inlines without their registers to save.)
    #[cold]
    fn close(&mut self, slot: u32, rst: bool, ctx: &PacketCtx, sink: &mut dyn Sink) {
        if let Some((_, f)) = self.flows.remove_at(slot) {
            let end = if rst { FlowEnd::Reset } else { FlowEnd::Closed };
            sink.net(&NetEvent::Flow(f.record_at(FlowPhase::End(end), ctx.ts, ctx.pkt)));
        }
        self.stats.flows_closed += 1;
    }

    /// Counts what all flows hold in reassembly buffers and, if it is over half the budget,
    /// makes the flows holding the most (more than [`SHED_FLOOR`] a direction: a flood's reordered
    /// streams, not the polled connections with a partial PDU) drop theirs, then any, until
    /// half the budget is left: a count costs a pass over the table, and the slack makes
    /// the next one due only after the buffers grew by half the budget again.
    #[cold]
    fn shed_reassembly(&mut self) {
        let slots = self.flows.slot_count();
        let mut total = 0usize;
        for i in 0..slots {
            if let Some(f) = self.flows.at(i) {
                total = total.saturating_add(buffered(f));
            }
        }
        let target = self.config.reassembly_budget / 2;
        // Under the budget after all (the estimate only grows), the big holders still go down
        // to the target: otherwise, with the buffers near the budget, every packet that grows
        // one would pay another pass over the table. Small partial PDUs go only when over it.
        let floors: &[usize] = if total > self.config.reassembly_budget { &[SHED_FLOOR, 0] } else { &[SHED_FLOOR] };
        if total > target {
            for &floor in floors {
                for i in 0..slots {
                    if total <= target {
                        break;
                    }
                    let Some(f) = self.flows.at_mut(i) else { continue };
                    for dir in [Direction::ToServer, Direction::ToClient] {
                        let mem = f.half[dir].memory();
                        if mem <= floor || mem == 0 {
                            continue;
                        }
                        let lost = f.half[dir].shed();
                        if let Some(dis) = f.app.dissector() {
                            dis.gap(dir);
                        }
                        total = total.saturating_sub(mem);
                        self.stats.reassembly_shed += 1;
                        self.stats.reassembly_shed_bytes += lost;
                        self.stats.gaps += 1;
                        self.stats.gap_bytes += lost;
                    }
                }
            }
        }
        self.buffered = total;
    }

    fn udp(&mut self, ctx: PacketCtx, payload: &[u8], sink: &mut dyn Sink) {
        let (src, dst) = (ctx.src, ctx.dst);
        let key = FlowKey::new(src, dst, L4::Udp);
        let slot = if let Some(i) = self.expire_idle(&key, ctx.ts, ctx.pkt, sink) {
            i
        } else {
            let (client, server) = if self.udp_expected(dst.port).is_some() {
                (src, dst)
            } else if self.udp_expected(src.port).is_some() || src.port < dst.port {
                (dst, src)
            } else {
                (src, dst)
            };
            let expected = self.udp_expected(server.port);
            self.make_room(ctx.ts);
            let n = NewFlow { client, server, l4: L4::Udp, expected, ts: ctx.ts, pkt: ctx.pkt };
            let mut flow = new_flow(&mut self.stats, &mut self.next_flow_id, n);
            if expected.is_none() && !self.config.detect_on_any_port {
                // Followed as a conversation, not dissected.
                flow.app = App::Ignored;
            }
            sink.net(&NetEvent::Flow(flow.record));
            self.flows.insert(key, flow)
        };
        self.touch(slot, src, payload.len());
        let Some(flow) = self.flows.at_mut(slot) else { return };
        flow.last_seen = ctx.ts.secs;
        let dir = if src == flow.record.client { Direction::ToServer } else { Direction::ToClient };
        flow.account(dir, &ctx, payload.len());
        if matches!(flow.app, App::Undecided) {
            identify(&self.config, &mut self.stats, flow, payload, &ctx, sink, true);
        }
        let st = &mut self.stats;
        let flow_id = flow.record.flow_id;
        if let Some(dis) = flow.app.dissector() {
            let parsed = dis.parse_datagram(payload, dir, &mut |body| emit(st, &ctx, dir, flow_id, body, sink));
            note_parsed(st, dis, parsed, &ctx, sink);
        }
    }
}

/// A direction holding at most this much is shed only when those holding more were not
/// enough: a polled connection's partial PDU is a few hundred bytes.
const SHED_FLOOR: usize = 4096;

/// What a TCP segment left for [`Engine::tcp_done`].
#[derive(Clone, Copy)]
struct Settled {
    /// Reassembly bytes the flow holds more than before the segment.
    grown: usize,
    /// The segment ended the connection (RST, or the second FIN).
    done: bool,
}

/// Bookkeeping after a TCP segment, with the flow still in hand (no second look-up): its
/// retransmission counts moved to the statistics, what its buffers grew by (`held`: what
/// they held before the segment), and whether the connection ended.
fn settle(st: &mut EngineStats, flow: &mut Flow, held: usize, seg: &TcpSegment<'_>) -> Settled {
    for h in flow.half.iter_mut() {
        st.retransmitted_bytes += std::mem::take(&mut h.retransmitted_bytes);
    }
    let grown = buffered(flow).saturating_sub(held);
    Settled { grown, done: seg.rst || flow.half.iter().all(|h| h.fin) }
}

/// Bytes a flow holds in reassembly buffers, both directions.
fn buffered(flow: &Flow) -> usize {
    flow.half.iter().map(HalfStream::memory).sum()
}

fn emit(
    st: &mut EngineStats,
    ctx: &PacketCtx,
    direction: Direction,
    flow_id: u64,
    body: &mut PduBody<'_>,
    sink: &mut dyn Sink,
) {
    let proto = body.protocol();
    if let Some(c) = st.pdus.get_mut(proto as usize) {
        *c += 1;
    }
    // The engine's own flags say how a PDU was seen, not that the protocol was violated.
    if body.flags().has_violation() {
        st.violations += 1;
    }
    if ctx.flags != 0 {
        let flags = body.flags_mut();
        for bit in [FLAG_REVERSED_ORIENTATION, FLAG_PER_SEGMENT] {
            if ctx.flags & 1 << bit != 0 {
                flags.set(bit);
            }
        }
        if ctx.flags & 1 << FLAG_PER_SEGMENT != 0 {
            st.per_segment_pdus += 1;
        }
    }
    sink.pdu(&Pdu {
        ts: ctx.ts,
        pkt: ctx.pkt,
        src: ctx.src,
        dst: ctx.dst,
        transport: ctx.transport,
        direction,
        flow_id,
        src_mac: ctx.macs.map(|m| m.src),
        dst_mac: ctx.macs.map(|m| m.dst),
        ttl: ctx.ttl,
        body,
    });
}

/// Counts a TCP segment in its flow's record, reports the completed handshake, and reports a
/// segment of an established ICS connection that arrives by another path (TTL or MAC).
fn tcp_bookkeeping(flow: &mut Flow, dir: Direction, seg: &TcpSegment<'_>, ctx: &PacketCtx, sink: &mut dyn Sink) {
    flow.account(dir, ctx, seg.payload.len());
    let to_server = dir == Direction::ToServer;
    let r = &mut flow.record;
    let before = r.tcp;
    if seg.syn {
        r.tcp |= if to_server { tcp_seen::SYN } else { tcp_seen::SYN_ACK };
        if !seg.payload.is_empty() {
            r.tcp |= tcp_seen::SYN_PAYLOAD;
        }
    } else if to_server && seg.ack && !seg.rst && r.saw(tcp_seen::SYN_ACK) {
        r.tcp |= tcp_seen::ESTABLISHED;
    }
    if seg.rst {
        r.tcp |= if to_server { tcp_seen::RST_CLIENT } else { tcp_seen::RST_SERVER };
    }
    if seg.fin {
        r.tcp |= tcp_seen::FIN;
    }
    if before & tcp_seen::ESTABLISHED == 0 && r.saw(tcp_seen::ESTABLISHED) {
        sink.net(&NetEvent::Flow(flow.record_at(FlowPhase::Established, ctx.ts, ctx.pkt)));
    }
}

/// Reports a segment of an ICS connection that came by another path: one that brought
/// something new (injection, a takeover), or a second copy of bytes already seen (relayed).
fn check_path(
    flow: &mut Flow,
    dir: Direction,
    fresh: bool,
    seg: &TcpSegment<'_>,
    ctx: &PacketCtx,
    sink: &mut dyn Sink,
) {
    let rst = seg.rst;
    let (changed, relayed) = if fresh || rst {
        (flow.path_changed(dir, ctx), false)
    } else if !seg.payload.is_empty() {
        (flow.relayed(dir, ctx), true)
    } else {
        return;
    };
    if let (Some((ttl_before, mac)), Some(_)) = (changed, app_protocol(&flow.app)) {
        notice(ctx, NoticeKind::PathChanged { ttl_before, ttl: ctx.ttl, mac, rst, relayed }, sink);
    }
}

fn notice(ctx: &PacketCtx, kind: NoticeKind, sink: &mut dyn Sink) {
    sink.notice(&Notice { ts: ctx.ts, pkt: ctx.pkt, src: ctx.src, dst: ctx.dst, kind });
}

/// After a dissector ran: the bytes it skipped resynchronising, and what it counted.
fn note_parsed(
    st: &mut EngineStats,
    dis: &mut dyn StreamDissector,
    parsed: Parsed,
    ctx: &PacketCtx,
    sink: &mut dyn Sink,
) {
    dis.take_counters(&mut st.dissectors);
    let protocol = dis.protocol();
    if parsed.skipped > 0 {
        st.resync_bytes += parsed.skipped as u64;
        notice(ctx, NoticeKind::Resync { protocol, bytes: parsed.skipped as u64 }, sink);
    }
}

/// Decides the flow's protocol from the first payload bytes seen. On a watched port the
/// content must confirm the port's protocol; elsewhere only strong signatures count.
fn identify(
    cfg: &EngineConfig,
    st: &mut EngineStats,
    flow: &mut Flow,
    data: &[u8],
    ctx: &PacketCtx,
    sink: &mut dyn Sink,
    udp: bool,
) -> Probe {
    flow.probes = flow.probes.saturating_add(1);
    match flow.expected {
        Some(p) => {
            let verdict = probe(p, data);
            if verdict == Probe::Yes {
                flow.app = App::new(p);
                if flow.reversed {
                    // Seen from the SYN, the protocol runs on a port not configured for it:
                    // say so as before (a reversed or spoofed connection is what the models
                    // alert on), while the PDUs are dissected the right way round and flagged.
                    notice(ctx, NoticeKind::UnexpectedPort { found: p }, sink);
                }
            } else if flow.probes >= MAX_PROBE_SEGMENTS || (udp && verdict == Probe::No) {
                flow.app = App::Ignored;
                st.flows_not_protocol += 1;
                notice(ctx, NoticeKind::NotProtocol { expected: p }, sink);
            }
            verdict
        }
        None => {
            let candidates = [Protocol::Dnp3, Protocol::S7comm].into_iter().filter(|p| !udp || *p == Protocol::Dnp3);
            let verdicts: Vec<(Protocol, Probe)> = candidates.map(|p| (p, probe(p, data))).collect();
            let found = verdicts.iter().find(|(_, v)| *v == Probe::Yes).map(|(p, _)| *p);
            let verdict = if found.is_some() {
                Probe::Yes
            } else if verdicts.iter().any(|(_, v)| *v == Probe::NeedMore) {
                Probe::NeedMore
            } else {
                Probe::No
            };
            match found {
                Some(p) if cfg.detect_on_any_port => {
                    flow.app = App::new(p);
                    st.flows_unexpected_port += 1;
                    notice(ctx, NoticeKind::UnexpectedPort { found: p }, sink);
                }
                _ if flow.probes >= MAX_PROBE_SEGMENTS || !cfg.detect_on_any_port || udp => flow.app = App::Ignored,
                _ => {}
            }
            verdict
        }
    }
}

fn gap(st: &mut EngineStats, flow: &mut Flow, dir: Direction, lost: u64, ctx: &PacketCtx, sink: &mut dyn Sink) {
    st.gaps += 1;
    st.gap_bytes += lost;
    flow.half[dir].pending.clear();
    if let Some(dis) = flow.app.dissector() {
        dis.gap(dir);
        dis.take_counters(&mut st.dissectors);
        notice(ctx, NoticeKind::StreamGap { bytes: lost }, sink);
    }
}

fn skip_hole(st: &mut EngineStats, flow: &mut Flow, dir: Direction, ctx: &PacketCtx, sink: &mut dyn Sink) {
    match flow.half[dir].skip_hole() {
        Some(lost) => gap(st, flow, dir, lost, ctx, sink),
        // Nothing queued: the caller's loop must end.
        None => flow.half[dir].pending.clear(),
    }
}

fn drain_ready(
    cfg: &EngineConfig,
    st: &mut EngineStats,
    flow: &mut Flow,
    dir: Direction,
    ctx: &PacketCtx,
    sink: &mut dyn Sink,
) {
    while flow.half[dir].queued_bytes() > 0 {
        let Some(data) = flow.half[dir].pop_ready() else { break };
        deliver(cfg, st, flow, dir, &data, ctx, sink);
    }
}

/// Dissects bytes of a hole that was skipped and has now arrived, on their own: the
/// dissector restarts its framing for them, and what they leave unframed is dropped.
fn deliver_late(
    st: &mut EngineStats,
    flow: &mut Flow,
    dir: Direction,
    data: &[u8],
    ctx: &PacketCtx,
    sink: &mut dyn Sink,
) {
    let flow_id = flow.record.flow_id;
    let Some(dis) = flow.app.dissector() else { return };
    dis.gap(dir);
    let parsed = dis.parse(data, dir, &mut |body| emit(st, ctx, dir, flow_id, body, sink));
    note_parsed(st, dis, parsed, ctx, sink);
}

/// Hands in-order bytes to the flow's dissector, zero-copy when no partial PDU is pending.
fn deliver(
    cfg: &EngineConfig,
    st: &mut EngineStats,
    flow: &mut Flow,
    dir: Direction,
    data: &[u8],
    ctx: &PacketCtx,
    sink: &mut dyn Sink,
) {
    if data.is_empty() {
        return;
    }
    if matches!(flow.app, App::Undecided) {
        // Identification may need more bytes than one segment holds (a header split across
        // segments): keep what was seen, bounded, until the probe can decide.
        let held = flow.half[dir].pending.len();
        let joined: Vec<u8>;
        let buf = if held == 0 {
            data
        } else {
            let mut v = flow.half[dir].pending.clone();
            v.extend_from_slice(data);
            joined = v;
            &joined
        };
        let verdict = identify(cfg, st, flow, buf, ctx, sink, false);
        let half = &mut flow.half[dir];
        half.pending.clear();
        if matches!(flow.app, App::Undecided) {
            if verdict == Probe::NeedMore && buf.len() < MAX_PROBE_BYTES {
                half.pending.extend_from_slice(buf);
            }
            return;
        }
        if held > 0 {
            let owned = buf.to_vec();
            return deliver(cfg, st, flow, dir, &owned, ctx, sink);
        }
    }
    let flow_id = flow.record.flow_id;
    let Some(dis) = flow.app.dissector() else { return };
    let half = &mut flow.half[dir];
    let mut emit_one = |body: &mut PduBody<'_>| emit(st, ctx, dir, flow_id, body, sink);
    let parsed = if half.pending.is_empty() {
        let parsed = dis.parse(data, dir, &mut emit_one);
        if let Some(rest) = data.get(parsed.consumed..).filter(|r| !r.is_empty()) {
            half.pending.extend_from_slice(rest);
        }
        parsed
    } else {
        half.pending.extend_from_slice(data);
        let parsed = dis.parse(&half.pending, dir, &mut emit_one);
        half.pending.drain(..parsed.consumed.min(half.pending.len()));
        parsed
    };
    if half.pending.len() > MAX_PENDING_BYTES {
        let lost = half.pending.len() as u64;
        half.pending.clear();
        dis.gap(dir);
        st.gaps += 1;
        st.gap_bytes += lost;
        notice(ctx, NoticeKind::StreamGap { bytes: lost }, sink);
    }
    note_parsed(st, dis, parsed, ctx, sink);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::testutil::{run, run_with, tcp_packet, ACK, FIN_ACK, PSH_ACK, RST_ACK, SYN, SYN_ACK};

    /// A Read Holding Registers request with transaction `tid`.
    fn req(tid: u16) -> Vec<u8> {
        let mut v = tid.to_be_bytes().to_vec(); // transaction
        v.extend([0, 0, 0, 6, 1, 3, 0, 0, 0, 1]); // protocol 0, length 6, unit 1, FC3, address 0, quantity 1
        v
    }

    /// Its response, one register.
    fn resp(tid: u16) -> Vec<u8> {
        let mut v = tid.to_be_bytes().to_vec();
        v.extend([0, 0, 0, 5, 1, 3, 2, 0, 42]); // length 5, unit 1, FC3, byte count 2, value 42
        v
    }

    /// Runs `(second, packet)` pairs through one engine; its flow and timeout counters.
    fn flows_after(packets: &[(i64, Vec<u8>)]) -> (u64, u64) {
        let mut e = Engine::new(EngineConfig::default());
        let mut c = crate::testutil::Collect::default();
        for (i, (secs, p)) in packets.iter().enumerate() {
            e.process(Timestamp { secs: *secs, nanos: 0 }, i as u64 + 1, crate::packet::linktype::RAW, p, &mut c);
        }
        (e.stats().flows, e.stats().flows_timed_out)
    }

    fn flow_records(c: &crate::testutil::Collect) -> Vec<FlowRecord> {
        c.net.iter().filter_map(|e| if let NetEvent::Flow(f) = e { Some(*f) } else { None }).collect()
    }

    #[test]
    fn reports_a_connection_start_handshake_and_reset_with_its_counters() {
        let c = run(&[
            tcp_packet(1, 40000, 2, 502, 99, SYN, &[]),
            tcp_packet(2, 502, 1, 40000, 499, SYN_ACK, &[]),
            tcp_packet(1, 40000, 2, 502, 100, ACK, &[]),
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)),
            tcp_packet(2, 502, 1, 40000, 500, PSH_ACK, &resp(1)),
            tcp_packet(1, 40000, 2, 502, 112, RST_ACK, &[]),
        ]);
        let r = flow_records(&c);
        let phases: Vec<FlowPhase> = r.iter().map(|f| f.phase).collect();
        assert_eq!(phases, [FlowPhase::Start, FlowPhase::Established, FlowPhase::End(FlowEnd::Reset)]);
        let (start, est, end) = (r[0], r[1], r[2]);
        assert_eq!((start.pkt, est.pkt, end.pkt), (1, 3, 6));
        assert_eq!(start.client.port, 40000);
        assert_eq!(start.server.port, 502);
        assert_eq!(start.l4, L4::Tcp);
        assert_eq!(end.packets, [4, 2]);
        assert_eq!(end.bytes, [12, 11]);
        assert_eq!(end.ttl, [64, 64]);
        assert_eq!(end.app, Some(Protocol::Modbus));
        assert!(end.saw(tcp_seen::SYN) && end.saw(tcp_seen::SYN_ACK) && end.saw(tcp_seen::ESTABLISHED));
        assert!(end.saw(tcp_seen::RST_CLIENT) && !end.saw(tcp_seen::RST_SERVER) && !end.saw(tcp_seen::MIDSTREAM));
    }

    #[test]
    fn a_closed_port_answering_rst_is_a_start_and_a_reset_without_handshake() {
        let c = run(&[tcp_packet(1, 40000, 2, 445, 99, SYN, &[]), tcp_packet(2, 445, 1, 40000, 0, RST_ACK, &[])]);
        let r = flow_records(&c);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].phase, FlowPhase::End(FlowEnd::Reset));
        assert!(r[1].saw(tcp_seen::RST_SERVER) && !r[1].saw(tcp_seen::ESTABLISHED));
        assert_eq!(r[1].server.port, 445);
        // A spoofed client's host answers the SYN-ACK with RST+ACK: never established.
        let c = run(&[
            tcp_packet(1, 40000, 2, 20000, 99, SYN, &[]),
            tcp_packet(2, 20000, 1, 40000, 499, SYN_ACK, &[]),
            tcp_packet(1, 40000, 2, 20000, 100, RST_ACK, &[]),
        ]);
        let r = flow_records(&c);
        assert_eq!(r.iter().map(|f| f.phase).collect::<Vec<_>>(), [FlowPhase::Start, FlowPhase::End(FlowEnd::Reset)]);
    }

    #[test]
    fn segments_from_another_ttl_on_an_ics_connection_are_reported_at_each_change() {
        let mut spoofed = tcp_packet(1, 40000, 2, 502, 112, PSH_ACK, &req(2));
        spoofed[8] = 128; // TTL of another host
        let mut again = tcp_packet(1, 40000, 2, 502, 124, PSH_ACK, &req(3));
        again[8] = 128;
        let back = tcp_packet(1, 40000, 2, 502, 136, PSH_ACK, &req(4)); // the real client again
        let c = run(&[tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)), spoofed, again, back]);
        // A mirror that sees each packet twice, before and after a router (TTL one less):
        // the second copy is a duplicate, not new bytes by another path: it is reported as
        // relayed, once within the minute, and the fresh packets' path stays the same.
        let first = tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1));
        let mut routed = first.clone();
        routed[8] = 63;
        let next = tcp_packet(1, 40000, 2, 502, 112, PSH_ACK, &req(2));
        let mut next_routed = next.clone();
        next_routed[8] = 63;
        let mirrored = run(&[first, routed, next, next_routed]);
        let relayed: Vec<_> = mirrored.notices.iter().filter(|n| matches!(n, NoticeKind::PathChanged { .. })).collect();
        assert_eq!(
            relayed,
            [&NoticeKind::PathChanged { ttl_before: 64, ttl: 63, mac: None, rst: false, relayed: true }],
            "{:?}",
            mirrored.notices
        );
        let changed: Vec<_> = c.notices.iter().filter(|n| matches!(n, NoticeKind::PathChanged { .. })).collect();
        assert_eq!(
            changed,
            [
                &NoticeKind::PathChanged { ttl_before: 64, ttl: 128, mac: None, rst: false, relayed: false },
                &NoticeKind::PathChanged { ttl_before: 128, ttl: 64, mac: None, rst: false, relayed: false }
            ],
            "{:?}",
            c.notices
        );
    }

    #[test]
    fn a_syn_with_payload_is_flagged() {
        let c = run(&[tcp_packet(1, 40000, 2, 502, 99, SYN, b"AAAA")]);
        assert!(flow_records(&c)[0].saw(tcp_seen::SYN_PAYLOAD), "{:?}", c.net);
        let c = run(&[tcp_packet(1, 40000, 2, 502, 99, SYN, b"AAAA"), tcp_packet(2, 502, 1, 40000, 0, RST_ACK, &[])]);
        let end = flow_records(&c)[1];
        assert!(end.saw(tcp_seen::SYN_PAYLOAD), "{end:?}");
    }

    #[test]
    fn what_the_dissectors_count_reaches_the_engine_statistics() {
        // More unanswered requests than a Modbus connection keeps: the oldest are evicted.
        let n = modbus::MAX_PENDING_TRANSACTIONS as u16 + 3;
        let mut e = Engine::new(EngineConfig::default());
        let mut c = crate::testutil::Collect::default();
        for tid in 0..n {
            let p = tcp_packet(1, 40000, 2, 502, 100 + 12 * u32::from(tid), PSH_ACK, &req(tid));
            e.process(
                Timestamp { secs: 1_000, nanos: 0 },
                u64::from(tid) + 1,
                crate::packet::linktype::RAW,
                &p,
                &mut c,
            );
        }
        assert_eq!(c.pdus.len(), usize::from(n));
        assert_eq!(e.stats().dissectors.modbus.pending_evicted, 3);
    }

    #[test]
    fn a_flow_idle_past_the_timeout_is_new_whenever_sweeps_ran() {
        let x = |seq| tcp_packet(1, 40000, 2, 502, seq, PSH_ACK, &req(1));
        let y = tcp_packet(3, 40001, 4, 502, 100, PSH_ACK, &req(2));
        // Flow X is idle for 605 s (timeout 600). Alone, a sweep at 605 s forgets it; with
        // flow Y's packet at 599 s the last sweep was then, and only the flow's own idle time
        // can decide: both engines must see X's second packet start a new flow, as the
        // sensor's workers (each seeing a share of the traffic) must agree with `detect`.
        assert_eq!(flows_after(&[(0, x(100)), (605, x(112))]), (2, 1));
        assert_eq!(flows_after(&[(0, x(100)), (599, y), (605, x(112))]), (3, 1));
    }

    #[test]
    fn picks_up_a_connection_in_the_middle() {
        // No handshake: the capture starts with a response whose request was not seen.
        let c = run(&[
            tcp_packet(2, 502, 1, 40000, 5000, PSH_ACK, &resp(7)),
            tcp_packet(1, 40000, 2, 502, 9000, PSH_ACK, &req(8)),
            tcp_packet(2, 502, 1, 40000, 5011, PSH_ACK, &resp(8)),
        ]);
        assert_eq!(c.pdus.len(), 3);
        assert!(!c.pdus[0].request && c.pdus[0].flags.is_empty(), "no violation before a request was seen");
        assert_eq!((c.pdus[2].address, c.pdus[2].values.clone()), (Some(0), vec![42]));
    }

    #[test]
    fn reports_traffic_on_502_that_is_not_modbus_and_does_not_misparse_it() {
        let http = b"GET /index.html HTTP/1.1\r\nHost: plc\r\n\r\n";
        let pkts: Vec<_> = (0..MAX_PROBE_SEGMENTS as u32)
            .map(|i| tcp_packet(1, 40000, 2, 502, 100 + i * http.len() as u32, PSH_ACK, http))
            .collect();
        let c = run(&pkts);
        assert!(c.pdus.is_empty());
        assert_eq!(c.notices, [NoticeKind::NotProtocol { expected: Protocol::Modbus }]);
    }

    #[test]
    fn drops_retransmissions_and_reorders_segments() {
        let c = run(&[
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)),
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)), // retransmission
            tcp_packet(1, 40000, 2, 502, 124, PSH_ACK, &req(3)), // early
            tcp_packet(1, 40000, 2, 502, 112, PSH_ACK, &req(2)), // fills the hole
        ]);
        let tids: Vec<_> = c.pdus.iter().map(|p| p.tid.unwrap()).collect();
        assert_eq!(tids, [1, 3, 2], "the early segment starts a valid ADU, so the hole is skipped at once");
    }

    #[test]
    fn reports_a_retransmission_that_rewrites_a_request() {
        let mut forged = req(1);
        forged[11] = 99; // same transaction, another quantity
        let c = run(&[
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)),
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)), // honest retransmission
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &forged),
        ]);
        assert_eq!(c.pdus.len(), 1, "the first copy is dissected once");
        assert_eq!(c.notices, [NoticeKind::RetransmissionConflict { bytes: 12 }]);
    }

    #[test]
    fn waits_for_a_hole_inside_an_adu() {
        let r = req(1);
        let c = run(&[
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &r[..5]),
            tcp_packet(1, 40000, 2, 502, 110, PSH_ACK, &r[10..]), // not a header: queued
            tcp_packet(1, 40000, 2, 502, 105, PSH_ACK, &r[5..10]),
        ]);
        assert_eq!(c.pdus.len(), 1);
        assert_eq!(c.pdus[0].pkt, 3);
    }

    #[test]
    fn resynchronises_after_lost_bytes() {
        let mut first = req(1);
        first.extend(&req(2)[..6]); // the second ADU is cut by the loss
        let mut after = req(2)[6..].to_vec(); // tail of the second ADU, never framed
        after.extend(req(3));
        let c = run(&[
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &first),
            // 40 bytes are never captured; then a segment far enough ahead to be a loss.
            tcp_packet(1, 40000, 2, 502, 100 + first.len() as u32 + 40, PSH_ACK, &after),
            tcp_packet(1, 40000, 2, 502, 100 + first.len() as u32 + 40 + after.len() as u32, FIN_ACK, &[]),
        ]);
        let tids: Vec<_> = c.pdus.iter().map(|p| p.tid.unwrap()).collect();
        assert_eq!(tids, [1, 3]);
        assert!(c.notices.iter().any(|n| matches!(n, NoticeKind::StreamGap { .. })));
    }

    #[test]
    fn a_new_syn_starts_a_new_connection() {
        let c = run(&[
            tcp_packet(1, 40000, 2, 502, 99, SYN, &[]),
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1)),
            tcp_packet(1, 40000, 2, 502, 7777, SYN, &[]),
            tcp_packet(1, 40000, 2, 502, 7778, PSH_ACK, &req(2)),
        ]);
        assert_eq!(c.pdus.len(), 2);
    }

    #[test]
    fn bounds_the_flow_table() {
        let config = EngineConfig { max_flows: 16, ..EngineConfig::default() };
        let pkts: Vec<_> = (0..100u16).map(|i| tcp_packet(1, 1000 + i, 2, 502, 100, PSH_ACK, &req(i))).collect();
        let mut e = Engine::new(config.clone());
        let mut n = 0;
        for (i, p) in pkts.iter().enumerate() {
            e.process(
                Timestamp { secs: i as i64, nanos: 0 },
                i as u64 + 1,
                crate::packet::linktype::RAW,
                p,
                &mut |_: &Pdu<'_>| n += 1,
            );
            assert!(e.active_flows() <= 16);
        }
        assert_eq!(n, 100, "every flow's PDU was still dissected");
        assert!(e.stats().flows_evicted >= 84);
        let _ = run_with(config, &pkts);
    }

    #[test]
    fn forgets_idle_flows_in_packet_time() {
        let mut e = Engine::new(EngineConfig { idle_timeout_secs: 60, ..EngineConfig::default() });
        let a = tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1));
        let b = tcp_packet(3, 40000, 4, 502, 100, ACK | PSH_ACK, &req(1));
        let mut sink = |_: &Pdu<'_>| {};
        e.process(Timestamp { secs: 0, nanos: 0 }, 1, crate::packet::linktype::RAW, &a, &mut sink);
        e.process(Timestamp { secs: 1000, nanos: 0 }, 2, crate::packet::linktype::RAW, &b, &mut sink);
        assert_eq!(e.active_flows(), 1);
        assert_eq!(e.stats().flows_timed_out, 1);
    }

    #[test]
    fn a_connection_opened_from_the_modbus_port_is_dissected_the_right_way_round_and_flagged() {
        // 10.0.0.2:502 (the server by its port) sends the SYN to 10.0.0.1:40000.
        let c = run(&[
            tcp_packet(2, 502, 1, 40000, 99, SYN, &[]),
            tcp_packet(1, 40000, 2, 502, 4999, SYN | ACK, &[]),
            tcp_packet(1, 40000, 2, 502, 5000, PSH_ACK, &req(1)),
            tcp_packet(2, 502, 1, 40000, 100, PSH_ACK, &resp(1)),
        ]);
        let seen: Vec<_> = c.pdus.iter().map(|p| (p.request, p.tid.unwrap(), p.flags.clone())).collect();
        assert_eq!(
            seen,
            [(true, 1, vec!["reversed_orientation"]), (false, 1, vec!["reversed_orientation"])],
            "the request goes to port 502 and its response matches it"
        );
        assert_eq!(c.pdus[1].values, [42]);
        assert_eq!(c.notices, [NoticeKind::UnexpectedPort { found: Protocol::Modbus }], "still reported as before");
    }

    #[test]
    fn a_connection_opened_toward_the_modbus_port_is_not_flagged() {
        let c = run(&[tcp_packet(1, 40000, 2, 502, 99, SYN, &[]), tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &req(1))]);
        assert!(c.pdus[0].flags.is_empty());
    }

    #[test]
    fn a_stream_with_wild_sequence_numbers_is_dissected_segment_by_segment() {
        // Every segment of the client's direction carries a whole request at a sequence
        // number that follows nothing before it (a fuzzer's, or a capture that lost its
        // footing): all behind the first, so reassembly would drop every one.
        let seqs = [3_000_000u32, 10, 900, 77, 12_345, 500, 2_000, 31];
        let mut pkts: Vec<_> = seqs
            .iter()
            .enumerate()
            .map(|(i, &seq)| tcp_packet(1, 40000, 2, 502, seq, PSH_ACK, &req(i as u16)))
            .collect();
        // Then the stream is consistent again: two, then three requests in order.
        let base = 31 + 12;
        for i in 0..3u32 {
            pkts.push(tcp_packet(1, 40000, 2, 502, base + 12 * i, PSH_ACK, &req(100 + i as u16)));
        }
        let mut e = Engine::new(EngineConfig::default());
        let mut c = crate::testutil::Collect::default();
        for (i, p) in pkts.iter().enumerate() {
            e.process(Timestamp { secs: i as i64, nanos: 0 }, i as u64 + 1, crate::packet::linktype::RAW, p, &mut c);
        }
        let tids: Vec<_> = c.pdus.iter().map(|p| p.tid.unwrap()).collect();
        let first_lost = MAX_UNSYNCED_SEGMENTS as usize; // segments 2..=5 are out of order before sync is lost
        let mut want = vec![0];
        want.extend((first_lost + 1) as u16..seqs.len() as u16);
        want.extend([100, 101, 102]);
        assert_eq!(tids, want);
        let per_segment: Vec<_> = c.pdus.iter().map(|p| p.flags.contains(&"per_segment")).collect();
        let n = seqs.len() - first_lost - 1;
        assert_eq!(per_segment[1..=n], vec![true; n][..]);
        assert_eq!(per_segment[n + 1..], [false, false, false], "back to in-order reassembly");
        assert_eq!((e.stats().resync_per_segment, e.stats().per_segment_pdus), (n as u64, n as u64));
        assert_eq!(e.stats().violations, 0, "how a PDU was seen is no protocol violation");
    }

    #[test]
    fn capture_loss_before_every_segment_is_followed_by_reassembly_not_per_segment() {
        // Each request follows a hole of 40 bytes (lost on the mirror port) and starts with a
        // valid header: reassembly skips each hole at once, which is not a loss of sync.
        let pkts: Vec<_> =
            (0..10u32).map(|i| tcp_packet(1, 40000, 2, 502, 100 + 52 * i, PSH_ACK, &req(i as u16))).collect();
        let c = run(&pkts);
        assert_eq!(c.pdus.len(), 10);
        assert!(c.pdus.iter().all(|p| p.flags.is_empty()), "{:?}", c.pdus);
    }

    /// Bytes a tracked flow may cost the table, from the type sizes: the flow itself, its
    /// slot's key and links, and its index entry (501 on x86-64 as of this writing). What
    /// remains is mostly the flow record (136: addresses, MACs, counters), the two
    /// directions' reassembly state without its boxed parts (2 x 104, the digest of the
    /// first segment inline), the Modbus state with its oldest pending request inline (64)
    /// and the path bookkeeping; the digests of the last segments (2 x 128) are boxed from a
    /// direction's second segment with payload, so a conversation costs 2 x 144 more on the
    /// heap, and a Modbus connection its requests pending beyond the first. A flow of one
    /// segment holding one whole PDU (a mid-stream flood) allocates nothing. Raise this bound
    /// only knowingly.
    const FLOW_ENTRY_BYTES: usize = 512;

    #[test]
    fn a_tracked_flow_costs_its_entry_and_no_reassembly_buffer_while_in_order() {
        let per_flow = Engine::flow_entry_bytes();
        assert!(per_flow <= FLOW_ENTRY_BYTES, "{per_flow} bytes per tracked flow");
        let syn = tcp_packet(1, 40000, 2, 502, 99, SYN, &[]);
        let (a, b) = (req(1), resp(1));
        let split = req(2);
        let pkts = [
            syn,
            tcp_packet(2, 502, 1, 40000, 499, SYN_ACK, &[]),
            tcp_packet(1, 40000, 2, 502, 100, ACK, &[]),
            tcp_packet(1, 40000, 2, 502, 100, PSH_ACK, &a),
            tcp_packet(2, 502, 1, 40000, 500, PSH_ACK, &b),
            tcp_packet(3, 40001, 2, 502, 7, SYN, &[]), // a SYN that is never answered
        ];
        let mut e = Engine::new(EngineConfig::default());
        let mut sink = |_: &Pdu<'_>| {};
        let allocated = |e: &Engine, host: u8, port: u16| {
            let ip = |h| IpAddr::from([10, 0, 0, h]);
            let key = FlowKey::new(Endpoint { ip: ip(host), port }, Endpoint { ip: ip(2), port: 502 }, L4::Tcp);
            e.flows.get(&key).map(|f| f.half.iter().map(HalfStream::allocated).sum::<usize>())
        };
        for (i, p) in pkts.iter().enumerate() {
            e.process(Timestamp { secs: 1, nanos: 0 }, i as u64 + 1, crate::packet::linktype::RAW, p, &mut sink);
        }
        assert_eq!(allocated(&e, 1, 40000), Some(0), "whole PDUs in order: nothing buffered");
        assert_eq!(allocated(&e, 3, 40001), Some(0), "a bare SYN: nothing buffered");
        // A PDU split over two segments is buffered until its end arrives.
        let half = tcp_packet(1, 40000, 2, 502, 112, PSH_ACK, &split[..5]);
        e.process(Timestamp { secs: 2, nanos: 0 }, 7, crate::packet::linktype::RAW, &half, &mut sink);
        assert!(allocated(&e, 1, 40000) > Some(0));
        // A segment out of order allocates the queue.
        let early = tcp_packet(3, 40001, 2, 502, 8 + 40, PSH_ACK, &req(3));
        let first = tcp_packet(3, 40001, 2, 502, 8, PSH_ACK, &req(4)[..4]);
        e.process(Timestamp { secs: 2, nanos: 0 }, 8, crate::packet::linktype::RAW, &first, &mut sink);
        e.process(Timestamp { secs: 2, nanos: 0 }, 9, crate::packet::linktype::RAW, &early, &mut sink);
        assert!(allocated(&e, 3, 40001) > Some(4));
    }

    /// One poll (request and response) on each of four Modbus connections, hosts 1-4 to host
    /// 50, in round `round`; `seq` holds the clients' sequence numbers.
    fn polls(round: u16, seq: &mut [u32; 4]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (k, s) in seq.iter_mut().enumerate() {
            let host = k as u8 + 1;
            out.push(tcp_packet(host, 40000, 50, 502, *s, PSH_ACK, &req(round)));
            out.push(tcp_packet(50, 502, host, 40000, 1000 + 11 * u32::from(round), PSH_ACK, &resp(round)));
            *s += 12;
        }
        out
    }

    #[test]
    fn a_flood_of_new_flows_leaves_the_legitimate_flows_dissected() {
        // Four polled Modbus connections share a table of 64 flows with a flood: after each
        // poll, 300 SYNs and 100 segments of Modbus data, each from a new source.
        let mut e = Engine::new(EngineConfig { max_flows: 64, ..EngineConfig::default() });
        let mut legit: Vec<(u8, u64)> = Vec::new();
        let mut flood_pdus = 0;
        let mut pkt = 0;
        let mut seq = [100u32; 4];
        let mut flood = 0u32;
        for round in 0..20u16 {
            let ts = Timestamp { secs: i64::from(round), nanos: 0 };
            let mut go = |e: &mut Engine, p: &[u8]| {
                pkt += 1;
                e.process(ts, pkt, crate::packet::linktype::RAW, p, &mut |p: &Pdu<'_>| match p.src.ip {
                    IpAddr::V4(v4) if v4.octets()[3] <= 4 || p.src.port == 502 => {
                        legit.push((v4.octets()[3], p.flow_id));
                    }
                    _ => flood_pdus += 1,
                });
            };
            for p in polls(round, &mut seq) {
                go(&mut e, &p);
            }
            for _ in 0..400 {
                flood += 1;
                let (host, port) = (100 + (flood % 100) as u8, 1024 + (flood / 100) as u16);
                let p = if flood % 4 == 0 {
                    tcp_packet(host, port, 50, 502, flood, PSH_ACK, &req(1))
                } else {
                    tcp_packet(host, port, 50, 502, flood, SYN, &[])
                };
                go(&mut e, &p);
            }
        }
        assert_eq!(legit.len(), 20 * 4 * 2, "every request and response of the polled connections");
        for k in 1..=4u8 {
            let ids: std::collections::BTreeSet<u64> =
                legit.iter().filter(|(h, _)| *h == k || *h == 50).map(|(_, id)| *id).collect();
            assert!(ids.len() <= 4, "each connection kept its flow (never evicted and recreated): {ids:?}");
        }
        let ids: std::collections::BTreeSet<u64> = legit.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids.len(), 4, "one flow per polled connection, from the first poll to the last");
        assert_eq!(flood_pdus, 20 * 100, "the flood's data was dissected too");
        assert_eq!(e.stats().flows, 4 + 20 * 400);
        assert_eq!(e.stats().flows_evicted, 4 + 20 * 400 - 64, "one eviction per new flow once full");
        assert!(e.active_flows() <= 64);
    }

    /// Under a flood that filled the table, the unproven flows are brought down to their
    /// share, one extra eviction a new flow, and kept there; the polled connections keep their
    /// flows, and a connection opened in the middle of the flood proves itself within its
    /// share's time and is dissected as one flow.
    #[test]
    fn under_pressure_unproven_flows_keep_to_their_share_and_a_new_connection_still_proves_itself() {
        let config = EngineConfig { max_flows: 64, unproven_under_pressure: 16, ..EngineConfig::default() };
        let mut e = Engine::new(config);
        let mut pdus: Vec<(u8, u64)> = Vec::new();
        let (mut pkt, mut flood, mut seq) = (0u64, 0u32, [100u32; 4]);
        let mut most_after_shrink = 0;
        for round in 0..20u16 {
            let ts = Timestamp { secs: i64::from(round), nanos: 0 };
            let mut go = |e: &mut Engine, p: &[u8]| {
                pkt += 1;
                e.process(ts, pkt, crate::packet::linktype::RAW, p, &mut |p: &Pdu<'_>| {
                    if let IpAddr::V4(v4) = p.src.ip {
                        pdus.push((v4.octets()[3], p.flow_id));
                    }
                });
            };
            for p in polls(round, &mut seq) {
                go(&mut e, &p);
            }
            for i in 0..100 {
                flood += 1;
                go(
                    &mut e,
                    &tcp_packet(100 + (flood % 100) as u8, 1024 + (flood / 100) as u16, 50, 502, flood, SYN, &[]),
                );
                if round == 10 && i == 50 {
                    // A new master (host 9) connects mid-flood: its handshake and first
                    // exchange take five packets, among a few of the flood's.
                    go(&mut e, &tcp_packet(9, 41000, 50, 502, 0, SYN, &[]));
                    go(&mut e, &tcp_packet(50, 502, 9, 41000, 500, SYN_ACK, &[]));
                    go(&mut e, &tcp_packet(9, 41000, 50, 502, 1, ACK, &[]));
                    go(&mut e, &tcp_packet(9, 41000, 50, 502, 1, PSH_ACK, &req(7)));
                    go(&mut e, &tcp_packet(50, 502, 9, 41000, 501, PSH_ACK, &resp(7)));
                }
            }
            if round >= 2 {
                most_after_shrink = most_after_shrink.max(e.active_flows());
            }
        }
        assert!(most_after_shrink <= 4 + 16 + 1, "the unproven flows kept to their share: {most_after_shrink}");
        for host in 1..=4u8 {
            let ids: std::collections::BTreeSet<u64> =
                pdus.iter().filter(|(h, _)| *h == host).map(|(_, i)| *i).collect();
            assert_eq!(ids.len(), 1, "the polled connection of host {host} kept its flow: {ids:?}");
        }
        let new_master: Vec<u64> = pdus.iter().filter(|(h, _)| *h == 9).map(|(_, i)| *i).collect();
        assert_eq!(new_master.len(), 1, "its request dissected");
        let answered = pdus.iter().filter(|(h, id)| *h == 50 && *id == new_master[0]).count();
        assert_eq!(answered, 1, "its response dissected on the same flow");
        assert_eq!(e.stats().flows, 4 + 2000 + 1);
        assert!(e.stats().flows_evicted > 2000 - 64, "{}", e.stats().flows_evicted);
    }

    #[test]
    fn flows_holding_out_of_order_data_are_shed_to_stay_within_the_reassembly_budget() {
        const BUDGET: usize = 64 * 1024;
        let mut e = Engine::new(EngineConfig { reassembly_budget: BUDGET, ..EngineConfig::default() });
        let mut c = crate::testutil::Collect::default();
        let data = vec![0x55u8; 1000];
        let mut pkt = 0;
        // 40 flows, each a first segment then 20 segments each ahead of a 100-byte hole:
        // about 20 KB held per flow, 800 KB in all without the budget.
        for flow in 0..40u16 {
            for k in 0..21u32 {
                let seq = if k == 0 { 1000 } else { 2000 + 100 + (k - 1) * 1100 };
                let p = tcp_packet(1, 40000 + flow, 2, 502, seq, PSH_ACK, &data);
                pkt += 1;
                e.process(Timestamp { secs: 1, nanos: 0 }, pkt, crate::packet::linktype::RAW, &p, &mut c);
                let held: usize = (0..e.flows.slot_count()).filter_map(|i| e.flows.at(i)).map(buffered).sum();
                assert!(held <= BUDGET, "{held} bytes held after packet {pkt}");
            }
        }
        assert!(e.stats().reassembly_shed > 0);
        assert!(e.stats().reassembly_shed_bytes >= 600_000, "{}", e.stats().reassembly_shed_bytes);
        assert_eq!(e.stats().flows, 40, "shedding forgets buffers, never flows");
    }
}
