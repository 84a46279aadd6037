//! The alert timeline: one lane per severity over the capture span, each alert a mark at its
//! first packet with a bar to its last, linked to its row in the alerts table.

use std::fmt::Write as _;

use otsensor_dissectors::event::Timestamp;
use otsensor_models::{Alert, Severity};

use super::{esc, utc};

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 14.0;
const LANE: f64 = 34.0;
const TICKS: usize = 6;

fn color(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#b3141b",
        Severity::High => "#d9480f",
        Severity::Medium => "#c28a00",
        Severity::Low => "#5b6470",
    }
}

/// Renders the timeline of `alerts` over `span`.
pub fn render(h: &mut String, span: Option<(Timestamp, Timestamp)>, alerts: &[Alert]) {
    let Some((first, last)) = span else {
        h.push_str("<p>No packets.</p>\n");
        return;
    };
    if alerts.is_empty() {
        h.push_str("<p>No alerts.</p>\n");
        return;
    }
    // Alerts can only fall inside the span, but a baseline's alerts never move it outward.
    let t0 = alerts.iter().map(|a| a.ts_first).min().map_or(first, |t| t.min(first)).as_nanos();
    let t1 = alerts.iter().map(|a| a.ts_last).max().map_or(last, |t| t.max(last)).as_nanos();
    let range = (t1 - t0).max(1) as f64;
    let x = |t: Timestamp| LEFT + (t.as_nanos() - t0) as f64 / range * (WIDTH - LEFT - RIGHT);
    let lanes = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low];
    let height = TOP + LANE * lanes.len() as f64 + 40.0;
    let _ = writeln!(
        h,
        "<div class=\"tlbox\"><svg id=\"timeline-svg\" width=\"{WIDTH:.0}\" height=\"{height:.0}\" viewBox=\"0 0 \
         {WIDTH:.0} {height:.0}\" role=\"img\" aria-label=\"Alert timeline\" font-family=\"system-ui, sans-serif\" \
         font-size=\"11\">"
    );
    for (i, s) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64;
        let n = alerts.iter().filter(|a| a.severity == *s).count();
        let _ = writeln!(
            h,
            "<rect x=\"{LEFT:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{}\" font-weight=\"600\">{} ({n})</text>",
            WIDTH - LEFT - RIGHT,
            LANE - 4.0,
            if i % 2 == 0 { "#f4f6f8" } else { "#fafbfc" },
            LEFT - 8.0,
            y + LANE / 2.0 + 2.0,
            color(*s),
            s.name()
        );
    }
    let axis_y = TOP + LANE * lanes.len() as f64;
    let _ = writeln!(
        h,
        "<line x1=\"{LEFT:.1}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\" stroke=\"#868e96\"/>",
        WIDTH - RIGHT
    );
    for k in 0..=TICKS {
        let t = Timestamp::from_nanos(t0 + ((t1 - t0) as f64 * k as f64 / TICKS as f64) as i64);
        let tx = x(t);
        // Times on the ticks; the date of the first goes in the caption.
        let label = utc(t);
        let text = label.split_once(' ').map_or(label.clone(), |(_, t)| t.to_string());
        let anchor = match k {
            0 => "start",
            TICKS => "end",
            _ => "middle",
        };
        let _ = writeln!(
            h,
            "<line x1=\"{tx:.1}\" y1=\"{axis_y:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#868e96\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#495057\">{}</text>",
            axis_y + 5.0,
            axis_y + 18.0,
            esc(&text)
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#868e96\">packet time (UTC) from {}</text>",
        WIDTH - RIGHT,
        axis_y + 34.0,
        esc(&utc(Timestamp::from_nanos(t0)))
    );
    for (i, a) in alerts.iter().enumerate() {
        let lane = lanes.iter().position(|s| *s == a.severity).unwrap_or(3);
        let y = TOP + LANE * lane as f64 + (LANE - 4.0) / 2.0;
        let (xa, xz) = (x(a.ts_first), x(a.ts_last));
        let title = format!(
            "{} {} ({}): {} [{} -> {}, packets {}-{}, count {}]",
            utc(a.ts_first),
            a.id,
            a.severity.name(),
            a.summary,
            a.src.ip,
            a.dst.ip,
            a.pkt_first,
            a.pkt_last,
            a.count
        );
        let _ = write!(h, "<a href=\"#alert-{i}\"><title>{}</title>", esc(&title));
        if xz - xa >= 2.0 {
            let _ = write!(
                h,
                "<rect x=\"{xa:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" fill=\"{}\" fill-opacity=\"0.35\"/>",
                y - 3.0,
                xz - xa,
                color(a.severity)
            );
        }
        let _ = writeln!(
            h,
            "<circle cx=\"{xa:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{}\" fill-opacity=\"0.8\" stroke=\"#fff\"/></a>",
            color(a.severity)
        );
    }
    h.push_str("</svg></div>\n");
}
