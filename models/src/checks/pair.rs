//! Rules about what a pair does: `new_pair`, `write_on_read_only_pair`,
//! `new_function_code`, `unseen_function_sequence`, `protocol_violation`.

use otsensor_dissectors::event::FunctionClass;

use crate::alert::{Folder, Occ};
use crate::model::{hash64, PairModel};
use crate::observation::Observation;
use crate::rules_catalog::Kind;
use crate::words;

use super::Ctx;

/// `new_pair`: a pair unknown to the baseline (once per run).
pub(crate) fn new_pair(obs: &Observation<'_>, cx: &Ctx<'_>, folder: &mut Folder) {
    if cx.base.is_some() {
        return;
    }
    folder.hit(Occ { kind: Kind::NewPair, ..*cx.occ }, || {
        let client_role = cx.model.asset(cx.key.client).map(|a| a.role().name());
        words::new_pair(cx.key, obs.func_name, client_role, cx.learned)
    });
}

/// `write_on_read_only_pair`: a write or control request on a pair that never wrote.
pub(crate) fn write_on_read_only_pair(obs: &Observation<'_>, cx: &Ctx<'_>, folder: &mut Folder) {
    let writes = matches!(obs.class, FunctionClass::Write | FunctionClass::Control);
    if !writes || cx.base.is_some_and(|b| b.wrote) {
        return;
    }
    let known = cx.base.is_some();
    folder.hit(Occ { kind: Kind::WriteOnReadOnlyPair, ..*cx.occ }, || {
        words::write_on_read_only_pair(obs, cx.client(), cx.server(), known, cx.learned)
    });
}

/// `new_function_code` (a function the pair never used; a critical operation's own alert
/// says more) or else `unseen_function_sequence` (two known functions in a new order).
pub(crate) fn new_function(
    obs: &Observation<'_>,
    cx: &Ctx<'_>,
    b: &PairModel,
    prev_func: Option<u16>,
    folder: &mut Folder,
) {
    let func = obs.func;
    if !b.has_func(func) && obs.critical.is_none() {
        folder.hit(Occ { kind: Kind::NewFunctionCode, detail: u64::from(func), ..*cx.occ }, || {
            words::new_function_code(obs, b, cx.client(), cx.server(), cx.learned)
        });
    } else if let Some(prev) = prev_func {
        unseen_function_sequence(obs, cx, b, prev, folder);
    }
}

/// `unseen_function_sequence`: `prev` then this function, both known, never in this order.
fn unseen_function_sequence(obs: &Observation<'_>, cx: &Ctx<'_>, b: &PairModel, prev: u16, folder: &mut Folder) {
    let func = obs.func;
    if !b.has_func(prev) || b.knows_transition(prev, func) {
        return;
    }
    let pname = b.funcs.get(&prev).map(|f| f.name.clone()).unwrap_or_default();
    let detail = (u64::from(prev) << 16) | u64::from(func);
    folder.hit(Occ { kind: Kind::UnseenFunctionSequence, detail, ..*cx.occ }, || {
        words::unseen_function_sequence(obs.func_name, &pname, cx.client(), cx.server(), cx.learned)
    });
}

/// `protocol_violation`: a dissector flag the pair never showed while learning.
pub(crate) fn protocol_violation(obs: &Observation<'_>, cx: &Ctx<'_>, folder: &mut Folder) {
    // Most messages carry no flag: skip walking the flag names.
    if obs.flags.is_empty() {
        return;
    }
    for name in obs.flags.iter() {
        if cx.base.is_some_and(|b| b.violations.contains(name)) {
            continue;
        }
        let o = Occ { kind: Kind::ProtocolViolation, detail: hash64(name), src: obs.src, dst: obs.dst, ..*cx.occ };
        folder.hit(o, || words::protocol_violation(obs, name, cx.learned));
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn diagnostics_on_a_polling_pair_is_a_new_function_code() {
        let alerts =
            scenario(|tr| tr.exchange(650.0, MASTER, PLC, 1, &[8, 0, 0, 0x12, 0x34], Some(&[8, 0, 0, 0x12, 0x34])));
        let a = find(&alerts, "modbus.new_function_code");
        assert!(a.evidence.contains("READ_HOLDING_REGISTERS"), "{}", a.evidence);
        assert_eq!(a.mitre, Some("T0855"));
    }

    #[test]
    fn a_write_on_a_read_only_pair_is_alerted_high() {
        let alerts = scenario(|tr| tr.write_register(650.0, MASTER, RTU, 2, 1));
        let a = find(&alerts, "modbus.write_on_read_only_pair");
        assert!(a.severity >= Severity::High, "{a:#?}");
        assert!(a.evidence.contains("this pair only read during 9 min 59 s of learning"), "{}", a.evidence);
    }

    #[test]
    fn two_writes_in_a_row_are_an_unseen_sequence() {
        let alerts = scenario(|tr| {
            tr.write_register(650.5, MASTER, PLC, 10, 1);
            tr.write_register(650.6, MASTER, PLC, 10, 0);
        });
        find(&alerts, "modbus.unseen_function_sequence");
    }

    #[test]
    fn a_malformed_request_is_a_protocol_violation() {
        // Read Holding Registers with a 5-byte body instead of 4.
        let alerts = scenario(|tr| tr.exchange(650.0, MASTER, PLC, 1, &[3, 0, 0, 0, 10, 0], None));
        let a = find(&alerts, "modbus.protocol_violation");
        assert!(a.summary.contains("bad_length"), "{}", a.summary);
    }
}
