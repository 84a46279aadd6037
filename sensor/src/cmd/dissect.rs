//! `otsensor dissect`: one JSON object per PDU, in capture order.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_dissectors::event::{Notice, NoticeKind, Pdu, Sink};

use crate::output::json::{write_pdu, JsonBuf};
use crate::run::{run_captures, summary, Progress, RunError};

/// Flush the JSON buffer to the writer past this many bytes.
const FLUSH_AT: usize = 1 << 16;

/// Options of `otsensor dissect`.
#[derive(Debug)]
pub struct DissectArgs {
    /// Captures, processed in order.
    pub captures: Vec<PathBuf>,
    /// Output file; stdout when `None`.
    pub output: Option<PathBuf>,
    /// Engine configuration (ports).
    pub engine: EngineConfig,
    /// Whether to show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Whether to print the summary.
    pub summary: bool,
    /// Output format.
    pub format: Format,
}

/// What `dissect` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per PDU.
    Json,
    /// Nothing: decode and count only (benchmarks, validation of a capture).
    None,
}

struct CountSink(NoticeReporter);

impl Sink for CountSink {
    fn pdu(&mut self, _pdu: &Pdu<'_>) {}
    fn notice(&mut self, n: &Notice) {
        self.0.report(n);
    }
}

struct JsonSink<'w> {
    buf: JsonBuf,
    out: &'w mut dyn Write,
    error: Option<io::Error>,
    notices: NoticeReporter,
}

/// Most notices printed on stderr; the summary counts the rest.
const MAX_NOTICES_PRINTED: u32 = 20;

/// Reports on stderr the notices a user must hear of: traffic on a watched port that is not
/// its protocol, and protocols found by content on other ports.
#[derive(Default)]
struct NoticeReporter {
    printed: u32,
}

impl NoticeReporter {
    fn report(&mut self, n: &Notice) {
        let text = match n.kind {
            NoticeKind::NotProtocol { expected } => {
                format!("traffic on a {expected} port is not {expected}; the flow is not dissected")
            }
            NoticeKind::UnexpectedPort { found } => format!("{found} found on a port not configured for it"),
            NoticeKind::RetransmissionConflict { bytes } => {
                format!("a {bytes}-byte TCP retransmission differs from the copy first seen (the first was dissected)")
            }
            NoticeKind::PathChanged { ttl_before, ttl, mac, relayed, .. } => format!(
                "{} of this ICS connection came by another path (TTL {ttl_before} then {ttl}{})",
                if relayed { "a second copy of a segment" } else { "a segment" },
                if mac.is_some() { ", another source MAC" } else { "" }
            ),
            NoticeKind::StreamGap { .. } | NoticeKind::Resync { .. } => return,
        };
        self.printed += 1;
        if self.printed <= MAX_NOTICES_PRINTED {
            eprintln!("otsensor: packet {}: {} -> {}: {text}", n.pkt, n.src, n.dst);
        } else if self.printed == MAX_NOTICES_PRINTED + 1 {
            eprintln!("otsensor: further notices are counted in the summary only");
        }
    }
}

impl JsonSink<'_> {
    fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.buf.flush_to(self.out) {
                self.error = Some(e);
            }
        }
        self.buf.clear();
    }
}

impl Sink for JsonSink<'_> {
    fn pdu(&mut self, pdu: &Pdu<'_>) {
        write_pdu(&mut self.buf, pdu);
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }
    fn notice(&mut self, n: &Notice) {
        self.notices.report(n);
    }
}

/// Why `dissect` failed.
#[derive(Debug)]
pub enum DissectError {
    /// Reading a capture failed (everything before the error was written).
    Run(RunError),
    /// Writing the output failed.
    Output(io::Error),
}

impl std::fmt::Display for DissectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DissectError::Run(e) => e.fmt(f),
            DissectError::Output(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl std::error::Error for DissectError {}

/// Runs `dissect`, writing JSON lines to `out`.
pub fn dissect_to(args: &DissectArgs, out: &mut dyn Write) -> Result<(), DissectError> {
    let mut engine = Engine::new(args.engine.clone());
    let mut sink = JsonSink { buf: JsonBuf::new(), out, error: None, notices: NoticeReporter::default() };
    let mut progress = Progress::new(args.progress);
    let run = match args.format {
        Format::Json => run_captures(&args.captures, &mut engine, &mut sink, &mut progress),
        Format::None => {
            run_captures(&args.captures, &mut engine, &mut CountSink(NoticeReporter::default()), &mut progress)
        }
    };
    sink.flush();
    let write_result = match sink.error.take() {
        Some(e) => Err(e),
        None => sink.out.flush(),
    };
    if args.summary {
        eprint!("{}", summary(engine.stats(), progress.elapsed()));
    }
    run.map_err(DissectError::Run)?;
    write_result.map_err(DissectError::Output)
}

/// Runs `dissect` to the file or stdout the arguments name.
pub fn dissect(args: &DissectArgs) -> Result<(), DissectError> {
    match &args.output {
        Some(path) => {
            let mut f = File::create(path).map_err(DissectError::Output)?;
            dissect_to(args, &mut f)?;
            f.sync_all().map_err(DissectError::Output)
        }
        None => {
            let stdout = io::stdout();
            let mut lock = stdout.lock();
            dissect_to(args, &mut lock)
        }
    }
}
