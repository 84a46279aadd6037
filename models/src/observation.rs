//! One [`Observation`] per PDU: everything learning and detection read of a message,
//! computed once.
//!
//! [`Learner`](crate::Learner) and [`Detector`](crate::Detector) consume observations, not
//! PDUs, so that what is learned and what is checked come from the same facts. An
//! observation owns no protocol structure: its points, values and device identity live in an
//! [`ObservationLog`], a set of flat vectors reused from one batch to the next, so that the
//! sensor's workers can decode PDUs on several threads and hand their observations to the one
//! thread that scores them, without an allocation per PDU.

use otsensor_dissectors::modbus::device_id_object_name;

use crate::model::Poll;
use otsensor_dissectors::event::{
    CriticalOp, Direction, Endpoint, Flags, FuncName, FunctionClass, Pdu, PointRange, PointValue, Protocol, Timestamp,
};

/// What a PDU says, with the packet context, minus its variable-length parts (see
/// [`Observation`]).
#[derive(Clone, Copy, Debug)]
pub struct ObservationHead {
    /// Time of the packet that completed the PDU.
    pub ts: Timestamp,
    /// 1-based index, in its capture, of the packet that completed the PDU.
    pub pkt: u64,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Which way the message travels on its connection.
    pub direction: Direction,
    /// Sender's MAC address, when the frame was Ethernet.
    pub src_mac: Option<[u8; 6]>,
    /// Receiver's MAC address, when the frame was Ethernet.
    pub dst_mac: Option<[u8; 6]>,
    /// IP TTL of the packet that completed the PDU.
    pub ttl: u8,
    /// The protocol.
    pub protocol: Protocol,
    /// Whether the message is a request (from the client or master).
    pub is_request: bool,
    /// Function code as a number.
    pub func: u16,
    /// Function code's name.
    pub func_name: FuncName,
    /// Class of operation.
    pub class: FunctionClass,
    /// The critical operation a request asks for.
    pub critical: Option<CriticalOp>,
    /// Exception or error code of a failed response.
    pub error_code: Option<u16>,
    /// Protocol violations.
    pub flags: Flags,
    /// Unit addressed: Modbus unit id, DNP3 outstation link address; 0 for S7.
    pub unit: u16,
    /// Bytes of the application message, where the protocol says (Modbus MBAP length + 6).
    pub bytes: u64,
    points: (u32, u32),
    values: (u32, u32),
    identity: (u32, u32),
}

/// One PDU as learning and detection see it.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The fixed-size facts.
    pub head: ObservationHead,
    /// Ranges of points a request names (responses repeat their request's).
    pub points: &'a [PointRange],
    /// Point values written or read.
    pub values: &'a [PointValue],
    identity: &'a [u8],
}

impl std::ops::Deref for Observation<'_> {
    type Target = ObservationHead;
    fn deref(&self) -> &ObservationHead {
        &self.head
    }
}

impl Observation<'_> {
    /// Device identification objects (object id, value) of a Modbus read device
    /// identification response, in wire order.
    pub fn identity(&self) -> IdentityObjects<'_> {
        IdentityObjects { rest: self.identity }
    }

    /// Whether the message carries device identification objects.
    pub fn has_identity(&self) -> bool {
        !self.identity.is_empty()
    }

    /// Calls `f` for each range of points (the shape of `PduBody::for_each_point`).
    pub fn for_each_point(&self, f: &mut dyn FnMut(PointRange)) {
        self.points.iter().for_each(|&r| f(r));
    }

    /// Calls `f` for each point value.
    pub fn for_each_value(&self, f: &mut dyn FnMut(PointValue)) {
        self.values.iter().for_each(|&v| f(v));
    }

    /// Whether the values are one run: all of one space and access, at consecutive indexes
    /// from the first, so that they can be checked as a range. A Modbus PDU's are by
    /// construction (indexes counted up from its address), so only their count is checked
    /// against their first and last index; other protocols' values are taken one by one.
    pub(crate) fn values_in_one_run(&self) -> bool {
        let (Some(first), Some(last)) = (self.values.first(), self.values.last()) else { return false };
        self.protocol == Protocol::Modbus
            && u64::from(last.index) == u64::from(first.index) + self.values.len() as u64 - 1
    }

    /// Client and server of the connection.
    pub fn client_server(&self) -> (Endpoint, Endpoint) {
        match self.direction {
            Direction::ToServer => (self.src, self.dst),
            Direction::ToClient => (self.dst, self.src),
        }
    }

    /// MAC addresses of the client and the server, where the frame had them.
    pub fn client_server_macs(&self) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
        match self.direction {
            Direction::ToServer => (self.src_mac, self.dst_mac),
            Direction::ToClient => (self.dst_mac, self.src_mac),
        }
    }

    /// The first range of points named (start, count), `(0, 0)` when none: with the function
    /// and unit, what identifies a recurring request.
    pub(crate) fn first_range(&self) -> (u32, u32) {
        self.points.first().map_or((0, 0), |r| (r.start, r.count))
    }

    /// The polling signature of a request: function, unit and first range, hashed. Learning
    /// keys the periods it learns by it, detection looks them up by it.
    pub(crate) fn poll_signature(&self) -> u64 {
        let (start, count) = self.first_range();
        Poll::signature(self.func, self.unit, start, count)
    }
}

/// The key under which an identity object is learned and checked: its name (Modbus
/// `VendorName`, `ProductCode`, `MajorMinorRevision`...; S7 `order_number`, `serial_number`,
/// ...), or `object_<id>` for reserved, private and unknown ones.
pub(crate) fn identity_key(protocol: Protocol, oid: u8) -> String {
    if protocol == Protocol::S7comm {
        return otsensor_dissectors::s7::identity::name(oid).map_or_else(|| format!("object_{oid}"), str::to_string);
    }
    match device_id_object_name(oid) {
        "Reserved" | "Private" => format!("object_{oid}"),
        n => n.to_string(),
    }
}

/// Iterator over the identity objects of an [`Observation`].
#[derive(Clone, Debug)]
pub struct IdentityObjects<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for IdentityObjects<'a> {
    type Item = (u8, &'a [u8]);
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        // Encoded by `ObservationLog::push` as: object id, length (u16 LE), value.
        let (&oid, rest) = self.rest.split_first()?;
        let len = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
        let value = rest.get(2..2 + len)?;
        self.rest = rest.get(2 + len..).unwrap_or_default();
        Some((oid, value))
    }
}

/// Observations of many PDUs in flat vectors, reused between batches (cleared, never
/// shrunk), so that recording a PDU allocates nothing once the vectors have grown.
#[derive(Clone, Debug, Default)]
pub struct ObservationLog {
    heads: Vec<ObservationHead>,
    points: Vec<PointRange>,
    values: Vec<PointValue>,
    identity: Vec<u8>,
}

fn span(start: usize, end: usize) -> (u32, u32) {
    (u32::try_from(start).unwrap_or(u32::MAX), u32::try_from(end).unwrap_or(u32::MAX))
}

impl ObservationLog {
    /// An empty log.
    pub fn new() -> Self {
        ObservationLog::default()
    }

    /// Records one PDU; returns its index.
    pub fn push(&mut self, pdu: &Pdu<'_>) -> usize {
        let head = self.record(pdu);
        self.heads.push(head);
        self.heads.len() - 1
    }

    /// Appends the PDU's points, values and identity objects; returns its head.
    fn record(&mut self, pdu: &Pdu<'_>) -> ObservationHead {
        let body = &pdu.body;
        let (p0, v0) = (self.points.len(), self.values.len());
        let (points, values) = (&mut self.points, &mut self.values);
        body.for_each_point_and_value(&mut |r| points.push(r), |v| values.push(v));
        let i0 = self.identity.len();
        body.for_each_identity_object(&mut |oid, value| {
            let value = value.get(..usize::from(u16::MAX)).unwrap_or(value);
            self.identity.push(oid);
            self.identity.extend_from_slice(&(value.len() as u16).to_le_bytes());
            self.identity.extend_from_slice(value);
        });
        ObservationHead {
            ts: pdu.ts,
            pkt: pdu.pkt,
            src: pdu.src,
            dst: pdu.dst,
            direction: pdu.direction,
            src_mac: pdu.src_mac,
            dst_mac: pdu.dst_mac,
            ttl: pdu.ttl,
            protocol: body.protocol(),
            is_request: body.is_request(),
            func: body.func(),
            func_name: body.func_name(),
            class: body.class(),
            critical: body.critical(),
            error_code: body.error_code(),
            flags: body.flags(),
            unit: body.unit(pdu.direction),
            bytes: body.message_bytes(),
            points: span(p0, self.points.len()),
            values: span(v0, self.values.len()),
            identity: span(i0, self.identity.len()),
        }
    }

    /// Forgets what was recorded and records `pdu` alone: its observation (for callers that
    /// score PDUs one at a time through a reused log).
    pub fn one(&mut self, pdu: &Pdu<'_>) -> Observation<'_> {
        self.clear();
        let head = self.record(pdu);
        Observation { head, points: &self.points, values: &self.values, identity: &self.identity }
    }

    /// The observation at `i`, if recorded.
    pub fn get(&self, i: usize) -> Option<Observation<'_>> {
        let head = *self.heads.get(i)?;
        let slice = |(a, b): (u32, u32)| a as usize..b as usize;
        Some(Observation {
            head,
            points: self.points.get(slice(head.points)).unwrap_or_default(),
            values: self.values.get(slice(head.values)).unwrap_or_default(),
            identity: self.identity.get(slice(head.identity)).unwrap_or_default(),
        })
    }

    /// Observations recorded.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether none is recorded.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Forgets every observation, keeping the memory.
    pub fn clear(&mut self) {
        self.heads.clear();
        self.points.clear();
        self.values.clear();
        self.identity.clear();
    }
}
