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
use crate::output::alerts::AlertFormat;
use crate::output::chain::{SignWith, DEFAULT_CHECKPOINT_EVERY};
use crate::output::dest::Destination;
use crate::output::siem::Origin;
use crate::output::sinks::OutputConfig;
use crate::output::tls::TlsFiles;
use crate::pipeline::coordinator::{AlertTiming, CoordinatorConfig};

/// Where alerts (and, for Kafka, assets and traffic summaries) go: the same flags on
/// `detect`, `replay` and `run`, and the same keys in `run`'s file.
#[derive(Args, Debug, Default, Clone)]
pub struct OutputFlags {
    /// A destination (repeatable): file:PATH, syslog+udp|tcp|tls://HOST:PORT,
    /// cef+udp|tcp|tls://HOST:PORT, kafka://BROKER[,BROKER...]. Network destinations are fed
    /// through a durable queue under --state-dir.
    #[arg(long = "output", value_name = "URL")]
    pub output: Vec<String>,
    /// JSON lines of alerts (a file or stdout) in otsensor's keys (json) or the Elastic Common
    /// Schema (ecs).
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "ecs"])]
    pub alert_format: Option<String>,
    /// Directory of the output queue (default: the baseline's directory, else the current one).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Records a destination may fall behind before its oldest are dropped (and counted).
    /// Default 100000.
    #[arg(long, value_name = "N")]
    pub queue_size: Option<usize>,
    /// When queued records reach the disk: always, interval (each second; default) or never.
    #[arg(long, value_name = "POLICY", value_parser = ["always", "interval", "never"])]
    pub fsync: Option<String>,
    /// This sensor's id in every record sent (default: the host name); the Kafka key.
    #[arg(long, value_name = "ID")]
    pub sensor_id: Option<String>,
    /// This sensor's site in every record sent. Default "default".
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// CA certificates (PEM) that TLS receivers' certificates must chain to.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for TLS receivers that ask for one.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM); refused if others can read it.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// How long the end of a run waits for destinations to take what is queued (the rest
    /// stays queued for the next run). Default 10s.
    #[arg(long, value_name = "DURATION")]
    pub drain: Option<String>,
}

/// The outputs, resolved.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    /// The alerts file (`--alerts FILE` or `--output file:FILE`); stdout when `None`.
    pub file: Option<PathBuf>,
    /// Format of the lines written there.
    pub format: AlertFormat,
    /// The network destinations and their queue, if any.
    pub net: Option<OutputConfig>,
}

/// The host name, the default sensor id.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "otsensor".into())
}

impl OutputFlags {
    /// Each setting from the flags, else from `file`.
    fn over(self, file: OutputFlags) -> OutputFlags {
        OutputFlags {
            output: if self.output.is_empty() { file.output } else { self.output },
            alert_format: self.alert_format.or(file.alert_format),
            state_dir: self.state_dir.or(file.state_dir),
            queue_size: self.queue_size.or(file.queue_size),
            fsync: self.fsync.or(file.fsync),
            sensor_id: self.sensor_id.or(file.sensor_id),
            site: self.site.or(file.site),
            tls_ca: self.tls_ca.or(file.tls_ca),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            drain: self.drain.or(file.drain),
        }
    }

    /// Resolves the destinations; `alerts` is `--alerts FILE`, the short form of
    /// `--output file:FILE`; the queue defaults to `baseline`'s directory.
    pub fn resolve(self, alerts: Option<PathBuf>, baseline: Option<&Path>) -> Result<OutputOptions, String> {
        let mut file = alerts.map(Destination::File);
        let mut destinations = Vec::new();
        for url in &self.output {
            match url.parse::<Destination>()? {
                d @ Destination::File(_) if file.is_none() => file = Some(d),
                Destination::File(_) => return Err(format!("--output {url}: only one alerts file (or --alerts)")),
                d if destinations.contains(&d) => return Err(format!("--output {url}: given twice")),
                d => destinations.push(d),
            }
        }
        let file = match file {
            Some(Destination::File(p)) if p.as_os_str() != "-" => Some(p),
            _ => None,
        };
        let format = self.alert_format.as_deref().unwrap_or("json").parse()?;
        if destinations.is_empty() {
            return Ok(OutputOptions { file, format, net: None });
        }
        let state_dir = self
            .state_dir
            .or_else(|| baseline.and_then(Path::parent).filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let net = OutputConfig {
            destinations,
            state_dir,
            queue_size: self.queue_size.unwrap_or(100_000).max(1),
            fsync: self.fsync.as_deref().unwrap_or("interval").parse()?,
            origin: Origin {
                sensor_id: self.sensor_id.unwrap_or_else(hostname),
                site: self.site.unwrap_or_else(|| "default".into()),
            },
            tls: TlsFiles { ca: self.tls_ca, cert: self.tls_cert, key: self.tls_key },
            drain: Duration::from_secs_f64(duration("drain", self.drain, "10s")?),
        };
        Ok(OutputOptions { file, format, net: Some(net) })
    }
}

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
    /// Append alerts to FILE instead of writing them to stdout (short for --output file:FILE).
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
    #[command(flatten)]
    pub outputs: OutputFlags,
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
    /// Keep memory under BYTES (suffixes K, M, G: 512M, 1G): flows, reassembly buffers,
    /// clients and pairs followed, pairs learned, and the pipeline's rings are bounded to fit;
    /// what is evicted is counted.
    #[arg(long, value_name = "BYTES", value_parser = crate::memory::parse_size)]
    pub memory_cap: Option<u64>,
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
    /// `memory_cap = "512M"` (or a number of bytes).
    memory_cap: Option<toml::Value>,
    idle_timeout: Option<i64>,
    quiet: Option<bool>,
    output: Option<Vec<String>>,
    alert_format: Option<String>,
    state_dir: Option<PathBuf>,
    queue_size: Option<usize>,
    fsync: Option<String>,
    sensor_id: Option<String>,
    site: Option<String>,
    tls_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    drain: Option<String>,
}

impl FileConfig {
    /// The output keys, as flags would give them.
    fn outputs(&mut self) -> OutputFlags {
        OutputFlags {
            output: self.output.take().unwrap_or_default(),
            alert_format: self.alert_format.take(),
            state_dir: self.state_dir.take(),
            queue_size: self.queue_size.take(),
            fsync: self.fsync.take(),
            sensor_id: self.sensor_id.take(),
            site: self.site.take(),
            tls_ca: self.tls_ca.take(),
            tls_cert: self.tls_cert.take(),
            tls_key: self.tls_key.take(),
            drain: self.drain.take(),
        }
    }
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
    /// Network destinations, and the format of the alerts file.
    pub outputs: OutputOptions,
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
    /// The bounds of `--memory-cap` (`memory_cap`), if given: set for the process when `run`
    /// starts (the pipeline's rings, the detector and the learner read them).
    pub memory: Option<crate::memory::Limits>,
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
    pub fn resolve(mut self) -> Result<RunOptions, String> {
        let mut file = match &self.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let output_flags = std::mem::take(&mut self.outputs).over(file.outputs());
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
        let metrics_token = self.metrics_token.or(file.metrics_token).map(|p| read_token(&p)).transpose()?;
        let coordinator = CoordinatorConfig {
            baseline,
            baseline_keys,
            learn_for_secs: duration("learn-for", self.learn_for.or(file.learn_for), "14d")?,
            checkpoint: Duration::from_secs_f64(checkpoint.max(0.1)),
            timing,
            policy: self.policy.or(file.policy),
            reload_policy: Default::default(),
            outputs: None,
            alert_format: AlertFormat::Json,
        };
        let outputs = output_flags.resolve(self.alerts.or(file.alerts), Some(&coordinator.baseline))?;
        let coordinator = CoordinatorConfig { alert_format: outputs.format, ..coordinator };
        if alerts_key.is_some() && outputs.file.is_none() {
            return Err("alerts_key signs the alerts file: give --alerts FILE too".into());
        }
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
            ..defaults
        };
        let cap = match (self.memory_cap, &file.memory_cap) {
            (Some(c), _) => Some(c),
            (None, Some(toml::Value::Integer(n))) => Some(u64::try_from(*n).map_err(|_| "memory_cap: not a size")?),
            (None, Some(toml::Value::String(s))) => {
                Some(crate::memory::parse_size(s).map_err(|e| format!("memory_cap: {e}"))?)
            }
            (None, Some(_)) => return Err("memory_cap: give a size such as \"512M\"".into()),
            (None, None) => None,
        };
        let mut engine = engine;
        let memory = cap.map(crate::memory::Limits::of_cap).transpose()?;
        if let Some(limits) = &memory {
            limits.apply(&mut engine);
        }
        Ok(RunOptions {
            source,
            workers: self.workers.or(file.workers).unwrap_or_else(default_workers).clamp(1, 64),
            coordinator,
            alerts: outputs.file.clone(),
            outputs,
            metrics: self.metrics.or(file.metrics),
            metrics_token,
            alerts_key,
            user: self.user.or(file.user),
            engine,
            memory,
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
    fn memory_cap_comes_from_the_file_as_a_size_and_the_flag_wins() {
        let dir = std::env::temp_dir().join(format!("otsensor-config-mem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("mem.toml");
        std::fs::write(&p, "read = [\"x.pcap\"]\nbaseline = \"/tmp/b.json\"\nmemory_cap = \"64M\"\n").expect("write");
        let o = RunFlags { config: Some(p.clone()), ..RunFlags::default() }.resolve().expect("resolves");
        let want = crate::memory::Limits::of_cap(64 << 20).expect("64 MiB is enough");
        assert_eq!(o.memory, Some(want));
        assert_eq!(o.engine.max_flows, want.max_flows, "the cap lowers the flow table");
        assert_eq!(o.engine.reassembly_budget, want.reassembly_budget);
        let flag = RunFlags { config: Some(p.clone()), memory_cap: Some(1 << 30), ..RunFlags::default() };
        assert_eq!(flag.resolve().expect("resolves").memory.and_then(|m| m.cap), Some(1 << 30), "the flag wins");
        std::fs::write(&p, "read = [\"x.pcap\"]\nbaseline = \"/tmp/b.json\"\nmemory_cap = \"8M\"\n").expect("write");
        let e = RunFlags { config: Some(p.clone()), ..RunFlags::default() }.resolve().expect_err("too small");
        assert!(e.contains("below the 40 MiB"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn outputs_come_from_the_file_and_flags_win() {
        let dir = std::env::temp_dir().join(format!("otsensor-config-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("out.toml");
        std::fs::write(
            &p,
            "read = [\"x.pcap\"]\nbaseline = \"/var/lib/otsensor/b.json\"\nalerts = \"/tmp/a.jsonl\"\n\
             output = [\"cef+udp://10.1.1.5:514\", \"kafka://k1:9092,k2:9092\"]\nqueue_size = 7\n\
             fsync = \"always\"\nsite = \"north\"\nsensor_id = \"s1\"\nalert_format = \"ecs\"\n",
        )
        .expect("write");
        let o = RunFlags { config: Some(p.clone()), ..RunFlags::default() }.resolve().expect("resolves");
        assert_eq!(o.alerts, Some(PathBuf::from("/tmp/a.jsonl")));
        assert_eq!(o.coordinator.alert_format, AlertFormat::Ecs);
        let net = o.outputs.net.expect("network outputs");
        let names: Vec<String> = net.destinations.iter().map(Destination::name).collect();
        assert_eq!(names, ["cef+udp://10.1.1.5:514", "kafka://k1:9092,k2:9092"]);
        assert_eq!((net.queue_size, net.fsync), (7, crate::output::queue::Fsync::Always));
        assert_eq!(net.state_dir, PathBuf::from("/var/lib/otsensor"), "the baseline's directory");
        assert_eq!(net.origin, Origin { sensor_id: "s1".into(), site: "north".into() });
        let flags = RunFlags {
            config: Some(p.clone()),
            outputs: OutputFlags { output: vec!["syslog+tcp://h:601".into()], ..OutputFlags::default() },
            ..RunFlags::default()
        };
        let names: Vec<String> = flags
            .resolve()
            .expect("resolves")
            .outputs
            .net
            .expect("net")
            .destinations
            .iter()
            .map(Destination::name)
            .collect();
        assert_eq!(names, ["syslog+tcp://h:601"], "--output replaces the file's list");
        let twice = OutputFlags { output: vec!["file:/a".into(), "file:/b".into()], ..OutputFlags::default() };
        assert!(twice.resolve(None, None).is_err_and(|e| e.contains("only one alerts file")));
        let bad = OutputFlags { output: vec!["syslog://h:1".into()], ..OutputFlags::default() };
        assert!(bad.resolve(None, None).is_err_and(|e| e.contains("unknown scheme")));
        let _ = std::fs::remove_dir_all(dir);
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
