//! DNP3 data link layer (IEEE 1815-2012 clause 9.2): the FT3 frame.
//!
//! A frame is a 10-byte header (start bytes 0x05 0x64, length, control, destination and
//! source addresses little-endian, CRC) followed by the user data in blocks of at most 16
//! bytes, each followed by its own CRC. The length counts control, addresses and user data
//! (5 + user data, so 5..=255), never the CRCs.

use super::crc;

/// Bytes in a link header, CRC included.
pub const HEADER_LEN: usize = 10;
/// Largest user data of one frame (length 255 minus control and addresses).
pub const MAX_USER_DATA: usize = 250;
/// User data bytes per CRC block.
pub const BLOCK_LEN: usize = 16;

/// A link header whose CRC has been checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkHeader {
    /// Length field: control, addresses and user data (clause 9.2.4.1.2).
    pub len: u8,
    /// Control octet: DIR, PRM, FCB/FCV (or DFC) and function code (clause 9.2.4.1.3).
    pub control: u8,
    /// Destination address.
    pub dst: u16,
    /// Source address.
    pub src: u16,
}

/// Why bytes could not be framed as a link frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkError {
    /// Fewer bytes than the header or frame needs.
    Incomplete {
        /// Total bytes needed.
        needed: usize,
    },
    /// The bytes do not start with 0x05 0x64.
    NoStart,
    /// The length field is below 5.
    BadLength {
        /// The length field.
        len: u8,
    },
    /// The header CRC is wrong.
    HeaderCrc,
}

impl LinkHeader {
    /// Parses and checks the 10-byte header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<LinkHeader, LinkError> {
        match data {
            [0x05, 0x64, ..] | [0x05] | [] => {}
            _ => return Err(LinkError::NoStart),
        }
        let Some(&[_, _, len, control, d0, d1, s0, s1, c0, c1]) = data.get(..HEADER_LEN) else {
            return Err(LinkError::Incomplete { needed: HEADER_LEN });
        };
        if !crc::check(data.get(..8).unwrap_or_default(), &[c0, c1]) {
            return Err(LinkError::HeaderCrc);
        }
        if len < 5 {
            return Err(LinkError::BadLength { len });
        }
        Ok(LinkHeader { len, control, dst: u16::from_le_bytes([d0, d1]), src: u16::from_le_bytes([s0, s1]) })
    }

    /// Number of user data bytes.
    pub fn user_len(&self) -> usize {
        usize::from(self.len).saturating_sub(5)
    }

    /// Bytes of the whole frame on the wire: header, user data and one CRC per block.
    pub fn frame_len(&self) -> usize {
        let u = self.user_len();
        // `u` is below 251 (from the one-byte length): no overflow, saturating for the lint.
        u.div_ceil(BLOCK_LEN).saturating_mul(2).saturating_add(u).saturating_add(HEADER_LEN)
    }

    /// DIR bit: set on frames from the master.
    pub fn dir(&self) -> bool {
        self.control & 0x80 != 0
    }
    /// PRM bit: set on primary (initiating) frames.
    pub fn prm(&self) -> bool {
        self.control & 0x40 != 0
    }
    /// FCB bit (primary frames) or reserved (secondary frames).
    pub fn fcb(&self) -> bool {
        self.control & 0x20 != 0
    }
    /// FCV bit (primary frames) or DFC, data flow control (secondary frames).
    pub fn fcv_dfc(&self) -> bool {
        self.control & 0x10 != 0
    }
    /// Link function code (low 4 bits).
    pub fn function(&self) -> u8 {
        self.control & 0x0F
    }
    /// The link function, PRM included, as a [`LinkFunction`].
    pub fn link_function(&self) -> LinkFunction {
        LinkFunction::from_control(self.control)
    }
}

/// Link-layer function codes (IEEE 1815-2012 tables 9-1 and 9-2), with the PRM bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkFunction {
    /// PRM=1, 0: reset link states.
    ResetLinkStates,
    /// PRM=1, 2: test link states.
    TestLinkStates,
    /// PRM=1, 3: confirmed user data.
    ConfirmedUserData,
    /// PRM=1, 4: unconfirmed user data.
    UnconfirmedUserData,
    /// PRM=1, 9: request link status.
    RequestLinkStatus,
    /// PRM=0, 0: ACK.
    Ack,
    /// PRM=0, 1: NACK.
    Nack,
    /// PRM=0, 11: link status.
    LinkStatus,
    /// PRM=0, 15: not supported.
    NotSupported,
    /// Any other code (obsolete or reserved): PRM bit and function code.
    Unknown {
        /// PRM bit.
        prm: bool,
        /// Function code.
        code: u8,
    },
}

impl LinkFunction {
    /// Decodes the PRM bit and function code of a control octet.
    pub fn from_control(control: u8) -> LinkFunction {
        let prm = control & 0x40 != 0;
        match (prm, control & 0x0F) {
            (true, 0) => LinkFunction::ResetLinkStates,
            (true, 2) => LinkFunction::TestLinkStates,
            (true, 3) => LinkFunction::ConfirmedUserData,
            (true, 4) => LinkFunction::UnconfirmedUserData,
            (true, 9) => LinkFunction::RequestLinkStatus,
            (false, 0) => LinkFunction::Ack,
            (false, 1) => LinkFunction::Nack,
            (false, 11) => LinkFunction::LinkStatus,
            (false, 15) => LinkFunction::NotSupported,
            (prm, code) => LinkFunction::Unknown { prm, code },
        }
    }

    /// Upper-snake-case name, prefixed `LINK_` so it never collides with an application
    /// function's name; `None` for unknown codes.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            LinkFunction::ResetLinkStates => "LINK_RESET_LINK_STATES",
            LinkFunction::TestLinkStates => "LINK_TEST_LINK_STATES",
            LinkFunction::ConfirmedUserData => "LINK_CONFIRMED_USER_DATA",
            LinkFunction::UnconfirmedUserData => "LINK_UNCONFIRMED_USER_DATA",
            LinkFunction::RequestLinkStatus => "LINK_REQUEST_LINK_STATUS",
            LinkFunction::Ack => "LINK_ACK",
            LinkFunction::Nack => "LINK_NACK",
            LinkFunction::LinkStatus => "LINK_STATUS",
            LinkFunction::NotSupported => "LINK_NOT_SUPPORTED",
            LinkFunction::Unknown { .. } => return None,
        })
    }

    /// Whether this function carries user data (transport segments).
    pub fn carries_data(self) -> bool {
        matches!(self, LinkFunction::ConfirmedUserData | LinkFunction::UnconfirmedUserData)
    }
}

/// Copies the user data of the frame `frame` (exactly [`LinkHeader::frame_len`] bytes) into
/// `out` without its CRCs, and returns whether every block CRC was right.
pub fn user_data(h: &LinkHeader, frame: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut ok = true;
    let mut rest = frame.get(HEADER_LEN..).unwrap_or_default();
    let mut left = h.user_len();
    // At most 16 blocks: 250 bytes of user data.
    const MAX_BLOCKS: usize = MAX_USER_DATA.div_ceil(BLOCK_LEN);
    for _ in 0..MAX_BLOCKS {
        if left == 0 {
            break;
        }
        let n = left.min(BLOCK_LEN);
        let (Some(block), Some(crc)) = (rest.get(..n), rest.get(n..).and_then(|r| r.get(..2))) else {
            return false;
        };
        ok &= crc::check(block, crc);
        out.extend_from_slice(block);
        rest = rest.get(n..).and_then(|r| r.get(2..)).unwrap_or_default();
        left = left.saturating_sub(n);
    }
    ok
}

/// Builds a link frame from header fields and user data, CRCs included (tests, generators).
pub fn build_frame(control: u8, dst: u16, src: u16, user: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let len = user.len().min(MAX_USER_DATA).saturating_add(5) as u8;
    let [d0, d1] = dst.to_le_bytes();
    let [s0, s1] = src.to_le_bytes();
    out.extend_from_slice(&[0x05, 0x64, len, control, d0, d1, s0, s1]);
    let hcrc = crc::crc16(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&hcrc.to_le_bytes());
    for block in user.get(..user.len().min(MAX_USER_DATA)).unwrap_or_default().chunks(BLOCK_LEN) {
        out.extend_from_slice(block);
        out.extend_from_slice(&crc::crc16(block).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_link_status_request_header() {
        let f = [
            0x05, 0x64, // start bytes
            0x05, // length: control and addresses only
            0xC9, // control: DIR=1, PRM=1, FCB=0, FCV=0, function 9 (request link status)
            0x0A, 0x00, // destination 10
            0x01, 0x00, // source 1
            0x6B, 0xF7, // header CRC (computed below)
        ];
        let mut f = f.to_vec();
        let crc = crc::crc16(&f[..8]).to_le_bytes();
        f[8..10].copy_from_slice(&crc);
        let h = LinkHeader::parse(&f).unwrap();
        assert_eq!((h.len, h.dst, h.src), (5, 10, 1));
        assert!(h.dir() && h.prm() && !h.fcb() && !h.fcv_dfc());
        assert_eq!(h.link_function(), LinkFunction::RequestLinkStatus);
        assert_eq!(h.frame_len(), 10);
    }

    #[test]
    fn counts_one_crc_per_sixteen_byte_block() {
        for (user, frame) in [(0usize, 10usize), (1, 13), (16, 28), (17, 31), (250, 10 + 250 + 32)] {
            let h = LinkHeader { len: (5 + user) as u8, ..Default::default() };
            assert_eq!(h.frame_len(), frame, "user data {user}");
        }
    }

    #[test]
    fn rejects_a_bad_header_crc_and_a_short_length() {
        let mut f = Vec::new();
        build_frame(0xC4, 1, 2, &[], &mut f);
        assert!(LinkHeader::parse(&f).is_ok());
        f[9] ^= 0xFF;
        assert_eq!(LinkHeader::parse(&f), Err(LinkError::HeaderCrc));
        let mut g = vec![0x05, 0x64, 0x04, 0xC4, 1, 0, 2, 0];
        let crc = crc::crc16(&g).to_le_bytes();
        g.extend_from_slice(&crc);
        assert_eq!(LinkHeader::parse(&g), Err(LinkError::BadLength { len: 4 }));
        assert_eq!(LinkHeader::parse(&[0x05, 0x64, 5]), Err(LinkError::Incomplete { needed: 10 }));
        assert_eq!(LinkHeader::parse(&[0x05, 0x65]), Err(LinkError::NoStart));
    }

    #[test]
    fn strips_and_checks_every_block_crc() {
        let user: Vec<u8> = (0..40).collect();
        let mut f = Vec::new();
        build_frame(0x44, 1, 2, &user, &mut f);
        let h = LinkHeader::parse(&f).unwrap();
        assert_eq!(f.len(), h.frame_len());
        let mut out = Vec::new();
        assert!(user_data(&h, &f, &mut out));
        assert_eq!(out, user);
        // Corrupt the last block's CRC: the data is still copied, the check fails.
        let n = f.len();
        f[n - 1] ^= 1;
        assert!(!user_data(&h, &f, &mut out));
        assert_eq!(out, user);
    }
}
