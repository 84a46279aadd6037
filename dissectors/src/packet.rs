//! Link, network and transport decoding (through etherparse): from a captured frame and its
//! link type to the IP endpoints and the TCP or UDP payload, without copying.

use std::net::IpAddr;

use crate::bytes::be16;
use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};

/// Link types (tcpdump.org LINKTYPE_ values) that [`decode`] understands.
pub mod linktype {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II, with 802.1Q and QinQ tags.
    pub const ETHERNET: u32 = 1;
    /// Raw IP (the value some systems write for DLT_RAW).
    pub const RAW_ALT1: u32 = 12;
    /// Raw IP (the value OpenBSD writes for DLT_RAW).
    pub const RAW_ALT2: u32 = 14;
    /// Raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1 (`any` device).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;

    /// Whether [`super::decode`] understands `lt`.
    pub const fn is_supported(lt: u32) -> bool {
        matches!(lt, NULL | ETHERNET | RAW_ALT1 | RAW_ALT2 | RAW | LOOP | LINUX_SLL | IPV4 | IPV6 | LINUX_SLL2)
    }

    /// A human name for a link type, for messages.
    pub const fn name(lt: u32) -> &'static str {
        match lt {
            NULL => "NULL (BSD loopback)",
            ETHERNET => "ETHERNET",
            RAW | RAW_ALT1 | RAW_ALT2 => "RAW",
            LOOP => "LOOP",
            LINUX_SLL => "LINUX_SLL",
            IPV4 => "IPV4",
            IPV6 => "IPV6",
            LINUX_SLL2 => "LINUX_SLL2",
            105 => "IEEE802_11",
            127 => "IEEE802_11_RADIOTAP",
            _ => "unsupported",
        }
    }
}

/// TCP header fields the reassembler needs, and the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Payload.
    pub payload: &'a [u8],
}

/// The transport layer of a decoded packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// A UDP datagram.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Payload.
        payload: &'a [u8],
    },
    /// An ICMP or ICMPv6 message.
    Icmp {
        /// Message type.
        icmp_type: u8,
        /// Bytes of the message.
        len: usize,
    },
}

/// The Ethernet addresses of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Macs {
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
}

/// A packet decoded down to its transport payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source and destination MAC addresses, on Ethernet.
    pub macs: Option<Macs>,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Transport layer.
    pub transport: Transport<'a>,
}

/// Why a packet was not decoded to TCP or UDP. Each is counted, none is fatal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The link type is not supported.
    LinkType(u32),
    /// Not IP (ARP, LLDP, PROFINET, GOOSE, ...).
    NotIp,
    /// An IPv4 or IPv6 fragment; fragments are counted, not reassembled.
    Fragment,
    /// IP, but neither TCP, UDP nor ICMP (IGMP, GRE, ...).
    OtherTransport,
    /// A header is truncated or inconsistent.
    Malformed,
}

impl Skip {
    /// A short name for summaries and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Skip::LinkType(_) => "unsupported_link_type",
            Skip::NotIp => "not_ip",
            Skip::Fragment => "ip_fragment",
            Skip::OtherTransport => "other_transport",
            Skip::Malformed => "malformed",
        }
    }
}

fn family_to_ethertype(family: u32) -> Option<EtherType> {
    match family {
        2 => Some(EtherType::IPV4),
        // AF_INET6 differs between BSDs and macOS: 24, 28 and 30 are all seen.
        10 | 24 | 28 | 30 => Some(EtherType::IPV6),
        _ => None,
    }
}

/// Decodes a captured frame of link type `lt`.
pub fn decode(lt: u32, data: &[u8]) -> Result<Decoded<'_>, Skip> {
    if lt == linktype::ETHERNET {
        if let Some(d) = fast_ethernet_ipv4(data) {
            return d;
        }
    }
    decode_general(lt, data)
}

/// The fast path for the overwhelmingly common frame on an ICS mirror port: Ethernet, at most
/// two VLAN tags, IPv4, TCP or UDP. Returns `None` for anything else or anything unusual,
/// which then goes through etherparse; where it answers, it answers exactly as etherparse
/// would (a property test holds it to that). A third of the per-packet cost otherwise.
fn fast_ethernet_ipv4(data: &[u8]) -> Option<Result<Decoded<'_>, Skip>> {
    let mut ether_type = be16(data, 12)?;
    let mut off: usize = 14;
    for _ in 0..2 {
        if !matches!(ether_type, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        // At most two tags, so `off` stays below 24: saturating only to satisfy the lint.
        ether_type = be16(data, off.saturating_add(2))?;
        off = off.saturating_add(4);
    }
    if ether_type != 0x0800 {
        return None;
    }
    let ip = data.get(off..)?;
    let vihl = *ip.first()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    // A total length of 0 is what TCP segmentation offload leaves in frames captured on the
    // sending host: the frame's length is the truth, as Wireshark takes it. This is the one
    // place the fast path knowingly answers where etherparse would refuse.
    let total = match usize::from(be16(ip, 2)?) {
        0 => ip.len(),
        n => n,
    };
    if vihl >> 4 != 4 || ihl < 20 || total < ihl || total > ip.len() {
        return None;
    }
    let src = IpAddr::V4(std::net::Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?));
    let dst = IpAddr::V4(std::net::Ipv4Addr::new(*ip.get(16)?, *ip.get(17)?, *ip.get(18)?, *ip.get(19)?));
    let l4 = ip.get(ihl..total)?;
    if be16(ip, 6)? & 0x3fff != 0 {
        return Some(Err(Skip::Fragment));
    }
    let transport = match *ip.get(9)? {
        6 => {
            let doff = usize::from(*l4.get(12)? >> 4) * 4;
            let flags = *l4.get(13)?;
            if doff < 20 || doff > l4.len() {
                return None;
            }
            Transport::Tcp(TcpSegment {
                src_port: be16(l4, 0)?,
                dst_port: be16(l4, 2)?,
                seq: u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?),
                syn: flags & 0x02 != 0,
                ack: flags & 0x10 != 0,
                fin: flags & 0x01 != 0,
                rst: flags & 0x04 != 0,
                payload: l4.get(doff..)?,
            })
        }
        17 => {
            let len = usize::from(be16(l4, 4)?);
            if len < 8 || len > l4.len() {
                return None;
            }
            Transport::Udp { src_port: be16(l4, 0)?, dst_port: be16(l4, 2)?, payload: l4.get(8..len)? }
        }
        _ => return None,
    };
    let macs = Macs { dst: data.get(..6)?.try_into().ok()?, src: data.get(6..12)?.try_into().ok()? };
    Some(Ok(Decoded { src, dst, macs: Some(macs), ttl: *ip.get(8)?, transport }))
}

/// Decodes any supported frame through etherparse.
fn decode_general(lt: u32, data: &[u8]) -> Result<Decoded<'_>, Skip> {
    use linktype::*;
    let sliced = match lt {
        ETHERNET => SlicedPacket::from_ethernet(data),
        RAW | RAW_ALT1 | RAW_ALT2 | IPV4 | IPV6 => SlicedPacket::from_ip(data),
        LINUX_SLL => SlicedPacket::from_linux_sll(data),
        LINUX_SLL2 => {
            // Protocol type (2), reserved (2), interface index (4), ARPHRD type (2), packet
            // type (1), address length (1), address (8): 20 bytes.
            let (Some(&[p0, p1]), Some(rest)) = (data.get(..2), data.get(20..)) else {
                return Err(Skip::Malformed);
            };
            SlicedPacket::from_ether_type(EtherType(u16::from_be_bytes([p0, p1])), rest)
        }
        NULL | LOOP => {
            let (Some(&[a, b, c, d]), Some(rest)) = (data.get(..4), data.get(4..)) else {
                return Err(Skip::Malformed);
            };
            let family = if lt == LOOP {
                u32::from_be_bytes([a, b, c, d])
            } else {
                // Host byte order of the capturing machine: a family is small, so whichever
                // reading is small is the right one.
                let le = u32::from_le_bytes([a, b, c, d]);
                if le < 256 {
                    le
                } else {
                    u32::from_be_bytes([a, b, c, d])
                }
            };
            let et = family_to_ethertype(family).ok_or(Skip::NotIp)?;
            SlicedPacket::from_ether_type(et, rest)
        }
        other => return Err(Skip::LinkType(other)),
    }
    .map_err(|_| Skip::Malformed)?;

    let (src, dst, ttl) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            if ip.is_payload_fragmented() {
                return Err(Skip::Fragment);
            }
            let h = ip.header();
            (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), h.ttl())
        }
        Some(NetSlice::Ipv6(ip)) => {
            if ip.is_payload_fragmented() {
                return Err(Skip::Fragment);
            }
            let h = ip.header();
            (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), h.hop_limit())
        }
        Some(NetSlice::Arp(_)) | None => return Err(Skip::NotIp),
    };
    let transport = match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Transport::Tcp(TcpSegment {
            src_port: tcp.source_port(),
            dst_port: tcp.destination_port(),
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            payload: tcp.payload(),
        }),
        Some(TransportSlice::Udp(udp)) => {
            Transport::Udp { src_port: udp.source_port(), dst_port: udp.destination_port(), payload: udp.payload() }
        }
        Some(TransportSlice::Icmpv4(m)) => Transport::Icmp { icmp_type: m.type_u8(), len: m.slice().len() },
        Some(TransportSlice::Icmpv6(m)) => Transport::Icmp { icmp_type: m.type_u8(), len: m.slice().len() },
        Some(_) | None => return Err(Skip::OtherTransport),
    };
    let macs = match &sliced.link {
        Some(etherparse::LinkSlice::Ethernet2(eth)) => Some(Macs { src: eth.source(), dst: eth.destination() }),
        _ => None,
    };
    Ok(Decoded { src, dst, macs, ttl, transport })
}

/// A non-IP Ethernet frame: its addresses, EtherType (after VLAN tags) and, for ARP, the
/// packet's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkFrame {
    /// Source and destination MACs.
    pub macs: Macs,
    /// EtherType of the payload.
    pub ether_type: u16,
    /// The ARP packet, when the frame is Ethernet/IPv4 ARP.
    pub arp: Option<Arp>,
}

/// The fields of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply (others are kept as they are).
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: std::net::Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: std::net::Ipv4Addr,
}

/// Decodes the link layer of an Ethernet frame that [`decode`] refused as not IP.
pub fn link_frame(lt: u32, data: &[u8]) -> Option<LinkFrame> {
    if lt != linktype::ETHERNET {
        return None;
    }
    let mut ether_type = be16(data, 12)?;
    let mut off: usize = 14;
    for _ in 0..2 {
        if !matches!(ether_type, 0x8100 | 0x88a8 | 0x9100) {
            break;
        }
        // At most two tags, so `off` stays below 24: saturating only to satisfy the lint.
        ether_type = be16(data, off.saturating_add(2))?;
        off = off.saturating_add(4);
    }
    if ether_type < 0x0600 {
        // An 802.3 length field (LLC/SNAP: STP, ...), not an EtherType.
        return None;
    }
    let macs = Macs { dst: data.get(..6)?.try_into().ok()?, src: data.get(6..12)?.try_into().ok()? };
    let arp = if ether_type == 0x0806 { arp(data.get(off..)?) } else { None };
    Some(LinkFrame { macs, ether_type, arp })
}

/// An Ethernet/IPv4 ARP packet: hardware type 1, protocol 0x0800, lengths 6 and 4.
fn arp(p: &[u8]) -> Option<Arp> {
    if be16(p, 0)? != 1 || be16(p, 2)? != 0x0800 || *p.get(4)? != 6 || *p.get(5)? != 4 {
        return None;
    }
    let ip = |at: usize| -> Option<std::net::Ipv4Addr> {
        let b: [u8; 4] = p.get(at..)?.get(..4)?.try_into().ok()?;
        Some(std::net::Ipv4Addr::from(b))
    };
    Some(Arp {
        op: be16(p, 6)?,
        sender_mac: p.get(8..14)?.try_into().ok()?,
        sender_ip: ip(14)?,
        target_mac: p.get(18..24)?.try_into().ok()?,
        target_ip: ip(24)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/TCP packet from 10.0.0.1:1234 to 10.0.0.2:502 carrying "AB".
    fn ipv4_tcp() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, // version 4, IHL 5; DSCP/ECN
            0x00, 0x2a, // total length 42 = 20 + 20 + 2
            0x00, 0x01, 0x40, 0x00, // id 1, don't fragment
            0x40, 0x06, 0x00, 0x00, // TTL 64, protocol TCP, checksum (unchecked)
            10, 0, 0, 1, // source
            10, 0, 0, 2, // destination
            0x04, 0xd2, 0x01, 0xf6, // ports 1234 -> 502
            0x00, 0x00, 0x00, 0x64, // seq 100
            0x00, 0x00, 0x00, 0x00, // ack 0
            0x50, 0x18, // data offset 5, PSH+ACK
            0x20, 0x00, 0x00, 0x00, 0x00, 0x00, // window, checksum, urgent
        ];
        v.extend_from_slice(b"AB");
        v
    }

    #[test]
    fn decodes_raw_ipv4_tcp() {
        let p = ipv4_tcp();
        let d = decode(linktype::RAW, &p).unwrap();
        assert_eq!(d.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        let Transport::Tcp(t) = d.transport else { panic!("not tcp") };
        assert_eq!((t.src_port, t.dst_port, t.seq, t.payload), (1234, 502, 100, &b"AB"[..]));
        assert!(t.ack && !t.syn);
    }

    #[test]
    fn decodes_ethernet_with_qinq_tags() {
        let mut f = vec![
            0, 1, 2, 3, 4, 5, // destination MAC
            6, 7, 8, 9, 10, 11, // source MAC
            0x88, 0xa8, 0x00, 0x64, // S-tag, VLAN 100
            0x81, 0x00, 0x00, 0x0a, // C-tag, VLAN 10
            0x08, 0x00, // IPv4
        ];
        f.extend(ipv4_tcp());
        assert!(matches!(decode(linktype::ETHERNET, &f).unwrap().transport, Transport::Tcp(_)));
    }

    #[test]
    fn decodes_linux_cooked_v2() {
        let mut f = vec![
            0x08, 0x00, // protocol IPv4
            0, 0, // reserved
            0, 0, 0, 2, // interface index
            0, 1, // ARPHRD_ETHER
            0, // packet to us
            6, // address length
            1, 2, 3, 4, 5, 6, 0, 0, // address, padded to 8
        ];
        f.extend(ipv4_tcp());
        assert!(decode(linktype::LINUX_SLL2, &f).is_ok());
    }

    #[test]
    fn decodes_bsd_loopback_in_either_byte_order() {
        for fam in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
            let mut f = fam.to_vec();
            f.extend(ipv4_tcp());
            assert!(decode(linktype::NULL, &f).is_ok());
        }
    }

    fn ethernet(ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00]; // MACs, IPv4
        f.extend_from_slice(ip);
        f
    }

    proptest::proptest! {
        /// The fast path answers exactly as etherparse does whenever it answers at all.
        #[test]
        fn fast_path_agrees_with_etherparse(
            edits in proptest::collection::vec((0usize..56, proptest::prelude::any::<u8>()), 0..4),
            cut in 30usize..60,
        ) {
            let mut f = ethernet(&ipv4_tcp());
            for (i, b) in edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            f.truncate(cut.min(f.len()));
            let tso = f.get(16..18) == Some(&[0, 0]);
            if let Some(fast) = fast_ethernet_ipv4(&f).filter(|_| !tso) {
                let general = decode_general(linktype::ETHERNET, &f);
                match (&fast, &general) {
                    (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                    (Err(Skip::Fragment), Err(Skip::Fragment)) => {}
                    _ => proptest::prop_assert!(false, "fast {:?} vs etherparse {:?}", fast, general),
                }
            }
        }
    }

    #[test]
    fn takes_the_frame_length_when_tso_left_the_total_length_at_zero() {
        let mut ip = ipv4_tcp();
        ip[2] = 0; // total length 0, as captured on a host doing segmentation offload
        ip[3] = 0;
        let frame = ethernet(&ip);
        let d = decode(linktype::ETHERNET, &frame).unwrap();
        let Transport::Tcp(t) = d.transport else { panic!("not tcp") };
        assert_eq!(t.payload, b"AB");
    }

    #[test]
    fn fast_path_handles_the_common_frame() {
        let f = ethernet(&ipv4_tcp());
        assert_eq!(fast_ethernet_ipv4(&f), Some(decode_general(linktype::ETHERNET, &f)));
    }

    #[test]
    fn decodes_an_arp_reply_and_names_other_ethertypes() {
        let mut f = vec![
            0x00, 0x18, 0x64, 0x02, 0x2f, 0xa6, // destination MAC
            0x02, 0x00, 0x00, 0x00, 0x00, 0x66, // source MAC
            0x08, 0x06, // EtherType ARP
            0x00, 0x01, // hardware type Ethernet
            0x08, 0x00, // protocol IPv4
            6, 4, // address lengths
            0x00, 0x02, // op: reply
            0x02, 0x00, 0x00, 0x00, 0x00, 0x66, // sender MAC (the attacker's)
            192, 168, 10, 222, // sender IP (the outstation's)
            0x00, 0x18, 0x64, 0x02, 0x2f, 0xa6, // target MAC
            192, 168, 10, 221, // target IP
        ];
        assert_eq!(decode(linktype::ETHERNET, &f), Err(Skip::NotIp));
        let l = link_frame(linktype::ETHERNET, &f).expect("ethernet frame");
        assert_eq!(l.ether_type, 0x0806);
        let a = l.arp.expect("arp");
        assert_eq!(a.op, 2);
        assert_eq!(a.sender_mac, [0x02, 0, 0, 0, 0, 0x66]);
        assert_eq!(a.sender_ip, std::net::Ipv4Addr::new(192, 168, 10, 222));
        assert_eq!(a.target_ip, std::net::Ipv4Addr::new(192, 168, 10, 221));
        // A truncated ARP body is still a frame of EtherType ARP, without fields.
        f.truncate(30);
        assert_eq!(link_frame(linktype::ETHERNET, &f).and_then(|l| l.arp), None);
        // GOOSE.
        let goose = [[0x01, 0x0c, 0xcd, 0x01, 0, 1].as_slice(), &[0x02, 0, 0, 0, 0, 1], &[0x88, 0xb8, 0, 1]].concat();
        assert_eq!(link_frame(linktype::ETHERNET, &goose).map(|l| l.ether_type), Some(0x88b8));
    }

    #[test]
    fn decodes_icmp_and_the_ttl() {
        let p = [
            0x45, 0x00, 0x00, 0x1c, // version, IHL, DSCP, total length 28
            0x00, 0x01, 0x00, 0x00, // id, flags, fragment offset
            0x7f, 0x01, 0x00, 0x00, // TTL 127, protocol ICMP, checksum
            10, 0, 0, 1, // source
            10, 0, 0, 2, // destination
            0x08, 0x00, 0xf7, 0xff, // echo request, code 0, checksum
            0x00, 0x00, 0x00, 0x00, // identifier, sequence
        ];
        let d = decode(linktype::RAW, &p).expect("decodes");
        assert_eq!(d.ttl, 127);
        assert_eq!(d.transport, Transport::Icmp { icmp_type: 8, len: 8 });
    }

    #[test]
    fn reports_fragments_and_unsupported_link_types() {
        let mut p = ipv4_tcp();
        p[6] = 0x20; // more fragments
        assert_eq!(decode(linktype::RAW, &p), Err(Skip::Fragment));
        assert_eq!(decode(105, &p), Err(Skip::LinkType(105)));
        assert_eq!(decode(linktype::RAW, &p[..10]), Err(Skip::Malformed));
    }
}
