//! TPKT (RFC 1006 section 6) and COTP (ISO 8073 / ITU-T X.224, section 13) framing.
//!
//! A TPKT is a 4-byte header (version 3, reserved 0, big-endian length including the header)
//! followed by one COTP TPDU: a length indicator (LI, the header length after the LI byte), a
//! TPDU code, the code's fixed part and variable parameters, then user data.

use crate::stream::Probe;

/// Length of the TPKT header.
pub const TPKT_HEADER_LEN: usize = 4;
/// Shortest TPKT that can carry a COTP TPDU: the header, LI, code and one more byte (a class 0
/// data TPDU's EOT/number byte).
pub const TPKT_MIN_LEN: usize = 7;

/// TPDU code of a connection request (CR, section 13.3; low nibble is the credit).
pub const CR: u8 = 0xe0;
/// TPDU code of a connection confirm (CC, section 13.4).
pub const CC: u8 = 0xd0;
/// TPDU code of a disconnect request (DR, section 13.5).
pub const DR: u8 = 0x80;
/// TPDU code of a disconnect confirm (DC, section 13.6).
pub const DC: u8 = 0xc0;
/// TPDU code of a data TPDU (DT, section 13.7).
pub const DT: u8 = 0xf0;
/// TPDU code of a TPDU error (ER, section 13.12).
pub const ER: u8 = 0x70;

/// Parameter code of the calling (source) TSAP (section 13.3.4 a).
const PARAM_CALLING_TSAP: u8 = 0xc1;
/// Parameter code of the called (destination) TSAP.
const PARAM_CALLED_TSAP: u8 = 0xc2;
/// Parameter code of the TPDU size.
const PARAM_TPDU_SIZE: u8 = 0xc0;
/// Most variable parameters walked in one CR/CC/DR.
const MAX_COTP_PARAMS: usize = 16;

/// Whether `code` (upper nibble) is a TPDU code ISO 8073 defines.
pub fn known_code(code: u8) -> bool {
    matches!(code & 0xf0, 0xe0 | 0xd0 | 0x80 | 0xc0 | 0xf0 | 0x10 | 0x60 | 0x20 | 0x50 | 0x70)
}

/// Smallest LI a TPDU code allows (its fixed part).
fn min_li(code: u8) -> u8 {
    match code & 0xf0 {
        0xe0 | 0xd0 | 0x80 => 6,
        0xc0 => 5,
        0x70 => 4,
        _ => 2,
    }
}

/// Reads the TPKT length if `b` starts with a valid TPKT and COTP header.
pub(crate) fn header(b: &[u8]) -> Result<usize, Probe> {
    let Some(&[ver, res, l0, l1]) = b.get(..TPKT_HEADER_LEN) else {
        return Err(if b.first().is_some_and(|&v| v != 3) || b.get(1).is_some_and(|&r| r != 0) {
            Probe::No
        } else {
            Probe::NeedMore
        });
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if ver != 3 || res != 0 || len < TPKT_MIN_LEN {
        return Err(Probe::No);
    }
    let (Some(&li), Some(&code)) = (b.get(4), b.get(5)) else { return Err(Probe::NeedMore) };
    // LI counts the header after itself; 255 is reserved (section 13.2.1).
    if li == 255 || li < min_li(code) || usize::from(li) + 5 > len || !known_code(code) {
        return Err(Probe::No);
    }
    Ok(len)
}

/// Strict content identification of a TPKT/COTP stream.
pub fn probe(data: &[u8]) -> Probe {
    match header(data) {
        Ok(_) => Probe::Yes,
        Err(p) => p,
    }
}

/// A COTP TPDU framed from one TPKT.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tpdu<'a> {
    /// The code byte (upper nibble is the type).
    pub(crate) code: u8,
    /// The header after the LI byte (code byte included).
    pub(crate) header: &'a [u8],
    /// User data after the header.
    pub(crate) data: &'a [u8],
}

impl<'a> Tpdu<'a> {
    /// Frames the TPDU of a whole TPKT whose header [`header`] accepted.
    pub(crate) fn parse(tpkt: &'a [u8]) -> Option<Self> {
        let li = usize::from(*tpkt.get(4)?);
        let header = tpkt.get(5..5 + li)?;
        let data = tpkt.get(5 + li..)?;
        Some(Tpdu { code: *header.first()?, header, data })
    }
    /// Whether this is a data TPDU whose EOT bit (end of TSDU) is set.
    pub(crate) fn eot(&self) -> bool {
        self.header.get(1).is_some_and(|b| b & 0x80 != 0)
    }
}

/// The fields of a COTP connection request, confirm, disconnect or error TPDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cotp<'a> {
    /// TPDU code (upper nibble: 0xE0 CR, 0xD0 CC, 0x80 DR, 0xC0 DC, 0x70 ER).
    pub code: u8,
    /// Destination reference.
    pub dst_ref: u16,
    /// Source reference (0 for ER).
    pub src_ref: u16,
    /// Class and options (CR, CC), or the disconnect reason (DR), or the reject cause (ER).
    pub class_or_reason: u8,
    /// Calling TSAP (parameter 0xC1): the initiator's.
    pub src_tsap: &'a [u8],
    /// Called TSAP (parameter 0xC2): the responder's; for an S7 PLC its second byte is
    /// rack * 32 + slot.
    pub dst_tsap: &'a [u8],
    /// TPDU size parameter (0xC0), a power of two exponent (0x0A = 1024 bytes).
    pub tpdu_size: Option<u8>,
}

impl Cotp<'_> {
    /// Rack and slot of an S7 PLC from a two-byte called TSAP (connection type, rack*32+slot).
    pub fn rack_slot(&self) -> Option<(u8, u8)> {
        match self.dst_tsap {
            &[_, rs] => Some((rs >> 5, rs & 0x1f)),
            _ => None,
        }
    }
    /// The TPDU code's name, e.g. `COTP_CONNECTION_REQUEST`.
    pub fn name(&self) -> &'static str {
        super::names::cotp_name(self.code)
    }
}

/// Decodes the fixed part and parameters of a CR, CC, DR, DC or ER TPDU.
pub(crate) fn control<'a>(t: &Tpdu<'a>) -> Option<Cotp<'a>> {
    let h = t.header;
    let be = |i: usize| h.get(i..).and_then(|s| s.get(..2)).and_then(|s| s.try_into().ok()).map(u16::from_be_bytes);
    let kind = t.code & 0xf0;
    let mut c = Cotp {
        code: kind,
        dst_ref: be(1).unwrap_or(0),
        src_ref: 0,
        class_or_reason: 0,
        src_tsap: &[],
        dst_tsap: &[],
        tpdu_size: None,
    };
    let params_at = match kind {
        CR | CC | DR => {
            c.src_ref = be(3).unwrap_or(0);
            c.class_or_reason = h.get(5).copied().unwrap_or(0);
            6
        }
        DC => {
            c.src_ref = be(3).unwrap_or(0);
            5
        }
        ER => {
            c.class_or_reason = h.get(3).copied().unwrap_or(0);
            4
        }
        _ => return None,
    };
    let mut rest = h.get(params_at..).unwrap_or_default();
    for _ in 0..MAX_COTP_PARAMS {
        let Some((&code, r)) = rest.split_first() else { break };
        let Some((&len, r)) = r.split_first() else { break };
        let Some((value, r)) = r.split_at_checked(usize::from(len)) else { break };
        match code {
            PARAM_CALLING_TSAP => c.src_tsap = value,
            PARAM_CALLED_TSAP => c.dst_tsap = value,
            PARAM_TPDU_SIZE => c.tpdu_size = value.first().copied(),
            _ => {}
        }
        rest = r;
    }
    Some(c)
}
