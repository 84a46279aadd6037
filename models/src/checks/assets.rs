//! Rules about devices: `new_asset`, `mac_changed`, `identity_changed`.

use std::net::IpAddr;

use crate::alert::{Folder, Occ};
use crate::model::hash64;
use crate::observation::{identity_key, Observation};
use crate::rules_catalog::{Family, Kind};
use crate::words;

use super::Ctx;

/// `new_asset`: the client or the server of the pair was never seen while learning.
/// `counted`: an address whose occurrence for this packet its conversation's start already
/// reported (one packet is one occurrence).
pub(crate) fn new_asset(obs: &Observation<'_>, cx: &Ctx<'_>, counted: Option<IpAddr>, folder: &mut Folder) {
    let key = cx.key;
    for (ip, other, sends) in [(key.client, key.server, true), (key.server, key.client, false)] {
        if counted == Some(ip) || cx.model.asset(ip).is_some() {
            continue;
        }
        let o = Occ { kind: Kind::NewAsset, family: Family::Net, subject: hash64(&ip), ..*cx.occ };
        let (fname, protocol, learned) = (obs.func_name, key.protocol, cx.learned);
        folder.hit(o, || words::new_asset(ip, other, sends, fname, protocol, learned));
    }
}

/// `mac_changed`: each side's MAC against the learned one (`macs`: client's, server's).
pub(crate) fn mac_changed(obs: &Observation<'_>, cx: &Ctx<'_>, macs: [Option<[u8; 6]>; 2], folder: &mut Folder) {
    let (client_mac, server_mac) = obs.client_server_macs();
    let [client_learned, server_learned] = macs;
    mac_against(cx.key.client, client_learned, client_mac, cx, folder);
    mac_against(cx.key.server, server_learned, server_mac, cx, folder);
}

/// One side of [`mac_changed`]; every PDU comes here twice, so no more than two compares
/// when the MAC is the learned one.
#[inline]
fn mac_against(ip: IpAddr, learned: Option<[u8; 6]>, seen: Option<[u8; 6]>, cx: &Ctx<'_>, folder: &mut Folder) {
    let (Some(l), Some(m)) = (learned, seen) else { return };
    if l != m {
        mac_differs(ip, l, m, cx, folder);
    }
}

/// `ip` was seen with MAC `m`, learned with `l`. (Cold: inlined into [`mac_against`], the
/// occurrence made it save and restore registers on every call, twice a PDU.)
#[cold]
fn mac_differs(ip: IpAddr, l: [u8; 6], m: [u8; 6], cx: &Ctx<'_>, folder: &mut Folder) {
    let o = Occ {
        kind: Kind::MacChanged,
        family: Family::Net,
        subject: hash64(&ip),
        detail: hash64(&m),
        class: None,
        ..*cx.occ
    };
    folder.hit(o, || words::mac_changed(ip, l, m, cx.learned));
}

/// `identity_changed`: a device identification object other than the learned one.
pub(crate) fn identity_changed(obs: &Observation<'_>, cx: &Ctx<'_>, folder: &mut Folder) {
    if !obs.has_identity() {
        return;
    }
    let Some(asset) = cx.model.asset(cx.key.server) else { return };
    for (oid, value) in obs.identity() {
        let name = identity_key(obs.protocol, oid);
        let Some(learned_value) = asset.identity.get(&name) else { continue };
        let seen = String::from_utf8_lossy(value);
        if *learned_value == seen {
            continue;
        }
        let o = Occ { kind: Kind::IdentityChanged, detail: u64::from(oid), class: None, ..*cx.occ };
        folder.hit(o, || words::identity_changed(&name, &seen, learned_value, cx.client(), cx.server(), cx.learned));
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn new_host_is_a_new_asset_and_a_new_pair() {
        let alerts = scenario(|tr| tr.read_holding(650.0, ROGUE, PLC, 0, 10, 0));
        let a = find(&alerts, "net.new_asset");
        assert_eq!(a.rule_id, 9_100_001);
        assert!(a.evidence.contains("10.0.0.9"), "{}", a.evidence);
        let p = find(&alerts, "modbus.new_pair");
        assert!(p.evidence.contains("min 59 s of learning"), "{}", p.evidence);
        assert!(p.severity >= Severity::Medium);
    }

    /// A Read Device Identification exchange (FC 43 / MEI 14) with the given revision.
    fn identify(tr: &mut Traffic, t: f64, revision: &str) {
        let mut resp = vec![
            0x2b, 0x0e, // function, MEI type 14
            0x01, 0x01, // read device id code, conformity level
            0x00, 0x00, // more follows, next object id
            0x03, // number of objects
            0x00, 4, b'A', b'C', b'M', b'E', // VendorName
            0x01, 2, b'P', b'1', // ProductCode
        ];
        resp.extend_from_slice(&[0x02, revision.len() as u8]); // MajorMinorRevision
        resp.extend_from_slice(revision.as_bytes());
        tr.exchange(t, MASTER, PLC, 1, &[0x2b, 0x0e, 0x01, 0x00], Some(&resp));
    }

    #[test]
    fn a_device_answering_with_another_revision_changed_identity() {
        let mut tr = Traffic::default();
        normal(&mut tr, 0, 600, None);
        identify(&mut tr, 300.5, "1.0");
        let b = learn(&tr);
        let plc = b.assets.iter().find(|a| a.ip == std::net::IpAddr::from(PLC)).expect("asset");
        assert_eq!(plc.identity.get("VendorName").map(String::as_str), Some("ACME"));
        let mut later = Traffic::default();
        normal(&mut later, 600, 700, None);
        identify(&mut later, 650.5, "2.0");
        let alerts = detect(&b, &later);
        let a = find(&alerts, "modbus.identity_changed");
        assert!(a.summary.contains("\"2.0\"") && a.summary.contains("\"1.0\""), "{}", a.summary);
        assert!(a.severity >= Severity::High);
        let mut same = Traffic::default();
        normal(&mut same, 600, 700, None);
        identify(&mut same, 650.5, "1.0");
        assert!(!detect(&b, &same).iter().any(|a| a.id == "modbus.identity_changed"));
    }

    #[test]
    fn a_device_answering_from_another_mac_is_alerted_once() {
        let mut tr = Traffic { ethernet: Some(HashMap::new()), ..Traffic::default() };
        normal(&mut tr, 0, 600, None);
        let b = learn(&tr);
        let plc = b.assets.iter().find(|a| a.ip == std::net::IpAddr::from(PLC)).expect("asset");
        assert_eq!(plc.mac.as_deref(), Some("02:00:0a:00:00:02"));
        let mut spoofed = HashMap::new();
        spoofed.insert(PLC, [0x02, 0xee, 0xee, 0xee, 0xee, 0xee]);
        let mut later = Traffic { ethernet: Some(spoofed), ..Traffic::default() };
        normal(&mut later, 600, 700, None);
        let alerts = detect(&b, &later);
        let macs: Vec<_> = alerts.iter().filter(|a| a.id == "net.mac_changed").collect();
        assert_eq!(macs.len(), 1, "{:?}", ids(&alerts));
        assert!(macs[0].summary.contains("02:ee:ee:ee:ee:ee"), "{}", macs[0].summary);
        let mut same = Traffic { ethernet: Some(HashMap::new()), ..Traffic::default() };
        normal(&mut same, 600, 700, None);
        assert!(detect(&b, &same).is_empty());
    }
}
