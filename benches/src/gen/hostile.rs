//! Hostile and heavy loads for the flow table: floods of new flows interleaved with a
//! plant's legitimate polling, and many concurrent long-lived connections. Deterministic for
//! a seed, like the rest of [`crate::gen`].
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
/// [`crate::gen::generate`] gives them), on the Modbus port.
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
