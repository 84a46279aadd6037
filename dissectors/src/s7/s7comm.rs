//! S7comm (protocol id 0x32): the header, the job and ack-data parameters, read/write
//! variable items and data items, block transfer, PI services, PLC stop and userdata.
//!
//! Siemens does not publish S7comm; the layout follows the reverse-engineered description of
//! Wireshark's `packet-s7comm.c` (Thomas Wiens), section by section as cited below. Item
//! lists are never copied: [`Items`] and [`DataItems`] walk the parameter and data bytes
//! lazily.

use super::cotp::Cotp;
use super::names;
use super::FLAG_NAMES;
use crate::bytes::be16;
use crate::types::{Access, CriticalOp, Flags, FuncName, FunctionClass, PointRange, PointValue, Space};

/// Protocol id of S7comm (header byte 0).
pub const PROTOCOL_ID: u8 = 0x32;
/// Header length of jobs and userdata.
pub const HEADER_LEN: usize = 10;
/// Header length of acks and ack-data (two more bytes: error class and code).
pub const ACK_HEADER_LEN: usize = 12;
/// ROSCTR of a job (request).
pub const ROSCTR_JOB: u8 = 1;
/// ROSCTR of an acknowledgement without data.
pub const ROSCTR_ACK: u8 = 2;
/// ROSCTR of an acknowledgement with data (response).
pub const ROSCTR_ACK_DATA: u8 = 3;
/// ROSCTR of userdata (extended functions: programmer, cyclic, block, CPU, security, time).
pub const ROSCTR_USERDATA: u8 = 7;

/// Function: read variables.
pub const FUNC_READ_VAR: u8 = 0x04;
/// Function: write variables.
pub const FUNC_WRITE_VAR: u8 = 0x05;
/// Function: request download (start of a block download to the PLC).
pub const FUNC_REQUEST_DOWNLOAD: u8 = 0x1a;
/// Function: download block.
pub const FUNC_DOWNLOAD_BLOCK: u8 = 0x1b;
/// Function: download ended.
pub const FUNC_DOWNLOAD_ENDED: u8 = 0x1c;
/// Function: start upload (from the PLC).
pub const FUNC_START_UPLOAD: u8 = 0x1d;
/// Function: upload.
pub const FUNC_UPLOAD: u8 = 0x1e;
/// Function: end upload.
pub const FUNC_END_UPLOAD: u8 = 0x1f;
/// Function: program invocation (PI) service.
pub const FUNC_PI_SERVICE: u8 = 0x28;
/// Function: PLC stop.
pub const FUNC_PLC_STOP: u8 = 0x29;
/// Function: setup communication (PDU size negotiation).
pub const FUNC_SETUP_COMMUNICATION: u8 = 0xf0;

/// `func_code()` of a COTP control TPDU: this plus its TPDU code (CR 0x1E0, CC 0x1D0, DR 0x180).
pub const FUNC_COTP_BASE: u16 = 0x100;
/// `func_code()` of an ack without parameters whose job was not seen.
pub const FUNC_BARE_ACK: u16 = 0x200;
/// `func_code()` of a job, ack-data or unknown ROSCTR PDU without parameters.
pub const FUNC_NO_PARAMETER: u16 = 0x201;
/// `func_code()` of userdata: this | group << 8 | subfunction (CPU_READ_SZL is 0x7401).
pub const FUNC_USERDATA_BASE: u16 = 0x7000;

/// Most items walked in one parameter or data part (the item count is one byte).
pub const MAX_ITEMS: usize = 255;
/// Most values reported for one data item.
pub const MAX_VALUES_PER_ITEM: usize = 4096;
/// Most DBREAD areas walked in one item.
const MAX_DBREAD_AREAS: usize = 64;

/// Flag bit: the header's parameter and data lengths disagree with the TPDU's length.
pub const FLAG_LENGTH: u32 = 0;
/// Flag bit: ROSCTR 4, 5 or 6 (not defined).
pub const FLAG_ROSCTR: u32 = 1;
/// Flag bit: an item count disagrees with the items or data items present.
pub const FLAG_ITEMS: u32 = 2;
/// Flag bit: a response whose PDU reference matches no job seen.
pub const FLAG_UNMATCHED: u32 = 3;
/// Flag bit: an ack-data whose function differs from its job's.
pub const FLAG_FUNCTION_MISMATCH: u32 = 4;
/// Flag bit: a userdata parameter without the 0x00 0x01 0x12 head or too short.
pub const FLAG_USERDATA_HEADER: u32 = 5;
/// Flag bit: a function's parameter part is shorter than the function requires.
pub const FLAG_PARAMETER: u32 = 6;

/// Userdata parameter fields (parameter bytes 3-11) and the data header (data bytes 0-3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Userdata {
    /// Method: 0x11 request, 0x12 response.
    pub method: u8,
    /// Type: 0 push (indication), 4 request, 8 response (upper nibble of byte 5).
    pub utype: u8,
    /// Function group (lower nibble of byte 5): 1 programmer, 2 cyclic, 3 block, 4 CPU,
    /// 5 security, 7 time.
    pub group: u8,
    /// Subfunction within the group.
    pub subfunc: u8,
    /// Sequence number.
    pub seq: u8,
    /// Data unit reference (extended parameter only).
    pub data_unit_ref: Option<u8>,
    /// Last data unit: 0 yes, 1 no (extended parameter only).
    pub last_data_unit: Option<u8>,
    /// Error code (extended parameter only).
    pub error_code: Option<u16>,
    /// Data part return code (0xff success).
    pub return_code: Option<u8>,
    /// Data part transport size.
    pub transport_size: Option<u8>,
}

/// Setup communication parameters (parameter bytes 2-7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Most parallel jobs the caller accepts.
    pub amq_calling: u16,
    /// Most parallel jobs the callee accepts.
    pub amq_called: u16,
    /// Negotiated PDU size in bytes.
    pub pdu_size: u16,
}

/// A block named in a transfer file name (`_0800001P`) or a block info request (`0800001A`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockId {
    /// Block type as two ASCII characters (`08` OB, `0A` DB, `0B` SDB, `0C` FC, `0E` FB).
    pub block_type: [u8; 2],
    /// Block number.
    pub number: u32,
    /// Destination file system: `P` passive, `A` active, `B` both.
    pub filesys: u8,
}

impl BlockId {
    /// Parses eight ASCII bytes: type (2), number (5 digits), file system (1).
    pub fn parse(b: &[u8]) -> Option<Self> {
        let &[t0, t1, ref digits @ .., fs] = b.get(..8)? else { return None };
        let mut number = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            number = number.saturating_mul(10).saturating_add(u32::from(d.wrapping_sub(b'0')));
        }
        Some(BlockId { block_type: [t0, t1], number, filesys: fs })
    }
    /// The block type's name (`OB`, `DB`, ...).
    pub fn type_name(&self) -> &'static str {
        names::block_type_name(self.block_type)
    }
}

/// One variable specification of a read or write request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    /// Syntax id: 0x10 S7ANY; 0xb0 DBREAD, 0xa2 DRIVEESANY, 0x82 NCK and others are kept raw.
    pub syntax_id: u8,
    /// S7ANY transport size (element type).
    pub transport_size: u8,
    /// S7ANY number of elements.
    pub length: u16,
    /// S7ANY data block number.
    pub db: u16,
    /// S7ANY area code (0x84 DB, 0x83 flags, 0x81 inputs, 0x82 outputs, ...).
    pub area: u8,
    /// S7ANY address: byte * 8 + bit (for counters and timers, the number).
    pub address: u32,
    /// The specification after its length byte.
    pub spec: &'a [u8],
}

impl Item<'_> {
    /// Byte address of an S7ANY item.
    pub fn byte(&self) -> u32 {
        self.address >> 3
    }
    /// Bit address of an S7ANY item.
    pub fn bit(&self) -> u8 {
        (self.address & 7) as u8
    }
    fn is_counter_or_timer(&self) -> bool {
        matches!(self.area, 0x1c..=0x1f)
    }
    fn space(&self) -> Space {
        let db = if matches!(self.area, 0x84 | 0x85) { self.db } else { 0 };
        Space::S7 { area: self.area, db }
    }
    /// Calls `f` with each `(space, start, count)` the item addresses, in bits.
    fn ranges(&self, f: &mut dyn FnMut(Space, u32, u32)) {
        match self.syntax_id {
            0x10 => {
                if self.is_counter_or_timer() {
                    f(self.space(), self.address, u32::from(self.length));
                } else {
                    let bits = names::transport_size_bits(self.transport_size);
                    f(self.space(), self.address, u32::from(self.length).saturating_mul(bits));
                }
            }
            0xb0 => {
                // DBREAD: number of areas, then (length, DB, start byte) per area.
                let n = self.spec.get(1).copied().unwrap_or(0);
                let areas = self.spec.get(2..).unwrap_or_default();
                for a in areas.chunks_exact(5).take(usize::from(n).min(MAX_DBREAD_AREAS)) {
                    if let &[len, d0, d1, s0, s1] = a {
                        let db = u16::from_be_bytes([d0, d1]);
                        let start = u32::from(u16::from_be_bytes([s0, s1])) * 8;
                        f(Space::S7 { area: 0x84, db }, start, u32::from(len) * 8);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Iterator over the variable specifications of a read or write request.
#[derive(Clone, Debug)]
pub struct Items<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Items<'a> {
    /// Items in `b` (the parameter part after function and item count), at most `count`.
    pub fn new(b: &'a [u8], count: u8) -> Self {
        Items { rest: b, left: usize::from(count).min(MAX_ITEMS) }
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;
    #[inline]
    fn next(&mut self) -> Option<Item<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        // Variable specification 0x12, length of the rest, then the address.
        let (&[0x12, len], rest) = self.rest.split_first_chunk::<2>()? else {
            self.rest = &[];
            return None;
        };
        let Some((spec, rest)) = rest.split_at_checked(usize::from(len)) else {
            self.rest = &[];
            return None;
        };
        self.rest = rest;
        let mut item =
            Item { syntax_id: *spec.first()?, transport_size: 0, length: 0, db: 0, area: 0, address: 0, spec };
        if let Some(&[0x10, ts, l0, l1, d0, d1, area, a0, a1, a2]) = spec.get(..10) {
            item.transport_size = ts;
            item.length = u16::from_be_bytes([l0, l1]);
            item.db = u16::from_be_bytes([d0, d1]);
            item.area = area;
            item.address = u32::from_be_bytes([0, a0, a1, a2]);
        } else if let Some(&[0xb0, _, len, d0, d1, s0, s1]) = spec.get(..7) {
            // DBREAD: report the first area in the S7ANY fields.
            item.transport_size = 2;
            item.length = u16::from(len);
            item.db = u16::from_be_bytes([d0, d1]);
            item.area = 0x84;
            item.address = u32::from(u16::from_be_bytes([s0, s1])) * 8;
        }
        Some(item)
    }
}

/// One data item of a write request or read response, or the return code of a write response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataItem<'a> {
    /// Return code: 0xff success, 0x0a object does not exist, ...; 0x00 in write requests.
    pub return_code: u8,
    /// Data transport size: 3 bit, 4 byte/word/dword, 5 integer, 6 dinteger, 7 real, 9 octets.
    pub transport_size: u8,
    /// The value bytes (empty for write response return codes).
    pub data: &'a [u8],
}

/// Iterator over data items.
#[derive(Clone, Debug)]
pub struct DataItems<'a> {
    rest: &'a [u8],
    left: usize,
    codes_only: bool,
}

impl<'a> DataItems<'a> {
    /// Data items in `b`; `codes_only` for a write response (one return code byte each).
    pub fn new(b: &'a [u8], count: u8, codes_only: bool) -> Self {
        DataItems { rest: b, left: usize::from(count).min(MAX_ITEMS), codes_only }
    }
}

impl<'a> Iterator for DataItems<'a> {
    type Item = DataItem<'a>;
    #[inline]
    fn next(&mut self) -> Option<DataItem<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        if self.codes_only {
            let (&rc, rest) = self.rest.split_first()?;
            self.rest = rest;
            return Some(DataItem { return_code: rc, transport_size: 0, data: &[] });
        }
        let Some((&[rc, ts, l0, l1], rest)) = self.rest.split_first_chunk::<4>() else {
            self.rest = &[];
            return None;
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        // Bit, byte/word/dword and integer lengths are given in bits.
        let n = if matches!(ts, 3..=5) { len.div_ceil(8) } else { len };
        let data = rest.get(..n).unwrap_or(rest);
        let mut next = rest.get(n..).unwrap_or_default();
        // Items are padded to an even length, except the last.
        if n % 2 == 1 && self.left > 0 {
            next = next.get(1..).unwrap_or_default();
        }
        self.rest = next;
        Some(DataItem { return_code: rc, transport_size: ts, data })
    }
}

/// An S7comm PDU, or a COTP control TPDU (connection request, confirm, disconnect, error) on
/// an S7 connection.
#[derive(Clone, Copy, Debug)]
pub struct S7Pdu<'a> {
    /// True for jobs and userdata requests (and COTP TPDUs from the client).
    pub is_request: bool,
    /// The COTP control TPDU, when this is not an S7comm PDU.
    pub cotp: Option<Cotp<'a>>,
    /// ROSCTR: 1 job, 2 ack, 3 ack-data, 7 userdata; 0 for COTP TPDUs.
    pub rosctr: u8,
    /// Redundancy identification (header bytes 2-3).
    pub redundancy_id: u16,
    /// PDU reference, which a response repeats.
    pub pdu_ref: u16,
    /// Header error class (acks and ack-data only).
    pub error_class: Option<u8>,
    /// Header error code (acks and ack-data only).
    pub error_code: Option<u8>,
    /// Parameter function byte as sent (jobs and ack-data with parameters).
    pub param_func: Option<u8>,
    /// The function: `param_func`, or the matched job's for an ack without parameters.
    pub func: Option<u8>,
    /// Parameter part.
    pub param: &'a [u8],
    /// Data part.
    pub data: &'a [u8],
    /// Userdata fields.
    pub userdata: Option<Userdata>,
    /// Setup communication parameters.
    pub setup: Option<Setup>,
    /// Item count of read/write var (from the parameter part).
    pub item_count: Option<u8>,
    /// Variable specifications: this job's, or the matched job's for a response.
    pub items: &'a [u8],
    /// Item count of `items`.
    pub items_count: u8,
    /// Block of a download, upload, PI service or block info request.
    pub block: Option<BlockId>,
    /// File name of a download or upload job (the matched job's for a response).
    pub filename: &'a [u8],
    /// PI service name (`_INSE`, `_DELE`, `P_PROGRAM`, `_GARB`, `_MODU`, ...) of a PI service
    /// or PLC stop (the matched job's for a response).
    pub pi_service: &'a [u8],
    /// PI service parameter block.
    pub pi_params: &'a [u8],
    /// SZL id and index of a CPU functions / read SZL userdata.
    pub szl: Option<(u16, u16)>,
    /// For a response: whether its job was seen.
    pub matched: bool,
    /// The whole S7 PDU (or COTP TPDU header).
    pub raw: &'a [u8],
    /// Protocol violations.
    pub flags: Flags,
}

/// Fields a job's parameter part names, decoded from the job itself or, for a response, from
/// the matched job's parameter part.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct JobFields<'a> {
    pub(crate) items: &'a [u8],
    pub(crate) items_count: u8,
    pub(crate) block: Option<BlockId>,
    pub(crate) filename: &'a [u8],
    pub(crate) pi_service: &'a [u8],
    pub(crate) pi_params: &'a [u8],
    pub(crate) short: bool,
}

/// A length-prefixed string at `at`.
fn lstring(p: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(*p.get(at)?);
    p.get(at..)?.get(1..)?.get(..len)
}

/// Decodes the parameter part of a job (`p[0]` is the function).
pub(crate) fn job_fields(p: &[u8]) -> JobFields<'_> {
    let mut j = JobFields::default();
    let Some(&func) = p.first() else { return j };
    match func {
        FUNC_READ_VAR | FUNC_WRITE_VAR => {
            j.items_count = p.get(1).copied().unwrap_or(0);
            j.items = p.get(2..).unwrap_or_default();
            j.short = p.len() < 2;
        }
        FUNC_REQUEST_DOWNLOAD | FUNC_DOWNLOAD_BLOCK | FUNC_DOWNLOAD_ENDED | FUNC_START_UPLOAD => {
            // Function, status, 2 bytes, 4 bytes (upload id), then the file name.
            match lstring(p, 8) {
                Some(name) => {
                    j.filename = name;
                    if let [b'_', rest @ ..] = name {
                        j.block = BlockId::parse(rest);
                    }
                }
                None => j.short = true,
            }
        }
        FUNC_PI_SERVICE => {
            // Function, 7 unknown bytes, parameter block length and block, service name.
            let plen = be16(p, 8).map(usize::from);
            match plen.and_then(|n| Some((p.get(10..)?.get(..n)?, lstring(p, n.checked_add(10)?)?))) {
                Some((params, name)) => {
                    j.pi_params = params;
                    j.pi_service = name;
                    // _INSE, _DELE and friends: block count, 0x00, then type, number, file system.
                    j.block = params.get(2..).and_then(BlockId::parse);
                }
                None => j.short = true,
            }
        }
        FUNC_PLC_STOP => {
            // Function, 5 unknown bytes, then the service name (P_PROGRAM).
            match lstring(p, 6) {
                Some(name) => j.pi_service = name,
                None => j.short = true,
            }
        }
        _ => {}
    }
    j
}

/// The parsed S7comm header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header<'a> {
    pub(crate) rosctr: u8,
    pub(crate) redundancy_id: u16,
    pub(crate) pdu_ref: u16,
    pub(crate) error: Option<(u8, u8)>,
    pub(crate) param: &'a [u8],
    pub(crate) data: &'a [u8],
    pub(crate) length_ok: bool,
}

/// Parses the header of an S7comm PDU (section "S7 header" of `packet-s7comm.c`); `None` if
/// `p` cannot be S7comm (the same test as Wireshark's heuristic: protocol id 0x32, at least
/// 10 bytes, ROSCTR 1 to 7).
pub(crate) fn header(p: &[u8]) -> Option<Header<'_>> {
    let &[PROTOCOL_ID, rosctr, r0, r1, f0, f1, p0, p1, d0, d1] = p.get(..HEADER_LEN)? else { return None };
    if !(1..=7).contains(&rosctr) {
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([p0, p1]));
    let dlen = usize::from(u16::from_be_bytes([d0, d1]));
    let is_ack = matches!(rosctr, ROSCTR_ACK | ROSCTR_ACK_DATA);
    let error = match p.get(10..12) {
        Some(&[class, code]) if is_ack => Some((class, code)),
        _ => None,
    };
    let hlen = if is_ack { ACK_HEADER_LEN } else { HEADER_LEN };
    let body = p.get(hlen..).unwrap_or_default();
    let param = body.get(..plen).unwrap_or(body);
    let data = body.get(plen..).map(|d| d.get(..dlen).unwrap_or(d)).unwrap_or_default();
    Some(Header {
        rosctr,
        redundancy_id: u16::from_be_bytes([r0, r1]),
        pdu_ref: u16::from_be_bytes([f0, f1]),
        error,
        param,
        data,
        // The three lengths are packet data: summed without overflow.
        length_ok: hlen.checked_add(plen).and_then(|x| x.checked_add(dlen)) == Some(p.len()),
    })
}

/// Decodes the userdata parameter and data header, with whether the head is the usual
/// 0x00 0x01 0x12; `None` if the parameter part is shorter than 8 bytes.
pub(crate) fn userdata(param: &[u8], data: &[u8]) -> Option<(Userdata, bool)> {
    // Head 0x00 0x01 0x12, parameter length, method, type|group, subfunction, sequence. Some
    // PLCs push userdata with another head; the fields are read at the same places, as
    // Wireshark does.
    let &[h0, h1, h2, plen, method, tg, subfunc, seq] = param.get(..8)? else { return None };
    let mut u = Userdata { method, utype: tg >> 4, group: tg & 0x0f, subfunc, seq, ..Userdata::default() };
    if plen >= 8 {
        u.data_unit_ref = param.get(8).copied();
        u.last_data_unit = param.get(9).copied();
        u.error_code = be16(param, 10);
    }
    if data.len() >= 4 {
        u.return_code = data.first().copied();
        u.transport_size = data.get(1).copied();
    }
    Some((u, [h0, h1, h2] == [0x00, 0x01, 0x12]))
}

impl<'a> S7Pdu<'a> {
    /// An S7Pdu with the header fields and everything else empty.
    pub(crate) fn from_header(h: &Header<'a>, raw: &'a [u8]) -> Self {
        S7Pdu {
            is_request: false,
            cotp: None,
            rosctr: h.rosctr,
            redundancy_id: h.redundancy_id,
            pdu_ref: h.pdu_ref,
            error_class: h.error.map(|e| e.0),
            error_code: h.error.map(|e| e.1),
            param_func: None,
            func: None,
            param: h.param,
            data: h.data,
            userdata: None,
            setup: None,
            item_count: None,
            items: &[],
            items_count: 0,
            block: None,
            filename: &[],
            pi_service: &[],
            pi_params: &[],
            szl: None,
            matched: false,
            raw,
            flags: Flags::new(FLAG_NAMES),
        }
    }

    /// A PDU for a COTP control TPDU.
    pub(crate) fn from_cotp(c: Cotp<'a>, is_request: bool, raw: &'a [u8]) -> Self {
        let h = Header { rosctr: 0, redundancy_id: 0, pdu_ref: 0, error: None, param: &[], data: &[], length_ok: true };
        let mut p = S7Pdu::from_header(&h, raw);
        p.cotp = Some(c);
        p.is_request = is_request;
        p
    }

    /// Applies a job's fields (from this job or the matched one).
    pub(crate) fn apply_job(&mut self, j: &JobFields<'a>) {
        self.items = j.items;
        self.items_count = j.items_count;
        self.block = j.block;
        self.filename = j.filename;
        self.pi_service = j.pi_service;
        self.pi_params = j.pi_params;
    }

    /// The variable specifications (the job's, for a matched response).
    pub fn items(&self) -> Items<'a> {
        Items::new(self.items, self.items_count)
    }

    /// The data items of a write job or of a read or write response.
    pub fn data_items(&self) -> DataItems<'a> {
        let count = self.item_count.unwrap_or(0);
        match (self.rosctr, self.func) {
            (ROSCTR_JOB, Some(FUNC_WRITE_VAR)) => DataItems::new(self.data, count, false),
            (ROSCTR_ACK_DATA, Some(FUNC_READ_VAR)) => DataItems::new(self.data, count, false),
            (ROSCTR_ACK_DATA, Some(FUNC_WRITE_VAR)) => DataItems::new(self.data, count, true),
            _ => DataItems::new(&[], 0, false),
        }
    }

    /// Whether this is a COTP control TPDU rather than an S7comm PDU.
    pub fn is_cotp(&self) -> bool {
        self.cotp.is_some()
    }

    /// The function code as a number: the parameter function for jobs and acks;
    /// [`FUNC_USERDATA_BASE`] | group << 8 | subfunction for userdata; [`FUNC_COTP_BASE`] +
    /// TPDU code for COTP; [`FUNC_BARE_ACK`] or [`FUNC_NO_PARAMETER`] without a function.
    pub fn func_code(&self) -> u16 {
        if let Some(c) = &self.cotp {
            return FUNC_COTP_BASE + u16::from(c.code & 0xf0);
        }
        if let Some(u) = &self.userdata {
            return FUNC_USERDATA_BASE | u16::from(u.group & 0x0f) << 8 | u16::from(u.subfunc);
        }
        match self.func {
            Some(f) => u16::from(f),
            None if self.rosctr == ROSCTR_ACK => FUNC_BARE_ACK,
            None => FUNC_NO_PARAMETER,
        }
    }

    /// The function code's name: `READ_VAR`, `PLC_STOP`, `CPU_READ_SZL`,
    /// `COTP_CONNECTION_REQUEST`, ...
    pub fn func_name(&self) -> FuncName {
        if let Some(c) = &self.cotp {
            return FuncName::Known(c.name());
        }
        if let Some(u) = &self.userdata {
            return match names::userdata_names(u.group, u.subfunc) {
                Some((_, n)) => FuncName::Known(n),
                None => FuncName::Unknown(self.func_code()),
            };
        }
        match self.func {
            Some(f) => names::function_name(f).map_or(FuncName::Unknown(u16::from(f)), FuncName::Known),
            None if self.rosctr == ROSCTR_ACK => FuncName::Known("ACK"),
            None => FuncName::Known("NO_PARAMETER"),
        }
    }

    /// Violations.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Class of operation: read var is read, write var write; setup communication, CPU,
    /// block and time functions diagnostic; download, upload, PI services, PLC stop and
    /// security programming.
    pub fn class(&self) -> FunctionClass {
        if self.cotp.is_some() {
            return FunctionClass::Other;
        }
        if let Some(u) = &self.userdata {
            return match (u.group, u.subfunc) {
                (1, 0x08 | 0x09) => FunctionClass::Write,
                (1, 0x0c) | (5, _) => FunctionClass::Program,
                (2, _) => FunctionClass::Read,
                (0 | 1 | 3 | 4 | 7, _) => FunctionClass::Diagnostic,
                _ => FunctionClass::Other,
            };
        }
        match self.func {
            Some(FUNC_READ_VAR) => FunctionClass::Read,
            Some(FUNC_WRITE_VAR) => FunctionClass::Write,
            Some(FUNC_SETUP_COMMUNICATION | 0x00) => FunctionClass::Diagnostic,
            Some(0x01 | 0x1a..=0x1f | FUNC_PI_SERVICE | FUNC_PLC_STOP) => FunctionClass::Program,
            _ => FunctionClass::Other,
        }
    }

    /// The critical operation a request asks for: PLC stop, download (request download, PI
    /// `_INSE`/`_INS`), upload (start upload), block delete (PI `_DELE`), PLC start (PI
    /// `P_PROGRAM`), memory operations (PI `_GARB` compress, `_MODU` copy RAM to ROM,
    /// programmer memory reset), protection change (userdata security).
    pub fn critical(&self) -> Option<CriticalOp> {
        if !self.is_request || self.cotp.is_some() {
            return None;
        }
        if let Some(u) = &self.userdata {
            return match (u.group, u.subfunc) {
                (5, _) => Some(CriticalOp::ProtectionChange),
                (1, 0x0c) => Some(CriticalOp::MemoryOperation),
                _ => None,
            };
        }
        match self.func? {
            FUNC_PLC_STOP => Some(CriticalOp::PlcStop),
            FUNC_REQUEST_DOWNLOAD => Some(CriticalOp::ProgramDownload),
            FUNC_START_UPLOAD => Some(CriticalOp::ProgramUpload),
            FUNC_PI_SERVICE => match self.pi_service {
                b"_INSE" | b"_INS" => Some(CriticalOp::ProgramDownload),
                b"_DELE" => Some(CriticalOp::BlockDelete),
                b"P_PROGRAM" => Some(CriticalOp::PlcStart),
                b"_GARB" | b"_MODU" => Some(CriticalOp::MemoryOperation),
                _ => None,
            },
            _ => None,
        }
    }

    fn access(&self) -> Access {
        if self.func == Some(FUNC_WRITE_VAR) {
            Access::Write
        } else {
            Access::Read
        }
    }

    /// Calls `f` with one range per read/write item (area, DB, start and count in bits).
    /// Responses repeat their job's items when matched.
    pub fn for_each_point(&self, f: &mut dyn FnMut(PointRange)) {
        if !matches!(self.func, Some(FUNC_READ_VAR | FUNC_WRITE_VAR)) || self.userdata.is_some() {
            return;
        }
        let access = self.access();
        for item in self.items() {
            item.ranges(&mut |space, start, count| f(PointRange { space, start, count, access }));
        }
    }

    /// Calls `f` with the values of write job items and of read response items, one per
    /// element at its bit address: bits as 0/1, bytes, words and dwords unsigned, INT and DINT
    /// signed, REAL as its integer part (truncated towards zero). Items whose return code is
    /// not success, and items without an S7ANY specification, give no values.
    ///
    /// Generic, as Modbus's is: a writer's closure is inlined into the loop over the values,
    /// where a call through `dyn` per value cost more than the value's decoding.
    pub fn for_each_value(&self, mut f: impl FnMut(PointValue)) {
        let ok = match (self.rosctr, self.func) {
            (ROSCTR_JOB, Some(FUNC_WRITE_VAR)) => true,
            (ROSCTR_ACK_DATA, Some(FUNC_READ_VAR)) => self.matched,
            _ => false,
        };
        if !ok {
            return;
        }
        let access = self.access();
        for (item, d) in self.items().zip(self.data_items()) {
            if item.syntax_id != 0x10 || (self.rosctr == ROSCTR_ACK_DATA && d.return_code != 0xff) {
                continue;
            }
            let space = item.space();
            let ct = item.is_counter_or_timer();
            let width: usize = match item.transport_size {
                1 => 0,
                2 | 3 => 1,
                4 | 5 | 9 | 12 | 28 | 29 => 2,
                6 | 7 | 8 | 10 | 11 => 4,
                _ => continue,
            };
            if width == 0 {
                if let Some(&b) = d.data.first() {
                    f(PointValue { space, index: item.address, value: i64::from(b & 1), access });
                }
                continue;
            }
            for (i, c) in d.data.chunks_exact(width).take(MAX_VALUES_PER_ITEM).enumerate() {
                let value = match (item.transport_size, c) {
                    (2 | 3, &[b]) => i64::from(b),
                    (5, &[h, l]) => i64::from(i16::from_be_bytes([h, l])),
                    (_, &[h, l]) => i64::from(u16::from_be_bytes([h, l])),
                    (7, &[a, b, c, d]) => i64::from(i32::from_be_bytes([a, b, c, d])),
                    (8, &[a, b, c, d]) => f32::from_be_bytes([a, b, c, d]) as i64,
                    (_, &[a, b, c, d]) => i64::from(u32::from_be_bytes([a, b, c, d])),
                    _ => continue,
                };
                let step = if ct { 1 } else { (width as u32).saturating_mul(8) };
                let index = item.address.saturating_add(step.saturating_mul(i as u32));
                f(PointValue { space, index, value, access });
            }
        }
    }

    /// The error a response reports: header error class << 8 | code when not zero, else the
    /// userdata error code, else the first failing item return code (or userdata return code).
    pub fn error_code(&self) -> Option<u16> {
        if let (Some(c), Some(e)) = (self.error_class, self.error_code) {
            if c != 0 || e != 0 {
                return Some(u16::from(c) << 8 | u16::from(e));
            }
        }
        if let Some(u) = &self.userdata {
            if let Some(e) = u.error_code.filter(|&e| e != 0) {
                return Some(e);
            }
            if u.utype == 8 {
                return u.return_code.filter(|&r| r != 0xff).map(u16::from);
            }
            return None;
        }
        if self.rosctr == ROSCTR_ACK_DATA {
            return self.data_items().find(|d| d.return_code != 0xff).map(|d| u16::from(d.return_code));
        }
        None
    }
}
