//! Rules about devices: `new_asset`, `mac_changed`, `identity_changed`.

use crate::alert::{Folder, Occ};
use crate::model::hash64;
use crate::observation::{identity_key, Observation};
use crate::rules_catalog::{Family, Kind};
use crate::words;

use super::Ctx;

/// `new_asset`: the client or the server of the pair was never seen while learning.
pub(crate) fn new_asset(obs: &Observation<'_>, cx: &Ctx<'_>, folder: &mut Folder) {
    let key = cx.key;
    for (ip, other, sends) in [(key.client, key.server, true), (key.server, key.client, false)] {
        if cx.model.assets.contains_key(&ip) {
            continue;
        }
        let o = Occ { kind: Kind::NewAsset, family: Family::Net, subject: hash64(&ip), ..cx.occ };
        if folder.is_done(o.kind, o.family, o.subject, 0) {
            continue;
        }
        let (fname, protocol, learned) = (obs.func_name, key.protocol, cx.learned);
        folder.hit(o, || words::new_asset(ip, other, sends, fname, protocol, learned));
    }
}

/// `mac_changed`: each side's MAC against the learned one (`macs`: client's, server's).
pub(crate) fn mac_changed(obs: &Observation<'_>, cx: &Ctx<'_>, macs: [Option<[u8; 6]>; 2], folder: &mut Folder) {
    let (client_mac, server_mac) = obs.client_server_macs();
    let [client_learned, server_learned] = macs;
    for (ip, learned_mac, seen_mac) in
        [(cx.key.client, client_learned, client_mac), (cx.key.server, server_learned, server_mac)]
    {
        let (Some(l), Some(m)) = (learned_mac, seen_mac) else { continue };
        if l == m {
            continue;
        }
        let o = Occ {
            kind: Kind::MacChanged,
            family: Family::Net,
            subject: hash64(&ip),
            detail: hash64(&m),
            class: None,
            ..cx.occ
        };
        folder.hit(o, || words::mac_changed(ip, l, m, cx.learned));
    }
}

/// `identity_changed`: a device identification object other than the learned one.
pub(crate) fn identity_changed(obs: &Observation<'_>, cx: &Ctx<'_>, folder: &mut Folder) {
    if !obs.has_identity() {
        return;
    }
    let Some(asset) = cx.model.assets.get(&cx.key.server) else { return };
    for (oid, value) in obs.identity() {
        let name = identity_key(oid);
        let Some(learned_value) = asset.identity.get(&name) else { continue };
        let seen = String::from_utf8_lossy(value);
        if *learned_value == seen {
            continue;
        }
        let o = Occ { kind: Kind::IdentityChanged, detail: u64::from(oid), class: None, ..cx.occ };
        folder.hit(o, || words::identity_changed(&name, &seen, learned_value, cx.client(), cx.server(), cx.learned));
    }
}
