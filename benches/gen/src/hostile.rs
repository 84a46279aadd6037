//! Hostile and heavy loads for the flow table: floods of new flows interleaved with a
//! plant's legitimate polling, and many concurrent long-lived connections. Deterministic for
//! a seed, like the rest of [`crate`].
//!
//! - **SYN flood**: every SYN from a new spoofed source (a flood or a scan): one flow each,
//!   that never carries data.
//! - **Mid-stream flood**: one segment of Modbus data from each new spoofed source, at a
//!   random sequence number: the costliest kind, since each flow is identified, dissected and
//!   reassembled from its first packet.
//! - **Half-open**: a SYN from a spoofed source and the device's SYN-ACK, never completed.
//! - **Long-lived**: `flows` connections opened once and polled round after round, so that
//!   all of them are tracked at once (the memory held per tracked flow).

use std::io;

use super::{generate_into, Conn, Frames, Plan, Rng, Side, ACK, PSH, SYN};

/// The kind of flood of new flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    /// SYN only, each from a new source.
    Syn,
    /// A data segment from each new source, with no handshake.
    Midstream,
    /// SYN from a new source and the device's SYN-ACK.
    HalfOpen,
}

impl Flood {
    /// Parses `syn-flood`, `midstream-flood` or `half-open`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "syn-flood" => Some(Flood::Syn),
            "midstream-flood" => Some(Flood::Midstream),
            "half-open" => Some(Flood::HalfOpen),
            _ => None,
        }
    }
}

/// Devices the flood is aimed at: the first of the plant's (same addresses as
/// [`crate::generate`] gives them), on the Modbus port.
const TARGETS: u32 = 40;

/// The spoofed source of the `n`th flood flow: distinct for the first 2^22 flows
/// (100.64.0.0/10, the shared address space, never a plant address).
fn spoofed(n: u64, rng: &mut Rng) -> Side {
    let ip = [100, 64 | ((n >> 16) & 63) as u8, (n >> 8) as u8, n as u8];
    Side { mac: [0x02, 0, 0, 0, 9, 9], ip, port: 1024 + rng.below(64000) as u16, seq: rng.next_u64() as u32, ts_val: 0 }
}

fn target(n: u64) -> Side {
    let d = (n % u64::from(TARGETS)) as u32;
    Side {
        mac: [0x02, 0, 0, 0, 2, d as u8],
        ip: [10, 2, (d / 250) as u8, (d % 250) as u8 + 2],
        port: 502,
        seq: 0,
        ts_val: 0,
    }
}

/// A Modbus/TCP read of holding registers (FC3): `qty` registers from `addr`.
fn modbus_read(tid: u16, unit: u8, addr: u16, qty: u16) -> [u8; 12] {
    let [t0, t1] = tid.to_be_bytes();
    let [a0, a1] = addr.to_be_bytes();
    let [q0, q1] = qty.to_be_bytes();
    [t0, t1, 0, 0, 0, 6, unit, 3, a0, a1, q0, q1]
}

/// Writes every frame it takes, each followed by `per_legit` frames of a flood, so that
/// the legitimate traffic and the flood share one capture at a fixed ratio.
pub struct Mixer<'w, F: Frames> {
    inner: &'w mut F,
    flood: Flood,
    per_legit: u32,
    rng: Rng,
    flows: u64,
    buf: Vec<u8>,
}

impl<F: Frames> Frames for Mixer<'_, F> {
    fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        self.inner.frame(ts_us, frame)?;
        let mut sent = 0;
        while sent < self.per_legit {
            let n = self.flows;
            self.flows += 1;
            let mut conn = Conn { c: spoofed(n, &mut self.rng), s: target(n), ip_id: n as u16 };
            match self.flood {
                Flood::Syn => {
                    conn.frame(true, SYN, &[], ts_us, &mut self.buf);
                    self.inner.frame(ts_us, &self.buf)?;
                    sent += 1;
                }
                Flood::Midstream => {
                    let req = modbus_read(n as u16, 1, 0, 10);
                    conn.frame(true, PSH | ACK, &req, ts_us, &mut self.buf);
                    self.inner.frame(ts_us, &self.buf)?;
                    sent += 1;
                }
                Flood::HalfOpen => {
                    conn.s.seq = self.rng.next_u64() as u32;
                    conn.frame(true, SYN, &[], ts_us, &mut self.buf);
                    self.inner.frame(ts_us, &self.buf)?;
                    conn.frame(false, SYN | ACK, &[], ts_us + 100, &mut self.buf);
                    self.inner.frame(ts_us + 100, &self.buf)?;
                    sent += 2;
                }
            }
        }
        Ok(())
    }
    fn packets(&self) -> u64 {
        self.inner.packets()
    }
}

/// Generates `plan`'s legitimate traffic with `per_legit` frames of `flood` after each of its
/// frames, into `w`, until it holds `plan.packets` frames; returns the flood's flows.
pub fn flood_into<F: Frames>(plan: &Plan, flood: Flood, per_legit: u32, w: &mut F) -> io::Result<u64> {
    let mut m = Mixer {
        inner: w,
        flood,
        per_legit,
        rng: Rng::new(plan.seed ^ 0x5eed_f100d),
        flows: 0,
        buf: Vec::with_capacity(256),
    };
    generate_into(plan, &mut m)?;
    Ok(m.flows)
}

/// Microseconds between two polls of one long-lived connection.
const ROUND_US: u64 = 1_000_000;

/// Generates `flows` Modbus connections (up to 2^20), each opened with a handshake and then
/// polled once a round (request and response), until `packets` frames (at least the
/// handshakes) are written to `w`.
pub fn long_lived_into<F: Frames>(flows: u32, packets: u64, seed: u64, start_us: u64, w: &mut F) -> io::Result<()> {
    let flows = flows.clamp(1, 1 << 20);
    let mut rng = Rng::new(seed);
    let mut conns: Vec<Conn> = (0..flows)
        .map(|i| {
            let c = Side {
                mac: [0x02, 0, 0, 0, 1, 0],
                ip: [10, 128 | (i >> 16) as u8, (i >> 8) as u8, i as u8],
                port: 40000 + (i % 20000) as u16,
                seq: rng.next_u64() as u32,
                ts_val: 0,
            };
            let mut s = target(u64::from(i));
            s.seq = rng.next_u64() as u32;
            Conn { c, s, ip_id: 0 }
        })
        .collect();
    let mut buf = Vec::with_capacity(256);
    let step = (ROUND_US / u64::from(flows)).max(1);
    let mut round = 0u64;
    loop {
        for (i, conn) in conns.iter_mut().enumerate() {
            let t = start_us + round * ROUND_US + i as u64 * step;
            if round == 0 {
                conn.frame(true, SYN, &[], t, &mut buf);
                w.frame(t, &buf)?;
                conn.frame(false, SYN | ACK, &[], t, &mut buf);
                w.frame(t, &buf)?;
                conn.frame(true, ACK, &[], t, &mut buf);
                w.frame(t, &buf)?;
                continue;
            }
            if w.packets() >= packets {
                return Ok(());
            }
            let tid = round as u16;
            let unit = (i % 247) as u8 + 1;
            conn.frame(true, PSH | ACK, &modbus_read(tid, unit, 0, 2), t, &mut buf);
            w.frame(t, &buf)?;
            let [t0, t1] = tid.to_be_bytes();
            let v = (round as u16).to_be_bytes();
            let resp = [t0, t1, 0, 0, 0, 7, unit, 3, 4, 0, 1, v[0], v[1]];
            conn.frame(false, PSH | ACK, &resp, t + 1, &mut buf);
            w.frame(t + 1, &buf)?;
        }
        if w.packets() >= packets {
            return Ok(());
        }
        round += 1;
    }
}

/// Out-of-order conversations kept going at once by [`hostile_into`]: each holds up to the
/// reassembler's per-direction queue bound (32 segments, 64 KiB), so together they hold far
/// more than a per-flow bound alone would allow; only a global reassembly budget keeps them
/// under a memory cap.
const OOO_FLOWS: u32 = 1024;
/// Payload of each out-of-order segment.
const OOO_PAYLOAD: usize = 1400;
/// Bytes left unsent before every out-of-order segment: each one arrives ahead of a hole.
const OOO_HOLE: u32 = 100;
/// Conversations carrying DNP3 fragments that never finish.
const DNP3_FLOWS: u32 = 64;

/// What [`hostile_into`] mixes into the plant's polling, after the clean learning period.
#[derive(Clone, Debug)]
pub struct HostileMix {
    /// Hostile frames written after each legitimate frame.
    pub per_legit: u32,
    /// Microseconds of clean traffic from the start of the capture (a learning period).
    pub clean_us: u64,
    /// Distinct hostile flows to reach; the mix stops (the plant goes on) once reached.
    pub flows: u64,
}

/// What [`hostile_into`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostileReport {
    /// Frames of the plant's own traffic.
    pub legit_frames: u64,
    /// Distinct flows the hostile traffic opened (each spoofed source, port pair and kind).
    pub flows: u64,
    /// SYNs from new spoofed sources.
    pub syn: u64,
    /// Modbus requests from new spoofed sources, mid-stream.
    pub midstream: u64,
    /// Out-of-order segments that never get their hole filled.
    pub out_of_order: u64,
    /// Segments contradicting or overlapping bytes already sent (three frames a flow).
    pub overlapping: u64,
    /// DNP3 link frames of fragments that never finish.
    pub dnp3_unfinished: u64,
    /// S7 read jobs claiming 255 items.
    pub s7_absurd: u64,
    /// Modbus requests with MBAP length 0 or 65535.
    pub modbus_bad_length: u64,
    /// ARP requests of the storm.
    pub arp: u64,
    /// Packet number (1-based) of the attack's write request, 0 if it was not written.
    pub attack_pkt: u64,
}

/// The new master of the attack: an address the plant never used.
pub const ATTACK_MASTER: [u8; 4] = [10, 1, 0, 66];

/// Writes every frame it takes and, once the clean period is over, `per_legit` hostile frames
/// after each.
struct HostileMixer<'w, F: Frames> {
    inner: &'w mut F,
    mix: HostileMix,
    start_us: Option<u64>,
    rng: Rng,
    report: HostileReport,
    next_spoofed: u64,
    ooo: Vec<(Conn, u32)>,
    dnp3: Vec<(Conn, u8)>,
    buf: Vec<u8>,
    payload: Vec<u8>,
    attacked: bool,
}

impl<F: Frames> HostileMixer<'_, F> {
    fn write(&mut self, ts_us: u64) -> io::Result<()> {
        self.inner.frame(ts_us, &self.buf)
    }

    fn new_spoofed(&mut self, port: u16, dst: Side) -> Conn {
        let n = self.next_spoofed;
        self.next_spoofed += 1;
        self.report.flows += 1;
        let mut s = dst;
        s.port = port;
        Conn { c: spoofed(n, &mut self.rng), s, ip_id: n as u16 }
    }

    /// One piece of hostile traffic; returns the frames written.
    fn one(&mut self, t: u64) -> io::Result<u32> {
        let n = self.next_spoofed;
        let kind = self.rng.below(100);
        match kind {
            // SYN flood.
            0..=49 => {
                let mut c = self.new_spoofed(502, target(n));
                c.frame(true, SYN, &[], t, &mut self.buf);
                self.report.syn += 1;
            }
            // Mid-stream Modbus from new sources.
            50..=71 => {
                let mut c = self.new_spoofed(502, target(n));
                c.frame(true, PSH | ACK, &modbus_read(n as u16, 1, 0, 10), t, &mut self.buf);
                self.report.midstream += 1;
            }
            // ARP storm: requests from random MACs for addresses nobody owns.
            72..=79 => {
                let r = self.rng.next_u64().to_be_bytes();
                let mac = [0x02, 0xa7, r[0], r[1], r[2], r[3]];
                arp_request(mac, [169, 254, r[4], r[5]], [169, 254, r[6], r[7]], &mut self.buf);
                self.report.arp += 1;
            }
            // Endless out-of-order data.
            80..=83 => {
                let i = self.rng.below(u64::from(OOO_FLOWS)) as usize;
                if self.ooo.len() < OOO_FLOWS as usize && i >= self.ooo.len() {
                    // A new conversation: its first segment sets where its stream starts,
                    // and an answer makes it look like a real one (data both ways), which the
                    // flow table protects from a flood's evictions: only a budget over all
                    // flows bounds what such conversations hold.
                    let mut c = self.new_spoofed(502, target(n));
                    c.frame(true, PSH | ACK, &modbus_read(1, 1, 0, 1), t, &mut self.buf);
                    self.write(t)?;
                    c.frame(false, PSH | ACK, &[0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 7], t + 10, &mut self.buf);
                    self.write(t + 10)?;
                    self.ooo.push((c, 0));
                    return Ok(2);
                } else if let Some((c, k)) = {
                    let at = i % self.ooo.len().max(1);
                    self.ooo.get_mut(at)
                } {
                    let r = self.rng.next_u64();
                    for (j, b) in self.payload.iter_mut().enumerate() {
                        *b = (r >> (j % 8 * 8)) as u8 ^ j as u8;
                    }
                    let saved = c.c.seq;
                    c.c.seq = saved.wrapping_add(OOO_HOLE);
                    c.frame(true, PSH | ACK, &self.payload, t, &mut self.buf);
                    *k += 1;
                    self.report.out_of_order += 1;
                }
            }
            // Overlapping and contradictory segments: a read, the same bytes rewritten as a
            // write, and a segment straddling both with other bytes again.
            84..=88 => {
                let mut c = self.new_spoofed(502, target(n));
                let seq = c.c.seq;
                c.frame(true, PSH | ACK, &modbus_read(7, 1, 0, 4), t, &mut self.buf);
                self.write(t)?;
                c.c.seq = seq;
                c.frame(true, PSH | ACK, &[0, 7, 0, 0, 0, 6, 1, 6, 0, 0, 0xde, 0xad], t + 10, &mut self.buf);
                self.write(t + 10)?;
                c.c.seq = seq.wrapping_add(6);
                c.frame(true, PSH | ACK, &[1, 16, 0, 0, 0, 2, 4, 0xbe, 0xef, 0xca, 0xfe, 0], t + 20, &mut self.buf);
                self.report.overlapping += 1;
                self.write(t + 20)?;
                return Ok(3);
            }
            // DNP3 fragments that never finish: first segment, then middle ones forever.
            89..=92 => {
                let i = self.rng.below(u64::from(DNP3_FLOWS)) as usize;
                if i >= self.dnp3.len() {
                    let mut d = target(1);
                    d.mac[5] = 1;
                    d.ip = [10, 2, 0, 3];
                    let c = self.new_spoofed(20000, d);
                    self.dnp3.push((c, 0));
                }
                let idx = i.min(self.dnp3.len() - 1);
                let Some((c, seq)) = self.dnp3.get_mut(idx) else { return Ok(0) };
                // Transport header: FIR on the first segment only, never FIN.
                let th = (if *seq == 0 { 0x40 } else { 0 }) | (*seq & 0x3f);
                *seq = seq.wrapping_add(1);
                let mut user = vec![th];
                user.extend((0..200u8).map(|b| b ^ th));
                let mut link = Vec::with_capacity(300);
                otsensor_dissectors::dnp3::link::build_frame(0xc4, 10, 1, &user, &mut link);
                c.frame(true, PSH | ACK, &link, t, &mut self.buf);
                self.report.dnp3_unfinished += 1;
            }
            // S7 read jobs that claim 255 items and carry one.
            93..=96 => {
                let mut d = target(2);
                d.ip = [10, 2, 0, 4];
                let mut c = self.new_spoofed(102, d);
                let item = [0x12, 0x0a, 0x10, 0x02, 0x00, 0x01, 0x00, 0x01, 0x84, 0x00, 0x00, 0x00];
                let mut s7 = vec![0x32, 0x01, 0, 0, 0, 1, 0, 14, 0, 0, 0x04, 0xff];
                s7.extend_from_slice(&item);
                let len = (s7.len() + 7) as u16;
                let mut pdu = vec![3, 0];
                pdu.extend_from_slice(&len.to_be_bytes());
                pdu.extend_from_slice(&[0x02, 0xf0, 0x80]);
                pdu.extend_from_slice(&s7);
                c.frame(true, PSH | ACK, &pdu, t, &mut self.buf);
                self.report.s7_absurd += 1;
            }
            // Modbus MBAP lengths of 0 and 65535.
            _ => {
                let mut c = self.new_spoofed(502, target(n));
                let len: u16 = if n % 2 == 0 { 0 } else { 0xffff };
                let [l0, l1] = len.to_be_bytes();
                c.frame(true, PSH | ACK, &[0, 9, 0, 0, l0, l1, 1, 3, 0, 0, 0, 1], t, &mut self.buf);
                self.report.modbus_bad_length += 1;
            }
        }
        self.write(t)?;
        Ok(1)
    }

    /// The attack: a master never seen before connects to the first device and writes a
    /// holding register.
    fn attack(&mut self, t: u64) -> io::Result<()> {
        let c = Side { mac: [0x02, 0, 0, 0, 1, 0x66], ip: ATTACK_MASTER, port: 51515, seq: 0x1000, ts_val: 0 };
        let mut s = target(0);
        s.seq = 0x9000;
        let mut conn = Conn { c, s, ip_id: 1 };
        conn.frame(true, SYN, &[], t, &mut self.buf);
        self.write(t)?;
        conn.frame(false, SYN | ACK, &[], t + 200, &mut self.buf);
        self.write(t + 200)?;
        conn.frame(true, ACK, &[], t + 300, &mut self.buf);
        self.write(t + 300)?;
        // Write Single Register (FC6): register 10 := 0x04d2.
        let req = [0x00, 0x01, 0, 0, 0, 6, 1, 6, 0x00, 0x0a, 0x04, 0xd2];
        conn.frame(true, PSH | ACK, &req, t + 400, &mut self.buf);
        self.write(t + 400)?;
        self.report.attack_pkt = self.inner.packets();
        conn.frame(false, PSH | ACK, &req, t + 1400, &mut self.buf);
        self.write(t + 1400)?;
        conn.frame(true, ACK, &[], t + 1500, &mut self.buf);
        self.write(t + 1500)
    }
}

impl<F: Frames> Frames for HostileMixer<'_, F> {
    fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        self.inner.frame(ts_us, frame)?;
        self.report.legit_frames += 1;
        let start = *self.start_us.get_or_insert(ts_us);
        if ts_us < start.saturating_add(self.mix.clean_us) || self.report.flows >= self.mix.flows {
            return Ok(());
        }
        if !self.attacked && self.report.flows >= self.mix.flows / 2 {
            self.attacked = true;
            self.attack(ts_us + 1)?;
        }
        let mut sent = 0;
        while sent < self.mix.per_legit {
            sent += self.one(ts_us)?.max(1);
        }
        Ok(())
    }
    fn packets(&self) -> u64 {
        self.inner.packets()
    }
}

/// Writes an ARP request (broadcast) from `mac`/`ip` asking for `target`.
fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0xff; 6]);
    buf.extend_from_slice(&mac);
    buf.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]); // ARP, Ethernet/IPv4, request
    buf.extend_from_slice(&mac);
    buf.extend_from_slice(&ip);
    buf.extend_from_slice(&[0; 6]);
    buf.extend_from_slice(&target);
    buf.resize(60, 0); // padded to the Ethernet minimum
}

/// Generates `plan`'s legitimate traffic (use [`crate::Proto::Plant`]: Modbus, DNP3, S7 and
/// IT) with, after `mix.clean_us` of clean traffic, `mix.per_legit` hostile frames after each
/// legitimate frame until `mix.flows` hostile flows were opened: SYN floods, Modbus mid-stream
/// from new sources, endless out-of-order data, overlapping and contradictory segments, DNP3
/// fragments that never finish, S7 jobs with absurd item counts, Modbus lengths of 0 and
/// 65535, an ARP storm; and, halfway through, one attack: a Modbus write from a master never
/// seen before ([`ATTACK_MASTER`]) to the first device. Stops at `plan.packets` frames.
pub fn hostile_into<F: Frames>(plan: &Plan, mix: &HostileMix, w: &mut F) -> io::Result<HostileReport> {
    let mut m = HostileMixer {
        inner: w,
        mix: mix.clone(),
        start_us: None,
        rng: Rng::new(plan.seed ^ 0x0b57_11e5),
        report: HostileReport::default(),
        next_spoofed: 0,
        ooo: Vec::with_capacity(OOO_FLOWS as usize),
        dnp3: Vec::new(),
        buf: Vec::with_capacity(2048),
        payload: vec![0; OOO_PAYLOAD],
        attacked: false,
    };
    generate_into(plan, &mut m)?;
    Ok(m.report)
}
