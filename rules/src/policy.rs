//! The policy, validated: what the loader ([`crate::load`]) hands to the scoring.

use std::collections::BTreeMap;
use std::net::IpAddr;

use otsensor_dissectors::event::{FunctionClass, Protocol, Space};

use crate::net::Network;

/// A whole policy file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// Zones, in file order.
    pub zones: Vec<Zone>,
    /// Conduits between zones.
    pub conduits: Vec<Conduit>,
    /// The asset inventory.
    pub assets: Vec<Asset>,
    /// Safe values of points.
    pub guardrails: Vec<Guardrail>,
    /// Allow and deny rules, first match wins.
    pub rules: Vec<Rule>,
    /// Alerts not to raise.
    pub suppressions: Vec<Suppression>,
    /// Windows in which alerts are lowered and marked.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// An IEC 62443 zone: assets that share security requirements.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    /// Unique name.
    pub name: String,
    /// Its address blocks (no two zones overlap).
    pub networks: Vec<Network>,
    /// Target security level, 1-4.
    pub security_level: u8,
    /// Free text.
    pub description: String,
}

/// What may cross a conduit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// An industrial protocol the dissectors decode.
    Ics(Protocol),
    /// Any TCP traffic to this server port.
    Tcp(u16),
    /// Any UDP traffic to this server port.
    Udp(u16),
}

/// A conduit: flows allowed from one zone to another (clients in `from`, servers in `to`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conduit {
    /// Index of the client zone in [`Policy::zones`].
    pub from: usize,
    /// Index of the server zone.
    pub to: usize,
    /// Services allowed.
    pub services: Vec<Service>,
    /// Operation classes allowed; `None`: all.
    pub classes: Option<Vec<FunctionClass>>,
}

/// An asset of the inventory.
#[derive(Clone, Debug, PartialEq)]
pub struct Asset {
    /// Unique name.
    pub name: String,
    /// Its address.
    pub address: IpAddr,
    /// 1 (lab bench) to 5 (safety system).
    pub criticality: u8,
    /// Free text: plc, rtu, hmi, engineering_station, historian, ...
    pub role: String,
    /// Site, line, cell, vendor, ...
    pub tags: BTreeMap<String, String>,
}

/// How a point's value is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// One 16-bit register (or a bit, a DNP3 or S7 integer), unsigned.
    U16,
    /// One register, signed.
    I16,
    /// Two registers as a 32-bit unsigned integer.
    U32,
    /// Two registers as a 32-bit signed integer.
    I32,
    /// Two registers as an IEEE 754 single.
    F32,
}

impl ValueType {
    /// Registers the value spans.
    pub fn registers(self) -> u32 {
        match self {
            ValueType::U16 | ValueType::I16 => 1,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 2,
        }
    }
}

/// Which register of a 32-bit value comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordOrder {
    /// High word first (Modicon convention).
    Big,
    /// Low word first.
    Little,
}

/// One point of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointRef {
    /// Protocol.
    pub protocol: Protocol,
    /// Unit (Modbus unit id, DNP3 outstation address); `None`: any.
    pub unit: Option<u16>,
    /// Address space; for DNP3 a variation of 0 means any.
    pub space: Space,
    /// Index (Modbus address, DNP3 index, S7 bit offset).
    pub index: u32,
}

/// Safe values of a point; a written value outside them is critical whatever the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct Guardrail {
    /// Name for alerts.
    pub name: String,
    /// The device.
    pub device: IpAddr,
    /// The point.
    pub point: PointRef,
    /// How the value is stored.
    pub value_type: ValueType,
    /// Word order of 32-bit values.
    pub word_order: WordOrder,
    /// Inclusive safe range.
    pub range: Option<(f64, f64)>,
    /// Largest change per second between two writes.
    pub max_rate: Option<f64>,
    /// Allowed values.
    pub values: Option<Vec<f64>>,
}

/// Which hosts a rule names.
#[derive(Clone, Debug, PartialEq)]
pub enum HostSel {
    /// Any host.
    Any,
    /// Hosts of a zone (index in [`Policy::zones`]).
    Zone(usize),
    /// Hosts in a block.
    Network(Network),
}

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Alert with this severity name (`low`, `medium`, `high`, `critical`).
    Alert(&'static str),
    /// Allow: suppress what the baseline would say about it.
    Allow,
}

/// A rule in the spirit of Suricata's Modbus keywords.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Name for alerts.
    pub name: String,
    /// What it does.
    pub action: Action,
    /// Protocol; `None`: any.
    pub protocol: Option<Protocol>,
    /// Function code; `None`: any.
    pub function: Option<u16>,
    /// Operation class; `None`: any.
    pub class: Option<FunctionClass>,
    /// Unit; `None`: any.
    pub unit: Option<u16>,
    /// Inclusive address range; `None`: any.
    pub address: Option<(u32, u32)>,
    /// Inclusive value range of written values; `None`: any.
    pub value: Option<(i64, i64)>,
    /// Client side.
    pub src: HostSel,
    /// Server side.
    pub dst: HostSel,
}

/// An alert not to raise, until a date.
#[derive(Clone, Debug, PartialEq)]
pub struct Suppression {
    /// Numeric rule id of the alert.
    pub rule_id: u32,
    /// Client and server; `None`: every pair.
    pub pair: Option<(IpAddr, IpAddr)>,
    /// The point; `None`: every point.
    pub point: Option<PointRef>,
    /// Seconds since the epoch (UTC) after which it no longer applies; `None`: never ends.
    pub until: Option<i64>,
    /// Why, for the log.
    pub reason: String,
}

/// A maintenance window: alerts about its assets are marked and lowered, never dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct MaintenanceWindow {
    /// Name written into the alerts.
    pub name: String,
    /// Start, seconds since the epoch (UTC).
    pub from: i64,
    /// End.
    pub to: i64,
    /// Assets concerned.
    pub assets: Vec<IpAddr>,
    /// Zones concerned (indices in [`Policy::zones`]).
    pub zones: Vec<usize>,
    /// Who approved it.
    pub approved_by: String,
}

impl Policy {
    /// The zone an address belongs to.
    pub fn zone_of(&self, ip: IpAddr) -> Option<(usize, &Zone)> {
        self.zones.iter().enumerate().find(|(_, z)| z.networks.iter().any(|n| n.contains(ip)))
    }

    /// The asset at an address.
    pub fn asset(&self, ip: IpAddr) -> Option<&Asset> {
        self.assets.iter().find(|a| a.address == ip)
    }
}
