//! Running one task: ShellCommandActivity and ShellCommandPrecondition as processes, with
//! staging and logs as AWS's Task Runner does them (reference §h.7, §i.4), Exists at once, and a
//! clear failure for types this runner cannot run.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use tokio::sync::watch;

use crate::storage::{Encryption, Location, StorageSettings};
use crate::task::Task;

/// What the runner reports with SetTaskStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// FINISHED, FAILED or FALSE.
    pub status: &'static str,
    pub error_id: Option<String>,
    pub error_message: Option<String>,
    /// Sensitive-data findings about the attempt's outputs (Macie's shape), for ReportFindings.
    pub findings: Vec<serde_json::Value>,
}

impl Outcome {
    pub(crate) fn finished() -> Outcome {
        Outcome {
            status: "FINISHED",
            error_id: None,
            error_message: None,
            findings: Vec::new(),
        }
    }

    fn failed(error_id: &str, message: impl Into<String>) -> Outcome {
        Outcome {
            status: "FAILED",
            error_id: Some(error_id.to_string()),
            error_message: Some(message.into()),
            findings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecutionSettings {
    /// Each attempt gets a fresh folder below this (its working directory, HOME and TMPDIR).
    pub work_dir: PathBuf,
    /// Attempt logs go below this, in AWS's layout, and to `pipelineLogUri` when set.
    pub log_dir: PathBuf,
    pub storage: StorageSettings,
    /// Keep attempt folders after the attempt (for debugging); removed by default.
    pub keep_work_dirs: bool,
    /// The service's API as tasks reach it with their own credentials (`aws` and SDKs inside a
    /// task need no configuration).
    pub task_api: Option<TaskApi>,
    /// Apache Spark, for EmrActivity, HadoopActivity and HiveActivity.
    pub spark: Option<crate::spark::SparkSettings>,
    /// Where one task's sensitive-data findings gather (fresh for each task).
    pub findings: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

/// Where a task's AWS tools find the service.
#[derive(Debug, Clone)]
pub struct TaskApi {
    pub endpoint: String,
    /// The CA bundle that trusts the service's certificate, if the system's roots do not.
    pub ca_bundle: Option<PathBuf>,
    pub region: String,
}

impl ExecutionSettings {
    /// The settings for one task: its role's S3 credentials (secrets `s3.accessKeyId` and
    /// `s3.secretAccessKey`), when it carries them, replace the runner's for its object stores.
    fn for_task(&self, task: &Task) -> ExecutionSettings {
        let mut settings = self.clone();
        settings.findings = Default::default();
        if let Some(credentials) = &task.credentials
            && let (Some(key), Some(secret)) = (
                credentials.secret("s3.accessKeyId"),
                credentials.secret("s3.secretAccessKey"),
            )
        {
            settings.storage.s3_credentials = Some((key.to_string(), sluice_crypto::Secret::new(secret.to_string())));
        }
        settings
    }
}

impl TaskApi {
    /// Service-specific endpoint variables (botocore and the AWS CLI read them), so calls to
    /// Data Pipeline, IAM, STS and CloudTrail go to Sluice and nothing else does.
    fn environment(&self) -> Vec<(String, String)> {
        let mut environment: Vec<(String, String)> = [
            "AWS_ENDPOINT_URL_DATA_PIPELINE",
            "AWS_ENDPOINT_URL_IAM",
            "AWS_ENDPOINT_URL_STS",
            "AWS_ENDPOINT_URL_CLOUDTRAIL",
        ]
        .into_iter()
        .map(|name| (name.to_string(), self.endpoint.clone()))
        .collect();
        environment.push(("AWS_DEFAULT_REGION".into(), self.region.clone()));
        environment.push(("AWS_REGION".into(), self.region.clone()));
        if let Some(bundle) = &self.ca_bundle {
            environment.push(("AWS_CA_BUNDLE".into(), bundle.display().to_string()));
        }
        environment
    }
}

pub use sluice_core::layout::path_segment as safe;

/// An attempt's private working folder: per pipeline, since attempt ids repeat across pipelines.
pub(crate) fn attempt_folder(task: &Task, settings: &ExecutionSettings) -> PathBuf {
    settings
        .work_dir
        .join(safe(&task.pipeline_id))
        .join(safe(&task.attempt_id))
}

/// The attempt's log folder: `<pipelineId>/<componentId>/<instanceId>/<attemptId>/`.
pub fn log_folder(task: &Task) -> String {
    sluice_core::layout::attempt_log_folder(&task.pipeline_id, task.component(), task.instance(), &task.attempt_id)
}

/// Runs a task to its outcome. `cancel` turns true when the service says the attempt was
/// cancelled; the process is then killed.
pub async fn execute(task: &Task, settings: &ExecutionSettings, cancel: watch::Receiver<bool>) -> Outcome {
    let settings = &settings.for_task(task);
    let mut resolved = task.clone();
    if let Err(message) = resolved.resolve_role_secrets() {
        return Outcome::failed("SluiceRoleSecretMissing", message);
    }
    let task = &resolved;
    let mut outcome = execute_unmasked(task, settings, cancel).await;
    if let Ok(mut findings) = settings.findings.lock() {
        outcome.findings = std::mem::take(&mut *findings);
    }
    // Whatever the failure quotes (stderr, a database's message), the task's secrets stay out.
    if let Some(message) = &outcome.error_message {
        outcome.error_message = Some(mask(message, &task.secrets()));
    }
    outcome
}

async fn execute_unmasked(task: &Task, settings: &ExecutionSettings, cancel: watch::Receiver<bool>) -> Outcome {
    let kind = task.attempt().string("type").unwrap_or("").to_string();
    match kind.as_str() {
        "ShellCommandActivity" | "ShellCommandPrecondition" => {
            let work = if kind == "ShellCommandPrecondition" {
                Work::Precondition
            } else {
                Work::Shell
            };
            match run_shell(task, settings, cancel, work).await {
                Ok(outcome) => outcome,
                Err(error) => Outcome::failed("SluiceRunnerError", format!("{error:#}")),
            }
        }
        "CopyActivity" => match crate::copy::run_copy(task, settings).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::failed("SluiceCopyFailed", format!("{error:#}")),
        },
        "RedshiftCopyActivity" => match crate::copy::run_redshift_copy(task, settings).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::failed("SluiceCopyFailed", format!("{error:#}")),
        },
        "SqlActivity" => match crate::sql::run_sql(task, settings).await {
            Ok(outcome) => outcome,
            Err(error) => Outcome::failed("SluiceSqlFailed", format!("{error:#}")),
        },
        "EmrActivity" | "HadoopActivity" | "HiveActivity" => match run_shell(task, settings, cancel, Work::Spark).await
        {
            Ok(outcome) => outcome,
            Err(error) => Outcome::failed("SluiceSparkFailed", format!("{error:#}")),
        },
        "Exists" => Outcome::finished(),
        other => Outcome::failed(
            "SluiceUnsupportedType",
            format!("Sluice's task runner cannot run {other} yet"),
        ),
    }
}

/// What runs in an attempt folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    Shell,
    Precondition,
    /// EmrActivity, HadoopActivity, HiveActivity: on Apache Spark.
    Spark,
}

/// One process of an attempt: a command, or one of an EMR activity's steps.
pub(crate) struct Step {
    /// What failure messages call it ("the command", "step 2 (spark-submit)").
    pub label: String,
    pub program: PathBuf,
    pub arguments: Vec<String>,
    /// Which arguments name files to fetch into the attempt folder just before the step runs.
    pub fetch: Vec<usize>,
}

/// A staged input or output: its number, its local folder and its data node.
pub(crate) struct Staged<'a> {
    pub number: usize,
    pub directory: PathBuf,
    pub node: &'a crate::task::Object,
    location: Option<String>,
    encryption: Encryption,
    policy: crate::sensitive::Policy,
}

/// The numbered staging folders of an activity's inputs or outputs, with their locations.
fn staging<'a>(task: &'a Task, key: &str, folder: &Path) -> anyhow::Result<Vec<Staged<'a>>> {
    task.referenced(key)
        .into_iter()
        .enumerate()
        .map(|(index, node)| {
            let location = node
                .string("directoryPath")
                .or_else(|| node.string("filePath"))
                .map(str::to_string);
            Ok(Staged {
                number: index + 1,
                directory: folder.join(format!("{key}{}", index + 1)),
                node,
                location,
                encryption: Encryption::of_node(node)?,
                policy: crate::sensitive::Policy::for_output(task, node),
            })
        })
        .collect()
}

/// Runs the command in a fresh attempt folder, and removes the folder whatever happened.
async fn run_shell(
    task: &Task,
    settings: &ExecutionSettings,
    cancel: watch::Receiver<bool>,
    work: Work,
) -> anyhow::Result<Outcome> {
    let folder = attempt_folder(task, settings);
    let outcome = run_in_folder(task, settings, cancel, work, &folder).await;
    if !settings.keep_work_dirs {
        let _ = tokio::fs::remove_dir_all(&folder).await;
    }
    // Whatever happened, the logs left behind have the task's secrets masked.
    let logs = settings.log_dir.join(log_folder(task));
    let secrets = task.secrets();
    mask_file(&logs.join("stdout"), &secrets).await;
    mask_file(&logs.join("stderr"), &secrets).await;
    outcome
}

async fn run_in_folder(
    task: &Task,
    settings: &ExecutionSettings,
    mut cancel: watch::Receiver<bool>,
    work: Work,
    folder: &Path,
) -> anyhow::Result<Outcome> {
    let attempt = task.attempt();
    let folder = folder.to_path_buf();
    let _ = tokio::fs::remove_dir_all(&folder).await;
    let tmp = folder.join("tmp");
    tokio::fs::create_dir_all(&tmp)
        .await
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let logs = settings.log_dir.join(log_folder(task));
    tokio::fs::create_dir_all(&logs)
        .await
        .with_context(|| format!("cannot create {}", logs.display()))?;
    let stdout_path = logs.join("stdout");
    let stderr_path = logs.join("stderr");
    std::fs::File::create(&stdout_path)?;
    std::fs::File::create(&stderr_path)?;

    // The task's environment is built, not inherited: it never sees the runner's credentials.
    let mut environment: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME".into(), folder.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        ("SLUICE_PIPELINE_ID".into(), task.pipeline_id.clone()),
        ("SLUICE_ATTEMPT_ID".into(), task.attempt_id.clone()),
    ];
    // HiveActivity stages unless told not to (its tables are how scripts name the data).
    let stage = sluice_core::runtime::support::stages(attempt.string("stage"), attempt.string("type").unwrap_or(""));
    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    if stage {
        inputs = staging(task, "input", &folder)?;
        for input in &inputs {
            if let Some(location) = &input.location {
                Location::parse(location, &settings.storage)?
                    .download_to(&input.directory)
                    .await
                    .with_context(|| format!("staging input {} from {location}", input.number))?;
            } else {
                tokio::fs::create_dir_all(&input.directory).await?;
            }
            environment.push((
                format!("INPUT{}_STAGING_DIR", input.number),
                input.directory.display().to_string(),
            ));
        }
        outputs = staging(task, "output", &folder)?;
        for output in &outputs {
            tokio::fs::create_dir_all(&output.directory).await?;
            environment.push((
                format!("OUTPUT{}_STAGING_DIR", output.number),
                output.directory.display().to_string(),
            ));
        }
    }
    // The task's own credentials, on a loopback endpoint that lives as long as the attempt.
    let _credential_endpoint = match &task.credentials {
        Some(credentials) => {
            let endpoint = crate::credentials::CredentialEndpoint::start(credentials.clone(), &folder).await?;
            environment.extend(endpoint.environment());
            if let Some(api) = &settings.task_api {
                environment.extend(api.environment());
            }
            Some(endpoint)
        }
        None => None,
    };

    let steps = match work {
        Work::Shell | Work::Precondition => match shell_step(task, settings, &folder).await? {
            Ok(step) => vec![step],
            Err(outcome) => return Ok(outcome),
        },
        Work::Spark => {
            let planned = match &settings.spark {
                Some(spark) => crate::spark::plan(task, spark, &folder, &inputs, &outputs)
                    .await
                    .map_err(|error| ("SluiceSparkFailed", format!("{error:#}"))),
                None => Err(("SluiceSparkMissing", "this task runner has no Apache Spark: start it with --spark-home or SPARK_HOME set to a Spark installation (`pip install pyspark` gives one: python3 -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')".to_string())),
            };
            match planned {
                Ok(plan) => {
                    for note in &plan.notes {
                        append_line(&stderr_path, note).await;
                    }
                    environment.extend(plan.environment);
                    plan.steps
                }
                Err((error_id, message)) => {
                    return Ok(
                        failed_before_running(task, settings, &stdout_path, &stderr_path, error_id, message).await,
                    );
                }
            }
        }
    };

    let mut fetched = 0;
    for step in &steps {
        let arguments = if step.fetch.is_empty() {
            step.arguments.clone()
        } else {
            match crate::spark::fetch_arguments(step, settings, &folder, &mut fetched).await {
                Ok(arguments) => arguments,
                Err(error) => {
                    let message = format!("{}: {error:#}", step.label);
                    return Ok(failed_before_running(
                        task,
                        settings,
                        &stdout_path,
                        &stderr_path,
                        "SluiceSparkFailed",
                        message,
                    )
                    .await);
                }
            }
        };
        if steps.len() > 1 || work == Work::Spark {
            append_line(
                &stderr_path,
                &format!("{}: {}", step.label, describe_step(step, &arguments)),
            )
            .await;
        }
        // What this step prints, not an earlier one, is what its failure quotes.
        let offset = tokio::fs::metadata(&stderr_path)
            .await
            .map_or(0, |metadata| metadata.len());
        let status = match run_step(
            step,
            &arguments,
            &environment,
            &folder,
            &stdout_path,
            &stderr_path,
            &mut cancel,
        )
        .await?
        {
            Some(status) => status,
            None => {
                publish_logs(task, settings, &stdout_path, &stderr_path).await;
                return Ok(Outcome::failed("SluiceCanceled", "the attempt was cancelled"));
            }
        };
        if status.success() {
            continue;
        }
        let outcome = if work == Work::Precondition {
            Outcome {
                status: "FALSE",
                error_id: None,
                error_message: None,
                findings: Vec::new(),
            }
        } else {
            let tail = mask(&failure_lines(&stderr_path, offset, 5).await, &task.secrets());
            let code = status.code().map_or("a signal".to_string(), |code| code.to_string());
            let mut message = format!("{} exited with status {code}", step.label);
            if !tail.is_empty() {
                message.push_str(": ");
                message.push_str(&tail);
            }
            let error_id = if work == Work::Spark {
                "SluiceSparkFailed"
            } else {
                "SluiceCommandFailed"
            };
            Outcome::failed(error_id, message)
        };
        publish_logs(task, settings, &stdout_path, &stderr_path).await;
        return Ok(outcome);
    }

    if work == Work::Spark {
        for output in &outputs {
            crate::spark::tidy_output(&output.directory)
                .await
                .with_context(|| format!("cannot tidy output {}", output.number))?;
        }
    }
    let outcome = publish_outputs(task, settings, &outputs, &stderr_path).await?;
    publish_logs(task, settings, &stdout_path, &stderr_path).await;
    Ok(outcome)
}

/// A failure before any process ran (no Spark, a step that cannot be, a file that cannot be
/// fetched): said in the attempt's stderr too, and the logs published, as a process's would be.
async fn failed_before_running(
    task: &Task,
    settings: &ExecutionSettings,
    stdout_path: &Path,
    stderr_path: &Path,
    error_id: &str,
    message: String,
) -> Outcome {
    let message = mask(&message, &task.secrets());
    append_line(stderr_path, &message).await;
    publish_logs(task, settings, stdout_path, stderr_path).await;
    Outcome::failed(error_id, message)
}

/// ShellCommandActivity's (and ShellCommandPrecondition's) one process: `command`, or the
/// script at `scriptUri`, with `scriptArgument`s as `$1`, `$2`, ...
async fn shell_step(task: &Task, settings: &ExecutionSettings, folder: &Path) -> anyhow::Result<Result<Step, Outcome>> {
    let attempt = task.attempt();
    let script = match (attempt.string("command"), attempt.string("scriptUri")) {
        (Some(command), _) => command.to_string(),
        (None, Some(uri)) => {
            let bytes = Location::parse(uri, &settings.storage)?
                .read()
                .await
                .with_context(|| format!("cannot fetch the script {uri}"))?;
            let path = folder.join("script");
            tokio::fs::write(&path, &bytes).await?;
            format!("exec sh {} \"$@\"", shell_quote(&path.display().to_string()))
        }
        (None, None) => {
            return Ok(Err(Outcome::failed(
                "SluiceRunnerError",
                "the activity has neither 'command' nor 'scriptUri'",
            )));
        }
    };
    let mut arguments = vec!["-c".to_string(), script, "sluice-task".to_string()];
    arguments.extend(attempt.strings("scriptArgument").map(str::to_string));
    Ok(Ok(Step {
        label: "the command".into(),
        program: PathBuf::from("/bin/sh"),
        arguments,
        fetch: Vec::new(),
    }))
}

/// A step as its log line shows it: the program's name and its arguments.
fn describe_step(step: &Step, arguments: &[String]) -> String {
    let name = step.program.file_name().map_or_else(
        || step.program.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    std::iter::once(name)
        .chain(arguments.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs one process in the attempt folder, its output appended to the attempt's logs, in its
/// own process group (cancelling stops what it started too). `None` when the attempt was
/// cancelled.
async fn run_step(
    step: &Step,
    arguments: &[String],
    environment: &[(String, String)],
    folder: &Path,
    stdout_path: &Path,
    stderr_path: &Path,
    cancel: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    let append = |path: &Path| std::fs::OpenOptions::new().append(true).open(path);
    let stdout = append(stdout_path)?;
    let stderr = append(stderr_path)?;
    #[allow(clippy::disallowed_methods, reason = "the task runner is where processes start")]
    let mut command = tokio::process::Command::new(&step.program);
    command
        .args(arguments)
        .env_clear()
        .envs(environment.iter().cloned())
        .current_dir(folder)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", step.program.display()))?;
    let group = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
    tokio::select! {
        status = child.wait() => Ok(Some(status?)),
        _ = async {
            while cancel.changed().await.is_ok() {
                if *cancel.borrow() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        } => {
            if let Some(group) = group {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.kill().await;
            Ok(None)
        }
    }
}

/// After the processes succeeded: each staged output is scanned, then published where its data
/// node says, as its sensitive-data policy decides.
async fn publish_outputs(
    task: &Task,
    settings: &ExecutionSettings,
    outputs: &[Staged<'_>],
    stderr_path: &Path,
) -> anyhow::Result<Outcome> {
    let mut refused = None;
    for output in outputs {
        let Some(location) = &output.location else { continue };
        let number = output.number;
        // What is about to be published is scanned first; the policy decides.
        let review = crate::sensitive::review(&output.directory, output.policy, location, &settings.findings).await?;
        let target = if review.found {
            let note = crate::sensitive::note(output.policy, &format!("output {number} ({location})"), &review);
            append_line(stderr_path, &note).await;
            match output.policy {
                crate::sensitive::Policy::Fail => {
                    refused = Some(Outcome::failed("SluiceSensitiveData", note));
                    continue;
                }
                crate::sensitive::Policy::Quarantine => {
                    refused = Some(Outcome::failed("SluiceSensitiveDataQuarantined", note));
                    crate::sensitive::quarantine_location(location, &task.attempt_id)
                }
                _ => location.clone(),
            }
        } else {
            location.clone()
        };
        Location::parse_with(&target, &settings.storage, &output.encryption)?
            .upload_from(&output.directory)
            .await
            .with_context(|| format!("staging output {number} to {target}"))?;
    }
    Ok(refused.unwrap_or_else(Outcome::finished))
}

/// Adds a line to a log file (the runner's own notes, such as sensitive-data warnings).
async fn append_line(path: &Path, line: &str) {
    use tokio::io::AsyncWriteExt;
    if let Ok(mut file) = tokio::fs::OpenOptions::new().append(true).create(true).open(path).await {
        let _ = file.write_all(format!("[sluice] {line}\n").as_bytes()).await;
    }
}

/// What a masked secret reads as (the service's own word for it).
pub const MASK: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Replaces every `*` field value of the task in `text`, then whatever the sensitive-data
/// detector finds (what a failed command printed becomes the attempt's error message, which the
/// service stores and shows).
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut masked = text.to_string();
    for secret in secrets {
        if masked.contains(secret.as_str()) {
            masked = masked.replace(secret.as_str(), MASK);
        }
    }
    let mut bytes = masked.into_bytes();
    for line in bytes.split_mut(|byte| *byte == b'\n') {
        crate::sensitive::mask_detected(line);
    }
    // Masking rewrites whole matches (ASCII `*` over whole characters' bytes is only ever
    // applied to what a pattern matched), so the text stays UTF-8; lossy is a guard.
    String::from_utf8(bytes).unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}

/// Rewrites a log file with the task's secrets masked, before anyone reads or uploads it.
/// Whether the file is masked (or absent); a log that could not be masked is not published.
async fn mask_file(path: &Path, secrets: &[String]) -> bool {
    let path = path.to_path_buf();
    let secrets = secrets.to_vec();
    match tokio::task::spawn_blocking(move || {
        if !path.exists() {
            return Ok(());
        }
        mask_file_blocking(&path, &secrets)
    })
    .await
    {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::error!(error = %error, "a task log could not be masked; it is not published");
            false
        }
        Err(_) => false,
    }
}

/// Line by line, so a large log is never whole in memory.
fn mask_file_blocking(path: &Path, secrets: &[String]) -> std::io::Result<()> {
    use std::io::{BufRead, Write};
    let contains = |line: &[u8], secret: &str| line.windows(secret.len()).any(|window| window == secret.as_bytes());
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let masked_path = path.with_extension("masked");
    let mut writer = std::io::BufWriter::new(std::fs::File::create(&masked_path)?);
    let mut line = Vec::new();
    let mut changed = false;
    while reader.read_until(b'\n', &mut line)? > 0 {
        if secrets.iter().any(|secret| contains(&line, secret)) {
            changed = true;
            line = mask(&String::from_utf8_lossy(&line), secrets).into_bytes();
        }
        // Then whatever the sensitive-data detector finds (keys, tokens, card numbers,
        // personal data) becomes `*`.
        changed |= crate::sensitive::mask_detected(&mut line);
        writer.write_all(&line)?;
        line.clear();
    }
    writer.flush()?;
    drop(writer);
    if changed {
        std::fs::rename(&masked_path, path)
    } else {
        std::fs::remove_file(&masked_path)
    }
}

/// Copies the attempt's stdout and stderr to `pipelineLogUri` (AWS's layout) and to the
/// activity's own `stdout`/`stderr` locations, with the task's secrets masked first. A failed
/// upload is logged, not fatal.
async fn publish_logs(task: &Task, settings: &ExecutionSettings, stdout: &Path, stderr: &Path) {
    let secrets = task.secrets();
    let stdout_masked = mask_file(stdout, &secrets).await;
    let stderr_masked = mask_file(stderr, &secrets).await;
    let attempt = task.attempt();
    let mut targets: Vec<(String, &Path, String)> = Vec::new();
    if let Some(root) = attempt.string("pipelineLogUri") {
        let base = format!("{}/{}", root.trim_end_matches('/'), log_folder(task));
        targets.push((base.clone(), stdout, "stdout".into()));
        targets.push((base, stderr, "stderr".into()));
    }
    for (key, path) in [("stdout", stdout), ("stderr", stderr)] {
        if let Some(uri) = attempt.string(key)
            && let Some((folder, name)) = uri.rsplit_once('/')
        {
            targets.push((folder.to_string(), path, name.to_string()));
        }
    }
    for (folder, path, name) in targets {
        if (path == stdout && !stdout_masked) || (path == stderr && !stderr_masked) {
            continue;
        }
        let result = async {
            Location::parse(&folder, &settings.storage)?
                .put_file(&name, path)
                .await
                .map(|_| ())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(attempt = %task.attempt_id, folder, error = %format!("{error:#}"), "could not publish a log");
        }
    }
}

/// The logs of an activity that runs no process (copies, SQL): its summary as stdout or its
/// failure as stderr, kept in the attempt's log folder and published like a command's.
pub(crate) async fn record_outcome_logs(task: &Task, settings: &ExecutionSettings, result: &anyhow::Result<String>) {
    let logs = settings.log_dir.join(log_folder(task));
    let (stdout, stderr) = (logs.join("stdout"), logs.join("stderr"));
    let (out, err) = match result {
        Ok(summary) => (format!("{summary}\n"), String::new()),
        Err(error) => (String::new(), format!("{error:#}\n")),
    };
    let written = async {
        tokio::fs::create_dir_all(&logs).await?;
        tokio::fs::write(&stdout, out).await?;
        tokio::fs::write(&stderr, err).await
    }
    .await;
    match written {
        Ok(()) => publish_logs(task, settings, &stdout, &stderr).await,
        Err(error) => tracing::warn!(attempt = %task.attempt_id, %error, "could not write the attempt's logs"),
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The last lines of a failed process's stderr worth quoting: blank lines and JVM logging's
/// INFO and WARN chatter (Spark prints much of it on its way out) are passed over.
async fn failure_lines(path: &Path, from: u64, count: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    // Only the end of the file is read.
    let mut tail = Vec::new();
    if let Ok(mut file) = tokio::fs::File::open(path).await {
        let length = file.metadata().await.map(|metadata| metadata.len()).unwrap_or(0);
        let _ = file
            .seek(std::io::SeekFrom::Start(length.saturating_sub(64 * 1024).max(from)))
            .await;
        let _ = file.read_to_end(&mut tail).await;
    }
    let text = String::from_utf8_lossy(&tail).to_string();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty() && !is_log_chatter(line))
        .collect();
    let tail = lines[lines.len().saturating_sub(count)..].join(" | ");
    let mut end = tail.len().min(1024);
    while !tail.is_char_boundary(end) {
        end -= 1;
    }
    tail[..end].to_string()
}

/// What Spark prints on every start, whatever went wrong.
const SPARK_BANNER: &[&str] = &[
    "Setting default log level to ",
    "To adjust logging level use ",
    "Spark master: ",
    "Spark Web UI available at ",
    "Time taken: ",
];

/// A log4j line at INFO or WARN (`26/11/29 05:48:10 WARN HiveConf: ...`), Spark's start-up
/// banner, or the runner's own notes: not what a failure is about.
fn is_log_chatter(line: &str) -> bool {
    if SPARK_BANNER.iter().any(|start| line.starts_with(start)) {
        return true;
    }
    let mut words = line.split_whitespace();
    let (Some(date), Some(time), Some(level)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    let shaped = |text: &str, separator: char| {
        text.len() == 8
            && text
                .split(separator)
                .all(|part| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit()))
    };
    (shaped(date, '/') && shaped(time, ':') && matches!(level, "INFO" | "WARN" | "DEBUG"))
        || line.starts_with("[sluice] ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_lines_pass_over_jvm_chatter() {
        assert!(is_log_chatter(
            "26/11/29 05:48:10 WARN HiveConf: HiveConf of name x does not exist"
        ));
        assert!(is_log_chatter(
            "26/11/29 05:48:10 INFO ShutdownHookManager: Deleting directory /tmp/x"
        ));
        assert!(!is_log_chatter(
            "26/11/29 05:48:10 ERROR SparkSQLDriver: Failed in [SELECT 1]"
        ));
        assert!(!is_log_chatter(
            "Exception in thread \"main\" java.lang.ClassNotFoundException: Foo"
        ));
        assert!(!is_log_chatter("INFO"));
        assert!(is_log_chatter(
            "Spark master: local[*], Application Id: local-1795931564188"
        ));
    }

    #[test]
    fn secrets_are_masked_longest_first() {
        let secrets = vec!["hunter2-long".to_string(), "hunter2".to_string()];
        assert_eq!(
            mask("a hunter2-long b hunter2 c", &secrets),
            format!("a {MASK} b {MASK} c")
        );
        assert_eq!(mask("nothing here", &secrets), "nothing here");
    }

    #[test]
    fn ids_become_path_safe() {
        assert_eq!(
            safe("@Work_2026-11-28T10:00:00_Attempt=1"),
            "@Work_2026-11-28T10_00_00_Attempt=1"
        );
        assert_eq!(safe("../x"), ".._x");
        assert_eq!(safe(".."), "__");
        assert_eq!(safe("."), "_");
    }
}
