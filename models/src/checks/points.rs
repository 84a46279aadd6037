//! Rules about points and their values: `read_outside_baseline`,
//! `write_outside_baseline`, `value_outside_envelope`.

use otsensor_dissectors::event::{Access, FunctionClass, PointValue, Space};
use rustc_hash::FxHashMap;

use crate::alert::{AlertPoint, Folder, Occ};
use crate::model::{hash64, Admit, Envelope, PairModel, PointKey, ValueKey};
use crate::observation::Observation;
use crate::rules_catalog::Kind;
use crate::words;

use super::Ctx;

/// `read_outside_baseline` and `write_outside_baseline`: each range a request names, against
/// the ranges the pair read or wrote (writes on a pair that never wrote are
/// `write_on_read_only_pair`'s).
pub(crate) fn outside_baseline(obs: &Observation<'_>, cx: &Ctx<'_>, b: &PairModel, folder: &mut Folder) {
    let unit = obs.unit;
    for r in obs.points {
        if r.access == Access::Write && !b.wrote {
            continue;
        }
        let last = r.start.saturating_add(r.count.max(1) - 1);
        let pk = PointKey { unit, space: r.space, access: r.access };
        let learned_ranges = b.ranges.get(&pk);
        if learned_ranges.is_some_and(|s| s.contains(r.start, last)) {
            continue;
        }
        let kind = if r.access == Access::Write { Kind::WriteOutsideBaseline } else { Kind::ReadOutsideBaseline };
        let detail = hash64(&(unit, r.space, r.start, r.count, r.access));
        let point = Some(AlertPoint { unit, space: r.space, first: r.start, last });
        folder.hit(Occ { kind, detail, point, ..*cx.occ }, || {
            let ranges = learned_ranges.map(|s| s.ranges.as_slice());
            words::outside_points(obs, cx.client(), cx.server(), r.space, r.access, (r.start, last), ranges, cx.learned)
        });
    }
}

/// `value_outside_envelope`: a value outside its point's learned set, range or counter.
pub(crate) fn value_outside_envelope(
    obs: &Observation<'_>,
    cx: &Ctx<'_>,
    (b, ix): (&PairModel, &EnvelopeIndex),
    folder: &mut Folder,
) {
    if obs.values_in_one_run() {
        return run_outside_envelope(obs, cx, (b, ix), folder);
    }
    let mut group: Option<(Space, Access, &[Run])> = None;
    for v in obs.values {
        // The values of a PDU share a space and access run after run: one lookup per run.
        let runs = match group {
            Some((space, access, runs)) if (space, access) == (v.space, v.access) => runs,
            _ => {
                let runs = ix.groups.get(&(obs.unit, v.space, v.access)).map_or(&[][..], Vec::as_slice);
                group = Some((v.space, v.access, runs));
                runs
            }
        };
        if find(runs, v.index).is_some_and(|a| !a.admits(v.value)) {
            outside_envelope(obs, cx, b, v, folder);
        }
    }
}

/// [`value_outside_envelope`] of values that are one run (every Modbus PDU's): the learned
/// runs that overlap the values' indexes are walked side by side with them, so that values
/// of points with no envelope (most of a block of registers, often) are skipped together
/// instead of each costing a search; the values are visited in the same order.
fn run_outside_envelope(
    obs: &Observation<'_>,
    cx: &Ctx<'_>,
    (b, ix): (&PairModel, &EnvelopeIndex),
    folder: &mut Folder,
) {
    let (Some(first), Some(last)) = (obs.values.first(), obs.values.last()) else { return };
    let Some(runs) = ix.groups.get(&(obs.unit, first.space, first.access)) else { return };
    let from = runs.partition_point(|r| r.end() <= first.index);
    for r in runs.get(from..).unwrap_or_default() {
        if r.first > last.index {
            break;
        }
        let (lo, hi) = (r.first.max(first.index), r.end().min(last.index.saturating_add(1)));
        for index in lo..hi {
            let admit = r.admits.get((index - r.first) as usize).and_then(Option::as_ref);
            let Some(v) = obs.values.get((index - first.index) as usize) else { continue };
            if admit.is_some_and(|a| !a.admits(v.value)) {
                outside_envelope(obs, cx, b, v, folder);
            }
        }
    }
}

/// Reports value `v`, outside its point's compiled envelope.
#[cold]
fn outside_envelope(obs: &Observation<'_>, cx: &Ctx<'_>, b: &PairModel, v: &PointValue, folder: &mut Folder) {
    let vk = ValueKey { unit: obs.unit, space: v.space, index: v.index, access: v.access };
    let Some(env) = b.values.get(&vk) else { return };
    let write = v.access == Access::Write;
    let o = Occ {
        kind: Kind::ValueOutsideEnvelope,
        detail: hash64(&vk),
        class: Some(if write { FunctionClass::Write } else { FunctionClass::Read }),
        deviation: if write { 1.0 } else { 0.8 },
        point: Some(AlertPoint { unit: obs.unit, space: v.space, first: v.index, last: v.index }),
        learn: None,
        ..*cx.occ
    };
    folder.hit(o, || {
        let ends = (cx.client(), cx.server());
        words::value_outside_envelope(obs, v.space, v.index, v.value, write, env, ends, cx.learned)
    });
}

/// Points further apart than this start a new run of an [`EnvelopeIndex`].
const MAX_RUN_GAP: u32 = 32;

/// The envelopes of one learned pair laid out for checking values: per unit, space and
/// access, runs of nearly consecutive point indexes with each point's compiled [`Admit`]
/// (or none). A block of registers or a DNP3 range then costs an array index per value,
/// not a hash lookup.
#[derive(Debug, Default)]
pub(crate) struct EnvelopeIndex {
    groups: FxHashMap<(u16, Space, Access), Vec<Run>>,
}

/// Envelopes of the points `first..first + admits.len()`.
#[derive(Debug)]
pub(crate) struct Run {
    first: u32,
    admits: Vec<Option<Admit>>,
}

impl EnvelopeIndex {
    /// The index of a pair's envelopes.
    pub(crate) fn of(b: &PairModel) -> Self {
        let mut envs: Vec<(&ValueKey, &Envelope)> = b.values.iter().collect();
        envs.sort_unstable_by_key(|(k, _)| (k.unit, k.space, k.access, k.index));
        let mut groups: FxHashMap<(u16, Space, Access), Vec<Run>> = FxHashMap::default();
        for (k, e) in envs {
            let runs = groups.entry((k.unit, k.space, k.access)).or_default();
            match runs.last_mut() {
                Some(r) if k.index.checked_sub(r.end()).is_some_and(|gap| gap <= MAX_RUN_GAP) => {
                    r.admits.resize_with((k.index - r.first) as usize, || None);
                    r.admits.push(Some(e.admit()));
                }
                _ => runs.push(Run { first: k.index, admits: vec![Some(e.admit())] }),
            }
        }
        EnvelopeIndex { groups }
    }
}

impl Run {
    fn end(&self) -> u32 {
        self.first.saturating_add(self.admits.len() as u32)
    }
}

/// The compiled envelope of point `index` among sorted runs, if learned.
fn find(runs: &[Run], index: u32) -> Option<&Admit> {
    let i = runs.partition_point(|r| r.first <= index).checked_sub(1)?;
    let r = runs.get(i)?;
    r.admits.get(index.checked_sub(r.first)? as usize)?.as_ref()
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn a_write_to_a_point_never_written_is_outside_the_baseline() {
        let alerts = scenario(|tr| tr.write_register(650.5, MASTER, PLC, 500, 1));
        let a = find(&alerts, "modbus.write_outside_baseline");
        assert!(a.evidence.contains("covered only 10 ") || a.evidence.ends_with("covered only 10"), "{}", a.evidence);
    }

    #[test]
    fn a_read_of_addresses_never_polled_is_outside_the_baseline() {
        let alerts = scenario(|tr| tr.read_holding(650.5, MASTER, PLC, 1000, 2, 0));
        let a = find(&alerts, "modbus.read_outside_baseline");
        assert_eq!(a.severity, Severity::Low);
    }

    #[test]
    fn a_block_of_registers_is_checked_point_by_point_against_the_learned_envelopes() {
        // Learned: holding registers 0-9 read with value = index. Read now: 4-13, with
        // registers 5 and 7 off their value and 10-13 never read during learning (no
        // envelope): exactly 5 and 7 are outside.
        let alerts = scenario_on(&matured(baseline_600s()), |tr| {
            let mut resp = vec![3, 20]; // function, byte count (10 registers)
            for value in [4u16, 99, 6, 98, 8, 9, 500, 501, 502, 503] {
                resp.extend_from_slice(&value.to_be_bytes()); // registers 4, 5, ... 13
            }
            // Read Holding Registers: function 3, address 4, quantity 10.
            tr.exchange(650.5, MASTER, PLC, 1, &[3, 0, 4, 0, 10], Some(&resp));
        });
        let mut points: Vec<(u32, u32)> = alerts
            .iter()
            .filter(|a| a.id == "modbus.value_outside_envelope")
            .filter_map(|a| a.point.map(|p| (p.first, p.last)))
            .collect();
        points.sort_unstable();
        assert_eq!(points, [(5, 5), (7, 7)]);
    }

    #[test]
    fn a_written_value_outside_its_set_is_outside_the_envelope() {
        let alerts = scenario_on(&matured(baseline_600s()), |tr| tr.write_register(650.5, MASTER, PLC, 10, 999));
        let a = find(&alerts, "modbus.value_outside_envelope");
        assert!(a.evidence.contains("only ever {0, 1}"), "{}", a.evidence);
        assert!(a.severity >= Severity::Medium);
    }
}
