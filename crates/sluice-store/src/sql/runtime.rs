// The scheduler's tables on SQLite: loading a pipeline's runtime state and writing back what
// changed, in multi-row statements so a large plan costs few round trips.

use chrono::NaiveDateTime;
use sluice_core::runtime::{
    Attempt, Changes, ComponentRun, Health, Instance, PipelineRun, PipelineState, State, Status, TaskOutcome,
};
use sqlx::Row;

use super::{Conn, Db, DbRow, dynamic, q};

use crate::{Result, StoreError};

const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";
/// Rows per multi-row statement: 17 parameters each, well under SQLite's 32,766.
const CHUNK: usize = 500;

fn text(time: NaiveDateTime) -> String {
    time.format(TIME_FORMAT).to_string()
}

fn optional_text(time: Option<NaiveDateTime>) -> Option<String> {
    time.map(text)
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} '{value}' is not readable"))
}

fn time(row: &DbRow, column: &str) -> Result<NaiveDateTime> {
    let value: String = row.try_get(column)?;
    NaiveDateTime::parse_from_str(&value, TIME_FORMAT).map_err(|_| corrupt(column, &value))
}

fn optional_time(row: &DbRow, column: &str) -> Result<Option<NaiveDateTime>> {
    let value: Option<String> = row.try_get(column)?;
    value
        .map(|value| NaiveDateTime::parse_from_str(&value, TIME_FORMAT).map_err(|_| corrupt(column, &value)))
        .transpose()
}

fn status(row: &DbRow) -> Result<Status> {
    let value: String = row.try_get("status")?;
    Status::parse(&value).ok_or_else(|| corrupt("status", &value))
}

fn count(row: &DbRow, column: &str) -> Result<u32> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| corrupt(column, &value.to_string()))
}

const INSTANCE_COLUMNS: &str = "instance_id, component_id, scheduled_start, scheduled_end, status, attempt_count, tries_left, actual_start, actual_end, head_attempt, created_at, late_fired, rerun, next_check_at, reason";
const ATTEMPT_COLUMNS: &str = "attempt_id, instance_id, component_id, number, status, queue, available_at, task_id, leased_at, acknowledged, progress_at, actual_start, actual_end, hostname, outcome, reason";

fn pipeline_from_row(row: &DbRow) -> Result<PipelineRun> {
    let state_text: String = row.try_get("state")?;
    Ok(PipelineRun {
        state: PipelineState::parse(&state_text).ok_or_else(|| corrupt("pipeline state", &state_text))?,
        first_activation: optional_time(row, "first_activation_at")?,
        activated_at: optional_time(row, "activated_at")?,
        cancel_active: row.try_get("cancel_active")?,
        wake_at: optional_time(row, "wake_at")?,
    })
}

fn instance_from_row(row: &DbRow) -> Result<Instance> {
    Ok(Instance {
        id: row.try_get("instance_id")?,
        component: row.try_get("component_id")?,
        scheduled_start: time(row, "scheduled_start")?,
        scheduled_end: time(row, "scheduled_end")?,
        status: status(row)?,
        attempt_count: count(row, "attempt_count")?,
        tries_left: count(row, "tries_left")?,
        actual_start: optional_time(row, "actual_start")?,
        actual_end: optional_time(row, "actual_end")?,
        head_attempt: row.try_get("head_attempt")?,
        created_at: time(row, "created_at")?,
        late_fired: row.try_get("late_fired")?,
        rerun: row.try_get("rerun")?,
        next_check_at: optional_time(row, "next_check_at")?,
        reason: row.try_get("reason")?,
    })
}

fn attempt_from_row(row: &DbRow) -> Result<Attempt> {
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(Attempt {
        id: row.try_get("attempt_id")?,
        instance: row.try_get("instance_id")?,
        component: row.try_get("component_id")?,
        number: count(row, "number")?,
        status: status(row)?,
        queue: row.try_get("queue")?,
        available_at: time(row, "available_at")?,
        task_id: row.try_get("task_id")?,
        leased_at: optional_time(row, "leased_at")?,
        acknowledged: row.try_get("acknowledged")?,
        progress_at: optional_time(row, "progress_at")?,
        actual_start: optional_time(row, "actual_start")?,
        actual_end: optional_time(row, "actual_end")?,
        hostname: row.try_get("hostname")?,
        outcome: outcome
            .map(|value| TaskOutcome::parse(&value).ok_or_else(|| corrupt("task outcome", &value)))
            .transpose()?,
        reason: row.try_get("reason")?,
    })
}

/// The rows of `table` of a pipeline whose `id_column` is one of `ids` (static names only).
async fn rows_by_id(
    connection: &mut Conn,
    columns: &'static str,
    table: &'static str,
    id_column: &'static str,
    pipeline_id: &str,
    ids: &[String],
) -> Result<Vec<DbRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut builder = sqlx::QueryBuilder::<Db>::new(format!("SELECT {columns} FROM {table} WHERE pipeline_id = "));
    builder
        .push_bind(pipeline_id.to_string())
        .push(format!(" AND {id_column} IN ("));
    let mut separated = builder.separated(", ");
    for id in ids {
        separated.push_bind(id.clone());
    }
    builder.push(")");
    Ok(builder.build().fetch_all(&mut *connection).await?)
}

/// Part of a pipeline's runtime state: the pipeline's facts, the named instances and attempts
/// (those that exist), no component runs. For calls that touch a few rows.
pub(crate) async fn load_part(
    connection: &mut Conn,
    pipeline_id: &str,
    instance_ids: &[String],
    attempt_ids: &[String],
) -> Result<Option<State>> {
    let Some(row) = sqlx::query(
        q("SELECT state, first_activation_at, activated_at, cancel_active, wake_at FROM pipelines WHERE pipeline_id = ? AND deleted_at IS NULL"),
    )
    .bind(pipeline_id)
    .fetch_optional(&mut *connection)
    .await?
    else {
        return Ok(None);
    };
    let pipeline = pipeline_from_row(&row)?;
    let instances = rows_by_id(
        connection,
        INSTANCE_COLUMNS,
        "instances",
        "instance_id",
        pipeline_id,
        instance_ids,
    )
    .await?
    .iter()
    .map(instance_from_row)
    .collect::<Result<Vec<_>>>()?;
    let attempts = rows_by_id(
        connection,
        ATTEMPT_COLUMNS,
        "attempts",
        "attempt_id",
        pipeline_id,
        attempt_ids,
    )
    .await?
    .iter()
    .map(attempt_from_row)
    .collect::<Result<Vec<_>>>()?;
    Ok(Some(State::new(pipeline, Vec::new(), instances, attempts)))
}

pub(crate) async fn load(connection: &mut Conn, pipeline_id: &str) -> Result<Option<State>> {
    let Some(row) = sqlx::query(
        q("SELECT state, first_activation_at, activated_at, cancel_active, wake_at FROM pipelines WHERE pipeline_id = ? AND deleted_at IS NULL"),
    )
    .bind(pipeline_id)
    .fetch_optional(&mut *connection)
    .await?
    else {
        return Ok(None);
    };
    let pipeline = pipeline_from_row(&row)?;

    let components = component_runs(&mut *connection, pipeline_id).await?;

    let rows = sqlx::query(
        q("SELECT instance_id, component_id, scheduled_start, scheduled_end, status, attempt_count, tries_left, actual_start, actual_end, head_attempt, created_at, late_fired, rerun, next_check_at, reason FROM instances WHERE pipeline_id = ?"),
    )
    .bind(pipeline_id)
    .fetch_all(&mut *connection)
    .await?;
    let instances = rows.iter().map(instance_from_row).collect::<Result<Vec<_>>>()?;

    let rows = sqlx::query(
        q("SELECT attempt_id, instance_id, component_id, number, status, queue, available_at, task_id, leased_at, acknowledged, progress_at, actual_start, actual_end, hostname, outcome, reason FROM attempts WHERE pipeline_id = ? ORDER BY instance_id, number"),
    )
    .bind(pipeline_id)
    .fetch_all(&mut *connection)
    .await?;
    let attempts = rows.iter().map(attempt_from_row).collect::<Result<Vec<_>>>()?;
    Ok(Some(State::new(pipeline, components, instances, attempts)))
}

pub(crate) async fn component_runs(connection: &mut Conn, pipeline_id: &str) -> Result<Vec<ComponentRun>> {
    // In the order they were first written (the definition's).
    let rows = sqlx::query(sqlx::AssertSqlSafe(dynamic(format!(
        "SELECT component_id, next_index, exhausted, paused, health, health_instance, health_time FROM component_runs WHERE pipeline_id = ? ORDER BY {}",
        super::INSERTION_ORDER
    ))))
    .bind(pipeline_id)
    .fetch_all(&mut *connection)
    .await?;
    let mut components = Vec::with_capacity(rows.len());
    for row in &rows {
        let health: Option<String> = row.try_get("health")?;
        components.push(ComponentRun {
            component: row.try_get("component_id")?,
            next_index: count(row, "next_index")?,
            exhausted: row.try_get("exhausted")?,
            paused: row.try_get("paused")?,
            health: health
                .map(|value| Health::parse(&value).ok_or_else(|| corrupt("health", &value)))
                .transpose()?,
            health_instance: row.try_get("health_instance")?,
            health_time: optional_time(row, "health_time")?,
        });
    }

    Ok(components)
}

pub(crate) async fn save(connection: &mut Conn, pipeline_id: &str, changes: &Changes) -> Result<()> {
    if let Some(pipeline) = &changes.pipeline {
        sqlx::query(
            q("UPDATE pipelines SET state = ?, first_activation_at = ?, activated_at = ?, cancel_active = ?, wake_at = ? WHERE pipeline_id = ?"),
        )
        .bind(pipeline.state.as_str())
        .bind(optional_text(pipeline.first_activation))
        .bind(optional_text(pipeline.activated_at))
        .bind(pipeline.cancel_active)
        .bind(optional_text(pipeline.wake_at))
        .bind(pipeline_id)
        .execute(&mut *connection)
        .await?;
    }
    for chunk in changes.components.chunks(CHUNK) {
        let mut builder = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO component_runs (pipeline_id, component_id, next_index, exhausted, paused, health, health_instance, health_time) ",
        );
        builder.push_values(chunk, |mut row, run| {
            row.push_bind(pipeline_id.to_string())
                .push_bind(run.component.clone())
                .push_bind(i64::from(run.next_index))
                .push_bind(run.exhausted)
                .push_bind(run.paused)
                .push_bind(run.health.map(Health::as_str))
                .push_bind(run.health_instance.clone())
                .push_bind(optional_text(run.health_time));
        });
        builder.push(" ON CONFLICT (pipeline_id, component_id) DO UPDATE SET next_index = excluded.next_index, exhausted = excluded.exhausted, paused = excluded.paused, health = excluded.health, health_instance = excluded.health_instance, health_time = excluded.health_time");
        builder.build().execute(&mut *connection).await?;
    }
    for chunk in changes.instances.chunks(CHUNK) {
        let mut builder = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO instances (pipeline_id, instance_id, component_id, scheduled_start, scheduled_end, status, attempt_count, tries_left, actual_start, actual_end, head_attempt, created_at, late_fired, rerun, next_check_at, reason) ",
        );
        builder.push_values(chunk, |mut row, instance| {
            row.push_bind(pipeline_id.to_string())
                .push_bind(instance.id.clone())
                .push_bind(instance.component.clone())
                .push_bind(text(instance.scheduled_start))
                .push_bind(text(instance.scheduled_end))
                .push_bind(instance.status.as_str())
                .push_bind(i64::from(instance.attempt_count))
                .push_bind(i64::from(instance.tries_left))
                .push_bind(optional_text(instance.actual_start))
                .push_bind(optional_text(instance.actual_end))
                .push_bind(instance.head_attempt.clone())
                .push_bind(text(instance.created_at))
                .push_bind(instance.late_fired)
                .push_bind(instance.rerun)
                .push_bind(optional_text(instance.next_check_at))
                .push_bind(instance.reason.clone());
        });
        builder.push(" ON CONFLICT (pipeline_id, instance_id) DO UPDATE SET component_id = excluded.component_id, scheduled_start = excluded.scheduled_start, scheduled_end = excluded.scheduled_end, status = excluded.status, attempt_count = excluded.attempt_count, tries_left = excluded.tries_left, actual_start = excluded.actual_start, actual_end = excluded.actual_end, head_attempt = excluded.head_attempt, created_at = excluded.created_at, late_fired = excluded.late_fired, rerun = excluded.rerun, next_check_at = excluded.next_check_at, reason = excluded.reason");
        builder.build().execute(&mut *connection).await?;
    }
    for chunk in changes.attempts.chunks(CHUNK) {
        let mut builder = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO attempts (pipeline_id, attempt_id, instance_id, component_id, number, status, queue, available_at, task_id, leased_at, acknowledged, progress_at, actual_start, actual_end, hostname, outcome, reason) ",
        );
        builder.push_values(chunk, |mut row, attempt| {
            row.push_bind(pipeline_id.to_string())
                .push_bind(attempt.id.clone())
                .push_bind(attempt.instance.clone())
                .push_bind(attempt.component.clone())
                .push_bind(i64::from(attempt.number))
                .push_bind(attempt.status.as_str())
                .push_bind(attempt.queue.clone())
                .push_bind(text(attempt.available_at))
                .push_bind(attempt.task_id.clone())
                .push_bind(optional_text(attempt.leased_at))
                .push_bind(attempt.acknowledged)
                .push_bind(optional_text(attempt.progress_at))
                .push_bind(optional_text(attempt.actual_start))
                .push_bind(optional_text(attempt.actual_end))
                .push_bind(attempt.hostname.clone())
                .push_bind(attempt.outcome.map(TaskOutcome::as_str))
                .push_bind(attempt.reason.clone());
        });
        builder.push(" ON CONFLICT (pipeline_id, attempt_id) DO UPDATE SET instance_id = excluded.instance_id, component_id = excluded.component_id, number = excluded.number, status = excluded.status, queue = excluded.queue, available_at = excluded.available_at, task_id = excluded.task_id, leased_at = excluded.leased_at, acknowledged = excluded.acknowledged, progress_at = excluded.progress_at, actual_start = excluded.actual_start, actual_end = excluded.actual_end, hostname = excluded.hostname, outcome = excluded.outcome, reason = excluded.reason");
        builder.build().execute(&mut *connection).await?;
    }
    Ok(())
}

pub(crate) async fn due_pipelines(connection: &mut Conn, now: &str, limit: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        q("SELECT pipeline_id FROM pipelines WHERE deleted_at IS NULL AND wake_at IS NOT NULL AND wake_at <= ? ORDER BY wake_at LIMIT ?"),
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?)
}

pub(crate) async fn next_task(
    connection: &mut Conn,
    account_id: &str,
    queue: &str,
    now: &str,
) -> Result<Option<(String, String)>> {
    // One queue, or (for a runner standing in for every resource) every resource queue: a
    // range over the queue names, so the index still applies.
    let condition = if queue == sluice_core::runtime::ANY_RESOURCE_QUEUE {
        "a.queue >= 'runsOn:' AND a.queue < 'runsOn;'"
    } else {
        "a.queue = ?"
    };
    let statement = format!(
        "SELECT a.pipeline_id, a.attempt_id FROM attempts a JOIN pipelines p ON p.pipeline_id = a.pipeline_id WHERE {condition} AND a.status = 'WAITING_FOR_RUNNER' AND a.available_at <= ? AND p.state = 'SCHEDULED' AND p.deleted_at IS NULL AND p.account_id = ? ORDER BY a.available_at, a.attempt_id LIMIT 1{}",
        super::CLAIM_LOCK
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(dynamic(statement)));
    if queue != sluice_core::runtime::ANY_RESOURCE_QUEUE {
        query = query.bind(queue);
    }
    let row = query
        .bind(now)
        .bind(account_id)
        .fetch_optional(&mut *connection)
        .await?;
    row.map(|row| Ok((row.try_get("pipeline_id")?, row.try_get("attempt_id")?)))
        .transpose()
}

pub(crate) async fn report_task_progress(
    connection: &mut Conn,
    account_id: &str,
    task_id: &str,
    now: &str,
) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        q("SELECT a.pipeline_id, a.status FROM attempts a JOIN pipelines p ON p.pipeline_id = a.pipeline_id WHERE a.task_id = ? AND p.account_id = ? AND p.deleted_at IS NULL"),
    )
    .bind(task_id)
    .bind(account_id)
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (pipeline_id, status): (String, String) = (row.try_get("pipeline_id")?, row.try_get("status")?);
    if status == Status::Running.as_str() {
        sqlx::query(q("UPDATE attempts SET acknowledged = TRUE, progress_at = ? WHERE pipeline_id = ? AND task_id = ?"))
            .bind(now)
            .bind(&pipeline_id)
            .bind(task_id)
            .execute(&mut *connection)
            .await?;
    }
    Ok(Some((pipeline_id, status)))
}

pub(crate) async fn task_pipeline(connection: &mut Conn, task_id: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(q("SELECT pipeline_id FROM attempts WHERE task_id = ?"))
        .bind(task_id)
        .fetch_optional(&mut *connection)
        .await?)
}

/// Deleting a pipeline drops its run history with it.
pub(crate) async fn delete(connection: &mut Conn, pipeline_id: &str) -> Result<()> {
    for statement in [
        "DELETE FROM attempt_reports WHERE pipeline_id = ?",
        "DELETE FROM notifications WHERE pipeline_id = ?",
        "DELETE FROM attempts WHERE pipeline_id = ?",
        "DELETE FROM instances WHERE pipeline_id = ?",
        "DELETE FROM component_runs WHERE pipeline_id = ?",
        "UPDATE pipelines SET wake_at = NULL WHERE pipeline_id = ?",
    ] {
        sqlx::query(q(statement))
            .bind(pipeline_id)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}
