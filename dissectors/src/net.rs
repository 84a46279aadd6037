//! What the engine reports about all traffic, not only ICS PDUs: one [`FlowRecord`] when a
//! connection or conversation starts, completes its handshake and ends, one [`ArpPacket`]
//! per ARP packet, and one [`L2Record`] the first time a pair of MACs speaks a non-IP
//! EtherType (GOOSE, PROFINET, ...). The models learn from these which services each pair
//! of hosts uses, which MAC and TTL each address has, and see scans, floods and spoofing an
//! attacker who never speaks an ICS protocol would otherwise hide in.

use crate::types::{Endpoint, Protocol, Timestamp};

/// Transport of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP or ICMPv6: the server endpoint's port holds the ICMP type of the first message.
    Icmp,
}

impl L4 {
    /// `tcp`, `udp` or `icmp`.
    pub const fn name(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
            L4::Icmp => "icmp",
        }
    }
    /// The transport of a name written by [`L4::name`].
    pub fn parse(s: &str) -> Option<L4> {
        match s {
            "tcp" => Some(L4::Tcp),
            "udp" => Some(L4::Udp),
            "icmp" => Some(L4::Icmp),
            _ => None,
        }
    }
}

/// Where in its life a conversation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowPhase {
    /// Its first packet (a SYN, or data picked up mid-stream, or a first datagram).
    Start,
    /// The client acknowledged the server's SYN-ACK: the three-way handshake completed.
    Established,
    /// It ended.
    End(FlowEnd),
}

/// Why a conversation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowEnd {
    /// FIN from both sides.
    Closed,
    /// A RST.
    Reset,
    /// Silent past the idle timeout (reported when a packet of the same tuple comes back;
    /// flows forgotten by a sweep or evicted from a full table are counted, not reported,
    /// since when that happens depends on how traffic is shared among workers).
    Idle,
}

/// TCP events seen on a connection, as bits of [`FlowRecord::tcp`].
pub mod tcp_seen {
    /// The client sent a SYN.
    pub const SYN: u8 = 1;
    /// The server answered SYN-ACK.
    pub const SYN_ACK: u8 = 1 << 1;
    /// The handshake completed.
    pub const ESTABLISHED: u8 = 1 << 2;
    /// The client sent a RST.
    pub const RST_CLIENT: u8 = 1 << 3;
    /// The server sent a RST.
    pub const RST_SERVER: u8 = 1 << 4;
    /// A FIN was seen.
    pub const FIN: u8 = 1 << 5;
    /// A SYN carried payload (legal, but almost never used; a classic of injection and
    /// evasion tools).
    pub const SYN_PAYLOAD: u8 = 1 << 6;
    /// The connection was picked up after its handshake (no SYN seen).
    pub const MIDSTREAM: u8 = 1 << 7;
}

/// One connection or conversation, at one point of its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// Start, established or end.
    pub phase: FlowPhase,
    /// Time of the packet that caused this record (for an idle end: the flow's last packet).
    pub ts: Timestamp,
    /// 1-based index, in its capture, of that packet.
    pub pkt: u64,
    /// Time of the conversation's first packet.
    pub first_ts: Timestamp,
    /// The engine's identifier of the flow (the same as its PDUs').
    pub flow_id: u64,
    /// Transport.
    pub l4: L4,
    /// The side that opened the conversation (sent the SYN or the first datagram).
    pub client: Endpoint,
    /// The side that was called; for ICMP, `port` is the first message's type.
    pub server: Endpoint,
    /// Client's and server's MAC addresses, as first seen, on Ethernet.
    pub macs: [Option<[u8; 6]>; 2],
    /// IP TTL (hop limit) of the client's and the server's first packets; 0 when unseen.
    pub ttl: [u8; 2],
    /// Packets from the client and from the server.
    pub packets: [u32; 2],
    /// IP payload bytes from the client and from the server.
    pub bytes: [u64; 2],
    /// [`tcp_seen`] bits.
    pub tcp: u8,
    /// The ICS protocol dissected on it, if any.
    pub app: Option<Protocol>,
}

impl FlowRecord {
    /// Whether a [`tcp_seen`] bit is set.
    pub const fn saw(&self, bit: u8) -> bool {
        self.tcp & bit != 0
    }
}

/// ARP operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    /// Who has the target address?
    Request,
    /// The sender has the sender address.
    Reply,
}

/// One Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    /// Time of the packet.
    pub ts: Timestamp,
    /// 1-based packet index in its capture.
    pub pkt: u64,
    /// Request or reply.
    pub op: ArpOp,
    /// The Ethernet source of the frame (may differ from the sender hardware address).
    pub eth_src: [u8; 6],
    /// Sender hardware address: the MAC the packet binds to `sender_ip`.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: std::net::Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: std::net::Ipv4Addr,
}

impl ArpPacket {
    /// A gratuitous ARP: the sender announces its own address (sender and target address
    /// equal), unasked.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// The first frame of a non-IP EtherType between two MACs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L2Record {
    /// Time of the frame.
    pub ts: Timestamp,
    /// 1-based packet index in its capture.
    pub pkt: u64,
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC (often a multicast group: GOOSE, PROFINET DCP).
    pub dst: [u8; 6],
    /// The EtherType.
    pub ether_type: u16,
}

/// What the engine reports beside PDUs and notices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A conversation started, completed its handshake, or ended.
    Flow(FlowRecord),
    /// An ARP packet.
    Arp(ArpPacket),
    /// A new non-IP conversation between two MACs.
    L2(L2Record),
}

impl NetEvent {
    /// Time of the packet the event is about.
    pub fn ts(&self) -> Timestamp {
        match self {
            NetEvent::Flow(f) => f.ts,
            NetEvent::Arp(a) => a.ts,
            NetEvent::L2(l) => l.ts,
        }
    }
}

/// The name of a service an OT network cares about, by transport and server port
/// (for ICMP, the type), or `None`.
pub fn service_name(l4: L4, port: u16) -> Option<&'static str> {
    let name = match (l4, port) {
        (L4::Tcp, 20 | 21) => "ftp",
        (L4::Tcp, 22) => "ssh",
        (L4::Tcp, 23) => "telnet",
        (L4::Tcp | L4::Udp, 53) => "dns",
        (L4::Udp, 69) => "tftp",
        (L4::Tcp, 80 | 8080) => "http",
        (L4::Udp, 123) => "ntp",
        (L4::Udp, 137) => "netbios-ns",
        (L4::Udp, 138) => "netbios-dgm",
        (L4::Tcp, 139 | 445) => "smb",
        (L4::Udp, 161 | 162) => "snmp",
        (L4::Tcp, 443 | 8443) => "https",
        (L4::Tcp, 102) => "s7comm",
        (L4::Tcp, 502) => "modbus",
        (L4::Tcp, 2404) => "iec104",
        (L4::Tcp | L4::Udp, 20000) => "dnp3",
        (L4::Tcp | L4::Udp, 44818) | (L4::Udp, 2222) => "ethernet-ip",
        (L4::Udp, 47808) => "bacnet",
        (L4::Tcp, 4840) => "opc-ua",
        (L4::Udp, 319 | 320) => "ptp",
        (L4::Tcp, 3389) => "rdp",
        (L4::Tcp, 5900..=5903) => "vnc",
        (L4::Tcp, 1433) => "mssql",
        (L4::Tcp, 135) => "msrpc",
        (L4::Tcp, 4444) => "metasploit-shell",
        (L4::Udp, 67 | 68) => "dhcp",
        (L4::Udp, 5353) => "mdns",
        (L4::Udp, 1900) => "ssdp",
        (L4::Icmp, 0 | 8) => "icmp-echo",
        (L4::Icmp, 128 | 129) => "icmpv6-echo",
        (L4::Icmp, 3) => "icmp-unreachable",
        _ => return None,
    };
    Some(name)
}

/// The name of a non-IP EtherType an OT network carries, or `None`.
pub fn ether_type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0x0806 => "arp",
        0x88b8 => "goose",
        0x88b9 => "gse-management",
        0x88ba => "sampled-values",
        0x8892 => "profinet",
        0x88cc => "lldp",
        0x88f7 => "ptp",
        0x88a4 => "ethercat",
        0x22f0 | 0x22f1 => "avb",
        0x8100 => "vlan",
        _ => return None,
    })
}

/// What kind of access a service gives, for the rules that weigh first use higher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceKind {
    /// Interactive remote access: RDP, VNC, SSH, Telnet.
    RemoteAccess,
    /// Moving files: SMB, FTP, TFTP.
    FileTransfer,
    /// Anything else.
    Other,
}

/// The kind of a service by transport and server port.
pub fn service_kind(l4: L4, port: u16) -> ServiceKind {
    match service_name(l4, port) {
        Some("rdp" | "vnc" | "ssh" | "telnet" | "metasploit-shell") => ServiceKind::RemoteAccess,
        Some("smb" | "ftp" | "tftp") => ServiceKind::FileTransfer,
        _ => ServiceKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_services_an_ot_network_cares_about() {
        assert_eq!(service_name(L4::Tcp, 445), Some("smb"));
        assert_eq!(service_name(L4::Udp, 445), None);
        assert_eq!(service_name(L4::Tcp, 2404), Some("iec104"));
        assert_eq!(service_kind(L4::Tcp, 3389), ServiceKind::RemoteAccess);
        assert_eq!(service_kind(L4::Udp, 69), ServiceKind::FileTransfer);
        assert_eq!(service_kind(L4::Tcp, 502), ServiceKind::Other);
        assert_eq!(ether_type_name(0x88b8), Some("goose"));
        for l4 in [L4::Tcp, L4::Udp, L4::Icmp] {
            assert_eq!(L4::parse(l4.name()), Some(l4));
        }
    }
}
