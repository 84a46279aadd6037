//! The baseline document: what normal looks like, as versioned, human-readable JSON.
//!
//! Everything is ordered (sorted vectors, `BTreeMap`s), so two baselines of the same network
//! diff cleanly in review. The document carries a SHA-256 of its canonical content (compact
//! JSON with `checksum` empty); [`Baseline::from_json`] refuses a document whose checksum does
//! not match, so a corrupt or hand-broken file is never scored against. After an intentional
//! edit, re-seal it (`otsensor baseline seal FILE`, or [`reseal`]).
//!
//! This module serializes to and from strings; the sensor writes files (atomically). It is a
//! leaf of the crate: it knows the dissectors' event types and nothing of the runtime model
//! ([`crate::model`] converts from and to it), the scoring or the statistics.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

pub use crate::net::{L2Service, NetHost, Network, Service};
use otsensor_dissectors::event::{Access, FunctionClass, Protocol, Space};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `format` of every baseline.
pub const FORMAT: &str = "otsensor-baseline";
/// The document version this build reads and writes.
pub const VERSION: u32 = 1;

/// A learned baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Always [`FORMAT`].
    pub format: String,
    /// Document version, [`VERSION`].
    pub version: u32,
    /// `sha256:<hex>` of the canonical content with this field empty.
    pub checksum: String,
    /// Software that wrote it.
    pub software: String,
    /// What was learned from.
    pub learning: Learning,
    /// Devices, sorted by address.
    pub assets: Vec<Asset>,
    /// Communication pairs, sorted by client, server, port, protocol.
    pub pairs: Vec<Pair>,
    /// Ports seen carrying another protocol during learning (so they are not alerted).
    pub port_notices: Vec<PortNotice>,
    /// The statistical model, when enough windows were seen to fit one.
    pub model: Option<StatModel>,
    /// Every service between hosts, ARP bindings, TTLs and L2 conversations (absent from
    /// baselines learned before it existed: the network rules then stay off).
    #[serde(default, skip_serializing_if = "Network::is_empty")]
    pub network: Network,
}

/// The learning window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Learning {
    /// Packet time of the first PDU learned, nanoseconds since the epoch.
    pub first_ns: i64,
    /// Packet time of the last PDU learned.
    pub last_ns: i64,
    /// Seconds of capture time learned (sum over learning runs).
    pub duration_secs: f64,
    /// Packets read while learning.
    pub packets: u64,
    /// PDUs learned.
    pub pdus: u64,
    /// Learning runs merged into this baseline.
    pub runs: u32,
}

/// A device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// IP address.
    pub ip: IpAddr,
    /// MAC address; `null` until the engine hands link-layer addresses to the models.
    pub mac: Option<String>,
    /// Whether the address was seen behind more than one MAC while learning (then no MAC is
    /// enforced for it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mac_varies: bool,
    /// Protocols it spoke, sorted.
    pub protocols: Vec<String>,
    /// Role inferred from behaviour.
    pub role: Role,
    /// Identity revealed by the protocol (Modbus read device identification objects).
    pub identity: BTreeMap<String, String>,
    /// PDUs sent or received.
    pub pdus: u64,
    /// Most servers it contacted as a client in one rate window.
    pub max_servers_per_window: u32,
}

/// A client-server conversation in one protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// Requesting side (master, HMI, engineering station).
    pub client: IpAddr,
    /// Answering side (PLC, outstation, RTU).
    pub server: IpAddr,
    /// Server port.
    pub port: u16,
    /// Protocol name.
    pub protocol: String,
    /// Requests seen.
    pub requests: u64,
    /// Responses seen.
    pub responses: u64,
    /// Function codes, sorted.
    pub functions: Vec<Function>,
    /// Unit ids (Modbus) addressed, sorted.
    pub units: Vec<u16>,
    /// Point ranges read and written, sorted.
    pub points: Vec<PointRanges>,
    /// Value envelopes, sorted; at most [`crate::MAX_READ_VALUE_POINTS`] read and
    /// [`crate::MAX_WRITE_VALUE_POINTS`] written points per pair.
    pub values: Vec<ValueEnvelope>,
    /// Whether more points carried values than were kept.
    pub values_truncated: bool,
    /// Recurring requests and their period.
    pub polling: Vec<Polling>,
    /// Request-to-response latency.
    pub latency: Latency,
    /// Error responses / responses.
    pub exception_rate: f64,
    /// Function-code transitions `[from, to, count]` between consecutive requests, sorted.
    pub transitions: Vec<[u64; 3]>,
    /// Per-window maxima, for floods, bursts and scans.
    pub rates: Rates,
    /// Protocol-violation names seen (so they are not alerted again), sorted.
    pub violations: Vec<String>,
}

/// One function code of a pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// Code.
    pub func: u16,
    /// Name (`unknown-<n>` for codes without one).
    pub name: String,
    /// Class of operation.
    pub class: Class,
    /// Requests with this code.
    pub requests: u64,
    /// Responses with this code.
    pub responses: u64,
    /// Error responses with this code.
    pub exceptions: u64,
}

/// Ranges of one space, unit and access of a pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRanges {
    /// Unit id (Modbus), 0 elsewhere.
    pub unit: u16,
    /// Address space (`holding_registers`, `g30v1`, `s7:db:1`...).
    pub space: String,
    /// Read or written.
    pub access: PointAccess,
    /// Inclusive `[first, last]` ranges, sorted and disjoint.
    pub ranges: Vec<[u32; 2]>,
    /// Whether ranges were merged to stay under [`crate::MAX_RANGES`] (the ranges then
    /// cover more than was seen).
    pub coarsened: bool,
}

/// The envelope of one point's values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueEnvelope {
    /// Unit id (Modbus), 0 elsewhere.
    pub unit: u16,
    /// Address space.
    pub space: String,
    /// Point index.
    pub index: u32,
    /// Read or written.
    pub access: PointAccess,
    /// How the values are bounded.
    pub kind: EnvelopeKind,
    /// The distinct values, for `set` (absent otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<i64>,
    /// Smallest value.
    pub min: i64,
    /// Largest value.
    pub max: i64,
    /// Values seen.
    pub samples: u64,
}

/// A recurring request and its period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Polling {
    /// Function code.
    pub func: u16,
    /// Unit id.
    pub unit: u16,
    /// First point of the first range (0 when none).
    pub start: u32,
    /// Point count of the first range.
    pub count: u32,
    /// Mean period, seconds.
    pub period_secs: f64,
    /// Standard deviation of the period, seconds.
    pub spread_secs: f64,
    /// Longest gap, seconds, including the gaps from the start and to the end of learning.
    pub max_gap_secs: f64,
    /// Shortest interval, seconds.
    #[serde(default)]
    pub min_gap_secs: f64,
    /// Intervals measured.
    pub samples: u64,
}

/// Request-to-response latency.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Mean, seconds.
    pub mean_secs: f64,
    /// Largest, seconds.
    pub max_secs: f64,
    /// Responses measured.
    pub samples: u64,
}

/// Per-window maxima of a pair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Window length, seconds.
    pub window_secs: u32,
    /// Windows with traffic.
    pub windows: u64,
    /// Mean requests per active window.
    pub mean_requests: f64,
    /// Most requests in a window.
    pub max_requests: u64,
    /// Most error responses in a window.
    pub max_exceptions: u64,
    /// Most distinct points (first point of each range) requested in a window.
    pub max_distinct_points: u32,
    /// Most distinct function codes in a window.
    pub max_distinct_functions: u32,
    /// Most distinct unit ids in a window.
    pub max_distinct_units: u32,
}

/// A notice seen during learning: a server port carrying another protocol.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortNotice {
    /// Server address.
    pub server: IpAddr,
    /// Server port.
    pub port: u16,
    /// What was seen on it.
    pub kind: PortNoticeKind,
}

/// Role of an asset, inferred from behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Only sent requests.
    Client,
    /// Only answered.
    Server,
    /// Both.
    #[serde(rename = "client+server")]
    ClientServer,
    /// A client that programs, restarts or configures.
    EngineeringStation,
    /// Neither (not produced by learning; kept readable).
    Unknown,
}

impl Role {
    /// Whether the asset sent requests.
    pub fn is_client(self) -> bool {
        matches!(self, Role::Client | Role::ClientServer | Role::EngineeringStation)
    }
    /// Whether the asset answered requests.
    pub fn is_server(self) -> bool {
        matches!(self, Role::Server | Role::ClientServer)
    }
    /// The role as the document writes it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
            Role::ClientServer => "client+server",
            Role::EngineeringStation => "engineering_station",
            Role::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Class of operation of a function code (the dissectors' `FunctionClass`, as written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Reads.
    Read,
    /// Writes.
    Write,
    /// Operates outputs.
    Control,
    /// Diagnostics.
    Diagnostic,
    /// Programs or configures the controller.
    Program,
    /// Anything else.
    Other,
}

impl Class {
    /// Its name, as written (`read`, `write`, ...).
    pub fn name(self) -> &'static str {
        FunctionClass::from(self).name()
    }
}

impl From<FunctionClass> for Class {
    fn from(c: FunctionClass) -> Class {
        match c {
            FunctionClass::Read => Class::Read,
            FunctionClass::Write => Class::Write,
            FunctionClass::Control => Class::Control,
            FunctionClass::Diagnostic => Class::Diagnostic,
            FunctionClass::Program => Class::Program,
            FunctionClass::Other => Class::Other,
        }
    }
}

impl From<Class> for FunctionClass {
    fn from(c: Class) -> FunctionClass {
        match c {
            Class::Read => FunctionClass::Read,
            Class::Write => FunctionClass::Write,
            Class::Control => FunctionClass::Control,
            Class::Diagnostic => FunctionClass::Diagnostic,
            Class::Program => FunctionClass::Program,
            Class::Other => FunctionClass::Other,
        }
    }
}

/// Whether points were read or written (the dissectors' `Access`, as written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointAccess {
    /// Read.
    Read,
    /// Written.
    Write,
}

impl PointAccess {
    /// Its name, as written (`read`, `write`).
    pub fn name(self) -> &'static str {
        match self {
            PointAccess::Read => "read",
            PointAccess::Write => "write",
        }
    }
}

impl From<Access> for PointAccess {
    fn from(a: Access) -> PointAccess {
        match a {
            Access::Read => PointAccess::Read,
            Access::Write => PointAccess::Write,
        }
    }
}

impl From<PointAccess> for Access {
    fn from(a: PointAccess) -> Access {
        match a {
            PointAccess::Read => Access::Read,
            PointAccess::Write => Access::Write,
        }
    }
}

/// How a point's values are bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeKind {
    /// A few distinct values (`values`).
    Set,
    /// Between `min` and `max`.
    Range,
    /// Never decreased.
    Counter,
}

/// What a port carried during learning, written `unexpected_port:<protocol>`,
/// `not_protocol:<protocol>` or `retransmission_conflict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortNoticeKind {
    /// A protocol identified by content on a port not configured for it.
    UnexpectedPort(Protocol),
    /// A port configured for a protocol carrying something else.
    NotProtocol(Protocol),
    /// A TCP retransmission with other bytes than the first copy.
    RetransmissionConflict,
}

impl PortNoticeKind {
    /// The prefix (or whole text) of the written form.
    fn tag(&self) -> &'static str {
        match self {
            PortNoticeKind::UnexpectedPort(_) => "unexpected_port",
            PortNoticeKind::NotProtocol(_) => "not_protocol",
            PortNoticeKind::RetransmissionConflict => "retransmission_conflict",
        }
    }

    fn protocol_name(&self) -> &'static str {
        match self {
            PortNoticeKind::UnexpectedPort(p) | PortNoticeKind::NotProtocol(p) => p.name(),
            PortNoticeKind::RetransmissionConflict => "",
        }
    }

    /// Parses the written form.
    pub fn parse(s: &str) -> Option<PortNoticeKind> {
        match s.split_once(':') {
            Some(("unexpected_port", p)) => Protocol::from_name(p).map(PortNoticeKind::UnexpectedPort),
            Some(("not_protocol", p)) => Protocol::from_name(p).map(PortNoticeKind::NotProtocol),
            None if s == "retransmission_conflict" => Some(PortNoticeKind::RetransmissionConflict),
            _ => None,
        }
    }
}

impl fmt::Display for PortNoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortNoticeKind::RetransmissionConflict => f.write_str(self.tag()),
            _ => write!(f, "{}:{}", self.tag(), self.protocol_name()),
        }
    }
}

/// Ordered as the written form sorts, so the document's order does not depend on the order
/// of the dissectors' `Protocol` variants.
impl Ord for PortNoticeKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.tag(), self.protocol_name()).cmp(&(other.tag(), other.protocol_name()))
    }
}

impl PartialOrd for PortNoticeKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for PortNoticeKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortNoticeKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PortNoticeKind::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown port notice kind {s:?}")))
    }
}

/// The statistical model: PCA on standardized per-window features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatModel {
    /// Window length, seconds.
    pub window_secs: u32,
    /// Feature names, in vector order.
    pub features: Vec<String>,
    /// Feature means (of the transformed features).
    pub mean: Vec<f64>,
    /// Feature standard deviations.
    pub std: Vec<f64>,
    /// Principal components kept, one row each (unit vectors in standardized space).
    pub components: Vec<Vec<f64>>,
    /// Squared reconstruction error above which a window is anomalous.
    pub threshold: f64,
    /// The learning quantile the threshold starts from.
    pub quantile: f64,
    /// Learning windows (a deterministic sample of at most
    /// [`crate::stats::MAX_SAMPLES`]), kept so that learning can continue.
    pub samples: Vec<Vec<f64>>,
}

/// Why a baseline document was refused.
#[derive(Debug)]
pub enum BaselineError {
    /// Not JSON, or not a baseline's shape.
    Parse(serde_json::Error),
    /// Not an otsensor baseline.
    Format(String),
    /// A version this build does not read.
    Version(u32),
    /// The checksum does not match the content.
    Checksum {
        /// What the document says.
        stored: String,
        /// What its content hashes to.
        computed: String,
    },
    /// A field holds a value that cannot be right (unknown protocol, space or access).
    Invalid(String),
}

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaselineError::Parse(e) => write!(f, "not a valid baseline document: {e}"),
            BaselineError::Format(s) => write!(f, "not an otsensor baseline (format {s:?})"),
            BaselineError::Version(v) => {
                write!(f, "baseline version {v} is not supported (this build reads version {VERSION}); learn again")
            }
            BaselineError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (file says {stored}, content is {computed}): the baseline is corrupt or was edited; \
                 learn again, or after an intentional review edit re-seal it with `otsensor baseline seal FILE`"
            ),
            BaselineError::Invalid(s) => write!(f, "invalid baseline: {s}"),
        }
    }
}

impl std::error::Error for BaselineError {}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Feeds what is written to a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Baseline {
    /// The checksum of the canonical content (compact JSON with `checksum` empty), streamed
    /// into the hash: neither a copy of the baseline nor its text is made (a plant's baseline
    /// is megabytes, and it is checked at every load). `&mut`: the stored checksum is taken
    /// out while the rest is hashed, and put back.
    pub fn compute_checksum(&mut self) -> String {
        let stored = std::mem::take(&mut self.checksum);
        // Buffered: the serializer writes token by token, and each update of the hash costs.
        let mut w = std::io::BufWriter::with_capacity(1 << 16, HashWriter(Sha256::new()));
        // Serializing plain data into a hasher cannot fail.
        let _ = serde_json::to_writer(&mut w, self);
        self.checksum = stored;
        let hasher = w.into_inner().map(|h| h.0).unwrap_or_default();
        format!("sha256:{}", hex(&hasher.finalize()))
    }

    /// Sets the checksum and returns the JSON document: indented down to each pair's
    /// tables, with one line per table entry (function, range, envelope, poll), so that a
    /// review diff shows one changed line per changed fact and the file stays compact.
    pub fn to_json(&mut self) -> String {
        self.checksum = self.compute_checksum();
        let mut out = Vec::with_capacity(1 << 16);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, LineFormatter::default());
        if self.serialize(&mut ser).is_err() {
            return String::new();
        }
        out.push(b'\n');
        String::from_utf8(out).unwrap_or_default()
    }

    /// Parses a document and verifies its format, version and checksum.
    pub fn from_json(text: &str) -> Result<Baseline, BaselineError> {
        let mut b = parse_unverified(text)?;
        let computed = b.compute_checksum();
        if computed != b.checksum {
            return Err(BaselineError::Checksum { stored: b.checksum, computed });
        }
        Ok(b)
    }
}

/// Containers that are array elements this deep or deeper are written on one line.
const ONE_LINE_DEPTH: usize = 4;

/// A serde_json formatter: pretty (two-space indent) near the root, one line per entry of
/// deeper tables.
#[derive(Debug, Default)]
struct LineFormatter {
    /// Per open container: is an array, is on one line, has a value.
    stack: Vec<(bool, bool, bool)>,
}

impl LineFormatter {
    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, array: bool) -> std::io::Result<()> {
        let parent = self.stack.last().copied();
        let depth = self.stack.len() + 1;
        let one_line = parent.is_some_and(|(is_array, one_line, _)| one_line || (is_array && depth >= ONE_LINE_DEPTH));
        self.stack.push((array, one_line, false));
        w.write_all(if array { b"[" } else { b"{" })
    }
    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, array: bool) -> std::io::Result<()> {
        let (_, one_line, has_value) = self.stack.pop().unwrap_or((array, true, false));
        if !one_line && has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(if array { b"]" } else { b"}" })
    }
    fn indent<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        for _ in 0..self.stack.len() {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
    fn item<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        let one_line = self.stack.last().is_some_and(|c| c.1);
        if one_line {
            if !first {
                w.write_all(b", ")?;
            }
            Ok(())
        } else {
            w.write_all(if first { b"\n" } else { b",\n" })?;
            self.indent(w)
        }
    }
    fn mark(&mut self) {
        if let Some(c) = self.stack.last_mut() {
            c.2 = true;
        }
    }
}

impl serde_json::ser::Formatter for LineFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, true)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, true)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.mark();
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, false)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, false)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.mark();
        Ok(())
    }
}

/// The members that say what a document is; the rest is skipped unread.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: serde_json::Value,
    #[serde(default)]
    version: serde_json::Value,
}

fn parse_unverified(text: &str) -> Result<Baseline, BaselineError> {
    // Check format and version first, so an old or foreign document gets the right message;
    // then parse the document straight into its types (through a `Value` it took twice as
    // long, and loading the baseline is part of every `detect`).
    let h: Header = serde_json::from_str(text).map_err(BaselineError::Parse)?;
    let format = h.format.as_str().unwrap_or_default();
    if format != FORMAT {
        return Err(BaselineError::Format(format.to_string()));
    }
    let version = h.version.as_u64().unwrap_or(0);
    if version != u64::from(VERSION) {
        return Err(BaselineError::Version(u32::try_from(version).unwrap_or(u32::MAX)));
    }
    serde_json::from_str(text).map_err(BaselineError::Parse)
}

impl Baseline {
    /// Parses a document without checking its checksum (format and version are checked),
    /// for re-sealing after a review edit (see [`crate::reseal`]).
    pub fn from_json_unverified(text: &str) -> Result<Baseline, BaselineError> {
        parse_unverified(text)
    }
}

/// Rounds to microseconds (or millionths): the baseline stays readable and stable.
pub(crate) fn round6(x: f64) -> f64 {
    if x.is_finite() {
        (x * 1e6).round() / 1e6
    } else {
        0.0
    }
}

/// `aa:bb:cc:dd:ee:ff`, as the document and the alerts write a MAC address.
pub fn format_mac(m: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = m;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses [`format_mac`]'s output.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for o in &mut out {
        *o = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Name of a space in the baseline.
pub fn space_name(s: Space) -> String {
    match s {
        Space::ModbusCoils => "coils".into(),
        Space::ModbusDiscreteInputs => "discrete_inputs".into(),
        Space::ModbusHoldingRegisters => "holding_registers".into(),
        Space::ModbusInputRegisters => "input_registers".into(),
        Space::ModbusFifo => "fifo".into(),
        Space::Dnp3 { group, variation } => format!("g{group}v{variation}"),
        Space::S7 { area, db } => format!("s7:{area}:{db}"),
    }
}

/// Parses a [`space_name`].
pub fn parse_space(s: &str) -> Option<Space> {
    Some(match s {
        "coils" => Space::ModbusCoils,
        "discrete_inputs" => Space::ModbusDiscreteInputs,
        "holding_registers" => Space::ModbusHoldingRegisters,
        "input_registers" => Space::ModbusInputRegisters,
        "fifo" => Space::ModbusFifo,
        _ => {
            if let Some(rest) = s.strip_prefix("s7:") {
                let (a, d) = rest.split_once(':')?;
                Space::S7 { area: a.parse().ok()?, db: d.parse().ok()? }
            } else {
                let rest = s.strip_prefix('g')?;
                let (g, v) = rest.split_once('v')?;
                Space::Dnp3 { group: g.parse().ok()?, variation: v.parse().ok()? }
            }
        }
    })
}

/// Parses a protocol name.
pub fn parse_protocol(s: &str) -> Option<Protocol> {
    Protocol::from_name(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_names_round_trip() {
        for s in [
            Space::ModbusCoils,
            Space::ModbusHoldingRegisters,
            Space::Dnp3 { group: 30, variation: 1 },
            Space::S7 { area: 0x84, db: 7 },
        ] {
            assert_eq!(parse_space(&space_name(s)), Some(s));
        }
    }

    #[test]
    fn port_notice_kinds_are_written_and_sorted_as_text() {
        let kinds = [
            PortNoticeKind::NotProtocol(Protocol::Dnp3),
            PortNoticeKind::NotProtocol(Protocol::Modbus),
            PortNoticeKind::RetransmissionConflict,
            PortNoticeKind::UnexpectedPort(Protocol::Dnp3),
            PortNoticeKind::UnexpectedPort(Protocol::S7commPlus),
        ];
        let text: Vec<String> = kinds.iter().map(ToString::to_string).collect();
        let mut sorted = text.clone();
        sorted.sort();
        assert_eq!(text, sorted);
        for (k, t) in kinds.iter().zip(&text) {
            assert_eq!(PortNoticeKind::parse(t), Some(*k));
            assert_eq!(serde_json::to_string(k).unwrap(), format!("{t:?}"));
        }
    }

    #[test]
    fn roles_and_classes_are_written_in_snake_case() {
        assert_eq!(serde_json::to_string(&Role::ClientServer).unwrap(), "\"client+server\"");
        assert_eq!(serde_json::to_string(&Role::EngineeringStation).unwrap(), "\"engineering_station\"");
        assert_eq!(serde_json::to_string(&Class::Diagnostic).unwrap(), "\"diagnostic\"");
        assert_eq!(serde_json::to_string(&EnvelopeKind::Counter).unwrap(), "\"counter\"");
        assert_eq!(serde_json::to_string(&PointAccess::Write).unwrap(), "\"write\"");
    }

    #[test]
    fn mac_addresses_round_trip_through_their_text() {
        let m = [0x00, 0x21, 0x9b, 0x28, 0xc9, 0x4d];
        assert_eq!(format_mac(m), "00:21:9b:28:c9:4d");
        assert_eq!(parse_mac(&format_mac(m)), Some(m));
        assert_eq!(parse_mac("00:21:9b:28:c9"), None);
    }
}
