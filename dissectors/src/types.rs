//! The shared vocabulary of every protocol: time, endpoints, directions, protocols, flags,
//! function names and classes, critical operations, address spaces and points.
//!
//! A leaf: it imports no protocol module, and every protocol module imports it, so that
//! adding a protocol never means editing a file the others depend on. [`crate::event`]
//! re-exports all of it beside the PDU types that do name the protocols.

use std::fmt;
use std::net::IpAddr;

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
}

/// One `T` per direction of a connection, indexed by [`Direction`]: no index to get wrong
/// and no out-of-range case to handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerDirection<T> {
    /// Client to server.
    pub to_server: T,
    /// Server to client.
    pub to_client: T,
}

impl<T> PerDirection<T> {
    /// Both values, by direction.
    pub const fn new(to_server: T, to_client: T) -> Self {
        PerDirection { to_server, to_client }
    }

    /// Both, in the order [`Direction::ToServer`], [`Direction::ToClient`].
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        [&self.to_server, &self.to_client].into_iter()
    }

    /// Both, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        [&mut self.to_server, &mut self.to_client].into_iter()
    }
}

impl<T> std::ops::Index<Direction> for PerDirection<T> {
    type Output = T;
    fn index(&self, d: Direction) -> &T {
        match d {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }
}

impl<T> std::ops::IndexMut<Direction> for PerDirection<T> {
    fn index_mut(&mut self, d: Direction) -> &mut T {
        match d {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
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

/// Flag bit the engine sets on a PDU of any protocol whose connection was opened (SYN) by the
/// host on the watched port, toward the other host's port: a server calling its client,
/// which a PLC does not do (a reverse shell, a scanner, a misconfigured gateway). Client and
/// server were decided by the watched port and the content, not by the SYN.
pub const FLAG_REVERSED_ORIENTATION: u32 = 62;
/// Flag bit the engine sets on a PDU decoded from one TCP segment on its own, because the
/// direction had lost sync (see `crate::engine::MAX_UNSYNCED_SEGMENTS`): framing was not
/// checked against the bytes before it.
pub const FLAG_PER_SEGMENT: u32 = 63;
/// The first bit of the engine's flags; protocols number theirs below it.
pub const ENGINE_FLAG_FIRST: u32 = 62;
/// Names of the engine's flags, from bit [`ENGINE_FLAG_FIRST`] up.
pub const ENGINE_FLAG_NAMES: &[&str] = &["reversed_orientation", "per_segment"];

/// A set of protocol-violation flags: "parsed, but wrong". Each protocol numbers its own
/// violations (below [`ENGINE_FLAG_FIRST`]) and gives their names; the engine's flags
/// ([`ENGINE_FLAG_NAMES`]) follow them. A flagged PDU is still delivered.
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
    /// Whether a protocol's own violation is recorded (the engine's flags aside).
    pub const fn has_violation(&self) -> bool {
        self.bits & ((1u64 << ENGINE_FLAG_FIRST) - 1) != 0
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
        let own = self.names.iter().enumerate().take(ENGINE_FLAG_FIRST as usize);
        let engine =
            ENGINE_FLAG_NAMES.iter().enumerate().map(|(i, n)| (i.saturating_add(ENGINE_FLAG_FIRST as usize), n));
        own.chain(engine).filter(move |(i, _)| *i < 64 && bits & (1u64 << i) != 0).map(|(_, n)| *n)
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
