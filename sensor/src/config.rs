//! `otsensor run`'s settings: command-line flags over a TOML file over defaults.
//!
//! Every key of the file is also a flag (`learn_for` is `--learn-for`); a flag given on the
//! command line wins over the file. `sensor/examples/otsensor.toml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use otsensor_dissectors::engine::EngineConfig;
use serde::Deserialize;

use crate::baseline_file::BaselineKeys;
use crate::capture::live::{Backend, LiveConfig};
use crate::cmd::replay::parse_duration;
use crate::file_perms::{refuse_if_exposed, Exposure};
use crate::output::chain::{SignWith, DEFAULT_CHECKPOINT_EVERY};
use crate::pipeline::coordinator::{AlertTiming, CoordinatorConfig};

/// The flags of `otsensor run`.
#[derive(Args, Debug, Default)]
pub struct RunFlags {
    /// TOML file with any of these settings (flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Capture live on this interface (a mirror port).
    #[arg(long, value_name = "IF", conflicts_with = "read")]
    pub interface: Option<String>,
    /// Run the pipeline over capture files instead, in order.
    #[arg(long, value_name = "CAPTURE", num_args = 1..)]
    pub read: Option<Vec<PathBuf>>,
    /// With --read: replay at the capture's own pace instead of as fast as possible.
    #[arg(long)]
    pub pace: bool,
    /// Capture backend: afpacket (Linux, zero-copy ring) or libpcap (build with
    /// --features live-pcap).
    #[arg(long, value_name = "BACKEND", value_parser = ["afpacket", "libpcap"])]
    pub capture: Option<String>,
    /// BPF filter (libpcap backend only).
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Bytes captured per frame.
    #[arg(long, value_name = "BYTES")]
    pub snaplen: Option<u32>,
    /// Bytes per ring block (a power of two, a multiple of the page size).
    #[arg(long, value_name = "BYTES")]
    pub ring_block_size: Option<usize>,
    /// Blocks in the ring.
    #[arg(long, value_name = "N")]
    pub ring_blocks: Option<usize>,
    /// Do not put the interface in promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// Dissecting worker threads (default: cores - 1, at least 1).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// The baseline: continued from when it exists, checkpointed to.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Packet time to learn before detecting (in all, earlier runs included): 0s, 90s,
    /// 10m, 14d. Default 14d.
    #[arg(long, value_name = "DURATION")]
    pub learn_for: Option<String>,
    /// Wall-clock time between checkpoints of the baseline. Default 5m.
    #[arg(long, value_name = "DURATION")]
    pub checkpoint: Option<String>,
    /// Append alerts to FILE instead of writing them to stdout.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// When alerts are written: open (as soon as they open; default live) or close (when
    /// their fold closes, as `detect` does; default with --read).
    #[arg(long, value_name = "WHEN", value_parser = ["open", "close"])]
    pub alert_on: Option<String>,
    /// Apply this policy to the alerts (zones, assets, suppressions, maintenance windows);
    /// SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Serve Prometheus metrics (/metrics) and /healthz on this address.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on /metrics, the token read from FILE (mode
    /// 0600 or stricter).
    #[arg(long, value_name = "FILE")]
    pub metrics_token: Option<PathBuf>,
    /// Sign the alerts file with this Ed25519 private key (PKCS#8 PEM, `otsensor keygen`): a
    /// signed checkpoint record every --checkpoint-every records and at close.
    #[arg(long, value_name = "FILE")]
    pub alerts_key: Option<PathBuf>,
    /// Records between two signed checkpoints of the alerts file. Default 100.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Refuse a baseline not signed by this Ed25519 public key (SubjectPublicKeyInfo PEM).
    #[arg(long, value_name = "PUB")]
    pub baseline_key: Option<PathBuf>,
    /// Sign the baseline at every checkpoint with this Ed25519 private key (writes FILE.sig).
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// After opening the capture, drop privileges to this user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// TCP ports watched for Modbus/TCP.
    #[arg(long, value_delimiter = ',', value_name = "PORTS")]
    pub modbus_ports: Option<Vec<u16>>,
    /// TCP and UDP ports watched for DNP3.
    #[arg(long, value_delimiter = ',', value_name = "PORTS")]
    pub dnp3_ports: Option<Vec<u16>>,
    /// TCP ports watched for S7comm and S7comm-plus.
    #[arg(long, value_delimiter = ',', value_name = "PORTS")]
    pub s7_ports: Option<Vec<u16>>,
    /// Do not look for DNP3 and S7 by content on other ports.
    #[arg(long)]
    pub ports_only: bool,
    /// Most flows tracked at once (shared out among the workers).
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,
    /// Seconds (packet time) after which a silent flow is forgotten.
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<i64>,
    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// The TOML file: the same settings, `snake_case`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    interface: Option<String>,
    read: Option<Vec<PathBuf>>,
    pace: Option<bool>,
    capture: Option<String>,
    bpf: Option<String>,
    snaplen: Option<u32>,
    ring_block_size: Option<usize>,
    ring_blocks: Option<usize>,
    promiscuous: Option<bool>,
    workers: Option<usize>,
    baseline: Option<PathBuf>,
    learn_for: Option<String>,
    checkpoint: Option<String>,
    alerts: Option<PathBuf>,
    alert_on: Option<String>,
    policy: Option<PathBuf>,
    metrics: Option<SocketAddr>,
    metrics_token: Option<PathBuf>,
    alerts_key: Option<PathBuf>,
    checkpoint_every: Option<u64>,
    baseline_key: Option<PathBuf>,
    sign_key: Option<PathBuf>,
    user: Option<String>,
    modbus_ports: Option<Vec<u16>>,
    dnp3_ports: Option<Vec<u16>>,
    s7_ports: Option<Vec<u16>>,
    ports_only: Option<bool>,
    max_flows: Option<usize>,
    idle_timeout: Option<i64>,
    quiet: Option<bool>,
}

/// Where packets come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A live interface.
    Live {
        /// Capture settings.
        config: LiveConfig,
        /// AF_PACKET or libpcap.
        backend: Backend,
    },
    /// Capture files, in order.
    Files {
        /// The files.
        paths: Vec<PathBuf>,
        /// Whether to follow capture time.
        pace: bool,
    },
}

/// Everything `otsensor run` does, resolved.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Packets in.
    pub source: Source,
    /// Dissecting workers.
    pub workers: usize,
    /// Learning, checkpoints, alert timing.
    pub coordinator: CoordinatorConfig,
    /// Alerts file (appended to); stdout when `None`.
    pub alerts: Option<PathBuf>,
    /// Metrics address.
    pub metrics: Option<SocketAddr>,
    /// The bearer token /metrics requires, if any.
    pub metrics_token: Option<String>,
    /// Signs the alerts file's checkpoints.
    pub alerts_key: Option<crate::output::chain::SignWith>,
    /// User to become after opening the capture.
    pub user: Option<String>,
    /// Ports and bounds of the engine (max_flows for the whole sensor).
    pub engine: EngineConfig,
    /// Whether to print the summaries on stderr.
    pub summary: bool,
}

/// Default number of workers: one core is the capture thread's.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1)
}

fn read_file(path: &Path) -> Result<FileConfig, String> {
    refuse_if_exposed(path, "config file", Exposure::Config)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The bearer token in `path` (its first line), refused when others can read the file.
fn read_token(path: &Path) -> Result<String, String> {
    refuse_if_exposed(path, "metrics token file", Exposure::Secret)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.len() < 16 {
        return Err(format!("{}: the token is shorter than 16 characters", path.display()));
    }
    Ok(token)
}

fn duration(name: &str, s: Option<String>, default: &str) -> Result<f64, String> {
    parse_duration(s.as_deref().unwrap_or(default)).map_err(|e| format!("--{name}: {e}"))
}

impl RunFlags {
    /// Merges the flags over the file named by `--config`, over the defaults.
    pub fn resolve(self) -> Result<RunOptions, String> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let source = self.source(&file)?;
        let baseline = self.baseline.or(file.baseline).ok_or("--baseline FILE is required")?;
        let live = matches!(source, Source::Live { .. });
        let timing = match self.alert_on.or(file.alert_on).as_deref() {
            Some("open") => AlertTiming::OnOpen,
            Some("close") => AlertTiming::OnClose,
            Some(other) => return Err(format!("alert_on: {other:?} is neither open nor close")),
            None if live => AlertTiming::OnOpen,
            None => AlertTiming::OnClose,
        };
        let checkpoint = duration("checkpoint", self.checkpoint.or(file.checkpoint), "5m")?;
        let baseline_keys = BaselineKeys::load(
            self.baseline_key.or(file.baseline_key).as_deref(),
            self.sign_key.or(file.sign_key).as_deref(),
        )?;
        let every = self.checkpoint_every.or(file.checkpoint_every).unwrap_or(DEFAULT_CHECKPOINT_EVERY);
        let alerts_key = self.alerts_key.or(file.alerts_key).map(|p| SignWith::load(&p, every)).transpose()?;
        let alerts = self.alerts.or(file.alerts);
        if alerts_key.is_some() && alerts.is_none() {
            return Err("alerts_key signs the alerts file: give --alerts FILE too".into());
        }
        let metrics_token = self.metrics_token.or(file.metrics_token).map(|p| read_token(&p)).transpose()?;
        let coordinator = CoordinatorConfig {
            baseline,
            baseline_keys,
            learn_for_secs: duration("learn-for", self.learn_for.or(file.learn_for), "14d")?,
            checkpoint: Duration::from_secs_f64(checkpoint.max(0.1)),
            timing,
            policy: self.policy.or(file.policy),
            reload_policy: Default::default(),
        };
        let defaults = EngineConfig::default();
        let dnp3 = self.dnp3_ports.or(file.dnp3_ports).unwrap_or(defaults.dnp3_tcp_ports.clone());
        let engine = EngineConfig {
            modbus_ports: self.modbus_ports.or(file.modbus_ports).unwrap_or(defaults.modbus_ports),
            dnp3_tcp_ports: dnp3.clone(),
            dnp3_udp_ports: dnp3,
            s7_ports: self.s7_ports.or(file.s7_ports).unwrap_or(defaults.s7_ports),
            detect_on_any_port: !(self.ports_only || file.ports_only.unwrap_or(false)),
            max_flows: self.max_flows.or(file.max_flows).unwrap_or(defaults.max_flows).max(1),
            idle_timeout_secs: self.idle_timeout.or(file.idle_timeout).unwrap_or(defaults.idle_timeout_secs),
        };
        Ok(RunOptions {
            source,
            workers: self.workers.or(file.workers).unwrap_or_else(default_workers).clamp(1, 64),
            coordinator,
            alerts,
            metrics: self.metrics.or(file.metrics),
            metrics_token,
            alerts_key,
            user: self.user.or(file.user),
            engine,
            summary: !(self.quiet || file.quiet.unwrap_or(false)),
        })
    }

    fn source(&self, file: &FileConfig) -> Result<Source, String> {
        let interface =
            self.interface.clone().or_else(|| if self.read.is_some() { None } else { file.interface.clone() });
        let read = self.read.clone().or_else(|| if self.interface.is_some() { None } else { file.read.clone() });
        match (interface, read) {
            (Some(_), Some(_)) => Err("give --interface or --read, not both".into()),
            (None, None) => Err("nothing to capture: give --interface IF or --read CAPTURE...".into()),
            (None, Some(paths)) => Ok(Source::Files { paths, pace: self.pace || file.pace.unwrap_or(false) }),
            (Some(interface), None) => {
                let d = LiveConfig::default();
                let backend = match self.capture.clone().or(file.capture.clone()).as_deref() {
                    None | Some("afpacket") => Backend::AfPacket,
                    Some("libpcap") => Backend::Libpcap,
                    Some(other) => return Err(format!("capture: {other:?} is neither afpacket nor libpcap")),
                };
                let config = LiveConfig {
                    interface,
                    snaplen: self.snaplen.or(file.snaplen).unwrap_or(d.snaplen),
                    block_size: self.ring_block_size.or(file.ring_block_size).unwrap_or(d.block_size),
                    block_count: self.ring_blocks.or(file.ring_blocks).unwrap_or(d.block_count),
                    block_timeout_ms: d.block_timeout_ms,
                    promiscuous: !self.no_promisc && file.promiscuous.unwrap_or(d.promiscuous),
                    bpf: self.bpf.clone().or(file.bpf.clone()),
                };
                Ok(Source::Live { config, backend })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_flags_override_it() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/otsensor.toml");
        let flags = RunFlags {
            config: Some(PathBuf::from(example)),
            workers: Some(3),
            learn_for: Some("1h".into()),
            ..RunFlags::default()
        };
        let o = flags.resolve().expect("the example resolves");
        assert_eq!(o.workers, 3, "the flag wins");
        assert_eq!(o.coordinator.learn_for_secs, 3600.0, "the flag wins");
        assert_eq!(o.coordinator.checkpoint, Duration::from_secs(300), "from the file");
        assert_eq!(o.coordinator.timing, AlertTiming::OnOpen, "live default");
        let Source::Live { config, backend } = o.source else { panic!("the example captures live") };
        assert_eq!(config.interface, "eth1");
        assert_eq!(backend, Backend::AfPacket);
        assert!(config.promiscuous);
        assert_eq!(o.metrics, Some("127.0.0.1:9184".parse().expect("address")));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_file_named() {
        let dir = std::env::temp_dir().join(format!("otsensor-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("bad.toml");
        std::fs::write(&p, "interface = \"eth0\"\nbaseline = \"b.json\"\nlearn_four = \"1d\"\n").expect("write");
        let e = RunFlags { config: Some(p.clone()), ..RunFlags::default() }.resolve().expect_err("unknown key");
        assert!(e.contains("bad.toml") && e.contains("learn_four"), "{e}");
        std::fs::write(&p, "interface = \"eth0\"\nbaseline = \"b.json\"\nlearn_for = \"soon\"\n").expect("write");
        let e = RunFlags { config: Some(p), ..RunFlags::default() }.resolve().expect_err("bad duration");
        assert!(e.contains("learn-for"), "{e}");
        let e =
            RunFlags { read: Some(vec!["x.pcap".into()]), ..RunFlags::default() }.resolve().expect_err("no baseline");
        assert!(e.contains("--baseline"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
