//! `otsensor baseline diff A B`: what changed from baseline A to baseline B, in words, for the
//! reviewer who must approve a model change.
//!
//! One small function per section of the baseline document, each reading only the public
//! types of `otsensor_models::baseline` and `::net`: a new section gets its own function and
//! one line in [`diff`]. Pairs are matched by (client, server, port, protocol); within a pair present in
//! both, the functions, points, value envelopes and polling are compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use otsensor_models::baseline::{Asset, Baseline, Pair, PointRanges, Polling, PortNotice, ValueEnvelope};
use otsensor_models::net::{L2Service, NetHost, Service};

/// The changes from `a` to `b`, one line each; "no change" when there is none.
pub fn diff(a: &Baseline, b: &Baseline) -> String {
    let mut lines = Vec::new();
    learning(a, b, &mut lines);
    assets(&a.assets, &b.assets, &mut lines);
    pairs(&a.pairs, &b.pairs, &mut lines);
    port_notices(&a.port_notices, &b.port_notices, &mut lines);
    services(&a.network.services, &b.network.services, &mut lines);
    hosts(&a.network.hosts, &b.network.hosts, &mut lines);
    l2(&a.network.l2, &b.network.l2, &mut lines);
    scanners(&a.network.scanners, &b.network.scanners, &mut lines);
    if lines.is_empty() {
        return "no change\n".to_string();
    }
    let mut out = String::new();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    out
}

fn learning(a: &Baseline, b: &Baseline, out: &mut Vec<String>) {
    let (x, y) = (&a.learning, &b.learning);
    if x.duration_secs != y.duration_secs || x.pdus != y.pdus {
        out.push(format!(
            "learning: {:.0} s and {} PDUs, now {:.0} s and {} PDUs ({} runs)",
            x.duration_secs, x.pdus, y.duration_secs, y.pdus, y.runs
        ));
    }
}

fn assets(a: &[Asset], b: &[Asset], out: &mut Vec<String>) {
    let old: BTreeMap<_, _> = a.iter().map(|x| (x.ip, x)).collect();
    let new: BTreeMap<_, _> = b.iter().map(|x| (x.ip, x)).collect();
    for (ip, x) in &new {
        match old.get(ip) {
            None => out.push(format!("new asset {ip} ({}, {})", x.role.name(), x.protocols.join(", "))),
            Some(o) if o.role != x.role => {
                out.push(format!("asset {ip}: role {} is now {}", o.role.name(), x.role.name()));
            }
            Some(o) if o.mac != x.mac => out.push(format!(
                "asset {ip}: MAC {} is now {}",
                o.mac.as_deref().unwrap_or("unknown"),
                x.mac.as_deref().unwrap_or("unknown")
            )),
            Some(o) if o.identity != x.identity => out.push(format!("asset {ip}: identity changed")),
            Some(_) => {}
        }
    }
    for ip in old.keys().filter(|ip| !new.contains_key(ip)) {
        out.push(format!("removed asset {ip}"));
    }
}

type PairKey = (std::net::IpAddr, std::net::IpAddr, u16, String);

fn pair_key(p: &Pair) -> PairKey {
    (p.client, p.server, p.port, p.protocol.clone())
}

fn pair_name(p: &Pair) -> String {
    format!("{} {} -> {}:{}", p.protocol, p.client, p.server, p.port)
}

fn pairs(a: &[Pair], b: &[Pair], out: &mut Vec<String>) {
    let old: BTreeMap<_, _> = a.iter().map(|p| (pair_key(p), p)).collect();
    for p in b {
        match old.get(&pair_key(p)) {
            None => out.push(format!("new pair {} ({} requests)", pair_name(p), p.requests)),
            Some(o) => {
                let name = pair_name(p);
                functions(&name, o, p, out);
                points(&name, &o.points, &p.points, out);
                envelopes(&name, &o.values, &p.values, out);
                polling(&name, &o.polling, &p.polling, out);
            }
        }
    }
    let new: BTreeSet<_> = b.iter().map(pair_key).collect();
    for p in a.iter().filter(|p| !new.contains(&pair_key(p))) {
        out.push(format!("removed pair {}", pair_name(p)));
    }
}

fn functions(pair: &str, a: &Pair, b: &Pair, out: &mut Vec<String>) {
    let old: BTreeSet<u16> = a.functions.iter().map(|f| f.func).collect();
    let new: BTreeSet<u16> = b.functions.iter().map(|f| f.func).collect();
    for f in b.functions.iter().filter(|f| !old.contains(&f.func)) {
        out.push(format!("{pair}: new function {} {} ({})", f.func, f.name, f.class.name()));
    }
    for f in a.functions.iter().filter(|f| !new.contains(&f.func)) {
        out.push(format!("{pair}: function {} {} no longer used", f.func, f.name));
    }
}

fn point_key(p: &PointRanges) -> (u16, String, &'static str) {
    (p.unit, p.space.clone(), p.access.name())
}

fn points(pair: &str, a: &[PointRanges], b: &[PointRanges], out: &mut Vec<String>) {
    let old: BTreeMap<_, _> = a.iter().map(|p| (point_key(p), p)).collect();
    for p in b {
        let (unit, space, access) = point_key(p);
        let before = old.get(&(unit, space.clone(), access)).map(|o| o.ranges.as_slice()).unwrap_or_default();
        let added: Vec<String> = p
            .ranges
            .iter()
            .filter(|r| !before.iter().any(|o| o[0] <= r[0] && r[1] <= o[1]))
            .map(|r| if r[0] == r[1] { r[0].to_string() } else { format!("{}-{}", r[0], r[1]) })
            .collect();
        if !added.is_empty() {
            out.push(format!("{pair}: unit {unit} {space} {access}: new points {}", added.join(", ")));
        }
    }
}

fn envelope_key(v: &ValueEnvelope) -> (u16, String, u32, &'static str) {
    (v.unit, v.space.clone(), v.index, v.access.name())
}

fn envelopes(pair: &str, a: &[ValueEnvelope], b: &[ValueEnvelope], out: &mut Vec<String>) {
    let old: BTreeMap<_, _> = a.iter().map(|v| (envelope_key(v), v)).collect();
    for v in b {
        let k = envelope_key(v);
        let Some(o) = old.get(&k) else { continue };
        let set_grew = v.values.iter().any(|x| !o.values.contains(x));
        if v.min < o.min || v.max > o.max || set_grew {
            out.push(format!(
                "{pair}: unit {} {} {} ({}): envelope widened from [{}, {}] to [{}, {}]",
                k.0, k.1, k.2, k.3, o.min, o.max, v.min, v.max
            ));
        }
    }
}

fn polling_key(p: &Polling) -> (u16, u16, u32, u32) {
    (p.func, p.unit, p.start, p.count)
}

fn polling(pair: &str, a: &[Polling], b: &[Polling], out: &mut Vec<String>) {
    let old: BTreeMap<_, _> = a.iter().map(|p| (polling_key(p), p)).collect();
    for p in b {
        let what = format!("function {} unit {} at {} x{}", p.func, p.unit, p.start, p.count);
        match old.get(&polling_key(p)) {
            None => out.push(format!("{pair}: new polling of {what} every {:.3} s", p.period_secs)),
            // A tenth of the period, or the learned spread if larger, is noise.
            Some(o) if (o.period_secs - p.period_secs).abs() > (o.period_secs / 10.0).max(o.spread_secs) => {
                out.push(format!("{pair}: polling of {what} every {:.3} s, was {:.3} s", p.period_secs, o.period_secs))
            }
            Some(_) => {}
        }
    }
    let new: BTreeSet<_> = b.iter().map(polling_key).collect();
    for p in a.iter().filter(|p| !new.contains(&polling_key(p))) {
        out.push(format!("{pair}: polling of function {} unit {} at {} x{} stopped", p.func, p.unit, p.start, p.count));
    }
}

fn port_notices(a: &[PortNotice], b: &[PortNotice], out: &mut Vec<String>) {
    for n in b.iter().filter(|n| !a.contains(n)) {
        out.push(format!("new port notice: {}:{} {:?}", n.server, n.port, n.kind));
    }
    for n in a.iter().filter(|n| !b.contains(n)) {
        out.push(format!("removed port notice: {}:{} {:?}", n.server, n.port, n.kind));
    }
}

fn service_name(s: &Service) -> String {
    let name = s.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    format!("{} {} -> {}:{}{name}", s.transport, s.client, s.server, s.port)
}

fn services(a: &[Service], b: &[Service], out: &mut Vec<String>) {
    let key = |s: &Service| (s.client, s.server, s.transport.clone(), s.port);
    let old: BTreeSet<_> = a.iter().map(key).collect();
    let new: BTreeSet<_> = b.iter().map(key).collect();
    for s in b.iter().filter(|s| !old.contains(&key(s))) {
        out.push(format!("new network service {}, {} flows", service_name(s), s.flows));
    }
    for s in a.iter().filter(|s| !new.contains(&key(s))) {
        out.push(format!("removed network service {}", service_name(s)));
    }
}

fn hosts(a: &[NetHost], b: &[NetHost], out: &mut Vec<String>) {
    let old: BTreeMap<_, _> = a.iter().map(|h| (h.ip, h)).collect();
    for h in b {
        let Some(o) = old.get(&h.ip) else { continue };
        let macs: Vec<&str> = h.macs.iter().filter(|m| !o.macs.contains(m)).map(String::as_str).collect();
        if !macs.is_empty() {
            out.push(format!("host {}: ARP now also binds it to {}", h.ip, macs.join(", ")));
        }
        let ttls: Vec<String> = h.ttls.iter().filter(|t| !o.ttls.contains(t)).map(u8::to_string).collect();
        if !ttls.is_empty() {
            out.push(format!("host {}: new IP TTLs {}", h.ip, ttls.join(", ")));
        }
    }
}

fn l2(a: &[L2Service], b: &[L2Service], out: &mut Vec<String>) {
    for s in b.iter().filter(|s| !a.iter().any(|o| o.mac == s.mac && o.ether_type == s.ether_type)) {
        let name = s.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        out.push(format!("{} speaks a new EtherType 0x{:04x}{name}", s.mac, s.ether_type));
    }
}

fn scanners(a: &[std::net::IpAddr], b: &[std::net::IpAddr], out: &mut Vec<String>) {
    for ip in b.iter().filter(|ip| !a.contains(ip)) {
        out.push(format!("{ip} is now a known scanner"));
    }
    for ip in a.iter().filter(|ip| !b.contains(ip)) {
        out.push(format!("{ip} is no longer a known scanner"));
    }
}
