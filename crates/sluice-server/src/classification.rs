//! Classification jobs (`SluiceFindings.StartClassificationJob`, `GetClassificationJob`,
//! `ListClassificationJobs`, `UpdateClassificationJob`): the server scans the objects under a
//! pipeline's S3DataNode locations (s3:// with the server's S3 settings, file:// only inside
//! `--local-data-root`) with `sluice-detect` and stores what it finds as findings of the pipeline,
//! as a task runner's review would — once, or on Macie's schedules (daily, weekly, monthly).
//!
//! Jobs live in the store. The scheduler's loop starts what is due (`start_due`); a run holds the
//! job's claim and renews it with every object, so a job is never run by two servers at once
//! and a run whose server died is taken up again once its claim runs out. Scheduled runs after
//! the first are incremental, as Macie's are: only objects created or changed since the objects
//! the previous run saw (a watermark of their last-modified time) are scanned.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_store::{ClassificationJobRecord, Transaction};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal};
use crate::authz::allows;
use crate::handlers::{authorize_pipeline, crypto_error, json, live_pipeline, pipeline_data_key, store_error};

/// An object larger than this is not read (reported as a problem).
const MAX_OBJECT_BYTES: u64 = 256 << 20;
/// At most this many objects per run.
const MAX_OBJECTS: usize = 10_000;
/// Problems kept per run (the count goes on).
const MAX_PROBLEMS: usize = 100;
/// How long a claim holds without renewal.
const CLAIM_SECONDS: i64 = 120;
const PAGE: i64 = 50;

/// What this server process is running now, and the name it claims jobs with.
pub struct ClassificationJobs {
    owner: String,
    running: Mutex<HashSet<String>>,
}

impl Default for ClassificationJobs {
    fn default() -> ClassificationJobs {
        ClassificationJobs {
            owner: format!("server-{}", uuid::Uuid::now_v7().simple()),
            running: Mutex::new(HashSet::new()),
        }
    }
}

impl ClassificationJobs {
    /// Marks a job as run here; false if it already is.
    fn enter(&self, job_id: &str) -> bool {
        self.running
            .lock()
            .map(|mut running| running.insert(job_id.to_string()))
            .unwrap_or(false)
    }

    fn leave(&self, job_id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(job_id);
        }
    }
}

/// What names objects, sealed with the pipeline's data key.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SealedState {
    /// The locations of the last (or current) run.
    locations: Vec<String>,
    /// What the last (or current) run could not scan, and why (never a value).
    problems: Vec<String>,
    /// The newest last-modified time the previous runs saw, and the objects that had it.
    watermark: Option<Watermark>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Watermark {
    time: DateTime<Utc>,
    objects: Vec<String>,
}

impl Watermark {
    /// Whether an object with this time was seen by an earlier run.
    fn seen(&self, object: &str, modified: DateTime<Utc>) -> bool {
        modified < self.time || (modified == self.time && self.objects.iter().any(|seen| seen == object))
    }

    /// Takes an object into the watermark the current run leaves.
    fn advance(next: &mut Option<Watermark>, object: &str, modified: DateTime<Utc>) {
        match next {
            Some(mark) if modified < mark.time => {}
            Some(mark) if modified == mark.time => mark.objects.push(object.to_string()),
            _ => {
                *next = Some(Watermark {
                    time: modified,
                    objects: vec![object.to_string()],
                })
            }
        }
    }
}

/// Macie's `scheduleFrequency`: runs start at 00:00 UTC of the days it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    Daily,
    Weekly(Weekday),
    /// A day of the month, 1–31; in shorter months, the month's last day.
    Monthly(u32),
}

impl Schedule {
    fn parse(value: &Value) -> Result<Schedule, ApiError> {
        let invalid = |message: &str| ApiError::invalid_request(format!("scheduleFrequency: {message}"));
        let members = value
            .as_object()
            .filter(|members| members.len() == 1)
            .ok_or_else(|| invalid("give exactly one of dailySchedule, weeklySchedule, monthlySchedule"))?;
        let (kind, detail) = members.iter().next().ok_or_else(|| invalid("empty"))?;
        match kind.as_str() {
            "dailySchedule" if detail.as_object().is_some_and(|detail| detail.is_empty()) => Ok(Schedule::Daily),
            "dailySchedule" => Err(invalid("dailySchedule takes no settings ({})")),
            "weeklySchedule" => {
                let day = detail
                    .get("dayOfWeek")
                    .and_then(Value::as_str)
                    .filter(|_| detail.as_object().is_some_and(|detail| detail.len() == 1))
                    .ok_or_else(|| invalid("weeklySchedule takes dayOfWeek (MONDAY … SUNDAY)"))?;
                let weekday = match day {
                    "MONDAY" => Weekday::Mon,
                    "TUESDAY" => Weekday::Tue,
                    "WEDNESDAY" => Weekday::Wed,
                    "THURSDAY" => Weekday::Thu,
                    "FRIDAY" => Weekday::Fri,
                    "SATURDAY" => Weekday::Sat,
                    "SUNDAY" => Weekday::Sun,
                    other => return Err(invalid(&format!("dayOfWeek '{other}' is not MONDAY … SUNDAY"))),
                };
                Ok(Schedule::Weekly(weekday))
            }
            "monthlySchedule" => {
                let day = detail
                    .get("dayOfMonth")
                    .and_then(Value::as_u64)
                    .filter(|day| (1..=31).contains(day))
                    .filter(|_| detail.as_object().is_some_and(|detail| detail.len() == 1))
                    .ok_or_else(|| invalid("monthlySchedule takes dayOfMonth, 1 to 31"))?;
                Ok(Schedule::Monthly(day as u32))
            }
            other => Err(invalid(&format!(
                "'{other}' is not dailySchedule, weeklySchedule or monthlySchedule"
            ))),
        }
    }

    fn to_json(self) -> Value {
        match self {
            Schedule::Daily => json!({ "dailySchedule": {} }),
            Schedule::Weekly(day) => {
                let name = match day {
                    Weekday::Mon => "MONDAY",
                    Weekday::Tue => "TUESDAY",
                    Weekday::Wed => "WEDNESDAY",
                    Weekday::Thu => "THURSDAY",
                    Weekday::Fri => "FRIDAY",
                    Weekday::Sat => "SATURDAY",
                    Weekday::Sun => "SUNDAY",
                };
                json!({ "weeklySchedule": { "dayOfWeek": name } })
            }
            Schedule::Monthly(day) => json!({ "monthlySchedule": { "dayOfMonth": day } }),
        }
    }

    /// The first run time strictly after `after`.
    fn next_after(self, after: DateTime<Utc>) -> DateTime<Utc> {
        let mut day = after.date_naive();
        loop {
            day = day.succ_opt().unwrap_or(day);
            let runs = match self {
                Schedule::Daily => true,
                Schedule::Weekly(weekday) => day.weekday() == weekday,
                Schedule::Monthly(wanted) => day.day() == wanted.min(last_day_of_month(day)),
            };
            if runs {
                return day.and_hms_opt(0, 0, 0).map_or(after, |time| time.and_utc());
            }
        }
    }
}

fn last_day_of_month(day: NaiveDate) -> u32 {
    (28..=31)
        .rev()
        .find(|last| NaiveDate::from_ymd_opt(day.year(), day.month(), *last).is_some())
        .unwrap_or(28)
}

fn render(time: DateTime<Utc>) -> String {
    crate::clock::render(time)
}

fn state_context(pipeline_id: &str, job_id: &str) -> String {
    format!("pipeline/{pipeline_id}/classification-job/{job_id}")
}

async fn seal_state(
    state: &AppState,
    tx: &mut dyn Transaction,
    job: &ClassificationJobRecord,
    sealed: &SealedState,
) -> Result<Vec<u8>, ApiError> {
    let data_key = pipeline_data_key(state, tx, &job.pipeline_id).await?;
    let plain = serde_json::to_vec(sealed).map_err(|_| ApiError::internal())?;
    state
        .cipher
        .seal_with_data_key(
            &data_key,
            &job.pipeline_id,
            &state_context(&job.pipeline_id, &job.job_id),
            &plain,
        )
        .map_err(crypto_error)
}

async fn open_state(
    state: &AppState,
    tx: &mut dyn Transaction,
    job: &ClassificationJobRecord,
) -> Result<SealedState, ApiError> {
    let data_key = pipeline_data_key(state, tx, &job.pipeline_id).await?;
    let plain = state
        .cipher
        .open_with_data_key(
            &data_key,
            &job.pipeline_id,
            &state_context(&job.pipeline_id, &job.job_id),
            &job.sealed_state,
        )
        .map_err(crypto_error)?;
    serde_json::from_slice(&plain).map_err(|_| ApiError::internal())
}

fn job_arn(state: &AppState, job: &ClassificationJobRecord) -> String {
    format!(
        "arn:aws:sluice:{}:{}:classification-job/{}",
        state.region, job.account_id, job.job_id
    )
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartInput {
    pipeline_id: String,
    name: Option<String>,
    job_type: Option<String>,
    schedule_frequency: Option<Value>,
    initial_run: Option<bool>,
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
    if crate::handlers::definition_in_force(state, tx, &record)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid_request(format!(
            "pipeline {} has no definition yet",
            record.pipeline_id
        )));
    }
    let job_type = input.job_type.as_deref().unwrap_or("ONE_TIME");
    let schedule = match (job_type, &input.schedule_frequency) {
        ("ONE_TIME", None) => None,
        ("ONE_TIME", Some(_)) => {
            return Err(ApiError::invalid_request(
                "scheduleFrequency is for jobType SCHEDULED; a ONE_TIME job runs once, now",
            ));
        }
        ("SCHEDULED", Some(frequency)) => Some(Schedule::parse(frequency)?),
        ("SCHEDULED", None) => {
            return Err(ApiError::invalid_request(
                "a SCHEDULED job needs scheduleFrequency (dailySchedule, weeklySchedule or monthlySchedule)",
            ));
        }
        (other, _) => {
            return Err(ApiError::invalid_request(format!(
                "jobType '{other}' is not ONE_TIME or SCHEDULED"
            )));
        }
    };
    if schedule.is_none() && input.initial_run.is_some() {
        return Err(ApiError::invalid_request(
            "initialRun is for jobType SCHEDULED (a ONE_TIME job always runs now)",
        ));
    }
    let name = input
        .name
        .clone()
        .unwrap_or_else(|| format!("{} classification", record.pipeline_id));
    if name.is_empty() || name.chars().count() > 500 {
        return Err(ApiError::invalid_request("name must be 1 to 500 characters"));
    }
    let now = state.clock.now();
    let run_now = schedule.is_none() || input.initial_run.unwrap_or(false);
    let mut job = ClassificationJobRecord {
        job_id: uuid::Uuid::now_v7().simple().to_string(),
        account_id: principal.identity.account_id.clone(),
        pipeline_id: record.pipeline_id.clone(),
        name,
        job_type: job_type.to_string(),
        schedule: schedule.map(|schedule| schedule.to_json().to_string()),
        // A RUNNING job without a claim is taken by the next turn of the scheduler's loop.
        status: if run_now { "RUNNING" } else { "IDLE" }.into(),
        created_at: render(now),
        next_run_at: if run_now {
            None
        } else {
            schedule.map(|schedule| render(schedule.next_after(now)))
        },
        last_run_started_at: None,
        last_run_finished_at: None,
        runs: 0,
        objects_scanned: 0,
        bytes_scanned: 0,
        findings: 0,
        claimed_by: None,
        claimed_until: None,
        sealed_state: Vec::new(),
    };
    job.sealed_state = seal_state(state, tx, &job, &SealedState::default()).await?;
    tx.insert_classification_job(&job).await.map_err(store_error)?;
    state.scheduler.wake();
    json(&json!({ "jobId": job.job_id, "jobArn": job_arn(state, &job) }))
}

/// The job as the API shows it.
fn describe(state: &AppState, job: &ClassificationJobRecord, sealed: Option<&SealedState>) -> Value {
    let mut shown = json!({
        "jobId": job.job_id,
        "jobArn": job_arn(state, job),
        "name": job.name,
        "pipelineId": job.pipeline_id,
        "jobType": job.job_type,
        "jobStatus": job.status,
        "createdAt": job.created_at,
        "numberOfRuns": job.runs,
        "lastRunStartedAt": job.last_run_started_at,
        "lastRunFinishedAt": job.last_run_finished_at,
        "nextRunAt": job.next_run_at,
        "objectsScanned": job.objects_scanned,
        "bytesScanned": job.bytes_scanned,
        "findings": job.findings,
    });
    if let Some(schedule) = &job.schedule
        && let Ok(schedule) = serde_json::from_str::<Value>(schedule)
    {
        shown["scheduleFrequency"] = schedule;
    }
    if let Some(sealed) = sealed {
        shown["locations"] = json!(sealed.locations);
        shown["problems"] = json!(sealed.problems);
    }
    shown
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JobInput {
    job_id: String,
}

/// The job, if it is in the caller's account (else the same answer as for no job).
async fn job_of(
    tx: &mut dyn Transaction,
    principal: &Principal,
    job_id: &str,
) -> Result<ClassificationJobRecord, ApiError> {
    tx.classification_job(job_id)
        .await
        .map_err(store_error)?
        .filter(|job| job.account_id == principal.identity.account_id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::InvalidRequestException,
                format!("no classification job '{job_id}' in this account"),
            )
        })
}

pub async fn get_classification_job(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: JobInput = parse_body(body)?;
    let job = job_of(tx, principal, &input.job_id).await?;
    authorize_pipeline(tx, principal, Operation::GetClassificationJob, &job.pipeline_id).await?;
    let sealed = open_state(state, tx, &job).await?;
    json(&describe(state, &job, Some(&sealed)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListInput {
    pipeline_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The caller's jobs, newest first, of the pipelines it may list jobs of.
pub async fn list_classification_jobs(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: ListInput = if body.iter().all(u8::is_ascii_whitespace) {
        ListInput::default()
    } else {
        parse_body(body)?
    };
    let limit = input.max_results.unwrap_or(PAGE);
    if !(1..=PAGE).contains(&limit) {
        return Err(ApiError::invalid_request(format!("'maxResults' must be 1 to {PAGE}")));
    }
    if let Some(pipeline_id) = &input.pipeline_id {
        live_pipeline(tx, principal, pipeline_id).await?;
        authorize_pipeline(tx, principal, Operation::ListClassificationJobs, pipeline_id).await?;
    }
    let mut before = crate::findings::read_page_token(input.next_token.as_deref())?;
    let mut listed = Vec::new();
    let mut last = None;
    let mut more = false;
    'pages: loop {
        let rows = tx
            .classification_jobs(
                &principal.identity.account_id,
                input.pipeline_id.as_deref(),
                before.as_ref().map(|(time, id)| (time.as_str(), id.as_str())),
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let exhausted = (rows.len() as i64) <= limit;
        for row in rows {
            if listed.len() as i64 == limit {
                more = true;
                break 'pages;
            }
            before = Some((row.created_at.clone(), row.job_id.clone()));
            last = before.clone();
            let visible = input.pipeline_id.is_some()
                || allows(
                    principal,
                    Operation::ListClassificationJobs,
                    &crate::handlers::pipeline_arn(principal, &row.pipeline_id),
                    &crate::handlers::pipeline_context(tx, &row.pipeline_id).await?,
                );
            if visible {
                listed.push(describe(state, &row, None));
            }
        }
        if exhausted {
            break;
        }
    }
    let next_token = (more || listed.len() as i64 == limit)
        .then_some(last)
        .flatten()
        .map(|(time, id)| crate::findings::page_token(&time, &id));
    json(&json!({ "items": listed, "nextToken": next_token }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateInput {
    job_id: String,
    job_status: String,
}

/// Macie's UpdateClassificationJob: CANCELLED (for good), USER_PAUSED (a scheduled job stops
/// running; a run in progress stops at its next object) and RUNNING (a paused job resumes on its
/// schedule).
pub async fn update_classification_job(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: UpdateInput = parse_body(body)?;
    let mut job = job_of(tx, principal, &input.job_id).await?;
    authorize_pipeline(tx, principal, Operation::UpdateClassificationJob, &job.pipeline_id).await?;
    let refuse = |message: String| Err(ApiError::invalid_request(message));
    match (input.job_status.as_str(), job.status.as_str()) {
        ("USER_PAUSED" | "RUNNING", _) if job.job_type != "SCHEDULED" => {
            return refuse(format!(
                "job {} is ONE_TIME: it can be cancelled, not paused or resumed",
                job.job_id
            ));
        }
        (_, "CANCELLED" | "COMPLETE") => {
            return refuse(format!(
                "job {} is {}: it cannot change any more",
                job.job_id, job.status
            ));
        }
        ("CANCELLED", _) => {
            job.status = "CANCELLED".into();
            job.next_run_at = None;
        }
        ("USER_PAUSED", "USER_PAUSED") | ("RUNNING", "RUNNING" | "IDLE") => {}
        ("USER_PAUSED", _) => {
            job.status = "USER_PAUSED".into();
            job.next_run_at = None;
        }
        ("RUNNING", _) => {
            let schedule = job
                .schedule
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .map(|value| Schedule::parse(&value))
                .transpose()?
                .ok_or_else(ApiError::internal)?;
            job.status = "IDLE".into();
            job.next_run_at = Some(render(schedule.next_after(state.clock.now())));
        }
        (other, _) => {
            return refuse(format!("jobStatus '{other}' is not CANCELLED, USER_PAUSED or RUNNING"));
        }
    }
    tx.update_classification_job(&job).await.map_err(store_error)?;
    json(&describe(state, &job, None))
}

/// Starts every due job no server holds (called on each turn of the scheduler's loop).
pub async fn start_due(app: &AppState, now: DateTime<Utc>) {
    let due = async {
        let mut tx = app.store.begin().await?;
        let due = tx.due_classification_jobs(&render(now), 16).await?;
        tx.commit().await?;
        anyhow::Ok(due)
    };
    let due = match due.await {
        Ok(due) => due,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "cannot read due classification jobs");
            return;
        }
    };
    for job_id in due {
        if !app.classification.enter(&job_id) {
            continue;
        }
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(error) = run(&app, &job_id).await {
                tracing::error!(job_id, error = %format!("{error:#}"), "classification job run failed");
            }
            app.classification.leave(&job_id);
        });
    }
}

/// One run of a job: claim it, scan, leave it IDLE (scheduled) or COMPLETE (one-time).
async fn run(app: &AppState, job_id: &str) -> anyhow::Result<()> {
    let owner = app.classification.owner.clone();
    let started = app.clock.now();
    // Claim, and start the run.
    let (mut job, mut sealed, targets) = {
        let mut tx = app.store.begin().await?;
        let until = render(started + Duration::seconds(CLAIM_SECONDS));
        if !tx
            .claim_classification_job(job_id, &owner, &until, &render(started))
            .await?
        {
            return Ok(());
        }
        let Some(mut job) = tx.classification_job(job_id).await? else {
            return Ok(());
        };
        let Some(pipeline) = tx
            .pipeline(&job.pipeline_id)
            .await?
            .filter(|pipeline| pipeline.deleted_at.is_none())
        else {
            // (Deleting a pipeline deletes its jobs; this only guards against one left behind.)
            job.status = "CANCELLED".into();
            job.next_run_at = None;
            job.claimed_by = None;
            job.claimed_until = None;
            tx.update_classification_job(&job).await?;
            tx.commit().await?;
            return Ok(());
        };
        let mut sealed = open_state(app, tx.as_mut(), &job).await.map_err(api_error)?;
        let (targets, problems) = match crate::handlers::definition_in_force(app, tx.as_mut(), &pipeline)
            .await
            .map_err(api_error)?
        {
            Some((_, definition)) => locations(&definition, &job.pipeline_id),
            None => (Vec::new(), vec!["the pipeline has no definition".to_string()]),
        };
        sealed.locations = targets.clone();
        sealed.problems = problems;
        job.status = "RUNNING".into();
        job.runs += 1;
        job.last_run_started_at = Some(render(started));
        job.last_run_finished_at = None;
        job.next_run_at = None;
        job.objects_scanned = 0;
        job.bytes_scanned = 0;
        job.findings = 0;
        job.sealed_state = seal_state(app, tx.as_mut(), &job, &sealed).await.map_err(api_error)?;
        tx.update_classification_job(&job).await?;
        tx.commit().await?;
        (job, sealed, targets)
    };
    let incremental = job.job_type == "SCHEDULED";
    let previous = sealed.watermark.clone().filter(|_| incremental);
    let mut next_mark = previous.clone();
    let detector = sluice_detect::Detector::managed()?;
    let mut scanned = 0usize;
    let mut stopped = false;
    'targets: for target in &targets {
        let (store, prefix) = match open(app, target) {
            Ok(opened) => opened,
            Err(problem) => {
                note(&mut sealed, problem);
                continue;
            }
        };
        let mut listing = store.list(Some(&prefix));
        let mut objects = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => objects.push(meta),
                Err(error) => {
                    note(&mut sealed, format!("cannot list {target}: {error}"));
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
            let url = if target.starts_with("file://") {
                format!("file:///{}", meta.location)
            } else {
                let bucket = target.trim_start_matches("s3://").split('/').next().unwrap_or_default();
                format!("s3://{bucket}/{}", meta.location)
            };
            if previous
                .as_ref()
                .is_some_and(|mark| mark.seen(&url, meta.last_modified))
            {
                continue;
            }
            if scanned >= MAX_OBJECTS {
                note(&mut sealed, format!("stopped after {MAX_OBJECTS} objects"));
                break 'targets;
            }
            let mut found = None;
            // An object that could not be read is tried again by the next run.
            let mut settled = true;
            if meta.size > MAX_OBJECT_BYTES {
                note(
                    &mut sealed,
                    format!("{url} is larger than {} MiB: not scanned", MAX_OBJECT_BYTES >> 20),
                );
            } else {
                let read = match store.get(&meta.location).await {
                    Ok(result) => result.bytes().await,
                    Err(error) => Err(error),
                };
                match read {
                    Ok(bytes) => {
                        let name = meta.location.to_string();
                        let detector = &detector;
                        let report = tokio::task::block_in_place(|| {
                            sluice_detect::scan_object(detector, &name, bytes.as_ref(), None)
                        });
                        if let Some(problem) = &report.problem {
                            note(&mut sealed, format!("{url}: {problem}"));
                        }
                        let resource = json!({ "object": { "path": url, "size": meta.size } });
                        found = Some((report.finding("", "", "", "", resource), meta.size));
                    }
                    Err(error) => {
                        settled = false;
                        note(&mut sealed, format!("cannot read {url}: {error}"));
                    }
                }
            }
            scanned += 1;
            if settled {
                Watermark::advance(&mut next_mark, &url, meta.last_modified);
            }
            // The object's finding, the counts and the renewed claim in one transaction; a job
            // cancelled, paused or taken over meanwhile stops here.
            let mut tx = app.store.begin().await?;
            let Some(current) = tx.classification_job(job_id).await? else {
                return Ok(());
            };
            if current.status != "RUNNING" || current.claimed_by.as_deref() != Some(owner.as_str()) {
                stopped = true;
                break 'targets;
            }
            if let Some((finding, size)) = found {
                job.objects_scanned += 1;
                job.bytes_scanned += size as i64;
                if let Some(finding) = finding {
                    crate::findings::store_finding(
                        app,
                        tx.as_mut(),
                        &job.account_id,
                        &job.pipeline_id,
                        &format!("classification-job/{job_id}"),
                        finding,
                    )
                    .await
                    .map_err(api_error)?;
                    job.findings += 1;
                }
            }
            job.claimed_until = Some(render(app.clock.now() + Duration::seconds(CLAIM_SECONDS)));
            job.sealed_state = seal_state(app, tx.as_mut(), &job, &sealed).await.map_err(api_error)?;
            tx.update_classification_job(&job).await?;
            tx.commit().await?;
        }
    }
    // The run's end: the watermark moves only when the run saw everything.
    let mut tx = app.store.begin().await?;
    let Some(current) = tx.classification_job(job_id).await? else {
        return Ok(());
    };
    if current.claimed_by.as_deref() != Some(owner.as_str()) {
        return Ok(());
    }
    // Paused, resumed or cancelled meanwhile: the status and next run are the user's.
    job.status = current.status.clone();
    job.next_run_at = current.next_run_at.clone();
    if !stopped {
        sealed.watermark = next_mark;
    }
    let finished = app.clock.now();
    job.last_run_finished_at = Some(render(finished));
    job.claimed_by = None;
    job.claimed_until = None;
    if job.status == "RUNNING" {
        match job
            .schedule
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        {
            Some(schedule) => {
                let schedule = Schedule::parse(&schedule).map_err(api_error)?;
                job.status = "IDLE".into();
                job.next_run_at = Some(render(schedule.next_after(started.max(finished))));
            }
            None => job.status = "COMPLETE".into(),
        }
    }
    job.sealed_state = seal_state(app, tx.as_mut(), &job, &sealed).await.map_err(api_error)?;
    tx.update_classification_job(&job).await?;
    tx.commit().await?;
    Ok(())
}

fn note(sealed: &mut SealedState, problem: String) {
    if sealed.problems.len() < MAX_PROBLEMS {
        sealed.problems.push(problem);
    } else if sealed.problems.len() == MAX_PROBLEMS {
        sealed.problems.push("(more problems not kept)".into());
    }
}

fn api_error(error: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", error.message)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
            .expect("time")
            .and_utc()
    }

    #[test]
    fn schedules_run_at_midnight_utc_on_their_days() {
        // 2026-11-29 is a Sunday.
        let now = at("2026-11-29T10:15:00");
        assert_eq!(Schedule::Daily.next_after(now), at("2026-11-30T00:00:00"));
        assert_eq!(
            Schedule::Daily.next_after(at("2026-11-30T00:00:00")),
            at("2026-12-01T00:00:00")
        );
        assert_eq!(
            Schedule::Weekly(Weekday::Mon).next_after(now),
            at("2026-11-30T00:00:00")
        );
        assert_eq!(
            Schedule::Weekly(Weekday::Sun).next_after(now),
            at("2026-12-06T00:00:00")
        );
        assert_eq!(Schedule::Monthly(1).next_after(now), at("2026-12-01T00:00:00"));
        assert_eq!(Schedule::Monthly(29).next_after(now), at("2026-12-29T00:00:00"));
        // The 31st in a 28-day February is its last day.
        assert_eq!(
            Schedule::Monthly(31).next_after(at("2027-02-01T00:00:00")),
            at("2027-02-28T00:00:00")
        );
        assert_eq!(
            Schedule::Monthly(31).next_after(at("2027-02-28T00:00:00")),
            at("2027-03-31T00:00:00")
        );
    }

    #[test]
    fn schedules_parse_as_macie_writes_them_and_bad_ones_name_the_problem() {
        for (text, schedule) in [
            (r#"{"dailySchedule":{}}"#, Schedule::Daily),
            (
                r#"{"weeklySchedule":{"dayOfWeek":"FRIDAY"}}"#,
                Schedule::Weekly(Weekday::Fri),
            ),
            (r#"{"monthlySchedule":{"dayOfMonth":15}}"#, Schedule::Monthly(15)),
        ] {
            let value: Value = serde_json::from_str(text).expect("json");
            assert_eq!(Schedule::parse(&value).expect(text), schedule);
            assert_eq!(schedule.to_json(), value);
        }
        for (text, says) in [
            (r#"{}"#, "exactly one"),
            (
                r#"{"dailySchedule":{},"weeklySchedule":{"dayOfWeek":"MONDAY"}}"#,
                "exactly one",
            ),
            (r#"{"weeklySchedule":{"dayOfWeek":"FUNDAY"}}"#, "FUNDAY"),
            (r#"{"monthlySchedule":{"dayOfMonth":32}}"#, "1 to 31"),
            (r#"{"hourlySchedule":{}}"#, "hourlySchedule"),
        ] {
            let value: Value = serde_json::from_str(text).expect("json");
            let error = Schedule::parse(&value).expect_err(text);
            assert!(error.message.contains(says), "{text}: {}", error.message);
        }
    }

    #[test]
    fn the_watermark_skips_what_earlier_runs_saw_and_nothing_newer() {
        let mut mark = None;
        Watermark::advance(&mut mark, "a", at("2026-11-29T10:00:00"));
        Watermark::advance(&mut mark, "b", at("2026-11-29T11:00:00"));
        Watermark::advance(&mut mark, "c", at("2026-11-29T11:00:00"));
        Watermark::advance(&mut mark, "d", at("2026-11-29T09:00:00"));
        let mark = mark.expect("a mark");
        assert_eq!(mark.time, at("2026-11-29T11:00:00"));
        assert!(mark.seen("a", at("2026-11-29T10:00:00")));
        assert!(mark.seen("b", at("2026-11-29T11:00:00")));
        // Written in the same second as the newest seen, after the listing: scanned.
        assert!(!mark.seen("e", at("2026-11-29T11:00:00")));
        assert!(!mark.seen("a", at("2026-11-29T11:00:01")));
    }
}
