//! Running captures through the engine: the loop shared by every command, with the
//! progress bar and the end-of-run summary on stderr.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use otsensor_dissectors::engine::{Engine, EngineStats};
use otsensor_dissectors::event::{Protocol, Sink};
use otsensor_dissectors::packet::linktype;

use crate::capture::{CaptureError, FileReader, OpenError};

/// Why a run stopped early.
#[derive(Debug)]
pub enum RunError {
    /// A capture could not be opened.
    Open(PathBuf, std::io::Error),
    /// A capture is corrupt or truncated; everything before the error was processed.
    Capture(PathBuf, CaptureError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Open(p, e) => write!(f, "{}: cannot open: {e}", p.display()),
            RunError::Capture(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for RunError {}

/// Opens a capture file for reading, a block at a time.
pub fn open_capture(path: &Path) -> Result<FileReader, RunError> {
    FileReader::open(path).map_err(|e| match e {
        OpenError::Io(e) => RunError::Open(path.to_owned(), e),
        OpenError::Capture(e) => RunError::Capture(path.to_owned(), e),
    })
}

/// The size of a capture file, for the progress bar (0 for stdin or when unknown).
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| if m.is_file() { m.len() } else { 0 })
}

/// A progress bar on stderr, shown only when stderr is a terminal and the work has taken
/// more than half a second.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    start: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    /// A progress bar, shown if `want` and stderr is a terminal.
    pub fn new(want: bool) -> Self {
        let now = Instant::now();
        Progress { enabled: want && std::io::stderr().is_terminal(), start: now, last: now, shown: false }
    }

    fn update(&mut self, name: &Path, done: u64, total: u64, packets: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.start) < Duration::from_millis(500)
            || now.duration_since(self.last) < Duration::from_millis(100)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let frac = if total == 0 { 1.0 } else { done as f64 / total as f64 };
        let width = 30;
        let filled = ((frac * width as f64) as usize).min(width);
        let name = name.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        let _ = write!(
            std::io::stderr(),
            "\r{:>3.0}% [{}{}] {} packets  {}\x1b[K",
            frac * 100.0,
            "#".repeat(filled),
            " ".repeat(width - filled),
            packets,
            name
        );
    }

    fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }

    /// Time since the run began.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Runs `paths` in order through `engine`, delivering to `sink`. Stops at the first capture
/// error, after everything before it was delivered. Warns on stderr about link types that
/// are not supported.
pub fn run_captures(
    paths: &[PathBuf],
    engine: &mut Engine,
    sink: &mut dyn Sink,
    progress: &mut Progress,
) -> Result<(), RunError> {
    for path in paths {
        let mut reader = open_capture(path)?;
        let total = file_size(path);
        let mut unsupported: Option<(u32, u64)> = None;
        let mut n = 0u64;
        let result = loop {
            let Some(item) = reader.next_packet() else { break Ok(()) };
            match item {
                Ok(p) => {
                    if !linktype::is_supported(p.linktype) {
                        let u = unsupported.get_or_insert((p.linktype, 0));
                        u.1 += 1;
                    }
                    engine.process(p.ts, p.index, p.linktype, p.data, sink);
                    n += 1;
                    if n & 0xffff == 0 {
                        let at = p.offset;
                        progress.update(path, at, total, engine.stats().packets);
                    }
                }
                Err(e) => break Err(RunError::Capture(path.clone(), e)),
            }
        };
        progress.finish();
        if let Some((lt, count)) = unsupported {
            eprintln!(
                "otsensor: {}: link type {lt} ({}) is not supported; {count} packets skipped",
                path.display(),
                linktype::name(lt)
            );
        }
        result?;
    }
    Ok(())
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The end-of-run summary: packets, bytes, PDUs per protocol, flows, gaps, violations.
pub fn summary(stats: &EngineStats, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "otsensor: {} packets, {} in {:.3} s ({:.0} packets/s)",
        stats.packets,
        human_bytes(stats.bytes),
        secs,
        stats.packets as f64 / secs
    );
    let _ = write!(s, "  PDUs: {}", stats.total_pdus());
    for p in Protocol::ALL {
        let _ = write!(s, ", {} {}", p.name(), stats.pdus.get(p as usize).copied().unwrap_or(0));
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  flows: {} (closed {}, timed out {}, evicted {}); not their port's protocol: {}; found on other ports: {}",
        stats.flows,
        stats.flows_closed,
        stats.flows_timed_out,
        stats.flows_evicted,
        stats.flows_not_protocol,
        stats.flows_unexpected_port
    );
    let _ = writeln!(
        s,
        "  stream gaps: {} ({} bytes lost); resync skipped {} bytes; retransmitted {} bytes",
        stats.gaps, stats.gap_bytes, stats.resync_bytes, stats.retransmitted_bytes
    );
    let _ = writeln!(
        s,
        "  resync_per_segment: {} segments ({} PDUs) dissected on their own where reassembly lost sync; reversed connections: {}",
        stats.resync_per_segment, stats.per_segment_pdus, stats.flows_reversed
    );
    let _ = writeln!(
        s,
        "  protocol violations: {} PDUs; retransmissions with different bytes: {}",
        stats.violations, stats.retransmission_conflicts
    );
    let d = &stats.dissectors;
    let _ = writeln!(
        s,
        "  dissectors: Modbus {} requests evicted unanswered; DNP3 {} header and {} data CRC errors, {} fragments \
         evicted, {} lost to gaps; S7 {} jobs evicted, {} oversized TSDUs, {} foreign payloads, {} other TPDUs",
        d.modbus.pending_evicted,
        d.dnp3.header_crc_errors,
        d.dnp3.data_crc_errors,
        d.dnp3.reassembly_evicted,
        d.dnp3.fragments_lost_to_gaps,
        d.s7.pending_evicted,
        d.s7.reassembly_overflows,
        d.s7.unknown_payloads,
        d.s7.other_tpdus
    );
    let _ = writeln!(
        s,
        "  memory bounds: {} flows evicted (table full), {} reassembly buffers shed ({} bytes) to keep within the budget",
        stats.flows_evicted, stats.reassembly_shed, stats.reassembly_shed_bytes
    );
    let [lt, not_ip, frag, other, malformed] = stats.skipped;
    let _ = writeln!(
        s,
        "  not dissected: {not_ip} not IP, {other} other transports, {frag} IP fragments, {malformed} malformed, {lt} unsupported link type"
    );
    s
}
