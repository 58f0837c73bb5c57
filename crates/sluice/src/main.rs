//! The `sluice` binary: command line, configuration and wiring. Library crates do the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod doctor;
mod iam;
mod kek;
mod logmask;
mod run;
mod scan;
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
#[allow(clippy::large_enum_variant, reason = "parsed once at start")]
enum Command {
    /// Serve the AWS Data Pipeline API over HTTPS, with an embedded store in the data directory
    /// (or PostgreSQL with --store).
    Serve {
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        /// `postgres://user@host:port/database?sslmode=verify-full` to keep state in PostgreSQL
        /// (several servers may share it; give them the same keys). The password belongs in
        /// PGPASSWORD or ~/.pgpass, not in the URL.
        #[arg(long, env = "SLUICE_STORE", hide_env_values = true)]
        store: Option<String>,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// PEM certificate chain; without it a self-signed certificate for localhost is created.
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Use only FIPS 140-3 validated cryptography (AWS-LC's FIPS module), for TLS and at
        /// rest; needs a build with `--features fips`. Refuses to start otherwise.
        #[arg(long)]
        fips: bool,
        /// Serve plain HTTP instead of HTTPS; only on a loopback address.
        #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
        insecure_http: bool,
        /// Live pipelines allowed per account.
        #[arg(long, default_value_t = 1000)]
        max_pipelines: i64,
        /// Objects allowed per pipeline definition.
        #[arg(long, default_value_t = 100)]
        max_objects: usize,
        /// Folder of key-encryption keys (kek-v<N>.key) [default: DATA_DIR/keys, created on first start].
        #[arg(long)]
        key_dir: Option<PathBuf>,
        /// A shell command that prints the key-encryption keys (`<version> <base64>` per line, or
        /// one bare base64 key), e.g. from a KMS or Vault; instead of the key folder.
        #[arg(long, env = "SLUICE_KEK_COMMAND", conflicts_with = "key_dir")]
        kek_command: Option<String>,
        /// Region named in audit records and file names when a request names none.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[command(flatten)]
        audit_location: AuditLocation,
        /// Ed25519 key that signs audit digests; keep it apart from the data directory's disk
        /// [default: DATA_DIR/keys/audit-signing.pk8, created on first start].
        #[arg(long)]
        audit_signing_key: Option<PathBuf>,
        /// Seconds between deliveries of audit log files.
        #[arg(long, default_value_t = 60)]
        audit_delivery_seconds: u64,
        /// Seconds between signed digests (CloudTrail: hourly).
        #[arg(long, default_value_t = 3600)]
        audit_digest_seconds: u64,
        /// Days to keep audit records and log files; forever when not given.
        #[arg(long)]
        audit_retention_days: Option<u32>,
        #[command(flatten)]
        scheduling: SchedulingOptions,
        #[command(flatten)]
        runner: InProcessRunner,
    },
    /// Diagnostics.
    #[command(subcommand)]
    Doctor(DoctorCommand),
    /// Keys at rest: rotate the key-encryption key, re-seal everything under the newest one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail: verify it, or look events up.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Users, access keys and policies on a running server (Sluice's identity API).
    #[command(subcommand)]
    Iam(iam::IamCommand),
    /// Run a definition file end to end on this machine: an embedded server, the pipeline
    /// activated, activities run by an in-process task runner, live progress and a summary.
    /// Exits 1 if an instance failed.
    Run {
        file: PathBuf,
        /// A parameter value, `myKey=value` (repeat the key for a list).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Keep the server's state here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Where each attempt's stdout and stderr go (`<pipeline>/<component>/<instance>/<attempt>/`).
        #[arg(long, default_value = "./sluice-logs")]
        log_dir: PathBuf,
        /// Tasks run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// S3-compatible endpoint for s3:// data nodes (credentials from the environment).
        #[arg(long)]
        s3_endpoint: Option<String>,
        /// PEM certificates to trust for object stores beside the system's roots.
        #[arg(long, env = "AWS_CA_BUNDLE")]
        s3_ca_bundle: Option<PathBuf>,
        /// Folder that file:// preconditions may check.
        #[arg(long)]
        local_data_root: Option<PathBuf>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Objects allowed in the definition.
        #[arg(long, default_value_t = 100)]
        max_objects: usize,
        /// Apache Spark's folder, for EmrActivity, HadoopActivity and HiveActivity
        /// (`pip install pyspark` gives one: the pyspark package's folder).
        #[arg(long, env = "SPARK_HOME")]
        spark_home: Option<PathBuf>,
    },
    /// A task runner: poll a Sluice server for tasks of worker groups and run them.
    /// Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
    Runner {
        /// https://host:port of the server.
        #[arg(long)]
        endpoint: String,
        #[arg(long = "worker-group", required = true)]
        worker_groups: Vec<String>,
        /// PEM file of certificates to trust instead of the system's roots.
        #[arg(long, env = "AWS_CA_BUNDLE")]
        ca_bundle: Option<PathBuf>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Attempts' working folders.
        #[arg(long, default_value = "./sluice-work")]
        work_dir: PathBuf,
        #[arg(long, default_value = "./sluice-logs")]
        log_dir: PathBuf,
        /// S3-compatible endpoint for s3:// data nodes and logs.
        #[arg(long)]
        s3_endpoint: Option<String>,
        /// The name reported to the service [default: $HOSTNAME].
        #[arg(long, env = "HOSTNAME", default_value = "localhost")]
        hostname: String,
        /// Seconds between progress reports while a task runs (each keeps the lease and asks
        /// whether the task was cancelled).
        #[arg(long, default_value_t = 30)]
        progress_seconds: u64,
        /// Apache Spark's folder, for EmrActivity, HadoopActivity and HiveActivity
        /// (`pip install pyspark` gives one: the pyspark package's folder).
        #[arg(long, env = "SPARK_HOME")]
        spark_home: Option<PathBuf>,
    },
    /// Show the stdout and stderr of a pipeline's attempts, from a runner's log folder or
    /// from the pipeline's pipelineLogUri.
    Logs {
        pipeline_id: String,
        /// Only this instance (e.g. @Greet_2026-11-28T10:00:00).
        instance: Option<String>,
        #[arg(long, default_value = "./sluice-logs")]
        log_dir: PathBuf,
        /// Read from this pipelineLogUri (file:// or s3://) instead of --log-dir.
        #[arg(long)]
        log_uri: Option<String>,
        #[arg(long)]
        s3_endpoint: Option<String>,
        /// PEM certificates to trust for object stores beside the system's roots.
        #[arg(long, env = "AWS_CA_BUNDLE")]
        s3_ca_bundle: Option<PathBuf>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
    /// Find sensitive data (credentials, financial and personal data) in files, folders or
    /// s3:// prefixes, as Amazon Macie does; exit 1 when any is found.
    Scan {
        /// Files, folders (recursively) or s3://bucket/prefix locations.
        #[arg(required = true)]
        targets: Vec<String>,
        /// text, csv, tsv, json or jsonl [default: by extension; .gz is decompressed].
        #[arg(long)]
        format: Option<String>,
        /// Print Macie findings as JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// A JSON list of custom identifiers: {name, regex, keywords, ignoreWords, maximumMatchDistance}.
        #[arg(long)]
        custom_identifiers: Option<PathBuf>,
        /// Values never reported: one per line, or `regex:<pattern>`.
        #[arg(long)]
        allow_list: Option<PathBuf>,
        #[arg(long)]
        s3_endpoint: Option<String>,
        #[arg(long, env = "AWS_CA_BUNDLE")]
        s3_ca_bundle: Option<PathBuf>,
        #[arg(long, default_value = "us-east-1", env = "AWS_DEFAULT_REGION")]
        region: String,
    },
    /// Scan a pipeline's S3DataNode locations for sensitive data (a classification job run by
    /// the server): now, or on a schedule with --schedule; findings are stored with the
    /// pipeline's. Scheduled runs after the first scan only new or changed objects.
    Classify {
        #[command(flatten)]
        admin: AdminEndpoint,
        pipeline: String,
        /// daily, weekly:MONDAY … weekly:SUNDAY, or monthly:1 … monthly:31 (runs at 00:00 UTC).
        #[arg(long)]
        schedule: Option<String>,
        /// With --schedule: scan everything there is now too, not only from the first run on.
        #[arg(long, requires = "schedule")]
        initial_run: bool,
        #[arg(long)]
        name: Option<String>,
    },
    /// Classification jobs: list them, show one, cancel, pause or resume.
    Classification {
        #[command(subcommand)]
        command: ClassificationCommand,
    },
    /// Sensitive-data findings that runners reported about pipelines' outputs, newest first.
    Findings {
        #[command(flatten)]
        admin: AdminEndpoint,
        /// Only this pipeline's.
        #[arg(long)]
        pipeline: Option<String>,
        /// Low, Medium or High: that severity and above.
        #[arg(long)]
        severity: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        max: usize,
        /// The whole findings (Macie's shape) as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Validate a definition file offline, as PutPipelineDefinition would.
    Validate {
        file: PathBuf,
        /// A parameter value, `myKey=value` (repeat the key for a list).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
}

/// The task runner `sluice serve` can run in its own process. Off unless a worker group is
/// named or --run-resources is given: tasks run as the server's own user, which can read the
/// data directory, so this is for definitions as trusted as the server's operator (run `sluice
/// runner` under another user for the rest).
#[derive(clap::Args)]
struct InProcessRunner {
    /// Run a task runner in this process for this worker group (repeat for several).
    #[arg(long = "worker-group")]
    worker_groups: Vec<String>,
    /// Also run, in this process, the work of every pipeline's resources (`runsOn` an
    /// Ec2Resource or EmrCluster): this machine stands in for them.
    #[arg(long)]
    run_resources: bool,
    /// Run no task runner in this process, even with --worker-group or --run-resources.
    #[arg(long)]
    no_runner: bool,
    /// Tasks the in-process runner runs at once.
    #[arg(long, default_value_t = 4)]
    runner_concurrency: usize,
    /// Working folders and logs of the in-process runner (kept out of the data directory).
    #[arg(long, default_value = "./sluice-runner")]
    runner_dir: PathBuf,
    /// Apache Spark's folder, for EmrActivity, HadoopActivity and HiveActivity
    /// (`pip install pyspark` gives one: the pyspark package's folder).
    #[arg(long, env = "SPARK_HOME")]
    spark_home: Option<PathBuf>,
}

/// How `sluice serve` schedules pipelines.
#[derive(clap::Args)]
struct SchedulingOptions {
    /// Seconds a handed-out task may go without its first progress report before it is handed
    /// out again (AWS: 2 minutes).
    #[arg(long, default_value_t = 120)]
    task_ack_seconds: u64,
    /// Seconds an acknowledged task may go without a progress report before its runner is
    /// presumed lost and the attempt fails (unless the activity sets reportProgressTimeout).
    #[arg(long, default_value_t = 900)]
    task_lease_seconds: u64,
    /// Refuse to activate a schedule whose first run lies more than this many hours back unless
    /// ActivatePipeline names a startTimestamp (0: no limit).
    #[arg(long, default_value_t = 24)]
    backfill_limit_hours: u64,
    /// maxActiveInstances of scheduled components that set none (AWS's account limit is 5).
    #[arg(long, default_value_t = 5)]
    max_active_instances: u32,
    /// S3-compatible endpoint for service-evaluated preconditions (S3KeyExists,
    /// S3PrefixNotEmpty); AWS's when not given. Credentials come from the environment.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// PEM certificates to trust for object stores (preconditions, the in-process runner)
    /// beside the system's roots.
    #[arg(long)]
    s3_ca_bundle: Option<PathBuf>,
    /// Folder that file:// locations in definitions may point into (refused when not given).
    #[arg(long)]
    local_data_root: Option<PathBuf>,
    /// Seconds PollForTask waits for a task before answering that there is none (keep it under
    /// the clients' read timeout: boto3's is 60 s).
    #[arg(long, default_value_t = 20)]
    poll_wait_seconds: u64,
    /// Where SnsAlarm notifications of a topic go: `TOPIC_ARN=URL` (https, or http on loopback;
    /// repeat for several topics).
    #[arg(long = "sns-webhook", value_name = "TOPIC_ARN=URL")]
    sns_webhooks: Vec<String>,
    /// Milliseconds between the scheduler's looks for due pipelines.
    #[arg(long, default_value_t = 1000, hide = true)]
    scheduler_tick_ms: u64,
    /// Tests only: read the scheduler's "now" from this file (RFC 3339).
    #[arg(long, hide = true)]
    clock_file: Option<PathBuf>,
}

impl SchedulingOptions {
    fn settings(&self, region: &str) -> sluice_server::scheduler::SchedulerSettings {
        let planner = sluice_core::runtime::PlannerConfig {
            ack_timeout: chrono::Duration::seconds(self.task_ack_seconds.clamp(1, 86_400) as i64),
            lease: chrono::Duration::seconds(self.task_lease_seconds.clamp(1, 7 * 86_400) as i64),
            ..sluice_core::runtime::PlannerConfig::default()
        };
        sluice_server::scheduler::SchedulerSettings {
            tick: std::time::Duration::from_millis(self.scheduler_tick_ms.max(10)),
            planner,
            backfill_limit: (self.backfill_limit_hours > 0)
                .then(|| chrono::Duration::hours(self.backfill_limit_hours.min(1_000_000) as i64)),
            max_active_instances: self.max_active_instances.max(1),
            checks: sluice_server::scheduler::CheckSettings {
                s3_endpoint: self.s3_endpoint.clone(),
                ca_bundle: self.s3_ca_bundle.clone(),
                region: region.to_string(),
                local_root: self.local_data_root.clone(),
            },
            poll_wait: std::time::Duration::from_secs(self.poll_wait_seconds.min(55)),
            webhooks: self
                .sns_webhooks
                .iter()
                .filter_map(|pair| {
                    pair.split_once('=')
                        .map(|(arn, url)| (arn.to_string(), url.to_string()))
                })
                .collect(),
        }
    }
}

#[derive(Subcommand)]
enum DoctorCommand {
    /// What a TLS endpoint offers (TLS 1.3, 1.2, cipher suites) and whether its certificate is
    /// trusted. Exit 0 when it speaks TLS 1.2+ with a trusted certificate, 1 when not, 2 when
    /// it cannot be reached.
    Tls {
        /// https://host:port (a database or object store endpoint too).
        url: String,
        /// PEM file of certificates to trust instead of the system's roots.
        #[arg(long, env = "AWS_CA_BUNDLE")]
        ca_bundle: Option<PathBuf>,
    },
}

/// A running server's administration API (`SluiceAdmin.<Op>`), with the caller's credentials as
/// AWS tools take them; without `--endpoint`, the command works on a data directory directly.
#[derive(clap::Args)]
pub(crate) struct AdminEndpoint {
    /// Act through this server's administration API (authorized as sluice:<Op> and audited).
    #[arg(long)]
    endpoint: Option<String>,
    /// PEM file of the server's certificate (or set AWS_CA_BUNDLE).
    #[arg(long, env = "AWS_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    #[arg(long, default_value = "us-east-1", env = "AWS_DEFAULT_REGION")]
    region: String,
}

impl AdminEndpoint {
    pub(crate) fn client(&self) -> anyhow::Result<Option<sluice_runner::Client>> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(None);
        };
        Ok(Some(sluice_runner::Client::new(
            endpoint,
            sluice_runner::Credentials::from_environment()?,
            self.ca_bundle.as_deref(),
            self.region.clone(),
        )?))
    }
}

#[derive(Subcommand)]
pub(crate) enum ClassificationCommand {
    /// The jobs, newest first.
    List {
        #[command(flatten)]
        admin: AdminEndpoint,
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// One job: status, schedule, its last run's counts, locations and problems.
    Show {
        #[command(flatten)]
        admin: AdminEndpoint,
        job_id: String,
    },
    /// Stop a job for good (a run in progress stops at its next object).
    Cancel {
        #[command(flatten)]
        admin: AdminEndpoint,
        job_id: String,
    },
    /// Stop a scheduled job's runs until it is resumed.
    Pause {
        #[command(flatten)]
        admin: AdminEndpoint,
        job_id: String,
    },
    /// Put a paused job back on its schedule.
    Resume {
        #[command(flatten)]
        admin: AdminEndpoint,
        job_id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new key-encryption key version; new data is sealed with it, old versions still decrypt.
    Rotate {
        #[arg(long, default_value = "./sluice-data", conflicts_with = "endpoint")]
        data_dir: PathBuf,
        #[arg(long, conflicts_with = "endpoint")]
        key_dir: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminEndpoint,
    },
    /// Re-seal every data key and secret under the newest key-encryption key (safe while the
    /// server runs; resumes where an interrupted run stopped).
    Rewrap {
        #[arg(long, default_value = "./sluice-data", conflicts_with = "endpoint")]
        data_dir: PathBuf,
        #[arg(long, conflicts_with = "endpoint")]
        key_dir: Option<PathBuf>,
        /// The server's key command (see `sluice serve --kek-command`).
        #[arg(long, env = "SLUICE_KEK_COMMAND", conflicts_with_all = ["endpoint", "key_dir"])]
        kek_command: Option<String>,
        #[command(flatten)]
        admin: AdminEndpoint,
    },
    /// A running server's key-encryption key versions, what is still sealed under an older one,
    /// and the last re-wrap.
    Status {
        #[command(flatten)]
        admin: AdminEndpoint,
    },
}

/// Where the audit trail's files are: a folder or a bucket.
#[derive(clap::Args)]
struct AuditLocation {
    /// Folder for audit log and digest files [default: DATA_DIR/audit].
    #[arg(long, conflicts_with = "audit_bucket")]
    audit_dir: Option<PathBuf>,
    /// An s3://bucket/prefix instead (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    audit_bucket: Option<String>,
    /// Endpoint of an S3-compatible server for --audit-bucket.
    #[arg(long, requires = "audit_bucket")]
    audit_s3_endpoint: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the record chain, the log files and the signed digests; names the first record or
    /// file that was altered, deleted, reordered, inserted or truncated. Exit 1 if any was.
    Verify {
        #[arg(long, default_value = "./sluice-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        audit_location: AuditLocation,
        /// The signing key the server uses (its public half verifies) [default: DATA_DIR/keys/audit-signing.pk8].
        #[arg(long, conflicts_with = "public_key")]
        audit_signing_key: Option<PathBuf>,
        /// A file holding the hex public key (from AUDIT_DIR/public-keys/), instead of the signing key.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Only report on what happened from this time (YYYY-MM-DDTHH:MM:SSZ).
        #[arg(long)]
        from: Option<String>,
        /// Only report on what happened until this time (YYYY-MM-DDTHH:MM:SSZ).
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        admin: AdminEndpoint,
    },
    /// Look up audit events through the API (CloudTrail's LookupEvents), newest first.
    Lookup {
        #[arg(long, env = "SLUICE_ENDPOINT")]
        endpoint: String,
        /// PEM file of the server's certificate (or set AWS_CA_BUNDLE).
        #[arg(long, env = "AWS_CA_BUNDLE")]
        ca_bundle: Option<PathBuf>,
        #[arg(long, default_value = "us-east-1", env = "AWS_DEFAULT_REGION")]
        region: String,
        #[arg(long)]
        event_name: Option<String>,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        resource_name: Option<String>,
        #[arg(long)]
        event_source: Option<String>,
        #[arg(long)]
        read_only: Option<bool>,
        #[arg(long)]
        access_key_id: Option<String>,
        #[arg(long)]
        event_id: Option<String>,
        /// From this time (YYYY-MM-DDTHH:MM:SSZ).
        #[arg(long)]
        start_time: Option<String>,
        /// Until this time (YYYY-MM-DDTHH:MM:SSZ).
        #[arg(long)]
        end_time: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        max: usize,
        /// Print each event's full CloudTrail record as a JSON line.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // `sluice run` talks to its user on the terminal: the embedded server only says what is wrong.
    let quiet = std::env::args().nth(1).is_some_and(|command| command == "run");
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if quiet { "warn" } else { "info" }));
    let writer = logmask::MaskedStderr;
    let ansi = writer.is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            data_dir,
            store,
            listen,
            tls_cert,
            tls_key,
            fips,
            insecure_http,
            max_pipelines,
            max_objects,
            key_dir,
            kek_command,
            region,
            audit_location,
            audit_signing_key,
            audit_delivery_seconds,
            audit_digest_seconds,
            audit_retention_days,
            scheduling,
            runner,
        } => {
            let limits = Limits {
                max_objects,
                ..Limits::default()
            };
            let audit = sluice_server::AuditConfig {
                directory: audit_location.audit_dir,
                bucket: audit_location.audit_bucket,
                s3_endpoint: audit_location.audit_s3_endpoint,
                signing_key: audit_signing_key,
                schedule: sluice_server::audit::delivery::Schedule {
                    delivery_interval: std::time::Duration::from_secs(audit_delivery_seconds.max(1)),
                    digest_interval: std::time::Duration::from_secs(audit_digest_seconds.max(1)),
                    retention: audit_retention_days.map(|days| chrono::Duration::days(i64::from(days))),
                },
            };
            let scheduler = scheduling.settings(&region);
            let config = sluice_server::ServeConfig {
                data_dir,
                store,
                listen,
                tls_cert,
                tls_key,
                insecure_http,
                limits,
                max_pipelines,
                region,
                audit,
                key_dir,
                fips,
                kek_versions: None,
                scheduler,
                clock_file: scheduling.clock_file.clone(),
                in_process_runner: !runner.no_runner && (!runner.worker_groups.is_empty() || runner.run_resources),
                in_process_runner_identity: sluice_server::RunnerIdentity::TaskRunner,
                runner_log_dir: None,
            };
            kek::versions(kek_command.as_deref())
                .map(|kek_versions| sluice_server::ServeConfig { kek_versions, ..config })
                .and_then(|config| {
                    runtime().and_then(|runtime| {
                        let mut queues = runner.worker_groups;
                        if runner.run_resources {
                            queues.push(sluice_core::runtime::ANY_RESOURCE_QUEUE.to_string());
                        }
                        runtime.block_on(run::serve_with_runner(
                            config,
                            queues,
                            runner.runner_concurrency,
                            runner.runner_dir,
                            runner.spark_home,
                        ))
                    })
                })
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Doctor(DoctorCommand::Tls { url, ca_bundle }) => {
            runtime().and_then(|runtime| runtime.block_on(doctor::tls(&url, ca_bundle.as_deref())))
        }
        Command::Keys(command) => runtime().and_then(|runtime| runtime.block_on(keys(command))),
        Command::Audit(command) => runtime().and_then(|runtime| runtime.block_on(audit::run(command))),
        Command::Iam(command) => runtime()
            .and_then(|runtime| runtime.block_on(iam::run(command)))
            .map(|()| ExitCode::SUCCESS),
        Command::Validate { file, params } => validate_file(&file, &params),
        Command::Classify {
            admin,
            pipeline,
            schedule,
            initial_run,
            name,
        } => runtime().and_then(|runtime| {
            runtime.block_on(scan::classify(admin, pipeline, schedule.as_deref(), initial_run, name))
        }),
        Command::Classification { command } => {
            runtime().and_then(|runtime| runtime.block_on(scan::classification(command)))
        }
        Command::Findings {
            admin,
            pipeline,
            severity,
            max,
            json,
        } => runtime().and_then(|runtime| runtime.block_on(scan::findings(admin, pipeline, severity, max, json))),
        Command::Scan {
            targets,
            format,
            json,
            custom_identifiers,
            allow_list,
            s3_endpoint,
            s3_ca_bundle,
            region,
        } => runtime().and_then(|runtime| {
            runtime.block_on(scan::run(scan::ScanOptions {
                targets,
                format,
                json,
                custom_identifiers,
                allow_list,
                s3_endpoint,
                s3_ca_bundle,
                region,
            }))
        }),
        Command::Logs {
            pipeline_id,
            instance,
            log_dir,
            log_uri,
            s3_endpoint,
            s3_ca_bundle,
            region,
        } => runtime().and_then(|runtime| {
            runtime.block_on(run::logs(run::LogsOptions {
                pipeline_id,
                instance,
                log_dir,
                log_uri,
                s3_endpoint,
                s3_ca_bundle,
                region,
            }))
        }),
        Command::Run {
            file,
            params,
            data_dir,
            log_dir,
            concurrency,
            s3_endpoint,
            s3_ca_bundle,
            local_data_root,
            region,
            max_objects,
            spark_home,
        } => runtime().and_then(|runtime| {
            runtime.block_on(run::run(run::RunOptions {
                file,
                params,
                data_dir,
                log_dir,
                work_dir: None,
                concurrency,
                s3_endpoint,
                s3_ca_bundle,
                region,
                local_data_root,
                max_objects,
                spark_home,
            }))
        }),
        Command::Runner {
            endpoint,
            worker_groups,
            ca_bundle,
            region,
            concurrency,
            work_dir,
            log_dir,
            s3_endpoint,
            hostname,
            progress_seconds,
            spark_home,
        } => runtime().and_then(|runtime| {
            runtime.block_on(run::runner(run::RunnerOptions {
                endpoint,
                worker_groups,
                ca_bundle,
                region,
                concurrency,
                work_dir,
                log_dir,
                s3_endpoint,
                hostname,
                progress_seconds,
                spark_home,
            }))
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sluice: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn keys(command: KeysCommand) -> anyhow::Result<ExitCode> {
    use sluice_server::keys::{Cipher, Keyring, default_key_directory, rewrap};
    if let KeysCommand::Rotate { admin, .. } | KeysCommand::Rewrap { admin, .. } | KeysCommand::Status { admin } =
        &command
        && let Some(client) = admin.client()?
    {
        return keys_through_api(&client, &command).await;
    }
    match command {
        KeysCommand::Status { .. } => anyhow::bail!("sluice keys status asks a running server: give --endpoint"),
        KeysCommand::Rotate { data_dir, key_dir, .. } => {
            let directory = key_dir.unwrap_or_else(|| default_key_directory(&data_dir));
            let version = Keyring::rotate(&directory)?;
            println!(
                "created key-encryption key version {version} in {}; run `sluice keys rewrap` to re-seal data keys under it",
                directory.display()
            );
        }
        KeysCommand::Rewrap {
            data_dir,
            key_dir,
            kek_command,
            ..
        } => {
            let directory = key_dir.unwrap_or_else(|| default_key_directory(&data_dir));
            let keyring = match kek::versions(kek_command.as_deref())? {
                Some(versions) => Keyring::from_versions(versions)?,
                None => Keyring::open(&directory)?,
            };
            let cipher = Cipher::new(keyring)?;
            let store = sluice_store::SqliteStore::open(&data_dir.join("sluice.db")).await?;
            let now =
                sluice_server::clock::render(sluice_server::clock::Clock::now(&sluice_server::clock::SystemClock));
            let report = rewrap(&store, &cipher, &now).await?;
            println!("{}", resealed_summary(&report));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn resealed_summary(report: &sluice_server::keys::RewrapReport) -> String {
    format!(
        "re-sealed {} access key secret(s), {} MFA seed(s), {} data key(s), {} plaintext definition version(s), {} role secret(s)",
        report.access_keys, report.mfa_seeds, report.data_keys, report.plaintext_definitions, report.role_secrets
    )
}

/// `sluice keys ... --endpoint`: the same through the administration API.
async fn keys_through_api(client: &sluice_runner::Client, command: &KeysCommand) -> anyhow::Result<ExitCode> {
    let call = |operation: &'static str| async move {
        client
            .call(&format!("SluiceAdmin.{operation}"), "sluice", &serde_json::json!({}))
            .await
    };
    match command {
        KeysCommand::Rotate { .. } => {
            let answer = call("RotateKeys").await?;
            println!(
                "the server now seals with key-encryption key version {}; run `sluice keys rewrap --endpoint ...` to re-seal what older versions hold",
                answer["NewestVersion"]
            );
        }
        KeysCommand::Status { .. } => {
            println!("{}", serde_json::to_string_pretty(&call("GetKeyStatus").await?)?);
        }
        KeysCommand::Rewrap { .. } => {
            let started = call("RewrapKeys").await?;
            if started["Started"] != true {
                println!("a re-wrap is already running; following it");
            }
            let progress = indicatif::ProgressBar::new_spinner();
            progress.enable_steady_tick(std::time::Duration::from_millis(120));
            loop {
                let status = call("GetKeyStatus").await?;
                match status["Rewrap"]["State"].as_str() {
                    Some("RUNNING") => {
                        progress.set_message(format!(
                            "re-sealing under version {}: {} item(s) to go",
                            status["NewestVersion"], status["PendingRewrapTotal"]
                        ));
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    Some("SUCCEEDED") => {
                        progress.finish_and_clear();
                        let report: sluice_server::keys::RewrapReport =
                            serde_json::from_value(status["Rewrap"]["Resealed"].clone())?;
                        println!("{}", resealed_summary(&report));
                        return Ok(ExitCode::SUCCESS);
                    }
                    _ => {
                        progress.finish_and_clear();
                        anyhow::bail!(
                            "the re-wrap failed: {}",
                            status["Rewrap"]["Error"].as_str().unwrap_or("no reason given")
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn validate_file(file: &PathBuf, params: &[String]) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).map_err(|error| anyhow::anyhow!("cannot read {}: {error}", file.display()))?;
    let mut definition =
        definition_file::parse(&text).map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
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
