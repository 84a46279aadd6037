//! `otsensor consume`: the smallest central view of a fleet. Reads the sensors' records back
//! from Kafka (alerts by default) and writes them as JSON lines, each with the `sensor_id`,
//! `site` and `version` of the sensor that sent it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

/// Options of `otsensor consume`.
#[derive(Debug, Clone)]
pub struct ConsumeArgs {
    /// `host:port,...`.
    pub brokers: String,
    /// Topics to read.
    pub topics: Vec<String>,
    /// Consumer group: a group reads each record once, wherever its members run.
    pub group: String,
    /// Start at the oldest record the brokers hold when the group has no offset yet (else the
    /// newest).
    pub from_beginning: bool,
    /// Stop after this long without a record (scripts and tests); else until SIGINT/SIGTERM.
    pub idle_exit: Option<Duration>,
}

/// Reads until a signal (or `idle_exit`), writing each record's value as a line to `out`.
/// Returns how many were written.
pub fn consume(args: &ConsumeArgs, out: &mut dyn Write) -> Result<u64, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| format!("signals: {e}"))?;
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("auto.offset.reset", if args.from_beginning { "earliest" } else { "latest" })
        .set("enable.auto.commit", "true")
        // Topics created, or a broker come back, are seen within a second.
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .map_err(|e| format!("--kafka {}: {e}", args.brokers))?;
    let topics: Vec<&str> = args.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| format!("subscribing to {topics:?}: {e}"))?;
    let mut n = 0u64;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) && args.idle_exit.map_or(true, |d| last.elapsed() < d) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                if let Some(v) = m.payload() {
                    out.write_all(v).and_then(|()| out.write_all(b"\n")).map_err(|e| format!("writing: {e}"))?;
                    out.flush().map_err(|e| format!("writing: {e}"))?;
                    n += 1;
                }
                last = Instant::now();
            }
            // The brokers being away is not fatal: librdkafka reconnects.
            Some(Err(e)) => eprintln!("otsensor: warning: kafka: {e}"),
            None => {}
        }
    }
    Ok(n)
}
