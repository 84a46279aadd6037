//! Kafka for fleets: an idempotent producer (`enable.idempotence`, `acks=all`: every record
//! acknowledged by all in-sync replicas, none written twice by the producer's own retries)
//! through librdkafka, keyed by sensor id so that a consumer sees each sensor in order.
//!
//! Topics: `otsensor.alerts`, `otsensor.assets` (inventory snapshots when they change) and
//! `otsensor.stats` (per-pair traffic summaries each minute). Every value is the record's JSON
//! with `sensor_id`, `site` and `version` added.
//!
//! The three topics are created when missing (3 partitions, the brokers' default replication
//! factor; brokers such as tansu do not create topics on first use), at the first delivery and
//! again whenever a batch waits: a broker that came back empty gets them again.
//!
//! A batch is acknowledged to the queue only once librdkafka reports every record delivered.
//! While the brokers are away librdkafka holds and retries the records itself
//! (`message.timeout.ms` = 0: no give-up), so they are not sent twice by us; if the process
//! stops meanwhile, the queue still holds them and the next run sends them again
//! (at-least-once across restarts).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode as Code;
use rdkafka::ClientContext;

use super::queue::{Record, Topic};
use super::sender::Deliver;
use super::siem::Origin;

/// The topic of each kind of record.
pub fn topic(t: Topic) -> &'static str {
    match t {
        Topic::Alerts => "otsensor.alerts",
        Topic::Assets => "otsensor.assets",
        Topic::Stats => "otsensor.stats",
    }
}

/// Partitions of a topic otsensor creates.
const PARTITIONS: i32 = 3;
/// While a batch waits this long, the topics are created again (a broker may have come back
/// without them).
const RECREATE_EVERY: Duration = Duration::from_secs(2);
/// A batch not acknowledged after this long is sent again by a new producer: a broker that
/// restarted without its state answers the old producer id with UNKNOWN_PRODUCER_ID, which
/// librdkafka retries forever. Records the old producer did deliver arrive twice
/// (at-least-once).
const STALL: Duration = Duration::from_secs(5);

/// Runs a future to completion on this thread (the admin client's answers are futures; no
/// async runtime is needed for them).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Creates the topics that do not exist yet.
fn create_topics(admin: &AdminClient<DefaultClientContext>) -> io::Result<()> {
    let topics: Vec<NewTopic<'_>> = [Topic::Alerts, Topic::Assets, Topic::Stats]
        .into_iter()
        .map(|t| NewTopic::new(topic(t), PARTITIONS, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
    let results = block_on(admin.create_topics(&topics, &options)).map_err(io::Error::other)?;
    for r in results {
        match r {
            Ok(_) | Err((_, Code::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(io::Error::other(format!("kafka: creating {name}: {code}"))),
        }
    }
    Ok(())
}

/// Counts the records librdkafka gave up on.
struct Ctx {
    failed: Arc<AtomicU64>,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("otsensor: warning: kafka: a record was not delivered: {e}");
        }
    }
}

/// A Kafka destination.
pub(crate) struct Kafka {
    brokers: String,
    origin: Origin,
    producer: Option<BaseProducer<Ctx>>,
    admin: AdminClient<DefaultClientContext>,
    topics_ready: bool,
    failed: Arc<AtomicU64>,
}

/// A record's JSON with `sensor_id`, `site`, `version` and `record_id` (the queue's number:
/// a record delivered again carries the same) added at its end.
pub fn with_origin(payload: &[u8], origin: &Origin, record_id: u64) -> Vec<u8> {
    let body = payload.trim_ascii_end();
    let body = body.strip_suffix(b"}").unwrap_or(body);
    let mut v = body.to_vec();
    if body.len() > 1 {
        v.push(b',');
    }
    let s = |x: &str| serde_json::to_string(x).unwrap_or_else(|_| "\"\"".into());
    v.extend_from_slice(
        format!(
            "\"sensor_id\":{},\"site\":{},\"version\":{},\"record_id\":{record_id}}}",
            s(&origin.sensor_id),
            s(&origin.site),
            s(env!("CARGO_PKG_VERSION"))
        )
        .as_bytes(),
    );
    v
}

impl Kafka {
    /// A producer for `brokers`; it connects when the first batch comes.
    pub(crate) fn new(brokers: &[String], origin: &Origin) -> Result<Self, String> {
        let brokers = brokers.join(",");
        let admin = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .map_err(|e| format!("kafka://{brokers}: {e}"))?;
        let k = Kafka {
            brokers,
            origin: origin.clone(),
            producer: None,
            admin,
            topics_ready: false,
            failed: Arc::default(),
        };
        // Settings are checked now, so that a bad one stops the start, not the first alert.
        k.create().map_err(|e| format!("kafka://{}: {e}", k.brokers))?;
        Ok(k)
    }

    fn create(&self) -> Result<BaseProducer<Ctx>, KafkaError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("otsensor-{}", self.origin.sensor_id))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .set("reconnect.backoff.max.ms", "1000")
            .create_with_context(Ctx { failed: Arc::clone(&self.failed) })
    }

    fn produce(&self, p: &BaseProducer<Ctx>, r: &Record) -> io::Result<()> {
        let value = with_origin(&r.payload, &self.origin, r.id);
        let mut record = BaseRecord::to(topic(r.topic)).key(self.origin.sensor_id.as_str()).payload(&value);
        loop {
            match p.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    p.poll(Duration::from_millis(100));
                }
                Err((e, _)) => return Err(io::Error::other(e)),
            }
        }
    }
}

impl Deliver for Kafka {
    fn deliver(&mut self, batch: &[Record], abort: &AtomicBool) -> io::Result<()> {
        let p = match self.producer.take() {
            Some(p) => p,
            None => self.create().map_err(io::Error::other)?,
        };
        if !self.topics_ready {
            create_topics(&self.admin)?;
            self.topics_ready = true;
        }
        let before = self.failed.load(Ordering::Relaxed);
        for r in batch {
            self.produce(&p, r)?;
        }
        // Until every record is acknowledged by all in-sync replicas (or has failed).
        let started = Instant::now();
        let mut waited = started;
        loop {
            if p.flush(Duration::from_millis(500)).is_ok() {
                break;
            }
            if started.elapsed() >= STALL {
                return Err(io::Error::other("kafka: no acknowledgement within 5 s; a new producer sends the batch"));
            }
            if waited.elapsed() >= RECREATE_EVERY {
                waited = Instant::now();
                if let Err(e) = create_topics(&self.admin) {
                    eprintln!("otsensor: warning: {e}");
                }
            }
            if let Some((code, why)) = p.client().fatal_error() {
                // A new producer (a new producer id) sends the batch again.
                return Err(io::Error::other(format!("kafka: fatal producer error {code:?}: {why}")));
            }
            if abort.load(Ordering::Relaxed) {
                return Err(io::Error::other("kafka: stopped before the brokers acknowledged"));
            }
        }
        let failed = self.failed.load(Ordering::Relaxed) - before;
        self.producer = Some(p);
        if failed > 0 {
            return Err(io::Error::other(format!("kafka: {failed} records of the batch were not delivered")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_carries_sensor_site_and_version() {
        let o = Origin { sensor_id: "s\"1".into(), site: "north".into() };
        let v: serde_json::Value = serde_json::from_slice(&with_origin(b"{\"id\":\"x\"}\n", &o, 9)).expect("JSON");
        assert_eq!(v["id"], "x");
        assert_eq!(v["sensor_id"], "s\"1");
        assert_eq!(v["site"], "north");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["record_id"], 9);
        let empty: serde_json::Value = serde_json::from_slice(&with_origin(b"{}", &o, 9)).expect("JSON");
        assert_eq!(empty["site"], "north");
    }
}
