//! The Prometheus text exposition format, version 0.0.4, written by hand.
//!
//! Why not the `prometheus` crate: its model is a registry of metric objects that own their
//! values, updated in place. The sensor's registry keeps one set of plain counters per worker
//! thread (no shared atomics on the packet path) and sums them only at scrape time, which that
//! model does not fit: every scrape would copy the sums into the crate's collectors just to have
//! them printed again. Its encoder also pulls in protobuf-era machinery and adds build time
//! for what is a page of code here. The format itself is small and stable
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>).
//!
//! ```
//! use otsensor::metrics::text::{Kind, TextEncoder};
//!
//! let mut enc = TextEncoder::new();
//! enc.family("otsensor_alerts_total", "Alerts raised.", Kind::Counter);
//! enc.sample("otsensor_alerts_total", &[("severity", "high"), ("family", "modbus")], 3.0);
//! assert_eq!(
//!     enc.finish(),
//!     concat!(
//!         "# HELP otsensor_alerts_total Alerts raised.\n",
//!         "# TYPE otsensor_alerts_total counter\n",
//!         "otsensor_alerts_total{severity=\"high\",family=\"modbus\"} 3\n",
//!     )
//! );
//! ```

use std::fmt::Write as _;

/// The type of a metric family, written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that only goes up (reset on restart); names end in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative `_bucket{le=...}` counts with `_sum` and `_count`.
    Histogram,
}

impl Kind {
    /// The word on the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes metric families into one `String`, in the order they are given.
///
/// Names (of metrics and labels) come from the sensor's code, not from traffic: they are
/// checked with `debug_assert!` only. Label values may come from anywhere and are escaped.
#[derive(Debug, Default)]
pub struct TextEncoder {
    buf: String,
    /// The family that samples are written to, for the debug checks.
    family: String,
}

impl TextEncoder {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a metric family: writes `# HELP` and `# TYPE` once.
    ///
    /// Each family must be started once per page, before its samples; the help text is escaped
    /// (`\\` and newlines).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        debug_assert!(valid_metric_name(name), "bad metric name {name:?}");
        debug_assert!(!self.buf.contains(&format!("# TYPE {name} ")), "family {name} written twice");
        self.buf.push_str("# HELP ");
        self.buf.push_str(name);
        self.buf.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\n' => self.buf.push_str("\\n"),
                c => self.buf.push(c),
            }
        }
        self.buf.push_str("\n# TYPE ");
        self.buf.push_str(name);
        self.buf.push(' ');
        self.buf.push_str(kind.as_str());
        self.buf.push('\n');
        self.family.clear();
        self.family.push_str(name);
    }

    /// One sample of the current family, labels as (name, value) pairs, values escaped
    /// (`\\`, `\"`, `\n`).
    ///
    /// `name` is the family's name, or for a histogram written by hand the family's name with
    /// `_bucket`, `_sum` or `_count` appended.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_with(name, labels, None, |buf| write_f64(buf, value));
    }

    /// A whole histogram sample set from an hdrhistogram recorded in nanoseconds, exported in
    /// seconds: `_bucket{le=...}` for each of `bounds_secs` (upper bounds in seconds,
    /// ascending), cumulative, then `le="+Inf"`, `_sum` and `_count`.
    ///
    /// Call [`family`](Self::family) with [`Kind::Histogram`] first. The counts are exact to the
    /// histogram's resolution: a bucket counts every value whose hdrhistogram bucket starts at
    /// or below the bound (so a value equal to the bound is counted, as Prometheus' `le` says,
    /// and so is a value just above it within the histogram's precision). `_sum` is the sum of
    /// each bucket's median value times its count, since an hdrhistogram keeps no exact sum.
    /// Bounds that are not finite, or not above the previous one, are skipped, so the output is
    /// always a valid histogram.
    pub fn histogram_from_hdr(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        h: &hdrhistogram::Histogram<u64>,
        bounds_secs: &[f64],
    ) {
        debug_assert!(labels.iter().all(|(l, _)| *l != "le"), "`le` is reserved in histograms");
        let mut bounds: Vec<(f64, u64)> = Vec::with_capacity(bounds_secs.len());
        for &b in bounds_secs {
            if !b.is_finite() || bounds.last().is_some_and(|&(prev, _)| b <= prev) {
                continue;
            }
            bounds.push((b, 0));
        }
        let mut sum_ns = 0f64;
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            let count = v.count_at_value();
            let lowest = h.lowest_equivalent(value);
            sum_ns += h.median_equivalent(value) as f64 * count as f64;
            for (bound, cum) in bounds.iter_mut() {
                // No recorded value is negative: a negative bound counts nothing.
                if *bound >= 0.0 && lowest as f64 <= *bound * 1e9 {
                    *cum += count;
                }
            }
        }
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for &(bound, cum) in &bounds {
            le.clear();
            write_f64(&mut le, bound);
            self.sample_with(&bucket, labels, Some(&le), |buf| write_u64(buf, cum));
        }
        let total = h.len();
        self.sample_with(&bucket, labels, Some("+Inf"), |buf| write_u64(buf, total));
        self.sample(&format!("{name}_sum"), labels, sum_ns / 1e9);
        self.sample_with(&format!("{name}_count"), labels, None, |buf| write_u64(buf, total));
    }

    /// The page.
    pub fn finish(self) -> String {
        self.buf
    }

    fn sample_with(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: impl FnOnce(&mut String)) {
        debug_assert!(
            !self.family.is_empty() && name.starts_with(self.family.as_str()),
            "sample {name} outside its family (current: {:?})",
            self.family
        );
        self.buf.push_str(name);
        if !labels.is_empty() || le.is_some() {
            self.buf.push('{');
            let le = le.map(|v| ("le", v));
            for (i, (label, v)) in labels.iter().copied().chain(le).enumerate() {
                debug_assert!(valid_label_name(label), "bad label name {label:?}");
                if i > 0 {
                    self.buf.push(',');
                }
                self.buf.push_str(label);
                self.buf.push_str("=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.buf.push_str("\\\\"),
                        '"' => self.buf.push_str("\\\""),
                        '\n' => self.buf.push_str("\\n"),
                        c => self.buf.push(c),
                    }
                }
                self.buf.push('"');
            }
            self.buf.push('}');
        }
        self.buf.push(' ');
        value(&mut self.buf);
        self.buf.push('\n');
    }
}

/// A sample value as Prometheus (Go's `ParseFloat`) reads it: `+Inf`, `-Inf`, `NaN`, integers
/// without a fraction, exponent notation only for very large or very small magnitudes.
fn write_f64(buf: &mut String, v: f64) {
    if v.is_nan() {
        buf.push_str("NaN");
    } else if v == f64::INFINITY {
        buf.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        buf.push_str("-Inf");
    } else {
        let a = v.abs();
        // Rust's `{}` prints the shortest digits that read back exactly, never in exponent
        // form; `{:e}` keeps 1e300 from becoming 301 characters.
        let _ = if a != 0.0 && !(1e-7..1e21).contains(&a) { write!(buf, "{v:e}") } else { write!(buf, "{v}") };
    }
}

fn write_u64(buf: &mut String, v: u64) {
    buf.push_str(itoa::Buffer::new().format(v));
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not starting with the reserved `__`.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The sensor's resident memory in bytes, for the standard `process_resident_memory_bytes`
/// gauge: `VmRSS` from `/proc/self/status` (kB there). `None` where that file is missing (not
/// Linux) or unreadable.
///
/// `/proc/self/statm` counts pages, and its page size would need `sysconf`, so `unsafe`;
/// `status` states kilobytes.
pub fn process_resident_memory_bytes() -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// The `VmRSS:   1234 kB` line of `/proc/<pid>/status`, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let kb: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kb.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    fn hdr(values_ns: &[u64]) -> hdrhistogram::Histogram<u64> {
        let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
        for &v in values_ns {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn writes_counter_gauge_and_histogram_families_exactly() {
        let mut enc = TextEncoder::new();
        enc.family("otsensor_pdus_total", "PDUs dissected.", Kind::Counter);
        enc.sample("otsensor_pdus_total", &[("protocol", "modbus"), ("class", "read")], 1234.0);
        enc.sample("otsensor_pdus_total", &[("protocol", "dnp3"), ("class", "write")], 0.0);
        enc.family("otsensor_flows", "Flows tracked now.", Kind::Gauge);
        enc.sample("otsensor_flows", &[], 17.5);
        enc.family("otsensor_stage_latency_seconds", "Time per batch in a stage.", Kind::Histogram);
        // Below 2048 ns a 3-digit hdrhistogram is exact, so the sum is too.
        enc.histogram_from_hdr(
            "otsensor_stage_latency_seconds",
            &[("stage", "dissect")],
            &hdr(&[500, 1000, 1000, 1500]),
            &[0.0000005, 0.000001, 0.00001],
        );
        let want = "\
# HELP otsensor_pdus_total PDUs dissected.
# TYPE otsensor_pdus_total counter
otsensor_pdus_total{protocol=\"modbus\",class=\"read\"} 1234
otsensor_pdus_total{protocol=\"dnp3\",class=\"write\"} 0
# HELP otsensor_flows Flows tracked now.
# TYPE otsensor_flows gauge
otsensor_flows 17.5
# HELP otsensor_stage_latency_seconds Time per batch in a stage.
# TYPE otsensor_stage_latency_seconds histogram
otsensor_stage_latency_seconds_bucket{stage=\"dissect\",le=\"0.0000005\"} 1
otsensor_stage_latency_seconds_bucket{stage=\"dissect\",le=\"0.000001\"} 3
otsensor_stage_latency_seconds_bucket{stage=\"dissect\",le=\"0.00001\"} 4
otsensor_stage_latency_seconds_bucket{stage=\"dissect\",le=\"+Inf\"} 4
otsensor_stage_latency_seconds_sum{stage=\"dissect\"} 0.000004
otsensor_stage_latency_seconds_count{stage=\"dissect\"} 4
";
        assert_eq!(enc.finish(), want);
    }

    #[test]
    fn escapes_label_values_and_help() {
        let mut enc = TextEncoder::new();
        enc.family("x_total", "a \\ b\nc \"d\"", Kind::Counter);
        enc.sample("x_total", &[("path", "C:\\dir\n\"q\"")], 1.0);
        assert_eq!(
            enc.finish(),
            "# HELP x_total a \\\\ b\\nc \"d\"\n\
             # TYPE x_total counter\n\
             x_total{path=\"C:\\\\dir\\n\\\"q\\\"\"} 1\n"
        );
    }

    #[test]
    fn spells_special_and_extreme_numbers_as_prometheus_reads_them() {
        let cases: &[(f64, &str)] = &[
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
            (-2.0, "-2"),
            (0.25, "0.25"),
            (18446744073709551615.0, "18446744073709552000"),
            (1e21, "1e21"),
            (-1.5e300, "-1.5e300"),
            (1e-7, "0.0000001"),
            (2.5e-9, "2.5e-9"),
        ];
        for &(v, want) in cases {
            let mut s = String::new();
            write_f64(&mut s, v);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn counts_a_value_equal_to_a_bound_in_that_bucket() {
        let mut enc = TextEncoder::new();
        enc.family("l_seconds", "l", Kind::Histogram);
        // 1 ms exactly, 1.01 ms (10 µs above: beyond the 3-digit resolution there), 2 s.
        enc.histogram_from_hdr("l_seconds", &[], &hdr(&[1_000_000, 1_010_000, 2_000_000_000]), &[0.001, 0.0011, 1.0]);
        let page = enc.finish();
        assert!(page.contains("l_seconds_bucket{le=\"0.001\"} 1\n"), "{page}");
        assert!(page.contains("l_seconds_bucket{le=\"0.0011\"} 2\n"), "{page}");
        assert!(page.contains("l_seconds_bucket{le=\"1\"} 2\n"), "{page}");
        assert!(page.contains("l_seconds_bucket{le=\"+Inf\"} 3\n"), "{page}");
        assert!(page.contains("l_seconds_count 3\n"), "{page}");
        let sum: f64 = page.lines().find_map(|l| l.strip_prefix("l_seconds_sum ")).unwrap().parse().unwrap();
        assert!((sum - 2.00201).abs() < 2.00201e-3, "sum {sum}");
    }

    #[test]
    fn skips_bounds_that_would_make_an_invalid_histogram() {
        let mut enc = TextEncoder::new();
        enc.family("h_seconds", "h", Kind::Histogram);
        // NaN, a bound not above the one before, +Inf (always written last) and a repeat
        // go; a negative bound stays (Prometheus allows it) and counts nothing.
        let bounds = [f64::NAN, -1.0, 0.5, 0.25, f64::INFINITY, 0.5, 2.0];
        enc.histogram_from_hdr("h_seconds", &[], &hdr(&[5]), &bounds);
        assert_eq!(
            enc.finish(),
            "# HELP h_seconds h\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"-1\"} 0\n\
             h_seconds_bucket{le=\"0.5\"} 1\n\
             h_seconds_bucket{le=\"2\"} 1\n\
             h_seconds_bucket{le=\"+Inf\"} 1\n\
             h_seconds_sum 5e-9\n\
             h_seconds_count 1\n"
        );
    }

    #[test]
    fn writes_an_empty_histogram_as_zeros() {
        let mut enc = TextEncoder::new();
        enc.family("e_seconds", "e", Kind::Histogram);
        enc.histogram_from_hdr("e_seconds", &[("stage", "a")], &hdr(&[]), &[0.1]);
        assert_eq!(
            enc.finish(),
            "# HELP e_seconds e\n# TYPE e_seconds histogram\n\
             e_seconds_bucket{stage=\"a\",le=\"0.1\"} 0\n\
             e_seconds_bucket{stage=\"a\",le=\"+Inf\"} 0\n\
             e_seconds_sum{stage=\"a\"} 0\n\
             e_seconds_count{stage=\"a\"} 0\n"
        );
    }

    #[test]
    fn reads_vm_rss_in_kilobytes() {
        let status = "Name:\totsensor\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("VmRSS:\t 12 MB\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t x kB\n"), None);
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: 18446744073709551615 kB\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process_resident_memory() {
        let rss = process_resident_memory_bytes().expect("VmRSS on Linux");
        assert!(rss > 100 * 1024 && rss % 1024 == 0, "{rss}");
    }

    /// A page like the sensor's: counters with labels, gauges, histograms with real values.
    fn realistic_page() -> String {
        let mut enc = TextEncoder::new();
        enc.family("otsensor_capture_kernel_drops_total", "Packets the kernel dropped before capture.", Kind::Counter);
        enc.sample("otsensor_capture_kernel_drops_total", &[], 0.0);
        enc.family("otsensor_pdus_total", "PDUs dissected, by protocol and operation class.", Kind::Counter);
        for (protocol, class, n) in [
            ("modbus", "read", 912_331.0),
            ("modbus", "write", 1_204.0),
            ("dnp3", "control", 12.0),
            ("s7comm", "read", 40_000_000_000.0),
        ] {
            enc.sample("otsensor_pdus_total", &[("protocol", protocol), ("class", class)], n);
        }
        enc.family("otsensor_alerts_total", "Alerts raised, by severity and family.", Kind::Counter);
        enc.sample("otsensor_alerts_total", &[("severity", "high"), ("family", "modbus \"write\"\\\n")], 3.0);
        enc.family("process_resident_memory_bytes", "Resident memory size in bytes.", Kind::Gauge);
        enc.sample("process_resident_memory_bytes", &[], process_resident_memory_bytes().unwrap_or(0) as f64);
        enc.family("otsensor_queue_fill_ratio", "How full each queue is.", Kind::Gauge);
        enc.sample("otsensor_queue_fill_ratio", &[("queue", "capture")], 0.125);
        enc.sample("otsensor_queue_fill_ratio", &[("queue", "output")], f64::NAN);
        enc.family("otsensor_stage_latency_seconds", "Time a batch spends in each stage.", Kind::Histogram);
        let bounds = [0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0];
        let mut h = hdr(&[]);
        for i in 0..10_000u64 {
            h.record(2_000 + i * i * 7).unwrap(); // 2 µs .. 0.7 s
        }
        enc.histogram_from_hdr("otsensor_stage_latency_seconds", &[("stage", "dissect")], &h, &bounds);
        enc.histogram_from_hdr("otsensor_stage_latency_seconds", &[("stage", "score")], &hdr(&[]), &bounds);
        enc.finish()
    }

    #[test]
    fn a_realistic_page_passes_promtool_check_metrics() {
        let page = realistic_page();
        let child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "promtool is missing on CI (apt-get install prometheus)"
                );
                eprintln!("notice: promtool not found, skipping the promtool check");
                return;
            }
            Err(e) => panic!("running promtool: {e}"),
        };
        child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // Exit 1 is a parse error; 3 is lint warnings only. Both fail here: the page is ours.
        assert!(out.status.success(), "promtool check metrics: {:?}\n{said}\n--- page ---\n{page}", out.status);
        assert!(said.trim().is_empty(), "promtool warns: {said}");
        // The histogram really holds the values: the +Inf bucket counts all of them.
        assert!(page.contains("otsensor_stage_latency_seconds_bucket{stage=\"dissect\",le=\"+Inf\"} 10000\n"));
    }

    #[test]
    fn promtool_check_rejects_a_broken_page() {
        // The promtool test above can fail: the same pipe reports a malformed line.
        let Ok(mut child) = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return; // reported by the test above
        };
        let page = "# TYPE x_total counter\nx_total{a=\"b} 1\n";
        child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
        assert!(!child.wait().unwrap().success());
    }
}
