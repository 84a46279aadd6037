//! Rules about recurring requests: `polling_period_broken`, `channel_silent`.

use otsensor_dissectors::event::Timestamp;

use crate::alert::{Folder, Occ};
use crate::model::{PairModel, Poll};
use crate::observation::Observation;
use crate::rules_catalog::{Family, Kind};
use crate::words;

use super::{Ctx, PairState};

/// Consecutive intervals under a recurring request's fast limit, spanning at least its
/// learned period, before it counts as broken.
pub const POLL_FAST_STREAK: u8 = 5;

/// `polling_period_broken`: a learned recurring request arriving, time after time, far
/// faster than ever learned. Also marks the request as heard (for `channel_silent`).
pub(crate) fn polling_period_broken(
    obs: &Observation<'_>,
    cx: &Ctx<'_>,
    b: &PairModel,
    rt: &mut PairState,
    folder: &mut Folder,
) {
    let ns = obs.ts.as_nanos();
    let sig = obs.poll_signature();
    let Some(p) = b.polls.get(&sig) else { return };
    let seen = rt.poll_seen.entry(sig).or_insert((ns, 0, ns));
    let dt = (ns - seen.0) as f64 * 1e-9;
    if seen.0 != ns && dt < p.too_fast_below() {
        if seen.1 == 0 {
            seen.2 = seen.0;
        }
        seen.1 = seen.1.saturating_add(1);
    } else {
        seen.1 = 0;
    }
    seen.0 = ns;
    // Sustained: enough fast intervals, spanning at least one learned period (bursts of
    // retransmissions or pipelined requests are not a new period).
    let span = (ns - seen.2) as f64 * 1e-9;
    if seen.1 >= POLL_FAST_STREAK && span >= p.mean {
        seen.1 = 0;
        folder.hit(Occ { kind: Kind::PollingPeriodBroken, detail: sig, class: None, ..*cx.occ }, || {
            words::polling_period_broken(obs, p, (POLL_FAST_STREAK, dt), cx.client(), cx.server(), cx.learned)
        });
    }
    rt.silent.remove(&sig);
}

/// `channel_silent`: the pair's recurring requests absent for longer than their learned
/// period allows, judged at packet time `ns` (`start`: the first packet time scored).
pub(crate) fn channel_silent(
    rt: &mut PairState,
    b: &PairModel,
    (ns, ts, pkt, start): (i64, Timestamp, u64, i64),
    learned: &str,
    folder: &mut Folder,
) {
    let holding = folder.holding();
    let mut newly: Vec<(&Poll, f64)> = Vec::new();
    for sig in &rt.polls_sorted {
        let Some(p) = b.polls.get(sig) else { continue };
        let last = rt.poll_seen.get(sig).map_or(start, |s| s.0);
        let gap = (ns - last) as f64 * 1e-9;
        if gap > p.silence_after() && !rt.silent.contains(sig) {
            // While capture loss holds timing rules back, a silence is not taken as
            // reported: it is judged again when the hold ends.
            if !holding {
                rt.silent.insert(*sig);
            }
            newly.push((p, gap));
        }
    }
    if newly.is_empty() {
        return;
    }
    let occ = Occ {
        kind: Kind::ChannelSilent,
        family: Family::Proto(rt.key.protocol),
        subject: rt.subject,
        detail: 0,
        ts,
        pkt,
        ts_last: ts,
        pkt_last: pkt,
        src: rt.client,
        dst: rt.server,
        protocol: Some(rt.key.protocol),
        class: None,
        deviation: 1.0,
        criticality: rt.crit,
        min_score: 0,
        point: None,
        learn: None,
        stranger: false,
    };
    let key = rt.key;
    folder.hit(occ, || words::channel_silent(key, b, &newly, learned));
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn a_channel_that_stops_polling_is_silent() {
        let mut tr = Traffic::default();
        normal(&mut tr, 600, 700, Some(630));
        let alerts = detect(&matured(baseline_600s()), &tr);
        let a = find(&alerts, "modbus.channel_silent");
        assert!(a.summary.contains("10.0.0.3"), "{}", a.summary);
        assert!(a.severity >= Severity::Medium);
        // Ten minutes of learning say little about silences: low, and the evidence says why.
        let young = detect(&baseline_600s(), &tr);
        let a = find(&young, "modbus.channel_silent");
        assert_eq!(a.severity, Severity::Low);
        assert!(a.evidence.contains("a young baseline"), "{}", a.evidence);
    }

    #[test]
    fn a_poll_repeated_ten_times_faster_breaks_its_period() {
        let alerts = scenario_on(&matured(baseline_600s()), |tr| {
            for i in 0..20 {
                tr.read_holding(650.05 + f64::from(i) * 0.1, MASTER, PLC, 0, 10, 0);
            }
        });
        let a = find(&alerts, "modbus.polling_period_broken");
        assert!(a.evidence.contains("came every 1.00 s"), "{}", a.evidence);
        assert!(a.severity >= Severity::Medium);
        assert!(!alerts.iter().any(|a| a.id == "modbus.flood"), "{:?}", ids(&alerts));
    }
}
