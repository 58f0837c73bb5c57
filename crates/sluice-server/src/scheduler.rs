//! The scheduler inside `sluice serve`: one background worker that wakes when a pipeline's
//! `wake_at` comes (or when told), loads the pipeline's runtime state, lets the pure planner of
//! `sluice_core::runtime` move it forward, and writes the changes back in one transaction.
//!
//! Requests that change runtime state (activation, SetStatus, the task protocol) use the same
//! `load_run` / `save_run` pair inside their own transaction and run the planner right away, so
//! their effect is visible in the response's aftermath without waiting for the worker. Every
//! step is a transaction that reads, plans and writes, so a future leader election only has to
//! decide which server runs `run`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{NaiveDateTime, Timelike};
use serde_json::json;
use sluice_core::PipelineDefinition;
use sluice_core::runtime::{self, Event, Graph, PlannerConfig, State};
use sluice_store::{PipelineRecord, Transaction};
use sluice_wire::ApiError;
use tokio::sync::Notify;

use crate::api::AppState;
use crate::checks;
pub use crate::checks::CheckSettings;
use crate::clock::Clock;
use crate::clock::render;

#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// How often the worker looks for due pipelines when nothing wakes it.
    pub tick: std::time::Duration,
    pub planner: PlannerConfig,
    /// Refuse activation when the first scheduled start is further back than this and no
    /// `startTimestamp` is given (`None`: backfill anything).
    pub backfill_limit: Option<chrono::Duration>,
    /// `maxActiveInstances` of scheduled components that set none (AWS's account limit).
    pub max_active_instances: u32,
    /// Where service-evaluated preconditions look.
    pub checks: CheckSettings,
    /// How long PollForTask waits for a task before answering "none" (a long poll).
    pub poll_wait: std::time::Duration,
    /// Where SnsAlarm notifications go: topic ARN → webhook URL (https, or http on loopback).
    pub webhooks: HashMap<String, String>,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            tick: std::time::Duration::from_secs(1),
            planner: PlannerConfig::default(),
            backfill_limit: Some(chrono::Duration::days(1)),
            max_active_instances: 5,
            checks: CheckSettings::default(),
            poll_wait: std::time::Duration::from_secs(20),
            webhooks: HashMap::new(),
        }
    }
}

pub struct Scheduler {
    pub settings: SchedulerSettings,
    wake: Notify,
    /// Told whenever runtime state was saved: long-polling PollForTask calls look again.
    queued: Notify,
    /// Active definitions by (pipeline, version), decrypted and compiled: every runtime call
    /// needs the graph, and building it is most of a small call's cost.
    compiled: std::sync::Mutex<HashMap<(String, i64), Compiled>>,
    /// This server's name in the scheduler's lease.
    server_id: String,
    /// The lease's epoch while this server holds it (0: it does not).
    epoch: std::sync::atomic::AtomicI64,
}

/// The lease only one server at a time holds: its scheduler loop runs, the others' wait.
const LEASE: &str = "scheduler";
/// How long a lease lasts unrenewed: a server that stops is replaced within this.
const LEASE_SECONDS: i64 = 10;

impl Scheduler {
    pub fn new(settings: SchedulerSettings) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            settings,
            wake: Notify::new(),
            queued: Notify::new(),
            compiled: std::sync::Mutex::new(HashMap::new()),
            server_id: format!("server-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple()),
            epoch: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Whether this server runs the scheduler's loop now.
    pub fn is_leader(&self) -> bool {
        self.epoch.load(std::sync::atomic::Ordering::Relaxed) != 0
    }

    /// Takes or renews the lease (at each turn of the loop); whether this server holds it.
    async fn lead(&self, store: &dyn sluice_store::Store) -> bool {
        // Leases run on real time, whatever time the scheduler is told it is.
        let now = crate::clock::SystemClock.now();
        let until = now + chrono::Duration::seconds(LEASE_SECONDS.max(self.settings.tick.as_secs() as i64 * 3));
        let acquired = async {
            let mut tx = store.begin().await?;
            let epoch = tx
                .acquire_lease(
                    LEASE,
                    &self.server_id,
                    &crate::clock::render(now),
                    &crate::clock::render(until),
                )
                .await?;
            tx.commit().await?;
            sluice_store::Result::Ok(epoch)
        };
        let epoch = match acquired.await {
            Ok(epoch) => epoch.unwrap_or(0),
            Err(error) => {
                tracing::error!(%error, "cannot take or renew the scheduler's lease");
                0
            }
        };
        let previous = self.epoch.swap(epoch, std::sync::atomic::Ordering::Relaxed);
        if previous != epoch {
            match epoch {
                0 => tracing::info!(server = %self.server_id, "another server runs the scheduler"),
                _ => tracing::info!(server = %self.server_id, epoch, "this server runs the scheduler"),
            }
        }
        epoch != 0
    }

    /// The fence a scheduler step checks inside its own transaction: this server still holds
    /// the lease at the epoch it had (a paused former leader's late step writes nothing).
    async fn still_leads(&self, tx: &mut dyn sluice_store::Transaction) -> Result<bool, ApiError> {
        let epoch = self.epoch.load(std::sync::atomic::Ordering::Relaxed);
        if epoch == 0 {
            return Ok(false);
        }
        tx.holds_lease(
            LEASE,
            &self.server_id,
            epoch,
            &crate::clock::render(crate::clock::SystemClock.now()),
        )
        .await
        .map_err(crate::handlers::store_error)
    }

    /// Asks the worker to look now (a pipeline's timing changed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Completes at the next `task_may_be_queued` (create it before looking, to miss none).
    pub fn tasks_queued(&self) -> tokio::sync::futures::Notified<'_> {
        self.queued.notified()
    }

    /// Tells waiting PollForTask calls to look again.
    pub fn task_may_be_queued(&self) {
        self.queued.notify_waiters();
    }
}

/// An activated pipeline: its active definition, the graph built from it, its runtime state.
pub struct Run {
    pub version: i64,
    pub definition: Arc<PipelineDefinition>,
    pub graph: Arc<Graph>,
    pub state: State,
}

/// Decrypted, parsed and compiled definitions kept between calls (versions never change).
const COMPILED_CACHE_ENTRIES: usize = 256;
pub type Compiled = (Arc<PipelineDefinition>, Arc<Graph>);

/// The scheduler's "now": the server clock to the second (runtime times are stored in seconds).
pub fn now(app: &AppState) -> NaiveDateTime {
    let now = app.clock.now().naive_utc();
    now.with_nanosecond(0).unwrap_or(now)
}

/// The graph of a definition, or the problems that keep it from running, as a client error.
pub fn build_graph(app: &AppState, definition: &PipelineDefinition, pipeline_id: &str) -> Result<Graph, ApiError> {
    Graph::build(definition, pipeline_id, app.scheduler.settings.max_active_instances).map_err(|problems| {
        ApiError::invalid_request(format!("the definition cannot be scheduled: {}", problems.join("; ")))
    })
}

/// The active definition and its graph, compiled once per version; `None` if the pipeline was
/// never activated.
pub async fn load_compiled(
    app: &AppState,
    tx: &mut dyn Transaction,
    record: &PipelineRecord,
) -> Result<Option<(i64, Compiled)>, ApiError> {
    let Some(version) = record.active_version else {
        return Ok(None);
    };
    // Versions never change and callers hold a live pipeline's record: a cached compilation
    // needs no read of the (sealed, possibly large) definition.
    let key = (record.pipeline_id.clone(), version);
    let cached = app
        .scheduler
        .compiled
        .lock()
        .ok()
        .and_then(|cache| cache.get(&key).cloned());
    if let Some(compiled) = cached {
        return Ok(Some((version, compiled)));
    }
    let stored = tx
        .definition(&record.pipeline_id, version)
        .await
        .map_err(crate::handlers::store_error)?
        .ok_or_else(|| {
            tracing::error!(pipeline_id = %record.pipeline_id, version, "the active definition is missing");
            ApiError::internal()
        })?;
    let definition = crate::handlers::read_definition(app, tx, &record.pipeline_id, version, &stored).await?;
    let graph = build_graph(app, &definition, &record.pipeline_id)?;
    let compiled = (Arc::new(definition), Arc::new(graph));
    if let Ok(mut cache) = app.scheduler.compiled.lock() {
        if cache.len() >= COMPILED_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
    }
    Ok(Some((version, compiled)))
}

/// The run of an activated pipeline; `None` if it was never activated.
pub async fn load_run(
    app: &AppState,
    tx: &mut dyn Transaction,
    record: &PipelineRecord,
) -> Result<Option<Run>, ApiError> {
    let Some((version, (definition, graph))) = load_compiled(app, tx, record).await? else {
        return Ok(None);
    };
    let state = tx
        .runtime(&record.pipeline_id)
        .await
        .map_err(crate::handlers::store_error)?
        .ok_or_else(|| ApiError::pipeline_not_found(&record.pipeline_id))?;
    Ok(Some(Run {
        version,
        definition,
        graph,
        state,
    }))
}

/// Writes what changed and records what happened: fired actions and requeued tasks go to the
/// audit trail as service events (CloudTrail's `AwsServiceEvent`) and to the log.
pub async fn save_run(
    app: &AppState,
    tx: &mut dyn Transaction,
    pipeline_id: &str,
    definition: &PipelineDefinition,
    state: &mut State,
    events: &[Event],
) -> Result<(), ApiError> {
    let changes = state.take_changes();
    if !changes.is_empty() {
        tx.save_runtime(pipeline_id, &changes)
            .await
            .map_err(crate::handlers::store_error)?;
    }
    if changes
        .attempts
        .iter()
        .any(|attempt| attempt.status == runtime::Status::WaitingForRunner)
    {
        // Waiters start their own transaction, which waits for this one to commit.
        app.scheduler.task_may_be_queued();
    }
    let mut records = Vec::new();
    for event in events {
        match event {
            Event::ActionFired {
                action,
                action_type,
                instance,
                trigger,
            } => {
                tracing::info!(pipeline_id, instance, action, action_type, trigger, "action fired");
                if action_type == "SnsAlarm" {
                    crate::notify::enqueue(app, tx, pipeline_id, definition, state, action, instance).await?;
                }
                records.push(crate::audit::service_event(
                    app,
                    pipeline_id,
                    "ActionFired",
                    json!({ "action": action, "actionType": action_type, "instance": instance, "trigger": trigger }),
                ));
            }
            Event::TaskRequeued { attempt } => {
                tracing::warn!(
                    pipeline_id,
                    attempt,
                    "a task was not acknowledged in time and is handed out again"
                );
                records.push(crate::audit::service_event(
                    app,
                    pipeline_id,
                    "TaskRequeued",
                    json!({ "attempt": attempt }),
                ));
            }
            Event::InstanceEnded { instance, status } => {
                tracing::debug!(pipeline_id, instance, status = status.as_str(), "instance ended");
            }
        }
    }
    if let Some(pipeline) = &changes.pipeline {
        tracing::debug!(pipeline_id, state = pipeline.state.as_str(), wake_at = ?pipeline.wake_at, "pipeline runtime saved");
    }
    if !records.is_empty() {
        crate::audit::append_batch(tx, records)
            .await
            .map_err(crate::handlers::store_error)?;
    }
    Ok(())
}

/// Takes the scheduler's lease at start and renews it on every tick (apart from the loop, so a
/// long turn of work does not let it lapse), until shutdown.
pub async fn keep_lease(
    scheduler: Arc<Scheduler>,
    store: Arc<dyn sluice_store::Store>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let every = scheduler.settings.tick.min(std::time::Duration::from_secs(2));
    loop {
        scheduler.lead(store.as_ref()).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The worker: until shutdown, wakes on its tick or when told, and advances every due pipeline.
pub async fn run(app: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(app.scheduler.settings.tick) => {}
            _ = app.scheduler.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        if !app.scheduler.is_leader() {
            continue;
        }
        let now = now(&app);
        crate::notify::deliver_due(&app, now).await;
        crate::classification::start_due(&app, now.and_utc()).await;
        let due = match due_pipelines(&app, now).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "the scheduler cannot read due pipelines");
                continue;
            }
        };
        for pipeline_id in due {
            // Each step in its own task: a bug that panics on one pipeline must not stop the
            // scheduler for every other.
            let step = tokio::spawn({
                let app = app.clone();
                let pipeline_id = pipeline_id.clone();
                async move { advance_pipeline(&app, &pipeline_id, now).await }
            });
            let failure = match step.await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.message),
                Err(panic) => Some(format!("the planner panicked: {panic}")),
            };
            if let Some(message) = failure {
                tracing::error!(pipeline_id, error = %message, "the scheduler could not advance a pipeline");
                // Do not spin on a pipeline that cannot advance: look again in a minute.
                let _ = postpone(&app, &pipeline_id, now + chrono::Duration::minutes(1)).await;
            }
        }
    }
}

async fn due_pipelines(app: &AppState, now: NaiveDateTime) -> Result<Vec<String>, sluice_store::StoreError> {
    let mut tx = app.store.begin().await?;
    tx.due_pipelines(&render_naive(now), 100).await
}

async fn postpone(app: &AppState, pipeline_id: &str, until: NaiveDateTime) -> Result<(), sluice_store::StoreError> {
    let mut tx = app.store.begin().await?;
    if let Some(mut state) = tx.runtime(pipeline_id).await? {
        state.pipeline_mut().wake_at = Some(until);
        tx.save_runtime(pipeline_id, &state.take_changes()).await?;
        tx.commit().await?;
    }
    Ok(())
}

pub fn render_naive(time: NaiveDateTime) -> String {
    render(time.and_utc())
}

/// One planner step for one pipeline: service checks first (outside any transaction, they do
/// network I/O), then plan and apply in one transaction.
pub async fn advance_pipeline(app: &AppState, pipeline_id: &str, now: NaiveDateTime) -> Result<(), ApiError> {
    let requests = {
        let mut tx = app.store.begin().await.map_err(crate::handlers::store_error)?;
        let Some(record) = tx.pipeline(pipeline_id).await.map_err(crate::handlers::store_error)? else {
            return Ok(());
        };
        if record.deleted_at.is_some() {
            return Ok(());
        }
        let Some(run) = load_run(app, tx.as_mut(), &record).await? else {
            return Ok(());
        };
        checks::requests(&run, pipeline_id, now)
    };
    // All of a pipeline's checks at once: one slow endpoint costs one timeout, not one each.
    let settings = &app.scheduler.settings.checks;
    let results: HashMap<String, runtime::CheckResult> = futures_util::future::join_all(
        requests
            .iter()
            .map(|request| async move { (request.instance.clone(), checks::perform(settings, request).await) }),
    )
    .await
    .into_iter()
    .collect();

    let mut tx = app.store.begin().await.map_err(crate::handlers::store_error)?;
    if !app.scheduler.still_leads(tx.as_mut()).await? {
        return Ok(());
    }
    let Some(record) = tx.pipeline(pipeline_id).await.map_err(crate::handlers::store_error)? else {
        return Ok(());
    };
    let Some(mut run) = load_run(app, tx.as_mut(), &record).await? else {
        return Ok(());
    };
    let events = runtime::advance(
        &run.graph,
        &mut run.state,
        now,
        app.scheduler.settings.planner,
        &results,
    );
    save_run(app, tx.as_mut(), pipeline_id, &run.definition, &mut run.state, &events).await?;
    tx.commit().await.map_err(crate::handlers::store_error)?;
    Ok(())
}
