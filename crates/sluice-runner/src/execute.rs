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
            let precondition = kind == "ShellCommandPrecondition";
            match run_shell(task, settings, cancel, precondition).await {
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
        "Exists" => Outcome::finished(),
        other => Outcome::failed(
            "SluiceUnsupportedType",
            format!("Sluice's task runner cannot run {other} yet"),
        ),
    }
}

/// The numbered staging folders of an activity's inputs or outputs, with their locations.
type Staging = (usize, Option<String>, Encryption, crate::sensitive::Policy);

fn staging(task: &Task, key: &str) -> anyhow::Result<Vec<Staging>> {
    task.referenced(key)
        .iter()
        .enumerate()
        .map(|(index, node)| {
            let location = node
                .string("directoryPath")
                .or_else(|| node.string("filePath"))
                .map(str::to_string);
            Ok((
                index + 1,
                location,
                Encryption::of_node(node)?,
                crate::sensitive::Policy::for_output(task, node),
            ))
        })
        .collect()
}

/// Runs the command in a fresh attempt folder, and removes the folder whatever happened.
async fn run_shell(
    task: &Task,
    settings: &ExecutionSettings,
    cancel: watch::Receiver<bool>,
    precondition: bool,
) -> anyhow::Result<Outcome> {
    let folder = attempt_folder(task, settings);
    let outcome = run_in_folder(task, settings, cancel, precondition, &folder).await;
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
    precondition: bool,
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

    // The task's environment is built, not inherited: it never sees the runner's credentials.
    let mut environment: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME".into(), folder.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        ("SLUICE_PIPELINE_ID".into(), task.pipeline_id.clone()),
        ("SLUICE_ATTEMPT_ID".into(), task.attempt_id.clone()),
    ];
    let stage = attempt
        .string("stage")
        .is_some_and(|flag| flag.eq_ignore_ascii_case("true"));
    let mut outputs = Vec::new();
    if stage {
        for (number, location, _, _) in staging(task, "input")? {
            let directory = folder.join(format!("input{number}"));
            if let Some(location) = location {
                Location::parse(&location, &settings.storage)?
                    .download_to(&directory)
                    .await
                    .with_context(|| format!("staging input {number} from {location}"))?;
            } else {
                tokio::fs::create_dir_all(&directory).await?;
            }
            environment.push((format!("INPUT{number}_STAGING_DIR"), directory.display().to_string()));
        }
        for (number, location, encryption, policy) in staging(task, "output")? {
            let directory = folder.join(format!("output{number}"));
            tokio::fs::create_dir_all(&directory).await?;
            environment.push((format!("OUTPUT{number}_STAGING_DIR"), directory.display().to_string()));
            outputs.push((number, directory, location, encryption, policy));
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

    let arguments: Vec<String> = attempt.strings("scriptArgument").map(str::to_string).collect();
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
            return Ok(Outcome::failed(
                "SluiceRunnerError",
                "the activity has neither 'command' nor 'scriptUri'",
            ));
        }
    };

    let stdout_path = logs.join("stdout");
    let stderr_path = logs.join("stderr");
    let stdout = std::fs::File::create(&stdout_path)?;
    let stderr = std::fs::File::create(&stderr_path)?;
    #[allow(clippy::disallowed_methods, reason = "the task runner is where processes start")]
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&script)
        .arg("sluice-task")
        .args(&arguments)
        .env_clear()
        .envs(environment)
        .current_dir(&folder)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        // Its own process group, so cancelling stops what the shell started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().context("cannot start /bin/sh")?;
    let group = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let status = tokio::select! {
        status = child.wait() => status?,
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
            publish_logs(task, settings, &stdout_path, &stderr_path).await;
            return Ok(Outcome::failed("SluiceCanceled", "the attempt was cancelled"));
        }
    };

    let outcome = if status.success() {
        let mut refused = None;
        for (number, directory, location, encryption, policy) in &outputs {
            let Some(location) = location else { continue };
            // What is about to be published is scanned first; the policy decides.
            let review = crate::sensitive::review(directory, *policy, location, &settings.findings).await?;
            let target = if review.found {
                let note = crate::sensitive::note(*policy, &format!("output {number} ({location})"), &review);
                append_line(&stderr_path, &note).await;
                match policy {
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
            Location::parse_with(&target, &settings.storage, encryption)?
                .upload_from(directory)
                .await
                .with_context(|| format!("staging output {number} to {target}"))?;
        }
        refused.unwrap_or_else(Outcome::finished)
    } else if precondition {
        Outcome {
            status: "FALSE",
            error_id: None,
            error_message: None,
            findings: Vec::new(),
        }
    } else {
        let tail = mask(&last_lines(&stderr_path, 5).await, &task.secrets());
        let code = status.code().map_or("a signal".to_string(), |code| code.to_string());
        let mut message = format!("the command exited with status {code}");
        if !tail.is_empty() {
            message.push_str(": ");
            message.push_str(&tail);
        }
        Outcome::failed("SluiceCommandFailed", message)
    };
    publish_logs(task, settings, &stdout_path, &stderr_path).await;
    Ok(outcome)
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

async fn last_lines(path: &Path, count: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    // Only the end of the file is read.
    let mut tail = Vec::new();
    if let Ok(mut file) = tokio::fs::File::open(path).await {
        let length = file.metadata().await.map(|metadata| metadata.len()).unwrap_or(0);
        let _ = file
            .seek(std::io::SeekFrom::Start(length.saturating_sub(64 * 1024)))
            .await;
        let _ = file.read_to_end(&mut tail).await;
    }
    let text = String::from_utf8_lossy(&tail).to_string();
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(count)..].join(" | ");
    let mut end = tail.len().min(1024);
    while !tail.is_char_boundary(end) {
        end -= 1;
    }
    tail[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
