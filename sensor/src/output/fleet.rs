//! What a fleet's central view needs beside alerts, for `otsensor.assets` and
//! `otsensor.stats`: the assets seen (address, MAC and its vendor, roles, protocols),
//! published as a snapshot when they change, and per-pair traffic summaries for each minute
//! of packet time. Built from the observations the coordinator already has, in packet
//! order, so a replayed capture publishes what live capture would.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use otsensor_dissectors::event::{Protocol, Timestamp};
use otsensor_models::Observation;

use super::json::JsonBuf;
use super::queue::Topic;
use crate::inventory::vendor;
use crate::metrics::registry::{class_index, CLASS_NAMES};

#[derive(Default)]
struct Asset {
    mac: Option<[u8; 6]>,
    roles: BTreeSet<&'static str>,
    protocols: BTreeSet<&'static str>,
}

#[derive(Default)]
struct PairCounts {
    pdus: u64,
    requests: u64,
    exceptions: u64,
    bytes: u64,
    classes: [u64; 6],
}

/// Client, server, server port, protocol.
type PairKey = (IpAddr, IpAddr, u16, Protocol);

/// Where records go: the outputs' queue in a run, a vector in tests.
pub type Emit<'e> = &'e mut dyn FnMut(Topic, &[u8]);

/// The assets and this minute's pair counts.
#[derive(Default)]
pub struct Fleet {
    assets: BTreeMap<IpAddr, Asset>,
    changed: bool,
    last_ts: Option<Timestamp>,
    minute: Option<i64>,
    pairs: BTreeMap<PairKey, PairCounts>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("assets", &self.assets.len()).finish()
    }
}

impl Fleet {
    /// Takes in one PDU; a new minute of packet time publishes the last one's summaries.
    pub fn observe(&mut self, obs: &Observation<'_>, out: Emit<'_>) {
        let minute = obs.ts.secs.div_euclid(60);
        if self.minute.is_some_and(|m| m != minute) {
            self.publish_stats(out);
        }
        self.minute = Some(minute);
        self.last_ts = Some(obs.ts);
        let (client, server, client_mac, server_mac) = if obs.is_request {
            (obs.src, obs.dst, obs.src_mac, obs.dst_mac)
        } else {
            (obs.dst, obs.src, obs.dst_mac, obs.src_mac)
        };
        self.saw(client.ip, client_mac, "client", obs.protocol);
        self.saw(server.ip, server_mac, "server", obs.protocol);
        let c = self.pairs.entry((client.ip, server.ip, server.port, obs.protocol)).or_default();
        c.pdus += 1;
        c.requests += u64::from(obs.is_request);
        c.exceptions += u64::from(obs.error_code.is_some());
        c.bytes += obs.bytes;
        if let Some(n) = c.classes.get_mut(class_index(obs.class)) {
            *n += 1;
        }
    }

    fn saw(&mut self, ip: IpAddr, mac: Option<[u8; 6]>, role: &'static str, p: Protocol) {
        let a = self.assets.entry(ip).or_insert_with(|| {
            self.changed = true;
            Asset::default()
        });
        if a.mac.is_none() && mac.is_some() {
            a.mac = mac;
            self.changed = true;
        }
        self.changed |= a.roles.insert(role) | a.protocols.insert(p.name());
    }

    /// Publishes the inventory if it changed since it was last published.
    pub fn publish_assets(&mut self, out: Emit<'_>) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        let mut j = JsonBuf::new();
        j.begin();
        j.key_str("type", "assets");
        if let Some(ts) = self.last_ts {
            j.key_ts("ts", ts);
        }
        j.begin_array("assets");
        for (ip, a) in &self.assets {
            j.begin();
            j.key_ip("ip", *ip);
            if let Some(m) = a.mac {
                let mac = m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
                j.key_str("mac", &mac);
                if let Some(v) = vendor(m) {
                    j.key_str("vendor", v);
                }
            }
            j.begin_array("roles");
            a.roles.iter().for_each(|r| j.str(r));
            j.end_array();
            j.begin_array("protocols");
            a.protocols.iter().for_each(|p| j.str(p));
            j.end_array();
            j.end();
        }
        j.end_array();
        j.end();
        out(Topic::Assets, j.as_bytes());
    }

    /// Publishes one record per pair for the minute just ended.
    fn publish_stats(&mut self, out: Emit<'_>) {
        let Some(minute) = self.minute else { return };
        for ((client, server, port, proto), c) in std::mem::take(&mut self.pairs) {
            let mut j = JsonBuf::new();
            j.begin();
            j.key_str("type", "stats");
            j.key_ts("minute", Timestamp { secs: minute * 60, nanos: 0 });
            j.key_u64("seconds", 60);
            j.key_ip("client", client);
            j.key_ip("server", server);
            j.key_u64("server_port", u64::from(port));
            j.key_str("proto", proto.name());
            j.key_u64("pdus", c.pdus);
            j.key_u64("requests", c.requests);
            j.key_u64("exceptions", c.exceptions);
            j.key_u64("bytes", c.bytes);
            j.begin_object("classes");
            for (name, n) in CLASS_NAMES.iter().zip(c.classes) {
                j.key_u64(name, n);
            }
            j.end();
            j.end();
            out(Topic::Stats, j.as_bytes());
        }
    }

    /// The end of a run: the last (partial) minute and the inventory.
    pub fn finish(&mut self, out: Emit<'_>) {
        self.publish_stats(out);
        self.publish_assets(out);
    }
}

#[cfg(test)]
mod tests {
    use otsensor_dissectors::engine::{Engine, EngineConfig};
    use otsensor_dissectors::event::Pdu;
    use otsensor_dissectors::packet::linktype;
    use otsensor_models::ObservationLog;

    use super::*;

    /// Observations of Modbus requests (FC 3, read 1 register at 0) from 10.0.0.9 to 10.0.0.2
    /// at these seconds.
    fn reads(at: &[i64]) -> ObservationLog {
        // MBAP: transaction 1, protocol 0, length 6, unit 1; FC 3, address 0, quantity 1.
        let read = crate::testutil::modbus_segment([10, 0, 0, 9], [10, 0, 0, 2], &[0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1]);
        let mut log = ObservationLog::new();
        let mut engine = Engine::new(EngineConfig::default());
        for (i, &secs) in at.iter().enumerate() {
            let ts = Timestamp { secs, nanos: 0 };
            // Each segment follows the last in the stream (TCP sequence at bytes 24..28).
            let mut seg = read.clone();
            seg.splice(24..28, (1000 + 12 * i as u32).to_be_bytes());
            engine.process(ts, i as u64 + 1, linktype::RAW, &seg, &mut |p: &Pdu<'_>| {
                log.push(p);
            });
        }
        log
    }

    #[test]
    fn a_new_minute_publishes_the_last_ones_pairs_and_assets_only_when_they_change() {
        let log = reads(&[1_700_000_040, 1_700_000_050, 1_700_000_110]);
        let mut got: Vec<(Topic, serde_json::Value)> = Vec::new();
        let mut emit = |t: Topic, b: &[u8]| got.push((t, serde_json::from_slice(b).expect("JSON")));
        let mut f = Fleet::default();
        for i in 0..2 {
            f.observe(&log.get(i).expect("observation"), &mut emit);
        }
        f.publish_assets(&mut emit);
        f.publish_assets(&mut emit);
        f.observe(&log.get(2).expect("observation"), &mut emit);
        f.finish(&mut emit);
        let topics: Vec<Topic> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(topics, [Topic::Assets, Topic::Stats, Topic::Stats], "assets once, then a minute each");
        let assets = &got[0].1["assets"];
        assert_eq!(assets[0]["ip"], "10.0.0.2");
        assert_eq!(assets[0]["roles"], serde_json::json!(["server"]));
        assert_eq!(assets[1]["ip"], "10.0.0.9");
        assert_eq!(assets[1]["protocols"], serde_json::json!(["modbus"]));
        let first = &got[1].1;
        // 1,700,000,040 starts a minute (a multiple of 60); 1,700,000,110 is in the next.
        assert_eq!(first["minute"].as_f64(), Some(1_700_000_040.0));
        assert_eq!((first["client"].as_str(), first["server"].as_str()), (Some("10.0.0.9"), Some("10.0.0.2")));
        assert_eq!((first["pdus"].as_u64(), first["requests"].as_u64()), (Some(2), Some(2)));
        assert_eq!(first["classes"]["read"].as_u64(), Some(2));
        assert_eq!(got[2].1["pdus"].as_u64(), Some(1), "the last, partial minute");
    }
}
