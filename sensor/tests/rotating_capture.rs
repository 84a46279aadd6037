//! A capture file truncated while otsensor reads it (a rotating `tcpdump -C`, a copy cut
//! short): the process never dies of a signal (a memory-mapped file raised SIGBUS here); it
//! either finishes with what it read or names the packet and byte offset where the file
//! ended.

use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A classic pcap (LINKTYPE_RAW) of `n` UDP datagrams of 100 bytes each.
fn big_pcap(n: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + n as usize * 144);
    v.extend(0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
    v.extend([2, 0, 4, 0]); // version 2.4
    v.extend([0u8; 8]); // thiszone, sigfigs
    v.extend(65535u32.to_le_bytes()); // snaplen
    v.extend(101u32.to_le_bytes()); // LINKTYPE_RAW
    for i in 0..n {
        v.extend(i.to_le_bytes()); // ts seconds
        v.extend(0u32.to_le_bytes()); // ts microseconds
        v.extend(128u32.to_le_bytes()); // caplen
        v.extend(128u32.to_le_bytes()); // orig len
        v.extend([0x45, 0, 0, 128, 0, 0, 0, 0, 64, 17, 0, 0]); // IPv4, length 128, UDP
        v.extend([10, 0, 0, 1, 10, 0, 0, 2]); // addresses
        v.extend(40000u16.to_be_bytes()); // source port
        v.extend(9999u16.to_be_bytes()); // destination port
        v.extend([0, 108, 0, 0]); // UDP length, checksum
        v.extend([0u8; 100]); // payload
    }
    v
}

#[test]
fn a_capture_truncated_while_dissected_never_kills_the_sensor() {
    let dir = std::env::temp_dir().join(format!("otsensor-rotating-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rotating.pcap");
    let bytes = big_pcap(200_000);
    // Cut at once, soon, and late: before, during and after the sensor reads the file.
    for delay_ms in [0u64, 5, 20, 80, 300] {
        std::fs::write(&path, &bytes).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_otsensor"))
            .args(["dissect", "--format", "none", "--no-progress", "-q"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // Cut in the middle of record 1001 (it starts at 24 + 1000 * 144).
        OpenOptions::new().write(true).open(&path).unwrap().set_len(24 + 1000 * 144 + 50).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), None, "killed by a signal after {delay_ms} ms: {stderr}");
        if !out.status.success() {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            // The file is read a block at a time, so where it ends depends on where the reader
            // was when it was cut: before record 1001 (the reader stops in it), or past it
            // (the reader had read on, and the file ends under it at the next read). Either
            // way the error names a packet and the byte offset where its record starts, the
            // two consistent, and the record cut short.
            let prefix = format!("{}: packet ", path.display());
            let line = stderr.lines().find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest));
            let line = line.unwrap_or_else(|| panic!("after {delay_ms} ms: no located error: {stderr}"));
            let (pkt, rest) = line.split_once(" at byte offset ").unwrap_or_else(|| panic!("{line}"));
            let (offset, what) = rest.split_once(": ").unwrap_or_else(|| panic!("{line}"));
            let (pkt, offset): (u64, u64) = (pkt.parse().unwrap(), offset.parse().unwrap());
            assert!(pkt >= 1001, "after {delay_ms} ms: {line}");
            assert_eq!(offset, 24 + (pkt - 1) * 144, "after {delay_ms} ms: {line}");
            assert!(what.starts_with("truncated record: needs 144 bytes, "), "after {delay_ms} ms: {line}");
            if pkt == 1001 {
                assert!(what.ends_with(", 50 left in the file"), "after {delay_ms} ms: {line}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
