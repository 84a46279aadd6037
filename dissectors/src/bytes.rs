//! Big-endian integers read from wire bytes, bounds-checked: every protocol's one way to read
//! a field.

/// The big-endian `u16` at `i`, if `b` holds it.
#[inline]
pub(crate) fn be16(b: &[u8], i: usize) -> Option<u16> {
    match b.get(i..i.checked_add(2)?) {
        Some(&[hi, lo]) => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

/// The big-endian `u32` at `i`, if `b` holds it.
#[inline]
pub(crate) fn be32(b: &[u8], i: usize) -> Option<u32> {
    match b.get(i..i.checked_add(4)?) {
        Some(&[a, b2, c, d]) => Some(u32::from_be_bytes([a, b2, c, d])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_refuses_past_the_end() {
        let b = [0x12, 0x34, 0x56, 0x78];
        assert_eq!(be16(&b, 0), Some(0x1234));
        assert_eq!(be16(&b, 2), Some(0x5678));
        assert_eq!(be16(&b, 3), None);
        assert_eq!(be16(&b, usize::MAX), None, "no overflow");
        assert_eq!(be32(&b, 0), Some(0x1234_5678));
        assert_eq!(be32(&b, 1), None);
    }
}
