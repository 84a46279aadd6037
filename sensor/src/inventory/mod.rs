//! `otsensor inventory`: the assets and conversations a capture shows, with what an asset
//! owner looks at first: assets in no zone, flows no conduit allows, engineering stations,
//! assets the baseline does not know.

mod oui;

/// The vendor registered for a MAC address's prefix, among the vendors of OT networks
/// (`sensor/src/inventory/oui.rs`).
pub fn vendor(mac: [u8; 6]) -> Option<&'static str> {
    let prefix = u32::from_be_bytes([0, mac[0], mac[1], mac[2]]);
    oui::OUI.binary_search_by_key(&prefix, |&(p, _)| p).ok().and_then(|i| oui::OUI.get(i)).map(|&(_, v)| v)
}

/// Parses `02:00:5e:10:00:01` (the baseline's spelling of a MAC).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_of_plant_equipment_are_named() {
        assert_eq!(vendor([0x00, 0x00, 0xbc, 1, 2, 3]), Some("Rockwell Automation"));
        assert_eq!(vendor([0x00, 0x01, 0x05, 0, 0, 1]), Some("Beckhoff Automation GmbH"));
        assert_eq!(vendor([0x02, 0x00, 0x00, 0, 0, 1]), None, "locally administered");
        assert!(oui::OUI.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicate");
    }

    #[test]
    fn macs_parse_as_the_baseline_writes_them() {
        assert_eq!(parse_mac("00:0e:8c:aa:bb:cc"), Some([0x00, 0x0e, 0x8c, 0xaa, 0xbb, 0xcc]));
        assert_eq!(parse_mac("00:0e:8c:aa:bb"), None);
        assert_eq!(parse_mac("00:0e:8c:aa:bb:cc:dd"), None);
    }
}
