//! The task runner (reference §i): polls a Data Pipeline API for tasks of its worker groups,
//! acknowledges each at once, keeps its lease with ReportTaskProgress while it runs (and stops it
//! when the service says it was cancelled), and reports the outcome with SetTaskStatus. It rides
//! out an unreachable server with growing back-off.
//!
//! This is the only crate that starts processes. Tasks run with an environment built for them,
//! never the runner's own (its credentials stay with it).

pub mod client;
pub mod copy;
pub mod credentials;
pub mod execute;
pub mod format;
pub mod sensitive;
pub mod spark;
pub mod sql;
pub mod storage;
pub mod tables;
pub mod task;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Semaphore, watch};

pub use client::{Client, Credentials, ServiceError};
pub use execute::{ExecutionSettings, Outcome};
pub use task::Task;

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub worker_groups: Vec<String>,
    pub hostname: String,
    /// Tasks run at once, over all worker groups.
    pub concurrency: usize,
    /// Pause between polls that found nothing.
    pub idle_poll: Duration,
    /// ReportTaskProgress interval while a task runs (well inside the 2-minute acknowledgement
    /// and the service's lease).
    pub progress_interval: Duration,
    pub execution: ExecutionSettings,
}

/// Makes this process's memory and environment (`/proc/<pid>/environ`) unreadable to the
/// tasks it starts, which run as the same user: the runner's credentials stay with it.
pub fn protect_process() {
    if let Err(error) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        tracing::warn!(%error, "could not make the runner process non-dumpable");
    }
}

/// Runs until `shutdown` turns true; then waits for the tasks it holds.
pub async fn run(client: Arc<Client>, config: RunnerConfig, mut shutdown: watch::Receiver<bool>) {
    protect_process();
    let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let config = Arc::new(config);
    let mut pollers = Vec::new();
    for group in config.worker_groups.clone() {
        let client = client.clone();
        let config = config.clone();
        let permits = permits.clone();
        let shutdown = shutdown.clone();
        pollers.push(tokio::spawn(poll_group(client, config, permits, group, shutdown)));
    }
    let _ = shutdown.wait_for(|stop| *stop).await;
    for poller in pollers {
        let _ = poller.await;
    }
    // Every permit back means every task reported.
    let _ = permits.acquire_many(config.concurrency.max(1) as u32).await;
}

async fn poll_group(
    client: Arc<Client>,
    config: Arc<RunnerConfig>,
    permits: Arc<Semaphore>,
    group: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(500);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let request = json!({ "workerGroup": group, "hostname": config.hostname });
        // The server holds a poll until a task comes (a long poll); shutdown does not wait for it.
        let asked = std::time::Instant::now();
        let polled = tokio::select! {
            polled = client.datapipeline("PollForTask", &request) => polled,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match polled {
            Ok(response) => {
                backoff = Duration::from_millis(500);
                match response.get("taskObject") {
                    Some(task) => match Task::from_json(task) {
                        Ok(task) => {
                            let client = client.clone();
                            let config = config.clone();
                            // How long the poll that brought the task took (benchmarks read it).
                            let poll_ms = asked.elapsed().as_secs_f64() * 1000.0;
                            tokio::spawn(async move {
                                handle(client, config, task, poll_ms).await;
                                drop(permit);
                            });
                            continue;
                        }
                        Err(error) => tracing::error!(%error, "the service sent a task this runner cannot read"),
                    },
                    None => drop(permit),
                }
                tokio::select! {
                    _ = tokio::time::sleep(config.idle_poll) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            Err(error) => {
                drop(permit);
                tracing::warn!(worker_group = %group, error = %format!("{error:#}"), retry_in_ms = backoff.as_millis() as u64, "cannot poll for tasks");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Runs one task: acknowledge, keep the lease while executing, report.
async fn handle(client: Arc<Client>, config: Arc<RunnerConfig>, task: Task, poll_ms: f64) {
    tracing::info!(task = %task.attempt_id, pipeline = %task.pipeline_id, poll_ms = format!("{poll_ms:.2}"), "task started");
    let (cancel_sender, cancel) = watch::channel(false);
    // Acknowledge before starting: a task not acknowledged within 2 minutes goes to another runner.
    match client
        .datapipeline("ReportTaskProgress", &json!({ "taskId": task.task_id }))
        .await
    {
        Ok(response) if response.get("canceled").and_then(|flag| flag.as_bool()) == Some(true) => {
            tracing::info!(task = %task.attempt_id, "the task was cancelled before it started");
            return;
        }
        Err(error) if is_task_gone(&error) => return,
        Err(error) => tracing::warn!(error = %format!("{error:#}"), "could not acknowledge the task"),
        Ok(_) => {}
    }
    let progress = {
        let client = client.clone();
        let task_id = task.task_id.clone();
        let interval = config.progress_interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match client
                    .datapipeline("ReportTaskProgress", &json!({ "taskId": task_id }))
                    .await
                {
                    Ok(response) if response.get("canceled").and_then(|flag| flag.as_bool()) == Some(true) => {
                        let _ = cancel_sender.send(true);
                        return;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        if is_task_gone(&error) {
                            let _ = cancel_sender.send(true);
                            return;
                        }
                        tracing::warn!(error = %format!("{error:#}"), "could not report progress");
                    }
                }
            }
        })
    };
    let outcome = execute::execute(&task, &config.execution, cancel).await;
    progress.abort();
    // Findings about the outputs go to the service while the attempt is still held.
    if !outcome.findings.is_empty() {
        let request = json!({ "taskId": task.task_id, "findings": outcome.findings });
        if let Err(error) = client.call("SluiceFindings.ReportFindings", "sluice", &request).await {
            tracing::warn!(task = %task.attempt_id, error = %format!("{error:#}"), "could not report sensitive-data findings");
        }
    }
    let mut report = json!({ "taskId": task.task_id, "taskStatus": outcome.status });
    if let Some(error_id) = &outcome.error_id {
        report["errorId"] = json!(error_id);
    }
    if let Some(message) = &outcome.error_message {
        report["errorMessage"] = json!(message);
    }
    // The report must arrive: retry while the service is unreachable, not when it says no.
    let mut delay = Duration::from_millis(200);
    for _ in 0..8 {
        match client.datapipeline("SetTaskStatus", &report).await {
            Ok(_) => break,
            Err(error) if is_task_gone(&error) => {
                tracing::info!(task = %task.attempt_id, "the task ended on the service side (cancelled or timed out)");
                break;
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "could not report the task's outcome; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::info!(task = %task.attempt_id, status = outcome.status, "task ended");
}

fn is_task_gone(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<ServiceError>()
        .is_some_and(|error| error.kind == "TaskNotFoundException")
}
