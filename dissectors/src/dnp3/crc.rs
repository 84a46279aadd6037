//! CRC-16/DNP (IEEE 1815-2012 clause 9.2.2.2.5): polynomial 0x3D65, reflected (0xA6BC),
//! initial value 0, final value complemented, sent least significant byte first.

/// The reflected CRC-16/DNP table, built at compile time (`get` is not const, and `i < 256`).
#[allow(clippy::indexing_slicing)]
const TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA6BC } else { crc >> 1 };
            bit += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// The CRC-16/DNP of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        let idx = usize::from((crc ^ u16::from(b)) as u8);
        crc = (crc >> 8) ^ TABLE.get(idx).copied().unwrap_or(0);
    }
    !crc
}

/// Whether `data` is followed, in `crc` (2 bytes, little-endian), by its CRC-16/DNP. Always
/// true when fuzzing, so that the fuzzer reaches the transport and application layers.
// cargo-fuzz sets `--cfg fuzzing`; the workspace does not declare it, hence the allow.
#[allow(unexpected_cfgs)]
pub fn check(data: &[u8], crc: &[u8]) -> bool {
    if cfg!(fuzzing) {
        return true;
    }
    matches!(crc, [lo, hi] if u16::from_le_bytes([*lo, *hi]) == crc16(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_catalogue_check_value() {
        // CRC-16/DNP check value from the CRC catalogue: crc("123456789") = 0xEA82.
        assert_eq!(crc16(b"123456789"), 0xEA82);
    }

    #[test]
    fn checks_a_real_link_header() {
        // Start 0564, length 5, control 0xC9 (DIR, PRM, request link status), dst 1, src 1024.
        let hdr = [0x05, 0x64, 0x05, 0xC9, 0x01, 0x00, 0x00, 0x04];
        let crc = crc16(&hdr).to_le_bytes();
        assert!(check(&hdr, &crc));
        assert!(!check(&hdr, &[crc[0] ^ 1, crc[1]]));
        assert!(!check(&hdr, &crc[..1]));
    }
}
