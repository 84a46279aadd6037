//! Critical operations (kinds 20-34): a request whose `critical()` is set (restart, stop,
//! download, firmware...), alerted whatever the baseline says.

use crate::alert::{Folder, Occ};
use crate::observation::Observation;
use crate::rules_catalog::Kind;
use crate::words;

/// Critical operations (stop, download, restart, ...): alerted whatever the baseline says.
pub(crate) fn critical_operation(obs: &Observation<'_>, occ: Occ, folder: &mut Folder) {
    let Some(op) = obs.critical.filter(|_| obs.is_request) else { return };
    let (fname, protocol, client, server) = (obs.func_name, obs.protocol, occ.src, occ.dst);
    // The operation is its own impact: a disabled report stream is as critical as a stop.
    folder.hit(Occ { kind: Kind::Critical(op), detail: 0, class: None, ..occ }, || {
        words::critical(op, fname, protocol, client, server)
    });
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn a_restart_is_critical_whatever_the_baseline() {
        let alerts = scenario(|tr| tr.exchange(650.0, MASTER, PLC, 1, &[8, 0, 1, 0, 0], Some(&[8, 0, 1, 0, 0])));
        let a = find(&alerts, "modbus.cold_restart");
        assert_eq!(a.severity, Severity::Critical);
        assert_eq!(a.mitre, Some("T0816"));
        assert_eq!(a.rule_id, 9_100_120);
    }
}
