//! Modbus/TCP polling: FC3 and FC4 reads of a device's register map, with slowly drifting
//! process values, and now and then an FC6 or FC16 setpoint write, as an HMI does.

use super::{Exchange, Model, Rng};

/// One master polling one device.
#[derive(Clone, Debug)]
pub struct Polling {
    tid: u16,
    unit: u8,
    blocks: Vec<(u8, u16, u16)>,
    next_block: usize,
    values: Vec<u16>,
}

impl Polling {
    /// The polling of device number `device`.
    pub fn new(device: u32, rng: &mut Rng) -> Self {
        let unit = (device % 247) as u8 + 1;
        // Two to four register blocks per device, input and holding registers.
        let n = 2 + rng.below(3) as usize;
        let blocks = (0..n)
            .map(|i| {
                let func = if i % 2 == 0 { 3 } else { 4 };
                let start = (rng.below(40) * 10) as u16;
                let qty = 4 + rng.below(28) as u16;
                (func, start, qty)
            })
            .collect();
        let values = (0..64).map(|_| rng.below(1000) as u16).collect();
        Polling { tid: rng.next_u64() as u16, unit, blocks, next_block: 0, values }
    }
}

fn mbap(out: &mut Vec<u8>, tid: u16, unit: u8, pdu_len: usize) {
    out.extend_from_slice(&tid.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&((pdu_len + 1) as u16).to_be_bytes());
    out.push(unit);
}

impl Model for Polling {
    fn port(&self) -> u16 {
        502
    }

    fn next(&mut self, rng: &mut Rng) -> Exchange {
        self.tid = self.tid.wrapping_add(1);
        let (tid, unit) = (self.tid, self.unit);
        let mut ex = Exchange::default();
        if rng.chance(0.01) {
            // A setpoint write: FC6, or FC16 of two registers.
            let addr = 100 + rng.below(10) as u16;
            let v = 500 + rng.below(100) as u16;
            if rng.chance(0.5) {
                mbap(&mut ex.request, tid, unit, 5);
                ex.request.push(6);
                ex.request.extend_from_slice(&addr.to_be_bytes());
                ex.request.extend_from_slice(&v.to_be_bytes());
                ex.response = ex.request.clone();
            } else {
                mbap(&mut ex.request, tid, unit, 10);
                ex.request.extend_from_slice(&[16]);
                ex.request.extend_from_slice(&addr.to_be_bytes());
                ex.request.extend_from_slice(&[0, 2, 4]);
                ex.request.extend_from_slice(&v.to_be_bytes());
                ex.request.extend_from_slice(&(v + 1).to_be_bytes());
                mbap(&mut ex.response, tid, unit, 5);
                ex.response.extend_from_slice(&[16]);
                ex.response.extend_from_slice(&addr.to_be_bytes());
                ex.response.extend_from_slice(&[0, 2]);
            }
            return ex;
        }
        let (func, start, qty) = self.blocks[self.next_block % self.blocks.len()];
        self.next_block += 1;
        mbap(&mut ex.request, tid, unit, 5);
        ex.request.push(func);
        ex.request.extend_from_slice(&start.to_be_bytes());
        ex.request.extend_from_slice(&qty.to_be_bytes());
        mbap(&mut ex.response, tid, unit, 2 + 2 * usize::from(qty));
        ex.response.push(func);
        ex.response.push((2 * qty) as u8);
        for i in 0..usize::from(qty) {
            let slot = (usize::from(start) + i) % self.values.len();
            // Process values drift by a step now and then.
            if rng.chance(0.05) {
                self.values[slot] = self.values[slot].wrapping_add(rng.below(3) as u16).wrapping_sub(1);
            }
            ex.response.extend_from_slice(&self.values[slot].to_be_bytes());
        }
        ex
    }
}
