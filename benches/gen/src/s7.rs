//! S7comm traffic model: an HMI (WinCC-like) polling an S7-300/400 PLC on TCP 102.
//!
//! The connection opens with a COTP connection request/confirm (TSAPs 0x0100 and 0x0102: rack
//! 0, slot 2) and setup communication (PDU size 480 asked, 240 granted). Polling then reads
//! the device's variable blocks (data block bytes and words, flags, inputs, outputs; one to
//! four items per job) with slowly drifting process values; now and then the HMI writes a
//! setpoint word to a data block, or reads the CPU state (SZL 0x0424) with userdata.

use super::{Exchange, Model, Rng};

/// A variable block: area code, DB number, byte address, transport size (2 BYTE, 4 WORD),
/// element count.
type Block = (u8, u16, u32, u8, u16);

/// One HMI polling one PLC.
#[derive(Clone, Debug)]
pub struct Polling {
    pdu_ref: u16,
    jobs: Vec<Vec<Block>>,
    next_job: usize,
    values: Vec<u8>,
}

impl Polling {
    /// The polling of device number `device`.
    pub fn new(device: u32, rng: &mut Rng) -> Self {
        // Two to four read jobs per PLC, each of one to four items.
        let n = 2 + rng.below(3) as usize;
        let jobs = (0..n)
            .map(|_| {
                (0..1 + rng.below(4))
                    .map(|_| match rng.below(4) {
                        0 => (
                            0x84,
                            1 + (device % 20) as u16 + rng.below(5) as u16,
                            rng.below(50) as u32 * 2,
                            4,
                            1 + rng.below(16) as u16,
                        ),
                        1 => (0x84, 100 + rng.below(3) as u16, rng.below(100) as u32, 2, 1 + rng.below(32) as u16),
                        2 => (0x83, 0, rng.below(64) as u32, 2, 1 + rng.below(8) as u16),
                        _ => (
                            if rng.chance(0.5) { 0x81 } else { 0x82 },
                            0,
                            rng.below(16) as u32,
                            2,
                            1 + rng.below(4) as u16,
                        ),
                    })
                    .collect()
            })
            .collect();
        let values = (0..256).map(|_| rng.below(256) as u8).collect();
        Polling { pdu_ref: rng.next_u64() as u16, jobs, next_job: 0, values }
    }
}

/// Wraps an S7 PDU in TPKT and a COTP data TPDU with EOT.
fn tpkt_dt(s7: &[u8]) -> Vec<u8> {
    let len = (s7.len() + 7) as u16;
    let mut v = vec![0x03, 0x00];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0x02, 0xf0, 0x80]);
    v.extend_from_slice(s7);
    v
}

/// An S7comm header: job and userdata have 10 bytes, ack-data 12 (error class and code 0).
fn header(rosctr: u8, pdu_ref: u16, param: &[u8], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x32, rosctr, 0x00, 0x00];
    v.extend_from_slice(&pdu_ref.to_be_bytes());
    v.extend_from_slice(&(param.len() as u16).to_be_bytes());
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    if rosctr == 3 {
        v.extend_from_slice(&[0, 0]);
    }
    v.extend_from_slice(param);
    v.extend_from_slice(data);
    tpkt_dt(&v)
}

/// The S7ANY variable specification of a block.
fn item(out: &mut Vec<u8>, &(area, db, byte, ts, count): &Block) {
    out.extend_from_slice(&[0x12, 0x0a, 0x10, ts]);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&db.to_be_bytes());
    out.push(area);
    out.extend_from_slice(&(byte * 8).to_be_bytes()[1..]);
}

/// Bytes a block's value takes.
fn size(&(_, _, _, ts, count): &Block) -> usize {
    usize::from(count) * if ts == 4 { 2 } else { 1 }
}

impl Polling {
    fn next_ref(&mut self) -> u16 {
        self.pdu_ref = self.pdu_ref.wrapping_add(1);
        self.pdu_ref
    }

    fn read(&mut self, rng: &mut Rng) -> Exchange {
        let job = self.jobs.get(self.next_job % self.jobs.len().max(1)).cloned().unwrap_or_default();
        self.next_job += 1;
        let r = self.next_ref();
        let mut param = vec![0x04, job.len() as u8];
        let mut data = Vec::new();
        for (i, b) in job.iter().enumerate() {
            item(&mut param, b);
            let n = size(b);
            data.extend_from_slice(&[0xff, 0x04]);
            data.extend_from_slice(&((n * 8) as u16).to_be_bytes());
            for k in 0..n {
                let slot = (b.2 as usize + k) % self.values.len();
                // Process values drift by a step now and then.
                if rng.chance(0.05) {
                    self.values[slot] = self.values[slot].wrapping_add(rng.below(3) as u8).wrapping_sub(1);
                }
                data.push(self.values[slot]);
            }
            if n % 2 == 1 && i + 1 < job.len() {
                data.push(0);
            }
        }
        Exchange { request: header(1, r, &param, &[]), response: header(3, r, &[0x04, job.len() as u8], &data) }
    }

    fn write(&mut self, rng: &mut Rng) -> Exchange {
        let r = self.next_ref();
        let block = (0x84, 10, 2 * rng.below(10) as u32, 4, 1);
        let mut param = vec![0x05, 1];
        item(&mut param, &block);
        let v = 500 + rng.below(100) as u16;
        let mut data = vec![0x00, 0x04, 0x00, 0x10];
        data.extend_from_slice(&v.to_be_bytes());
        Exchange { request: header(1, r, &param, &data), response: header(3, r, &[0x05, 1], &[0xff]) }
    }

    fn read_state(&mut self) -> Exchange {
        let r = self.next_ref();
        // Userdata head, length 4, request, type request | CPU functions, read SZL, sequence 0.
        let req_param = [0x00, 0x01, 0x12, 0x04, 0x11, 0x44, 0x01, 0x00];
        let req_data = [0xff, 0x09, 0x00, 0x04, 0x04, 0x24, 0x00, 0x00];
        let res_param = [0x00, 0x01, 0x12, 0x08, 0x12, 0x84, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00];
        let mut res_data = vec![0xff, 0x09, 0x00, 0x18, 0x04, 0x24, 0x00, 0x00, 0x00, 0x14, 0x00, 0x01];
        res_data.extend_from_slice(&[0x51, 0x44, 0xff, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        res_data.extend_from_slice(&[0x00, 0x00, 0x20, 0x11, 0x04, 0x12, 0x15, 0x00, 0x00, 0x00]);
        Exchange { request: header(7, r, &req_param, &req_data), response: header(7, r, &res_param, &res_data) }
    }
}

impl Model for Polling {
    fn port(&self) -> u16 {
        102
    }

    fn open(&mut self, _rng: &mut Rng) -> Vec<Exchange> {
        let cr = [
            0x03, 0x00, 0x00, 0x16, 0x11, 0xe0, 0x00, 0x00, 0x00, 0x01, 0x00, 0xc0, 0x01, 0x0a, 0xc1, 0x02, 0x01, 0x00,
            0xc2, 0x02, 0x01, 0x02,
        ];
        let cc = [
            0x03, 0x00, 0x00, 0x16, 0x11, 0xd0, 0x00, 0x01, 0x44, 0x31, 0x00, 0xc0, 0x01, 0x0a, 0xc1, 0x02, 0x01, 0x00,
            0xc2, 0x02, 0x01, 0x02,
        ];
        let r = self.next_ref();
        let setup = Exchange {
            request: header(1, r, &[0xf0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x01, 0xe0], &[]),
            response: header(3, r, &[0xf0, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0xf0], &[]),
        };
        vec![Exchange { request: cr.to_vec(), response: cc.to_vec() }, setup]
    }

    fn next(&mut self, rng: &mut Rng) -> Exchange {
        if rng.chance(0.01) {
            self.write(rng)
        } else if rng.chance(0.005) {
            self.read_state()
        } else {
            self.read(rng)
        }
    }
}

/// The model of one HMI-PLC conversation.
pub(crate) fn model(device: u32, rng: &mut Rng) -> Box<dyn Model> {
    Box::new(Polling::new(device, rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use otsensor_dissectors::event::{Direction, PduBody};
    use otsensor_dissectors::s7::S7Stream;
    use otsensor_dissectors::stream::StreamDissector;

    #[test]
    fn generated_s7_traffic_decodes_without_violations() {
        let mut rng = Rng::new(7);
        let mut m = Polling::new(3, &mut rng);
        let mut s7 = S7Stream::default();
        let mut names = std::collections::BTreeSet::new();
        let mut exchanges = m.open(&mut rng);
        exchanges.extend((0..2000).map(|_| m.next(&mut rng)));
        for ex in exchanges {
            for (bytes, dir) in [(&ex.request, Direction::ToServer), (&ex.response, Direction::ToClient)] {
                let mut ok = true;
                let p = s7.parse(bytes, dir, &mut |b: &mut PduBody<'_>| {
                    ok &= b.flags().is_empty();
                    names.insert(b.func_name().to_string());
                });
                assert!(ok, "violation in {bytes:02x?}");
                assert_eq!((p.consumed, p.skipped), (bytes.len(), 0));
            }
        }
        for n in ["COTP_CONNECTION_REQUEST", "SETUP_COMMUNICATION", "READ_VAR", "WRITE_VAR", "CPU_READ_SZL"] {
            assert!(names.contains(n), "{n} missing from {names:?}");
        }
    }
}
