//! `otsensor`: the command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use otsensor::baseline_file::BaselineKeys;
use otsensor::cmd::detect::{detect_with, DetectArgs, ModelCmdError};
use otsensor::cmd::dissect::{dissect, DissectArgs, DissectError, Format};
use otsensor::cmd::learn::{learn, LearnArgs};
use otsensor::cmd::replay::{parse_duration, replay_with, ReplayArgs};
use otsensor::cmd::report::{report, ReportArgs};
use otsensor::config::{OutputFlags, RunFlags};
use otsensor::output::chain::SignWith;
use otsensor_dissectors::engine::EngineConfig;

/// Passive network sensor for industrial control systems (Modbus/TCP, DNP3, S7comm).
#[derive(Parser, Debug)]
#[command(name = "otsensor", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode captures and write one JSON object per PDU, in capture order.
    Dissect {
        /// pcap or pcapng files (`-` for stdin), processed in order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// `json`: one object per PDU; `none`: decode and count only (benchmarks).
        #[arg(long, default_value = "json", value_parser = ["json", "none"])]
        format: String,
        #[command(flatten)]
        common: Common,
    },
    /// Learn what normal looks like from captures and write a baseline. Continues from
    /// FILE when it exists (use --fresh to start over).
    Learn {
        /// pcap or pcapng files, processed in order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// The baseline file (JSON), replaced atomically.
        #[arg(long, value_name = "FILE")]
        baseline: PathBuf,
        /// Ignore an existing baseline file instead of continuing from it.
        #[arg(long)]
        fresh: bool,
        /// Do not learn the conversations of this client (repeatable): a known scanner, or
        /// the attacker of a labelled capture.
        #[arg(long, value_name = "IP")]
        exclude_client: Vec<std::net::IpAddr>,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        sign: SignBaseline,
        #[command(flatten)]
        common: Common,
    },
    /// Score captures against a baseline: alerts as JSON lines, a ranked summary on stderr.
    Detect {
        /// pcap or pcapng files, processed in order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// The baseline file written by `otsensor learn`.
        #[arg(long, value_name = "FILE")]
        baseline: PathBuf,
        /// Write alerts to FILE instead of stdout (short for --output file:FILE).
        #[arg(long, value_name = "FILE")]
        alerts: Option<PathBuf>,
        /// Apply this policy (zones, assets, suppressions, maintenance windows).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        signing: AlertSigning,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        outputs: OutputFlags,
        #[command(flatten)]
        common: Common,
    },
    /// Learn from the first part of a capture (capture time), then score the rest.
    Replay {
        /// pcap or pcapng file.
        capture: PathBuf,
        /// Capture time to learn from: 90s, 10m, 1h, 1h30m.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        learn_for: f64,
        /// Write alerts to FILE instead of stdout (short for --output file:FILE).
        #[arg(long, value_name = "FILE")]
        alerts: Option<PathBuf>,
        /// Also save the learned baseline to FILE.
        #[arg(long, value_name = "FILE")]
        save_baseline: Option<PathBuf>,
        /// Apply this policy (zones, assets, suppressions, maintenance windows).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        signing: AlertSigning,
        #[command(flatten)]
        sign: SignBaseline,
        #[command(flatten)]
        outputs: OutputFlags,
        #[command(flatten)]
        common: Common,
    },
    /// Write a self-contained HTML forensic report of captures: summary, asset inventory,
    /// network map, alert timeline, pairs with their functions and points, alerts with their
    /// evidence. With neither --baseline nor --learn-for, only critical operations alert.
    Report {
        /// pcap or pcapng files, processed in order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// Score against this baseline (written by `otsensor learn` or `run`).
        #[arg(long, value_name = "FILE", conflicts_with = "learn_for")]
        baseline: Option<PathBuf>,
        /// No baseline: learn this much capture time first, score the rest (as `replay`).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        learn_for: Option<f64>,
        /// The HTML file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Group the map by this policy's zones and apply it to the alerts.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        common: Common,
    },
    /// The sensor: capture live on a mirror port (or read captures through the same
    /// pipeline), learn in place, then detect; checkpoints, alerts, Prometheus metrics.
    Run {
        #[command(flatten)]
        flags: Box<RunFlags>,
    },
    /// The assets and conversations of captures: addresses, MACs and vendors, roles,
    /// identities, zones, and what to look at (assets in no zone, flows no conduit allows,
    /// engineering stations, assets the baseline does not know).
    Inventory {
        /// pcap or pcapng files, processed in order.
        #[arg(required = true)]
        captures: Vec<PathBuf>,
        /// Point out the assets this baseline does not know.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Zones, asset names and conduits.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        common: Common,
    },
    /// Read the fleet's records back from Kafka as JSON lines (alerts by default), until
    /// SIGINT/SIGTERM or --idle-exit.
    Consume {
        /// Brokers, host:port[,host:port...].
        #[arg(long, value_name = "BROKERS")]
        kafka: String,
        /// Topic to read (repeatable): otsensor.alerts, otsensor.assets, otsensor.stats.
        #[arg(long, value_name = "TOPIC", default_value = "otsensor.alerts")]
        topic: Vec<String>,
        /// Consumer group.
        #[arg(long, value_name = "GROUP", default_value = "otsensor-consume")]
        group: String,
        /// With no committed offset for the group, start at the oldest record (else the newest).
        #[arg(long)]
        from_beginning: bool,
        /// Stop after this long without a record: 10s, 1m.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        idle_exit: Option<f64>,
    },
    /// Check the tamper-evident chain of an alerts file (written with --alerts): reports
    /// the first record altered, removed, inserted or reordered, or a truncated tail.
    VerifyAlerts {
        /// The alerts file.
        file: PathBuf,
        /// Also verify its signed checkpoints with this Ed25519 public key, and that it ends
        /// with the closing checkpoint (a tail cut at a record boundary is found).
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
    },
    /// Generate an Ed25519 key pair: PREFIX.key (private, PKCS#8 PEM, mode 0600) and
    /// PREFIX.pub (public, SubjectPublicKeyInfo PEM); never overwrites.
    Keygen {
        /// Path prefix of the two files.
        prefix: PathBuf,
    },
    /// Policy files (zones, conduits, assets, guardrails, rules, windows).
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Baseline maintenance.
    Baseline {
        #[command(subcommand)]
        action: BaselineAction,
    },
}

#[derive(Subcommand, Debug)]
enum RulesAction {
    /// Validate a policy file: exits non-zero with the file, line, column and reason of the
    /// first error.
    Check {
        /// The policy file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BaselineAction {
    /// Re-seal a baseline after an intentional review edit: recompute its checksum.
    Seal {
        /// The baseline file.
        file: PathBuf,
        #[command(flatten)]
        sign: SignBaseline,
    },
    /// Say in words what changed from baseline A to baseline B.
    Diff {
        /// The older baseline.
        a: PathBuf,
        /// The newer baseline.
        b: PathBuf,
        #[command(flatten)]
        verify: VerifyBaseline,
    },
    /// Make FILE the current baseline of a baseline directory, as a new numbered version
    /// with who, when and why.
    Promote {
        /// The baseline to promote.
        file: PathBuf,
        #[command(flatten)]
        store: otsensor::cmd::baseline::StoreFlags,
        #[command(flatten)]
        why: otsensor::cmd::baseline::Provenance,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        sign: SignBaseline,
    },
    /// Make version N (default: the one before the current) the current baseline again.
    Rollback {
        /// The version to go back to.
        n: Option<u32>,
        #[command(flatten)]
        store: otsensor::cmd::baseline::StoreFlags,
        #[command(flatten)]
        why: otsensor::cmd::baseline::Provenance,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        sign: SignBaseline,
    },
    /// The versions of a baseline directory, with who, when and why.
    Log {
        #[command(flatten)]
        store: otsensor::cmd::baseline::StoreFlags,
    },
    /// Learn the subjects of reviewed alerts (new hosts, services, ARP bindings, TTLs) into a
    /// baseline, so that they never fire again; the baseline is re-sealed in place.
    Accept {
        /// The baseline file.
        baseline: PathBuf,
        /// The reviewed alerts (JSON lines as detect, replay and run write them).
        #[arg(long)]
        alerts: PathBuf,
        /// Only the alerts with this id (e.g. net.new_service); repeatable. All by default.
        #[arg(long = "id")]
        ids: Vec<String>,
        #[command(flatten)]
        verify: VerifyBaseline,
        #[command(flatten)]
        sign: SignBaseline,
    },
}

/// `--alerts-key FILE`, `--checkpoint-every N`.
#[derive(Args, Debug)]
struct AlertSigning {
    /// Sign the alerts file with this Ed25519 private key (PKCS#8 PEM, `otsensor keygen`): a
    /// signed checkpoint record every --checkpoint-every records and at close.
    #[arg(long, value_name = "FILE", requires = "alerts")]
    alerts_key: Option<PathBuf>,
    /// Records between two signed checkpoints of the alerts file.
    #[arg(long, value_name = "N", default_value_t = otsensor::output::chain::DEFAULT_CHECKPOINT_EVERY)]
    checkpoint_every: u64,
}

impl AlertSigning {
    fn load(&self) -> Result<Option<SignWith>, String> {
        self.alerts_key.as_deref().map(|p| SignWith::load(p, self.checkpoint_every)).transpose()
    }
}

/// `--baseline-key PUB`.
#[derive(Args, Debug)]
struct VerifyBaseline {
    /// Refuse a baseline not signed by this Ed25519 public key (SubjectPublicKeyInfo PEM).
    #[arg(long, value_name = "PUB")]
    baseline_key: Option<PathBuf>,
}

/// `--sign-key FILE`.
#[derive(Args, Debug)]
struct SignBaseline {
    /// Sign the baseline written with this Ed25519 private key (writes FILE.sig beside it).
    #[arg(long, value_name = "FILE")]
    sign_key: Option<PathBuf>,
}

/// The baseline keys of a command, or the error that ends it.
fn baseline_keys(verify: Option<&VerifyBaseline>, sign: Option<&SignBaseline>) -> Result<BaselineKeys, String> {
    BaselineKeys::load(verify.and_then(|v| v.baseline_key.as_deref()), sign.and_then(|s| s.sign_key.as_deref()))
}

/// Prints `e` and fails.
fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("otsensor: error: {e}");
    ExitCode::FAILURE
}

/// A bad flag or setting: exit code 2, as for `run`.
fn usage(e: &str) -> ExitCode {
    eprintln!("otsensor: error: {e}");
    ExitCode::from(2)
}

fn model_cmd(r: Result<(), ModelCmdError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("otsensor: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Args, Debug)]
struct Common {
    /// TCP ports watched for Modbus/TCP.
    #[arg(long, value_delimiter = ',', default_value = "502", value_name = "PORTS")]
    modbus_ports: Vec<u16>,
    /// TCP and UDP ports watched for DNP3.
    #[arg(long, value_delimiter = ',', default_value = "20000", value_name = "PORTS")]
    dnp3_ports: Vec<u16>,
    /// TCP ports watched for S7comm and S7comm-plus.
    #[arg(long, value_delimiter = ',', default_value = "102", value_name = "PORTS")]
    s7_ports: Vec<u16>,
    /// Do not look for DNP3 and S7 by content on other ports.
    #[arg(long)]
    ports_only: bool,
    /// Most flows tracked at once.
    #[arg(long, default_value_t = 65_536)]
    max_flows: usize,
    /// Keep memory under BYTES (suffixes K, M, G: 512M, 1G): flows, reassembly buffers,
    /// clients and pairs followed, pairs learned, and the pipeline's rings are bounded to fit;
    /// what is evicted is counted.
    #[arg(long, value_name = "BYTES", value_parser = otsensor::memory::parse_size)]
    memory_cap: Option<u64>,
    /// Seconds (packet time) after which a silent flow is forgotten.
    #[arg(long, default_value_t = 600)]
    idle_timeout: i64,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

impl Common {
    fn engine(&self) -> EngineConfig {
        let mut e = EngineConfig {
            modbus_ports: self.modbus_ports.clone(),
            dnp3_tcp_ports: self.dnp3_ports.clone(),
            dnp3_udp_ports: self.dnp3_ports.clone(),
            s7_ports: self.s7_ports.clone(),
            detect_on_any_port: !self.ports_only,
            max_flows: self.max_flows.max(1),
            idle_timeout_secs: self.idle_timeout,
            ..EngineConfig::default()
        };
        otsensor::memory::limits().apply(&mut e);
        e
    }

    /// Sets the process's bounds from `--memory-cap`; an error when the cap is too small.
    fn set_memory_cap(&self) -> Result<(), String> {
        if let Some(cap) = self.memory_cap {
            otsensor::memory::set_limits(otsensor::memory::Limits::of_cap(cap)?);
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = match &cli.command {
        Command::Dissect { common, .. }
        | Command::Learn { common, .. }
        | Command::Detect { common, .. }
        | Command::Replay { common, .. }
        | Command::Report { common, .. }
        | Command::Inventory { common, .. } => Some(common),
        _ => None,
    };
    if let Some(Err(e)) = common.map(Common::set_memory_cap) {
        return usage(&e);
    }
    match cli.command {
        Command::Dissect { captures, output, format, common } => {
            let args = DissectArgs {
                captures,
                output,
                engine: common.engine(),
                progress: !common.no_progress,
                summary: !common.quiet,
                format: if format == "none" { Format::None } else { Format::Json },
            };
            match dissect(&args) {
                Ok(()) => ExitCode::SUCCESS,
                // A reader that went away (`| head`) is not an error.
                Err(DissectError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("otsensor: error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Learn { captures, baseline, fresh, exclude_client, verify, sign, common } => {
            let baseline_keys = match baseline_keys(Some(&verify), Some(&sign)) {
                Ok(k) => k,
                Err(e) => return fail(e),
            };
            model_cmd(learn(&LearnArgs {
                captures,
                baseline,
                fresh,
                exclude_clients: exclude_client,
                baseline_keys,
                engine: common.engine(),
                progress: !common.no_progress,
                summary: !common.quiet,
            }))
        }
        Command::Detect { captures, baseline, alerts, policy, signing, verify, outputs, common } => {
            let (baseline_keys, alerts_key) = match (baseline_keys(Some(&verify), None), signing.load()) {
                (Ok(k), Ok(a)) => (k, a),
                (Err(e), _) | (_, Err(e)) => return fail(e),
            };
            let o = match outputs.resolve(alerts, Some(&baseline)) {
                Ok(o) => o,
                Err(e) => return usage(&e),
            };
            model_cmd(detect_with(
                &DetectArgs {
                    captures,
                    baseline,
                    alerts: o.file.clone(),
                    alerts_key,
                    baseline_keys,
                    engine: common.engine(),
                    policy,
                    progress: !common.no_progress,
                    summary: !common.quiet,
                },
                &o,
            ))
        }
        Command::Replay { capture, learn_for, alerts, save_baseline, policy, signing, sign, outputs, common } => {
            let (baseline_keys, alerts_key) = match (baseline_keys(None, Some(&sign)), signing.load()) {
                (Ok(k), Ok(a)) => (k, a),
                (Err(e), _) | (_, Err(e)) => return fail(e),
            };
            let o = match outputs.resolve(alerts, None) {
                Ok(o) => o,
                Err(e) => return usage(&e),
            };
            model_cmd(replay_with(
                &ReplayArgs {
                    capture,
                    learn_for_secs: learn_for,
                    alerts: o.file.clone(),
                    alerts_key,
                    baseline_keys,
                    save_baseline,
                    engine: common.engine(),
                    policy,
                    progress: !common.no_progress,
                    summary: !common.quiet,
                },
                &o,
            ))
        }
        Command::Report { captures, baseline, learn_for, output, policy, verify, common } => {
            let baseline_keys = match baseline_keys(Some(&verify), None) {
                Ok(k) => k,
                Err(e) => return fail(e),
            };
            model_cmd(report(&ReportArgs {
                captures,
                baseline_keys,
                baseline,
                learn_for_secs: learn_for,
                output,
                policy,
                engine: common.engine(),
                progress: !common.no_progress,
                summary: !common.quiet,
            }))
        }
        Command::Run { flags } => match flags.resolve() {
            Err(e) => {
                eprintln!("otsensor: error: {e}");
                ExitCode::from(2)
            }
            Ok(opts) => match otsensor::cmd::run::run(&opts) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("otsensor: error: {e}");
                    ExitCode::FAILURE
                }
            },
        },
        Command::Inventory { captures, baseline, policy, json, verify, common } => {
            let baseline_keys = match baseline_keys(Some(&verify), None) {
                Ok(k) => k,
                Err(e) => return fail(e),
            };
            model_cmd(otsensor::cmd::inventory::inventory(&otsensor::cmd::inventory::InventoryArgs {
                captures,
                baseline_keys,
                baseline,
                policy,
                json,
                engine: common.engine(),
                progress: !common.no_progress,
            }))
        }
        #[cfg(not(feature = "kafka"))]
        Command::Consume { .. } => {
            eprintln!("otsensor: error: consume: this otsensor was built without the kafka feature");
            ExitCode::from(2)
        }
        #[cfg(feature = "kafka")]
        Command::Consume { kafka, topic, group, from_beginning, idle_exit } => {
            let args = otsensor::cmd::consume::ConsumeArgs {
                brokers: kafka,
                topics: topic,
                group,
                from_beginning,
                idle_exit: idle_exit.map(std::time::Duration::from_secs_f64),
            };
            match otsensor::cmd::consume::consume(&args, &mut std::io::stdout().lock()) {
                Ok(n) => {
                    eprintln!("otsensor: {n} records");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("otsensor: error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::VerifyAlerts { file, key } => verify_alerts(&file, key.as_deref()),
        Command::Keygen { prefix } => match otsensor::keys::generate(&prefix) {
            Ok((k, p)) => {
                eprintln!(
                    "otsensor: wrote {} (private: keep it on the sensor) and {} (public)",
                    k.display(),
                    p.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::Rules { action: RulesAction::Check { file } } => match otsensor::cmd::rules::load_policy(&file) {
            Ok(p) => {
                eprintln!("otsensor: {}: valid: {}", file.display(), otsensor::cmd::rules::describe(&p));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("otsensor: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Baseline { action } => baseline_cmd(action),
    }
}

fn verify_alerts(file: &std::path::Path, key: Option<&std::path::Path>) -> ExitCode {
    let key = match key.map(otsensor::keys::load_verifying_key).transpose() {
        Ok(k) => k,
        Err(e) => return fail(e),
    };
    let result = std::fs::read(file)
        .map_err(|e| e.to_string())
        .and_then(|b| otsensor::output::chain::verify_signed(&b, key.as_ref()));
    match result {
        Ok(v) if key.is_some() => {
            eprintln!(
                "otsensor: {}: {} records, the chain is intact and its {} checkpoints verify; it ends with the closing \
                 checkpoint",
                file.display(),
                v.records,
                v.checkpoints
            );
            ExitCode::SUCCESS
        }
        Ok(v) => {
            eprintln!("otsensor: {}: {} records, the chain is intact", file.display(), v.records);
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("{}: {e}", file.display())),
    }
}

fn baseline_cmd(action: BaselineAction) -> ExitCode {
    use otsensor::cmd::baseline as cmd;
    let result = match action {
        BaselineAction::Seal { file, sign } => baseline_keys(None, Some(&sign))
            .and_then(|k| otsensor::baseline_file::seal(&file, &k).map_err(|e| format!("baseline {e}")))
            .map(|()| format!("{} re-sealed", file.display())),
        BaselineAction::Diff { a, b, verify } => {
            baseline_keys(Some(&verify), None).and_then(|k| cmd::diff(&a, &b, &k)).map(|text| {
                print!("{text}");
                String::new()
            })
        }
        BaselineAction::Promote { file, store, why, verify, sign } => {
            baseline_keys(Some(&verify), Some(&sign)).and_then(|k| cmd::promote(&file, &store, &why, &k))
        }
        BaselineAction::Rollback { n, store, why, verify, sign } => {
            baseline_keys(Some(&verify), Some(&sign)).and_then(|k| cmd::rollback(n, &store, &why, &k))
        }
        BaselineAction::Accept { baseline, alerts, ids, verify, sign } => baseline_keys(Some(&verify), Some(&sign))
            .and_then(|baseline_keys| {
                let args = otsensor::cmd::accept::AcceptArgs { baseline, alerts, ids, baseline_keys };
                otsensor::cmd::accept::run(&args).map_err(|e| e.to_string()).map(|learned| {
                    for l in &learned {
                        eprintln!("otsensor: learned: {l}");
                    }
                    format!("{} facts learned into {}, re-sealed", learned.len(), args.baseline.display())
                })
            }),
        BaselineAction::Log { store } => cmd::log(&store).map(|text| {
            print!("{text}");
            String::new()
        }),
    };
    match result {
        Ok(msg) => {
            if !msg.is_empty() {
                eprintln!("otsensor: {msg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
