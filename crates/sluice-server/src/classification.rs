//! Classification jobs (`SluiceFindings.StartClassificationJob` / `GetClassificationJob`): on
//! demand, the server scans the objects under a pipeline's S3DataNode locations (s3:// with the
//! server's S3 settings, file:// only inside `--local-data-root`) with `sluice-detect` and stores
//! what it finds as findings of the pipeline, as a task runner's review would. Runs in the
//! background; each finding is its own transaction.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_store::Transaction;
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal};
use crate::handlers::{authorize_pipeline, json, live_pipeline};

/// An object larger than this is not read (reported as skipped).
const MAX_OBJECT_BYTES: u64 = 256 << 20;
/// At most this many objects per job.
const MAX_OBJECTS: usize = 10_000;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub job_id: String,
    pub pipeline_id: String,
    /// RUNNING, COMPLETE or FAILED.
    pub status: &'static str,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub locations: Vec<String>,
    pub objects_scanned: u64,
    pub bytes_scanned: u64,
    pub findings: u64,
    /// What could not be scanned, and why (never a value).
    pub problems: Vec<String>,
}

#[derive(Default)]
pub struct ClassificationJobs {
    jobs: Mutex<HashMap<String, JobState>>,
}

impl ClassificationJobs {
    fn update(&self, job_id: &str, change: impl FnOnce(&mut JobState)) {
        if let Ok(mut jobs) = self.jobs.lock()
            && let Some(job) = jobs.get_mut(job_id)
        {
            change(job);
        }
    }

    fn get(&self, job_id: &str) -> Option<JobState> {
        self.jobs.lock().ok().and_then(|jobs| jobs.get(job_id).cloned())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartInput {
    pipeline_id: String,
}

/// The S3DataNode locations of a definition, evaluated where they need no run (`#{...}` of
/// parameters and fields); the others are named as problems.
fn locations(definition: &sluice_core::PipelineDefinition, pipeline_id: &str) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for object in &definition.objects {
        if object.object_type() != Some("S3DataNode") {
            continue;
        }
        for key in ["directoryPath", "filePath"] {
            let Some(text) = object.first_string(key) else { continue };
            let value = if text.contains("#{") {
                let evaluated = sluice_core::expression::ComponentScope::new(definition, pipeline_id, &object.id)
                    .and_then(|scope| sluice_core::expression::evaluate_template(text, &scope).ok());
                match evaluated {
                    Some(parts) => parts.join(","),
                    None => {
                        problems.push(format!(
                            "{}.{key} depends on a run (such as #{{@scheduledStartTime}}): its objects are reviewed by each run's sensitiveDataPolicy instead",
                            object.id
                        ));
                        continue;
                    }
                }
            } else {
                text.to_string()
            };
            if !found.contains(&value) {
                found.push(value);
            }
        }
    }
    (found, problems)
}

pub async fn start_classification_job(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: StartInput = parse_body(body)?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::StartClassificationJob, &record.pipeline_id).await?;
    let Some((_, definition)) = crate::handlers::definition_in_force(state, tx, &record).await? else {
        return Err(ApiError::invalid_request(format!(
            "pipeline {} has no definition yet",
            record.pipeline_id
        )));
    };
    let (targets, problems) = locations(&definition, &record.pipeline_id);
    let job_id = uuid::Uuid::now_v7().simple().to_string();
    let reply = json!({ "jobId": job_id });
    let job = JobState {
        job_id: job_id.clone(),
        pipeline_id: record.pipeline_id.clone(),
        status: "RUNNING",
        started_at: crate::clock::render(state.clock.now()),
        finished_at: None,
        locations: targets.clone(),
        objects_scanned: 0,
        bytes_scanned: 0,
        findings: 0,
        problems,
    };
    if let Ok(mut jobs) = state.classification.jobs.lock() {
        jobs.insert(job_id.clone(), job);
    }
    let app = state.clone();
    let account_id = principal.identity.account_id.clone();
    tokio::spawn(async move {
        let outcome = run_job(&app, &job_id, &account_id, &targets).await;
        let finished_at = Some(crate::clock::render(app.clock.now()));
        app.classification.update(&job_id, |job| {
            job.finished_at = finished_at;
            match outcome {
                Ok(()) => job.status = "COMPLETE",
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %format!("{error:#}"), "classification job failed");
                    job.status = "FAILED";
                    job.problems
                        .push("the job stopped on an error (see the server's log)".into());
                }
            }
        });
    });
    json(&reply)
}

/// Where a location's objects are: a store and a prefix.
fn open(app: &AppState, target: &str) -> Result<(Box<dyn ObjectStore>, ObjectPath), String> {
    let settings = &app.scheduler.settings.checks;
    if let Some(path) = target.strip_prefix("file://") {
        let path = crate::checks::local_path(settings, path)?;
        let prefix = ObjectPath::from_absolute_path(&path).map_err(|_| format!("'{target}' is not a usable path"))?;
        return Ok((Box::new(object_store::local::LocalFileSystem::new()), prefix));
    }
    let (store, key) = crate::checks::s3_store(settings, target)?;
    Ok((store, ObjectPath::from(key.trim_end_matches('/'))))
}

async fn run_job(app: &AppState, job_id: &str, account_id: &str, targets: &[String]) -> anyhow::Result<()> {
    let detector = sluice_detect::Detector::managed()?;
    let mut scanned = 0usize;
    for target in targets {
        let (store, prefix) = match open(app, target) {
            Ok(opened) => opened,
            Err(problem) => {
                app.classification.update(job_id, |job| job.problems.push(problem));
                continue;
            }
        };
        let mut listing = store.list(Some(&prefix));
        let mut objects = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => objects.push(meta),
                Err(error) => {
                    let problem = format!("cannot list {target}: {error}");
                    app.classification.update(job_id, |job| job.problems.push(problem));
                    break;
                }
            }
        }
        if objects.is_empty()
            && let Ok(meta) = store.head(&prefix).await
        {
            objects.push(meta);
        }
        for meta in objects {
            if scanned >= MAX_OBJECTS {
                app.classification.update(job_id, |job| {
                    job.problems.push(format!("stopped after {MAX_OBJECTS} objects"))
                });
                return Ok(());
            }
            let url = if target.starts_with("file://") {
                format!("file:///{}", meta.location)
            } else {
                let bucket = target.trim_start_matches("s3://").split('/').next().unwrap_or_default();
                format!("s3://{bucket}/{}", meta.location)
            };
            if meta.size > MAX_OBJECT_BYTES {
                let problem = format!("{url} is larger than {} MiB: not scanned", MAX_OBJECT_BYTES >> 20);
                app.classification.update(job_id, |job| job.problems.push(problem));
                continue;
            }
            let bytes = match store.get(&meta.location).await {
                Ok(result) => result.bytes().await?,
                Err(error) => {
                    let problem = format!("cannot read {url}: {error}");
                    app.classification.update(job_id, |job| job.problems.push(problem));
                    continue;
                }
            };
            scanned += 1;
            let size = bytes.len() as u64;
            let name = meta.location.to_string();
            let report = {
                let detector = &detector;
                let bytes = bytes.clone();
                tokio::task::block_in_place(|| sluice_detect::scan_object(detector, &name, bytes.as_ref(), None))
            };
            let resource = json!({ "object": { "path": url, "size": size } });
            let stored = match report.finding("", "", "", "", resource) {
                Some(finding) => {
                    let pipeline_id = app
                        .classification
                        .get(job_id)
                        .map(|job| job.pipeline_id)
                        .unwrap_or_default();
                    let mut tx = app.store.begin().await?;
                    crate::findings::store_finding(
                        app,
                        tx.as_mut(),
                        account_id,
                        &pipeline_id,
                        &format!("classification-job/{job_id}"),
                        finding,
                    )
                    .await
                    .map_err(|error| anyhow::anyhow!("{}", error.message))?;
                    tx.commit().await?;
                    1
                }
                None => 0,
            };
            app.classification.update(job_id, |job| {
                job.objects_scanned += 1;
                job.bytes_scanned += size;
                job.findings += stored;
            });
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetInput {
    job_id: String,
}

pub async fn get_classification_job(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: GetInput = parse_body(body)?;
    let not_found = || {
        ApiError::new(
            ErrorKind::InvalidRequestException,
            "no classification job with that id (jobs are kept while the server runs)",
        )
    };
    let job = state.classification.get(&input.job_id).ok_or_else(not_found)?;
    authorize_pipeline(tx, principal, Operation::GetClassificationJob, &job.pipeline_id).await?;
    json(&job)
}
