//! The words of alerts: each rule's summary and evidence, and the phrases they share (points,
//! units, durations, error codes), apart from the logic in [`crate::checks`].
//!
//! Every builder returns `(summary, evidence)` and runs only when an alert opens (the checks
//! call them inside [`crate::alert::Folder::hit`]'s closure), so the per-PDU path formats
//! nothing.

use std::net::IpAddr;

use otsensor_dissectors::event::{Access, CriticalOp, Endpoint, FuncName, Protocol, Space};

use crate::baseline::{format_mac, space_name, PortNoticeKind, StatModel};
use crate::checks::window::NEW_PAIR_FLOOD_REQUESTS;
use crate::model::{Envelope, PairKey, PairModel, Poll};
use crate::observation::Observation;
use crate::rules_catalog::Kind;
use crate::WINDOW_SECS;

/// A summary and its evidence.
pub(crate) type Words = (String, String);

/// "14 d 0 h", "3 h 12 min", "14 min 5 s", "42 s".
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, _) => format!("{m} min {sec} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

/// "unit 1 holding_registers 40100-40101" for the points a request names (the first two).
pub(crate) fn describe_points(obs: &Observation<'_>, unit: u16) -> String {
    let mut parts: Vec<String> = Vec::new();
    obs.for_each_point(&mut |r| {
        if parts.len() < 2 {
            parts.push(points_words(r.space, r.start, r.start.saturating_add(r.count.max(1) - 1)));
        }
    });
    let at = unit_words(obs.protocol, unit);
    if parts.is_empty() {
        at.trim_end().to_string()
    } else {
        format!("{at}{}", parts.join(", "))
    }
}

/// An error code as engineers read it: Modbus exception names, other codes in hex.
pub(crate) fn error_words(protocol: Protocol, code: Option<u16>) -> String {
    match (protocol, code) {
        (Protocol::Modbus, Some(c)) => {
            let name = u8::try_from(c).map_or("UNKNOWN", otsensor_dissectors::modbus::exception_code_name);
            format!("exception {c} {name}")
        }
        (_, Some(c)) => format!("error 0x{c:04x}"),
        (_, None) => "no code".to_string(),
    }
}

/// "unit 1 " (Modbus), "outstation 10 " (DNP3), nothing where the protocol has no unit.
pub(crate) fn unit_words(protocol: Protocol, unit: u16) -> String {
    match protocol {
        Protocol::Modbus => format!("unit {unit} "),
        Protocol::Dnp3 => format!("outstation {unit} "),
        Protocol::S7comm | Protocol::S7commPlus => String::new(),
    }
}

/// A space as engineers write it: S7 areas as `DB102`, `M`, `I`, `Q`; others by their
/// baseline name (`holding_registers`, `g30v1`).
pub(crate) fn area_name(space: Space) -> String {
    match space {
        Space::S7 { area: 0x84, db } => format!("DB{db}"),
        Space::S7 { area, .. } => match area {
            0x80 => "P".to_string(),
            0x81 => "I".to_string(),
            0x82 => "Q".to_string(),
            0x83 => "M".to_string(),
            0x1c => "C".to_string(),
            0x1d => "T".to_string(),
            a => format!("area 0x{a:02x}"),
        },
        other => space_name(other),
    }
}

/// Points as engineers write them: "holding_registers 40100-40101", "g30v1 0-3",
/// "DB102 byte 8", "DB102 bit 8.1" (S7 points are numbered in bits).
pub(crate) fn points_words(space: Space, first: u32, last: u32) -> String {
    let area = area_name(space);
    match space {
        Space::S7 { .. } => {
            let (b0, i0, b1, i1) = (first / 8, first % 8, last / 8, last % 8);
            if i0 == 0 && i1 == 7 {
                if b0 == b1 {
                    format!("{area} byte {b0}")
                } else {
                    format!("{area} bytes {b0}-{b1}")
                }
            } else if first == last {
                format!("{area} bit {b0}.{i0}")
            } else {
                format!("{area} bits {b0}.{i0}-{b1}.{i1}")
            }
        }
        _ if first == last => format!("{area} {first}"),
        _ => format!("{area} {first}-{last}"),
    }
}

/// A polling signature's points: "@0 x10", or "all points" for a whole-class poll.
pub(crate) fn poll_words(p: &Poll) -> String {
    if p.start == 0 && p.count == 0 {
        "all points".to_string()
    } else {
        format!("@{} x{}", p.start, p.count)
    }
}

/// `critical operations` (kinds 20-34).
pub(crate) fn critical(
    op: CriticalOp,
    fname: FuncName,
    protocol: Protocol,
    client: Endpoint,
    server: Endpoint,
) -> Words {
    let title = Kind::Critical(op).info().title;
    (
        format!("{title}: {} sent {fname} to {}", client.ip, server),
        format!(
            "{fname} ({}) from {} to {} ({protocol}); critical operations are alerted whatever the baseline",
            op.name(),
            client,
            server
        ),
    )
}

/// `new_asset`: `ip` sent to (`sends`) or answered `other`.
pub(crate) fn new_asset(
    ip: IpAddr,
    other: IpAddr,
    sends: bool,
    fname: FuncName,
    protocol: Protocol,
    learned: &str,
) -> Words {
    let what = if sends {
        format!("{ip} sent {fname} to {other} ({protocol})")
    } else {
        format!("{ip} answered {protocol} requests from {other}")
    };
    (
        format!("New asset {ip} speaking {protocol}"),
        format!("{what}; no device at this address spoke an industrial protocol during {learned} of learning"),
    )
}

/// `mac_changed`.
pub(crate) fn mac_changed(ip: IpAddr, learned_mac: [u8; 6], seen: [u8; 6], learned: &str) -> Words {
    let (l, m) = (format_mac(learned_mac), format_mac(seen));
    (
        format!("{ip} now comes from MAC {m} (learned {l})"),
        format!(
            "{ip} was always seen at {l} during {learned} of learning and now at {m}: ARP spoofing for a man in the middle, a replaced device, or a new router in the path"
        ),
    )
}

/// `new_pair`; `client_role` is the client's learned role, if it was an asset.
pub(crate) fn new_pair(key: PairKey, fname: FuncName, client_role: Option<&str>, learned: &str) -> Words {
    let protocol = key.protocol;
    let role = match client_role {
        Some(r) => format!("; {} was known as {r}", key.client),
        None => String::new(),
    };
    (
        format!("New {protocol} pair: {} talks to {}:{} ({fname})", key.client, key.server, key.port),
        format!(
            "{} never talked {protocol} to {}:{} during {learned} of learning{role}",
            key.client, key.server, key.port
        ),
    )
}

/// `write_on_read_only_pair`; `known` says whether the pair was learned at all.
pub(crate) fn write_on_read_only_pair(
    obs: &Observation<'_>,
    client: Endpoint,
    server: Endpoint,
    known: bool,
    learned: &str,
) -> Words {
    let fname = obs.func_name;
    let target = describe_points(obs, obs.unit);
    let during = if known {
        format!("this pair only read during {learned} of learning")
    } else {
        format!("this pair was not seen at all during {learned} of learning")
    };
    (
        format!("{} wrote to {} ({fname}) on a pair that never wrote", client.ip, server),
        format!("{fname} to {target} from {}: {during}", client.ip),
    )
}

/// `read_outside_baseline` and `write_outside_baseline`: points `first..=last` of `space`,
/// with the ranges learned for that unit, space and access.
#[allow(clippy::too_many_arguments)]
pub(crate) fn outside_points(
    obs: &Observation<'_>,
    client: Endpoint,
    server: Endpoint,
    space: Space,
    access: Access,
    (first, last): (u32, u32),
    learned_ranges: Option<&[(u32, u32)]>,
    learned: &str,
) -> Words {
    let fname = obs.func_name;
    let at = unit_words(obs.protocol, obs.unit);
    let what = points_words(space, first, last);
    let area = area_name(space);
    let (noun, verb) = match access {
        Access::Write => ("writes", "wrote"),
        Access::Read => ("reads", "read"),
    };
    let known = match learned_ranges {
        Some(rs) if !rs.is_empty() => {
            let shown: Vec<String> =
                rs.iter().take(6).map(|&(a, b)| points_words(space, a, b).split_off(area.len() + 1)).collect();
            format!(
                "this pair's {noun} of {at}{area} during {learned} of learning covered only {}{}",
                shown.join(", "),
                if rs.len() > 6 { ", ..." } else { "" }
            )
        }
        _ => format!("this pair never {verb} {at}{area} during {learned} of learning"),
    };
    (
        format!("{} {verb} {at}{what} on {}, outside the learned points", client.ip, server),
        format!("{fname} of {at}{what} from {}: {known}", client.ip),
    )
}

/// `new_function_code`.
pub(crate) fn new_function_code(
    obs: &Observation<'_>,
    b: &PairModel,
    client: Endpoint,
    server: Endpoint,
    learned: &str,
) -> Words {
    let (fname, func) = (obs.func_name, obs.func);
    let used: Vec<String> = b.funcs.values().map(|f| f.name.clone()).collect();
    (
        format!("{} used {fname} ({func}) on {}, a function this pair never used", client.ip, server),
        format!(
            "{fname} from {} to {}{}: during {learned} of learning this pair used only {}",
            client.ip,
            unit_words(obs.protocol, obs.unit),
            server,
            if used.is_empty() { "no function".to_string() } else { used.join(", ") }
        ),
    )
}

/// `unseen_function_sequence`: `pname` then `fname`.
pub(crate) fn unseen_function_sequence(
    fname: FuncName,
    pname: &str,
    client: Endpoint,
    server: Endpoint,
    learned: &str,
) -> Words {
    (
        format!("{} sent {fname} right after {pname} to {}, an order never seen", client.ip, server),
        format!("{pname} -> {fname}: this transition never occurred on this pair during {learned} of learning"),
    )
}

/// `polling_period_broken`: `streak` intervals under the fast limit, the last `dt` seconds.
pub(crate) fn polling_period_broken(
    obs: &Observation<'_>,
    p: &Poll,
    (streak, dt): (u8, f64),
    client: Endpoint,
    server: Endpoint,
    learned: &str,
) -> Words {
    let fname = obs.func_name;
    let unit = unit_words(obs.protocol, obs.unit);
    (
        format!("{} polls {fname} of {unit}{} on {} far faster than learned", client.ip, poll_words(p), server),
        format!(
            "{fname} of {unit}{}: {streak} intervals in a row under {:.3} s (the last {dt:.3} s); during {learned} of learning it came every {:.2} s (spread {:.2} s, never under {:.3} s)",
            poll_words(p),
            p.too_fast_below(),
            p.mean,
            p.spread(),
            p.min_gap
        ),
    )
}

/// `channel_silent`: the recurring requests that fell silent, with their gaps.
pub(crate) fn channel_silent(key: PairKey, b: &PairModel, newly: &[(&Poll, f64)], learned: &str) -> Words {
    let parts: Vec<String> = newly
        .iter()
        .take(4)
        .map(|(p, gap)| {
            let name = b.funcs.get(&p.func).map(|f| f.name.clone()).unwrap_or_else(|| p.func.to_string());
            format!(
                "{name} of {}{} was polled every {:.2} s (spread {:.2} s) and has been silent for {}",
                unit_words(key.protocol, p.unit),
                poll_words(p),
                p.mean,
                p.spread(),
                human_duration(*gap)
            )
        })
        .collect();
    (
        format!(
            "Polling from {} to {}:{} stopped ({} recurring request{})",
            key.client,
            key.server,
            key.port,
            newly.len(),
            if newly.len() == 1 { "" } else { "s" }
        ),
        format!("{}{}; learned over {learned}", parts.join("; "), if newly.len() > 4 { "; ..." } else { "" }),
    )
}

/// `identity_changed`: object `name` now `seen`, learned `learned_value`.
pub(crate) fn identity_changed(
    name: &str,
    seen: &str,
    learned_value: &str,
    client: Endpoint,
    server: Endpoint,
    learned: &str,
) -> Words {
    (
        format!("{} now reports {name} {seen:?} (learned {learned_value:?})", server),
        format!(
            "read device identification answered {name} = {seen:?} to {}; during {learned} of learning it was {learned_value:?}: the device was replaced, reflashed, or is impersonated",
            client.ip
        ),
    )
}

/// `value_outside_envelope`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn value_outside_envelope(
    obs: &Observation<'_>,
    space: Space,
    index: u32,
    value: i64,
    write: bool,
    env: &Envelope,
    (client, server): (Endpoint, Endpoint),
    learned: &str,
) -> Words {
    let fname = obs.func_name;
    let at = unit_words(obs.protocol, obs.unit);
    let point = points_words(space, index, index);
    (
        format!(
            "{} value {} at {at}{point} on {}, outside its learned envelope",
            if write { "Wrote" } else { "Read" },
            value,
            server
        ),
        format!(
            "{fname} {} {at}{point} = {} ({}): during {learned} of learning it was {} ({} samples)",
            if write { "to" } else { "from" },
            value,
            if write { format!("written by {}", client.ip) } else { format!("read by {}", client.ip) },
            env.describe(),
            env.samples
        ),
    )
}

/// `protocol_violation`: flag `name` on a message from `src` to `dst`.
pub(crate) fn protocol_violation(obs: &Observation<'_>, name: &str, learned: &str) -> Words {
    let (fname, protocol, src, dst) = (obs.func_name, obs.protocol, obs.src, obs.dst);
    let never = format!("this pair never sent such a message during {learned} of learning");
    // The engine's own flags say how the connection behaved, not that the message is malformed.
    match name {
        "reversed_orientation" => (
            format!("{protocol} connection opened from its server port: {fname} from {src} to {dst}"),
            format!(
                "the host on the {protocol} port opened the connection toward its client (a server calling its \
                 client: a reverse shell, a scanner, a misconfigured gateway, or a replay); {never}"
            ),
        ),
        "per_segment" => (
            format!("{protocol} message from {src} to {dst} decoded from one TCP segment on its own"),
            format!(
                "{fname} from {src}: reassembly lost sync on this connection (sequence numbers that jump or repeat: \
                 a fuzzer, an injection, or heavy capture loss), so the segment was dissected on its own; {never}"
            ),
        ),
        _ => (
            format!("Malformed {protocol} message from {src} to {dst}: {name}"),
            format!("{fname} from {src} flagged {name} by the dissector; {never}"),
        ),
    }
}

/// `tcp_retransmission_conflict`: `bytes` resent with other content.
pub(crate) fn retransmission_conflict(src: Endpoint, dst: Endpoint, bytes: u64, learned: &str) -> Words {
    (
        format!("A TCP retransmission from {} to {} carried different bytes", src, dst),
        format!(
            "{bytes} bytes resent with content other than the copy first seen (the first copy was dissected): \
             someone in the path rewrites traffic, or shows the sensor one thing and the device another; \
             never seen on this connection's server during {learned} of learning"
        ),
    )
}

/// `port_protocol_mismatch`, from the notice's endpoints and the learned server side.
pub(crate) fn port_protocol_mismatch(
    kind: &PortNoticeKind,
    (src, dst): (Endpoint, Endpoint),
    server: Endpoint,
    learned: &str,
) -> Words {
    let (summary, what) = match kind {
        PortNoticeKind::UnexpectedPort(p) => (
            format!("{p} on a connection between {} and {} whose server port is not {p}'s", src, dst),
            format!(
                "{p} was identified by content on a connection whose server port is not configured for it \
                 (a non-standard port, tunnelling, or a reversed or spoofed connection)"
            ),
        ),
        PortNoticeKind::NotProtocol(p) => (
            format!("{}:{} is configured for {p} but carries something else", server.ip, server.port),
            format!("traffic between {} and {} on a {p} port is not {p}", src, dst),
        ),
        PortNoticeKind::RetransmissionConflict => (kind.to_string(), kind.to_string()),
    };
    (summary, format!("{what}; not seen during {learned} of learning"))
}

/// `flood`: `n` requests in one window; `max_mean`: the learned maximum and mean per
/// window, `None` for a pair unknown to the baseline.
/// `shared`: the requests of every pair past those followed one by one, counted together
/// (`key` is the first of them).
pub(crate) fn flood(key: PairKey, n: u64, max_mean: Option<(u64, f64)>, shared: bool, learned: &str) -> Words {
    let win = WINDOW_SECS;
    if shared {
        return (
            format!(
                "{n} requests in {win} s from new sources beyond those followed one by one (the first: {} to {}:{})",
                key.client, key.server, key.port
            ),
            format!(
                "{n} requests in one {win} s window from pairs unknown to the baseline, past the pairs followed one by one and counted together (limit {NEW_PAIR_FLOOD_REQUESTS}): a flood of new, likely spoofed, sources"
            ),
        );
    }
    (
        format!("{} sent {n} requests in {win} s to {}:{}", key.client, key.server, key.port),
        match max_mean {
            Some((max, mean)) => format!(
                "{n} requests in one {win} s window; the most in any window during {learned} of learning was {max} (mean {mean:.1})"
            ),
            None => format!(
                "{n} requests in one {win} s window from a pair unknown to the baseline (limit {NEW_PAIR_FLOOD_REQUESTS})"
            ),
        },
    )
}

/// `exception_burst`: `n` error responses in one window, the last with `last_error`.
pub(crate) fn exception_burst(key: PairKey, n: u64, last_error: Option<u16>, max: u64, learned: &str) -> Words {
    let win = WINDOW_SECS;
    (
        format!("{}:{} returned {n} errors to {} in {win} s", key.server, key.port, key.client),
        format!(
            "{n} error responses in one {win} s window (the last: {}); the most during {learned} of learning was {max}",
            error_words(key.protocol, last_error),
        ),
    )
}

/// `statistical_anomaly`: reconstruction error `err` against the model `sm`; `top`: the
/// features that moved most.
pub(crate) fn statistical_anomaly(key: PairKey, err: f64, sm: &StatModel, top: &[String]) -> Words {
    (
        format!(
            "Traffic from {} to {}:{} in a {} s window is unlike any learned window",
            key.client, key.server, key.port, WINDOW_SECS
        ),
        format!(
            "reconstruction error {err:.2} above the learned threshold {:.2} (the {:.0}th percentile of {} learning windows, with margin); moved most: {}",
            sm.threshold,
            sm.quantile * 100.0,
            sm.samples.len(),
            top.join("; ")
        ),
    )
}

/// What a scan spreads over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanOf {
    /// Distinct start addresses of one pair.
    Points,
    /// Distinct function codes of one pair.
    Functions,
    /// Distinct unit ids of one pair.
    Units,
    /// Distinct DNP3 link (outstation) addresses of one pair.
    LinkAddresses,
    /// Distinct servers of one client.
    Servers,
}

/// `scan`: `n` distinct things in one window from `client` (to `server`, for pair scans),
/// against the most learned in one window.
pub(crate) fn scan(what: ScanOf, n: u32, learned_max: u32, client: IpAddr, server: Endpoint, learned: &str) -> Words {
    let win = WINDOW_SECS;
    let (ip, port) = (server.ip, server.port);
    match what {
        ScanOf::Points => (
            format!("{client} probed about {n} distinct addresses of {ip}:{port} in {win} s"),
            format!(
                "about {n} distinct start addresses requested in one {win} s window; the most during {learned} of learning was {learned_max}"
            ),
        ),
        ScanOf::Functions => (
            format!("{client} tried {n} function codes on {ip}:{port} in {win} s"),
            format!(
                "{n} distinct function codes in one {win} s window; the most during {learned} of learning was {learned_max}"
            ),
        ),
        ScanOf::Units => (
            format!("{client} addressed {n} unit ids on {ip}:{port} in {win} s"),
            format!("{n} distinct unit ids in one {win} s window; the most during {learned} of learning was {learned_max}"),
        ),
        ScanOf::LinkAddresses => (
            format!("{client} addressed {n} DNP3 link addresses through {ip}:{port} in {win} s"),
            format!(
                "{n} distinct outstation link addresses in one {win} s window; the most during {learned} of learning was {learned_max}"
            ),
        ),
        ScanOf::Servers => (
            format!("{client} contacted about {n} servers in {win} s"),
            format!(
                "about {n} distinct servers in one {win} s window; the most this host contacted during {learned} of learning was {learned_max}"
            ),
        ),
    }
}

/// What an alert that came back adds to its evidence.
pub(crate) fn recurrence(occurrence: u32, quiet_secs: i64) -> String {
    format!("; occurrence {occurrence}: it came back after {} of silence", human_duration(quiet_secs as f64))
}

/// `new_asset` for any protocol.
pub(crate) fn new_net_asset(ip: IpAddr, other: IpAddr, learned: &str) -> Words {
    let with =
        if other.is_unspecified() { String::from("announced itself by ARP") } else { format!("talked to {other}") };
    (
        format!("New asset {ip}"),
        format!("{ip} {with}; no device at this address sent anything during {learned} of learning"),
    )
}

/// `new_service`, `remote_access`, `file_transfer`; `known` lists the services the pair used.
pub(crate) fn new_service(f: &otsensor_dissectors::net::FlowRecord, known: &str, learned: &str) -> Words {
    let svc = crate::net::service_words(f.l4, f.server.port);
    (
        format!("{} used {svc} on {}, a service never seen between them", f.client.ip, f.server.ip),
        format!(
            "{} -> {}: {svc}; services learned between them during {learned} of learning: {known}",
            f.client, f.server
        ),
    )
}

/// `new_service` for a non-IP EtherType.
pub(crate) fn new_l2_service(l: &otsensor_dissectors::net::L2Record, learned: &str) -> Words {
    let name = otsensor_dissectors::net::ether_type_name(l.ether_type).unwrap_or("unnamed");
    let (src, dst) = (format_mac(l.src), format_mac(l.dst));
    (
        format!("{src} started sending EtherType 0x{:04x} ({name})", l.ether_type),
        format!(
            "{src} -> {dst}: EtherType 0x{:04x} ({name}), never sent by this MAC during {learned} of learning",
            l.ether_type
        ),
    )
}

/// `port_scan`.
pub(crate) fn port_scan(src: IpAddr, dst: IpAddr, ports: usize, window: i64, learned: &str) -> Words {
    (
        format!("{src} probed {ports} ports of {dst}"),
        format!("{ports} ports of {dst} in {window} s that {src} never used during {learned} of learning"),
    )
}

/// `host_sweep`; `how` says through what (connections, ARP requests).
pub(crate) fn host_sweep(src: IpAddr, hosts: usize, how: &str, window: i64, learned: &str) -> Words {
    (
        format!("{src} probed {hosts} hosts"),
        format!("{how} toward {hosts} hosts in {window} s that {src} never reached during {learned} of learning"),
    )
}

/// `syn_flood`.
pub(crate) fn syn_flood(dst: Endpoint, half_open: u32, window: i64, learned_max: u32, learned: &str) -> Words {
    (
        format!("SYN flood toward {dst}: {half_open} connections not completed in {window} s"),
        format!(
            "{half_open} SYNs without a completed handshake in {window} s; at most {learned_max} per window during {learned} of learning"
        ),
    )
}

/// `arp_spoofing`.
pub(crate) fn arp_spoofing(a: &otsensor_dissectors::net::ArpPacket, learned_macs: &[[u8; 6]], learned: &str) -> Words {
    let seen = format_mac(a.sender_mac);
    let was: Vec<String> = learned_macs.iter().map(|m| format_mac(*m)).collect();
    let how = if a.is_gratuitous() {
        "a gratuitous ARP"
    } else if a.op == otsensor_dissectors::net::ArpOp::Reply {
        "an ARP reply"
    } else {
        "an ARP request"
    };
    (
        format!("{} claimed by MAC {seen}", a.sender_ip),
        format!(
            "{how} to {} binds {} to {seen}; ARP bound it to {} during {learned} of learning: a man in the middle poisoning caches, or a replaced device",
            a.target_ip,
            a.sender_ip,
            was.join(", ")
        ),
    )
}

/// `ttl_changed`.
pub(crate) fn ttl_changed(
    ip: IpAddr,
    to: Endpoint,
    ttl: u8,
    learned_ttls: &[u8],
    samples: u64,
    learned: &str,
) -> Words {
    let set: Vec<String> = learned_ttls.iter().map(u8::to_string).collect();
    (
        format!("{ip} sent to {to} with TTL {ttl}, never learned for it"),
        format!(
            "TTL {ttl}; {samples} packets of {ip} during {learned} of learning carried TTL {}: another host sending in its name, or a new hop in the path",
            set.join(", ")
        ),
    )
}

/// `tcp_injection` from a SYN with data.
pub(crate) fn tcp_injection_syn(src: Endpoint, dst: Endpoint) -> Words {
    (
        format!("{src} sent a SYN carrying data to {dst}"),
        String::from("a SYN with payload: legal but unused by real stacks, a classic of injection and evasion tools"),
    )
}

/// `ttl_changed` from a copy of a packet relayed by another path.
pub(crate) fn relayed(
    src: Endpoint,
    dst: Endpoint,
    ttl: u8,
    mac: Option<[u8; 6]>,
    owner: Option<IpAddr>,
    learned_ttls: &[u8],
    learned: &str,
) -> Words {
    let by = match (mac, owner) {
        (Some(m), Some(o)) => format!(" by {}, the MAC of {o}", format_mac(m)),
        (Some(m), None) => format!(" by {}", format_mac(m)),
        (None, _) => String::new(),
    };
    let set: Vec<String> = learned_ttls.iter().map(u8::to_string).collect();
    (
        format!("Packets from {src} to {dst} are relayed{by}"),
        format!(
            "a second copy of a packet from {src} came{by} with TTL {ttl}; its packets carried TTL {} during {learned} of learning and were never relayed so: a man in the middle forwarding the connection",
            set.join(", ")
        ),
    )
}

/// `tcp_injection` from a segment by another path.
pub(crate) fn tcp_injection_path(
    src: Endpoint,
    dst: Endpoint,
    before: u8,
    ttl: u8,
    mac: Option<[u8; 6]>,
    rst: bool,
) -> Words {
    let what = if rst { "a RST" } else { "a segment" };
    let mac_words = mac.map_or(String::new(), |m| format!(" and from MAC {}", format_mac(m)));
    (
        format!("{what} from {src} to {dst} came by another path"),
        format!(
            "on an established ICS connection, {what} from {src} arrived with TTL {ttl} (earlier {before}){mac_words}: a third host injecting into the session, or a man in the middle taking over"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s7_points_read_as_engineers_write_them() {
        let db = Space::S7 { area: 0x84, db: 102 };
        assert_eq!(points_words(db, 65, 65), "DB102 bit 8.1");
        assert_eq!(points_words(db, 64, 95), "DB102 bytes 8-11");
        assert_eq!(points_words(Space::S7 { area: 0x83, db: 0 }, 0, 7), "M byte 0");
        assert_eq!(points_words(Space::ModbusHoldingRegisters, 10, 10), "holding_registers 10");
    }

    #[test]
    fn durations_read_in_the_largest_two_units() {
        assert_eq!(human_duration(42.4), "42 s");
        assert_eq!(human_duration(845.0), "14 min 5 s");
        assert_eq!(human_duration(11_520.0), "3 h 12 min");
        assert_eq!(human_duration(14.0 * 86_400.0), "14 d 0 h");
    }
}
