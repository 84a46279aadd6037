//! The event types every downstream crate consumes.
//!
//! A dissector turns stream bytes into [`PduBody`] values; the [`crate::engine::Engine`] wraps
//! each one in a [`Pdu`] with the packet's time, number and endpoints and hands it to a
//! [`Sink`]. Bodies borrow from the reassembly buffer (zero-copy), so a sink that keeps
//! anything past the call copies what it needs.

use crate::dnp3::Dnp3Pdu;
use crate::modbus::ModbusPdu;
pub use crate::net::NetEvent;
use crate::s7::{S7Pdu, S7PlusPdu};
pub use crate::types::*;

/// One protocol message as a dissector decoded it.
#[derive(Debug)]
pub enum PduBody<'a> {
    /// A Modbus/TCP ADU.
    Modbus(ModbusPdu<'a>),
    /// A DNP3 link frame or application fragment.
    Dnp3(Dnp3Pdu<'a>),
    /// An S7comm PDU.
    S7(S7Pdu<'a>),
    /// An S7comm-plus PDU (recognised, header fields only).
    S7Plus(S7PlusPdu),
}

impl PduBody<'_> {
    /// The protocol of this message.
    pub fn protocol(&self) -> Protocol {
        match self {
            PduBody::Modbus(_) => Protocol::Modbus,
            PduBody::Dnp3(_) => Protocol::Dnp3,
            PduBody::S7(_) => Protocol::S7comm,
            PduBody::S7Plus(_) => Protocol::S7commPlus,
        }
    }
    /// Whether the message is a request (from the client or master).
    pub fn is_request(&self) -> bool {
        match self {
            PduBody::Modbus(p) => p.is_request,
            PduBody::Dnp3(p) => p.is_request,
            PduBody::S7(p) => p.is_request,
            PduBody::S7Plus(p) => p.is_request,
        }
    }
    /// The function code as a number.
    pub fn func(&self) -> u16 {
        match self {
            PduBody::Modbus(p) => u16::from(p.func.raw()),
            PduBody::Dnp3(p) => p.func_code(),
            PduBody::S7(p) => p.func_code(),
            PduBody::S7Plus(p) => p.func_code(),
        }
    }
    /// The function code's name.
    pub fn func_name(&self) -> FuncName {
        match self {
            PduBody::Modbus(p) => p.func.name(),
            PduBody::Dnp3(p) => p.func_name(),
            PduBody::S7(p) => p.func_name(),
            PduBody::S7Plus(p) => p.func_name(),
        }
    }
    /// The class of operation.
    pub fn class(&self) -> FunctionClass {
        match self {
            PduBody::Modbus(p) => p.class(),
            PduBody::Dnp3(p) => p.class(),
            PduBody::S7(p) => p.class(),
            PduBody::S7Plus(p) => p.class(),
        }
    }
    /// The critical operation this message requests, if any (requests only).
    pub fn critical(&self) -> Option<CriticalOp> {
        match self {
            PduBody::Modbus(p) => p.critical(),
            PduBody::Dnp3(p) => p.critical(),
            PduBody::S7(p) => p.critical(),
            PduBody::S7Plus(p) => p.critical(),
        }
    }
    /// Calls `f` for each range of points the message reads or writes. Requests name the
    /// ranges; responses repeat their request's where the dissector matched them.
    pub fn for_each_point(&self, f: &mut dyn FnMut(PointRange)) {
        match self {
            PduBody::Modbus(p) => p.for_each_point(f),
            PduBody::Dnp3(p) => p.for_each_point(f),
            PduBody::S7(p) => p.for_each_point(f),
            PduBody::S7Plus(_) => {}
        }
    }
    /// Calls `f` for each point value the message carries (written values in requests, read
    /// values in responses).
    ///
    /// Generic rather than `dyn` so that Modbus register values, the bulk of most plants'
    /// traffic, reach their consumer through an inlined loop.
    pub fn for_each_value(&self, mut f: impl FnMut(PointValue)) {
        match self {
            PduBody::Modbus(p) => p.for_each_value(f),
            PduBody::Dnp3(p) => p.for_each_value(&mut f),
            PduBody::S7(p) => p.for_each_value(&mut f),
            PduBody::S7Plus(_) => {}
        }
    }
    /// [`PduBody::for_each_point`] then [`PduBody::for_each_value`], a DNP3 fragment's objects
    /// walked once for both.
    pub fn for_each_point_and_value(&self, points: &mut dyn FnMut(PointRange), mut values: impl FnMut(PointValue)) {
        match self {
            PduBody::Dnp3(p) => p.for_each_point_and_value(points, &mut values),
            _ => {
                self.for_each_point(points);
                self.for_each_value(values);
            }
        }
    }
    /// An exception or error code in a response (Modbus exception, S7 error class and code,
    /// DNP3 IIN error bits), if the response reports failure.
    pub fn error_code(&self) -> Option<u16> {
        match self {
            PduBody::Modbus(p) => p.exception_code.map(u16::from),
            PduBody::Dnp3(p) => p.error_code(),
            PduBody::S7(p) => p.error_code(),
            PduBody::S7Plus(_) => None,
        }
    }
    /// The flags, for the engine to add its own ([`FLAG_PER_SEGMENT`], ...).
    pub fn flags_mut(&mut self) -> &mut Flags {
        match self {
            PduBody::Modbus(p) => &mut p.flags,
            PduBody::Dnp3(p) => &mut p.flags,
            PduBody::S7(p) => &mut p.flags,
            PduBody::S7Plus(p) => &mut p.flags,
        }
    }
    /// Protocol violations recorded while decoding.
    pub fn flags(&self) -> Flags {
        match self {
            PduBody::Modbus(p) => p.flags,
            PduBody::Dnp3(p) => p.flags(),
            PduBody::S7(p) => p.flags(),
            PduBody::S7Plus(p) => p.flags(),
        }
    }
    /// The unit a message addresses, seen from a message travelling `direction`: the Modbus
    /// unit id, the DNP3 outstation's link address (the destination of a request, the source
    /// of a response); 0 for protocols without one (S7).
    pub fn unit(&self, direction: Direction) -> u16 {
        match self {
            PduBody::Modbus(p) => u16::from(p.unit),
            PduBody::Dnp3(p) => match direction {
                Direction::ToServer => p.link.dst,
                Direction::ToClient => p.link.src,
            },
            PduBody::S7(_) | PduBody::S7Plus(_) => 0,
        }
    }
    /// Bytes of the application message where the protocol states them (Modbus: the MBAP
    /// length plus the 6 bytes before it); 0 for the others.
    pub fn message_bytes(&self) -> u64 {
        match self {
            PduBody::Modbus(p) => u64::from(p.length) + 6,
            PduBody::Dnp3(_) | PduBody::S7(_) | PduBody::S7Plus(_) => 0,
        }
    }
    /// Calls `f` for each device identification object (object id, value) the message
    /// carries, in wire order: Modbus read device identification responses (FC 43/14), S7
    /// read SZL responses of module and component identification ([`crate::s7::identity`]
    /// names their ids); nothing for DNP3 and S7comm-plus.
    pub fn for_each_identity_object(&self, f: &mut dyn FnMut(u8, &[u8])) {
        match self {
            PduBody::Modbus(p) => {
                for (oid, value) in p.device_identification().into_iter().flatten() {
                    f(oid, value);
                }
            }
            PduBody::S7(p) => crate::s7::szl_identity(p, f),
            PduBody::Dnp3(_) | PduBody::S7Plus(_) => {}
        }
    }
}

/// A decoded message with the context of the packet that completed it.
#[derive(Debug)]
pub struct Pdu<'a> {
    /// Time of the packet that completed the PDU.
    pub ts: Timestamp,
    /// 1-based index, in its capture, of the packet that completed the PDU.
    pub pkt: u64,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// TCP or UDP.
    pub transport: Transport,
    /// Which way the message travels on its connection.
    pub direction: Direction,
    /// Identifier of the flow (connection) within this run; stable for the flow's life.
    pub flow_id: u64,
    /// Sender's MAC address, when the frame was Ethernet.
    pub src_mac: Option<[u8; 6]>,
    /// Receiver's MAC address, when the frame was Ethernet.
    pub dst_mac: Option<[u8; 6]>,
    /// IP TTL (hop limit) of the packet that completed the PDU.
    pub ttl: u8,
    /// The protocol message (borrowed: the dissector's, not copied into each event).
    pub body: &'a PduBody<'a>,
}

impl Pdu<'_> {
    /// Whether the message is a request (from the client or master).
    pub fn is_request(&self) -> bool {
        self.body.is_request()
    }
}

/// Something the engine noticed that is not a PDU: a stream that is not the protocol its
/// port promises, lost bytes, an evicted flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Time of the packet concerned.
    pub ts: Timestamp,
    /// 1-based packet index in its capture.
    pub pkt: u64,
    /// Sender of the packet concerned.
    pub src: Endpoint,
    /// Receiver of the packet concerned.
    pub dst: Endpoint,
    /// What was noticed.
    pub kind: NoticeKind,
}

/// The kinds of [`Notice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// Traffic on a port watched for `expected` is not that protocol; it is not dissected.
    NotProtocol {
        /// The protocol the port is configured for.
        expected: Protocol,
    },
    /// `found` was identified by content on a port not configured for it.
    UnexpectedPort {
        /// The protocol the content matched.
        found: Protocol,
    },
    /// Bytes of a TCP stream were never seen (capture loss or pick-up mid-stream); the
    /// dissector resynchronised after them.
    StreamGap {
        /// Number of bytes skipped.
        bytes: u64,
    },
    /// A TCP retransmission carried other bytes than the copy first seen (a man in the
    /// middle rewriting traffic, or an attempt to show the sensor one thing and the device
    /// another). The first copy was dissected.
    RetransmissionConflict {
        /// Length of the conflicting segment.
        bytes: u64,
    },
    /// A segment of an ICS connection came with another IP TTL or source MAC than its
    /// direction's previous packet: a sign of injection by a third host, or of a man in the
    /// middle taking over (reported at each change, so the way back is reported too).
    PathChanged {
        /// TTL of the direction's previous packet.
        ttl_before: u8,
        /// TTL of this packet.
        ttl: u8,
        /// This packet's source MAC, when it differs from the previous packet's.
        mac: Option<[u8; 6]>,
        /// Whether the segment was a RST.
        rst: bool,
        /// The packet was a second copy of bytes already seen, relayed by another path (a
        /// host forwarding the connection's packets: a man in the middle, or a router the
        /// mirror also sees). Reported at most once a minute per direction and path.
        relayed: bool,
    },
    /// Bytes a dissector skipped while looking for the next valid header.
    Resync {
        /// Protocol being resynchronised.
        protocol: Protocol,
        /// Number of bytes skipped.
        bytes: u64,
    },
}

/// Where the engine delivers what it decodes.
pub trait Sink {
    /// Called for each PDU, in capture order.
    fn pdu(&mut self, pdu: &Pdu<'_>);
    /// Called for each notice; ignored by default.
    fn notice(&mut self, _notice: &Notice) {}
    /// Called for each conversation record, ARP packet and new L2 conversation; ignored by
    /// default.
    fn net(&mut self, _event: &NetEvent) {}
}

impl<F: FnMut(&Pdu<'_>)> Sink for F {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self(pdu)
    }
}
