//! The page around the sections: head, inline CSS, the inline script, escaping and times.

use otsensor_dissectors::event::Timestamp;

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters from a capture would make the document invalid.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A packet time as `YYYY-MM-DD hh:mm:ss.mmm` (UTC).
pub fn utc(ts: Timestamp) -> String {
    let days = ts.secs.div_euclid(86_400);
    let rem = ts.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}", rem / 3600, rem % 3600 / 60, rem % 60, ts.nanos / 1_000_000)
}

/// A packet time as RFC 3339 with microseconds (`2026-11-30T23:51:40.123456Z`), for syslog
/// and ECS.
pub(crate) fn rfc3339(ts: Timestamp) -> String {
    let days = ts.secs.div_euclid(86_400);
    let rem = ts.secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, us) = (rem / 3600, rem % 3600 / 60, rem % 60, ts.nanos / 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Opens the document: no external resource of any kind, and a policy that forbids them.
pub(super) fn head(h: &mut String, title: &str) {
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'; img-src data:\">\n",
    );
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<meta name=\"generator\" content=\"otsensor\">\n<title>");
    h.push_str(&esc(title));
    h.push_str("</title>\n<style>\n");
    h.push_str(CSS);
    h.push_str("</style>\n</head>\n<body>\n");
}

/// Closes the document, with the script.
pub(super) fn tail(h: &mut String) {
    h.push_str("<script>\n");
    h.push_str(SCRIPT);
    h.push_str("</script>\n</body>\n</html>\n");
}

const CSS: &str = r#"
:root { --fg: #1b1f24; --muted: #5b6470; --line: #d7dce2; --bg: #ffffff; --band: #f4f6f8;
  --crit: #b3141b; --high: #d9480f; --med: #c28a00; --low: #5b6470; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); background: var(--bg); }
header { background: #16212e; color: #fff; padding: 14px 24px 0; }
header h1 { margin: 0; font-size: 20px; }
header .sub { margin: 2px 0 10px; color: #b9c4d0; font-family: ui-monospace, Menlo, Consolas, monospace; }
nav a { display: inline-block; color: #dbe4ee; text-decoration: none; padding: 6px 12px 8px 0; margin-right: 8px; }
nav a:hover { color: #fff; text-decoration: underline; }
main { padding: 8px 24px 24px; max-width: 1500px; }
section { margin-top: 18px; }
h2 { font-size: 17px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 13px; margin: 0 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 180px; background: var(--band); }
.card p { margin: 2px 0; } .big { font-size: 24px; font-weight: 600; }
table { border-collapse: collapse; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \2195"; color: #9aa4ae; font-size: 11px; }
table.mini td { border: 0; padding: 1px 6px 1px 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
small { color: var(--muted); }
.evidence { color: var(--muted); font-size: 12.5px; margin-top: 3px; }
.sev { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; font-weight: 600; }
.sev.critical { background: var(--crit); } .sev.high { background: var(--high); }
.sev.medium { background: var(--med); } .sev.low { background: var(--low); }
.tag { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: 11.5px; border: 1px solid var(--line); }
.tag.write { background: #fff1e0; border-color: #f0b46c; } .tag.control { background: #f3e8ff; border-color: #b48be8; }
.tag.program { background: #ffe3e3; border-color: #e8898b; }
details.pair { border: 1px solid var(--line); border-radius: 5px; margin: 6px 0; padding: 4px 10px; }
details.pair summary { cursor: pointer; }
.tools input { padding: 4px 8px; width: 320px; border: 1px solid var(--line); border-radius: 4px; }
.pager { margin: 4px 0 12px; color: var(--muted); }
.pager button { margin-right: 6px; }
.mapbox, .tlbox { overflow: auto; border: 1px solid var(--line); border-radius: 6px; background: #fbfcfd; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 6px 0; color: var(--muted); font-size: 12.5px; }
.legend svg { vertical-align: middle; }
footer { padding: 12px 24px; color: var(--muted); border-top: 1px solid var(--line); }
"#;

/// Sorting, filtering and pagination of the long tables and lists; without it the page
/// shows every row. Errors are caught and shown rather than left in the console.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  function items(c) { return Array.prototype.slice.call(c.tagName === "TABLE" ? c.tBodies[0].rows : c.children); }
  function paginate(c) {
    var size = parseInt(c.getAttribute("data-page"), 10) || 50;
    var page = parseInt(c.getAttribute("data-current") || "0", 10);
    var shown = items(c).filter(function (r) { return r.getAttribute("data-out") !== "1"; });
    var pages = Math.max(1, Math.ceil(shown.length / size));
    if (page >= pages) { page = pages - 1; }
    c.setAttribute("data-current", String(page));
    items(c).forEach(function (r) { r.style.display = "none"; });
    shown.slice(page * size, (page + 1) * size).forEach(function (r) { r.style.display = ""; });
    var bar = c.nextElementSibling;
    if (!bar || bar.className !== "pager") {
      bar = document.createElement("div");
      bar.className = "pager";
      c.parentNode.insertBefore(bar, c.nextSibling);
    }
    bar.textContent = "";
    if (pages < 2) { bar.appendChild(document.createTextNode(shown.length + " shown")); return; }
    [["\u2039 previous", page - 1], ["next \u203a", page + 1]].forEach(function (b) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b[0];
      btn.disabled = b[1] < 0 || b[1] >= pages;
      btn.addEventListener("click", function () { c.setAttribute("data-current", String(b[1])); paginate(c); });
      bar.appendChild(btn);
    });
    bar.appendChild(document.createTextNode("page " + (page + 1) + " of " + pages + " (" + shown.length + " rows)"));
  }
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v !== null) { return [0, parseFloat(v), ""]; }
    var t = cell.textContent.trim();
    var n = parseFloat(t);
    return isNaN(n) || String(n) !== t ? [1, 0, t.toLowerCase()] : [0, n, ""];
  }
  function sortBy(table, col) {
    var dir = table.getAttribute("data-sort") === col + ":asc" ? -1 : 1;
    table.setAttribute("data-sort", col + (dir === 1 ? ":asc" : ":desc"));
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) { return [key(r.cells[col]), i, r]; });
    rows.sort(function (a, b) {
      for (var k = 0; k < 3; k++) { if (a[0][k] < b[0][k]) { return -dir; } if (a[0][k] > b[0][k]) { return dir; } }
      return a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
    table.setAttribute("data-current", "0");
    paginate(table);
  }
  // A link to a row on another page (the timeline's marks) turns to that page.
  function reveal() {
    var el = location.hash.length > 1 ? document.getElementById(location.hash.slice(1)) : null;
    var c = el && el.closest("[data-page]");
    if (!c) { return; }
    el.setAttribute("data-out", "0");
    var size = parseInt(c.getAttribute("data-page"), 10) || 50;
    var shown = items(c).filter(function (r) { return r.getAttribute("data-out") !== "1"; });
    c.setAttribute("data-current", String(Math.floor(shown.indexOf(el) / size)));
    paginate(c);
    el.scrollIntoView();
  }
  try {
    window.addEventListener("hashchange", reveal);
    document.querySelectorAll("table.sortable").forEach(function (t) {
      Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
        th.addEventListener("click", function () { sortBy(t, i); });
      });
    });
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      var c = document.getElementById(input.getAttribute("data-filter"));
      input.addEventListener("input", function () {
        var q = input.value.toLowerCase();
        items(c).forEach(function (r) {
          r.setAttribute("data-out", q && r.textContent.toLowerCase().indexOf(q) < 0 ? "1" : "0");
        });
        c.setAttribute("data-current", "0");
        paginate(c);
      });
    });
    document.querySelectorAll("[data-page]").forEach(paginate);
    document.body.setAttribute("data-script", "ok");
  } catch (e) {
    document.body.setAttribute("data-script", "error: " + e);
  }
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_cross_leap_years_and_centuries() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(esc("a\u{0}b"), "a\u{fffd}b");
    }
}
