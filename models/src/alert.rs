//! Alerts, and the folding that keeps them few: repeats of one rule on one subject within
//! [`FOLD_WINDOW_SECS`] become one alert with a count, rules that report something new
//! report it once, and again only when it comes back after a quiet period
//! ([`FIRST_QUIET_SECS`], doubling with each recurrence up to [`MAX_QUIET_SECS`]: an attacker
//! who returns an hour later is seen, a newcomer nobody reviewed does not flood), and each
//! rule on each pair may open at most
//! [`MAX_FOLDS_PER_RULE_PAIR`] alerts per window (the rest fold into one "and more" alert),
//! so a flood of one kind cannot bury the others.

use otsensor_dissectors::event::{Endpoint, FunctionClass, Protocol, Space, Timestamp};
use rustc_hash::FxHashMap;

use crate::hash_bits::HashBits;
use crate::rules_catalog::{impact, score, Family, Kind, RuleInfo, Severity};

/// Repeats within this many seconds of packet time fold into one alert.
pub const FOLD_WINDOW_SECS: i64 = 60;
/// Alerts one rule may open on one pair per fold window; further distinct subjects fold
/// into a single overflow alert.
pub const MAX_FOLDS_PER_RULE_PAIR: u32 = 5;
/// Alerts one rule may open across all pairs per fold window (a scan of thousands of
/// hosts is a few alerts, not thousands); the rest fold into one overflow alert.
pub const MAX_FOLDS_PER_RULE: u32 = 50;
/// Of the [`MAX_FOLDS_PER_RULE`], those that occurrences from addresses the baseline does not
/// know may open: a flood of spoofed sources fills these, and the rest stay for the
/// baseline's own devices (a master reaching a new PLC during the flood is alerted on its
/// own, not folded into the flood's overflow alert).
pub const MAX_STRANGER_FOLDS_PER_RULE: u32 = 25;
/// Detail (and, for the all-pairs limit, subject) key of the overflow alerts.
const OVERFLOW: u64 = u64::MAX;
/// Subject key of the overflow alert of strangers' occurrences.
const STRANGERS_OVERFLOW: u64 = u64::MAX - 1;
/// Silence, in seconds of packet time, after which something new that was alerted is
/// alerted again when it recurs.
pub const FIRST_QUIET_SECS: i64 = 600;
/// The longest quiet period: the period doubles with each recurrence up to this.
pub const MAX_QUIET_SECS: i64 = 86_400;
/// Once-keys remembered (what alerted, to stay quiet until it recurs): past this, those whose
/// quiet period is over are forgotten (they would alert again anyway; only their recurrence
/// count is lost), then the least recently seen. A sustained flood of new subjects (a new
/// asset per spoofed source, 50 a window) must not grow this table for as long as it lasts.
pub const MAX_ONCE_KEYS: usize = 1 << 16;

/// One alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// `<family>.<name>`, e.g. `modbus.new_function_code`.
    pub id: String,
    /// Numeric rule id.
    pub rule_id: u32,
    /// Rule revision.
    pub rev: u32,
    /// Human name of the rule.
    pub name: &'static str,
    /// Severity, from the score.
    pub severity: Severity,
    /// 0-100.
    pub score: u8,
    /// Time of the first occurrence (packet time).
    pub ts_first: Timestamp,
    /// Time of the last occurrence folded in.
    pub ts_last: Timestamp,
    /// Packet number of the first occurrence.
    pub pkt_first: u64,
    /// Packet number of the last occurrence.
    pub pkt_last: u64,
    /// Source (the client for pair rules).
    pub src: Endpoint,
    /// Destination (the server for pair rules).
    pub dst: Endpoint,
    /// Protocol, for protocol rules.
    pub protocol: Option<Protocol>,
    /// One sentence.
    pub summary: String,
    /// The baseline fact violated and what was seen.
    pub evidence: String,
    /// Occurrences folded into this alert.
    pub count: u64,
    /// MITRE ATT&CK for ICS technique.
    pub mitre: Option<&'static str>,
    /// The points the alert is about, for the rules about points (suppressions name them).
    pub point: Option<AlertPoint>,
    /// 1 for the first alert of its subject; n for the n-th time it came back after a
    /// quiet period.
    pub occurrence: u32,
    /// What `otsensor baseline accept` learns from this alert, for the rules about
    /// something new.
    pub learn: Option<Learnable>,
}

/// The fact an alert is about, as the baseline would hold it once accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learnable {
    /// A host (the alert's source).
    Asset,
    /// A service (transport and port) between the alert's source and destination.
    Service(otsensor_dissectors::net::L4, u16),
    /// A function code on the alert's pair.
    Function(u16),
    /// An ARP binding of the alert's source address to a MAC.
    Binding([u8; 6]),
    /// A TTL of the alert's source address.
    Ttl(u8),
}

/// Points of one unit and space that an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertPoint {
    /// Unit (Modbus unit id, DNP3 outstation address; 0 for S7).
    pub unit: u16,
    /// Address space.
    pub space: Space,
    /// First index.
    pub first: u32,
    /// Last index.
    pub last: u32,
}

/// One occurrence of a detection, before folding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Occ {
    pub(crate) kind: Kind,
    pub(crate) family: Family,
    /// Hash of the pair (or host) the rule is about.
    pub(crate) subject: u64,
    /// What, within the subject: a function code, a point, a value key.
    pub(crate) detail: u64,
    pub(crate) ts: Timestamp,
    pub(crate) pkt: u64,
    /// Last packet the occurrence covers (a window's last), else `ts` and `pkt` again.
    pub(crate) ts_last: Timestamp,
    pub(crate) pkt_last: u64,
    pub(crate) src: Endpoint,
    pub(crate) dst: Endpoint,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) class: Option<FunctionClass>,
    /// How far from normal, about 0.8-1.3.
    pub(crate) deviation: f64,
    /// Criticality of the asset concerned (the server of a pair), 1.0 by default.
    pub(crate) criticality: f64,
    /// Lowest score the alert may have (a policy rule's own severity); 0 for the rest.
    pub(crate) min_score: u8,
    /// The points concerned, for the rules about points.
    pub(crate) point: Option<AlertPoint>,
    /// What accepting the alert would learn.
    pub(crate) learn: Option<Learnable>,
    /// The source is an address the baseline does not know: it opens folds within
    /// [`MAX_STRANGER_FOLDS_PER_RULE`].
    pub(crate) stranger: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FoldKey {
    kind: Kind,
    family: Family,
    subject: u64,
    detail: u64,
}

/// The fold keys that may have an open fold or a done record: a set that holds at least those
/// (a bit per hash, never a false "absent"), so that an occurrence of a subject never seen
/// (each spoofed source of a flood) skips the probes of both maps, two cache misses in
/// tables of up to [`MAX_ONCE_KEYS`]. Bits of keys gone stay set until [`Folder::sweep`]
/// rebuilds it.
#[derive(Debug)]
struct SeenKeys {
    bits: HashBits,
    /// Keys added since the last rebuild (each at most one bit more).
    added: usize,
}

/// Bits of [`SeenKeys`]: 128 KiB, a few percent of them set by [`MAX_ONCE_KEYS`] keys.
const SEEN_BITS_LOG2: u32 = 20;

impl Default for SeenKeys {
    fn default() -> Self {
        SeenKeys { bits: HashBits::new(SEEN_BITS_LOG2), added: 0 }
    }
}

impl SeenKeys {
    fn add(&mut self, key: &FoldKey) {
        self.bits.add(crate::model::hash64(key));
        self.added += 1;
    }

    /// False only if `key` was never added since the last clear.
    fn may_hold(&self, key: &FoldKey) -> bool {
        self.bits.may_hold(crate::model::hash64(key))
    }

    fn clear(&mut self) {
        self.bits.clear();
        self.added = 0;
    }
}

/// Kinds per family in [`RuleLimits`]: a kind's number is the last two digits of its rule id.
const KIND_SLOTS: usize = 100;

/// A rule's index in [`RuleLimits`], from its family and kind numbers (unique per rule,
/// as its rule id is).
fn rule_slot(kind: Kind, family: Family) -> usize {
    family.number() as usize * KIND_SLOTS + kind.number() as usize % KIND_SLOTS
}

/// A rule's alerts opened in one fold window: in all, and for strangers; and where the
/// occurrences past the rule's limit are counted ([`Folder::pending`]).
#[derive(Clone, Copy, Debug)]
struct RuleCount {
    window: i64,
    opened: u32,
    by_strangers: u32,
    /// 1 + the index in [`Folder::pending`] of the counts of the rule's overflow fold across
    /// all pairs, and of its overflow fold of strangers only; 0 when none is kept. (A slot
    /// reset for a new window forgets them; what they counted is added at the next sweep.)
    pending_all: u32,
    pending_strangers: u32,
}

impl RuleCount {
    const NONE: RuleCount =
        RuleCount { window: i64::MIN, opened: 0, by_strangers: 0, pending_all: 0, pending_strangers: 0 };

    /// Where the counts of the overflow fold of strangers only, or of all, are kept.
    fn pending_at(&mut self, strangers_only: bool) -> &mut u32 {
        if strangers_only {
            &mut self.pending_strangers
        } else {
            &mut self.pending_all
        }
    }

    /// Whether the rule may open no more alerts in this window for a source that is a
    /// `stranger` or not.
    fn full(&self, stranger: bool) -> bool {
        self.opened >= MAX_FOLDS_PER_RULE || (stranger && self.by_strangers >= MAX_STRANGER_FOLDS_PER_RULE)
    }
}

/// Per rule, the fold window of its count and the alerts it opened in it: an array indexed
/// by rule, since every occurrence asks.
#[derive(Debug)]
struct RuleLimits {
    slots: Vec<RuleCount>,
    /// Never used: a rule outside the array (there is none) would count here.
    spare: RuleCount,
}

impl Default for RuleLimits {
    fn default() -> Self {
        RuleLimits { slots: vec![RuleCount::NONE; Family::ALL.len() * KIND_SLOTS], spare: RuleCount::NONE }
    }
}

impl RuleLimits {
    fn forget_pending(&mut self) {
        for s in &mut self.slots {
            (s.pending_all, s.pending_strangers) = (0, 0);
        }
    }

    fn slot(&mut self, kind: Kind, family: Family) -> &mut RuleCount {
        match self.slots.get_mut(rule_slot(kind, family)) {
            Some(s) => s,
            None => &mut self.spare,
        }
    }
}

/// Occurrences counted into a rule's open overflow fold since the last sweep. A flood's
/// every packet lands in such a fold; counting it here, where its rule's slot points, spares
/// a probe of the open folds per occurrence. Added into the fold before a sweep reads it.
#[derive(Clone, Copy, Debug)]
struct Pending {
    key: FoldKey,
    count: u64,
    ts_last: Timestamp,
    pkt_last: u64,
}

#[derive(Debug)]
struct Fold {
    alert: Alert,
    opened_ns: i64,
    /// Quiet period before the subject may alert again (rules that alert once).
    quiet_ns: i64,
}

/// A subject that alerted once: when it was last seen, how long it must stay quiet to be
/// alerted again, and how many times it alerted.
#[derive(Clone, Copy, Debug)]
struct Done {
    last_ns: i64,
    quiet_ns: i64,
    occurrence: u32,
}

/// Where a once key stands (see [`Folder::once_state`]).
enum Once {
    /// Alerted, and not quiet long enough to alert again.
    Quiet,
    /// Alerted, and back after its quiet period: the next occurrence.
    Back(Done),
    /// Never alerted (or forgotten).
    New,
}

/// Folds occurrences into alerts.
#[derive(Debug, Default)]
pub(crate) struct Folder {
    open: FxHashMap<FoldKey, Fold>,
    /// Counts of open overflow folds not yet added to them (see [`Pending`]).
    pending: Vec<Pending>,
    done: FxHashMap<FoldKey, Done>,
    /// At least the keys of `open` and `done`.
    seen: SeenKeys,
    limits: FxHashMap<(Kind, Family, u64), (i64, u32)>,
    rule_limits: RuleLimits,
    out: Vec<Alert>,
    /// Alerts as they open, when reporting on open.
    opened: Option<Vec<Alert>>,
    hold: Hold,
    held: u64,
    /// [`evidence_factor`] of the baseline.
    evidence: f64,
}

/// Whether timing and absence rules are held back for capture loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Hold {
    #[default]
    Off,
    /// Capture is losing packets now.
    On,
    /// Loss ended; the hold lasts until one window past the next packet time seen.
    Ending,
    /// Held until this packet time.
    Until(i64),
}

/// Rules whose verdict depends on every packet having been seen: silence, periods, rates.
fn judges_timing(kind: Kind) -> bool {
    matches!(kind, Kind::ChannelSilent | Kind::PollingPeriodBroken | Kind::StatisticalAnomaly)
}

fn fold_window(ns: i64) -> i64 {
    ns.div_euclid(FOLD_WINDOW_SECS * 1_000_000_000)
}

/// The lowest factor [`evidence_factor`] gives the rules that judge rates, periods and
/// envelopes: a few minutes of learning cannot tell what a plant does in an hour.
const TIMING_FLOOR: f64 = 0.6;
/// The lowest factor for the rules about something new: even a short learning tells who
/// the devices and masters are.
const NOVELTY_FLOOR: f64 = 0.9;

/// Learning, in seconds, after which a baseline is trusted fully.
pub const FULL_EVIDENCE_SECS: f64 = 7.0 * 86_400.0;

/// How far learning for `secs` goes toward [`FULL_EVIDENCE_SECS`], 0-1, on a log scale
/// (most of what a plant does shows up in the first hours; its rarer duties take days):
/// 0.0 for a few seconds, 0.14 for an hour, 0.63 for a day, 1 from a week.
pub fn evidence_factor(secs: f64) -> f64 {
    let h = (secs.max(0.0) / 3600.0).min(FULL_EVIDENCE_SECS / 3600.0);
    (1.0 + h).ln() / (1.0 + FULL_EVIDENCE_SECS / 3600.0).ln()
}

/// The factor on the score of a rule of `kind` for a baseline with `evidence`
/// ([`evidence_factor`]): rates, periods and envelopes from [`TIMING_FLOOR`], novelty from
/// [`NOVELTY_FLOOR`]; the rest (critical operations, scans, floods, spoofing) need no
/// history and are not scaled.
fn trust(kind: Kind, evidence: f64) -> f64 {
    let floor = if judges_timing(kind) || matches!(kind, Kind::ValueOutsideEnvelope | Kind::ExceptionBurst) {
        TIMING_FLOOR
    } else if kind.once() && kind != Kind::ArpSpoofing {
        NOVELTY_FLOOR
    } else {
        return 1.0;
    };
    floor + (1.0 - floor) * evidence
}

/// The alert an occurrence opens, scored.
fn new_alert(occ: &Occ, info: RuleInfo, summary: String, evidence: String, evidence_held: f64) -> Alert {
    let imp = occ.class.map_or(1.0, impact);
    let trust = trust(occ.kind, evidence_held);
    let sc = score(info.weight, occ.deviation * trust, imp, occ.criticality).min(info.max_score).max(occ.min_score);
    let evidence = if trust < 1.0 { format!("{evidence} (score x{trust:.2}: a young baseline)") } else { evidence };
    Alert {
        id: format!("{}.{}", occ.family.name(), info.name),
        rule_id: occ.kind.rule_id(occ.family),
        rev: info.rev,
        name: info.title,
        severity: Severity::from_score(sc),
        score: sc,
        ts_first: occ.ts,
        ts_last: occ.ts_last,
        pkt_first: occ.pkt,
        pkt_last: occ.pkt_last,
        src: occ.src,
        dst: occ.dst,
        protocol: occ.protocol,
        summary,
        evidence,
        count: 1,
        mitre: info.mitre,
        point: occ.point,
        occurrence: 1,
        learn: occ.learn,
    }
}

impl Folder {
    pub(crate) fn new() -> Self {
        Folder { evidence: 1.0, ..Folder::default() }
    }

    /// Scales the rules that rest on the baseline by the learning behind it.
    pub(crate) fn set_learned_secs(&mut self, secs: f64) {
        self.evidence = evidence_factor(secs);
    }

    /// Whether a once key already alerted and is not quiet long enough to alert again at
    /// `ns` (cheap pre-check for callers; it also marks the subject as seen, which keeps it
    /// from counting as quiet).
    pub(crate) fn is_done(&mut self, kind: Kind, family: Family, subject: u64, detail: u64, ns: i64) -> bool {
        let key = FoldKey { kind, family, subject, detail };
        kind.once() && self.seen.may_hold(&key) && matches!(self.once_state(key, ns), Once::Quiet)
    }

    /// Where a once key stands at `ns`, in one probe of the done keys: still quiet (marked
    /// seen), back after its quiet period (its record, left in place), or never alerted.
    fn once_state(&mut self, key: FoldKey, ns: i64) -> Once {
        match self.done.get_mut(&key) {
            Some(d) if ns.saturating_sub(d.last_ns) < d.quiet_ns => {
                d.last_ns = d.last_ns.max(ns);
                Once::Quiet
            }
            Some(d) => Once::Back(*d),
            None => Once::New,
        }
    }

    /// Marks a once key closed (its fold ended): from now on it alerts again only after a
    /// quiet period.
    fn close_once(&mut self, key: FoldKey, f: &Fold) {
        let d = Done { last_ns: f.alert.ts_last.as_nanos(), quiet_ns: f.quiet_ns, occurrence: f.alert.occurrence };
        self.done.insert(key, d);
        self.seen.add(&key);
    }

    /// Records an occurrence; `text` gives the summary and evidence and is called only when a
    /// new alert opens.
    pub(crate) fn hit(&mut self, occ: Occ, text: impl FnOnce() -> (String, String)) {
        if self.hold != Hold::Off && judges_timing(occ.kind) {
            self.held += 1;
            return;
        }
        let once = occ.kind.once();
        let mut key = FoldKey { kind: occ.kind, family: occ.family, subject: occ.subject, detail: occ.detail };
        let ns = occ.ts.as_nanos();
        // A key never seen has neither a done record nor an open fold: no probe of either.
        let seen = self.seen.may_hold(&key);
        // A once key is either done or open, never both: a key that is done has no fold to
        // count in, so one probe of the done keys settles it.
        let recurrence = match if once && seen { self.once_state(key, ns) } else { Once::New } {
            Once::Quiet => return,
            Once::Back(d) => {
                self.done.remove(&key);
                Some(d)
            }
            Once::New => None,
        };
        if seen && recurrence.is_none() && self.count_in_open(key, &occ, once) {
            return;
        }
        // Rate limits per rule and pair, and per rule across all pairs.
        let w = fold_window(ns);
        let glim = self.rule_limits.slot(occ.kind, occ.family);
        if glim.window != w {
            *glim = RuleCount { window: w, ..RuleCount::NONE };
        }
        let rule_full = glim.full(occ.stranger);
        let strangers_only = rule_full && !glim.full(false);
        if rule_full {
            let at = *glim.pending_at(strangers_only);
            if let Some(p) = at.checked_sub(1).and_then(|i| self.pending.get_mut(i as usize)) {
                p.count += 1;
                p.ts_last = occ.ts_last;
                p.pkt_last = occ.pkt_last;
                return;
            }
        }
        // Once the rule is full for the window, the per-pair count no longer matters: not
        // keeping one per subject is what keeps a flood of spoofed subjects from growing it.
        let lim = if rule_full {
            None
        } else {
            Some(self.limits.entry((occ.kind, occ.family, occ.subject)).or_insert((w, 0)))
        };
        let pair_full = lim.as_ref().is_some_and(|l| l.0 == w && l.1 >= MAX_FOLDS_PER_RULE_PAIR);
        let (summary, evidence) = if pair_full || rule_full {
            key.detail = OVERFLOW;
            if rule_full {
                key.subject = if strangers_only { STRANGERS_OVERFLOW } else { OVERFLOW };
                // From here on, until the next sweep, the rule's slot leads to its counts.
                self.pending.push(Pending { key, count: 0, ts_last: occ.ts_last, pkt_last: occ.pkt_last });
                *glim.pending_at(strangers_only) = self.pending.len() as u32;
            }
            if let Some(f) = self.open.get_mut(&key) {
                f.alert.count += 1;
                f.alert.ts_last = occ.ts_last;
                f.alert.pkt_last = occ.pkt_last;
                return;
            }
            let (s, e) = text();
            let info = occ.kind.info();
            let scope = match (rule_full, strangers_only) {
                (true, true) => "from addresses the baseline does not know",
                (true, false) => "across all pairs",
                (false, _) => "on this pair",
            };
            (
                format!(
                    "More {} alerts {scope} than the per-window limit; further ones are folded here",
                    info.title.to_lowercase()
                ),
                format!("first folded: {s}; {e}"),
            )
        } else {
            if let Some(lim) = lim {
                *lim = if lim.0 == w { (w, lim.1 + 1) } else { (w, 1) };
            }
            glim.opened += 1;
            glim.by_strangers += u32::from(occ.stranger);
            text()
        };
        let mut alert = new_alert(&occ, occ.kind.info(), summary, evidence, self.evidence);
        let mut quiet_ns = FIRST_QUIET_SECS * 1_000_000_000;
        if let Some(d) = recurrence {
            alert.occurrence = d.occurrence.saturating_add(1);
            let quiet_secs = ns.saturating_sub(d.last_ns) / 1_000_000_000;
            alert.evidence.push_str(&crate::words::recurrence(alert.occurrence, quiet_secs));
            quiet_ns = d.quiet_ns.saturating_mul(2).min(MAX_QUIET_SECS * 1_000_000_000);
        }
        if let Some(opened) = &mut self.opened {
            opened.push(alert.clone());
        }
        self.open.insert(key, Fold { alert, opened_ns: ns, quiet_ns });
        self.seen.add(&key);
    }

    /// Counts an occurrence in the open fold of its key, if any; says whether it was taken
    /// (counted, or a once key still going when its fold closed). A fold past its window is
    /// closed here, and the occurrence left to open the next.
    fn count_in_open(&mut self, key: FoldKey, occ: &Occ, once: bool) -> bool {
        let ns = occ.ts.as_nanos();
        let Some(f) = self.open.get_mut(&key) else { return false };
        if ns.saturating_sub(f.opened_ns) < FOLD_WINDOW_SECS * 1_000_000_000 {
            f.alert.count += 1;
            f.alert.ts_last = occ.ts_last;
            f.alert.pkt_last = occ.pkt_last;
            return true;
        }
        let Some(f) = self.open.remove(&key) else { return false };
        let still_going = once && key.detail != OVERFLOW;
        if still_going {
            // Still going when its fold closed: not quiet, so no new alert now.
            self.close_once(key, &f);
            if let Some(d) = self.done.get_mut(&key) {
                d.last_ns = ns;
            }
        }
        self.out.push(f.alert);
        still_going
    }

    /// Whether to keep each alert as it opens for [`Folder::drain_opened`].
    pub(crate) fn report_on_open(&mut self, yes: bool) {
        self.opened = yes.then(Vec::new);
    }

    /// Alerts opened since the last call, in the order they opened.
    pub(crate) fn drain_opened(&mut self, into: &mut Vec<Alert>) {
        if let Some(opened) = &mut self.opened {
            into.append(opened);
        }
    }

    /// Starts or ends holding back the rules that judge timing (capture loss).
    pub(crate) fn set_hold_timing(&mut self, loss: bool) {
        self.hold = match (loss, self.hold) {
            (true, _) => Hold::On,
            (false, Hold::On) => Hold::Ending,
            (false, h) => h,
        };
    }

    /// Advances the hold with packet time `ns`: it ends one window after loss ended.
    pub(crate) fn resume(&mut self, ns: i64) {
        self.hold = match self.hold {
            Hold::Ending => Hold::Until(ns.saturating_add(crate::WINDOW_SECS * 1_000_000_000)),
            Hold::Until(t) if ns >= t => Hold::Off,
            h => h,
        };
    }

    /// Whether timing rules are held back now.
    pub(crate) fn holding(&self) -> bool {
        self.hold != Hold::Off
    }

    /// Occurrences of timing rules held back so far.
    pub(crate) fn held_back(&self) -> u64 {
        self.held
    }

    /// Closes folds opened more than a fold window before `now_ns`, in a stable order.
    pub(crate) fn sweep(&mut self, now_ns: i64) {
        self.add_pending();
        let limit = FOLD_WINDOW_SECS * 1_000_000_000;
        let mut expired: Vec<FoldKey> =
            self.open.iter().filter(|(_, f)| now_ns.saturating_sub(f.opened_ns) >= limit).map(|(k, _)| *k).collect();
        expired.sort_unstable();
        for k in expired {
            if let Some(f) = self.open.remove(&k) {
                // Overflow folds stand for many subjects: they may open again.
                if k.kind.once() && k.detail != OVERFLOW {
                    self.close_once(k, &f);
                }
                self.out.push(f.alert);
            }
        }
        self.limits.retain(|_, (w, _)| *w >= fold_window(now_ns) - 1);
        if self.done.len() > MAX_ONCE_KEYS {
            self.done.retain(|_, d| now_ns.saturating_sub(d.last_ns) < d.quiet_ns);
        }
        if self.done.len() > MAX_ONCE_KEYS {
            // Keep the most recently seen half.
            let mut last_seen: Vec<i64> = self.done.values().map(|d| d.last_ns).collect();
            let keep = MAX_ONCE_KEYS / 2;
            let cut = last_seen.len().saturating_sub(keep);
            let (_, &mut t, _) = last_seen.select_nth_unstable(cut);
            self.done.retain(|_, d| d.last_ns >= t);
        }
        self.forget_gone_keys();
    }

    /// Adds the counts kept for overflow folds into the folds, and forgets where they were.
    fn add_pending(&mut self) {
        for p in self.pending.drain(..) {
            if let Some(f) = self.open.get_mut(&p.key).filter(|_| p.count > 0) {
                f.alert.count += p.count;
                f.alert.ts_last = p.ts_last;
                f.alert.pkt_last = p.pkt_last;
            }
        }
        self.rule_limits.forget_pending();
    }

    /// Rebuilds [`Folder::seen`] from the keys held, once most of its bits may be of keys
    /// gone (closed folds of rules that do not alert once, forgotten done records): a set
    /// with every bit on would send every occurrence to the probes again.
    fn forget_gone_keys(&mut self) {
        let held = self.open.len() + self.done.len();
        if self.seen.added <= 2 * held + 4096 {
            return;
        }
        self.seen.clear();
        for k in self.open.keys().chain(self.done.keys()) {
            self.seen.add(k);
        }
    }

    /// Closes every fold.
    pub(crate) fn close_all(&mut self) {
        self.sweep(i64::MAX);
    }

    /// Alerts closed so far, in the order they closed, each batch sorted by first packet
    /// time; the caller takes them.
    pub(crate) fn drain(&mut self, into: &mut Vec<Alert>) {
        // Within a batch, order by time then rule, so output is stable and readable.
        self.out.sort_by(|a, b| {
            (a.ts_first, a.pkt_first, a.rule_id, &a.summary).cmp(&(b.ts_first, b.pkt_first, b.rule_id, &b.summary))
        });
        into.append(&mut self.out);
    }
}

#[cfg(test)]
mod bounds {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn once_keys_past_the_bound_are_forgotten_quiet_ones_first_then_the_oldest() {
        let mut f = Folder::new();
        let quiet = FIRST_QUIET_SECS * 1_000_000_000;
        let now = 10 * quiet;
        let n = MAX_ONCE_KEYS as u64 + 5_000;
        for subject in 0..n {
            // The first 3,000 went quiet long ago; the rest were seen up to now.
            let last_ns = if subject < 3_000 { 0 } else { now - quiet + subject as i64 };
            let key = FoldKey { kind: Kind::NewPair, family: Family::Net, subject, detail: 0 };
            f.done.insert(key, Done { last_ns, quiet_ns: quiet, occurrence: 1 });
        }
        f.sweep(now);
        assert!(f.done.len() <= MAX_ONCE_KEYS, "{}", f.done.len());
        assert!(f.done.len() >= MAX_ONCE_KEYS / 2, "{}", f.done.len());
        let newest = FoldKey { kind: Kind::NewPair, family: Family::Net, subject: n - 1, detail: 0 };
        assert!(f.done.contains_key(&newest), "the most recently seen stay");
        let quiet_one = FoldKey { kind: Kind::NewPair, family: Family::Net, subject: 0, detail: 0 };
        assert!(!f.done.contains_key(&quiet_one), "a key past its quiet period goes first");
    }

    /// An occurrence of `kind` on `subject` at `secs`, from a stranger or not.
    fn occ(kind: Kind, subject: u64, secs: i64, stranger: bool) -> Occ {
        let ts = Timestamp::from_nanos(secs * 1_000_000_000);
        let at = |ip: [u8; 4], port| Endpoint { ip: ip.into(), port };
        Occ {
            kind,
            family: Family::Net,
            subject,
            detail: 0,
            ts,
            pkt: 1,
            ts_last: ts,
            pkt_last: 1,
            src: at([10, 0, 0, 1], 0),
            dst: at([10, 0, 0, 2], 502),
            protocol: None,
            class: None,
            deviation: 1.0,
            criticality: 1.0,
            min_score: 0,
            point: None,
            learn: None,
            stranger,
        }
    }

    /// Every key with an open fold or a done record is one [`Folder::seen`] may hold: the
    /// probes it lets an occurrence skip are only those that would have found nothing.
    fn seen_holds_every_key(f: &Folder) -> bool {
        f.open.keys().chain(f.done.keys()).all(|k| f.seen.may_hold(k))
    }

    proptest::proptest! {
        #[test]
        fn seen_keys_hold_every_open_and_done_key(
            steps in proptest::collection::vec((0u64..400, 0u8..3, proptest::bool::ANY, 0i64..90), 1..400)
        ) {
            let mut f = Folder::new();
            let mut secs = 0;
            for (subject, kind, stranger, advance) in steps {
                secs += advance;
                // Once (new pair), not once (flood), and one whose keys repeat (scan).
                let kind = [Kind::NewPair, Kind::Flood, Kind::Scan][usize::from(kind)];
                f.hit(occ(kind, subject, secs, stranger), || (String::new(), String::new()));
                if advance > 60 {
                    f.sweep(secs * 1_000_000_000);
                }
                proptest::prop_assert!(seen_holds_every_key(&f));
            }
        }
    }

    proptest::proptest! {
        /// No occurrence is lost: every one ends in the count of some alert, those past the
        /// rules' limits included (counted aside between sweeps, added before a sweep reads
        /// them), whatever the sweeps and the windows in between.
        #[test]
        fn every_occurrence_is_counted_in_some_alert(
            steps in proptest::collection::vec((0u64..300, proptest::bool::ANY, 0i64..4, 0u8..20), 1..2000)
        ) {
            let mut f = Folder::new();
            let (mut secs, mut last) = (0, 0);
            for (subject, stranger, advance, sweep) in &steps {
                secs += advance;
                f.hit(occ(Kind::Flood, *subject, secs, *stranger), || (String::new(), String::new()));
                last = secs;
                if *sweep == 0 {
                    f.sweep(secs * 1_000_000_000);
                }
            }
            f.close_all();
            let mut alerts = Vec::new();
            f.drain(&mut alerts);
            let counted: u64 = alerts.iter().map(|a| a.count).sum();
            proptest::prop_assert_eq!(counted, steps.len() as u64);
            let newest = alerts.iter().map(|a| a.ts_last.as_nanos()).max().unwrap_or(0);
            proptest::prop_assert_eq!(newest, last * 1_000_000_000);
        }
    }

    /// A flood of strangers past the rule's limit: one overflow alert counts the rest, up to
    /// the last occurrence, across a change of the rules' window before the sweep.
    #[test]
    fn a_rule_past_its_limit_counts_the_rest_in_one_alert_up_to_the_last() {
        let mut f = Folder::new();
        // 1,000 strangers from second 30 to second 129: the rules' window changes at 60 and
        // 120, and nothing sweeps the open folds before the end.
        for (i, subject) in (0..1000u64).enumerate() {
            let secs = 30 + i as i64 / 10;
            let mut o = occ(Kind::Flood, subject, secs, true);
            o.pkt_last = subject + 1;
            f.hit(o, || (String::new(), String::new()));
        }
        f.close_all();
        let mut alerts = Vec::new();
        f.drain(&mut alerts);
        let over: Vec<&Alert> = alerts.iter().filter(|a| a.summary.starts_with("More ")).collect();
        let own = alerts.len() - over.len();
        assert_eq!(own, 3 * MAX_STRANGER_FOLDS_PER_RULE as usize, "25 strangers' alerts in each window");
        assert_eq!(over.len(), 1, "the overflow fold of the first window, open until the sweep, takes the rest");
        assert_eq!(over[0].count, 1000 - own as u64);
        assert_eq!(over[0].ts_last.as_nanos(), 129 * 1_000_000_000);
        assert_eq!(over[0].pkt_last, 1000);
    }

    /// Keys of folds long closed do not keep their bits: past twice the keys held (and a
    /// margin), the set is rebuilt from those held, still holding all of them.
    #[test]
    fn seen_keys_are_rebuilt_once_most_of_their_keys_are_gone() {
        let mut f = Folder::new();
        // Flood alerts (not once) on 20,000 subjects, 40 a minute: each fold closes and goes.
        for subject in 0..20_000u64 {
            let secs = subject as i64 * 3 / 2;
            f.hit(occ(Kind::Flood, subject, secs, false), || (String::new(), String::new()));
            if subject % 40 == 0 {
                f.sweep(secs * 1_000_000_000);
            }
            assert!(seen_holds_every_key(&f));
        }
        let held = f.open.len() + f.done.len();
        assert!(f.seen.added <= 2 * held + 4096 + 40, "added {} for {held} held", f.seen.added);
        // The bits of the keys gone went with the rebuild (each add sets at most one).
        let bits = f.seen.bits.count();
        assert!(bits as usize <= f.seen.added, "{bits} bits for {} added", f.seen.added);
        assert!(bits as usize <= 2 * held + 4096 + 40, "{bits} bits for {held} held");
    }
}
