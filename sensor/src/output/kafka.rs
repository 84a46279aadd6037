//! Kafka for fleets: an idempotent producer (`enable.idempotence`, `acks=all`: every record
//! acknowledged by all in-sync replicas, none written twice by the producer's own retries)
//! through librdkafka, keyed by sensor id so that a consumer sees each sensor in order.
//!
//! Topics: `otsensor.alerts`, `otsensor.assets` (inventory snapshots when they change) and
//! `otsensor.stats` (per-pair traffic summaries each minute). Every value is the record's JSON
//! with `sensor_id`, `site` and `version` added.
//!
//! A batch is acknowledged to the queue only once librdkafka reports every record delivered.
//! While the brokers are away librdkafka holds and retries the records itself
//! (`message.timeout.ms` = 0: no give-up), so they are not sent twice by us; if the process
//! stops meanwhile, the queue still holds them and the next run sends them again
//! (at-least-once across restarts).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
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
    failed: Arc<AtomicU64>,
}

/// A record's JSON with `sensor_id`, `site` and `version` added at its end.
pub fn with_origin(payload: &[u8], origin: &Origin) -> Vec<u8> {
    let body = payload.trim_ascii_end();
    let body = body.strip_suffix(b"}").unwrap_or(body);
    let mut v = body.to_vec();
    if body.len() > 1 {
        v.push(b',');
    }
    let s = |x: &str| serde_json::to_string(x).unwrap_or_else(|_| "\"\"".into());
    v.extend_from_slice(
        format!(
            "\"sensor_id\":{},\"site\":{},\"version\":{}}}",
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
        let k = Kafka { brokers: brokers.join(","), origin: origin.clone(), producer: None, failed: Arc::default() };
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
        let value = with_origin(&r.payload, &self.origin);
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
        let before = self.failed.load(Ordering::Relaxed);
        for r in batch {
            self.produce(&p, r)?;
        }
        // Until every record is acknowledged by all in-sync replicas (or has failed).
        loop {
            if p.flush(Duration::from_millis(500)).is_ok() {
                break;
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
        let v: serde_json::Value = serde_json::from_slice(&with_origin(b"{\"id\":\"x\"}\n", &o)).expect("JSON");
        assert_eq!(v["id"], "x");
        assert_eq!(v["sensor_id"], "s\"1");
        assert_eq!(v["site"], "north");
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        let empty: serde_json::Value = serde_json::from_slice(&with_origin(b"{}", &o)).expect("JSON");
        assert_eq!(empty["site"], "north");
    }
}
