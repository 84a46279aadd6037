//! The loader: the example policy, and one test per error, with its line and reason.

use std::net::IpAddr;

use otsensor_dissectors::event::{FunctionClass, Protocol, Space};

use crate::policy::{Action, HostSel, Service, ValueType, WordOrder};
use crate::{load, Known, PolicyError};

fn known() -> Known<'static> {
    Known { rule_id: &|id| (9_100_000..9_100_400).contains(&id) }
}

fn example() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/plant.toml")).expect("the example")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn the_example_policy_loads_with_every_section() {
    let p = load("plant.toml", &example(), &known()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.zones.len(), 2);
    assert_eq!(p.zone_of(ip("192.168.0.20")).map(|(_, z)| z.name.as_str()), Some("control"));
    assert_eq!(p.zone_of(ip("fd00:0:0:10::7")).map(|(_, z)| z.name.as_str()), Some("control"));
    assert!(p.zone_of(ip("192.168.0.40")).is_none());
    let c = &p.conduits[0];
    assert_eq!((c.from, c.to), (0, 1));
    assert_eq!(c.services, [Service::Ics(Protocol::Modbus), Service::Ics(Protocol::S7comm), Service::Tcp(502)]);
    assert_eq!(c.classes.as_deref(), Some(&[FunctionClass::Read, FunctionClass::Write][..]));
    assert_eq!(p.asset(ip("192.168.0.20")).map(|a| a.criticality), Some(5));
    let g = &p.guardrails[1];
    assert_eq!((g.value_type, g.word_order, g.range), (ValueType::F32, WordOrder::Big, Some((20.0, 95.0))));
    assert_eq!(g.point.space, Space::ModbusHoldingRegisters);
    assert_eq!(g.point.index, 100);
    let r = &p.rules[0];
    assert_eq!(r.action, Action::Alert("high"));
    assert_eq!(r.function, Some(15), "WRITE_MULTIPLE_COILS is function 15");
    assert_eq!((r.src.clone(), r.dst.clone()), (HostSel::Zone(0), HostSel::Zone(1)));
    assert_eq!(p.rules[1].action, Action::Allow);
    assert_eq!(p.suppressions[0].until, Some(1_801_353_600), "2027-01-31T00:00:00Z");
    let w = &p.maintenance[0];
    assert_eq!((w.from, w.to), (1_796_450_400, 1_796_464_800));
    assert_eq!(w.assets, [ip("192.168.0.20")], "named by its asset name");
}

/// Loads `text`; the error, which must be at `line` and mention `reason`.
fn refused(text: &str, line: usize, reason: &str) -> PolicyError {
    let e = load("bad.toml", text, &known()).expect_err("refused");
    assert_eq!(e.file, "bad.toml");
    assert!(e.reason.contains(reason), "{e}: expected {reason:?}");
    assert_eq!(e.line, line, "{e}");
    e
}

const ZONES: &str = "[[zone]]\nname = \"a\"\nnetworks = [\"10.0.0.0/24\"]\nsecurity_level = 2\n";

#[test]
fn an_unknown_function_name_is_refused_where_it_stands() {
    let text = "[[rule]]\nname = \"r\"\naction = \"alert\"\nseverity = \"high\"\nprotocol = \"modbus\"\nfunction = \"WRITE_SINGLE_REGISTERS\"\n";
    let e = refused(text, 6, "unknown modbus function \"WRITE_SINGLE_REGISTERS\"");
    assert_eq!(e.column, 12, "{e}");
    assert_eq!(e.to_string(), "bad.toml:6:12: unknown modbus function \"WRITE_SINGLE_REGISTERS\"");
}

#[test]
fn a_bad_cidr_is_refused() {
    refused("[[zone]]\nname = \"a\"\nnetworks = [\"10.0.0.1/24\"]\nsecurity_level = 2\n", 3, "host bits");
    refused("[[zone]]\nname = \"a\"\nnetworks = [\"10.0.0.0/40\"]\nsecurity_level = 2\n", 3, "prefix");
}

#[test]
fn overlapping_zones_are_refused() {
    let text = format!("{ZONES}[[zone]]\nname = \"b\"\nnetworks = [\"10.0.0.128/25\"]\nsecurity_level = 3\n");
    refused(&text, 7, "overlaps zone \"a\"");
}

#[test]
fn a_conduit_to_an_unknown_zone_is_refused() {
    let text = format!("{ZONES}[[conduit]]\nfrom = \"a\"\nto = \"plant\"\nprotocols = [\"modbus\"]\n");
    refused(&text, 7, "unknown zone \"plant\"");
}

#[test]
fn inverted_ranges_are_refused() {
    let g = "[[guardrail]]\nname = \"g\"\ndevice = \"10.0.0.2\"\npoint = { protocol = \"modbus\", space = \"coils\", address = 1 }\nrange = [5.0, 1.0]\n";
    refused(g, 5, "inverted range [5, 1]");
    let r = "[[rule]]\nname = \"r\"\naction = \"allow\"\naddress = [200, 100]\n";
    refused(r, 4, "inverted range [200, 100]");
}

#[test]
fn a_window_that_ends_before_it_starts_is_refused() {
    let w = "[[maintenance]]\nname = \"w\"\nfrom = 2026-12-05T10:00:00Z\nto = 2026-12-05T06:00:00Z\nassets = [\"10.0.0.2\"]\napproved_by = \"x\"\n";
    refused(w, 4, "ends before it starts");
    let local = "[[maintenance]]\nname = \"w\"\nfrom = 2026-12-05T10:00:00\nto = 2026-12-05T12:00:00Z\nassets = [\"10.0.0.2\"]\napproved_by = \"x\"\n";
    refused(local, 3, "time zone");
}

#[test]
fn an_unknown_rule_id_is_refused() {
    refused("[[suppression]]\nrule_id = 42\n", 2, "unknown rule id 42");
}

#[test]
fn unknown_keys_names_and_levels_are_refused() {
    refused("[[zone]]\nname = \"a\"\nnetwork = [\"10.0.0.0/24\"]\nsecurity_level = 2\n", 3, "unknown field `network`");
    refused(
        "[[zone]]\nname = \"a\"\nnetworks = [\"10.0.0.0/24\"]\nsecurity_level = 5\n",
        4,
        "security level 5 is not 1-4",
    );
    let c = format!("{ZONES}[[conduit]]\nfrom = \"a\"\nto = \"a\"\nprotocols = [\"modbus\"]\nclasses = [\"writes\"]\n");
    refused(&c, 9, "unknown operation class \"writes\"");
    let a = "[[asset]]\nname = \"x\"\naddress = \"10.0.0.2\"\ncriticality = 9\n";
    refused(a, 4, "criticality 9 is not 1-5");
    let p = "[[guardrail]]\nname = \"g\"\ndevice = \"10.0.0.2\"\npoint = { protocol = \"s7comm\", area = \"DB\", address = 1 }\nrange = [0.0, 1.0]\n";
    refused(p, 4, "unknown S7 area \"DB\"");
}

#[test]
fn function_names_resolve_for_each_protocol() {
    assert_eq!(crate::load::function_code(Protocol::Modbus, "WRITE_SINGLE_REGISTER"), Some(6));
    assert_eq!(crate::load::function_code(Protocol::Dnp3, "DIRECT_OPERATE"), Some(5));
    assert_eq!(crate::load::function_code(Protocol::S7comm, "PLC_STOP"), Some(0x29));
    assert_eq!(crate::load::function_code(Protocol::Modbus, "NOPE"), None);
}

#[test]
fn every_other_message_names_its_line() {
    let g = |extra: &str| {
        format!(
            "[[guardrail]]\nname = \"g\"\ndevice = \"10.0.0.2\"\npoint = {{ protocol = \"modbus\", space = \"coils\", address = 1 }}\n{extra}\n"
        )
    };
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("{ZONES}[[zone]]\nname = \"a\"\nnetworks = [\"10.1.0.0/24\"]\nsecurity_level = 2\n"), 6, "zone \"a\" is defined twice"),
        ("[[asset]]\nname = \"x\"\naddress = \"10.0.0.2\"\ncriticality = 3\n[[asset]]\nname = \"y\"\naddress = \"10.0.0.2\"\ncriticality = 3\n".into(), 7, "10.0.0.2 is already an asset"),
        ("[[asset]]\nname = \"x\"\naddress = \"10.0.0.2\"\ncriticality = 3\n[[asset]]\nname = \"x\"\naddress = \"10.0.0.3\"\ncriticality = 3\n".into(), 6, "asset \"x\" is defined twice"),
        ("[[asset]]\nname = \"x\"\naddress = \"plc-1\"\ncriticality = 3\n".into(), 3, "\"plc-1\" is not an IP address"),
        (format!("{ZONES}[[conduit]]\nfrom = \"a\"\nto = \"a\"\nprotocols = [\"bacnet\"]\n"), 8, "unknown protocol \"bacnet\""),
        (g("type = \"u64\"\nrange = [0.0, 1.0]"), 5, "unknown type \"u64\""),
        (g("word_order = \"middle\"\nrange = [0.0, 1.0]"), 5, "unknown word order \"middle\""),
        (g("max_rate = 0.0"), 5, "max_rate 0 is not above 0"),
        (g(""), 3, "sets none of range, max_rate, values"),
        ("[[guardrail]]\nname = \"g\"\ndevice = \"10.0.0.2\"\npoint = { protocol = \"modbus\", address = 1 }\nrange = [0.0, 1.0]\n".into(), 4, "a Modbus point needs space"),
        ("[[guardrail]]\nname = \"g\"\ndevice = \"10.0.0.2\"\npoint = { protocol = \"dnp3\", address = 1 }\nrange = [0.0, 1.0]\n".into(), 4, "a DNP3 point needs group"),
        ("[[rule]]\nname = \"r\"\naction = \"drop\"\n".into(), 3, "unknown action \"drop\""),
        ("[[rule]]\nname = \"r\"\naction = \"alert\"\n".into(), 3, "an alert rule needs a severity"),
        ("[[rule]]\nname = \"r\"\naction = \"alert\"\nseverity = \"urgent\"\n".into(), 4, "unknown severity \"urgent\""),
        ("[[rule]]\nname = \"r\"\naction = \"allow\"\nfunction = \"READ_COILS\"\n".into(), 4, "function \"READ_COILS\" needs a protocol"),
        ("[[rule]]\nname = \"r\"\naction = \"allow\"\nsrc = \"zone:dmz\"\n".into(), 4, "unknown zone \"dmz\""),
        ("[[rule]]\nname = \"r\"\naction = \"allow\"\ndst = \"10.0.0.0/33\"\n".into(), 4, "use any, zone:NAME, an address or a CIDR block"),
        ("[[maintenance]]\nname = \"w\"\nfrom = 2026-12-05T10:00:00Z\nto = 2026-12-05T11:00:00Z\napproved_by = \"x\"\n".into(), 3, "names no asset and no zone"),
        ("[[maintenance]]\nname = \"w\"\nfrom = 2026-12-05T10:00:00Z\nto = 2026-12-05T11:00:00Z\nassets = [\"PLC-9\"]\napproved_by = \"x\"\n".into(), 5, "\"PLC-9\" is neither an asset name nor an IP address"),
    ];
    for (text, line, reason) in cases {
        refused(&text, line, reason);
    }
}
