//! Captures loaded into memory for benchmarks, so that criterion times dissection and not
//! the disk.

use std::path::{Path, PathBuf};

use otsensor::capture::Capture;
use otsensor_dissectors::event::Timestamp;

/// One packet, owned.
#[derive(Clone, Debug)]
pub struct OwnedPacket {
    /// Capture time.
    pub ts: Timestamp,
    /// 1-based index.
    pub index: u64,
    /// Link type.
    pub linktype: u32,
    /// Bytes.
    pub data: Vec<u8>,
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Finds `rel` under the shared corpus (`../shared/pcaps`) or the bundled `pcaps/`.
pub fn find_capture(rel: &str) -> Option<PathBuf> {
    let root = workspace_root();
    [root.join("../shared/pcaps").join(rel), root.join("pcaps").join(rel)].into_iter().find(|p| p.is_file())
}

/// Loads every packet of the capture at `path`, stopping at the first error.
pub fn load(path: &Path) -> Vec<OwnedPacket> {
    let Ok(cap) = Capture::open(path) else { return Vec::new() };
    let Ok(reader) = cap.reader() else { return Vec::new() };
    reader
        .map_while(Result::ok)
        .map(|p| OwnedPacket { ts: p.ts, index: p.index, linktype: p.linktype, data: p.data.to_vec() })
        .collect()
}

/// Runs a fresh engine over `pkts`; returns the number of PDUs.
pub fn dissect_count(pkts: &[OwnedPacket]) -> u64 {
    let mut engine = otsensor_dissectors::engine::Engine::new(otsensor_dissectors::engine::EngineConfig::default());
    let mut n = 0u64;
    let mut sink = |pdu: &otsensor_dissectors::event::Pdu<'_>| {
        std::hint::black_box(pdu.body.func());
        n += 1;
    };
    for p in pkts {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
    }
    n
}

/// Runs a fresh engine over `pkts` writing `otsensor dissect`'s JSON into `buf` (emptied
/// every 64 KiB, as the command flushes it); returns the bytes written.
pub fn dissect_json(pkts: &[OwnedPacket], buf: &mut otsensor::output::json::JsonBuf) -> usize {
    let mut engine = otsensor_dissectors::engine::Engine::new(otsensor_dissectors::engine::EngineConfig::default());
    let mut bytes = 0usize;
    let mut sink = |pdu: &otsensor_dissectors::event::Pdu<'_>| {
        otsensor::output::json::write_pdu(buf, pdu);
        if buf.len() > 1 << 16 {
            bytes += buf.len();
            buf.clear();
        }
    };
    for p in pkts {
        engine.process(p.ts, p.index, p.linktype, &p.data, &mut sink);
    }
    bytes + buf.len()
}

/// Frames of a generated capture, kept in memory.
struct Collect(Vec<OwnedPacket>);

impl crate::gen::Frames for Collect {
    fn frame(&mut self, ts_us: u64, frame: &[u8]) -> std::io::Result<()> {
        let nanos = i64::try_from(ts_us.saturating_mul(1000)).unwrap_or(i64::MAX);
        let index = self.0.len() as u64 + 1;
        // Link type 1: Ethernet, as `gencap` writes.
        self.0.push(OwnedPacket { ts: Timestamp::from_nanos(nanos), index, linktype: 1, data: frame.to_vec() });
        Ok(())
    }
    fn packets(&self) -> u64 {
        self.0.len() as u64
    }
}

/// The packets `gencap` would write for `plan`, generated in memory (no capture file needed).
pub fn generate(plan: &crate::gen::Plan) -> Vec<OwnedPacket> {
    let mut frames = Collect(Vec::new());
    // Writing into memory cannot fail.
    let _ = crate::gen::generate_into(plan, &mut frames);
    frames.0
}
