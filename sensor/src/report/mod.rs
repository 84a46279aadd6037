//! The forensic report: one self-contained HTML page about captures.
//!
//! The page asks nothing of any network when opened: CSS, SVG and a small script are inline,
//! there is no font, image or script from elsewhere, and a Content-Security-Policy of
//! `default-src 'none'` says so to the browser. Everything taken from a capture (addresses,
//! identities, summaries, evidence, names) is HTML-escaped. Nothing depends on the wall clock
//! or on hash order: the same captures give the same bytes.
//!
//! Sections: a summary, the network map ([`map`]), the alert timeline ([`timeline`]), the
//! alerts with their evidence and packet numbers, the asset inventory and the pairs with
//! their functions and points. Long tables are paginated and filterable by the inline
//! script; without it every row is shown.

use std::fmt::Write as _;

use otsensor_dissectors::engine::EngineStats;
use otsensor_dissectors::event::{Protocol, Timestamp};
use otsensor_models::detect::human_duration;
use otsensor_models::{Alert, Baseline, Severity};

pub mod map;
pub(crate) mod page;
pub mod timeline;

pub use page::{esc, utc};

/// One capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureInfo {
    /// File name (without its directory, so reports do not depend on where it lay).
    pub name: String,
    /// Packets read.
    pub packets: u64,
    /// Time of the earliest packet.
    pub first: Option<Timestamp>,
    /// Time of the latest packet.
    pub last: Option<Timestamp>,
}

/// How the captures were scored.
#[derive(Clone, Debug, PartialEq)]
pub enum Scoring {
    /// Against a baseline file.
    Baseline {
        /// Its file name.
        file: String,
        /// Capture time it was learned from.
        learned_secs: f64,
    },
    /// Learning the first part of capture time, scoring the rest.
    LearnFor {
        /// Seconds learned.
        secs: f64,
        /// PDUs learned.
        learned_pdus: u64,
        /// Whether anything was left to score.
        scored: bool,
    },
    /// Nothing learned: critical operations only.
    CriticalOnly,
}

/// Everything the report shows.
#[derive(Clone, Debug)]
pub struct ReportData {
    /// The captures, in the order given.
    pub captures: Vec<CaptureInfo>,
    /// How they were scored.
    pub scoring: Scoring,
    /// The engine's counters.
    pub stats: EngineStats,
    /// The inventory: every PDU of the captures learned (assets, pairs, functions, points).
    pub inventory: Baseline,
    /// Alerts, sorted by first packet time.
    pub alerts: Vec<Alert>,
    /// The policy given: the map groups assets by its zones.
    pub policy: Option<otsensor_rules::Policy>,
}

impl ReportData {
    /// The first and last packet time over all captures.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self.captures.iter().filter_map(|c| c.first).min()?;
        let last = self.captures.iter().filter_map(|c| c.last).max()?;
        Some((first, last))
    }

    /// The capture an alert's first packet belongs to, when there are several: the one whose
    /// span holds its time (packet numbers count within each capture).
    fn capture_of(&self, a: &Alert) -> Option<&str> {
        if self.captures.len() < 2 {
            return None;
        }
        self.captures
            .iter()
            .find(|c| matches!((c.first, c.last), (Some(f), Some(l)) if f <= a.ts_first && a.ts_first <= l))
            .map(|c| c.name.as_str())
    }
}

/// Severities, most severe first.
const SEVERITIES: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];

/// Rows per page of the long tables.
const PAGE_ROWS: usize = 50;
/// Pairs per page of the per-pair sections.
const PAGE_PAIRS: usize = 20;

/// Renders the page.
pub fn render(d: &ReportData) -> String {
    let mut h = String::with_capacity(1 << 16);
    let title = match d.captures.as_slice() {
        [one] => one.name.clone(),
        many => format!("{} captures", many.len()),
    };
    page::head(&mut h, &format!("otsensor report: {title}"));
    let _ = write!(h, "<header><h1>otsensor forensic report</h1><p class=\"sub\">{}</p>", esc(&title));
    h.push_str(
        "<nav><a href=\"#summary\">Summary</a><a href=\"#map\">Network map</a><a href=\"#timeline\">Alert \
         timeline</a><a href=\"#alerts\">Alerts</a><a href=\"#assets\">Assets</a><a href=\"#pairs\">Pairs</a></nav>\
         </header>\n<main>\n",
    );
    summary(&mut h, d);
    h.push_str("<section id=\"map\"><h2>Network map</h2>\n");
    map::render(&mut h, &d.inventory, &d.alerts, d.policy.as_ref());
    h.push_str("</section>\n<section id=\"timeline\"><h2>Alert timeline</h2>\n");
    timeline::render(&mut h, d.span(), &d.alerts);
    h.push_str("</section>\n");
    alerts(&mut h, d);
    assets(&mut h, &d.inventory);
    pairs(&mut h, &d.inventory);
    let _ = write!(
        h,
        "</main>\n<footer>Written by otsensor {} from the captures alone; times are packet times (UTC).\
         </footer>\n",
        env!("CARGO_PKG_VERSION")
    );
    page::tail(&mut h);
    h
}

fn summary(h: &mut String, d: &ReportData) {
    h.push_str("<section id=\"summary\"><h2>Summary</h2>\n<div class=\"cards\">");
    let span = match d.span() {
        Some((f, l)) => format!(
            "{}<br>to {}<br><b>{}</b>",
            utc(f),
            utc(l),
            esc(&human_duration((l.as_nanos() - f.as_nanos()) as f64 / 1e9))
        ),
        None => "no packets".into(),
    };
    let _ = write!(h, "<div class=\"card\"><h3>Capture span</h3><p>{span}</p></div>");
    let _ = write!(
        h,
        "<div class=\"card\"><h3>Packets</h3><p class=\"big\">{}</p><p>{} bytes, {} flows</p></div>",
        d.stats.packets, d.stats.bytes, d.stats.flows
    );
    h.push_str("<div class=\"card\"><h3>PDUs per protocol</h3><table class=\"mini\">");
    for p in Protocol::ALL {
        let n = d.stats.pdus.get(p as usize).copied().unwrap_or(0);
        let _ = write!(h, "<tr><td>{}</td><td class=\"num\">{n}</td></tr>", p.name());
    }
    let _ =
        write!(h, "<tr><td>protocol violations</td><td class=\"num\">{}</td></tr></table></div>", d.stats.violations);
    h.push_str("<div class=\"card\"><h3>Alerts by severity</h3><table class=\"mini\">");
    for s in SEVERITIES {
        let n = d.alerts.iter().filter(|a| a.severity == s).count();
        let _ = write!(h, "<tr><td><span class=\"sev {0}\">{0}</span></td><td class=\"num\">{n}</td></tr>", s.name());
    }
    h.push_str("</table></div>");
    let _ = writeln!(
        h,
        "<div class=\"card\"><h3>Inventory</h3><p class=\"big\">{}</p><p>assets, {} pairs</p></div></div>",
        d.inventory.assets.len(),
        d.inventory.pairs.len()
    );
    let how = match &d.scoring {
        Scoring::Baseline { file, learned_secs } => format!(
            "Scored against the baseline <code>{}</code> (learned from {} of capture time).",
            esc(file),
            esc(&human_duration(*learned_secs))
        ),
        Scoring::LearnFor { secs, learned_pdus, scored: true } => format!(
            "Learned from the first {} of capture time ({learned_pdus} PDUs), then scored the rest against \
             what was learned: anything already happening while learning is taken as normal.",
            esc(&human_duration(*secs))
        ),
        Scoring::LearnFor { secs, .. } => format!(
            "The captures are not longer than the learning time ({}): everything was learned, nothing scored.",
            esc(&human_duration(*secs))
        ),
        Scoring::CriticalOnly => "No baseline: only critical operations (PLC stop, program download, restart, \
                                  ...) are alerted. Give <code>--baseline FILE</code> or <code>--learn-for \
                                  DURATION</code> to score everything."
            .into(),
    };
    let _ = write!(h, "<p>{how}</p>\n<table><thead><tr><th>capture</th><th>packets</th><th>first packet</th><th>last packet</th></tr></thead><tbody>");
    for c in &d.captures {
        let t = |t: Option<Timestamp>| t.map_or_else(|| "-".to_string(), utc);
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            c.packets,
            t(c.first),
            t(c.last)
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn filter_box(h: &mut String, target: &str, what: &str) {
    let _ = write!(
        h,
        "<p class=\"tools\"><input type=\"search\" data-filter=\"{target}\" placeholder=\"Filter {what}\" \
         aria-label=\"Filter {what}\"></p>"
    );
}

fn alerts(h: &mut String, d: &ReportData) {
    h.push_str("<section id=\"alerts\"><h2>Alerts</h2>\n");
    if d.alerts.is_empty() {
        h.push_str("<p>No alerts.</p></section>\n");
        return;
    }
    h.push_str("<p>Most severe first; click a column to sort. Packet numbers count from 1 in each capture.</p>");
    filter_box(h, "alert-table", "alerts");
    let _ = writeln!(
        h,
        "<table id=\"alert-table\" class=\"sortable\" data-page=\"{PAGE_ROWS}\"><thead><tr><th>first seen</th>\
         <th>severity</th><th>score</th><th>rule</th><th>source</th><th>destination</th><th>summary and evidence</th>\
         <th>count</th><th>packets</th></tr></thead><tbody>"
    );
    // Most severe first, then in time; ids keep the time order the timeline links to.
    let mut order: Vec<(usize, &Alert)> = d.alerts.iter().enumerate().collect();
    order.sort_by_key(|(i, a)| (std::cmp::Reverse(a.severity), *i));
    for (i, a) in order {
        let pkts = if a.pkt_first == a.pkt_last {
            a.pkt_first.to_string()
        } else {
            format!("{}&ndash;{}", a.pkt_first, a.pkt_last)
        };
        let cap = d.capture_of(a).map(|c| format!("<br><small>{}</small>", esc(c))).unwrap_or_default();
        let mitre = a.mitre.map(|m| format!(" <small>ATT&amp;CK {}</small>", esc(m))).unwrap_or_default();
        let last =
            if a.ts_last == a.ts_first { String::new() } else { format!("<br><small>to {}</small>", utc(a.ts_last)) };
        let _ = writeln!(
            h,
            "<tr id=\"alert-{i}\" class=\"row-{sev}\"><td data-v=\"{ns}\">{first}{last}</td><td data-v=\"{sevn}\">\
             <span class=\"sev {sev}\">{sev}</span></td><td class=\"num\">{score}</td><td><code>{id}</code> \
             <small>({rule_id} rev {rev})</small><br>{name}{mitre}</td><td>{src}</td><td>{dst}</td><td>{summary}\
             <div class=\"evidence\">{evidence}</div></td><td class=\"num\">{count}</td><td data-v=\"{pf}\">{pkts}{cap}\
             </td></tr>",
            ns = a.ts_first.as_nanos(),
            first = utc(a.ts_first),
            sevn = a.severity as u8,
            sev = a.severity.name(),
            score = a.score,
            id = esc(&a.id),
            rule_id = a.rule_id,
            rev = a.rev,
            name = esc(a.name),
            src = esc(&endpoint(a.src.ip, a.src.port)),
            dst = esc(&endpoint(a.dst.ip, a.dst.port)),
            summary = esc(&a.summary),
            evidence = esc(&a.evidence),
            count = a.count,
            pf = a.pkt_first,
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

fn assets(h: &mut String, b: &Baseline) {
    h.push_str("<section id=\"assets\"><h2>Assets</h2>\n");
    if b.assets.is_empty() {
        h.push_str("<p>No asset spoke Modbus, DNP3 or S7 in the captures.</p></section>\n");
        return;
    }
    filter_box(h, "asset-table", "assets");
    let _ = writeln!(
        h,
        "<table id=\"asset-table\" class=\"sortable\" data-page=\"{PAGE_ROWS}\"><thead><tr><th>address</th><th>role</th>\
         <th>protocols</th><th>MAC</th><th>PDUs</th><th>identity</th></tr></thead><tbody>"
    );
    for (i, a) in b.assets.iter().enumerate() {
        let mut identity = String::new();
        for (k, v) in &a.identity {
            let _ = write!(identity, "<div><b>{}</b>: {}</div>", esc(k), esc(v));
        }
        let mac = match (&a.mac, a.mac_varies) {
            (Some(m), false) => esc(m),
            (Some(m), true) => format!("{} <small>(varies)</small>", esc(m)),
            (None, _) => "-".into(),
        };
        let _ = writeln!(
            h,
            "<tr><td data-v=\"{i}\"><code>{ip}</code></td><td>{role}</td><td>{protos}</td><td>{mac}</td>\
             <td class=\"num\">{pdus}</td><td>{identity}</td></tr>",
            ip = esc(&a.ip.to_string()),
            role = esc(a.role.name()),
            protos = esc(&a.protocols.join(", ")),
            pdus = a.pdus,
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

fn pairs(h: &mut String, b: &Baseline) {
    h.push_str("<section id=\"pairs\"><h2>Pairs</h2>\n");
    if b.pairs.is_empty() {
        h.push_str("<p>No pair.</p></section>\n");
        return;
    }
    filter_box(h, "pair-list", "pairs");
    let _ = writeln!(h, "<div id=\"pair-list\" data-page=\"{PAGE_PAIRS}\">");
    for p in &b.pairs {
        let classes = map::pair_classes(p);
        let _ = writeln!(
            h,
            "<details class=\"pair\"><summary><code>{client}</code> &rarr; <code>{server}</code> {proto} \
             &middot; {req} requests, {resp} responses{flags}</summary>",
            client = esc(&p.client.to_string()),
            server = esc(&endpoint(p.server, p.port)),
            proto = esc(&p.protocol),
            req = p.requests,
            resp = p.responses,
            flags = classes
                .iter()
                .filter(|c| matches!(**c, "write" | "control" | "program"))
                .map(|c| format!(" <span class=\"tag {c}\">{c}</span>"))
                .collect::<String>(),
        );
        h.push_str(
            "<table><thead><tr><th>function</th><th>name</th><th>class</th><th>requests</th><th>responses</th>\
             <th>exceptions</th></tr></thead><tbody>",
        );
        for f in &p.functions {
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td><span class=\"tag {c}\">{c}</span></td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                f.func,
                esc(&f.name),
                f.requests,
                f.responses,
                f.exceptions,
                c = esc(f.class.name()),
            );
        }
        h.push_str("</tbody></table>\n");
        if !p.points.is_empty() {
            h.push_str(
                "<table><thead><tr><th>unit</th><th>space</th><th>access</th><th>points</th></tr></thead><tbody>",
            );
            for pr in &p.points {
                let mut ranges = String::new();
                for (i, [a, z]) in pr.ranges.iter().enumerate() {
                    if i > 0 {
                        ranges.push_str(", ");
                    }
                    if a == z {
                        let _ = write!(ranges, "{a}");
                    } else {
                        let _ = write!(ranges, "{a}&ndash;{z}");
                    }
                }
                if pr.coarsened {
                    ranges.push_str(" <small>(merged: covers more than was seen)</small>");
                }
                let _ = write!(
                    h,
                    "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td><td>{ranges}</td></tr>",
                    pr.unit,
                    esc(&pr.space),
                    esc(pr.access.name()),
                );
            }
            h.push_str("</tbody></table>\n");
        }
        h.push_str("</details>\n");
    }
    h.push_str("</div>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc("<script>\"x\" & 'y'</script>"), "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;");
    }

    #[test]
    fn formats_packet_times_as_utc() {
        assert_eq!(utc(Timestamp { secs: 0, nanos: 0 }), "1970-01-01 00:00:00.000");
        assert_eq!(utc(Timestamp { secs: 1_481_830_029, nanos: 123_456_789 }), "2016-12-15 19:27:09.123");
        assert_eq!(utc(Timestamp { secs: 951_782_400, nanos: 0 }), "2000-02-29 00:00:00.000");
    }
}
