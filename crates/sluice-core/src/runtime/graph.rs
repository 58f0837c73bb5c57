//! The runnable objects of an activated definition and how they depend on each other
//! (reference §h.6), with every scheduling field resolved through `parent` and `Default`.

use std::collections::HashMap;

use chrono::Duration;

use crate::catalogue::{Category, type_spec};
use crate::expression::{ComponentScope, Scope, Value};
use crate::model::PipelineDefinition;
use crate::schedule::{Schedule, ScheduleType};
use crate::values::{Period, PeriodUnit, parse_integer};

/// AWS's hard limit on retries (reference §h.4).
pub const MAX_RETRIES: u32 = 5;
/// `retryDelay` when the definition sets none: AWS's default.
pub const DEFAULT_RETRY_DELAY_MINUTES: i64 = 10;
/// Timeouts and delays longer than this are refused: date arithmetic must never overflow.
pub const MAX_TIMEOUT_MINUTES: u64 = 10 * 366 * 24 * 60;
/// `maxActiveInstances` of an on-demand pipeline when unset (reference §g.2).
pub const DEFAULT_ONDEMAND_MAX_ACTIVE: u32 = 1;

/// Queues of work that runs on a resource (`runsOn`) are named `runsOn:<pipelineId>/<resourceId>`.
pub const RESOURCE_QUEUE_PREFIX: &str = "runsOn:";
/// A worker group that polls every resource queue of its account: a runner standing in for every
/// pipeline's Ec2Resource (what `sluice serve --run-resources` polls).
pub const ANY_RESOURCE_QUEUE: &str = "runsOn:*";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Activity,
    DataNode,
    Resource,
    Precondition,
}

/// A precondition the service evaluates itself (reference §h.6), against the object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceCheck {
    /// `s3Key` exists.
    S3KeyExists,
    /// Something exists under `s3Prefix`.
    S3PrefixNotEmpty,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub type_name: String,
    pub role: NodeRole,
    /// `None` on an on-demand pipeline.
    pub schedule: Option<Schedule>,
    pub schedule_type: ScheduleType,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub depends_on: Vec<String>,
    pub preconditions: Vec<String>,
    pub runs_on: Option<String>,
    /// Where its attempts wait for a runner (activities and runner-evaluated preconditions): the
    /// `workerGroup`, or `runsOn:<pipelineId>/<resourceId>`.
    pub queue: Option<String>,
    pub max_active: u32,
    pub maximum_retries: u32,
    pub retry_delay: Duration,
    pub attempt_timeout: Option<Duration>,
    pub report_progress_timeout: Option<Duration>,
    pub late_after: Option<Duration>,
    pub precondition_timeout: Option<Duration>,
    pub terminate_after: Option<Duration>,
    pub on_success: Vec<String>,
    pub on_fail: Vec<String>,
    pub on_late: Vec<String>,
    pub cascade: bool,
    pub service_check: Option<ServiceCheck>,
    /// Activities writing this data node (filled in for data nodes).
    pub producers: Vec<String>,
    /// Activities running on this resource (filled in for resources).
    pub consumers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub nodes: Vec<Node>,
    index: HashMap<String, usize>,
    /// Action objects (`SnsAlarm`, `Terminate`) by id, with their type.
    pub actions: HashMap<String, String>,
    pub on_demand: bool,
}

/// The length of a period as a duration, for timeouts and delays: months count 30 days and years
/// 365 (schedules use calendar arithmetic instead, see `schedule`).
pub fn period_duration(period: Period) -> Duration {
    let count = i64::from(period.count);
    match period.unit {
        PeriodUnit::Minute => Duration::minutes(count),
        PeriodUnit::Hour => Duration::hours(count),
        PeriodUnit::Day => Duration::days(count),
        PeriodUnit::Week => Duration::weeks(count),
        PeriodUnit::Month => Duration::days(30 * count),
        PeriodUnit::Year => Duration::days(365 * count),
    }
}

struct Fields<'a> {
    scope: ComponentScope<'a>,
    object_id: &'a str,
}

impl Fields<'_> {
    fn value(&self, name: &str) -> Option<Value> {
        self.scope.resolve(name)
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::List(values) => values.first().map(Value::render),
            Value::Ref(_) => None,
            other => Some(other.render()),
        }
    }

    fn refs(&self, name: &str) -> Vec<String> {
        match self.value(name) {
            Some(Value::Ref(target)) => vec![target],
            Some(Value::List(values)) => values
                .into_iter()
                .filter_map(|value| match value {
                    Value::Ref(target) => Some(target),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn period(&self, name: &str, problems: &mut Vec<String>) -> Option<Duration> {
        let text = self.text(name)?;
        match Period::parse(&text) {
            Ok(period) if period.approximate_minutes() <= MAX_TIMEOUT_MINUTES => Some(period_duration(period)),
            Ok(_) => {
                problems.push(format!(
                    "{}: field '{name}': '{text}' is longer than the longest Sluice accepts, 10 years",
                    self.object_id
                ));
                None
            }
            Err(message) => {
                problems.push(format!("{}: field '{name}': {message}", self.object_id));
                None
            }
        }
    }

    fn integer(&self, name: &str, problems: &mut Vec<String>) -> Option<i64> {
        let text = self.text(name)?;
        match parse_integer(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                problems.push(format!("{}: field '{name}': {message}", self.object_id));
                None
            }
        }
    }
}

impl Graph {
    /// Builds the graph of a definition that passed validation, with its parameters (activation
    /// values included) applied. Problems name the object and the field.
    pub fn build(definition: &PipelineDefinition, pipeline_id: &str, max_active: u32) -> Result<Graph, Vec<String>> {
        let mut problems = Vec::new();
        let mut nodes = Vec::new();
        let mut actions = HashMap::new();
        let default_type = ComponentScope::new(definition, pipeline_id, "Default")
            .and_then(|scope| scope.resolve("scheduleType"))
            .map(|value| value.render());
        let on_demand = default_type
            .as_deref()
            .is_some_and(|text| text.eq_ignore_ascii_case("ondemand"));

        for object in &definition.objects {
            let Some(scope) = ComponentScope::new(definition, pipeline_id, &object.id) else {
                continue;
            };
            let fields = Fields {
                scope,
                object_id: &object.id,
            };
            let Some(type_name) = fields.text("type") else {
                continue;
            };
            let Some(spec) = type_spec(&type_name) else {
                continue;
            };
            let role = match spec.category {
                Category::Activity => NodeRole::Activity,
                Category::DataNode => NodeRole::DataNode,
                Category::Resource => NodeRole::Resource,
                Category::Precondition => NodeRole::Precondition,
                Category::Action => {
                    actions.insert(object.id.clone(), type_name.clone());
                    continue;
                }
                _ => continue,
            };
            let schedule_type = if on_demand {
                ScheduleType::OnDemand
            } else {
                match ScheduleType::parse(fields.text("scheduleType").as_deref()) {
                    Ok(ScheduleType::OnDemand) => {
                        problems.push(format!(
                            "{}: field 'scheduleType': ondemand applies to the whole pipeline and must be set on Default",
                            object.id
                        ));
                        ScheduleType::Cron
                    }
                    Ok(schedule_type) => schedule_type,
                    Err(message) => {
                        problems.push(format!("{}: field 'scheduleType': {message}", object.id));
                        ScheduleType::Cron
                    }
                }
            };
            // Resources ignore scheduleType: they are created at the start of their interval.
            let schedule_type = if role == NodeRole::Resource && !on_demand {
                ScheduleType::Cron
            } else {
                schedule_type
            };
            let schedule = if on_demand {
                None
            } else {
                match fields.refs("schedule").first() {
                    None => {
                        problems.push(format!(
                            "{}: field 'schedule': a scheduled pipeline needs a schedule on every {} (or on Default)",
                            object.id,
                            spec.category.describe()
                        ));
                        None
                    }
                    Some(schedule_id) => match schedule_of(definition, pipeline_id, schedule_id) {
                        Ok(schedule) => Some(schedule),
                        Err(message) => {
                            problems.push(format!("{schedule_id}: {message}"));
                            None
                        }
                    },
                }
            };
            let runs_on = fields.refs("runsOn").into_iter().next();
            let worker_group = fields.text("workerGroup");
            let queue = match (&runs_on, worker_group) {
                // A resource's queue is its pipeline's own: runners on it serve nobody else.
                (Some(resource), _) => Some(format!("{RESOURCE_QUEUE_PREFIX}{pipeline_id}/{resource}")),
                (None, Some(group)) => Some(group),
                (None, None) => None,
            };
            let max_active = match fields.integer("maxActiveInstances", &mut problems) {
                Some(value) => u32::try_from(value)
                    .ok()
                    .filter(|value| *value >= 1)
                    .unwrap_or_else(|| {
                        problems.push(format!(
                            "{}: field 'maxActiveInstances': {value} is not a positive number",
                            object.id
                        ));
                        1
                    }),
                None if on_demand => DEFAULT_ONDEMAND_MAX_ACTIVE,
                None => max_active,
            };
            let maximum_retries = match fields.integer("maximumRetries", &mut problems) {
                Some(value) if (0..=i64::from(MAX_RETRIES)).contains(&value) => value as u32,
                Some(value) => {
                    problems.push(format!(
                        "{}: field 'maximumRetries': {value} is outside 0..{MAX_RETRIES}",
                        object.id
                    ));
                    0
                }
                None => 0,
            };
            let cascade = fields
                .text("failureAndRerunMode")
                .is_some_and(|mode| mode.eq_ignore_ascii_case("cascade"));
            let service_check = match type_name.as_str() {
                "S3KeyExists" => Some(ServiceCheck::S3KeyExists),
                "S3PrefixNotEmpty" => Some(ServiceCheck::S3PrefixNotEmpty),
                _ => None,
            };
            nodes.push(Node {
                id: object.id.clone(),
                type_name: type_name.clone(),
                role,
                schedule,
                schedule_type,
                inputs: fields.refs("input"),
                outputs: fields.refs("output"),
                depends_on: fields.refs("dependsOn"),
                preconditions: fields.refs("precondition"),
                runs_on,
                queue,
                max_active,
                maximum_retries,
                retry_delay: fields
                    .period("retryDelay", &mut problems)
                    .unwrap_or_else(|| Duration::minutes(DEFAULT_RETRY_DELAY_MINUTES)),
                attempt_timeout: fields.period("attemptTimeout", &mut problems),
                report_progress_timeout: fields.period("reportProgressTimeout", &mut problems),
                late_after: fields.period("lateAfterTimeout", &mut problems),
                precondition_timeout: fields.period("preconditionTimeout", &mut problems),
                terminate_after: fields.period("terminateAfter", &mut problems),
                on_success: fields.refs("onSuccess"),
                on_fail: fields.refs("onFail"),
                on_late: fields.refs("onLateAction"),
                cascade,
                service_check,
                producers: Vec::new(),
                consumers: Vec::new(),
            });
        }

        let index: HashMap<String, usize> = nodes
            .iter()
            .enumerate()
            .map(|(position, node)| (node.id.clone(), position))
            .collect();
        // Edges to objects that are not runnable (a typo would already fail validation) are
        // dropped; the rest are wired both ways.
        for position in 0..nodes.len() {
            let node = &nodes[position];
            let outputs = node.outputs.clone();
            let runs_on = node.runs_on.clone();
            let id = node.id.clone();
            let is_activity = node.role == NodeRole::Activity;
            for output in outputs {
                if let Some(target) = index.get(&output)
                    && is_activity
                {
                    nodes[*target].producers.push(id.clone());
                }
            }
            if let Some(resource) = runs_on
                && let Some(target) = index.get(&resource)
            {
                nodes[*target].consumers.push(id.clone());
            }
        }
        // Runner-evaluated preconditions run where their consumer runs.
        for position in 0..nodes.len() {
            if nodes[position].role != NodeRole::Precondition
                || nodes[position].service_check.is_some()
                || nodes[position].queue.is_some()
            {
                continue;
            }
            let id = nodes[position].id.clone();
            let queue = nodes
                .iter()
                .find(|node| node.preconditions.contains(&id) && node.queue.is_some())
                .and_then(|node| node.queue.clone());
            match queue {
                Some(queue) => nodes[position].queue = Some(queue),
                None => problems.push(format!(
                    "{id}: a {} runs on a task runner: set 'workerGroup' or 'runsOn' on it or on an object that uses it",
                    nodes[position].type_name
                )),
            }
        }
        for node in &nodes {
            if node.role == NodeRole::Activity && node.queue.is_none() {
                problems.push(format!(
                    "{}: an activity needs 'runsOn' or 'workerGroup' to be run",
                    node.id
                ));
            }
            for action in node.on_success.iter().chain(&node.on_fail).chain(&node.on_late) {
                if !actions.contains_key(action) {
                    problems.push(format!("{}: '{action}' is not an action object", node.id));
                }
            }
        }
        if problems.is_empty() {
            Ok(Graph {
                nodes,
                index,
                actions,
                on_demand,
            })
        } else {
            Err(problems)
        }
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.index.get(id).map(|position| &self.nodes[*position])
    }
}

fn schedule_of(definition: &PipelineDefinition, pipeline_id: &str, schedule_id: &str) -> Result<Schedule, String> {
    let scope =
        ComponentScope::new(definition, pipeline_id, schedule_id).ok_or("the schedule object does not exist")?;
    let text = |name: &str| {
        scope.resolve(name).and_then(|value| match value {
            Value::Ref(_) => None,
            Value::List(values) => values.first().map(Value::render),
            other => Some(other.render()),
        })
    };
    Schedule::from_fields(
        text("period").as_deref(),
        text("startDateTime").as_deref(),
        text("startAt").as_deref(),
        text("endDateTime").as_deref(),
        text("occurrences").as_deref(),
    )
}
