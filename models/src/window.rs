//! Fixed windows of packet time per pair: counts, distinct-value sketches and the feature
//! vector of the statistical model. Allocation-free: the sketches are fixed bitmaps.

use std::net::IpAddr;

use otsensor_dissectors::event::FunctionClass;

use crate::model::hash64;
use crate::observation::Observation;

use crate::stats::NF;
use crate::WINDOW_SECS;

/// A fixed bitmap of `64 * W` bits used as a linear-counting sketch of distinct values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bits<const W: usize>([u64; W]);

impl<const W: usize> Default for Bits<W> {
    fn default() -> Self {
        Bits([0; W])
    }
}

impl<const W: usize> Bits<W> {
    /// Marks a small value exactly (taken modulo the size).
    #[inline]
    pub(crate) fn set(&mut self, v: u64) {
        let bit = (v % (64 * W as u64)) as usize;
        if let Some(w) = self.0.get_mut(bit / 64) {
            *w |= 1u64 << (bit % 64);
        }
    }
    /// Marks a hash, mixed first (FxHash's low bits are weak).
    #[inline]
    pub(crate) fn set_hash(&mut self, h: u64) {
        // MurmurHash3's 64-bit finalizer.
        let mut x = h;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        let bit = (x % (64 * W as u64)) as usize;
        if let Some(w) = self.0.get_mut(bit / 64) {
            *w |= 1u64 << (bit % 64);
        }
    }
    /// Estimated distinct values marked: exact while sparse, linear counting beyond.
    pub(crate) fn estimate(&self) -> u32 {
        let m = (64 * W) as f64;
        let ones: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        let zeros = m - f64::from(ones);
        if zeros < 1.0 {
            return (m * m.ln()) as u32;
        }
        let est = -m * (zeros / m).ln();
        (est.round() as u32).max(ones)
    }
}

/// The window a nanosecond timestamp falls in.
pub(crate) fn window_of(ns: i64) -> i64 {
    ns.div_euclid(WINDOW_SECS * 1_000_000_000)
}

/// What one pair did in one window.
#[derive(Clone, Debug, Default)]
pub(crate) struct WindowAcc {
    pub(crate) index: i64,
    pub(crate) active: bool,
    pub(crate) first_pkt: u64,
    pub(crate) last_pkt: u64,
    pub(crate) first_ns: i64,
    pub(crate) last_ns: i64,
    pub(crate) requests: u64,
    pub(crate) responses: u64,
    pub(crate) exceptions: u64,
    pub(crate) last_error: Option<u16>,
    pub(crate) bytes: u64,
    pub(crate) reads: u64,
    pub(crate) writes: u64,
    pub(crate) controls: u64,
    pub(crate) others: u64,
    pub(crate) points: Bits<32>,
    pub(crate) funcs: Bits<4>,
    pub(crate) units: Bits<4>,
    ia_n: u64,
    ia_mean: f64,
    ia_m2: f64,
    last_req_ns: Option<i64>,
}

/// A closed window's summary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowSummary {
    pub(crate) first_pkt: u64,
    pub(crate) last_pkt: u64,
    pub(crate) first_ns: i64,
    pub(crate) last_ns: i64,
    pub(crate) requests: u64,
    pub(crate) exceptions: u64,
    pub(crate) last_error: Option<u16>,
    pub(crate) points: u32,
    pub(crate) funcs: u32,
    pub(crate) units: u32,
    pub(crate) features: [f64; NF],
    /// Closed by the end of the input rather than by time passing: it may hold a fraction
    /// of its 10 s.
    pub(crate) partial: bool,
}

impl WindowAcc {
    /// Starts the window of `ns` if the current one is another; returns the summary of the
    /// window that closed.
    #[inline]
    pub(crate) fn roll(&mut self, ns: i64, pkt: u64) -> Option<WindowSummary> {
        let w = window_of(ns);
        if self.active && w == self.index {
            self.last_pkt = pkt;
            self.last_ns = ns;
            return None;
        }
        let closed = if self.active { Some(self.summary()) } else { None };
        // Inter-arrival is measured within the window: a silent gap before it is the
        // channel_silent rule's business, not the statistical model's.
        *self = WindowAcc {
            index: w,
            active: true,
            first_pkt: pkt,
            last_pkt: pkt,
            first_ns: ns,
            last_ns: ns,
            ..Default::default()
        };
        closed
    }

    /// Closes the window for good (end of input).
    pub(crate) fn close(&mut self) -> Option<WindowSummary> {
        if !self.active {
            return None;
        }
        self.active = false;
        Some(WindowSummary { partial: true, ..self.summary() })
    }

    #[inline]
    fn request(&mut self, ns: i64, func: u16, unit: u16, class: FunctionClass, bytes: u64) {
        self.requests += 1;
        self.bytes += bytes;
        match class {
            FunctionClass::Read => self.reads += 1,
            FunctionClass::Write => self.writes += 1,
            FunctionClass::Control | FunctionClass::Program => self.controls += 1,
            FunctionClass::Diagnostic | FunctionClass::Other => self.others += 1,
        }
        self.funcs.set(u64::from(func));
        self.units.set(u64::from(unit));
        if let Some(prev) = self.last_req_ns {
            let dt = (ns - prev).max(0) as f64 * 1e-9;
            self.ia_n += 1;
            let d = dt - self.ia_mean;
            self.ia_mean += d / self.ia_n as f64;
            self.ia_m2 += d * (dt - self.ia_mean);
        }
        self.last_req_ns = Some(ns);
    }

    #[inline]
    fn response(&mut self, error: Option<u16>, bytes: u64) {
        self.responses += 1;
        self.bytes += bytes;
        if let Some(code) = error {
            self.exceptions += 1;
            self.last_error = Some(code);
        }
    }

    /// Counts an observation into the current window (after [`WindowAcc::roll`]): a
    /// request's points, function, unit and class; a response's error. The one place both
    /// learning and detection feed a window, so the rates learned and checked are the same.
    #[inline]
    pub(crate) fn record(&mut self, obs: &Observation<'_>) {
        let ns = obs.ts.as_nanos();
        if obs.is_request {
            for r in obs.points {
                self.points.set_hash(hash64(&(obs.unit, r.space, r.start)));
            }
            self.request(ns, obs.func, obs.unit, obs.class, obs.bytes);
        } else {
            self.response(obs.error_code, obs.bytes);
        }
    }

    fn summary(&self) -> WindowSummary {
        let points = self.points.estimate();
        let funcs = self.funcs.estimate();
        let units = self.units.estimate();
        let req = self.requests as f64;
        let ia_std = if self.ia_n > 1 { (self.ia_m2 / (self.ia_n - 1) as f64).sqrt() } else { 0.0 };
        let features = [
            (req).ln_1p(),
            (self.responses as f64).ln_1p(),
            (self.bytes as f64).ln_1p(),
            (self.reads as f64).ln_1p(),
            (self.writes as f64).ln_1p(),
            (self.controls as f64).ln_1p(),
            (self.others as f64).ln_1p(),
            f64::from(points).ln_1p(),
            f64::from(funcs),
            if req > 0.0 { (self.writes + self.controls) as f64 / req } else { 0.0 },
            if self.responses > 0 { self.exceptions as f64 / self.responses as f64 } else { 0.0 },
            (self.ia_mean * 1000.0).ln_1p(),
            if self.ia_mean > 0.0 { (ia_std / self.ia_mean).min(10.0) } else { 0.0 },
        ];
        WindowSummary {
            first_pkt: self.first_pkt,
            last_pkt: self.last_pkt,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            requests: self.requests,
            exceptions: self.exceptions,
            last_error: self.last_error,
            points,
            funcs,
            units,
            features,
            partial: false,
        }
    }
}

/// The distinct servers a client contacted in one window: the first held inline (most
/// clients talk to one server, and a flood of spoofed sources is all such clients), a sketch
/// from the second on.
#[derive(Clone, Debug, Default)]
pub(crate) enum ServerSet {
    #[default]
    Empty,
    One(u64),
    Many(Box<Bits<16>>),
}

impl ServerSet {
    fn insert(&mut self, h: u64) {
        match self {
            ServerSet::Empty => *self = ServerSet::One(h),
            ServerSet::One(first) if *first == h => {}
            ServerSet::One(first) => {
                let mut bits: Box<Bits<16>> = Box::default();
                bits.set_hash(*first);
                bits.set_hash(h);
                *self = ServerSet::Many(bits);
            }
            ServerSet::Many(bits) => bits.set_hash(h),
        }
    }

    /// As many as the sketch would count with every server in it.
    fn estimate(&self) -> u32 {
        match self {
            ServerSet::Empty => 0,
            ServerSet::One(_) => 1,
            ServerSet::Many(bits) => bits.estimate(),
        }
    }
}

/// What one client did in one window: the servers it contacted.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientAcc {
    pub(crate) index: i64,
    pub(crate) active: bool,
    pub(crate) first_pkt: u64,
    pub(crate) first_ns: i64,
    pub(crate) servers: ServerSet,
}

impl ClientAcc {
    /// Rolls to the window of `ns`; returns the distinct servers of the window that closed,
    /// with its first packet and time.
    #[inline]
    pub(crate) fn roll(&mut self, ns: i64, pkt: u64) -> Option<(u32, u64, i64)> {
        let w = window_of(ns);
        if self.active && w == self.index {
            return None;
        }
        let closed = self.close();
        *self = ClientAcc { index: w, active: true, first_pkt: pkt, first_ns: ns, servers: ServerSet::Empty };
        closed
    }

    /// Rolls to the window of a request's time and counts its server; returns what
    /// [`ClientAcc::roll`] returns.
    #[inline]
    pub(crate) fn record(&mut self, obs: &Observation<'_>, server: IpAddr) -> Option<(u32, u64, i64)> {
        let closed = self.roll(obs.ts.as_nanos(), obs.pkt);
        self.servers.insert(hash64(&server));
        closed
    }

    /// Whether the client's state can go without changing any verdict at window `w`: its
    /// window closed before `w` with no more servers than any host-scan threshold admits
    /// (closing it later would alert nothing, and a fresh state behaves the same).
    pub(crate) fn forgettable(&self, w: i64) -> bool {
        !self.active || (self.index < w && self.servers.estimate() <= crate::checks::window::scan_threshold(0, 5))
    }

    pub(crate) fn close(&mut self) -> Option<(u32, u64, i64)> {
        if !self.active {
            return None;
        }
        self.active = false;
        let n = self.servers.estimate();
        self.servers = ServerSet::Empty;
        Some((n, self.first_pkt, self.first_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_set_counts_as_the_sketch_would() {
        for n in [0u64, 1, 2, 3, 40, 500] {
            let (mut set, mut bits) = (ServerSet::default(), Bits::<16>::default());
            for i in (0..n).chain(0..n) {
                set.insert(crate::model::hash64(&i));
                bits.set_hash(crate::model::hash64(&i));
            }
            assert_eq!(set.estimate(), bits.estimate(), "{n} servers");
        }
    }

    #[test]
    fn sketches_count_exactly_while_sparse_and_closely_beyond() {
        let mut b: Bits<32> = Bits::default();
        for i in 0..10u64 {
            b.set(i);
        }
        assert_eq!(b.estimate(), 10);
        let mut b: Bits<32> = Bits::default();
        for i in 0..1000u64 {
            b.set_hash(crate::model::hash64(&i));
        }
        let e = b.estimate();
        assert!((850..1150).contains(&e), "{e}");
    }
}
