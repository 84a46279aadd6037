//! Builders of raw IPv4 packets for tests (link type RAW), and a sink that keeps owned
//! summaries of what the engine emits.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::engine::{Engine, EngineConfig};
use crate::event::{NetEvent, Notice, NoticeKind, Pdu, PduBody, Sink, Timestamp};
use crate::packet::linktype;

/// TCP flags for [`tcp_packet`].
pub(crate) const SYN: u8 = 0x02;
pub(crate) const ACK: u8 = 0x10;
pub(crate) const PSH_ACK: u8 = 0x18;
pub(crate) const FIN_ACK: u8 = 0x11;
pub(crate) const SYN_ACK: u8 = 0x12;
pub(crate) const RST_ACK: u8 = 0x14;

/// An IPv4/TCP packet from 10.0.0.`src`:`sport` to 10.0.0.`dst`:`dport`.
pub(crate) fn tcp_packet(src: u8, sport: u16, dst: u8, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let total = (40 + payload.len()) as u16;
    let mut v = vec![
        0x45, 0x00, // version 4, IHL 5
    ];
    v.extend(total.to_be_bytes()); // total length
    v.extend([0, 1, 0x40, 0]); // id, don't fragment
    v.extend([64, 6, 0, 0]); // TTL, TCP, checksum (not checked)
    v.extend([10, 0, 0, src, 10, 0, 0, dst]); // addresses
    v.extend(sport.to_be_bytes());
    v.extend(dport.to_be_bytes());
    v.extend(seq.to_be_bytes());
    v.extend(0u32.to_be_bytes()); // ack
    v.extend([0x50, flags, 0x20, 0, 0, 0, 0, 0]); // offset 5, flags, window, checksum, urgent
    v.extend_from_slice(payload);
    v
}

/// An IPv4/UDP packet from 10.0.0.`src`:`sport` to 10.0.0.`dst`:`dport`.
pub(crate) fn udp_packet(src: u8, sport: u16, dst: u8, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = (28 + payload.len()) as u16;
    let mut v = vec![0x45, 0x00]; // version 4, IHL 5
    v.extend(total.to_be_bytes()); // total length
    v.extend([0, 1, 0x40, 0]); // id, don't fragment
    v.extend([64, 17, 0, 0]); // TTL, UDP, checksum (not checked)
    v.extend([10, 0, 0, src, 10, 0, 0, dst]); // addresses
    v.extend(sport.to_be_bytes());
    v.extend(dport.to_be_bytes());
    v.extend(((8 + payload.len()) as u16).to_be_bytes()); // UDP length
    v.extend([0, 0]); // checksum (none)
    v.extend_from_slice(payload);
    v
}

/// What a test wants to know of a PDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) pkt: u64,
    pub(crate) request: bool,
    pub(crate) func: u16,
    pub(crate) tid: Option<u16>,
    pub(crate) address: Option<u16>,
    pub(crate) quantity: Option<u16>,
    pub(crate) values: Vec<u16>,
    pub(crate) flags: Vec<&'static str>,
}

#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) pdus: Vec<Seen>,
    pub(crate) notices: Vec<NoticeKind>,
    pub(crate) net: Vec<NetEvent>,
}

impl Sink for Collect {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        let (tid, address, quantity, values) = match &pdu.body {
            PduBody::Modbus(m) => (Some(m.tid), m.address, m.quantity, m.values.iter().collect()),
            _ => (None, None, None, Vec::new()),
        };
        self.pdus.push(Seen {
            pkt: pdu.pkt,
            request: pdu.is_request(),
            func: pdu.body.func(),
            tid,
            address,
            quantity,
            values,
            flags: pdu.body.flags().iter().collect(),
        });
    }
    fn notice(&mut self, n: &Notice) {
        self.notices.push(n.kind);
    }
    fn net(&mut self, e: &NetEvent) {
        self.net.push(*e);
    }
}

/// Runs raw IPv4 packets through a default engine.
pub(crate) fn run(packets: &[Vec<u8>]) -> Collect {
    run_with(EngineConfig::default(), packets)
}

/// Runs raw IPv4 packets through an engine with `config`, one second apart.
pub(crate) fn run_with(config: EngineConfig, packets: &[Vec<u8>]) -> Collect {
    let mut e = Engine::new(config);
    let mut c = Collect::default();
    for (i, p) in packets.iter().enumerate() {
        e.process(Timestamp { secs: 1_000 + i as i64, nanos: 0 }, i as u64 + 1, linktype::RAW, p, &mut c);
    }
    c
}
