//! Synthetic, realistic ICS captures for benchmarks: a few masters polling a few dozen
//! devices over long-lived TCP connections, with full handshakes, correct sequence and
//! acknowledgement numbers, IPv4 and TCP checksums and TCP timestamp options, so that
//! tshark, Suricata and Zeek parse the result as they would a real capture.
//!
//! Each protocol supplies a [`Model`] that makes the request/response pairs of one
//! master-device conversation; this module does the rest. Output is deterministic for a seed.

pub mod dnp3;
pub mod hostile;
mod it;
pub mod modbus;
pub mod s7;

use std::collections::BinaryHeap;
use std::io::{self, Write};

/// A small deterministic PRNG (SplitMix64): no dependency, same stream on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// One request/response exchange.
#[derive(Clone, Debug, Default)]
pub struct Exchange {
    /// Bytes the master sends (may hold several PDUs).
    pub request: Vec<u8>,
    /// Bytes the device answers (empty for none).
    pub response: Vec<u8>,
}

/// The application traffic of one master-device conversation.
pub trait Model {
    /// The device's TCP port.
    fn port(&self) -> u16;
    /// Bytes exchanged right after the TCP handshake (e.g. COTP connect and S7 setup).
    fn open(&mut self, _rng: &mut Rng) -> Vec<Exchange> {
        Vec::new()
    }
    /// The next polling exchange.
    fn next(&mut self, rng: &mut Rng) -> Exchange;
}

/// Which protocol a generated capture carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// Modbus/TCP.
    Modbus,
    /// DNP3 over TCP.
    Dnp3,
    /// S7comm.
    S7,
    /// A plant: Modbus, DNP3 and S7 devices side by side, connections that are closed and
    /// reopened now and then, and some IT traffic (DNS and NTP over UDP, SYNs to SMB).
    Plant,
}

impl Proto {
    /// Parses `modbus`, `dnp3` or `s7`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "modbus" => Some(Proto::Modbus),
            "dnp3" => Some(Proto::Dnp3),
            "s7" | "s7comm" => Some(Proto::S7),
            "plant" | "mixed" => Some(Proto::Plant),
            _ => None,
        }
    }

    fn model(self, device: u32, rng: &mut Rng) -> Box<dyn Model> {
        match self {
            Proto::Modbus => Box::new(modbus::Polling::new(device, rng)),
            Proto::Dnp3 => dnp3::model(device, rng),
            Proto::S7 => s7::model(device, rng),
            Proto::Plant => match device % 3 {
                0 => Box::new(modbus::Polling::new(device, rng)),
                1 => dnp3::model(device, rng),
                _ => s7::model(device, rng),
            },
        }
    }
}

/// Where generated frames go: a pcap file, or a mixer that interleaves other traffic.
pub trait Frames {
    /// Takes one Ethernet frame taken at `ts_us` microseconds since the epoch.
    fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()>;
    /// Frames taken so far (all of them, whoever made them: the plan stops on this count).
    fn packets(&self) -> u64;
}

impl<W: Write> Frames for PcapWriter<W> {
    fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        PcapWriter::frame(self, ts_us, frame)
    }
    fn packets(&self) -> u64 {
        self.packets
    }
}

/// A classic pcap writer (microsecond timestamps, Ethernet).
pub struct PcapWriter<W: Write> {
    out: W,
    /// Packets written.
    pub packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // magic, microseconds
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&[0; 8])?; // thiszone, sigfigs
        out.write_all(&65535u32.to_le_bytes())?; // snaplen
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapWriter { out, packets: 0 })
    }

    /// Writes one frame taken at `ts_us` microseconds since the epoch.
    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let len = frame.len() as u32;
        self.out.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(frame)?;
        self.packets += 1;
        Ok(())
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One side of a TCP connection.
#[derive(Clone, Copy, Debug)]
struct Side {
    mac: [u8; 6],
    ip: [u8; 4],
    port: u16,
    seq: u32,
    ts_val: u32,
}

/// A TCP connection between a master and a device, writing correct frames.
struct Conn {
    c: Side,
    s: Side,
    ip_id: u16,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

impl Conn {
    fn frame(&mut self, from_client: bool, flags: u8, payload: &[u8], ts_us: u64, buf: &mut Vec<u8>) {
        let (src, dst) = if from_client { (self.c, self.s) } else { (self.s, self.c) };
        buf.clear();
        buf.extend_from_slice(&dst.mac);
        buf.extend_from_slice(&src.mac);
        buf.extend_from_slice(&[0x08, 0x00]);
        let tcp_len = 32 + payload.len();
        let total = (20 + tcp_len) as u16;
        self.ip_id = self.ip_id.wrapping_add(1);
        let ip_start = buf.len();
        buf.extend_from_slice(&[0x45, 0x00]);
        buf.extend_from_slice(&total.to_be_bytes());
        buf.extend_from_slice(&self.ip_id.to_be_bytes());
        buf.extend_from_slice(&[0x40, 0x00, 64, 6, 0, 0]);
        buf.extend_from_slice(&src.ip);
        buf.extend_from_slice(&dst.ip);
        let ipsum = checksum_fold(checksum_add(0, &buf[ip_start..ip_start + 20]));
        buf[ip_start + 10..ip_start + 12].copy_from_slice(&ipsum.to_be_bytes());
        let tcp_start = buf.len();
        buf.extend_from_slice(&src.port.to_be_bytes());
        buf.extend_from_slice(&dst.port.to_be_bytes());
        buf.extend_from_slice(&src.seq.to_be_bytes());
        let ack = if flags & ACK != 0 { dst.seq } else { 0 };
        buf.extend_from_slice(&ack.to_be_bytes());
        buf.extend_from_slice(&[0x80, flags]); // data offset 8 words (timestamps option)
        buf.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]); // window 64240, checksum, urgent
        let ts_val = (ts_us / 1000) as u32;
        buf.extend_from_slice(&[1, 1, 8, 10]); // NOP, NOP, timestamps
        buf.extend_from_slice(&ts_val.to_be_bytes());
        buf.extend_from_slice(&dst.ts_val.to_be_bytes());
        buf.extend_from_slice(payload);
        let mut sum = checksum_add(0, &src.ip);
        sum = checksum_add(sum, &dst.ip);
        sum += 6 + tcp_len as u32;
        sum = checksum_add(sum, &buf[tcp_start..]);
        let tcpsum = checksum_fold(sum);
        buf[tcp_start + 16..tcp_start + 18].copy_from_slice(&tcpsum.to_be_bytes());
        let advance = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        let me = if from_client { &mut self.c } else { &mut self.s };
        me.seq = me.seq.wrapping_add(advance);
        me.ts_val = ts_val;
    }
}

/// Writes a UDP/IPv4 frame into `buf` (UDP checksum zero: allowed over IPv4).
fn udp_frame(src: (&[u8; 6], [u8; 4], u16), dst: (&[u8; 6], [u8; 4], u16), payload: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(dst.0);
    buf.extend_from_slice(src.0);
    buf.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload.len()) as u16;
    let ip_start = buf.len();
    buf.extend_from_slice(&[0x45, 0x00]);
    buf.extend_from_slice(&total.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0x40, 0x00, 64, 17, 0, 0]);
    buf.extend_from_slice(&src.1);
    buf.extend_from_slice(&dst.1);
    let ipsum = checksum_fold(checksum_add(0, &buf[ip_start..ip_start + 20]));
    buf[ip_start + 10..ip_start + 12].copy_from_slice(&ipsum.to_be_bytes());
    buf.extend_from_slice(&src.2.to_be_bytes());
    buf.extend_from_slice(&dst.2.to_be_bytes());
    buf.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(payload);
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    at: std::cmp::Reverse<u64>,
    conv: usize,
}

struct Conversation {
    conn: Conn,
    model: Box<dyn Model>,
    period_us: u64,
    opened: bool,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Protocol.
    pub proto: Proto,
    /// Masters (HMIs, SCADA servers).
    pub masters: u32,
    /// Devices (PLCs, RTUs, outstations).
    pub devices: u32,
    /// Stop after about this many packets.
    pub packets: u64,
    /// Seed.
    pub seed: u64,
    /// Start time, microseconds since the epoch.
    pub start_us: u64,
}

/// Generates the capture `plan` describes into `out`; returns the packets written.
pub fn generate<W: Write>(plan: &Plan, out: W) -> io::Result<u64> {
    let mut w = PcapWriter::new(out)?;
    generate_into(plan, &mut w)?;
    let n = w.packets;
    w.finish()?;
    Ok(n)
}

/// A plant connection is closed and reopened from a new port after this many exchanges on
/// average (an HMI restarting, a device rebooting): reconnects are part of a real plant.
const PLANT_RECONNECT_EVERY: u64 = 2_000;
/// In a plant capture, one exchange in this many is accompanied by IT traffic.
const PLANT_IT_EVERY: u64 = 20;

/// Generates the traffic `plan` describes into `w`, until it holds `plan.packets` frames.
pub fn generate_into<F: Frames>(plan: &Plan, w: &mut F) -> io::Result<()> {
    let mut rng = Rng::new(plan.seed);
    let plant = plan.proto == Proto::Plant;
    let mut convs = Vec::new();
    for m in 0..plan.masters {
        for d in 0..plan.devices {
            // Each device is polled by one master, and every master by a few devices.
            if d % plan.masters != m {
                continue;
            }
            let model = plan.proto.model(d, &mut rng);
            let c = Side {
                mac: [0x02, 0, 0, 0, 1, m as u8],
                ip: [10, 1, 0, 10 + m as u8],
                port: 40000 + (rng.below(20000) as u16),
                seq: rng.next_u64() as u32,
                ts_val: 0,
            };
            let s = Side {
                mac: [0x02, 0, 0, 0, 2, d as u8],
                ip: [10, 2, (d / 250) as u8, (d % 250) as u8 + 2],
                port: model.port(),
                seq: rng.next_u64() as u32,
                ts_val: 0,
            };
            // Polling periods between 100 ms and 2 s, as SCADA scan classes are.
            let period_us = [100_000, 250_000, 500_000, 1_000_000, 2_000_000][rng.below(5) as usize];
            convs.push(Conversation {
                conn: Conn { c, s, ip_id: rng.next_u64() as u16 },
                model,
                period_us,
                opened: false,
            });
        }
    }
    let mut heap = BinaryHeap::new();
    for (i, c) in convs.iter().enumerate() {
        let at = plan.start_us + rng.below(c.period_us);
        heap.push(Due { at: std::cmp::Reverse(at), conv: i });
    }
    let mut buf = Vec::with_capacity(2048);
    let mut it = it::It::default();
    while w.packets() < plan.packets {
        let Some(Due { at: std::cmp::Reverse(t), conv }) = heap.pop() else { break };
        let c = &mut convs[conv];
        let mut t = t;
        if !c.opened {
            c.opened = true;
            c.conn.frame(true, SYN, &[], t, &mut buf);
            w.frame(t, &buf)?;
            t += 300;
            // (The three frames of the handshake are the opening of every connection.)
            c.conn.frame(false, SYN | ACK, &[], t, &mut buf);
            w.frame(t, &buf)?;
            t += 50;
            c.conn.frame(true, ACK, &[], t, &mut buf);
            w.frame(t, &buf)?;
            for ex in c.model.open(&mut rng) {
                t = exchange(w, &mut c.conn, &ex, t, &mut rng, &mut buf)?;
            }
        } else if plant && rng.below(PLANT_RECONNECT_EVERY) == 0 {
            // Close; the next turn opens again from a new ephemeral port.
            close(w, &mut c.conn, t, &mut buf)?;
            c.conn.c.port = 40000 + (rng.below(20000) as u16);
            c.conn.c.seq = rng.next_u64() as u32;
            c.conn.s.seq = rng.next_u64() as u32;
            c.opened = false;
        } else {
            let ex = c.model.next(&mut rng);
            exchange(w, &mut c.conn, &ex, t, &mut rng, &mut buf)?;
        }
        if plant && rng.below(PLANT_IT_EVERY) == 0 {
            it.next(w, t + 10, &mut rng, &mut buf)?;
        }
        // Scan-cycle jitter of up to 2 % around the period.
        let jitter = rng.below(c.period_us / 25 + 1);
        let next = t + c.period_us - c.period_us / 50 + jitter;
        heap.push(Due { at: std::cmp::Reverse(next), conv });
    }
    // Close every connection that was opened.
    let end = heap.iter().map(|d| d.at.0).max().unwrap_or(plan.start_us);
    for c in convs.iter_mut().filter(|c| c.opened) {
        close(w, &mut c.conn, end, &mut buf)?;
    }
    Ok(())
}

/// Closes a connection: FIN from the master, FIN from the device, the last ACK.
fn close<F: Frames>(w: &mut F, conn: &mut Conn, t: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    conn.frame(true, FIN | ACK, &[], t, buf);
    w.frame(t, buf)?;
    conn.frame(false, FIN | ACK, &[], t + 200, buf);
    w.frame(t + 200, buf)?;
    conn.frame(true, ACK, &[], t + 300, buf);
    w.frame(t + 300, buf)
}

/// Writes one request, its response after a device-like delay, and the master's ACK.
fn exchange<F: Frames>(
    w: &mut F,
    conn: &mut Conn,
    ex: &Exchange,
    t: u64,
    rng: &mut Rng,
    buf: &mut Vec<u8>,
) -> io::Result<u64> {
    conn.frame(true, PSH | ACK, &ex.request, t, buf);
    w.frame(t, buf)?;
    let mut t = t;
    if !ex.response.is_empty() {
        t += 800 + rng.below(4000);
        conn.frame(false, PSH | ACK, &ex.response, t, buf);
        w.frame(t, buf)?;
    }
    t += 100 + rng.below(200);
    conn.frame(true, ACK, &[], t, buf);
    w.frame(t, buf)?;
    Ok(t)
}
