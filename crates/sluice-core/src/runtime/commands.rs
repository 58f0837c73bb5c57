//! What users (ActivatePipeline, DeactivatePipeline, SetStatus) and task runners (the task
//! protocol) do to the runtime state. Each command checks its input against the state, changes
//! it, and leaves the rest to the planner, which the caller runs right after.

use chrono::{Duration, NaiveDateTime};

use super::graph::{Graph, NodeRole};
use super::planner::{self, Event, record_end};
use super::state::{PipelineState, State, Status};
use super::{PlannerConfig, render_time};

/// A command that does not apply: the API answers InvalidRequestException with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError(message.into()))
}

/// What a task runner reported for a task (SetTaskStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOutcome {
    Finished,
    Failed,
    /// A precondition was not met (yet).
    False,
}

impl TaskOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOutcome::Finished => "FINISHED",
            TaskOutcome::Failed => "FAILED",
            TaskOutcome::False => "FALSE",
        }
    }

    pub fn parse(text: &str) -> Option<TaskOutcome> {
        match text {
            "FINISHED" => Some(TaskOutcome::Finished),
            "FAILED" => Some(TaskOutcome::Failed),
            "FALSE" => Some(TaskOutcome::False),
            _ => None,
        }
    }
}

/// The SetStatus values (case-insensitive on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetStatusCommand {
    Pause,
    Resume,
    Cancel,
    Rerun,
    MarkFinished,
}

impl SetStatusCommand {
    /// `TRY_CANCEL` is the documented name; `CANCEL`, `CANCELED` and `CANCELLED` mean the same.
    pub fn parse(text: &str) -> Option<SetStatusCommand> {
        match text.to_ascii_uppercase().as_str() {
            "PAUSE" => Some(SetStatusCommand::Pause),
            "RESUME" => Some(SetStatusCommand::Resume),
            "TRY_CANCEL" | "CANCEL" | "CANCELED" | "CANCELLED" => Some(SetStatusCommand::Cancel),
            "RERUN" => Some(SetStatusCommand::Rerun),
            "MARK_FINISHED" => Some(SetStatusCommand::MarkFinished),
            _ => None,
        }
    }

    fn applies_to_components(self) -> bool {
        matches!(self, SetStatusCommand::Pause | SetStatusCommand::Resume)
    }
}

/// ActivatePipeline on the runtime state. `backfill_limit`: refuse a first scheduled start
/// further back than this unless `start_timestamp` is given (`None`: no guard).
pub fn activate(
    graph: &Graph,
    state: &mut State,
    now: NaiveDateTime,
    start_timestamp: Option<NaiveDateTime>,
    backfill_limit: Option<Duration>,
    config: PlannerConfig,
) -> Result<(), CommandError> {
    match state.pipeline.state {
        PipelineState::Deactivating => {
            return refuse("the pipeline is being deactivated; activate it again once it is INACTIVE");
        }
        PipelineState::Scheduled if !graph.on_demand => return Ok(()),
        _ => {}
    }
    if graph.on_demand {
        let unfinished = state.instances().iter().any(|instance| !instance.status.is_terminal());
        if state.pipeline.state != PipelineState::Scheduled && unfinished {
            // A run stopped by deactivation resumes before another may start.
            let pipeline = state.pipeline_mut();
            pipeline.state = PipelineState::Scheduled;
            pipeline.activated_at = Some(now);
            return Ok(());
        }
        let running: std::collections::BTreeSet<NaiveDateTime> = state
            .instances()
            .iter()
            .filter(|instance| !instance.status.is_terminal())
            .map(|instance| instance.scheduled_start)
            .collect();
        let cap = graph.nodes.iter().map(|node| node.max_active).min().unwrap_or(1);
        if running.len() as u32 >= cap {
            return refuse(format!(
                "{} on-demand run(s) are still active and maxActiveInstances is {cap}; wait for one to end or cancel it",
                running.len()
            ));
        }
        if state.instances().iter().any(|instance| instance.scheduled_start == now) {
            return refuse(format!(
                "an on-demand run already started at {}; activate again in a second",
                render_time(now)
            ));
        }
        let pipeline = state.pipeline_mut();
        pipeline.state = PipelineState::Scheduled;
        pipeline.first_activation.get_or_insert(now);
        pipeline.activated_at = Some(now);
        planner::create_on_demand_run(graph, state, now);
        return Ok(());
    }
    let first_activation = *state.pipeline_mut().first_activation.get_or_insert(now);
    let never_ran = state.instances().is_empty();
    if never_ran
        && start_timestamp.is_none()
        && let Some(limit) = backfill_limit
    {
        for node in &graph.nodes {
            if let Some(schedule) = &node.schedule
                && let Some(problem) = crate::schedule::backfill_problem(schedule, first_activation, limit)
            {
                state.pipeline_mut().first_activation = None;
                return refuse(format!("{}: {problem}", node.id));
            }
        }
    }
    let pipeline = state.pipeline_mut();
    pipeline.state = PipelineState::Scheduled;
    pipeline.activated_at = Some(now);
    for node in &graph.nodes {
        // A FINISHED pipeline whose end was extended schedules again.
        state.component_mut(&node.id).exhausted = false;
    }
    if let Some(from) = start_timestamp {
        planner::skip_until(graph, state, from, config.max_skipped_records).map_err(CommandError)?;
    }
    Ok(())
}

/// Activating a different definition on a pipeline that ran before: instances of objects that
/// are gone are cancelled, and each scheduled object's cursor continues after its last
/// instance under its (possibly new) schedule.
pub fn adopt_definition(graph: &Graph, state: &mut State, now: NaiveDateTime) -> Vec<Event> {
    let mut events = Vec::new();
    let gone: Vec<String> = state
        .instances()
        .iter()
        .filter(|instance| !instance.status.is_terminal() && graph.node(&instance.component).is_none())
        .map(|instance| instance.id.clone())
        .collect();
    for id in gone {
        let Some(position) = state.instance_position(&id) else {
            continue;
        };
        let instance = state.instance_at_mut(position);
        instance.status = Status::Canceled;
        instance.actual_end = Some(now);
        instance.reason = Some("its object is not in the activated definition".to_string());
        if let Some(head) = instance.head_attempt.clone()
            && let Some(attempt) = state.attempt_mut(&head)
            && !attempt.status.is_terminal()
        {
            attempt.status = Status::Canceled;
            attempt.actual_end = Some(now);
        }
        events.push(Event::InstanceEnded {
            instance: id,
            status: Status::Canceled,
        });
    }
    if let Some(first_activation) = state.pipeline.first_activation {
        for node in &graph.nodes {
            let Some(schedule) = node.schedule else { continue };
            let last = state
                .instances_of(&node.id)
                .last()
                .map(|position| state.instance_at(*position).scheduled_start);
            if let Some(last) = last {
                let next = schedule.index_after(last, first_activation).unwrap_or(u32::MAX);
                let run = state.component_mut(&node.id);
                run.next_index = next;
                run.exhausted = false;
            }
        }
    }
    events
}

/// DeactivatePipeline: with `cancel_active`, live instances are cancelled; without, running
/// attempts finish first. Either way no new work starts.
pub fn deactivate(state: &mut State, cancel_active: bool) -> Result<(), CommandError> {
    match state.pipeline.state {
        PipelineState::Pending => refuse("the pipeline was never activated"),
        PipelineState::Inactive | PipelineState::Finished => Ok(()),
        PipelineState::Scheduled | PipelineState::Deactivating => {
            let pipeline = state.pipeline_mut();
            pipeline.state = PipelineState::Deactivating;
            pipeline.cancel_active = cancel_active || pipeline.cancel_active;
            Ok(())
        }
    }
}

/// SetStatus. All ids must be components, or all instances and attempts (an attempt stands for
/// its instance).
pub fn set_status(
    graph: &Graph,
    state: &mut State,
    object_ids: &[String],
    command: SetStatusCommand,
    is_component: &dyn Fn(&str) -> bool,
    now: NaiveDateTime,
) -> Result<Vec<Event>, CommandError> {
    if state.pipeline.state == PipelineState::Finished {
        return refuse("the pipeline is FINISHED: extend its schedule and activate it to run it again");
    }
    let mut components = Vec::new();
    let mut instances = Vec::new();
    for id in object_ids {
        if let Some(instance) = state.instance(id) {
            instances.push(instance.id.clone());
        } else if let Some(attempt) = state.attempt(id) {
            instances.push(attempt.instance.clone());
        } else if is_component(id) {
            components.push(id.clone());
        } else {
            return refuse(format!("objectIds: '{id}' is not an object of this pipeline"));
        }
    }
    if !components.is_empty() && !instances.is_empty() {
        return refuse("objectIds: mixes components with instances or attempts; send them in separate calls");
    }
    let mut events = Vec::new();
    if !components.is_empty() {
        if !command.applies_to_components() {
            return refuse(
                "status: components take PAUSE or RESUME; TRY_CANCEL, RERUN and MARK_FINISHED apply to instances and attempts",
            );
        }
        for id in &components {
            if graph.node(id).is_none() {
                return refuse(format!(
                    "objectIds: '{id}' is not an activity, data node, resource or precondition"
                ));
            }
        }
        for id in &components {
            pause_or_resume(state, id, command == SetStatusCommand::Pause);
        }
        return Ok(events);
    }
    if command.applies_to_components() {
        return refuse(
            "status: instances and attempts take TRY_CANCEL, RERUN or MARK_FINISHED; PAUSE and RESUME apply to components",
        );
    }
    if command == SetStatusCommand::Rerun {
        for id in &instances {
            let instance = state.instance(id).expect("collected above");
            if !instance.status.is_terminal() {
                return refuse(format!(
                    "objectIds: '{id}' is {}; only an ended instance can be rerun",
                    instance.status.as_str()
                ));
            }
        }
    }
    for id in instances {
        match command {
            SetStatusCommand::Cancel => end_by_user(graph, state, &id, Status::Canceled, now, &mut events),
            SetStatusCommand::MarkFinished => {
                end_by_user(graph, state, &id, Status::MarkFinished, now, &mut events);
            }
            SetStatusCommand::Rerun => rerun(graph, state, &id),
            SetStatusCommand::Pause | SetStatusCommand::Resume => {}
        }
    }
    Ok(events)
}

fn pause_or_resume(state: &mut State, component: &str, pause: bool) {
    state.component_mut(component).paused = pause;
    let positions = state.instances_of(component).to_vec();
    for position in positions {
        let instance = state.instance_at(position).clone();
        let head = instance
            .head_attempt
            .as_deref()
            .and_then(|id| state.attempt(id))
            .cloned();
        if pause {
            let waiting = matches!(
                instance.status,
                Status::WaitingOnDependencies | Status::WaitingForRunner
            );
            if !waiting {
                continue;
            }
            state.instance_at_mut(position).status = Status::Paused;
            if let Some(head) = head.filter(|head| head.status == Status::WaitingForRunner) {
                state.attempt_mut(&head.id).expect("exists").status = Status::Paused;
            }
        } else if instance.status == Status::Paused {
            match head.filter(|head| head.status == Status::Paused) {
                Some(head) => {
                    state.attempt_mut(&head.id).expect("exists").status = Status::WaitingForRunner;
                    state.instance_at_mut(position).status = Status::WaitingForRunner;
                }
                None => state.instance_at_mut(position).status = Status::WaitingOnDependencies,
            }
        }
    }
}

fn end_by_user(
    graph: &Graph,
    state: &mut State,
    id: &str,
    status: Status,
    now: NaiveDateTime,
    events: &mut Vec<Event>,
) {
    let Some(position) = state.instance_position(id) else {
        return;
    };
    let current = state.instance_at(position).status;
    let applies = match status {
        Status::Canceled => !current.is_terminal(),
        _ => !current.is_success(),
    };
    if !applies {
        return;
    }
    let reason = match status {
        Status::Canceled => "canceled by SetStatus TRY_CANCEL",
        _ => "marked finished by SetStatus MARK_FINISHED",
    };
    let instance = state.instance_at_mut(position);
    instance.status = status;
    instance.actual_end = Some(now);
    instance.reason = Some(reason.to_string());
    let head = instance.head_attempt.clone();
    if let Some(head) = head
        && let Some(attempt) = state.attempt_mut(&head)
        && !attempt.status.is_terminal()
    {
        // A runner holding it learns through ReportTaskProgress (`canceled: true`).
        attempt.status = Status::Canceled;
        attempt.actual_end = Some(now);
        attempt.reason = Some(reason.to_string());
    }
    record_end(graph, state, id, status, now, events);
}

/// Puts an ended instance back to waiting, with fresh retries. In cascade mode its
/// cascade-failed consumers rerun too, and a finished resource it runs on starts again.
fn rerun(graph: &Graph, state: &mut State, id: &str) {
    let Some(position) = state.instance_position(id) else {
        return;
    };
    let snapshot = state.instance_at(position).clone();
    let Some(node) = graph.node(&snapshot.component) else {
        return;
    };
    let instance = state.instance_at_mut(position);
    instance.status = Status::WaitingOnDependencies;
    instance.tries_left = node.maximum_retries;
    instance.actual_start = None;
    instance.actual_end = None;
    instance.rerun = true;
    instance.reason = None;
    instance.next_check_at = None;
    if let Some(resource) = &node.runs_on {
        let positions = state.instances_of(resource).to_vec();
        for candidate in positions {
            let found = state.instance_at(candidate);
            let covers = found.scheduled_start <= snapshot.scheduled_start
                && (snapshot.scheduled_start < found.scheduled_end || found.scheduled_start == found.scheduled_end);
            if covers && found.status.is_terminal() {
                let found = state.instance_at_mut(candidate);
                found.status = Status::WaitingOnDependencies;
                found.actual_start = None;
                found.actual_end = None;
                found.rerun = true;
            }
        }
    }
    if !node.cascade {
        return;
    }
    let consumers: Vec<String> = graph
        .nodes
        .iter()
        .filter(|candidate| {
            candidate.inputs.contains(&node.id)
                || candidate.depends_on.contains(&node.id)
                || (candidate.role == NodeRole::DataNode && candidate.producers.contains(&node.id))
                || candidate.preconditions.contains(&node.id)
        })
        .map(|candidate| candidate.id.clone())
        .collect();
    for consumer in consumers {
        let positions = state.instances_of(&consumer).to_vec();
        for candidate in positions {
            let found = state.instance_at(candidate);
            if found.scheduled_start == snapshot.scheduled_start && found.status == Status::CascadeFailed {
                let found_id = found.id.clone();
                rerun(graph, state, &found_id);
            }
        }
    }
}

/// The attempt a runner polling `queue` gets next: the longest-waiting one that is available.
pub fn next_task<'a>(state: &'a State, queue: &str, now: NaiveDateTime) -> Option<&'a super::Attempt> {
    state
        .attempts()
        .iter()
        .filter(|attempt| {
            attempt.status == Status::WaitingForRunner && attempt.queue == queue && attempt.available_at <= now
        })
        .min_by(|a, b| (a.available_at, &a.id).cmp(&(b.available_at, &b.id)))
}

/// PollForTask handed attempt `attempt` out as task `task_id`.
pub fn lease(state: &mut State, attempt: &str, task_id: &str, hostname: Option<&str>, now: NaiveDateTime) {
    state.assign_task(attempt, task_id);
    let Some(found) = state.attempt_mut(attempt) else {
        return;
    };
    found.status = Status::Running;
    found.leased_at = Some(now);
    found.acknowledged = false;
    found.progress_at = None;
    found.actual_start.get_or_insert(now);
    found.hostname = hostname.map(str::to_string);
    let instance_id = found.instance.clone();
    if let Some(position) = state.instance_position(&instance_id) {
        let instance = state.instance_at_mut(position);
        instance.status = Status::Running;
        instance.actual_start.get_or_insert(now);
    }
}

/// ReportTaskProgress: keeps the lease. `Ok(true)` tells the runner to stop (the attempt was
/// cancelled); an unknown or ended task is an error.
pub fn report_progress(state: &mut State, task_id: &str, now: NaiveDateTime) -> Result<bool, CommandError> {
    let Some(attempt) = state.attempt_by_task(task_id).cloned() else {
        return refuse("the task is not known or no longer handed out");
    };
    match attempt.status {
        Status::Canceled => Ok(true),
        Status::Running => {
            let found = state.attempt_mut(&attempt.id).expect("exists");
            found.acknowledged = true;
            found.progress_at = Some(now);
            Ok(false)
        }
        _ => refuse("the task is not known or no longer handed out"),
    }
}

/// SetTaskStatus: the runner's final word on a task it holds.
pub fn finish_task(
    state: &mut State,
    task_id: &str,
    outcome: TaskOutcome,
    now: NaiveDateTime,
) -> Result<(), CommandError> {
    let Some(attempt) = state.attempt_by_task(task_id).cloned() else {
        return refuse("the task is not known or no longer handed out");
    };
    if attempt.status != Status::Running {
        return refuse("the task is not known or no longer handed out");
    }
    let found = state.attempt_mut(&attempt.id).expect("exists");
    found.status = match outcome {
        TaskOutcome::Failed => Status::Failed,
        TaskOutcome::Finished | TaskOutcome::False => Status::Finished,
    };
    found.outcome = Some(outcome);
    found.actual_end = Some(now);
    found.acknowledged = true;
    Ok(())
}
