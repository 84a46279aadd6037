//! Test helpers shared by the sensor's unit tests.

/// A raw IPv4/TCP segment (LINKTYPE_RAW) from `src`:40000 to `dst`:502 carrying `payload`.
pub(crate) fn modbus_segment(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x45, 0]; // version 4, IHL 5; DSCP
    v.extend(((40 + payload.len()) as u16).to_be_bytes()); // total length
    v.extend([0, 1, 0x40, 0, 64, 6, 0, 0]); // id, don't fragment, TTL 64, TCP, checksum
    v.extend(src); // source
    v.extend(dst); // destination
    v.extend(40000u16.to_be_bytes()); // source port
    v.extend(502u16.to_be_bytes()); // destination port
    v.extend(1000u32.to_be_bytes()); // sequence
    v.extend(0u32.to_be_bytes()); // acknowledgement
    v.extend([0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]); // offset 5, PSH|ACK, window, checksum, urgent
    v.extend(payload);
    v
}
