//! The network outputs of a run: one durable queue for all of them, one sender thread per
//! destination, their counters for `/metrics`, and the drain at the end of a run.
//!
//! The caller only appends ([`Outputs::append`]): a local file write, never a wait on a
//! destination, so capture and detection go on whatever the receivers do.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dest::{Destination, Transport};
use super::queue::{DestStats, Fsync, Queue, Topic};
use super::sender::{self, Deliver, SenderCtx, Siem};
use super::siem::Origin;
use super::tls::{self, TlsFiles};
use crate::metrics::text::{Kind, TextEncoder};

/// Settings of the outputs.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// Network destinations (files are written by the alert writer itself).
    pub destinations: Vec<Destination>,
    /// The queue lives in `<state_dir>/queue/`.
    pub state_dir: PathBuf,
    /// Records a destination may fall behind before its oldest are dropped.
    pub queue_size: usize,
    /// When queued records reach the disk.
    pub fsync: Fsync,
    /// Sensor id and site, in every record.
    pub origin: Origin,
    /// TLS files.
    pub tls: TlsFiles,
    /// How long the end of a run waits for destinations to take what is queued.
    pub drain: Duration,
}

/// One destination's name and counters.
pub type DestCounters = (String, Arc<DestStats>);

/// The running outputs.
pub struct Outputs {
    queue: Arc<Queue>,
    counters: Vec<DestCounters>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    abort: Arc<AtomicBool>,
    drain: Duration,
    fleet: bool,
    failed: AtomicBool,
}

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outputs").field("destinations", &self.counters.len()).finish()
    }
}

/// Everything the threads of one destination need to deliver.
fn deliverer(d: &Destination, config: &OutputConfig) -> Result<Box<dyn Deliver>, String> {
    match d {
        Destination::Siem { format, transport, host, port } => {
            let tls = match transport {
                Transport::Tls => Some(tls::client_config(&config.tls)?),
                _ => None,
            };
            Ok(Box::new(Siem::new(*format, *transport, host.clone(), *port, config.origin.clone(), tls)))
        }
        #[cfg(feature = "kafka")]
        Destination::Kafka(brokers) => Ok(Box::new(super::kafka::Kafka::new(brokers, &config.origin)?)),
        #[cfg(not(feature = "kafka"))]
        Destination::Kafka(_) => Err(format!("{}: this otsensor was built without the kafka feature", d.name())),
        Destination::File(p) => Err(format!("file:{} is written by the alert writer, not queued", p.display())),
    }
}

impl Outputs {
    /// Opens the queue and starts a sender per network destination; `None` when there is
    /// none.
    pub fn start(config: &OutputConfig) -> Result<Option<Arc<Outputs>>, String> {
        let net: Vec<&Destination> =
            config.destinations.iter().filter(|d| !matches!(d, Destination::File(_))).collect();
        if net.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = net.iter().map(|d| d.name()).collect();
        let mut deliverers = Vec::new();
        for d in &net {
            deliverers.push(deliverer(d, config)?);
        }
        let dir = config.state_dir.join("queue");
        let queue = Queue::open(&dir, &names, config.queue_size, config.fsync)
            .map_err(|e| format!("output queue {}: {e}", dir.display()))?;
        let abort = Arc::new(AtomicBool::new(false));
        let mut counters = Vec::new();
        let mut threads = Vec::new();
        for (index, (name, d)) in names.into_iter().zip(deliverers).enumerate() {
            let stats = queue.stats(index).ok_or("output queue: destination missing")?;
            counters.push((name.clone(), Arc::clone(&stats)));
            let ctx =
                SenderCtx { name: name.clone(), index, queue: Arc::clone(&queue), stats, abort: Arc::clone(&abort) };
            let t = std::thread::Builder::new()
                .name(format!("out-{index}"))
                .spawn(move || sender::run(ctx, d))
                .map_err(|e| format!("output {name}: {e}"))?;
            threads.push(t);
        }
        let fleet = net.iter().any(|d| matches!(d, Destination::Kafka(_)));
        Ok(Some(Arc::new(Outputs {
            queue,
            counters,
            threads: Mutex::new(threads),
            abort,
            drain: config.drain,
            fleet,
            failed: AtomicBool::new(false),
        })))
    }

    /// Queues a record for every destination. A disk error is reported once on stderr and
    /// the record lost: detection never stops for an output.
    pub fn append(&self, topic: Topic, payload: &[u8]) {
        if let Err(e) = self.queue.append(topic, payload) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                eprintln!("otsensor: error: output queue: {e}; records are being lost");
            }
        }
    }

    /// Whether asset and traffic records are wanted (a Kafka destination is configured).
    pub fn wants_fleet(&self) -> bool {
        self.fleet
    }

    /// Each destination's name and counters.
    pub fn counters(&self) -> &[DestCounters] {
        &self.counters
    }

    /// Ends the run: waits up to the drain time for every destination to take what is
    /// queued, then stops the senders; what is left stays queued on disk for the next run.
    /// Returns a line per destination for stderr.
    pub fn finish(&self) -> String {
        self.queue.close();
        let deadline = Instant::now() + self.drain;
        while Instant::now() < deadline && (0..self.counters.len()).any(|i| self.queue.backlog(i) > 0) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.abort.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for t in threads {
            let _ = t.join();
        }
        if let Err(e) = self.queue.sync() {
            eprintln!("otsensor: error: output queue: {e}");
        }
        let mut s = String::new();
        for (i, (name, st)) in self.counters.iter().enumerate() {
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            s.push_str(&format!(
                "otsensor: output {name}: {} queued, {} delivered, {} retries, {} dropped, {} left in the queue\n",
                load(&st.queued),
                load(&st.delivered),
                load(&st.retried),
                load(&st.dropped),
                self.queue.backlog(i)
            ));
        }
        s
    }
}

impl Drop for Outputs {
    /// Senders stop with their outputs (without draining: that is [`Outputs::finish`]).
    fn drop(&mut self) {
        self.abort.store(true, Ordering::Relaxed);
        self.queue.close();
    }
}

/// The outputs' counters as the metrics endpoint renders them; filled once the outputs
/// start.
pub type SharedCounters = Mutex<Vec<DestCounters>>;

/// Renders `otsensor_output_*{destination}`.
pub fn render_metrics(counters: &[DestCounters], t: &mut TextEncoder) {
    type Pick = fn(&DestStats) -> f64;
    let families: [(&str, &str, Kind, Pick); 5] = [
        ("otsensor_output_queued_total", "Records queued for a destination.", Kind::Counter, |s| {
            s.queued.load(Ordering::Relaxed) as f64
        }),
        ("otsensor_output_delivered_total", "Records a destination took.", Kind::Counter, |s| {
            s.delivered.load(Ordering::Relaxed) as f64
        }),
        ("otsensor_output_retried_total", "Failed deliveries to a destination, tried again.", Kind::Counter, |s| {
            s.retried.load(Ordering::Relaxed) as f64
        }),
        (
            "otsensor_output_dropped_total",
            "Records dropped because a destination fell more than the queue size behind.",
            Kind::Counter,
            |s| s.dropped.load(Ordering::Relaxed) as f64,
        ),
        (
            "otsensor_output_lag_seconds",
            "Age of the oldest record a destination has not taken (0 when caught up).",
            Kind::Gauge,
            |s| s.lag_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        ),
    ];
    if counters.is_empty() {
        return;
    }
    for (name, help, kind, pick) in families {
        t.family(name, help, kind);
        for (dest, stats) in counters {
            t.sample(name, &[("destination", dest)], pick(stats));
        }
    }
}
