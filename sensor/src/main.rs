//! `otsensor`: the command-line interface.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use otsensor::cmd::dissect::{dissect, DissectArgs, DissectError, Format};
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
        EngineConfig {
            modbus_ports: self.modbus_ports.clone(),
            dnp3_tcp_ports: self.dnp3_ports.clone(),
            dnp3_udp_ports: self.dnp3_ports.clone(),
            s7_ports: self.s7_ports.clone(),
            detect_on_any_port: !self.ports_only,
            max_flows: self.max_flows.max(1),
            idle_timeout_secs: self.idle_timeout,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    }
}
