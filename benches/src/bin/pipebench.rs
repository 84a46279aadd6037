//! `pipebench`: the `run` pipeline fed from memory.
//!
//! ```text
//! pipebench [--proto modbus|dnp3|s7] [--packets N] [--workers 1,2,3] [--rates 500000,1000000]
//! ```
//!
//! Generates a capture in memory (as `gencap` does), learns a baseline from it, then, in one
//! run: scores it single-threaded (an `Engine` and a `Detector`, what `detect` does); runs
//! the pipeline flat out with each number of workers (the capture thread waits when a ring is
//! full, so nothing is dropped); and offers it at fixed packet rates with the default number
//! of workers (cores - 1), dropping and counting what does not fit, as live capture does. The
//! capture thread paces by spinning, so it takes a core as a busy capture thread would. The frames are
//! indexed before timing starts, so the capture file's parsing is not measured.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otsensor::capture::store::{FrameRef, FrameStore};
use otsensor::capture::Capture;
use otsensor::metrics::registry::Telemetry;
use otsensor::pipeline::coordinator::{AlertTiming, CoordinatorConfig};
use otsensor::pipeline::dispatch::WhenFull;
use otsensor::pipeline::threads::{Pipeline, PipelineConfig};
use otsensor_benches::gen::{generate, Plan, Proto};
use otsensor_dissectors::engine::{Engine, EngineConfig};
use otsensor_models::{Detector, Learner};

struct Args {
    proto: Proto,
    packets: u64,
    workers: Vec<usize>,
    rates: Vec<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        proto: Proto::Modbus,
        packets: 2_000_000,
        workers: vec![1, 2, 3],
        rates: vec![1_000_000, 2_000_000, 4_000_000, 8_000_000],
    };
    let mut it = std::env::args().skip(1);
    let list = |s: String| -> Result<Vec<u64>, String> {
        s.split(',').map(|x| x.parse().map_err(|_| format!("bad number {x}"))).collect()
    };
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        match k.as_str() {
            "--proto" => a.proto = Proto::parse(&v).ok_or(format!("unknown protocol {v}"))?,
            "--packets" => a.packets = v.parse().map_err(|_| format!("bad count {v}"))?,
            "--workers" => a.workers = list(v)?.into_iter().map(|n| n.max(1) as usize).collect(),
            "--rates" => a.rates = list(v)?,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    Ok(a)
}

/// Every frame of the capture as a range of it, with its packet number.
fn index(cap: &Capture) -> Vec<(FrameRef, u64)> {
    let base = cap.bytes().as_ptr() as usize;
    let Ok(reader) = cap.reader() else { return Vec::new() };
    reader
        .flatten()
        .map(|p| {
            let at = FrameRef {
                offset: p.data.as_ptr() as usize - base,
                len: p.data.len(),
                wire_len: p.orig_len,
                ts: p.ts,
                linktype: p.linktype,
            };
            (at, p.index)
        })
        .collect()
}

fn learn(store: &Capture, frames: &[(FrameRef, u64)]) -> otsensor_models::Baseline {
    let mut engine = Engine::new(EngineConfig::default());
    let mut learner = Learner::new();
    let mut sink = |pdu: &otsensor_dissectors::event::Pdu<'_>| learner.pdu(pdu);
    for (at, pkt) in frames {
        engine.process(at.ts, *pkt, at.linktype, at.data(store), &mut sink);
    }
    learner.finish()
}

/// What `detect` does, single-threaded: seconds.
fn detect_single(store: &Capture, frames: &[(FrameRef, u64)], b: &otsensor_models::Baseline) -> f64 {
    let t = Instant::now();
    let mut engine = Engine::new(EngineConfig::default());
    let Ok(mut d) = Detector::new(b) else { return f64::NAN };
    let mut sink = |pdu: &otsensor_dissectors::event::Pdu<'_>| d.pdu(pdu);
    for (at, pkt) in frames {
        engine.process(at.ts, *pkt, at.linktype, at.data(store), &mut sink);
    }
    let mut out = Vec::new();
    d.finish(&mut out);
    std::hint::black_box(out);
    t.elapsed().as_secs_f64()
}

/// Runs the pipeline; offers `rate` packets/s when given. Seconds and packets dropped.
fn pipeline(
    store: &Arc<Capture>,
    frames: &[(FrameRef, u64)],
    baseline: &std::path::Path,
    workers: usize,
    rate: Option<u64>,
) -> Result<(f64, u64), String> {
    let config = PipelineConfig {
        workers,
        engine: EngineConfig::default(),
        coordinator: CoordinatorConfig {
            baseline_keys: Default::default(),
            baseline: baseline.to_path_buf(),
            learn_for_secs: 0.0,
            checkpoint: Duration::from_secs(3600),
            timing: AlertTiming::OnClose,
            policy: None,
            reload_policy: Arc::default(),
            outputs: None,
            alert_format: Default::default(),
        },
        when_full: if rate.is_some() { WhenFull::Drop } else { WhenFull::Wait },
    };
    let telemetry = Arc::new(Telemetry::new(workers));
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let (mut p, mut dispatcher) =
        Pipeline::start(&config, Box::new(io::sink()), None, &telemetry, &stop).map_err(|e| format!("{e:?}"))?;
    dispatcher.set_store(Arc::clone(store) as Arc<dyn FrameStore>);
    for (i, (at, pkt)) in frames.iter().enumerate() {
        dispatcher.frame(*at, Some(*pkt));
        if let Some(r) = rate.filter(|_| i % 64 == 0) {
            let due = Duration::from_secs_f64(i as f64 / r as f64);
            while t.elapsed() < due {
                std::hint::spin_loop();
            }
        }
    }
    dispatcher.finish();
    p.finish().map_err(|e| e.to_string())?;
    let dropped = telemetry.workers.iter().map(|w| w.ring_dropped_packets.load(Ordering::Relaxed)).sum();
    Ok((t.elapsed().as_secs_f64(), dropped))
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let plan = Plan {
        proto: args.proto,
        masters: 4,
        devices: 40,
        packets: args.packets,
        seed: 1,
        start_us: 1_700_000_000_000_000,
    };
    let mut bytes = Vec::new();
    generate(&plan, &mut bytes).map_err(|e| e.to_string())?;
    let store = Arc::new(Capture::from_bytes("generated", bytes));
    let frames = index(&store);
    let n = frames.len() as f64;
    let dir = std::env::temp_dir().join(format!("pipebench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("baseline.json");
    let mut b = learn(&store, &frames);
    std::fs::write(&path, b.to_json()).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!("{} packets ({:?}), {cores} cores", frames.len(), args.proto);
    let single = detect_single(&store, &frames, &b);
    println!("{:<28} {:>8.3} s {:>12.0} packets/s", "detect (one thread)", single, n / single);
    for &w in &args.workers {
        let (secs, dropped) = pipeline(&store, &frames, &path, w, None)?;
        println!(
            "{:<28} {:>8.3} s {:>12.0} packets/s  {:>5.2}x detect  (dropped {dropped})",
            format!("run, {w} worker(s)"),
            secs,
            n / secs,
            single / secs
        );
    }
    // Offered rates with the sensor's default: one worker per core but the capture thread's.
    let w = otsensor::config::default_workers();
    for &r in &args.rates {
        let (secs, dropped) = pipeline(&store, &frames, &path, w, Some(r))?;
        println!(
            "{:<28} {:>8.3} s {:>12.0} packets/s  dropped {:>6.2}%",
            format!("offered {r}/s, {w} worker(s)"),
            secs,
            n / secs,
            100.0 * dropped as f64 / n
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
