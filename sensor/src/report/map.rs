//! The network map: assets as nodes grouped by policy zone, or by subnet (/24 for IPv4, /64
//! for IPv6) without a policy or outside every zone, pairs as
//! edges coloured by protocol, with write, control and program flows haloed and alerted
//! pairs in red.
//!
//! The layout is deterministic: groups in address order flow left to right in rows; in a
//! group, the clients (masters, HMIs, engineering stations) sit in the middle and the
//! servers (PLCs, RTUs, outstations) on rings around them, each in address order from the
//! top, so that the polling of a control network fans out from its centre; every coordinate
//! is printed with one decimal. Past [`MAX_NODES`] assets
//! the map clusters: one node per subnet, grouped by the next coarser prefix (/16, /48),
//! and if that is still too many, one node per /16 (/48).

use std::collections::{BTreeMap, BTreeSet};
use std::f64::consts::PI;
use std::fmt::Write as _;
use std::net::IpAddr;

use otsensor_models::baseline::Pair;
use otsensor_models::{Alert, Baseline};
use otsensor_rules::Policy;

use super::esc;

/// Most nodes drawn one per asset; past this the map clusters by subnet.
pub const MAX_NODES: usize = 100;
/// Most servers of a group with no client put on one ring; more go on several.
const CIRCLE_MAX: usize = 24;
/// Distance between the rings of servers.
const RING_GAP: f64 = 90.0;
/// Distance between neighbours on a circle, pixels (room for an address label).
const SPACING: f64 = 100.0;
/// Margin inside a group's box.
const PAD: f64 = 70.0;
/// Gap between group boxes.
const GAP: f64 = 24.0;
/// Width past which group boxes start a new row.
const ROW_WIDTH: f64 = 1400.0;

/// Classes highlighted on the map, by rank (0 is anything else).
const CLASSES: [&str; 4] = ["read", "write", "control", "program"];

/// The classes of a pair's functions, in a fixed order.
pub fn pair_classes(p: &Pair) -> Vec<&'static str> {
    const ORDER: [&str; 6] = ["read", "write", "control", "program", "diagnostic", "other"];
    ORDER.into_iter().filter(|c| p.functions.iter().any(|f| f.class.name() == *c)).collect()
}

fn rank(p: &Pair) -> usize {
    pair_classes(p).iter().filter_map(|c| CLASSES.iter().position(|k| k == c)).max().unwrap_or(0)
}

/// The prefix of `ip` of `v4` bits (IPv4) or `v6` bits (IPv6), as `addr/len`.
pub fn subnet(ip: IpAddr, v4: u32, v6: u32) -> (IpAddr, String) {
    match ip {
        IpAddr::V4(a) => {
            let mask = if v4 == 0 { 0 } else { u32::MAX << (32 - v4.min(32)) };
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            (IpAddr::V4(net), format!("{net}/{v4}"))
        }
        IpAddr::V6(a) => {
            let mask = if v6 == 0 { 0 } else { u128::MAX << (128 - v6.min(128)) };
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            (IpAddr::V6(net), format!("{net}/{v6}"))
        }
    }
}

fn proto_color(p: &str) -> &'static str {
    match p {
        "modbus" => "#1c7ed6",
        "dnp3" => "#0ca678",
        "s7comm" => "#5c940d",
        "s7comm_plus" => "#862e9c",
        _ => "#868e96",
    }
}

const ALERT_RED: &str = "#e03131";
/// A white outline under labels, so that edges crossing them do not hide them.
const HALO_TEXT: &str = "paint-order=\"stroke\" stroke=\"#f1f3f5\" stroke-width=\"3\" stroke-linejoin=\"round\"";
const HALO: [&str; 4] = ["", "#f59f00", "#7048e8", "#e64980"];

struct Node {
    label: String,
    sub: String,
    role: String,
    title: String,
    alerted: bool,
    cluster: bool,
    x: f64,
    y: f64,
}

#[derive(Default)]
struct Edge {
    protocols: BTreeSet<String>,
    rank: usize,
    alerted: bool,
    alert_only: bool,
    pairs: u64,
    requests: u64,
    detail: Vec<String>,
}

/// The group an address is drawn in: its policy zone when a policy is given (zones in file
/// order, then the addresses in no zone by subnet), else its subnet.
fn group_of(ip: IpAddr, policy: Option<&Policy>, v4: u32, v6: u32) -> ((usize, IpAddr), String) {
    let (net, label) = subnet(ip, v4, v6);
    match policy {
        None => ((0, net), label),
        Some(p) => match p.zone_of(ip) {
            Some((i, z)) => ((i, IpAddr::from([0, 0, 0, 0])), format!("zone {} (SL {})", z.name, z.security_level)),
            None => ((usize::MAX, net), format!("{label}, in no zone")),
        },
    }
}

/// Renders the legend and the map.
pub fn render(h: &mut String, b: &Baseline, alerts: &[Alert], policy: Option<&Policy>) {
    // Every address: the assets, and alert endpoints that never spoke a protocol (scans).
    let mut addrs: BTreeMap<IpAddr, Option<usize>> =
        b.assets.iter().enumerate().map(|(i, a)| (a.ip, Some(i))).collect();
    for a in alerts {
        for ip in [a.src.ip, a.dst.ip] {
            if !ip.is_unspecified() {
                addrs.entry(ip).or_insert(None);
            }
        }
    }
    if addrs.is_empty() {
        h.push_str("<p>Nothing to draw: no asset spoke Modbus, DNP3 or S7 in the captures.</p>\n");
        return;
    }
    let alerted_ips: BTreeSet<IpAddr> =
        alerts.iter().flat_map(|a| [a.src.ip, a.dst.ip]).filter(|ip| !ip.is_unspecified()).collect();

    // Node keys: the address itself, or its subnet when clustering.
    let clustered = addrs.len() > MAX_NODES;
    let (cv4, cv6, gv4, gv6) = if !clustered {
        (32, 128, 24, 64)
    } else if addrs.keys().map(|ip| subnet(*ip, 24, 64).0).collect::<BTreeSet<_>>().len() <= MAX_NODES {
        (24, 64, 16, 48)
    } else {
        (16, 48, 8, 32)
    };
    let key_of = |ip: IpAddr| subnet(ip, cv4, cv6).0;
    // group network -> (label, node keys)
    let mut groups: BTreeMap<(usize, IpAddr), (String, BTreeSet<IpAddr>)> = BTreeMap::new();
    for ip in addrs.keys() {
        let (g, glabel) = group_of(*ip, policy, gv4, gv6);
        groups.entry(g).or_insert_with(|| (glabel, BTreeSet::new())).1.insert(key_of(*ip));
    }
    let mut members: BTreeMap<IpAddr, Vec<IpAddr>> = BTreeMap::new();
    for ip in addrs.keys() {
        members.entry(key_of(*ip)).or_default().push(*ip);
    }

    // Lay out groups and nodes.
    let mut nodes: BTreeMap<IpAddr, Node> = BTreeMap::new();
    let mut boxes: Vec<(f64, f64, f64, f64, String)> = Vec::new();
    let (mut cx, mut cy, mut row_h, mut width) = (GAP, GAP, 0.0f64, 0.0f64);
    for (glabel, keys) in groups.values() {
        let n = keys.len();
        // Clients in the middle (a cluster counts as one if any of its addresses is).
        let (inner, outer): (Vec<IpAddr>, Vec<IpAddr>) = keys.iter().partition(|k| {
            members.get(k).is_some_and(|ips| {
                ips.iter().any(|ip| {
                    addrs
                        .get(ip)
                        .copied()
                        .flatten()
                        .and_then(|i| b.assets.get(i))
                        .is_some_and(|a| a.role.name() != "server")
                })
            })
        });
        let (w, hgt, places) = place(inner.len(), outer.len());
        if cx > GAP && cx + w > ROW_WIDTH {
            cx = GAP;
            cy += row_h + GAP;
            row_h = 0.0;
        }
        boxes.push((cx, cy, w, hgt, format!("{glabel} ({n} {})", if clustered { "clusters" } else { "assets" })));
        for (k, (px, py)) in inner.iter().chain(outer.iter()).zip(places) {
            let ips = members.get(k).cloned().unwrap_or_default();
            let node = make_node(*k, &ips, clustered, cv4, cv6, &addrs, b, &alerted_ips, cx + px, cy + py);
            nodes.insert(*k, node);
        }
        cx += w + GAP;
        row_h = row_h.max(hgt);
        width = width.max(cx);
    }
    let height = cy + row_h + GAP;

    // Edges, aggregated per pair of nodes (client node, server node).
    let mut edges: BTreeMap<(IpAddr, IpAddr), Edge> = BTreeMap::new();
    let alerted_pairs: BTreeSet<(IpAddr, IpAddr)> = alerts
        .iter()
        .filter(|a| !a.src.ip.is_unspecified() && !a.dst.ip.is_unspecified())
        .map(|a| {
            let (x, y) = (key_of(a.src.ip), key_of(a.dst.ip));
            (x.min(y), x.max(y))
        })
        .collect();
    for p in &b.pairs {
        let (c, s) = (key_of(p.client), key_of(p.server));
        if c == s {
            continue;
        }
        let e = edges.entry((c, s)).or_default();
        e.protocols.insert(p.protocol.clone());
        e.rank = e.rank.max(rank(p));
        e.alerted |= alerted_pairs.contains(&(c.min(s), c.max(s)));
        e.pairs += 1;
        e.requests += p.requests;
        if e.detail.len() < 8 {
            e.detail.push(format!(
                "{} -> {}:{} {} ({})",
                p.client,
                p.server,
                p.port,
                p.protocol,
                pair_classes(p).join(", ")
            ));
        }
    }
    for a in alerts {
        let (c, s) = (key_of(a.src.ip), key_of(a.dst.ip));
        if c == s || a.src.ip.is_unspecified() || a.dst.ip.is_unspecified() {
            continue;
        }
        if edges.contains_key(&(c, s)) || edges.contains_key(&(s, c)) {
            continue;
        }
        let e = edges.entry((c, s)).or_default();
        e.alerted = true;
        e.alert_only = true;
        e.protocols.insert(a.protocol.map_or("net", |p| p.name()).to_string());
        e.detail.push(format!("{} -> {} alerted, no PDU exchanged", a.src.ip, a.dst.ip));
    }

    legend(h, clustered, cv4, cv6);
    let _ = writeln!(
        h,
        "<div class=\"mapbox\"><svg id=\"netmap\" width=\"{w:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {w:.0} \
         {height:.0}\" role=\"img\" aria-label=\"Network map\" font-family=\"system-ui, sans-serif\" font-size=\"11\">",
        w = width.max(300.0)
    );
    h.push_str("<defs>");
    for (id, color) in [
        ("modbus", proto_color("modbus")),
        ("dnp3", proto_color("dnp3")),
        ("s7comm", proto_color("s7comm")),
        ("s7comm_plus", proto_color("s7comm_plus")),
        ("other", proto_color("")),
        ("alert", ALERT_RED),
    ] {
        let _ = write!(
            h,
            "<marker id=\"arrow-{id}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
             orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{color}\"/></marker>"
        );
    }
    h.push_str("</defs>\n");
    for (x, y, w, hh, label) in &boxes {
        let _ = writeln!(
            h,
            "<g class=\"group\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{hh:.1}\" rx=\"10\" \
             fill=\"#f1f3f5\" stroke=\"#ced4da\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#495057\" font-weight=\"600\">\
             {}</text></g>",
            x + 10.0,
            y + 18.0,
            esc(label)
        );
    }
    // Plain edges first, alerted ones last, so red is on top.
    let mut order: Vec<(&(IpAddr, IpAddr), &Edge)> = edges.iter().collect();
    order.sort_by_key(|(k, e)| (e.alerted, e.rank, **k));
    for ((c, s), e) in order {
        let (Some(a), Some(z)) = (nodes.get(c), nodes.get(s)) else { continue };
        edge(h, a, z, e);
    }
    for n in nodes.values() {
        node(h, n);
    }
    h.push_str("</svg></div>\n");
}

/// `k` points evenly on a circle of radius `r` around the origin, from the top, clockwise;
/// `turn` rotates by that fraction of a step (alternate rings, so nodes do not line up).
fn ring(out: &mut Vec<(f64, f64)>, k: usize, r: f64, turn: f64) {
    for i in 0..k {
        let t = -PI / 2.0 + 2.0 * PI * (i as f64 + turn) / k as f64;
        out.push((r * t.cos(), r * t.sin()));
    }
}

/// Box width, height and node positions (relative to the box) for `nc` clients, then `ns`
/// servers.
fn place(nc: usize, ns: usize) -> (f64, f64, Vec<(f64, f64)>) {
    let mut pts = Vec::with_capacity(nc + ns);
    let circle = |n: usize| n as f64 * SPACING / (2.0 * PI);
    let mut radius: f64 = 0.0;
    let mut left = ns;
    let mut r;
    if nc + ns == 1 {
        pts.push((0.0, 0.0));
        left = 0;
        r = 0.0;
    } else if nc == 0 {
        r = if ns <= CIRCLE_MAX { circle(ns).max(110.0) } else { 110.0 };
    } else {
        let r_in = if nc == 1 { 0.0 } else { circle(nc).max(60.0) };
        if nc == 1 {
            pts.push((0.0, 0.0));
        } else {
            ring(&mut pts, nc, r_in, 0.0);
        }
        radius = r_in;
        r = r_in + 120.0;
    }
    let mut index = 0;
    while left > 0 {
        let cap = ((2.0 * PI * r / SPACING).floor() as usize).max(1);
        let k = if left <= cap || (nc == 0 && ns <= CIRCLE_MAX) { left } else { cap };
        ring(&mut pts, k, r, if index % 2 == 1 { 0.5 } else { 0.0 });
        radius = r;
        left -= k;
        r += RING_GAP;
        index += 1;
    }
    let half = radius.max(30.0);
    let (cx, cy) = (PAD + half + 20.0, PAD + half);
    let pts = pts.into_iter().map(|(x, y)| (cx + x, cy + y)).collect();
    (2.0 * (PAD + half + 20.0), 2.0 * (PAD + half), pts)
}

#[allow(clippy::too_many_arguments)]
fn make_node(
    key: IpAddr,
    ips: &[IpAddr],
    clustered: bool,
    cv4: u32,
    cv6: u32,
    addrs: &BTreeMap<IpAddr, Option<usize>>,
    b: &Baseline,
    alerted_ips: &BTreeSet<IpAddr>,
    x: f64,
    y: f64,
) -> Node {
    let alerted = ips.iter().any(|ip| alerted_ips.contains(ip));
    if clustered {
        let known = ips.iter().filter(|ip| addrs.get(ip).is_some_and(Option::is_some)).count();
        let label = subnet(key, cv4, cv6).1;
        let mut roles: BTreeMap<&str, usize> = BTreeMap::new();
        for ip in ips {
            let role =
                addrs.get(ip).copied().flatten().and_then(|i| b.assets.get(i)).map_or("unseen", |a| a.role.name());
            *roles.entry(role).or_default() += 1;
        }
        let mix: Vec<String> = roles.iter().map(|(r, n)| format!("{n} {r}")).collect();
        return Node {
            title: format!("{label}: {} addresses ({known} assets): {}", ips.len(), mix.join(", ")),
            label,
            sub: format!("{} addresses", ips.len()),
            role: "cluster".into(),
            alerted,
            cluster: true,
            x,
            y,
        };
    }
    match addrs.get(&key).copied().flatten().and_then(|i| b.assets.get(i)) {
        Some(a) => {
            let ident: Vec<&str> = a.identity.values().map(String::as_str).take(2).collect();
            let mut sub = ident.join(" ");
            if sub.chars().count() > 26 {
                sub = sub.chars().take(25).collect::<String>() + "\u{2026}";
            }
            let idt: Vec<String> = a.identity.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            Node {
                label: key.to_string(),
                sub,
                role: a.role.name().to_string(),
                title: format!(
                    "{} ({}), {}, {} PDUs{}{}",
                    key,
                    a.role,
                    a.protocols.join(", "),
                    a.pdus,
                    if idt.is_empty() { "" } else { "; " },
                    idt.join("; ")
                ),
                alerted,
                cluster: false,
                x,
                y,
            }
        }
        None => Node {
            label: key.to_string(),
            sub: "no PDU".into(),
            role: "unseen".into(),
            title: format!("{key}: named by an alert, exchanged no PDU"),
            alerted,
            cluster: false,
            x,
            y,
        },
    }
}

fn node(h: &mut String, n: &Node) {
    let (x, y) = (n.x, n.y);
    let stroke = if n.alerted {
        format!("stroke=\"{ALERT_RED}\" stroke-width=\"3\"")
    } else {
        "stroke=\"#fff\" stroke-width=\"1.5\"".into()
    };
    let _ = write!(h, "<g class=\"node\"><title>{}</title>", esc(&n.title));
    match n.role.as_str() {
        "cluster" => {
            let _ = write!(h, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"18\" fill=\"#748ffc\" {stroke}/>");
        }
        "server" => {
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"22\" height=\"22\" fill=\"#343a40\" {stroke}/>",
                x - 11.0,
                y - 11.0
            );
        }
        "client+server" => {
            let _ = write!(
                h,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"22\" height=\"22\" rx=\"7\" fill=\"#1098ad\" {stroke}/>",
                x - 11.0,
                y - 11.0
            );
        }
        "engineering_station" => {
            let _ = write!(
                h,
                "<path d=\"M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} z\" fill=\"#ae3ec9\" {stroke}/>",
                y - 14.0,
                x + 14.0,
                y + 14.0,
                x - 14.0
            );
        }
        "unseen" => {
            let _ = write!(
                h,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"10\" fill=\"#fff\" stroke=\"{}\" stroke-width=\"2\" \
                 stroke-dasharray=\"3 2\"/>",
                if n.alerted { ALERT_RED } else { "#868e96" }
            );
        }
        _ => {
            let _ = write!(h, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"11\" fill=\"#339af0\" {stroke}/>");
        }
    }
    let dy = if n.cluster { 32.0 } else { 26.0 };
    let _ = write!(
        h,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#212529\" {HALO_TEXT}>{}</text>",
        y + dy,
        esc(&n.label)
    );
    if !n.sub.is_empty() {
        let _ = write!(
            h,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#6c757d\" font-size=\"10\" {HALO_TEXT}>{}</text>",
            y + dy + 12.0,
            esc(&n.sub)
        );
    }
    h.push_str("</g>\n");
}

fn edge(h: &mut String, a: &Node, z: &Node, e: &Edge) {
    let (dx, dy) = (z.x - a.x, z.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    // Stop short of the nodes so the arrow head shows; bend to the right of travel so the
    // two directions between the same nodes stay apart.
    let r0 = if a.cluster { 20.0 } else { 14.0 };
    let r1 = if z.cluster { 22.0 } else { 16.0 };
    let (x0, y0) = (a.x + ux * r0, a.y + uy * r0);
    let (x1, y1) = (z.x - ux * r1, z.y - uy * r1);
    let bend = (len * 0.08).min(30.0);
    let (mx, my) = ((x0 + x1) / 2.0 - uy * bend, (y0 + y1) / 2.0 + ux * bend);
    let proto = if e.protocols.len() == 1 { e.protocols.iter().next().map_or("", String::as_str) } else { "" };
    let (color, marker) = if e.alerted {
        (ALERT_RED, "alert")
    } else {
        let m = match proto {
            "modbus" | "dnp3" | "s7comm" | "s7comm_plus" => proto,
            _ => "other",
        };
        (proto_color(proto), m)
    };
    let width = [1.6, 2.6, 3.0, 3.4].get(e.rank).copied().unwrap_or(1.6);
    let d = format!("M{x0:.1},{y0:.1} Q{mx:.1},{my:.1} {x1:.1},{y1:.1}");
    let classes: Vec<&str> = CLASSES.iter().skip(1).take(e.rank).copied().collect();
    let title = format!(
        "{}{}{} pair(s), {} requests; {}{}",
        e.protocols.iter().cloned().collect::<Vec<_>>().join(", "),
        if classes.is_empty() { String::new() } else { format!(" [up to {}]", CLASSES.get(e.rank).unwrap_or(&"")) },
        if e.alert_only { String::from(" alert only, ") } else { format!(", {} ", e.pairs) },
        e.requests,
        e.detail.join("; "),
        if e.alerted { "; ALERTED" } else { "" }
    );
    let _ = write!(h, "<g class=\"edge\"><title>{}</title>", esc(&title));
    if let Some(halo) = HALO.get(e.rank).filter(|c| !c.is_empty()) {
        let _ = write!(
            h,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{halo}\" stroke-opacity=\"0.45\" stroke-width=\"{:.1}\" \
             stroke-linecap=\"round\"/>",
            width + 6.0
        );
    }
    let dash = if e.alert_only { " stroke-dasharray=\"6 4\"" } else { "" };
    let _ = writeln!(
        h,
        "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width:.1}\"{dash} \
         marker-end=\"url(#arrow-{marker})\"/></g>"
    );
}

fn legend(h: &mut String, clustered: bool, cv4: u32, cv6: u32) {
    h.push_str("<div class=\"legend\">");
    if clustered {
        let _ = write!(
            h,
            "<span>More than {MAX_NODES} addresses: one node per /{cv4} (IPv4) or /{cv6} (IPv6); the asset table \
             lists each.</span>"
        );
    } else {
        h.push_str("<span>Grouped by /24 (IPv4) and /64 (IPv6).</span>");
    }
    let shape = |h: &mut String, svg: &str, label: &str| {
        let _ = write!(h, "<span><svg width=\"22\" height=\"22\" viewBox=\"-11 -11 22 22\">{svg}</svg> {label}</span>");
    };
    shape(h, "<circle r=\"8\" fill=\"#339af0\"/>", "client");
    shape(h, "<rect x=\"-8\" y=\"-8\" width=\"16\" height=\"16\" fill=\"#343a40\"/>", "server");
    shape(h, "<rect x=\"-8\" y=\"-8\" width=\"16\" height=\"16\" rx=\"5\" fill=\"#1098ad\"/>", "client+server");
    shape(h, "<path d=\"M0,-10 L10,0 L0,10 L-10,0 z\" fill=\"#ae3ec9\"/>", "engineering station");
    shape(
        h,
        "<circle r=\"7\" fill=\"#fff\" stroke=\"#868e96\" stroke-width=\"2\" stroke-dasharray=\"3 2\"/>",
        "named by an alert only",
    );
    let line = |h: &mut String, color: &str, extra: &str, label: &str| {
        let _ = write!(
            h,
            "<span><svg width=\"34\" height=\"14\">{extra}<line x1=\"2\" y1=\"7\" x2=\"32\" y2=\"7\" stroke=\"{color}\" \
             stroke-width=\"2.5\"/></svg> {label}</span>"
        );
    };
    for p in ["modbus", "dnp3", "s7comm", "s7comm_plus"] {
        line(h, proto_color(p), "", p);
    }
    for (i, c) in ["write", "control", "program"].iter().enumerate() {
        let halo = HALO.get(i + 1).copied().unwrap_or("");
        let extra = format!(
            "<line x1=\"2\" y1=\"7\" x2=\"32\" y2=\"7\" stroke=\"{halo}\" stroke-opacity=\"0.45\" stroke-width=\"9\"/>"
        );
        line(h, "#868e96", &extra, &format!("{c} flows"));
    }
    line(h, ALERT_RED, "", "alerted pair");
    h.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_slash_24_and_slash_64() {
        assert_eq!(subnet("192.168.1.101".parse().unwrap(), 24, 64).1, "192.168.1.0/24");
        assert_eq!(subnet("fe80::1:2:3:4".parse().unwrap(), 24, 64).1, "fe80::/64");
        assert_eq!(subnet("2001:db8:0:7:1::9".parse().unwrap(), 24, 64).1, "2001:db8:0:7::/64");
    }

    #[test]
    fn layout_is_the_same_every_time_inside_its_box_and_keeps_nodes_apart() {
        for (nc, ns) in [(1, 0), (0, 1), (1, 1), (2, 5), (0, 7), (0, 24), (0, 25), (1, 25), (3, 100), (0, 100)] {
            let (w, hgt, places) = place(nc, ns);
            assert_eq!(places.len(), nc + ns);
            assert_eq!(place(nc, ns).2, places);
            assert!(places.iter().all(|(x, y)| *x >= 0.0 && *x <= w && *y >= 0.0 && *y <= hgt), "{nc} {ns}");
            for (i, a) in places.iter().enumerate() {
                for b in places.iter().skip(i + 1) {
                    let d = ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
                    assert!(d >= 80.0, "{nc} clients, {ns} servers: nodes {d:.1} apart");
                }
            }
        }
    }
}
