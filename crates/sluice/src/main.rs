//! The `sluice` binary: command line, configuration and wiring. Library crates do the work.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_core::{Limits, definition_file, validate};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A self-hosted data pipeline service that speaks the AWS Data Pipeline API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS Data Pipeline API over HTTPS, with an embedded store in the data directory.
    Serve {
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// PEM certificate chain; without it a self-signed certificate for localhost is created.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP instead of HTTPS; only on a loopback address.
        #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
        insecure_http: bool,
        /// Live pipelines allowed per account.
        #[arg(long, default_value_t = 1000)]
        max_pipelines: i64,
        /// Objects allowed per pipeline definition.
        #[arg(long, default_value_t = 100)]
        max_objects: usize,
    },
    /// Validate a definition file offline, as PutPipelineDefinition would.
    Validate {
        file: PathBuf,
        /// A parameter value, `myKey=value` (repeat the key for a list).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            data_dir,
            listen,
            tls_cert,
            tls_key,
            insecure_http,
            max_pipelines,
            max_objects,
        } => {
            let limits = Limits {
                max_objects,
                ..Limits::default()
            };
            let config = sluice_server::ServeConfig {
                data_dir,
                listen,
                tls_cert,
                tls_key,
                insecure_http,
                limits,
                max_pipelines,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(sluice_server::serve(config)))
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Validate { file, params } => validate_file(&file, &params),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sluice: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn validate_file(file: &PathBuf, params: &[String]) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", file.display()))?;
    let mut definition = definition_file::parse(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
    if !params.is_empty() {
        definition.values.clear();
        for param in params {
            let (id, value) = param
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--param takes KEY=VALUE, got '{param}'"))?;
            definition.values.push(sluice_core::ParameterValue {
                id: id.to_string(),
                value: value.to_string(),
            });
        }
    }
    let report = validate(&definition, &Limits::default());
    let output = serde_json::json!({
        "errored": report.errored(),
        "validationErrors": report.errors.iter().map(|entry| serde_json::json!({"id": entry.id, "errors": entry.messages})).collect::<Vec<_>>(),
        "validationWarnings": report.warnings.iter().map(|entry| serde_json::json!({"id": entry.id, "warnings": entry.messages})).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(if report.errored() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
