//! Pipelines at run time, as the API shows and drives them: ActivatePipeline,
//! DeactivatePipeline, SetStatus, the task-runner protocol, and instances and attempts in
//! DescribeObjects, QueryObjects and EvaluateExpression.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime};
use serde::{Deserialize, Serialize};
use sluice_core::PipelineDefinition;
use sluice_core::expression::{ComponentScope, Value};
use sluice_core::runtime::{self, Attempt, Instance, SetStatusCommand, Status, TaskOutcome};
use sluice_core::{FieldValue, validate};
use sluice_store::Transaction;
use sluice_wire::shapes::{self, Field};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal, authorize};
use crate::handlers::{
    authorize_pipeline, crypto_error, json, live_pipeline, pipeline_data_key, read_definition, store_error,
};
use crate::scheduler::{self, Run, load_run, save_run};

/// Runtime fields of an instance (and of its attempt, when evaluating as the attempt).
fn runtime_fields(pipeline_id: &str, instance: &Instance, attempt: Option<&Attempt>) -> HashMap<String, Value> {
    let mut fields = HashMap::new();
    let mut time = |name: &str, value: Option<NaiveDateTime>| {
        if let Some(value) = value {
            fields.insert(name.to_string(), Value::DateTime(value));
        }
    };
    time("@scheduledStartTime", Some(instance.scheduled_start));
    time("@scheduledEndTime", Some(instance.scheduled_end));
    time(
        "@actualStartTime",
        attempt
            .and_then(|attempt| attempt.actual_start)
            .or(instance.actual_start),
    );
    time(
        "@actualEndTime",
        attempt.and_then(|attempt| attempt.actual_end).or(instance.actual_end),
    );
    fields.insert("@pipelineId".into(), Value::String(pipeline_id.to_string()));
    fields.insert("@status".into(), Value::String(instance.status.as_str().into()));
    fields.insert(
        "@attemptCount".into(),
        Value::Integer(i64::from(instance.attempt_count)),
    );
    fields.insert("@triesLeft".into(), Value::Integer(i64::from(instance.tries_left)));
    fields.insert("@componentParent".into(), Value::Ref(instance.component.clone()));
    let id = attempt.map_or(instance.id.as_str(), |attempt| attempt.id.as_str());
    fields.insert("@id".into(), Value::String(id.to_string()));
    fields
}

/// Evaluates as an instance (or one of its attempts) of the active definition.
pub fn instance_scope<'a>(
    definition: &'a PipelineDefinition,
    pipeline_id: &'a str,
    instance: &Instance,
    attempt: Option<&Attempt>,
) -> Option<ComponentScope<'a>> {
    Some(
        ComponentScope::new(definition, pipeline_id, &instance.component)?.with_runtime(runtime_fields(
            pipeline_id,
            instance,
            attempt,
        )),
    )
}

/// What a runner reported about an attempt; stored sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub error_id: Option<String>,
    pub error_message: Option<String>,
    pub error_stack_trace: Option<String>,
}

fn string(key: &str, value: impl Into<String>) -> Field {
    Field {
        key: key.into(),
        string_value: Some(value.into()),
        ref_value: None,
    }
}

fn reference(key: &str, value: impl Into<String>) -> Field {
    Field {
        key: key.into(),
        string_value: None,
        ref_value: Some(value.into()),
    }
}

fn time_text(time: NaiveDateTime) -> String {
    runtime::render_time(time)
}

/// The component's fields as an instance carries them: its own, then inherited ones it does not
/// override (reference §h.2), references pointing at the matching instances where they exist,
/// expressions evaluated when asked.
/// How expressions in an object's fields are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evaluation {
    /// As written.
    None,
    /// Evaluated, `*` parameters and fields masked (DescribeObjects).
    Masked,
    /// Evaluated with secrets (only for the runner that holds the task).
    Revealed,
}

/// A component the task refers to that has no instances of its own (a database, a data
/// format), with its fields (own and inherited) evaluated and revealed: the runner needs them.
fn component_for_task(run: &Run, pipeline_id: &str, id: &str) -> Option<shapes::PipelineObject> {
    let definition = &run.definition;
    let object = definition.object(id)?;
    let scope = ComponentScope::new(definition, pipeline_id, id)?;
    let mut fields = Vec::new();
    for (key, value) in lineage_fields(definition, id) {
        fields.push(match value {
            FieldValue::Ref(target) => reference(key, target.clone()),
            FieldValue::String(text) if text.contains("#{") => string(
                key,
                sluice_core::expression::evaluate_template(text, &scope)
                    .map(|parts| parts.join(","))
                    .unwrap_or_else(|_| text.clone()),
            ),
            FieldValue::String(text) => string(key, text.clone()),
        });
    }
    Some(shapes::PipelineObject {
        id: object.id.clone(),
        name: object.name.clone(),
        fields,
    })
}

/// An object's fields with those inherited through `parent` and `Default` it does not set
/// itself (all values of a repeated key come from one object), `parent` left out.
fn lineage_fields<'a>(definition: &'a PipelineDefinition, id: &str) -> Vec<(&'a str, &'a FieldValue)> {
    let mut lineage = Vec::new();
    let mut current = definition.object(id);
    while let Some(object) = current {
        if lineage
            .iter()
            .any(|seen: &&sluice_core::PipelineObject| seen.id == object.id)
        {
            break;
        }
        lineage.push(object);
        current = object
            .first("parent")
            .and_then(FieldValue::as_ref_target)
            .and_then(|parent| definition.object(parent));
    }
    if let Some(default) = definition.object("Default")
        && !lineage.iter().any(|seen| seen.id == "Default")
    {
        lineage.push(default);
    }
    let mut seen_keys: Vec<&str> = Vec::new();
    let mut fields = Vec::new();
    for object in lineage {
        let keys: Vec<&str> = object.fields.iter().map(|field| field.key.as_str()).collect();
        for field in &object.fields {
            if field.key != "parent" && !seen_keys.contains(&field.key.as_str()) {
                fields.push((field.key.as_str(), &field.value));
            }
        }
        seen_keys.extend(keys);
    }
    fields
}

fn resolved_fields(
    run: &Run,
    pipeline_id: &str,
    instance: &Instance,
    attempt: Option<&Attempt>,
    evaluation: Evaluation,
) -> Vec<Field> {
    let definition = &run.definition;
    let scope = match evaluation {
        Evaluation::None => None,
        Evaluation::Masked => {
            instance_scope(definition, pipeline_id, instance, attempt).map(ComponentScope::masking_secrets)
        }
        Evaluation::Revealed => instance_scope(definition, pipeline_id, instance, attempt),
    };
    lineage_fields(definition, &instance.component)
        .into_iter()
        .map(|(key, value)| match value {
            FieldValue::Ref(target) => {
                let matching = runtime::instance_id(target, instance.scheduled_start);
                if run.state.has_instance(&matching) {
                    reference(key, matching)
                } else {
                    reference(key, target.clone())
                }
            }
            FieldValue::String(text) => {
                let value = match &scope {
                    Some(scope) if text.contains("#{") => sluice_core::expression::evaluate_template(text, scope)
                        .map(|parts| parts.join(","))
                        .unwrap_or_else(|_| text.clone()),
                    _ => text.clone(),
                };
                string(key, value)
            }
        })
        .collect()
}

/// The system fields instances and attempts share.
fn push_system_fields(
    fields: &mut Vec<Field>,
    sphere: &str,
    pipeline_id: &str,
    version: i64,
    instance: &Instance,
    status: Status,
    (actual_start, actual_end): (Option<NaiveDateTime>, Option<NaiveDateTime>),
) {
    fields.push(string("@sphere", sphere));
    fields.push(string("@pipelineId", pipeline_id));
    fields.push(string("@version", version.to_string()));
    fields.push(string("@status", status.as_str()));
    fields.push(string("@scheduledStartTime", time_text(instance.scheduled_start)));
    fields.push(string("@scheduledEndTime", time_text(instance.scheduled_end)));
    if let Some(start) = actual_start {
        fields.push(string("@actualStartTime", time_text(start)));
    }
    if let Some(end) = actual_end {
        fields.push(string("@actualEndTime", time_text(end)));
    }
}

pub fn instance_object(
    run: &Run,
    pipeline_id: &str,
    instance: &Instance,
    evaluation: Evaluation,
) -> shapes::PipelineObject {
    let mut fields = resolved_fields(run, pipeline_id, instance, None, evaluation);
    fields.push(reference("parent", instance.component.clone()));
    fields.push(reference("@componentParent", instance.component.clone()));
    if let Some(head) = &instance.head_attempt {
        fields.push(reference("@headAttempt", head.clone()));
    }
    push_system_fields(
        &mut fields,
        "INSTANCE",
        pipeline_id,
        run.version,
        instance,
        instance.status,
        (instance.actual_start, instance.actual_end),
    );
    fields.push(string("@attemptCount", instance.attempt_count.to_string()));
    fields.push(string("@triesLeft", instance.tries_left.to_string()));
    if let Some(reason) = &instance.reason {
        let key = if instance.status == Status::Canceled {
            "cancellationReason"
        } else {
            "errorMessage"
        };
        fields.push(string(key, reason.clone()));
    }
    shapes::PipelineObject {
        id: instance.id.clone(),
        name: instance.id.clone(),
        fields,
    }
}

pub fn attempt_object(
    run: &Run,
    pipeline_id: &str,
    attempt: &Attempt,
    evaluation: Evaluation,
    reports: &HashMap<String, Report>,
) -> Option<shapes::PipelineObject> {
    let instance = run.state.instance(&attempt.instance)?;
    let mut fields = resolved_fields(run, pipeline_id, instance, Some(attempt), evaluation);
    fields.push(reference("@instanceParent", instance.id.clone()));
    fields.push(reference("@componentParent", instance.component.clone()));
    push_system_fields(
        &mut fields,
        "ATTEMPT",
        pipeline_id,
        run.version,
        instance,
        attempt.status,
        (attempt.actual_start, attempt.actual_end),
    );
    if let Some(hostname) = &attempt.hostname {
        fields.push(string("hostname", hostname.clone()));
    }
    if let Some(progress) = attempt.progress_at {
        fields.push(string("reportProgressTime", time_text(progress)));
    }
    if let Some(outcome) = attempt.outcome {
        fields.push(string("attemptStatus", outcome.as_str()));
    }
    let report = reports.get(&attempt.id);
    if let Some(report) = report {
        if let Some(error_id) = &report.error_id {
            fields.push(string("errorId", error_id.clone()));
        }
        if let Some(message) = &report.error_message {
            fields.push(string("errorMessage", message.clone()));
        }
        if let Some(trace) = &report.error_stack_trace {
            fields.push(string("errorStackTrace", trace.clone()));
        }
    }
    if let Some(reason) = &attempt.reason
        && report.and_then(|report| report.error_message.as_ref()).is_none()
    {
        let key = if attempt.status == Status::Canceled {
            "cancellationReason"
        } else {
            "errorMessage"
        };
        fields.push(string(key, reason.clone()));
    }
    Some(shapes::PipelineObject {
        id: attempt.id.clone(),
        name: attempt.id.clone(),
        fields,
    })
}

/// The runner reports of a pipeline's attempts, decrypted.
pub async fn reports(
    app: &AppState,
    tx: &mut dyn Transaction,
    pipeline_id: &str,
) -> Result<HashMap<String, Report>, ApiError> {
    let sealed = tx.attempt_reports(pipeline_id).await.map_err(store_error)?;
    if sealed.is_empty() {
        return Ok(HashMap::new());
    }
    let data_key = pipeline_data_key(app, tx, pipeline_id).await?;
    let mut reports = HashMap::new();
    for (attempt_id, body) in sealed {
        let context = crate::keys::attempt_report_context(pipeline_id, &attempt_id);
        let plain = app
            .cipher
            .open_with_data_key(&data_key, pipeline_id, &context, &body)
            .map_err(crypto_error)?;
        let report: Report = serde_json::from_slice(&plain).map_err(|_| ApiError::internal())?;
        reports.insert(attempt_id, report);
    }
    Ok(reports)
}

/// Runtime fields of a component: `@status` (PENDING before activation, SCHEDULED while the
/// pipeline runs, PAUSED), its health and its active instances.
pub fn component_runtime_fields(run: Option<&Run>, component: &str) -> Vec<Field> {
    let Some(run) = run else {
        return vec![string("@status", "PENDING")];
    };
    let component_run = run.state.component(component);
    let status = match (component_run, run.state.pipeline.state) {
        (Some(found), _) if found.paused => "PAUSED",
        (Some(_), runtime::PipelineState::Scheduled) => "SCHEDULED",
        _ => "PENDING",
    };
    let mut fields = vec![string("@status", status)];
    if let Some(found) = component_run {
        if let Some(health) = found.health {
            fields.push(string("@healthStatus", health.as_str()));
        }
        if let Some(instance) = &found.health_instance {
            fields.push(reference("@healthStatusFromInstanceId", instance.clone()));
        }
        if let Some(time) = found.health_time {
            fields.push(string("@healthStatusUpdatedTime", time_text(time)));
        }
    }
    for &position in run.state.instances_of(component) {
        let instance = run.state.instance_at(position);
        if matches!(instance.status, Status::WaitingForRunner | Status::Running) {
            fields.push(reference("@activeInstances", instance.id.clone()));
        }
    }
    fields
}

/// Pipeline health (reference §h.1): ERROR if a component is, else HEALTHY if one is.
pub fn pipeline_health(components: &[runtime::ComponentRun]) -> Option<runtime::Health> {
    let healths = components.iter().filter_map(|run| run.health);
    let mut result = None;
    for health in healths {
        if health == runtime::Health::Error {
            return Some(health);
        }
        result = Some(health);
    }
    result
}

// ---- QueryObjects over instances and attempts

/// The fields selectors may name, for one instance or attempt.
fn queryable(run: &Run, id: &str) -> Option<Vec<(&'static str, String, bool)>> {
    let (instance, attempt) = match run.state.instance(id) {
        Some(instance) => (instance, None),
        None => {
            let attempt = run.state.attempt(id)?;
            (run.state.instance(&attempt.instance)?, Some(attempt))
        }
    };
    let sphere = if attempt.is_some() { "ATTEMPT" } else { "INSTANCE" };
    let status = attempt.map_or(instance.status, |attempt| attempt.status);
    let actual_start = attempt.map_or(instance.actual_start, |attempt| attempt.actual_start);
    let actual_end = attempt.map_or(instance.actual_end, |attempt| attempt.actual_end);
    let mut fields = vec![
        ("name", id.to_string(), false),
        ("@id", id.to_string(), false),
        ("@sphere", sphere.to_string(), false),
        ("@componentParent", instance.component.clone(), true),
        ("@status", status.as_str().to_string(), false),
        ("@scheduledStartTime", time_text(instance.scheduled_start), false),
        ("@scheduledEndTime", time_text(instance.scheduled_end), false),
    ];
    if attempt.is_some() {
        fields.push(("@instanceParent", instance.id.clone(), true));
    } else {
        fields.push(("parent", instance.component.clone(), true));
    }
    if let Some(start) = actual_start {
        fields.push(("@actualStartTime", time_text(start), false));
    }
    if let Some(end) = actual_end {
        fields.push(("@actualEndTime", time_text(end), false));
    }
    Some(fields)
}

const QUERYABLE: &[&str] = &[
    "name",
    "@id",
    "@sphere",
    "parent",
    "@componentParent",
    "@instanceParent",
    "@status",
    "@scheduledStartTime",
    "@scheduledEndTime",
    "@actualStartTime",
    "@actualEndTime",
];
const TIME_FIELDS: &[&str] = &[
    "@scheduledStartTime",
    "@scheduledEndTime",
    "@actualStartTime",
    "@actualEndTime",
];

/// A DateTime selector value in the canonical form (`...Z` and fractions accepted).
fn normalize_time(value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim_end_matches('Z');
    let trimmed = trimmed.split('.').next().unwrap_or(trimmed);
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S")
        .map(time_text)
        .map_err(|_| ApiError::invalid_request(format!("'{value}' is not a DateTime such as 2026-01-01T00:00:00")))
}

/// A selector checked once against the query: field and operator names, value counts.
struct Compiled {
    field: String,
    operator: String,
    values: Vec<String>,
}

fn compile(selectors: &[shapes::Selector]) -> Result<Vec<Compiled>, ApiError> {
    let mut compiled = Vec::new();
    for selector in selectors {
        let (Some(field), Some(operator)) = (&selector.field_name, &selector.operator) else {
            continue;
        };
        if !QUERYABLE.contains(&field.as_str()) {
            return Err(ApiError::invalid_request(format!(
                "selectors: '{field}' cannot be queried; use one of {}",
                QUERYABLE.join(", ")
            )));
        }
        let kind = operator.operator_type.clone().unwrap_or_else(|| "EQ".into());
        let is_time = TIME_FIELDS.contains(&field.as_str());
        let mut values = operator.values.clone();
        match kind.as_str() {
            "EQ" | "REF_EQ" if values.is_empty() => {
                return Err(ApiError::invalid_request(format!(
                    "selectors: {kind} on '{field}' needs a value"
                )));
            }
            "EQ" | "REF_EQ" => {}
            "LE" | "GE" if !is_time || values.len() != 1 => {
                return Err(ApiError::invalid_request(format!(
                    "selectors: {kind} takes one DateTime and applies to {}",
                    TIME_FIELDS.join(", ")
                )));
            }
            "BETWEEN" if !is_time || values.len() != 2 => {
                return Err(ApiError::invalid_request(format!(
                    "selectors: BETWEEN takes two DateTimes and applies to {}",
                    TIME_FIELDS.join(", ")
                )));
            }
            "LE" | "GE" | "BETWEEN" => {}
            other => {
                return Err(ApiError::invalid_request(format!(
                    "selectors: operator type '{other}' is not one of EQ, REF_EQ, LE, GE, BETWEEN"
                )));
            }
        }
        if is_time && kind != "REF_EQ" {
            values = values
                .iter()
                .map(|value| normalize_time(value))
                .collect::<Result<_, _>>()?;
        }
        if field == "@status" {
            // Upper case as stored; CANCELLED (the CLI's spelling) means CANCELED; the CLI's
            // WAITING covers both waiting statuses.
            values = values
                .iter()
                .flat_map(|value| match value.to_ascii_uppercase().as_str() {
                    "WAITING" => vec![
                        Status::WaitingOnDependencies.as_str().to_string(),
                        Status::WaitingForRunner.as_str().to_string(),
                    ],
                    upper => vec![Status::parse(upper).map_or(upper.to_string(), |status| status.as_str().to_string())],
                })
                .collect();
        }
        compiled.push(Compiled {
            field: field.clone(),
            operator: kind,
            values,
        });
    }
    Ok(compiled)
}

fn matches(fields: &[(&'static str, String, bool)], selector: &Compiled) -> bool {
    let Some((_, value, is_ref)) = fields.iter().find(|(name, _, _)| *name == selector.field) else {
        return false;
    };
    match selector.operator.as_str() {
        "EQ" => selector.values.iter().any(|wanted| wanted == value),
        "REF_EQ" => *is_ref && selector.values.iter().any(|wanted| wanted == value),
        "LE" => value.as_str() <= selector.values[0].as_str(),
        "GE" => value.as_str() >= selector.values[0].as_str(),
        "BETWEEN" => value.as_str() >= selector.values[0].as_str() && value.as_str() <= selector.values[1].as_str(),
        _ => false,
    }
}

/// Checks selectors when there is nothing to match them against (bad ones are still errors).
pub fn query_nothing(selectors: &[shapes::Selector]) -> Result<(), ApiError> {
    compile(selectors).map(|_| ())
}

/// Instance or attempt ids matching every selector, by scheduled start, then id.
pub fn query(run: &Run, sphere: &str, selectors: &[shapes::Selector]) -> Result<Vec<String>, ApiError> {
    let compiled = compile(selectors)?;
    let mut candidates: Vec<(NaiveDateTime, String)> = if sphere == "INSTANCE" {
        run.state
            .instances()
            .iter()
            .map(|instance| (instance.scheduled_start, instance.id.clone()))
            .collect()
    } else {
        run.state
            .attempts()
            .iter()
            .filter_map(|attempt| {
                let instance = run.state.instance(&attempt.instance)?;
                Some((instance.scheduled_start, attempt.id.clone()))
            })
            .collect()
    };
    candidates.sort();
    Ok(candidates
        .into_iter()
        .filter(|(_, id)| {
            let Some(fields) = queryable(run, id) else { return false };
            compiled.iter().all(|selector| matches(&fields, selector))
        })
        .map(|(_, id)| id)
        .collect())
}

// ---- ActivatePipeline, DeactivatePipeline, SetStatus

fn epoch_to_time(seconds: f64) -> Result<NaiveDateTime, ApiError> {
    if !seconds.is_finite() {
        return Err(ApiError::invalid_request("'startTimestamp' is not a time"));
    }
    DateTime::from_timestamp(seconds.floor() as i64, 0)
        .map(|time| time.naive_utc())
        .ok_or_else(|| ApiError::invalid_request("'startTimestamp' is out of range"))
}

pub async fn activate_pipeline(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::ActivatePipelineInput = parse_body(body)?;
    input.check()?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::ActivatePipeline, &record.pipeline_id).await?;
    let start_timestamp = input.start_timestamp.map(epoch_to_time).transpose()?;
    let now = scheduler::now(app);
    if let Some(start) = start_timestamp
        && (start > now + chrono::Duration::days(366) || start.and_utc().timestamp() < 0)
    {
        return Err(ApiError::invalid_request(
            "'startTimestamp' must lie between 1970 and a year from now",
        ));
    }
    if record.latest_version == 0 {
        return Err(ApiError::invalid_request(format!(
            "pipeline {} has no definition; put one with PutPipelineDefinition first",
            record.pipeline_id
        )));
    }
    let stored = tx
        .definition(&record.pipeline_id, record.latest_version)
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::internal)?;
    let mut definition = read_definition(app, tx, &record.pipeline_id, record.latest_version, &stored).await?;
    let mut version = record.latest_version;
    if stored.errored && input.parameter_values.is_empty() {
        return Err(ApiError::invalid_request(format!(
            "the definition of {} has validation errors; fix them (ValidatePipelineDefinition lists them) and put it again",
            record.pipeline_id
        )));
    }
    if !input.parameter_values.is_empty() {
        // Activation values replace stored values of the same parameters; the result is a new
        // version, so the active definition says exactly what ran.
        let values = input.values();
        definition
            .values
            .retain(|value| !values.iter().any(|new| new.id == value.id));
        definition.values.extend(values);
        let report = validate(&definition, &app.limits);
        if report.errored() {
            let messages: Vec<String> = report
                .errors
                .iter()
                .flat_map(|entry| {
                    entry
                        .messages
                        .iter()
                        .map(move |message| format!("{}: {message}", entry.id))
                })
                .collect();
            return Err(ApiError::invalid_request(format!(
                "with these parameter values the definition has errors: {}",
                messages.join("; ")
            )));
        }
        version += 1;
        crate::handlers::store_definition(app, tx, &record.pipeline_id, version, &definition, false).await?;
    }
    let unsupported = runtime::support::unsupported(&definition);
    if !unsupported.is_empty() {
        let list: Vec<String> = unsupported
            .iter()
            .map(|(id, message)| format!("{id}: {message}"))
            .collect();
        return Err(ApiError::invalid_request(format!(
            "the pipeline cannot run on Sluice yet: {}",
            list.join("; ")
        )));
    }
    crate::roles::check_definition_roles(tx, principal, &record.pipeline_id, &definition).await?;
    let graph = scheduler::build_graph(app, &definition, &record.pipeline_id)?;
    let mut state = tx
        .runtime(&record.pipeline_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::pipeline_not_found(&record.pipeline_id))?;
    let settings = &app.scheduler.settings;
    let mut events = Vec::new();
    if record.active_version.is_some_and(|active| active != version) {
        if state.pipeline.state == runtime::PipelineState::Scheduled && !graph.on_demand {
            return Err(ApiError::invalid_request(format!(
                "pipeline {} is active with definition version {}; deactivate it before activating a new definition",
                record.pipeline_id,
                record.active_version.unwrap_or_default()
            )));
        }
        events.extend(runtime::adopt_definition(&graph, &mut state, now));
    }
    runtime::activate(
        &graph,
        &mut state,
        now,
        start_timestamp,
        settings.backfill_limit,
        settings.planner,
    )
    .map_err(|error| ApiError::invalid_request(error.0))?;
    events.extend(runtime::advance(
        &graph,
        &mut state,
        now,
        settings.planner,
        &HashMap::new(),
    ));
    save_run(app, tx, &record.pipeline_id, &definition, &mut state, &events).await?;
    tx.set_active_version(&record.pipeline_id, version)
        .await
        .map_err(store_error)?;
    app.scheduler.wake();
    Ok("{}".into())
}

/// The run of a pipeline that must have been activated.
async fn activated_run(
    app: &AppState,
    tx: &mut dyn Transaction,
    record: &sluice_store::PipelineRecord,
) -> Result<Run, ApiError> {
    load_run(app, tx, record).await?.ok_or_else(|| {
        ApiError::invalid_request(format!(
            "pipeline {} was never activated: it has no instances yet",
            record.pipeline_id
        ))
    })
}

pub async fn deactivate_pipeline(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::DeactivatePipelineInput = parse_body(body)?;
    input.check()?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::DeactivatePipeline, &record.pipeline_id).await?;
    let mut run = activated_run(app, tx, &record).await?;
    runtime::deactivate(&mut run.state, input.cancel_active.unwrap_or(true))
        .map_err(|error| ApiError::invalid_request(error.0))?;
    let now = scheduler::now(app);
    let events = runtime::advance(
        &run.graph,
        &mut run.state,
        now,
        app.scheduler.settings.planner,
        &HashMap::new(),
    );
    save_run(app, tx, &record.pipeline_id, &run.definition, &mut run.state, &events).await?;
    app.scheduler.wake();
    Ok("{}".into())
}

pub async fn set_status(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::SetStatusInput = parse_body(body)?;
    input.check()?;
    let command = SetStatusCommand::parse(&input.status).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "status: '{}' is not one of PAUSE, RESUME (components), TRY_CANCEL, RERUN, MARK_FINISHED (instances and attempts)",
            input.status
        ))
    })?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::SetStatus, &record.pipeline_id).await?;
    let mut run = activated_run(app, tx, &record).await?;
    let now = scheduler::now(app);
    let definition = run.definition.clone();
    let mut events = runtime::set_status(
        &run.graph,
        &mut run.state,
        &input.object_ids,
        command,
        &|id| definition.object(id).is_some(),
        now,
    )
    .map_err(|error| ApiError::invalid_request(error.0))?;
    events.extend(runtime::advance(
        &run.graph,
        &mut run.state,
        now,
        app.scheduler.settings.planner,
        &HashMap::new(),
    ));
    save_run(app, tx, &record.pipeline_id, &run.definition, &mut run.state, &events).await?;
    app.scheduler.wake();
    Ok("{}".into())
}

// ---- The task-runner protocol

fn task_not_found() -> ApiError {
    ApiError::new(
        ErrorKind::TaskNotFoundException,
        "the task is not known or no longer handed out to this runner",
    )
}

pub async fn poll_for_task(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::PollForTaskInput = parse_body(body)?;
    input.check()?;
    crate::authz::authorize_with(
        principal,
        Operation::PollForTask,
        "*",
        &[("datapipeline:workerGroup".into(), vec![input.worker_group.clone()])],
    )?;
    let now = scheduler::now(app);
    let Some((pipeline_id, attempt_id)) = tx
        .next_task(
            &principal.identity.account_id,
            &input.worker_group,
            &scheduler::render_naive(now),
        )
        .await
        .map_err(store_error)?
    else {
        return Ok(crate::handlers::NO_TASK.to_string());
    };
    let record = live_pipeline(tx, principal, &pipeline_id).await?;
    // Leasing touches a few rows: the attempt, its instance and the instances it refers to are
    // read, not the whole pipeline, and nothing else needs planning.
    let Some((version, (definition, graph))) = scheduler::load_compiled(app, tx, &record).await? else {
        return Err(ApiError::internal());
    };
    let instance_id = attempt_id
        .rsplit_once("_Attempt=")
        .map_or(attempt_id.clone(), |(instance, _)| instance.to_string());
    let head = tx
        .runtime_part(
            &pipeline_id,
            std::slice::from_ref(&instance_id),
            std::slice::from_ref(&attempt_id),
        )
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::internal)?;
    let mut wanted = vec![instance_id.clone()];
    if let Some(instance) = head.instance(&instance_id) {
        wanted.extend(
            lineage_fields(&definition, &instance.component)
                .into_iter()
                .filter_map(|(_, value)| value.as_ref_target())
                .map(|target| runtime::instance_id(target, instance.scheduled_start)),
        );
    }
    let state = tx
        .runtime_part(&pipeline_id, &wanted, std::slice::from_ref(&attempt_id))
        .await
        .map_err(store_error)?
        .ok_or_else(ApiError::internal)?;
    let mut run = Run {
        version,
        definition,
        graph,
        state,
    };
    let task_id = crate::bootstrap::random_upper_alphanumeric(40).map_err(|_| ApiError::internal())?;
    runtime::lease(&mut run.state, &attempt_id, &task_id, input.hostname.as_deref(), now);
    // The scheduler must look again if the runner does not acknowledge in time.
    let deadline = now + app.scheduler.settings.planner.ack_timeout;
    if run.state.pipeline.wake_at.is_none_or(|wake| wake > deadline) {
        run.state.pipeline_mut().wake_at = Some(deadline);
    }
    // The runner gets the attempt, its instance and the instances it refers to, evaluated:
    // this is where `*` fields are revealed, to the task that needs them.
    let mut objects = BTreeMap::new();
    let mut credentials = None;
    let reports = HashMap::new();
    if let Some(attempt) = run.state.attempt(&attempt_id)
        && let Some(object) = attempt_object(&run, &pipeline_id, attempt, Evaluation::Revealed, &reports)
    {
        let referenced: Vec<String> = object
            .fields
            .iter()
            .filter_map(|field| field.ref_value.clone())
            .collect();
        objects.insert(object.id.clone(), object);
        if let Some(instance) = run.state.instance(&attempt.instance) {
            objects.insert(
                instance.id.clone(),
                instance_object(&run, &pipeline_id, instance, Evaluation::Revealed),
            );
        }
        // Then what those objects need to be used: a data node's data format and database, an
        // EmrCluster's configurations and their properties (nested configurations one deeper).
        let mut pending: Vec<String> = referenced;
        let mut depth = 0;
        while !pending.is_empty() && depth < 5 {
            let mut next = Vec::new();
            for id in pending {
                if objects.contains_key(&id) {
                    continue;
                }
                let object = if let Some(instance) = run.state.instance(&id) {
                    instance_object(&run, &pipeline_id, instance, Evaluation::Revealed)
                } else if let Some(component) = component_for_task(&run, &pipeline_id, &id) {
                    component
                } else {
                    continue;
                };
                next.extend(
                    object
                        .fields
                        .iter()
                        .filter(|field| {
                            matches!(
                                field.key.as_str(),
                                "dataFormat" | "database" | "configuration" | "property"
                            )
                        })
                        .filter_map(|field| field.ref_value.clone()),
                );
                objects.insert(id, object);
            }
            pending = next;
            depth += 1;
        }
        if let Some(object) = secrets_for_masking(&run.definition, &objects) {
            objects.insert(object.id.clone(), object);
        }
        // The task's own credentials: a session of its resourceRole that ends with the attempt.
        if let Some(role_name) = crate::roles::task_role_name(&objects, &attempt_id) {
            let timeout = run.graph.node(&attempt.component).and_then(|node| node.attempt_timeout);
            credentials = crate::roles::credentials_for_task(
                app,
                tx,
                principal,
                &pipeline_id,
                &attempt_id,
                &role_name,
                timeout.map(|timeout| timeout.num_seconds()),
            )
            .await?;
        }
    }
    let changes = run.state.take_changes();
    tx.save_runtime(&pipeline_id, &changes).await.map_err(store_error)?;
    json(&shapes::PollForTaskOutput {
        task_object: Some(shapes::TaskObject {
            task_id,
            pipeline_id,
            attempt_id,
            objects,
            sluice_task_credentials: credentials,
        }),
    })
}

/// The id of the object that tells a runner which values in its task are secret.
pub const TASK_SECRETS_ID: &str = "@SluiceTaskSecrets";

/// The values of `*` parameters that the task's evaluated fields contain (a command with
/// `#{*myPass}` in it, say), as `*value` fields of one extra object: a runner masks every `*`
/// value it holds in logs and reported errors, and once expressions are evaluated it could not
/// tell these apart. Only values the task already holds are named; none when there are none.
fn secrets_for_masking(
    definition: &sluice_core::PipelineDefinition,
    objects: &BTreeMap<String, shapes::PipelineObject>,
) -> Option<shapes::PipelineObject> {
    let candidates = definition
        .values
        .iter()
        .filter(|value| sluice_core::secrets::is_secret_key(&value.id))
        .map(|value| value.value.as_str())
        .chain(
            definition
                .parameters
                .iter()
                .filter(|parameter| sluice_core::secrets::is_secret_key(&parameter.id))
                .flat_map(|parameter| parameter.attributes("default")),
        )
        .filter(|value| value.len() >= 4);
    let mut held: Vec<&str> = Vec::new();
    for candidate in candidates {
        let in_task = objects.values().flat_map(|object| object.fields.iter()).any(|field| {
            field
                .string_value
                .as_deref()
                .is_some_and(|text| text.contains(candidate))
        });
        if in_task && !held.contains(&candidate) {
            held.push(candidate);
        }
    }
    if held.is_empty() {
        return None;
    }
    Some(shapes::PipelineObject {
        id: TASK_SECRETS_ID.to_string(),
        name: TASK_SECRETS_ID.to_string(),
        fields: held
            .into_iter()
            .map(|value| string("*value", value.to_string()))
            .collect(),
    })
}

/// The pipeline and run holding a task, after authorizing the call against the pipeline.
/// A task that is not known: a caller who may not report on tasks at all learns nothing more
/// than that (AccessDenied), anyone else hears it is not known.
fn unknown_task(principal: &Principal, operation: Operation) -> ApiError {
    match authorize(principal, operation, "*") {
        Err(denied) => denied,
        Ok(()) => task_not_found(),
    }
}

async fn task_run(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    task_id: &str,
) -> Result<(String, Run), ApiError> {
    let pipeline_id = tx
        .task_pipeline(task_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| unknown_task(principal, operation))?;
    let record = live_pipeline(tx, principal, &pipeline_id)
        .await
        .map_err(|_| unknown_task(principal, operation))?;
    authorize_pipeline(tx, principal, operation, &pipeline_id).await?;
    Ok((pipeline_id, activated_run(app, tx, &record).await?))
}

/// ReportTaskProgress touches one row: it neither loads nor plans the pipeline (the planner
/// reads the new progress time at its next look).
pub async fn report_task_progress(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::ReportTaskProgressInput = parse_body(body)?;
    input.check()?;
    let now = scheduler::render_naive(scheduler::now(app));
    let (pipeline_id, status) = tx
        .report_task_progress(&principal.identity.account_id, &input.task_id, &now)
        .await
        .map_err(store_error)?
        .ok_or_else(|| unknown_task(principal, Operation::ReportTaskProgress))?;
    authorize_pipeline(tx, principal, Operation::ReportTaskProgress, &pipeline_id).await?;
    let canceled = match Status::parse(&status) {
        Some(Status::Running) => false,
        Some(Status::Canceled) => true,
        _ => return Err(task_not_found()),
    };
    json(&shapes::ReportTaskProgressOutput { canceled })
}

pub async fn set_task_status(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::SetTaskStatusInput = parse_body(body)?;
    input.check()?;
    let outcome = TaskOutcome::parse(&input.task_status).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "taskStatus: '{}' is not one of FINISHED, FAILED, FALSE",
            input.task_status
        ))
    })?;
    if input
        .error_id
        .as_deref()
        .is_some_and(|error_id| error_id.starts_with("Service_"))
    {
        return Err(ApiError::invalid_request(
            "errorId: ids starting with 'Service_' are reserved for the service",
        ));
    }
    let (pipeline_id, mut run) = task_run(app, tx, principal, Operation::SetTaskStatus, &input.task_id).await?;
    let attempt_id = run
        .state
        .attempt_by_task(&input.task_id)
        .map(|attempt| attempt.id.clone())
        .ok_or_else(task_not_found)?;
    let component = run
        .state
        .attempt_by_task(&input.task_id)
        .map(|attempt| attempt.component.clone())
        .unwrap_or_default();
    let is_precondition = run
        .graph
        .node(&component)
        .is_some_and(|node| node.role == runtime::NodeRole::Precondition);
    if outcome == TaskOutcome::False && !is_precondition {
        return Err(ApiError::invalid_request(
            "taskStatus: FALSE is for preconditions; an activity finishes or fails",
        ));
    }
    let now = scheduler::now(app);
    runtime::finish_task(&mut run.state, &input.task_id, outcome, now).map_err(|_| task_not_found())?;
    // The attempt's role session ends with it.
    tx.delete_task_sessions(&pipeline_id, &attempt_id)
        .await
        .map_err(store_error)?;
    if input.error_id.is_some() || input.error_message.is_some() || input.error_stack_trace.is_some() {
        let report = Report {
            error_id: input.error_id,
            error_message: input.error_message,
            error_stack_trace: input.error_stack_trace,
        };
        let plain = serde_json::to_vec(&report).map_err(|_| ApiError::internal())?;
        let data_key = pipeline_data_key(app, tx, &pipeline_id).await?;
        let sealed = app
            .cipher
            .seal_with_data_key(
                &data_key,
                &pipeline_id,
                &crate::keys::attempt_report_context(&pipeline_id, &attempt_id),
                &plain,
            )
            .map_err(crypto_error)?;
        tx.put_attempt_report(&pipeline_id, &attempt_id, &sealed)
            .await
            .map_err(store_error)?;
    }
    let events = runtime::advance(
        &run.graph,
        &mut run.state,
        now,
        app.scheduler.settings.planner,
        &HashMap::new(),
    );
    save_run(app, tx, &pipeline_id, &run.definition, &mut run.state, &events).await?;
    app.scheduler.wake();
    Ok("{}".into())
}

pub async fn report_task_runner_heartbeat(principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: shapes::ReportTaskRunnerHeartbeatInput = parse_body(body)?;
    input.check()?;
    authorize(principal, Operation::ReportTaskRunnerHeartbeat, "*")?;
    tracing::debug!(taskrunner_id = %input.taskrunner_id, worker_group = ?input.worker_group, "task runner heartbeat");
    json(&shapes::ReportTaskRunnerHeartbeatOutput { terminate: false })
}
