//! Siemens S7comm and S7comm-plus over TPKT (RFC 1006) and COTP (ISO 8073), TCP 102.
//!
//! Layers, each in its module:
//!
//! - [`cotp`]: TPKT framing and COTP TPDUs: connection request/confirm with the TSAPs that
//!   reveal rack and slot, data TPDUs with their EOT bit, disconnects;
//! - [`s7comm`]: S7comm (protocol id 0x32), the classic protocol of S7-300/400 (and
//!   S7-1200/1500 with PUT/GET): header, read/write variable items, block transfer, PI
//!   services, PLC stop and userdata (programmer, cyclic, block, CPU/SZL, security, time);
//! - [`plus`]: S7comm-plus (protocol id 0x72) of S7-1200/1500 and TIA Portal, recognised by
//!   its header (version, opcode, function, sequence number, session id).
//!
//! [`S7Stream`] holds one connection: per direction, the TPKT framing, the reassembly of data
//! TPDUs whose EOT bit is clear (bounded by [`MAX_COTP_REASSEMBLY`]) and the S7comm-plus
//! fragment state; and the jobs awaiting their responses, matched by PDU reference (bounded by
//! [`MAX_PENDING_JOBS`]), so that a response carries its job's items, block and service.
//!
//! A TPKT header that cannot be right (version not 3, length below 7, bad COTP length
//! indicator or TPDU code) makes the direction resynchronise on the next valid header, with
//! the skipped bytes reported. Protocol violations inside a well-framed PDU are
//! [`Flags`](crate::event::Flags).
//! COTP connection requests, confirms, disconnects and errors are delivered as [`S7Pdu`]s
//! with [`S7Pdu::cotp`] set and a `COTP_*` function name.
//!
//! ```
//! use otsensor_dissectors::event::{Direction, PduBody};
//! use otsensor_dissectors::s7::S7Stream;
//! use otsensor_dissectors::stream::StreamDissector;
//!
//! // TPKT, COTP DT with EOT, S7comm job PLC STOP (pdu ref 0x35).
//! let stop = [
//!     0x03, 0x00, 0x00, 0x21, 0x02, 0xf0, 0x80, 0x32, 0x01, 0x00, 0x00, 0x00, 0x35, 0x00,
//!     0x10, 0x00, 0x00, 0x29, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, b'P', b'_', b'P', b'R', b'O',
//!     b'G', b'R', b'A', b'M',
//! ];
//! let mut s7 = S7Stream::default();
//! let mut names = Vec::new();
//! let parsed = s7.parse(&stop, Direction::ToServer, &mut |b: &mut PduBody<'_>| names.push(b.func_name().to_string()));
//! assert_eq!(parsed.consumed, stop.len());
//! assert_eq!(names, ["PLC_STOP"]);
//! ```

// Reviewed for `clippy::arithmetic_side_effects` (issue 15): offsets advance within the
// buffer by TPKT lengths already checked against it; the COTP reassembly buffer's length plus
// a segment's (both bounded by memory) is compared with `MAX_COTP_REASSEMBLY` before it grows;
// SZL records are walked with checked offsets; the rest are u64 counters.
#![allow(clippy::arithmetic_side_effects)]

pub mod cotp;
pub mod names;
pub mod plus;
pub mod s7comm;

pub use cotp::Cotp;
pub use plus::{Fragment, S7PlusPdu};
pub use s7comm::{BlockId, DataItem, DataItems, Item, Items, S7Pdu, Setup, Userdata};

use crate::bytes::be16;
use crate::event::PduBody;
use crate::stream::{DissectorCounters, Parsed, Probe, StreamDissector};
use crate::types::{Direction, PerDirection, Protocol};

/// Names of the S7 protocol violations, indexed by flag bit (shared by S7comm and
/// S7comm-plus PDUs).
pub const FLAG_NAMES: &[&str] = &[
    "length_mismatch",
    "bad_rosctr",
    "item_count_mismatch",
    "response_without_request",
    "function_mismatch",
    "bad_userdata_header",
    "short_parameter",
    "plus_length_mismatch",
    "plus_bad_integrity_part",
];

/// Jobs remembered per connection while waiting for their responses. The negotiated "max AMQ"
/// is usually 1 to 8; beyond this the oldest job is forgotten (and counted).
pub const MAX_PENDING_JOBS: usize = 32;
/// Most bytes of one TSDU reassembled from data TPDUs without EOT; S7 PDUs are at most 960
/// bytes, S7comm-plus fragments a few KiB. Beyond this the TSDU is dropped (and counted).
pub const MAX_COTP_REASSEMBLY: usize = 64 * 1024;
/// Most parameter bytes kept per pending job (a 960-byte PDU cannot hold more).
const MAX_JOB_PARAM: usize = 1024;

/// Content identification: whether `data` starts with a TPKT header carrying a valid COTP
/// TPDU (version 3, reserved 0, length at least 7, a known TPDU code and a length indicator
/// that fits).
pub fn probe(data: &[u8]) -> Probe {
    cotp::probe(data)
}

/// Counters an S7 connection keeps about itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S7Counters {
    /// Jobs forgotten because [`MAX_PENDING_JOBS`] were waiting.
    pub pending_evicted: u64,
    /// TSDUs dropped because they exceeded [`MAX_COTP_REASSEMBLY`].
    pub reassembly_overflows: u64,
    /// COTP user data that was neither S7comm nor S7comm-plus.
    pub unknown_payloads: u64,
    /// COTP TPDUs of types not used by S7 (expedited data, acks, rejects).
    pub other_tpdus: u64,
}

impl S7Counters {
    /// Adds `o` to these.
    pub fn add(&mut self, o: &S7Counters) {
        self.pending_evicted += o.pending_evicted;
        self.reassembly_overflows += o.reassembly_overflows;
        self.unknown_payloads += o.unknown_payloads;
        self.other_tpdus += o.other_tpdus;
    }
}

#[derive(Debug, Default)]
struct Pending {
    pdu_ref: u16,
    func: u8,
    param: Vec<u8>,
}

#[derive(Debug, Default)]
struct DirState {
    resync: bool,
    /// Data TPDUs of the TSDU being reassembled.
    reasm: Vec<u8>,
    /// Dropping the rest of an oversized TSDU, up to its EOT.
    discarding: bool,
    plus: plus::PlusState,
}

/// Per-connection S7 state: both directions' framing and reassembly, and pending jobs.
#[derive(Debug, Default)]
pub struct S7Stream {
    dirs: PerDirection<DirState>,
    pending: Vec<Pending>,
    /// Parameter buffers of answered jobs, reused so that steady traffic does not allocate.
    pool: Vec<Vec<u8>>,
    /// The parameter part of the job the current response answers.
    matched: Vec<u8>,
    seen_request: bool,
    /// Whether the last userdata request was a follow-up (its response continues a list).
    szl_followup: bool,
    /// Counters.
    pub counters: S7Counters,
}

/// Where in `data` the next valid TPKT header starts.
fn find_header(data: &[u8]) -> Option<usize> {
    (0..data.len()).find(|&i| data.get(i..).is_some_and(|d| cotp::header(d).is_ok()))
}

impl S7Stream {
    /// A new connection's state.
    pub fn new() -> Self {
        Self::default()
    }

    fn remember(&mut self, pdu_ref: u16, func: u8, param: &[u8]) {
        let mut buf = self.pool.pop().unwrap_or_default();
        if let Some(i) = self.pending.iter().position(|q| q.pdu_ref == pdu_ref) {
            // A reused reference replaces the older job.
            let old = self.pending.remove(i);
            self.pool.push(old.param);
        } else if self.pending.len() >= MAX_PENDING_JOBS {
            let old = self.pending.remove(0);
            self.pool.push(old.param);
            self.counters.pending_evicted += 1;
        }
        buf.clear();
        buf.extend_from_slice(param.get(..MAX_JOB_PARAM).unwrap_or(param));
        self.pending.push(Pending { pdu_ref, func, param: buf });
    }

    /// Moves the job answered by `pdu_ref` into `self.matched`; returns its function.
    fn take(&mut self, pdu_ref: u16) -> Option<u8> {
        let i = self.pending.iter().position(|q| q.pdu_ref == pdu_ref)?;
        let mut p = self.pending.remove(i);
        std::mem::swap(&mut self.matched, &mut p.param);
        self.pool.push(p.param);
        Some(p.func)
    }

    /// Decodes one TSDU (the user data of a data TPDU with EOT, reassembled).
    fn tsdu(&mut self, p: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) {
        match p.first() {
            Some(&s7comm::PROTOCOL_ID) => match s7comm::header(p) {
                Some(h) => self.s7comm(&h, p, dir, emit),
                None => self.counters.unknown_payloads += 1,
            },
            Some(&plus::PROTOCOL_ID) if p.len() >= 4 => {
                emit(&mut PduBody::S7Plus(plus::decode(p, dir, &mut self.dirs[dir].plus)));
            }
            _ => self.counters.unknown_payloads += 1,
        }
    }

    fn s7comm(&mut self, h: &s7comm::Header<'_>, raw: &[u8], _dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) {
        let mut pdu = S7Pdu::from_header(h, raw);
        if !h.length_ok {
            pdu.flags.set(s7comm::FLAG_LENGTH);
        }
        match h.rosctr {
            s7comm::ROSCTR_USERDATA => {
                match s7comm::userdata(h.param, h.data) {
                    Some((u, head_ok)) => {
                        if !head_ok {
                            pdu.flags.set(s7comm::FLAG_USERDATA_HEADER);
                        }
                        pdu.is_request = matches!(u.utype, 4 | 7);
                        // CPU functions / read SZL: SZL id and index open the data, except in
                        // the continuation fragments of a response: those answer a follow-up
                        // request (one that names a data unit reference).
                        let followup = u.data_unit_ref.unwrap_or(0) != 0;
                        let first_unit = if pdu.is_request {
                            self.szl_followup = followup;
                            true
                        } else {
                            !followup || !self.szl_followup
                        };
                        if u.group == 4 && u.subfunc == 1 && u.return_code == Some(0xff) && first_unit {
                            if let Some(&[a, b, c, d]) = h.data.get(4..8) {
                                pdu.szl = Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])));
                            }
                        }
                        // Block functions / get block info and list of type: the block type.
                        if u.group == 3 && pdu.is_request && u.return_code == Some(0xff) {
                            pdu.block = h.data.get(4..).and_then(BlockId::parse);
                        }
                        pdu.userdata = Some(u);
                    }
                    None => pdu.flags.set(s7comm::FLAG_USERDATA_HEADER),
                }
                emit(&mut PduBody::S7(pdu));
            }
            s7comm::ROSCTR_JOB => {
                pdu.is_request = true;
                self.seen_request = true;
                pdu.param_func = h.param.first().copied();
                pdu.func = pdu.param_func;
                pdu.item_count = item_count(h.param);
                let job = s7comm::job_fields(h.param);
                pdu.apply_job(&job);
                if job.short {
                    pdu.flags.set(s7comm::FLAG_PARAMETER);
                }
                if pdu.func == Some(s7comm::FUNC_SETUP_COMMUNICATION) {
                    pdu.setup = setup(h.param);
                }
                check_items(&mut pdu);
                if let Some(f) = pdu.func {
                    self.remember(h.pdu_ref, f, h.param);
                }
                emit(&mut PduBody::S7(pdu));
            }
            s7comm::ROSCTR_ACK | s7comm::ROSCTR_ACK_DATA => {
                pdu.param_func = h.param.first().copied();
                pdu.item_count = item_count(h.param);
                let req = self.take(h.pdu_ref);
                pdu.func = pdu.param_func.or(req);
                match req {
                    Some(f) => {
                        pdu.matched = true;
                        if pdu.param_func.is_some_and(|p| p != f) {
                            pdu.flags.set(s7comm::FLAG_FUNCTION_MISMATCH);
                            pdu.matched = false;
                        }
                    }
                    None if self.seen_request => pdu.flags.set(s7comm::FLAG_UNMATCHED),
                    None => {}
                }
                if pdu.func == Some(s7comm::FUNC_SETUP_COMMUNICATION) {
                    pdu.setup = setup(h.param);
                }
                if pdu.matched {
                    let job = s7comm::job_fields(&self.matched);
                    pdu.apply_job(&job);
                    check_items(&mut pdu);
                }
                emit(&mut PduBody::S7(pdu));
            }
            _ => {
                // ROSCTR 4-6: framed, but not defined.
                pdu.flags.set(s7comm::FLAG_ROSCTR);
                pdu.param_func = h.param.first().copied();
                emit(&mut PduBody::S7(pdu));
            }
        }
    }

    /// Handles one whole TPKT.
    fn tpkt(&mut self, tpkt: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) {
        let Some(t) = cotp::Tpdu::parse(tpkt) else { return };
        match t.code & 0xf0 {
            cotp::DT => {
                let st = &mut self.dirs[dir];
                let eot = t.eot();
                if st.discarding {
                    st.discarding = !eot;
                    return;
                }
                if st.reasm.is_empty() && eot {
                    self.tsdu(t.data, dir, emit);
                    return;
                }
                if st.reasm.len() + t.data.len() > MAX_COTP_REASSEMBLY {
                    st.reasm.clear();
                    st.discarding = !eot;
                    self.counters.reassembly_overflows += 1;
                    return;
                }
                st.reasm.extend_from_slice(t.data);
                if eot {
                    let buf = std::mem::take(&mut st.reasm);
                    self.tsdu(&buf, dir, emit);
                    let st = &mut self.dirs[dir];
                    st.reasm = buf;
                    st.reasm.clear();
                }
            }
            cotp::CR | cotp::CC | cotp::DR | cotp::DC | cotp::ER => {
                if let Some(c) = cotp::control(&t) {
                    let is_request = matches!(c.code, cotp::CR | cotp::DR) && dir == Direction::ToServer;
                    emit(&mut PduBody::S7(S7Pdu::from_cotp(c, is_request, tpkt)));
                }
            }
            _ => self.counters.other_tpdus += 1,
        }
    }
}

fn item_count(param: &[u8]) -> Option<u8> {
    match param {
        [s7comm::FUNC_READ_VAR | s7comm::FUNC_WRITE_VAR, n, ..] => Some(*n),
        _ => None,
    }
}

fn setup(param: &[u8]) -> Option<Setup> {
    match param.get(..8) {
        Some(&[_, _, a0, a1, b0, b1, p0, p1]) => Some(Setup {
            amq_calling: u16::from_be_bytes([a0, a1]),
            amq_called: u16::from_be_bytes([b0, b1]),
            pdu_size: u16::from_be_bytes([p0, p1]),
        }),
        _ => None,
    }
}

/// Flags item counts that disagree with the items and data items present.
fn check_items(pdu: &mut S7Pdu<'_>) {
    if !matches!(pdu.func, Some(s7comm::FUNC_READ_VAR | s7comm::FUNC_WRITE_VAR)) {
        return;
    }
    let n = usize::from(pdu.item_count.unwrap_or(0));
    let writes = pdu.func == Some(s7comm::FUNC_WRITE_VAR);
    let want_items = pdu.rosctr == s7comm::ROSCTR_JOB || pdu.matched;
    let want_data = (pdu.rosctr == s7comm::ROSCTR_JOB && writes) || pdu.rosctr == s7comm::ROSCTR_ACK_DATA;
    if (want_items && pdu.items().count() != usize::from(pdu.items_count))
        || (want_items && pdu.rosctr == s7comm::ROSCTR_ACK_DATA && usize::from(pdu.items_count) != n)
        || (want_data && pdu.data_items().count() != n)
    {
        pdu.flags.set(s7comm::FLAG_ITEMS);
    }
}

impl StreamDissector for S7Stream {
    fn protocol(&self) -> Protocol {
        Protocol::S7comm
    }

    fn parse(&mut self, data: &[u8], dir: Direction, emit: &mut dyn FnMut(&mut PduBody<'_>)) -> Parsed {
        let mut off = 0usize;
        let mut skipped = 0usize;
        // Bounded by the input: every iteration consumes at least one byte or ends the loop.
        while off < data.len() {
            let rest = data.get(off..).unwrap_or_default();
            if self.dirs[dir].resync {
                match find_header(rest) {
                    Some(i) => {
                        off += i;
                        skipped += i;
                        self.dirs[dir].resync = false;
                        continue;
                    }
                    None => {
                        // Keep the last bytes: a header may start in them.
                        let skip = rest.len().saturating_sub(cotp::TPKT_MIN_LEN - 1);
                        off += skip;
                        skipped += skip;
                        break;
                    }
                }
            }
            let len = match cotp::header(rest) {
                Ok(len) => len,
                Err(Probe::NeedMore) => break,
                Err(_) => {
                    // Cannot be framed: look for the next valid header.
                    let s = &mut self.dirs[dir];
                    s.resync = true;
                    // What was being reassembled cannot be completed reliably.
                    s.reasm.clear();
                    s.discarding = false;
                    off += 1;
                    skipped += 1;
                    continue;
                }
            };
            let Some(tpkt) = rest.get(..len) else { break };
            self.tpkt(tpkt, dir, emit);
            off += len;
        }
        Parsed { consumed: off, skipped }
    }

    fn take_counters(&mut self, into: &mut DissectorCounters) {
        into.s7.add(&std::mem::take(&mut self.counters));
    }

    fn gap(&mut self, dir: Direction) {
        let s = &mut self.dirs[dir];
        s.resync = true;
        s.reasm.clear();
        s.discarding = false;
        s.plus = plus::PlusState::default();
    }
}

#[cfg(test)]
mod tests;

/// Identity object ids of S7 (in the shape of Modbus device identification objects, so that
/// the models keep every protocol's identity alike): from SZL 0x0011 (module identification)
/// and 0x001C (component identification) responses.
pub mod identity {
    /// Order number of the module (SZL 0x0011, record 1).
    pub const ORDER_NUMBER: u8 = 1;
    /// Name of the automation system (SZL 0x001C, record 1).
    pub const SYSTEM_NAME: u8 = 2;
    /// Name of the module (SZL 0x001C, record 2).
    pub const MODULE_NAME: u8 = 3;
    /// Serial number of the module (SZL 0x001C, record 5).
    pub const SERIAL_NUMBER: u8 = 4;
    /// Module type name (SZL 0x001C, record 7).
    pub const MODULE_TYPE: u8 = 5;

    /// The name of an S7 identity object.
    pub fn name(oid: u8) -> Option<&'static str> {
        Some(match oid {
            ORDER_NUMBER => "order_number",
            SYSTEM_NAME => "system_name",
            MODULE_NAME => "module_name",
            SERIAL_NUMBER => "serial_number",
            MODULE_TYPE => "module_type",
            _ => return None,
        })
    }
}

/// Most SZL records read from one response (a bound on the loop; real lists have a dozen).
pub const MAX_SZL_RECORDS: usize = 64;

/// Calls `f` with each identity object of a read SZL response: the module's order number
/// (SZL 0x0011) and its system name, module name, serial number and type name (SZL 0x001C).
/// Records in continuation fragments are not read (the first holds the order number, the
/// names and the serial number).
pub fn szl_identity(p: &S7Pdu<'_>, f: &mut dyn FnMut(u8, &[u8])) {
    let Some((id, _)) = p.szl.filter(|_| !p.is_request) else { return };
    let d = p.data;
    // Return code, transport size, length (4), SZL id, index (4), record length, count (4).
    let (Some(len), Some(count)) = (be16(d, 8), be16(d, 10)) else { return };
    let len = usize::from(len);
    if len < 2 {
        return;
    }
    for i in 0..usize::from(count).min(MAX_SZL_RECORDS) {
        // `i` and `len` are packet data (bounded: MAX_SZL_RECORDS, a u16): the offset is
        // computed without overflow, and a record past the end ends the walk.
        let Some(rec) = i.checked_mul(len).and_then(|o| d.get(12..)?.get(o..)?.get(..len)) else { break };
        let Some(index) = be16(rec, 0) else { break };
        let (oid, text) = match (id & 0x00ff, index) {
            (0x11, 1) => (identity::ORDER_NUMBER, rec.get(2..22)),
            (0x1c, 1) => (identity::SYSTEM_NAME, rec.get(2..34)),
            (0x1c, 2) => (identity::MODULE_NAME, rec.get(2..34)),
            (0x1c, 5) => (identity::SERIAL_NUMBER, rec.get(2..34)),
            (0x1c, 7) => (identity::MODULE_TYPE, rec.get(2..34)),
            _ => continue,
        };
        let Some(text) = text else { continue };
        let end = text.iter().rposition(|&b| b != 0 && b != b' ').map_or(0, |e| e + 1);
        let text = text.get(..end).unwrap_or_default();
        let text = text.get(..text.iter().position(|&b| b == 0).unwrap_or(text.len())).unwrap_or_default();
        if !text.is_empty() {
            f(oid, text);
        }
    }
}
