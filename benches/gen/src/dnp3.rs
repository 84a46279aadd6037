//! DNP3 over TCP (IEEE 1815-2012): a master (link address 1) polling an outstation the way a
//! SCADA front end does: an integrity poll (class 0) now and then, event polls (classes 1-3)
//! in between whose responses ask for an application confirm, and rarely a select/operate
//! pair on a control relay output block. Responses of more than one link frame are cut into
//! transport segments, so the generator exercises reassembly as real outstations do.

use otsensor_dissectors::dnp3::link::{build_frame, MAX_USER_DATA};

use super::{Exchange, Model, Rng};

/// Link address of the master.
const MASTER: u16 = 1;
/// Application bytes per transport segment (a full link frame).
const SEGMENT: usize = MAX_USER_DATA - 1;

/// One master polling one outstation.
#[derive(Clone, Debug)]
pub struct Polling {
    outstation: u16,
    app_seq: u8,
    tp_seq: [u8; 2],
    polls: u32,
    binaries: Vec<bool>,
    analogs: Vec<i32>,
    counters: Vec<u32>,
    /// A select was sent; the operate of the same CROB follows.
    pending_operate: Option<(u16, u8)>,
    /// Sequence of a response that asked for a confirm; it goes out before the next request.
    confirm: Option<u8>,
}

impl Polling {
    /// The polling of device number `device`.
    pub fn new(device: u32, rng: &mut Rng) -> Self {
        let nb = 8 + rng.below(24) as usize;
        let na = 4 + rng.below(40) as usize;
        let nc = 2 + rng.below(8) as usize;
        Polling {
            outstation: 10 + (device % 60000) as u16,
            app_seq: rng.below(16) as u8,
            tp_seq: [rng.below(64) as u8, rng.below(64) as u8],
            polls: 0,
            binaries: (0..nb).map(|_| rng.chance(0.5)).collect(),
            analogs: (0..na).map(|_| rng.below(20_000) as i32 - 10_000).collect(),
            counters: (0..nc).map(|_| rng.below(100_000) as u32).collect(),
            pending_operate: None,
            confirm: None,
        }
    }

    /// A SELECT (3) or OPERATE (4) of one CROB, appended to `ex.request`, and the
    /// outstation's echo (a response carrying the same object, IIN clear) as `ex.response`.
    fn control(&mut self, ex: &mut Exchange, ac: u8, func: u8, index: u16, code: u8) {
        let mut req = vec![ac, func];
        crob(&mut req, index, code);
        let f = self.frames(true, &req);
        ex.request.extend_from_slice(&f);
        req[1] = 129;
        req.splice(2..2, [0x00, 0x00]);
        ex.response = self.frames(false, &req);
    }

    /// Wraps an application fragment in transport segments and link frames.
    fn frames(&mut self, from_master: bool, app: &[u8]) -> Vec<u8> {
        let (control, dst, src, side) =
            if from_master { (0xC4, self.outstation, MASTER, 0) } else { (0x44, MASTER, self.outstation, 1) };
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = app.chunks(SEGMENT).collect();
        let last = chunks.len().saturating_sub(1);
        for (i, c) in chunks.iter().enumerate() {
            let seq = self.tp_seq[side];
            self.tp_seq[side] = (seq + 1) & 0x3F;
            let th = seq | if i == 0 { 0x40 } else { 0 } | if i == last { 0x80 } else { 0 };
            let mut user = Vec::with_capacity(c.len() + 1);
            user.push(th);
            user.extend_from_slice(c);
            build_frame(control, dst, src, &user, &mut out);
        }
        out
    }

    fn drift(&mut self, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
        let mut changed_b = Vec::new();
        let mut changed_a = Vec::new();
        for (i, b) in self.binaries.iter_mut().enumerate() {
            if rng.chance(0.01) {
                *b = !*b;
                changed_b.push(i);
            }
        }
        for (i, a) in self.analogs.iter_mut().enumerate() {
            if rng.chance(0.05) {
                *a += rng.below(21) as i32 - 10;
                changed_a.push(i);
            }
        }
        for c in &mut self.counters {
            *c = c.wrapping_add(rng.below(3) as u32);
        }
        (changed_b, changed_a)
    }
}

impl Model for Polling {
    fn port(&self) -> u16 {
        20000
    }

    fn next(&mut self, rng: &mut Rng) -> Exchange {
        self.polls += 1;
        let seq = self.app_seq;
        self.app_seq = (seq + 1) & 0x0F;
        let ac = 0xC0 | seq;
        let (changed_b, changed_a) = self.drift(rng);
        let mut ex = Exchange::default();
        // The confirm of the last response's events precedes this request on the wire.
        if let Some(s) = self.confirm.take() {
            ex.request = self.frames(true, &[0xC0 | s, 0]);
        }
        if let Some((index, code)) = self.pending_operate.take() {
            self.control(&mut ex, ac, 4, index, code);
            return ex;
        }
        if rng.chance(0.005) {
            // Select a relay; the operate follows on the next exchange.
            let index = rng.below(self.binaries.len() as u64) as u16;
            let code = if rng.chance(0.5) { 0x41 } else { 0x81 };
            self.pending_operate = Some((index, code));
            self.control(&mut ex, ac, 3, index, code);
            return ex;
        }
        let integrity = self.polls % 30 == 1;
        let mut req = vec![ac, 1];
        let classes: &[u8] = if integrity { &[2, 3, 4, 1] } else { &[2, 3, 4] };
        for &v in classes {
            req.extend_from_slice(&[60, v, 0x06]);
        }
        let f = self.frames(true, &req);
        ex.request.extend_from_slice(&f);
        let events = !changed_b.is_empty() || !changed_a.is_empty();
        // CON when events are reported: the master confirms them.
        let mut resp = vec![if events { ac | 0x20 } else { ac }, 129, 0x00, 0x00];
        if integrity {
            let nb = self.binaries.len();
            resp.extend_from_slice(&[1, 2, 0x00, 0, (nb - 1) as u8]);
            resp.extend(self.binaries.iter().map(|&b| 0x01 | if b { 0x80 } else { 0 }));
            let na = self.analogs.len();
            resp.extend_from_slice(&[30, 1, 0x00, 0, (na - 1) as u8]);
            for a in &self.analogs {
                resp.push(0x01);
                resp.extend_from_slice(&a.to_le_bytes());
            }
            let nc = self.counters.len();
            resp.extend_from_slice(&[20, 1, 0x00, 0, (nc - 1) as u8]);
            for c in &self.counters {
                resp.push(0x01);
                resp.extend_from_slice(&c.to_le_bytes());
            }
        }
        if !changed_b.is_empty() {
            resp.extend_from_slice(&[2, 1, 0x17, changed_b.len() as u8]);
            for &i in &changed_b {
                resp.push(i as u8);
                resp.push(0x01 | if self.binaries[i] { 0x80 } else { 0 });
            }
        }
        if !changed_a.is_empty() {
            resp.extend_from_slice(&[32, 1, 0x17, changed_a.len() as u8]);
            for &i in &changed_a {
                resp.push(i as u8);
                resp.push(0x01);
                resp.extend_from_slice(&self.analogs[i].to_le_bytes());
            }
        }
        ex.response = self.frames(false, &resp);
        if events {
            self.confirm = Some(seq);
        }
        ex
    }
}

/// A g12v1 CROB header and object (qualifier 0x28, one object).
fn crob(out: &mut Vec<u8>, index: u16, code: u8) {
    out.extend_from_slice(&[12, 1, 0x28, 1, 0]);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&[code, 1]);
    out.extend_from_slice(&100u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.push(0);
}

/// The model of one master-outstation conversation.
pub(crate) fn model(device: u32, rng: &mut Rng) -> Box<dyn Model> {
    Box::new(Polling::new(device, rng))
}
