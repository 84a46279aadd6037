//! Rules about engine notices: `port_protocol_mismatch` and `tcp_retransmission_conflict`.

use otsensor_dissectors::event::{Endpoint, Notice, NoticeKind};

use crate::alert::{Folder, Occ};
use crate::baseline::{PortNotice, PortNoticeKind};
use crate::model::hash64;
use crate::rules_catalog::{Family, Kind};
use crate::words;

/// A notice not seen while learning: a port carrying another protocol, or a retransmission
/// whose bytes differ from the first copy. `crit`: the server's criticality.
pub(crate) fn port_notice(n: &Notice, pn: &PortNotice, crit: f64, learned: &str, folder: &mut Folder) {
    let conflict = pn.kind == PortNoticeKind::RetransmissionConflict;
    let occ = Occ {
        kind: if conflict { Kind::RetransmissionConflict } else { Kind::PortProtocolMismatch },
        family: Family::Net,
        subject: hash64(&(pn.server, pn.port)),
        // The hash of the written kind, as when kinds were strings (fold keys stay the same).
        detail: hash64(pn.kind.to_string().as_str()),
        ts: n.ts,
        pkt: n.pkt,
        ts_last: n.ts,
        pkt_last: n.pkt,
        src: n.src,
        dst: n.dst,
        protocol: None,
        class: None,
        deviation: 1.0,
        criticality: crit,
        min_score: 0,
        point: None,
        learn: None,
        stranger: false,
    };
    if conflict {
        let bytes = match n.kind {
            NoticeKind::RetransmissionConflict { bytes } => bytes,
            _ => 0,
        };
        folder.hit(occ, || words::retransmission_conflict(n.src, n.dst, bytes, learned));
        return;
    }
    let server = Endpoint { ip: pn.server, port: pn.port };
    folder.hit(occ, || words::port_protocol_mismatch(&pn.kind, (n.src, n.dst), server, learned));
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)]
    use crate::tests::*;

    #[test]
    fn a_port_carrying_another_protocol_is_alerted_once() {
        let b = baseline_600s();
        let mut d = Detector::new(&b).expect("detector");
        let n = Notice {
            ts: ts(650.0),
            pkt: 7,
            src: Endpoint { ip: [10, 0, 0, 9].into(), port: 50000 },
            dst: Endpoint { ip: [10, 0, 0, 2].into(), port: 8080 },
            kind: NoticeKind::UnexpectedPort { found: Protocol::Dnp3 },
        };
        d.notice(&n);
        d.notice(&Notice { ts: ts(800.0), ..n });
        let mut out = Vec::new();
        d.finish(&mut out);
        assert_eq!(ids(&out), ["net.port_protocol_mismatch"]);
        assert!(out[0].summary.contains("dnp3") && out[0].evidence.contains("identified by content"), "{:?}", out[0]);
    }
}
