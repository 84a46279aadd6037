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
use super::sinks::Outputs;
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
    pub fn observe(&mut self, obs: &Observation<'_>, out: &Outputs) {
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
    pub fn publish_assets(&mut self, out: &Outputs) {
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
        out.append(Topic::Assets, j.as_bytes());
    }

    /// Publishes one record per pair for the minute just ended.
    fn publish_stats(&mut self, out: &Outputs) {
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
            out.append(Topic::Stats, j.as_bytes());
        }
    }

    /// The end of a run: the last (partial) minute and the inventory.
    pub fn finish(&mut self, out: &Outputs) {
        self.publish_stats(out);
        self.publish_assets(out);
    }
}
