//! Loading a policy file: TOML to [`Policy`], every name checked against the dissectors'
//! tables, every error with its file, line and column.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use otsensor_dissectors::event::{FuncName, FunctionClass, Protocol, Space};
use otsensor_dissectors::{dnp3, modbus, s7};
use serde::Deserialize;
use toml::value::Datetime;
use toml::Spanned;

use crate::net::Network;
use crate::policy::{
    Action, Asset, Conduit, Guardrail, HostSel, MaintenanceWindow, PointRef, Policy, Rule, Service, Suppression,
    ValueType, WordOrder, Zone,
};

/// A policy file that cannot be used: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The file, as named to the loader.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.reason)
    }
}

impl std::error::Error for PolicyError {}

/// What the loader checks names against, beyond the dissectors' tables.
pub struct Known<'a> {
    /// Whether a numeric rule id exists (the models' catalogue; this crate does not depend
    /// on the models).
    pub rule_id: &'a dyn Fn(u32) -> bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    zone: Vec<RawZone>,
    #[serde(default)]
    conduit: Vec<RawConduit>,
    #[serde(default)]
    asset: Vec<RawAsset>,
    #[serde(default)]
    guardrail: Vec<RawGuardrail>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    suppression: Vec<RawSuppression>,
    #[serde(default)]
    maintenance: Vec<RawWindow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Spanned<String>,
    networks: Vec<Spanned<String>>,
    security_level: Spanned<u8>,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConduit {
    from: Spanned<String>,
    to: Spanned<String>,
    protocols: Vec<Spanned<String>>,
    classes: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    name: Spanned<String>,
    address: Spanned<String>,
    criticality: Spanned<u8>,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoint {
    protocol: Spanned<String>,
    unit: Option<u16>,
    /// Modbus: coils, discrete_inputs, holding_registers, input_registers.
    space: Option<Spanned<String>>,
    /// DNP3 object group and (optional) variation.
    group: Option<u8>,
    variation: Option<u8>,
    /// S7 area name (DATA_BLOCKS, FLAGS, INPUTS, OUTPUTS, ...) and DB number.
    area: Option<Spanned<String>>,
    db: Option<u16>,
    /// Modbus address, DNP3 index, S7 byte offset.
    address: u32,
    /// S7 bit within the byte.
    bit: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrail {
    name: String,
    device: Spanned<String>,
    point: Spanned<RawPoint>,
    #[serde(rename = "type")]
    value_type: Option<Spanned<String>>,
    word_order: Option<Spanned<String>>,
    range: Option<Spanned<(f64, f64)>>,
    max_rate: Option<Spanned<f64>>,
    values: Option<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    action: Spanned<String>,
    severity: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    function: Option<Spanned<toml::Value>>,
    class: Option<Spanned<String>>,
    unit: Option<u16>,
    address: Option<Spanned<(u32, u32)>>,
    value: Option<Spanned<(i64, i64)>>,
    src: Option<Spanned<String>>,
    dst: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppression {
    rule_id: Spanned<u32>,
    pair: Option<Spanned<(String, String)>>,
    point: Option<Spanned<RawPoint>>,
    until: Option<Spanned<Datetime>>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    name: String,
    from: Spanned<Datetime>,
    to: Spanned<Datetime>,
    #[serde(default)]
    assets: Vec<Spanned<String>>,
    #[serde(default)]
    zones: Vec<Spanned<String>>,
    approved_by: String,
}

/// Reads a policy from `text`; `file` names it in errors.
pub fn load(file: &str, text: &str, known: &Known<'_>) -> Result<Policy, PolicyError> {
    let mut l = Loader { file, text };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        l.error(span, e.message().to_string())
    })?;
    l.policy(raw, known)
}

struct Loader<'a> {
    file: &'a str,
    text: &'a str,
}

type R<T> = Result<T, PolicyError>;

impl Loader<'_> {
    fn error(&mut self, span: Range<usize>, reason: String) -> PolicyError {
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let column =
            before.rfind('\n').map_or(before.chars().count(), |i| before.get(i + 1..).unwrap_or("").chars().count())
                + 1;
        PolicyError { file: self.file.to_string(), line, column, reason }
    }

    fn policy(&mut self, raw: RawPolicy, known: &Known<'_>) -> R<Policy> {
        let zones = self.zones(raw.zone)?;
        let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
        let conduits = raw.conduit.into_iter().map(|c| self.conduit(c, &names)).collect::<R<Vec<_>>>()?;
        let assets = self.assets(raw.asset)?;
        let guardrails = raw.guardrail.into_iter().map(|g| self.guardrail(g)).collect::<R<Vec<_>>>()?;
        let rules = raw.rule.into_iter().map(|r| self.rule(r, &names)).collect::<R<Vec<_>>>()?;
        let suppressions = raw.suppression.into_iter().map(|s| self.suppression(s, known)).collect::<R<Vec<_>>>()?;
        let maintenance =
            raw.maintenance.into_iter().map(|w| self.window(w, &names, &assets)).collect::<R<Vec<_>>>()?;
        Ok(Policy { zones, conduits, assets, guardrails, rules, suppressions, maintenance })
    }

    fn zones(&mut self, raw: Vec<RawZone>) -> R<Vec<Zone>> {
        let mut zones: Vec<Zone> = Vec::new();
        for z in raw {
            if zones.iter().any(|o| o.name == *z.name.get_ref()) {
                return Err(self.error(z.name.span(), format!("zone {:?} is defined twice", z.name.get_ref())));
            }
            let level = *z.security_level.get_ref();
            if !(1..=4).contains(&level) {
                return Err(self.error(z.security_level.span(), format!("security level {level} is not 1-4")));
            }
            let mut networks = Vec::new();
            for n in &z.networks {
                let net: Network =
                    n.get_ref().parse().map_err(|e: crate::net::NetworkError| self.error(n.span(), e.0))?;
                if let Some(other) = zones.iter().find(|o| o.networks.iter().any(|m| m.overlaps(&net))) {
                    let msg = format!("{net} overlaps zone {:?}: an address belongs to one zone", other.name);
                    return Err(self.error(n.span(), msg));
                }
                networks.push(net);
            }
            zones.push(Zone { name: z.name.into_inner(), networks, security_level: level, description: z.description });
        }
        Ok(zones)
    }

    fn zone_index(&mut self, s: &Spanned<String>, names: &[&str]) -> R<usize> {
        names.iter().position(|n| *n == s.get_ref()).ok_or_else(|| {
            self.error(s.span(), format!("unknown zone {:?} (zones: {})", s.get_ref(), names.join(", ")))
        })
    }

    fn conduit(&mut self, c: RawConduit, names: &[&str]) -> R<Conduit> {
        let from = self.zone_index(&c.from, names)?;
        let to = self.zone_index(&c.to, names)?;
        let services = c.protocols.iter().map(|p| self.service(p)).collect::<R<Vec<_>>>()?;
        let classes = match c.classes {
            None => None,
            Some(cs) => Some(cs.iter().map(|s| self.class(s)).collect::<R<Vec<_>>>()?),
        };
        Ok(Conduit { from, to, services, classes })
    }

    fn service(&mut self, s: &Spanned<String>) -> R<Service> {
        let v = s.get_ref().as_str();
        if let Some(p) = Protocol::from_name(v) {
            return Ok(Service::Ics(p));
        }
        let port = |p: &str| p.parse::<u16>().ok().filter(|&n| n > 0);
        match v.split_once('/') {
            Some(("tcp", p)) if port(p).is_some() => Ok(Service::Tcp(port(p).unwrap_or(0))),
            Some(("udp", p)) if port(p).is_some() => Ok(Service::Udp(port(p).unwrap_or(0))),
            _ => Err(self.error(
                s.span(),
                format!("unknown protocol {v:?} (modbus, dnp3, s7comm, s7comm_plus, tcp/PORT or udp/PORT)"),
            )),
        }
    }

    fn class(&mut self, s: &Spanned<String>) -> R<FunctionClass> {
        const ALL: [FunctionClass; 6] = [
            FunctionClass::Read,
            FunctionClass::Write,
            FunctionClass::Control,
            FunctionClass::Program,
            FunctionClass::Diagnostic,
            FunctionClass::Other,
        ];
        ALL.into_iter().find(|c| c.name() == s.get_ref()).ok_or_else(|| {
            self.error(
                s.span(),
                format!("unknown operation class {:?} (read, write, control, program, diagnostic, other)", s.get_ref()),
            )
        })
    }

    fn ip(&mut self, s: &Spanned<String>) -> R<IpAddr> {
        s.get_ref().parse().map_err(|_| self.error(s.span(), format!("{:?} is not an IP address", s.get_ref())))
    }

    fn assets(&mut self, raw: Vec<RawAsset>) -> R<Vec<Asset>> {
        let mut assets: Vec<Asset> = Vec::new();
        let mut seen = HashSet::new();
        for a in raw {
            let address = self.ip(&a.address)?;
            if !seen.insert(address) {
                return Err(self.error(a.address.span(), format!("{address} is already an asset")));
            }
            if assets.iter().any(|o| o.name == *a.name.get_ref()) {
                return Err(self.error(a.name.span(), format!("asset {:?} is defined twice", a.name.get_ref())));
            }
            let c = *a.criticality.get_ref();
            if !(1..=5).contains(&c) {
                return Err(self.error(a.criticality.span(), format!("criticality {c} is not 1-5")));
            }
            assets.push(Asset { name: a.name.into_inner(), address, criticality: c, role: a.role, tags: a.tags });
        }
        Ok(assets)
    }

    fn point(&mut self, p: &Spanned<RawPoint>) -> R<PointRef> {
        let raw = p.get_ref();
        let protocol = self.protocol(&raw.protocol)?;
        let (space, index) = match protocol {
            Protocol::Modbus => {
                let Some(s) = &raw.space else {
                    return Err(self.error(
                        p.span(),
                        "a Modbus point needs space (coils, discrete_inputs, holding_registers, input_registers)"
                            .into(),
                    ));
                };
                let space = match s.get_ref().as_str() {
                    "coils" => Space::ModbusCoils,
                    "discrete_inputs" => Space::ModbusDiscreteInputs,
                    "holding_registers" => Space::ModbusHoldingRegisters,
                    "input_registers" => Space::ModbusInputRegisters,
                    other => return Err(self.error(s.span(), format!("unknown Modbus space {other:?}"))),
                };
                (space, raw.address)
            }
            Protocol::Dnp3 => {
                let Some(group) = raw.group else {
                    return Err(self.error(p.span(), "a DNP3 point needs group (and optionally variation)".into()));
                };
                (Space::Dnp3 { group, variation: raw.variation.unwrap_or(0) }, raw.address)
            }
            Protocol::S7comm => {
                let Some(a) = &raw.area else {
                    return Err(self
                        .error(p.span(), "an S7 point needs area (DATA_BLOCKS, FLAGS, INPUTS, OUTPUTS, ...)".into()));
                };
                let Some(area) =
                    (0..=255u8).find(|&c| s7::names::area_name(c) == a.get_ref() && a.get_ref() != "UNKNOWN")
                else {
                    return Err(self.error(a.span(), format!("unknown S7 area {:?}", a.get_ref())));
                };
                let bit = raw.bit.unwrap_or(0);
                if bit > 7 {
                    return Err(self.error(p.span(), format!("bit {bit} is not 0-7")));
                }
                (Space::S7 { area, db: raw.db.unwrap_or(0) }, raw.address.saturating_mul(8) + u32::from(bit))
            }
            Protocol::S7commPlus => {
                return Err(
                    self.error(raw.protocol.span(), "s7comm_plus points are not decoded: no point can be named".into())
                )
            }
        };
        Ok(PointRef { protocol, unit: raw.unit, space, index })
    }

    fn protocol(&mut self, s: &Spanned<String>) -> R<Protocol> {
        Protocol::from_name(s.get_ref()).ok_or_else(|| {
            self.error(s.span(), format!("unknown protocol {:?} (modbus, dnp3, s7comm, s7comm_plus)", s.get_ref()))
        })
    }

    fn guardrail(&mut self, g: RawGuardrail) -> R<Guardrail> {
        let device = self.ip(&g.device)?;
        let point = self.point(&g.point)?;
        let value_type = match g.value_type.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
            None | Some(("u16", _)) => ValueType::U16,
            Some(("i16", _)) => ValueType::I16,
            Some(("u32", _)) => ValueType::U32,
            Some(("i32", _)) => ValueType::I32,
            Some(("f32", _)) => ValueType::F32,
            Some((other, span)) => {
                return Err(self.error(span, format!("unknown type {other:?} (u16, i16, u32, i32, f32)")))
            }
        };
        let word_order = match g.word_order.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
            None | Some(("big", _)) => WordOrder::Big,
            Some(("little", _)) => WordOrder::Little,
            Some((other, span)) => return Err(self.error(span, format!("unknown word order {other:?} (big, little)"))),
        };
        let range = match g.range {
            Some(r) if r.get_ref().0 > r.get_ref().1 => {
                let (a, b) = *r.get_ref();
                return Err(self.error(r.span(), format!("inverted range [{a}, {b}]")));
            }
            r => r.map(Spanned::into_inner),
        };
        if let Some(m) =
            g.max_rate.as_ref().filter(|m| m.get_ref().partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater))
        {
            return Err(self.error(m.span(), format!("max_rate {} is not above 0", m.get_ref())));
        }
        if range.is_none() && g.max_rate.is_none() && g.values.is_none() {
            return Err(
                self.error(g.device.span(), format!("guardrail {:?} sets none of range, max_rate, values", g.name))
            );
        }
        Ok(Guardrail {
            name: g.name,
            device,
            point,
            value_type,
            word_order,
            range,
            max_rate: g.max_rate.map(Spanned::into_inner),
            values: g.values,
        })
    }

    fn function(&mut self, protocol: Option<Protocol>, f: &Spanned<toml::Value>) -> R<u16> {
        if let Some(n) = f.get_ref().as_integer() {
            return u16::try_from(n).map_err(|_| self.error(f.span(), format!("function {n} is out of range")));
        }
        let Some(name) = f.get_ref().as_str() else {
            return Err(self.error(f.span(), "function is a name or a number".into()));
        };
        let Some(p) = protocol else {
            return Err(self.error(f.span(), format!("function {name:?} needs a protocol")));
        };
        function_code(p, name).ok_or_else(|| self.error(f.span(), format!("unknown {} function {name:?}", p.name())))
    }

    fn rule(&mut self, r: RawRule, names: &[&str]) -> R<Rule> {
        let action = match (r.action.get_ref().as_str(), &r.severity) {
            ("allow", _) => Action::Allow,
            ("alert", Some(s)) => Action::Alert(self.severity(s)?),
            ("alert", None) => return Err(self.error(r.action.span(), "an alert rule needs a severity".into())),
            (other, _) => return Err(self.error(r.action.span(), format!("unknown action {other:?} (alert, allow)"))),
        };
        let protocol = match &r.protocol {
            Some(p) => Some(self.protocol(p)?),
            None => None,
        };
        let function = match &r.function {
            Some(f) => Some(self.function(protocol, f)?),
            None => None,
        };
        let class = match &r.class {
            Some(c) => Some(self.class(c)?),
            None => None,
        };
        let address = self.ordered(r.address)?;
        let value = self.ordered(r.value)?;
        let src = self.hosts(r.src.as_ref(), names)?;
        let dst = self.hosts(r.dst.as_ref(), names)?;
        Ok(Rule { name: r.name, action, protocol, function, class, unit: r.unit, address, value, src, dst })
    }

    fn ordered<T: PartialOrd + Copy + fmt::Display>(&mut self, r: Option<Spanned<(T, T)>>) -> R<Option<(T, T)>> {
        match r {
            Some(s) if s.get_ref().0 > s.get_ref().1 => {
                let (a, b) = *s.get_ref();
                Err(self.error(s.span(), format!("inverted range [{a}, {b}]")))
            }
            r => Ok(r.map(Spanned::into_inner)),
        }
    }

    fn severity(&mut self, s: &Spanned<String>) -> R<&'static str> {
        ["low", "medium", "high", "critical"].into_iter().find(|n| n == s.get_ref()).ok_or_else(|| {
            self.error(s.span(), format!("unknown severity {:?} (low, medium, high, critical)", s.get_ref()))
        })
    }

    fn hosts(&mut self, s: Option<&Spanned<String>>, names: &[&str]) -> R<HostSel> {
        let Some(s) = s else { return Ok(HostSel::Any) };
        let v = s.get_ref().as_str();
        if v == "any" {
            return Ok(HostSel::Any);
        }
        if let Some(zone) = v.strip_prefix("zone:") {
            let z = Spanned::new(s.span(), zone.to_string());
            return Ok(HostSel::Zone(self.zone_index(&z, names)?));
        }
        v.parse::<Network>()
            .map(HostSel::Network)
            .map_err(|e| self.error(s.span(), format!("{} (use any, zone:NAME, an address or a CIDR block)", e.0)))
    }

    fn suppression(&mut self, s: RawSuppression, known: &Known<'_>) -> R<Suppression> {
        let id = *s.rule_id.get_ref();
        if !(known.rule_id)(id) {
            return Err(self.error(s.rule_id.span(), format!("unknown rule id {id}")));
        }
        let pair = match &s.pair {
            Some(p) => {
                let (a, b) = p.get_ref();
                let c = self.ip(&Spanned::new(p.span(), a.clone()))?;
                let d = self.ip(&Spanned::new(p.span(), b.clone()))?;
                Some((c, d))
            }
            None => None,
        };
        let point = match &s.point {
            Some(p) => Some(self.point(p)?),
            None => None,
        };
        let until = match &s.until {
            Some(u) => Some(self.epoch(u)?),
            None => None,
        };
        Ok(Suppression { rule_id: id, pair, point, until, reason: s.reason })
    }

    fn window(&mut self, w: RawWindow, names: &[&str], assets: &[Asset]) -> R<MaintenanceWindow> {
        let from = self.epoch(&w.from)?;
        let to = self.epoch(&w.to)?;
        if to <= from {
            return Err(self.error(w.to.span(), format!("maintenance window {:?} ends before it starts", w.name)));
        }
        let mut hosts = Vec::new();
        for a in &w.assets {
            match assets.iter().find(|x| x.name == *a.get_ref()) {
                Some(x) => hosts.push(x.address),
                None => hosts.push(self.ip(a).map_err(|mut e| {
                    e.reason = format!("{:?} is neither an asset name nor an IP address", a.get_ref());
                    e
                })?),
            }
        }
        let zones = w.zones.iter().map(|z| self.zone_index(z, names)).collect::<R<Vec<_>>>()?;
        if hosts.is_empty() && zones.is_empty() {
            return Err(
                self.error(w.from.span(), format!("maintenance window {:?} names no asset and no zone", w.name))
            );
        }
        Ok(MaintenanceWindow { name: w.name, from, to, assets: hosts, zones, approved_by: w.approved_by })
    }

    /// A TOML date-time with an offset, as seconds since the epoch.
    fn epoch(&mut self, d: &Spanned<Datetime>) -> R<i64> {
        let v = d.get_ref();
        let (Some(date), Some(time), Some(offset)) = (v.date, v.time, v.offset) else {
            return Err(self.error(d.span(), format!("{v} needs a date, a time and a time zone (Z or +hh:mm)")));
        };
        let days = days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day));
        let secs = days * 86_400 + i64::from(time.hour) * 3600 + i64::from(time.minute) * 60 + i64::from(time.second);
        let off = match offset {
            toml::value::Offset::Z => 0,
            toml::value::Offset::Custom { minutes } => i64::from(minutes) * 60,
        };
        Ok(secs - off)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The code of a function named as the dissectors name it (`WRITE_SINGLE_REGISTER`,
/// `DIRECT_OPERATE`, `PLC_STOP`).
pub fn function_code(p: Protocol, name: &str) -> Option<u16> {
    let named = |c: u8| match p {
        Protocol::Modbus => matches!(modbus::FunctionCode(c).name(), FuncName::Known(n) if n == name),
        Protocol::Dnp3 => dnp3::function_name(c) == Some(name),
        Protocol::S7comm => s7::names::function_name(c) == Some(name),
        Protocol::S7commPlus => false,
    };
    (0..=255u8).find(|&c| named(c)).map(u16::from)
}
