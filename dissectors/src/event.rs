//! The event types every downstream crate consumes.
//!
//! A dissector turns stream bytes into [`PduBody`] values; the [`crate::engine::Engine`] wraps
//! each one in a [`Pdu`] with the packet's time, number and endpoints and hands it to a
//! [`Sink`]. Bodies borrow from the reassembly buffer (zero-copy), so a sink that keeps
//! anything past the call copies what it needs.

use std::fmt;
use std::net::IpAddr;

use crate::dnp3::Dnp3Pdu;
use crate::modbus::ModbusPdu;
use crate::s7::{S7Pdu, S7PlusPdu};

/// Packet time, from the capture, never from the wall clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

impl Timestamp {
    /// Builds a timestamp from nanoseconds since the epoch.
    pub const fn from_nanos(n: i64) -> Self {
        Timestamp { secs: n.div_euclid(1_000_000_000), nanos: n.rem_euclid(1_000_000_000) as u32 }
    }
    /// Nanoseconds since the epoch (saturating far outside the year 2262).
    pub const fn as_nanos(self) -> i64 {
        self.secs.saturating_mul(1_000_000_000).saturating_add(self.nanos as i64)
    }
    /// Seconds as a float; loses sub-microsecond precision, so use it for arithmetic only.
    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) * 1e-9
    }
}

impl fmt::Display for Timestamp {
    /// Decimal seconds with every digit the capture recorded: six fraction digits for
    /// microsecond captures, nine when the nanoseconds are not a whole microsecond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos % 1000 == 0 {
            write!(f, "{}.{:06}", self.secs, self.nanos / 1000)
        } else {
            write!(f, "{}.{:09}", self.secs, self.nanos)
        }
    }
}

/// Which way a message travels on its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the client (master, HMI, engineering station) to the server (PLC, outstation).
    ToServer,
    /// From the server back to the client.
    ToClient,
}

impl Direction {
    /// The opposite direction.
    pub const fn reverse(self) -> Self {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
    /// 0 for [`Direction::ToServer`], 1 for [`Direction::ToClient`]; for per-direction arrays.
    pub const fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// An IP address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IPv4 or IPv6 address.
    pub ip: IpAddr,
    /// TCP or UDP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// The transport a PDU arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// TCP, reassembled per direction.
    Tcp,
    /// UDP, one datagram at a time.
    Udp,
}

/// The industrial protocols otsensor dissects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Modbus/TCP (MBAP), TCP 502.
    Modbus,
    /// DNP3 (IEEE 1815) over TCP or UDP 20000.
    Dnp3,
    /// Siemens S7comm (protocol id 0x32) over TPKT/COTP, TCP 102.
    S7comm,
    /// Siemens S7comm-plus (protocol id 0x72) over TPKT/COTP, TCP 102.
    S7commPlus,
}

impl Protocol {
    /// All protocols, in output order.
    pub const ALL: [Protocol; 4] = [Protocol::Modbus, Protocol::Dnp3, Protocol::S7comm, Protocol::S7commPlus];

    /// The name used in JSON (`proto`), metrics labels and the baseline.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Modbus => "modbus",
            Protocol::Dnp3 => "dnp3",
            Protocol::S7comm => "s7comm",
            Protocol::S7commPlus => "s7comm_plus",
        }
    }

    /// Parses a [`Protocol::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Protocol::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of protocol-violation flags: "parsed, but wrong". Each protocol numbers its own
/// violations and gives their names; a flagged PDU is still delivered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    bits: u64,
    names: &'static [&'static str],
}

impl Flags {
    /// An empty set whose bit `i` is named `names[i]`.
    pub const fn new(names: &'static [&'static str]) -> Self {
        Flags { bits: 0, names }
    }
    /// Sets bit `bit`.
    pub fn set(&mut self, bit: u32) {
        self.bits |= 1u64 << (bit & 63);
    }
    /// Whether bit `bit` is set.
    pub const fn has(&self, bit: u32) -> bool {
        self.bits & (1u64 << (bit & 63)) != 0
    }
    /// Whether no violation is recorded.
    pub const fn is_empty(&self) -> bool {
        self.bits == 0
    }
    /// The raw bits.
    pub const fn bits(&self) -> u64 {
        self.bits
    }
    /// Whether the violation called `name` is set.
    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }
    /// Names of the set violations, in bit order.
    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        let bits = self.bits;
        self.names.iter().enumerate().filter(move |(i, _)| *i < 64 && bits & (1u64 << i) != 0).map(|(_, n)| *n)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A function code's name: a static name, or `unknown-<n>` for a code the protocol does not
/// define (kept with its raw value, because an unexpected code is itself a finding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncName {
    /// A name defined by the specification, in upper snake case.
    Known(&'static str),
    /// A code with no public meaning.
    Unknown(u16),
}

impl fmt::Display for FuncName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FuncName::Known(s) => f.write_str(s),
            FuncName::Unknown(n) => write!(f, "unknown-{n}"),
        }
    }
}

/// Broad classes of operation, shared by all protocols, for scoring: control above write
/// above read above diagnostic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FunctionClass {
    /// Reads process data (or polls events).
    Read,
    /// Writes process data (registers, coils, variables, points).
    Write,
    /// Operates equipment (select/operate, direct operate, control blocks).
    Control,
    /// Diagnostics, identification, status, time synchronisation, confirmations.
    Diagnostic,
    /// Programming, configuration, file transfer, start/stop, restart, firmware.
    Program,
    /// Anything else, including unknown codes.
    Other,
}

impl FunctionClass {
    /// Name for JSON and the baseline.
    pub const fn name(self) -> &'static str {
        match self {
            FunctionClass::Read => "read",
            FunctionClass::Write => "write",
            FunctionClass::Control => "control",
            FunctionClass::Diagnostic => "diagnostic",
            FunctionClass::Program => "program",
            FunctionClass::Other => "other",
        }
    }
}

/// Operations that are alerted whatever the baseline says, because they stop, restart,
/// reprogram or blind a controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CriticalOp {
    /// Device restart (Modbus FC 8/1 restart communications, DNP3 cold restart).
    ColdRestart,
    /// DNP3 warm restart.
    WarmRestart,
    /// Modbus FC 8/4 force listen-only mode: the device stops answering.
    ListenOnly,
    /// DNP3 stop application.
    StopApplication,
    /// DNP3 initialize data / initialize application.
    Initialize,
    /// DNP3 disable unsolicited responses.
    DisableUnsolicited,
    /// DNP3 file operations (open, close, delete, authenticate, abort).
    FileOperation,
    /// S7 PLC stop.
    PlcStop,
    /// S7 PLC (re)start, hot or cold (PI service).
    PlcStart,
    /// Program or block download to the controller (S7 request download, DNP3 file write).
    ProgramDownload,
    /// Program or block upload from the controller.
    ProgramUpload,
    /// Block delete (S7 PI `_DELE`).
    BlockDelete,
    /// Copy RAM to ROM, compress memory and similar memory operations.
    MemoryOperation,
    /// Protection level or password change, password authentication (S7 security).
    ProtectionChange,
    /// Firmware replacement (Modbus FC 125) or similar.
    Firmware,
}

impl CriticalOp {
    /// Snake-case name, used in alert ids.
    pub const fn name(self) -> &'static str {
        match self {
            CriticalOp::ColdRestart => "cold_restart",
            CriticalOp::WarmRestart => "warm_restart",
            CriticalOp::ListenOnly => "force_listen_only",
            CriticalOp::StopApplication => "stop_application",
            CriticalOp::Initialize => "initialize",
            CriticalOp::DisableUnsolicited => "disable_unsolicited",
            CriticalOp::FileOperation => "file_operation",
            CriticalOp::PlcStop => "plc_stop",
            CriticalOp::PlcStart => "plc_start",
            CriticalOp::ProgramDownload => "program_download",
            CriticalOp::ProgramUpload => "program_upload",
            CriticalOp::BlockDelete => "block_delete",
            CriticalOp::MemoryOperation => "memory_operation",
            CriticalOp::ProtectionChange => "protection_change",
            CriticalOp::Firmware => "firmware",
        }
    }
}

/// An address space of a protocol, in which points (registers, objects, variables) live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Modbus coils (FC 1, 5, 15).
    ModbusCoils,
    /// Modbus discrete inputs (FC 2).
    ModbusDiscreteInputs,
    /// Modbus holding registers (FC 3, 6, 16, 22, 23).
    ModbusHoldingRegisters,
    /// Modbus input registers (FC 4).
    ModbusInputRegisters,
    /// Modbus FIFO queue pointer (FC 24).
    ModbusFifo,
    /// A DNP3 object group and variation.
    Dnp3 {
        /// Object group.
        group: u8,
        /// Variation.
        variation: u8,
    },
    /// An S7 memory area (area code, e.g. 0x84 DB, 0x83 flags) and DB number (0 outside DBs).
    /// Start and count are in bits for S7 (byte address * 8 + bit), so that bit and byte
    /// accesses share one numbering.
    S7 {
        /// Area code.
        area: u8,
        /// Data block number.
        db: u16,
    },
}

/// How a point range was touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Read or polled.
    Read,
    /// Written, operated or controlled.
    Write,
}

/// A range of points in one space, as a request names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointRange {
    /// The address space.
    pub space: Space,
    /// First index.
    pub start: u32,
    /// Number of points (0 when the protocol does not say, e.g. DNP3 "all objects").
    pub count: u32,
    /// Read or written.
    pub access: Access,
}

/// One value of one point, as written by a request or read in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PointValue {
    /// The address space.
    pub space: Space,
    /// The point's index.
    pub index: u32,
    /// The value (registers and analogs as integers, bits as 0/1).
    pub value: i64,
    /// Read or written.
    pub access: Access,
}

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
    pub fn for_each_value(&self, f: &mut dyn FnMut(PointValue)) {
        match self {
            PduBody::Modbus(p) => p.for_each_value(f),
            PduBody::Dnp3(p) => p.for_each_value(f),
            PduBody::S7(p) => p.for_each_value(f),
            PduBody::S7Plus(_) => {}
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
    /// carries, in wire order: Modbus read device identification responses (FC 43/14);
    /// nothing for the other protocols yet.
    pub fn for_each_identity_object(&self, f: &mut dyn FnMut(u8, &[u8])) {
        match self {
            PduBody::Modbus(p) => {
                for (oid, value) in p.device_identification().into_iter().flatten() {
                    f(oid, value);
                }
            }
            PduBody::Dnp3(_) | PduBody::S7(_) | PduBody::S7Plus(_) => {}
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
    /// The protocol message.
    pub body: PduBody<'a>,
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
}

impl<F: FnMut(&Pdu<'_>)> Sink for F {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        self(pdu)
    }
}
