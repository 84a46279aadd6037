//! The IT traffic of a plant capture: hosts on the plant network asking a DNS server and an
//! NTP server, and now and then a SYN to a Windows file share (SMB, port 445) answered with
//! RST: what a sensor on an OT network sees beside the industrial protocols, and must
//! follow as conversations without dissecting.

use std::io;

use super::{udp_frame, Conn, Frames, Rng, Side, ACK, RST, SYN};

/// IT workstations on the plant network.
const HOSTS: u64 = 16;

/// The state of the IT traffic: DNS transaction ids.
#[derive(Default)]
pub(super) struct It {
    dns_id: u16,
}

fn host(i: u64) -> ([u8; 6], [u8; 4]) {
    ([0x02, 0, 0, 0, 3, i as u8], [10, 3, 0, 10 + i as u8])
}

const DNS_SERVER: ([u8; 6], [u8; 4]) = ([0x02, 0, 0, 0, 4, 1], [10, 3, 1, 53]);
const NTP_SERVER: ([u8; 6], [u8; 4]) = ([0x02, 0, 0, 0, 4, 2], [10, 3, 1, 123]);
const FILE_SERVER: ([u8; 6], [u8; 4]) = ([0x02, 0, 0, 0, 4, 3], [10, 3, 1, 45]);

impl It {
    /// Writes one piece of IT traffic at `t`: a DNS query and its answer, an NTP exchange,
    /// or a SYN to SMB answered with RST.
    pub(super) fn next<F: Frames>(&mut self, w: &mut F, t: u64, rng: &mut Rng, buf: &mut Vec<u8>) -> io::Result<()> {
        let (mac, ip) = host(rng.below(HOSTS));
        let port = 49152 + rng.below(16000) as u16;
        match rng.below(3) {
            0 => {
                self.dns_id = self.dns_id.wrapping_add(1);
                let mut q = Vec::with_capacity(64);
                q.extend_from_slice(&self.dns_id.to_be_bytes());
                q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, 1 question
                q.extend_from_slice(b"\x08historian\x05plant\x05local\x00\x00\x01\x00\x01"); // A IN
                udp_frame((&mac, ip, port), (&DNS_SERVER.0, DNS_SERVER.1, 53), &q, buf);
                w.frame(t, buf)?;
                let mut a = q.clone();
                a[2] = 0x81; // QR, RD
                a[3] = 0x80; // RA
                a[7] = 1; // 1 answer
                a.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 10, 3, 1, 80]);
                udp_frame((&DNS_SERVER.0, DNS_SERVER.1, 53), (&mac, ip, port), &a, buf);
                w.frame(t + 400, buf)
            }
            1 => {
                let mut q = [0u8; 48];
                q[0] = 0x23; // NTPv4, client
                udp_frame((&mac, ip, 123), (&NTP_SERVER.0, NTP_SERVER.1, 123), &q, buf);
                w.frame(t, buf)?;
                q[0] = 0x24; // NTPv4, server
                q[1] = 2; // stratum
                udp_frame((&NTP_SERVER.0, NTP_SERVER.1, 123), (&mac, ip, 123), &q, buf);
                w.frame(t + 300, buf)
            }
            _ => {
                let c = Side { mac, ip, port, seq: rng.next_u64() as u32, ts_val: 0 };
                let s = Side { mac: FILE_SERVER.0, ip: FILE_SERVER.1, port: 445, seq: 0, ts_val: 0 };
                let mut conn = Conn { c, s, ip_id: 0 };
                conn.frame(true, SYN, &[], t, buf);
                w.frame(t, buf)?;
                conn.s.seq = 0;
                conn.frame(false, RST | ACK, &[], t + 150, buf);
                w.frame(t + 150, buf)
            }
        }
    }
}
