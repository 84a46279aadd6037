//! The detections: stable ids, numeric rule ids, revisions, weights and ATT&CK techniques.
//!
//! An alert id is `<family>.<name>`: the family is the protocol (`modbus`, `dnp3`, `s7comm`,
//! `s7comm_plus`) for everything seen inside a protocol, and `net` for what is about hosts
//! and ports. The numeric rule id is `9_100_000 + 100 * family + kind`, so that it never
//! changes when rules are added; `docs/DETECTIONS.md` carries the same table. A rule's `rev`
//! is bumped whenever what makes it fire changes.

use otsensor_dissectors::event::{CriticalOp, FunctionClass, Protocol};

/// Base of the numeric rule ids (Suricata's "local" range starts at 9,000,000).
pub const RULE_ID_BASE: u32 = 9_100_000;

/// Alert severity, from the score: critical >= 80, high >= 60, medium >= 35, else low.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth a look when time allows.
    Low,
    /// Investigate.
    Medium,
    /// Investigate now.
    High,
    /// A controller is being stopped, restarted, reprogrammed or blinded.
    Critical,
}

impl Severity {
    /// The severity a score falls in.
    pub fn from_score(score: u8) -> Self {
        match score {
            80.. => Severity::Critical,
            60..=79 => Severity::High,
            35..=59 => Severity::Medium,
            _ => Severity::Low,
        }
    }
    /// Name in alerts.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Where an alert belongs: a protocol, or the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Hosts and ports, whatever the protocol.
    Net,
    /// Inside one protocol.
    Proto(Protocol),
    /// What the operator's policy says (zones and conduits, guardrails, rules).
    Policy,
}

impl Family {
    /// Name, the first part of an alert id.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Net => "net",
            Family::Proto(p) => p.name(),
            Family::Policy => "policy",
        }
    }
    /// Number used in rule ids.
    pub const fn number(self) -> u32 {
        match self {
            Family::Net => 0,
            Family::Proto(Protocol::Modbus) => 1,
            Family::Proto(Protocol::Dnp3) => 2,
            Family::Proto(Protocol::S7comm) => 3,
            Family::Proto(Protocol::S7commPlus) => 4,
            Family::Policy => 5,
        }
    }
    /// Every family, in rule-id order.
    pub const ALL: [Family; 6] = [
        Family::Net,
        Family::Proto(Protocol::Modbus),
        Family::Proto(Protocol::Dnp3),
        Family::Proto(Protocol::S7comm),
        Family::Proto(Protocol::S7commPlus),
        Family::Policy,
    ];
}

/// The kinds of detection; [`Kind::number`] is the last two digits of the rule id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An address never seen during learning talks an industrial protocol.
    NewAsset,
    /// A client talks to a server (protocol, port) it never talked to during learning.
    NewPair,
    /// A function code this pair never used.
    NewFunctionCode,
    /// A write or control from a pair that only ever read.
    WriteOnReadOnlyPair,
    /// A write to points this pair never wrote.
    WriteOutsideBaseline,
    /// A read of points this pair never read.
    ReadOutsideBaseline,
    /// A value outside the envelope learned for its point.
    ValueOutsideEnvelope,
    /// A request polled regularly during learning stopped coming.
    ChannelSilent,
    /// Two functions followed each other in an order never seen on this pair.
    UnseenFunctionSequence,
    /// Far more exception or error responses than the pair ever had.
    ExceptionBurst,
    /// Far more requests than the pair ever sent.
    Flood,
    /// Many addresses, units, function codes or hosts probed in a short time.
    Scan,
    /// A message the dissector flagged as violating its protocol.
    ProtocolViolation,
    /// A port carrying a protocol other than its own.
    PortProtocolMismatch,
    /// The statistical model finds a window of a pair's traffic unlike any learned.
    StatisticalAnomaly,
    /// A recurring request now comes much faster than it ever did.
    PollingPeriodBroken,
    /// A device reports an identity (vendor, product, revision) other than the learned one.
    IdentityChanged,
    /// A TCP retransmission carried other bytes than the first copy.
    RetransmissionConflict,
    /// An address now arrives from another Ethernet address than the learned one.
    MacChanged,
    /// A critical operation (restart, stop, download...), alerted whatever the baseline.
    Critical(CriticalOp),
    /// Traffic between two zones that no conduit of the policy allows, or an operation class
    /// the conduit does not allow.
    ConduitViolation,
    /// A value written outside a guardrail of the policy.
    GuardrailViolation,
    /// A rule of the policy matched.
    PolicyRule,
    /// Two hosts talk over a service (port) they never used.
    NewService,
    /// First use of remote access (RDP, VNC, SSH, Telnet) between two hosts.
    RemoteAccess,
    /// First use of a file transfer service (SMB, FTP, TFTP) between two hosts.
    FileTransfer,
    /// One source probes many ports of a host.
    PortScan,
    /// One source probes many hosts (connections, ICMP or ARP).
    HostSweep,
    /// Far more half-open TCP connections toward a host than ever learned.
    SynFlood,
    /// An address bound by ARP to another MAC than learned.
    ArpSpoofing,
    /// Packets from a known address with an IP TTL outside the learned set.
    TtlChanged,
    /// A SYN carrying data, or a segment of an ICS connection arriving by another path.
    TcpInjection,
    /// One DNP3 client probing many link (outstation) addresses.
    LinkAddressSweep,
}

/// A detection's fixed description.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo {
    /// Snake-case name, the second part of the alert id.
    pub name: &'static str,
    /// Human name.
    pub title: &'static str,
    /// Base weight, 0-100, before deviation, impact and asset criticality.
    pub weight: f64,
    /// Whether a key alerts only once per run (a new thing is new once); otherwise once per
    /// fold window.
    pub once: bool,
    /// Revision.
    pub rev: u32,
    /// MITRE ATT&CK for ICS technique, when one fits.
    pub mitre: Option<&'static str>,
    /// Highest score the rule may reach: reconnaissance and error bursts stay below the
    /// critical band, which is kept for what stops, restarts, reprograms or blinds.
    pub max_score: u8,
}

/// Number used in rule ids for a critical operation (kinds 20-39).
const fn critical_number(op: CriticalOp) -> u32 {
    20 + match op {
        CriticalOp::ColdRestart => 0,
        CriticalOp::WarmRestart => 1,
        CriticalOp::ListenOnly => 2,
        CriticalOp::StopApplication => 3,
        CriticalOp::Initialize => 4,
        CriticalOp::DisableUnsolicited => 5,
        CriticalOp::FileOperation => 6,
        CriticalOp::PlcStop => 7,
        CriticalOp::PlcStart => 8,
        CriticalOp::ProgramDownload => 9,
        CriticalOp::ProgramUpload => 10,
        CriticalOp::BlockDelete => 11,
        CriticalOp::MemoryOperation => 12,
        CriticalOp::ProtectionChange => 13,
        CriticalOp::Firmware => 14,
    }
}

/// [`RuleInfo::once`] of every kind, by [`Kind::number`], drawn from [`Kind::info`] when
/// compiled.
// Evaluated by the compiler: an index out of range fails the build, never a run.
#[allow(clippy::indexing_slicing)]
const ONCE_BY_NUMBER: [bool; 64] = {
    let mut t = [false; 64];
    let mut i = 0;
    while i < Kind::BASE.len() {
        t[Kind::BASE[i].number() as usize] = Kind::BASE[i].info().once;
        i += 1;
    }
    let mut i = 0;
    while i < Kind::POLICY.len() {
        t[Kind::POLICY[i].number() as usize] = Kind::POLICY[i].info().once;
        i += 1;
    }
    let mut i = 0;
    while i < CRITICAL_OPS.len() {
        let k = Kind::Critical(CRITICAL_OPS[i]);
        t[k.number() as usize] = k.info().once;
        i += 1;
    }
    t
};

/// Every critical operation, in rule-id order.
pub const CRITICAL_OPS: [CriticalOp; 15] = [
    CriticalOp::ColdRestart,
    CriticalOp::WarmRestart,
    CriticalOp::ListenOnly,
    CriticalOp::StopApplication,
    CriticalOp::Initialize,
    CriticalOp::DisableUnsolicited,
    CriticalOp::FileOperation,
    CriticalOp::PlcStop,
    CriticalOp::PlcStart,
    CriticalOp::ProgramDownload,
    CriticalOp::ProgramUpload,
    CriticalOp::BlockDelete,
    CriticalOp::MemoryOperation,
    CriticalOp::ProtectionChange,
    CriticalOp::Firmware,
];

impl Kind {
    /// The number in the rule id.
    pub const fn number(self) -> u32 {
        match self {
            Kind::NewAsset => 1,
            Kind::NewPair => 2,
            Kind::NewFunctionCode => 3,
            Kind::WriteOnReadOnlyPair => 4,
            Kind::WriteOutsideBaseline => 5,
            Kind::ReadOutsideBaseline => 6,
            Kind::ValueOutsideEnvelope => 7,
            Kind::ChannelSilent => 8,
            Kind::UnseenFunctionSequence => 9,
            Kind::ExceptionBurst => 10,
            Kind::Flood => 11,
            Kind::Scan => 12,
            Kind::ProtocolViolation => 13,
            Kind::PortProtocolMismatch => 14,
            Kind::StatisticalAnomaly => 15,
            Kind::PollingPeriodBroken => 16,
            Kind::IdentityChanged => 17,
            Kind::RetransmissionConflict => 18,
            Kind::MacChanged => 19,
            Kind::Critical(op) => critical_number(op),
            Kind::ConduitViolation => 40,
            Kind::GuardrailViolation => 41,
            Kind::PolicyRule => 42,
            Kind::NewService => 50,
            Kind::RemoteAccess => 51,
            Kind::FileTransfer => 52,
            Kind::PortScan => 53,
            Kind::HostSweep => 54,
            Kind::SynFlood => 55,
            Kind::ArpSpoofing => 56,
            Kind::TtlChanged => 57,
            Kind::TcpInjection => 58,
            Kind::LinkAddressSweep => 59,
        }
    }

    /// The numeric rule id in `family`.
    pub const fn rule_id(self, family: Family) -> u32 {
        RULE_ID_BASE + 100 * family.number() + self.number()
    }

    /// The kinds of the policy family, in rule-id order.
    pub const POLICY: [Kind; 3] = [Kind::ConduitViolation, Kind::GuardrailViolation, Kind::PolicyRule];

    /// Every non-critical kind of the other families, in rule-id order.
    pub const BASE: [Kind; 29] = [
        Kind::NewAsset,
        Kind::NewPair,
        Kind::NewFunctionCode,
        Kind::WriteOnReadOnlyPair,
        Kind::WriteOutsideBaseline,
        Kind::ReadOutsideBaseline,
        Kind::ValueOutsideEnvelope,
        Kind::ChannelSilent,
        Kind::UnseenFunctionSequence,
        Kind::ExceptionBurst,
        Kind::Flood,
        Kind::Scan,
        Kind::ProtocolViolation,
        Kind::PortProtocolMismatch,
        Kind::StatisticalAnomaly,
        Kind::PollingPeriodBroken,
        Kind::IdentityChanged,
        Kind::RetransmissionConflict,
        Kind::MacChanged,
        Kind::NewService,
        Kind::RemoteAccess,
        Kind::FileTransfer,
        Kind::PortScan,
        Kind::HostSweep,
        Kind::SynFlood,
        Kind::ArpSpoofing,
        Kind::TtlChanged,
        Kind::TcpInjection,
        Kind::LinkAddressSweep,
    ];

    /// Whether the rule reports something new once (see [`RuleInfo::once`]); what every
    /// occurrence asks first: a lookup by rule number, not the whole description built.
    #[inline(always)]
    pub fn once(self) -> bool {
        ONCE_BY_NUMBER.get(self.number() as usize).copied().unwrap_or(false)
    }

    /// The fixed description. Each comment says why the rule fires.
    pub const fn info(self) -> RuleInfo {
        match self {
            // OT networks are static: a new address speaking an ICS protocol is a new device,
            // a laptop plugged in, or an attacker (a rogue master when it sends requests).
            // Rev 2: any protocol, not only an ICS one.
            Kind::NewAsset => RuleInfo { rev: 2, ..r("new_asset", "New asset", 70.0, true, Some("T0848")) },
            // Who talks to whom is the most stable fact of a plant; a new client of a
            // controller is the first sign of a rogue master or lateral movement.
            Kind::NewPair => r("new_pair", "New communication pair", 65.0, true, Some("T0848")),
            // Masters use a handful of function codes; a new one is an engineering action,
            // a tool, or an attack (the commercial "unpermitted function code").
            Kind::NewFunctionCode => r("new_function_code", "New function code on a pair", 70.0, true, Some("T0855")),
            // A pair that only ever read now changes the process.
            Kind::WriteOnReadOnlyPair => {
                r("write_on_read_only_pair", "Write on a read-only pair", 85.0, true, Some("T0855"))
            }
            // Points written outside those ever written: a setpoint or coil nobody touches.
            Kind::WriteOutsideBaseline => {
                r("write_outside_baseline", "Write outside the learned points", 62.0, true, Some("T0836"))
            }
            // Reads of addresses never polled: point and tag identification, or a new screen.
            Kind::ReadOutsideBaseline => {
                r("read_outside_baseline", "Read outside the learned points", 50.0, true, Some("T0861"))
            }
            // A value outside its learned set or range: a tampered setpoint or a process
            // excursion.
            Kind::ValueOutsideEnvelope => {
                r("value_outside_envelope", "Value outside its envelope", 60.0, false, Some("T0836"))
            }
            // A request polled every few seconds stopped: loss of view, a dead link, a device
            // taken down.
            Kind::ChannelSilent => r("channel_silent", "Polling stopped", 50.0, false, Some("T0815")),
            // Masters follow scripts; an order of functions never seen is a human or a tool.
            Kind::UnseenFunctionSequence => {
                r("unseen_function_sequence", "Unseen function sequence", 35.0, true, Some("T0855"))
            }
            // Error responses far above normal: probing, brute force, a misconfigured master.
            Kind::ExceptionBurst => {
                RuleInfo { max_score: 79, ..r("exception_burst", "Exception burst", 55.0, false, Some("T0888")) }
            }
            // Request rate far above the pair's baseline: denial of service or a runaway tool.
            Kind::Flood => r("flood", "Request flood", 80.0, false, Some("T0814")),
            // Many addresses, units, function codes or hosts probed in a short time.
            Kind::Scan => RuleInfo { max_score: 79, ..r("scan", "Scan", 75.0, false, Some("T0846")) },
            // A malformed message: a fuzzer, an exploit, or a broken device.
            Kind::ProtocolViolation => r("protocol_violation", "Protocol violation", 55.0, true, Some("T0866")),
            // A protocol on another's port: tunnelling or evasion, or a misconfiguration.
            Kind::PortProtocolMismatch => {
                r("port_protocol_mismatch", "Port used by another protocol", 60.0, true, Some("T0885"))
            }
            // The statistical model's reconstruction error is above every learned window's.
            Kind::StatisticalAnomaly => {
                r("statistical_anomaly", "Traffic unlike the learned windows", 40.0, false, None)
            }
            // A poll that suddenly runs several times faster than ever: a second master, a
            // replay, or a tool hammering one register.
            Kind::PollingPeriodBroken => {
                r("polling_period_broken", "Polling faster than ever learned", 50.0, false, None)
            }
            // A controller that now answers with another vendor, product or revision was
            // replaced, reflashed, or is being impersonated.
            Kind::IdentityChanged => r("identity_changed", "Device identity changed", 75.0, true, Some("T0849")),
            // The same TCP bytes sent twice with different content: someone in the middle
            // rewrites traffic, or shows the sensor one thing and the device another.
            Kind::RetransmissionConflict => {
                r("tcp_retransmission_conflict", "Retransmission with different bytes", 75.0, false, Some("T0830"))
            }
            // An IP that now comes from another MAC: ARP spoofing for a man in the middle, or a
            // replaced device (or a new router between the sensor and it).
            Kind::MacChanged => r("mac_changed", "Address seen with another MAC", 65.0, true, Some("T0830")),
            // Stopping, restarting, reprogramming or blinding a controller is alerted whatever
            // the baseline: it is rare, high impact, and exactly what attacks do.
            Kind::Critical(op) => {
                let (title, mitre) = critical_title(op);
                r(op.name(), title, 95.0, false, Some(mitre))
            }
            // The plant's own zoning says this flow must not exist: a path an attacker opened
            // between zones, or a misconfiguration that weakens the segmentation.
            Kind::ConduitViolation => r("conduit_violation", "Flow no conduit allows", 80.0, false, Some("T0886")),
            // A setpoint outside the range the process engineer declared safe, whatever the
            // baseline learned: the manipulation of control an attack aims at.
            Kind::GuardrailViolation => {
                r("guardrail_violation", "Value outside its guardrail", 95.0, false, Some("T0836"))
            }
            // The operator asked to be told; the rule's own severity sets the floor.
            Kind::PolicyRule => r("rule", "Policy rule matched", 60.0, false, None),
            // Hosts of a plant use the same few services for years; a new one is a new
            // tool, a new channel out, or lateral movement.
            Kind::NewService => r("new_service", "New service between hosts", 55.0, true, Some("T0886")),
            // Interactive access between OT hosts is how attackers move and operate.
            Kind::RemoteAccess => r("remote_access", "First remote access between hosts", 80.0, true, Some("T0886")),
            // Files moved between OT hosts: tools staged, projects or logs taken.
            Kind::FileTransfer => r("file_transfer", "First file transfer between hosts", 75.0, true, Some("T0867")),
            // Many ports of one host in a minute: service discovery before an attack.
            Kind::PortScan => RuleInfo { max_score: 79, ..r("port_scan", "Port scan", 70.0, false, Some("T0846")) },
            // Many hosts in a minute: network discovery.
            Kind::HostSweep => RuleInfo { max_score: 79, ..r("host_sweep", "Host sweep", 70.0, false, Some("T0846")) },
            // Connections opened and never completed, far above normal: denial of service.
            Kind::SynFlood => r("syn_flood", "SYN flood", 80.0, false, Some("T0814")),
            // ARP poisoning is how a man in the middle gets into an OT LAN.
            Kind::ArpSpoofing => r("arp_spoofing", "ARP binding changed", 85.0, true, Some("T0830")),
            // A known address with another TTL: another host sends in its name, or a new hop
            // (a man in the middle) is in the path. Not once: each burst of spoofed packets
            // is an attack in progress (a lasting change is accepted into the baseline).
            Kind::TtlChanged => r("ttl_changed", "Address seen with another TTL", 60.0, false, Some("T0830")),
            // Data in a SYN, or a segment of a live ICS connection from another path: a
            // session hijack or injection.
            Kind::TcpInjection => r("tcp_injection", "TCP injection", 85.0, false, Some("T0830")),
            // Many DNP3 link addresses from one client: discovery of the outstations behind
            // a gateway or on a multidrop line.
            Kind::LinkAddressSweep => RuleInfo {
                max_score: 79,
                ..r("link_address_sweep", "DNP3 link address sweep", 75.0, false, Some("T0846"))
            },
        }
    }
}

/// A rule's information at revision 1, scores up to 100.
const fn r(name: &'static str, title: &'static str, weight: f64, once: bool, mitre: Option<&'static str>) -> RuleInfo {
    RuleInfo { name, title, weight, once, rev: 1, mitre, max_score: 100 }
}

/// Human name and ATT&CK technique of a critical operation.
const fn critical_title(op: CriticalOp) -> (&'static str, &'static str) {
    match op {
        CriticalOp::ColdRestart => ("Device restart", "T0816"),
        CriticalOp::WarmRestart => ("Device warm restart", "T0816"),
        CriticalOp::ListenOnly => ("Force listen-only mode", "T0814"),
        CriticalOp::StopApplication => ("Stop application", "T0881"),
        CriticalOp::Initialize => ("Initialize data or application", "T0816"),
        CriticalOp::DisableUnsolicited => ("Disable unsolicited responses", "T0815"),
        CriticalOp::FileOperation => ("File operation on a controller", "T0867"),
        CriticalOp::PlcStop => ("PLC stop", "T0858"),
        CriticalOp::PlcStart => ("PLC start", "T0858"),
        CriticalOp::ProgramDownload => ("Program download", "T0843"),
        CriticalOp::ProgramUpload => ("Program upload", "T0845"),
        CriticalOp::BlockDelete => ("Block delete", "T0809"),
        CriticalOp::MemoryOperation => ("Controller memory operation", "T0889"),
        CriticalOp::ProtectionChange => ("Protection or password change", "T0892"),
        CriticalOp::Firmware => ("Firmware change", "T0857"),
    }
}

/// How much an operation of `class` can change the process: control and programming above
/// writes above reads above diagnostics.
pub const fn impact(class: FunctionClass) -> f64 {
    match class {
        FunctionClass::Control | FunctionClass::Program => 1.0,
        FunctionClass::Write => 0.9,
        FunctionClass::Other => 0.75,
        FunctionClass::Read => 0.6,
        FunctionClass::Diagnostic => 0.5,
    }
}

/// Score: weight x deviation x impact x asset criticality, clamped to 0-100.
pub fn score(weight: f64, deviation: f64, impact: f64, criticality: f64) -> u8 {
    let s = weight * deviation * impact * criticality;
    if s.is_finite() {
        s.round().clamp(0.0, 100.0) as u8
    } else {
        100
    }
}

/// One row of the catalog, for documentation and tests.
#[derive(Clone, Debug)]
pub struct CatalogRow {
    /// `<family>.<name>`.
    pub id: String,
    /// Numeric rule id.
    pub rule_id: u32,
    /// Revision.
    pub rev: u32,
    /// Description.
    pub info: RuleInfo,
}

/// Every rule, in rule-id order. Network-level kinds live in `net`; the rest in each
/// protocol.
pub fn catalog() -> Vec<CatalogRow> {
    let mut rows = Vec::new();
    for family in Family::ALL {
        let kinds: Vec<Kind> = if family == Family::Policy {
            Kind::POLICY.to_vec()
        } else {
            Kind::BASE.into_iter().chain(CRITICAL_OPS.into_iter().map(Kind::Critical)).collect()
        };
        for kind in kinds {
            // Host scans are network-wide; address, unit and function scans are per protocol.
            let net_only = matches!(
                kind,
                Kind::NewAsset
                    | Kind::PortProtocolMismatch
                    | Kind::RetransmissionConflict
                    | Kind::MacChanged
                    | Kind::NewService
                    | Kind::RemoteAccess
                    | Kind::FileTransfer
                    | Kind::PortScan
                    | Kind::HostSweep
                    | Kind::SynFlood
                    | Kind::ArpSpoofing
                    | Kind::TtlChanged
                    | Kind::TcpInjection
            );
            let both = kind == Kind::Scan;
            if !both && net_only != (family == Family::Net) {
                continue;
            }
            if kind == Kind::LinkAddressSweep && family != Family::Proto(Protocol::Dnp3) {
                continue;
            }
            let info = kind.info();
            rows.push(CatalogRow {
                id: format!("{}.{}", family.name(), info.name),
                rule_id: kind.rule_id(family),
                rev: info.rev,
                info,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_by_number_agrees_with_each_description() {
        let kinds = Kind::BASE.iter().chain(&Kind::POLICY).copied().chain(CRITICAL_OPS.map(Kind::Critical));
        let mut once = 0;
        for k in kinds {
            assert_eq!(k.once(), k.info().once, "{k:?}");
            once += usize::from(k.once());
        }
        // Both answers present: a table of all false (or all true) would not pass.
        assert!(once > 0 && once < Kind::BASE.len());
    }

    #[test]
    fn rule_ids_and_names_are_unique() {
        let rows = catalog();
        let mut ids: Vec<_> = rows.iter().map(|r| r.rule_id).collect();
        let mut names: Vec<_> = rows.iter().map(|r| r.id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        names.sort();
        names.dedup();
        assert_eq!(ids.len(), rows.len());
        assert_eq!(names.len(), rows.len());
        assert!(rows.iter().any(|r| r.id == "modbus.new_function_code" && r.rule_id == 9_100_103));
    }

    #[test]
    fn severity_follows_score_bands() {
        assert_eq!(Severity::from_score(95), Severity::Critical);
        assert_eq!(Severity::from_score(60), Severity::High);
        assert_eq!(Severity::from_score(35), Severity::Medium);
        assert_eq!(Severity::from_score(34), Severity::Low);
    }
}

/// One Markdown table row per rule, as `docs/DETECTIONS.md` lists them.
pub fn markdown_rows() -> Vec<String> {
    catalog()
        .into_iter()
        .map(|r| {
            format!(
                "| `{}` | {} | {} | {} | {} | {} |",
                r.id,
                r.rule_id,
                r.rev,
                r.info.title,
                r.info.weight,
                r.info.mitre.unwrap_or("-")
            )
        })
        .collect()
}

#[cfg(test)]
mod doc_tests {
    #[test]
    fn docs_list_every_rule() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DETECTIONS.md")).unwrap_or_default();
        let missing: Vec<String> = super::markdown_rows().into_iter().filter(|r| !doc.contains(r.as_str())).collect();
        assert!(missing.is_empty(), "docs/DETECTIONS.md lacks these rows:\n{}", missing.join("\n"));
    }
}
