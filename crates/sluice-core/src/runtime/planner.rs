//! The planner: given the graph, the state and "now", create the instances that are due and move
//! every instance and attempt as far as the rules of reference §h allow. Pure and repeatable:
//! calling it twice at the same time changes nothing the second time.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};

use super::graph::{Graph, Node, NodeRole};
use super::state::{Attempt, Health, Instance, PipelineState, State, Status};
use super::{TaskOutcome, attempt_id, instance_id};
use crate::schedule::{ScheduleType, runnable_at};

#[derive(Debug, Clone, Copy)]
pub struct PlannerConfig {
    /// A handed-out task with no first progress report within this is handed out again.
    pub ack_timeout: Duration,
    /// An acknowledged task with no progress report within this (or the activity's
    /// `reportProgressTimeout`) has lost its runner: the attempt fails.
    pub lease: Duration,
    /// New instances one component may get in one planner step (a long backfill takes several).
    pub max_new_instances: usize,
    /// Skipped intervals recorded as SKIPPED instances per component when activation moves the
    /// start forward; older ones are passed over without a record.
    pub max_skipped_records: usize,
}

impl Default for PlannerConfig {
    fn default() -> Self {
        PlannerConfig {
            ack_timeout: Duration::minutes(2),
            lease: Duration::minutes(15),
            max_new_instances: 10_000,
            max_skipped_records: 1_000,
        }
    }
}

/// Something that happened which the service reports beyond the state itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `onSuccess`, `onFail` or `onLateAction` fired an action object for an instance.
    ActionFired {
        action: String,
        action_type: String,
        instance: String,
        trigger: &'static str,
    },
    /// An instance reached a terminal status.
    InstanceEnded { instance: String, status: Status },
    /// A handed-out task was not acknowledged in time and went back to the queue.
    TaskRequeued { attempt: String },
}

/// What a consumer waits for of one dependency.
enum Expected {
    Instance(usize),
    /// The dependency's instance for that interval does not exist yet.
    NotYet,
    /// The dependency has no interval to wait for.
    Nothing,
}

/// The result of a service-evaluated precondition check: met, not met, or the check failed.
pub type CheckResult = Result<bool, String>;

/// Instances whose service-evaluated precondition should be checked now.
pub fn due_checks(graph: &Graph, state: &State, now: NaiveDateTime) -> Vec<String> {
    state
        .instances()
        .iter()
        .filter(|instance| instance.status == Status::Running && instance.next_check_at.is_some_and(|at| at <= now))
        .filter(|instance| {
            graph
                .node(&instance.component)
                .is_some_and(|node| node.service_check.is_some())
        })
        .map(|instance| instance.id.clone())
        .collect()
}

struct Planner<'a> {
    graph: &'a Graph,
    state: &'a mut State,
    now: NaiveDateTime,
    config: PlannerConfig,
    checks: &'a HashMap<String, CheckResult>,
    events: Vec<Event>,
    /// Active (released, not rerun) instances per component.
    active: HashMap<String, u32>,
}

/// Moves the pipeline forward to `now`. Returns what happened beyond state changes; the changes
/// themselves are in `state` (see `State::take_changes`).
pub fn advance(
    graph: &Graph,
    state: &mut State,
    now: NaiveDateTime,
    config: PlannerConfig,
    checks: &HashMap<String, CheckResult>,
) -> Vec<Event> {
    let mut planner = Planner {
        graph,
        state,
        now,
        config,
        checks,
        events: Vec::new(),
        active: HashMap::new(),
    };
    planner.run();
    planner.events
}

fn fresh_instance(node: &Node, start: NaiveDateTime, end: NaiveDateTime, now: NaiveDateTime, id: String) -> Instance {
    Instance {
        id,
        component: node.id.clone(),
        scheduled_start: start,
        scheduled_end: end,
        status: Status::WaitingOnDependencies,
        attempt_count: 0,
        tries_left: node.maximum_retries,
        actual_start: None,
        actual_end: None,
        head_attempt: None,
        created_at: now,
        late_fired: false,
        rerun: false,
        next_check_at: None,
        reason: None,
    }
}

/// Creates the instances of one on-demand run (every runnable object once, at `now`). The
/// caller makes sure no run started in the same second (run ids are per second).
pub(crate) fn create_on_demand_run(graph: &Graph, state: &mut State, now: NaiveDateTime) {
    for node in &graph.nodes {
        let id = instance_id(&node.id, now);
        state.component_mut(&node.id);
        if !state.has_instance(&id) {
            state.add_instance(fresh_instance(node, now, now, now, id));
        }
    }
}

/// Most intervals activation with `startTimestamp` steps over for one component.
const MAX_SKIPPED_INTERVALS: u32 = 5_000_000;

/// Moves each component's cursor to the first interval starting at or after `from`, recording
/// the intervals passed over as SKIPPED (the most recent `max_records` of them).
pub(crate) fn skip_until(
    graph: &Graph,
    state: &mut State,
    from: NaiveDateTime,
    max_records: usize,
) -> Result<(), String> {
    let Some(first_activation) = state.pipeline.first_activation else {
        return Ok(());
    };
    for node in &graph.nodes {
        let Some(schedule) = node.schedule else { continue };
        let start_index = state.component(&node.id).map_or(0, |run| run.next_index);
        let mut index = start_index;
        let mut skipped = std::collections::VecDeque::new();
        while let Some(interval) = schedule.interval(index, first_activation) {
            if interval.start >= from {
                break;
            }
            skipped.push_back(interval);
            if skipped.len() > max_records {
                skipped.pop_front();
            }
            index = match index.checked_add(1) {
                Some(next) if next - start_index <= MAX_SKIPPED_INTERVALS => next,
                _ => {
                    return Err(format!(
                        "startTimestamp would skip more than {MAX_SKIPPED_INTERVALS} intervals of {}",
                        node.id
                    ));
                }
            };
        }
        for interval in skipped {
            let id = instance_id(&node.id, interval.start);
            if !state.has_instance(&id) {
                let mut instance = fresh_instance(node, interval.start, interval.end, from, id);
                instance.status = Status::Skipped;
                state.add_instance(instance);
            }
        }
        state.component_mut(&node.id).next_index = index;
    }
    Ok(())
}

impl Planner<'_> {
    fn run(&mut self) {
        let pipeline_state = self.state.pipeline.state;
        if pipeline_state == PipelineState::Scheduled && !self.graph.on_demand {
            self.create_due_instances();
        }
        if pipeline_state == PipelineState::Deactivating && self.state.pipeline.cancel_active {
            self.cancel_active("the pipeline was deactivated");
        }
        self.count_active();
        for _ in 0..16 {
            if !self.pass() {
                break;
            }
        }
        self.finish_pipeline();
        self.set_wake_time();
    }

    fn create_due_instances(&mut self) {
        let Some(first_activation) = self.state.pipeline.first_activation else {
            return;
        };
        for node in &self.graph.nodes {
            let Some(schedule) = node.schedule else { continue };
            let (next_index, paused, exhausted) = match self.state.component(&node.id) {
                Some(run) => (run.next_index, run.paused, run.exhausted),
                None => (0, false, false),
            };
            if paused || exhausted {
                continue;
            }
            let (due, finished) = schedule.due(
                node.schedule_type,
                first_activation,
                self.now,
                next_index,
                self.config.max_new_instances,
            );
            if due.is_empty() && !finished {
                continue;
            }
            for interval in &due {
                let id = instance_id(&node.id, interval.start);
                if !self.state.has_instance(&id) {
                    self.state
                        .add_instance(fresh_instance(node, interval.start, interval.end, self.now, id));
                }
            }
            let run = self.state.component_mut(&node.id);
            run.next_index = next_index + due.len() as u32;
            run.exhausted = finished;
        }
    }

    fn count_active(&mut self) {
        self.active.clear();
        for instance in self.state.instances() {
            if !instance.rerun && matches!(instance.status, Status::WaitingForRunner | Status::Running) {
                *self.active.entry(instance.component.clone()).or_default() += 1;
            }
        }
    }

    /// DeactivatePipeline with `cancelActive`: what runs or waits for a runner is cancelled;
    /// what still waits on its dependencies stays, and resumes with the next activation.
    fn cancel_active(&mut self, reason: &str) {
        for position in 0..self.state.instances().len() {
            if matches!(
                self.state.instance_at(position).status,
                Status::WaitingForRunner | Status::Running
            ) {
                self.end_instance(position, Status::Canceled, Some(reason.to_string()));
            }
        }
    }

    /// One sweep over the live instances; true if anything changed.
    fn pass(&mut self) -> bool {
        let mut changed = false;
        for position in 0..self.state.instances().len() {
            let instance = self.state.instance_at(position);
            if instance.status.is_terminal() || instance.status == Status::Paused {
                continue;
            }
            let Some(node) = self.graph.node(&instance.component) else {
                continue;
            };
            changed |= self.fire_late_actions(position, node);
            let status = self.state.instance_at(position).status;
            changed |= match (node.role, status) {
                (_, status) if status.is_terminal() => false,
                (NodeRole::Resource, _) => self.step_resource(position, node),
                (_, Status::WaitingOnDependencies) => self.step_waiting(position, node),
                (NodeRole::Precondition, Status::Running) if node.service_check.is_some() => {
                    self.step_service_check(position, node)
                }
                (_, Status::WaitingForRunner | Status::Running) => self.step_attempt(position, node),
                _ => false,
            };
        }
        changed
    }

    fn released(&self) -> bool {
        self.state.pipeline.state == PipelineState::Scheduled
    }

    /// The instance of `dependency` that `consumer` waits for: the one for the same interval
    /// when both follow the same schedule (or both run on demand), otherwise the one for the
    /// dependency's last interval that ends no later than the consumer's (the rule
    /// ARCHITECTURE.md documents). `Expected::Nothing` when the dependency has no such interval.
    fn matching(&self, dependency: &str, consumer: &Instance) -> Expected {
        let (Some(dependency_node), Some(consumer_node)) =
            (self.graph.node(dependency), self.graph.node(&consumer.component))
        else {
            return Expected::Nothing;
        };
        let start = if dependency_node.schedule == consumer_node.schedule {
            consumer.scheduled_start
        } else {
            let (Some(schedule), Some(first_activation)) =
                (dependency_node.schedule, self.state.pipeline.first_activation)
            else {
                return Expected::Nothing;
            };
            match schedule.last_ending_by(consumer.scheduled_end, first_activation) {
                Some(interval) => interval.start,
                None => return Expected::Nothing,
            }
        };
        match self.state.instance_position(&instance_id(dependency, start)) {
            Some(position) => Expected::Instance(position),
            None => Expected::NotYet,
        }
    }

    /// The resource instance whose interval holds the consumer's scheduled start.
    fn resource_for(&self, resource: &str, consumer: &Instance) -> Option<usize> {
        let positions = self.state.instances_of(resource);
        let count = positions
            .partition_point(|position| self.state.instance_at(*position).scheduled_start <= consumer.scheduled_start);
        let candidate = positions[..count].last().copied()?;
        let found = self.state.instance_at(candidate);
        (consumer.scheduled_start < found.scheduled_end || found.scheduled_start == found.scheduled_end)
            .then_some(candidate)
    }

    fn dependencies<'n>(&self, node: &'n Node) -> impl Iterator<Item = &'n String> {
        node.inputs
            .iter()
            .chain(&node.depends_on)
            .chain(&node.preconditions)
            .chain(&node.producers)
    }

    fn step_waiting(&mut self, position: usize, node: &Node) -> bool {
        if !self.released() {
            return false;
        }
        let instance = self.state.instance_at(position).clone();
        let mut blocked = false;
        let mut failed: Option<(String, Status)> = None;
        for dependency in self.dependencies(node) {
            if self.graph.node(dependency).is_none() {
                continue;
            }
            match self.matching(dependency, &instance) {
                Expected::NotYet => blocked = true,
                Expected::Nothing => {}
                Expected::Instance(found) => {
                    let found = self.state.instance_at(found);
                    if found.status.is_failure() {
                        failed.get_or_insert((found.id.clone(), found.status));
                    } else if !found.status.is_success() && found.status != Status::Skipped {
                        // A skipped interval of a dependency does not hold its consumers back.
                        blocked = true;
                    }
                }
            }
        }
        // A precondition of its own that failed fails the object, cascade or not (§h.3).
        for precondition in &node.preconditions {
            if let Expected::Instance(found) = self.matching(precondition, &instance)
                && self.state.instance_at(found).status == Status::Failed
            {
                let reason = format!("precondition {} failed", self.state.instance_at(found).id);
                self.end_instance(position, Status::Failed, Some(reason));
                return true;
            }
        }
        if let Some(resource) = &node.runs_on
            && let Some(found) = self.resource_for(resource, &instance)
        {
            let found = self.state.instance_at(found);
            if found.status.is_failure() {
                let reason = format!("resource {} is {}", found.id, found.status.as_str());
                self.end_instance(position, Status::Canceled, Some(reason));
                return true;
            }
        }
        if let Some((dependency, status)) = failed {
            if node.cascade {
                let reason = format!("dependency {dependency} is {}", status.as_str());
                self.end_instance(position, Status::CascadeFailed, Some(reason));
                self.cancel_preconditions(&instance, node);
                return true;
            }
            return false;
        }
        if blocked {
            return false;
        }
        match node.role {
            NodeRole::DataNode => {
                let at = self.now;
                let instance = self.state.instance_at_mut(position);
                instance.actual_start.get_or_insert(at);
                self.end_instance(position, Status::Finished, None);
                true
            }
            NodeRole::Precondition if node.service_check.is_some() => {
                let at = self.now;
                let instance = self.state.instance_at_mut(position);
                instance.status = Status::Running;
                instance.actual_start.get_or_insert(at);
                instance.next_check_at = Some(at);
                true
            }
            NodeRole::Activity | NodeRole::Precondition => {
                let active = self.active.get(&node.id).copied().unwrap_or(0);
                if !instance.rerun && active >= node.max_active {
                    return false;
                }
                if !instance.rerun {
                    *self.active.entry(node.id.clone()).or_default() += 1;
                }
                if node.role == NodeRole::Precondition {
                    let at = self.now;
                    self.state.instance_at_mut(position).actual_start.get_or_insert(at);
                }
                self.new_attempt(position, node, self.now);
                if let Some(resource) = &node.runs_on
                    && let Some(found) = self.resource_for(resource, &instance)
                    && self.state.instance_at(found).status == Status::WaitingOnDependencies
                {
                    let at = self.now;
                    let resource = self.state.instance_at_mut(found);
                    resource.status = Status::Running;
                    resource.actual_start = Some(at);
                }
                true
            }
            NodeRole::Resource => false,
        }
    }

    fn cancel_preconditions(&mut self, consumer: &Instance, node: &Node) {
        for precondition in &node.preconditions {
            if let Expected::Instance(found) = self.matching(precondition, consumer)
                && !self.state.instance_at(found).status.is_terminal()
            {
                let reason = format!("{} cascade-failed", consumer.id);
                self.end_instance(found, Status::Canceled, Some(reason));
            }
        }
    }

    /// Queues attempt n+1 of an instance, handed out no earlier than `available_at`.
    fn new_attempt(&mut self, position: usize, node: &Node, available_at: NaiveDateTime) {
        let now = self.now;
        let instance = self.state.instance_at_mut(position);
        instance.attempt_count += 1;
        instance.status = Status::WaitingForRunner;
        let number = instance.attempt_count;
        let id = attempt_id(&instance.id, number);
        instance.head_attempt = Some(id.clone());
        let attempt = Attempt {
            id,
            instance: instance.id.clone(),
            component: instance.component.clone(),
            number,
            status: Status::WaitingForRunner,
            queue: node.queue.clone().unwrap_or_default(),
            available_at: available_at.max(now),
            task_id: None,
            leased_at: None,
            acknowledged: false,
            progress_at: None,
            actual_start: None,
            actual_end: None,
            hostname: None,
            outcome: None,
            reason: None,
        };
        self.state.add_attempt(attempt);
    }

    fn step_attempt(&mut self, position: usize, node: &Node) -> bool {
        let Some(head) = self.state.instance_at(position).head_attempt.clone() else {
            return false;
        };
        let Some(attempt) = self.state.attempt(&head).cloned() else {
            return false;
        };
        let now = self.now;
        match attempt.status {
            Status::Running => {
                let leased_at = attempt.leased_at.unwrap_or(now);
                if !attempt.acknowledged && leased_at + self.config.ack_timeout <= now {
                    if let Some(attempt) = self.state.attempt_mut(&head) {
                        attempt.status = Status::WaitingForRunner;
                        attempt.task_id = None;
                        attempt.leased_at = None;
                        attempt.hostname = None;
                    }
                    self.state.instance_at_mut(position).status = Status::WaitingForRunner;
                    self.events.push(Event::TaskRequeued { attempt: head });
                    return true;
                }
                if let Some(timeout) = node.attempt_timeout
                    && leased_at + timeout <= now
                {
                    self.fail_attempt(
                        &head,
                        format!(
                            "the attempt ran longer than attemptTimeout ({})",
                            describe_duration(timeout)
                        ),
                    );
                    return true;
                }
                let lease = node.report_progress_timeout.unwrap_or(self.config.lease);
                if attempt.acknowledged && attempt.progress_at.unwrap_or(leased_at) + lease <= now {
                    self.fail_attempt(
                        &head,
                        format!(
                            "no progress report for {}: the task runner is presumed lost",
                            describe_duration(lease)
                        ),
                    );
                    return true;
                }
                if self.state.instance_at(position).status != Status::Running {
                    let instance = self.state.instance_at_mut(position);
                    instance.status = Status::Running;
                    instance.actual_start.get_or_insert(leased_at);
                    return true;
                }
                false
            }
            Status::Finished if attempt.outcome == Some(TaskOutcome::False) => {
                let started = self.state.instance_at(position).actual_start.unwrap_or(now);
                if node
                    .precondition_timeout
                    .is_some_and(|timeout| started + timeout <= now)
                {
                    let reason = "the precondition was not met within preconditionTimeout".to_string();
                    self.end_instance(position, Status::Failed, Some(reason));
                } else {
                    self.new_attempt(position, node, now + node.retry_delay);
                }
                true
            }
            Status::Finished => {
                self.end_instance(position, Status::Finished, None);
                true
            }
            Status::Failed | Status::TimedOut => {
                let instance = self.state.instance_at_mut(position);
                if instance.tries_left > 0 {
                    instance.tries_left -= 1;
                    self.new_attempt(position, node, now + node.retry_delay);
                } else {
                    self.end_instance(position, Status::Failed, attempt.reason.clone());
                }
                true
            }
            Status::Canceled => {
                self.end_instance(position, Status::Canceled, attempt.reason.clone());
                true
            }
            _ => false,
        }
    }

    fn fail_attempt(&mut self, id: &str, reason: String) {
        let now = self.now;
        if let Some(attempt) = self.state.attempt_mut(id) {
            attempt.status = Status::Failed;
            attempt.actual_end = Some(now);
            attempt.reason = Some(reason);
        }
    }

    fn step_service_check(&mut self, position: usize, node: &Node) -> bool {
        let instance = self.state.instance_at(position);
        if instance.next_check_at.is_none_or(|at| at > self.now) {
            return false;
        }
        let Some(result) = self.checks.get(&instance.id).cloned() else {
            return false;
        };
        let started = instance.actual_start.unwrap_or(self.now);
        match result {
            Ok(true) => {
                self.state.instance_at_mut(position).next_check_at = None;
                self.end_instance(position, Status::Finished, None);
            }
            not_met => {
                let timed_out = node
                    .precondition_timeout
                    .is_some_and(|timeout| started + timeout <= self.now);
                if timed_out {
                    let reason = match not_met {
                        Err(error) => format!("the precondition could not be checked: {error}"),
                        Ok(_) => "the precondition was not met within preconditionTimeout".to_string(),
                    };
                    self.state.instance_at_mut(position).next_check_at = None;
                    self.end_instance(position, Status::Failed, Some(reason));
                } else {
                    let next = self.now + node.retry_delay;
                    let instance = self.state.instance_at_mut(position);
                    instance.next_check_at = Some(next);
                    instance.reason = not_met.err();
                }
            }
        }
        true
    }

    fn step_resource(&mut self, position: usize, node: &Node) -> bool {
        let resource = self.state.instance_at(position).clone();
        let now = self.now;
        if resource.status == Status::Running
            && let (Some(limit), Some(started)) = (node.terminate_after, resource.actual_start)
            && started + limit <= now
        {
            self.end_instance(
                position,
                Status::TimedOut,
                Some(format!(
                    "the resource ran longer than terminateAfter ({})",
                    describe_duration(limit)
                )),
            );
            // Work still running on it (not on its other intervals' instances) fails with it.
            let queue = graph_queue_of_resource(self.graph, &node.id);
            let running: Vec<String> = self
                .state
                .attempts()
                .iter()
                .filter(|attempt| attempt.queue == queue && attempt.status == Status::Running)
                .filter(|attempt| {
                    self.state
                        .instance(&attempt.instance)
                        .and_then(|consumer| self.resource_for(&node.id, consumer))
                        == Some(position)
                })
                .map(|attempt| attempt.id.clone())
                .collect();
            for attempt in running {
                self.fail_attempt(&attempt, format!("resource {} timed out", resource.id));
            }
            return true;
        }
        // Done once nothing that runs on it in its interval can still need it.
        // Done once nothing that runs on it in its interval can still need it: every consumer
        // instance inside the interval has ended and no consumer has an instance left to
        // create inside it (its schedule is exhausted or its next interval starts later).
        let interval_over = resource.scheduled_end <= now || resource.scheduled_start == resource.scheduled_end;
        let more_to_come = |consumer: &str| -> bool {
            let Some(run) = self.state.component(consumer) else {
                return true;
            };
            if run.exhausted {
                return false;
            }
            let (Some(schedule), Some(first_activation)) = (
                self.graph.node(consumer).and_then(|node| node.schedule.as_ref()),
                self.state.pipeline.first_activation,
            ) else {
                return true;
            };
            schedule
                .interval(run.next_index, first_activation)
                .is_some_and(|next| next.start < resource.scheduled_end)
        };
        let mut needed = !interval_over
            && (node.schedule_type == ScheduleType::OnDemand
                || node.consumers.iter().any(|consumer| more_to_come(consumer)));
        for consumer in &node.consumers {
            let positions = self.state.instances_of(consumer);
            let first = positions.partition_point(|position| {
                self.state.instance_at(*position).scheduled_start < resource.scheduled_start
            });
            for candidate in &positions[first..] {
                let candidate = self.state.instance_at(*candidate);
                let inside = if resource.scheduled_start == resource.scheduled_end {
                    candidate.scheduled_start == resource.scheduled_start
                } else {
                    candidate.scheduled_start < resource.scheduled_end
                };
                if !inside {
                    break;
                }
                if !candidate.status.is_terminal() {
                    needed = true;
                }
            }
        }
        if !needed {
            self.end_instance(position, Status::Finished, None);
            return true;
        }
        false
    }

    fn fire_late_actions(&mut self, position: usize, node: &Node) -> bool {
        let Some(late_after) = node.late_after else {
            return false;
        };
        let instance = self.state.instance_at(position);
        if node.schedule_type == ScheduleType::OnDemand
            || instance.late_fired
            || instance.scheduled_start + late_after > self.now
        {
            return false;
        }
        let id = instance.id.clone();
        self.state.instance_at_mut(position).late_fired = true;
        let mut terminate = None;
        for action in &node.on_late {
            let action_type = self.graph.actions.get(action).cloned().unwrap_or_default();
            if action_type == "Terminate" {
                terminate = Some(action.clone());
            }
            self.events.push(Event::ActionFired {
                action: action.clone(),
                action_type,
                instance: id.clone(),
                trigger: "onLateAction",
            });
        }
        if let Some(action) = terminate {
            let reason = format!(
                "terminated by {action}: late after lateAfterTimeout ({})",
                describe_duration(late_after)
            );
            self.end_instance(position, Status::Canceled, Some(reason));
        }
        true
    }

    /// Ends an instance: status, end time, its live attempt, health, and its actions.
    fn end_instance(&mut self, position: usize, status: Status, reason: Option<String>) {
        let now = self.now;
        let instance = self.state.instance_at_mut(position);
        let was_active = !instance.rerun && matches!(instance.status, Status::WaitingForRunner | Status::Running);
        instance.status = status;
        instance.actual_end = Some(now);
        if reason.is_some() {
            instance.reason = reason.clone();
        }
        let id = instance.id.clone();
        let component = instance.component.clone();
        let head = instance.head_attempt.clone();
        if was_active && let Some(count) = self.active.get_mut(&component) {
            *count = count.saturating_sub(1);
        }
        if let Some(head) = head
            && let Some(attempt) = self.state.attempt_mut(&head)
            && !attempt.status.is_terminal()
        {
            attempt.status = Status::Canceled;
            attempt.actual_end = Some(now);
            attempt.reason = reason.or_else(|| Some(format!("the instance became {}", status.as_str())));
        }
        record_end(self.graph, self.state, &id, status, now, &mut self.events);
    }

    fn finish_pipeline(&mut self) {
        let all_ended = self
            .state
            .instances()
            .iter()
            .all(|instance| instance.status.is_terminal());
        match self.state.pipeline.state {
            PipelineState::Scheduled => {
                // An on-demand pipeline waits for its next activation (and its instances can
                // still be rerun); a scheduled one is done when its schedules are.
                let schedules_done = !self.graph.on_demand
                    && self
                        .graph
                        .nodes
                        .iter()
                        .all(|node| self.state.component(&node.id).is_some_and(|run| run.exhausted));
                if schedules_done && all_ended {
                    self.state.pipeline_mut().state = PipelineState::Finished;
                }
            }
            PipelineState::Deactivating => {
                let running = self
                    .state
                    .attempts()
                    .iter()
                    .any(|attempt| attempt.status == Status::Running);
                if !running {
                    let pipeline = self.state.pipeline_mut();
                    pipeline.state = PipelineState::Inactive;
                    pipeline.cancel_active = false;
                }
            }
            _ => {}
        }
    }

    fn set_wake_time(&mut self) {
        let wake = next_wake(self.graph, self.state, self.now, self.config);
        if wake != self.state.pipeline.wake_at {
            self.state.pipeline_mut().wake_at = wake;
        }
    }
}

/// The queue of the activities running on a resource (they all share it).
fn graph_queue_of_resource(graph: &Graph, resource: &str) -> String {
    graph
        .nodes
        .iter()
        .find(|node| node.runs_on.as_deref() == Some(resource))
        .and_then(|node| node.queue.clone())
        .unwrap_or_default()
}

/// Records the end of an instance: component health, the `onSuccess`/`onFail` actions, an event.
pub(crate) fn record_end(
    graph: &Graph,
    state: &mut State,
    instance: &str,
    status: Status,
    now: NaiveDateTime,
    events: &mut Vec<Event>,
) {
    let Some(position) = state.instance_position(instance) else {
        return;
    };
    let component = state.instance_at(position).component.clone();
    events.push(Event::InstanceEnded {
        instance: instance.to_string(),
        status,
    });
    if status == Status::Skipped {
        return;
    }
    let run = state.component_mut(&component);
    run.health = Some(if status.is_success() {
        Health::Healthy
    } else {
        Health::Error
    });
    run.health_instance = Some(instance.to_string());
    run.health_time = Some(now);
    let Some(node) = graph.node(&component) else {
        return;
    };
    let (actions, trigger) = match status {
        Status::Finished => (&node.on_success, "onSuccess"),
        Status::Failed | Status::CascadeFailed => (&node.on_fail, "onFail"),
        _ => return,
    };
    for action in actions {
        events.push(Event::ActionFired {
            action: action.clone(),
            action_type: graph.actions.get(action).cloned().unwrap_or_default(),
            instance: instance.to_string(),
            trigger,
        });
    }
}

/// When the planner next has timed work: a due interval, a lease or timeout, a late deadline, a
/// precondition check, a resource interval's end.
pub fn next_wake(graph: &Graph, state: &State, now: NaiveDateTime, config: PlannerConfig) -> Option<NaiveDateTime> {
    let mut wake: Option<NaiveDateTime> = None;
    let mut consider = |time: NaiveDateTime| {
        let time = time.max(now);
        wake = Some(wake.map_or(time, |current| current.min(time)));
    };
    let pipeline = &state.pipeline;
    if pipeline.state == PipelineState::Scheduled
        && !graph.on_demand
        && let Some(first_activation) = pipeline.first_activation
    {
        for node in &graph.nodes {
            let Some(schedule) = node.schedule else { continue };
            let run = state.component(&node.id);
            if run.is_some_and(|run| run.paused || run.exhausted) {
                continue;
            }
            let index = run.map_or(0, |run| run.next_index);
            if let Some(interval) = schedule.interval(index, first_activation) {
                consider(runnable_at(&interval, node.schedule_type));
            }
        }
    }
    for attempt in state.attempts() {
        if attempt.status != Status::Running {
            continue;
        }
        let Some(leased_at) = attempt.leased_at else { continue };
        let node = graph.node(&attempt.component);
        if !attempt.acknowledged {
            consider(leased_at + config.ack_timeout);
        } else {
            let lease = node
                .and_then(|node| node.report_progress_timeout)
                .unwrap_or(config.lease);
            consider(attempt.progress_at.unwrap_or(leased_at) + lease);
        }
        if let Some(timeout) = node.and_then(|node| node.attempt_timeout) {
            consider(leased_at + timeout);
        }
    }
    for instance in state.instances() {
        // Paused instances wait for RESUME, which wakes the planner itself.
        if instance.status.is_terminal() || instance.status == Status::Paused {
            continue;
        }
        let Some(node) = graph.node(&instance.component) else {
            continue;
        };
        if let Some(late_after) = node.late_after
            && !instance.late_fired
            && node.schedule_type != ScheduleType::OnDemand
        {
            consider(instance.scheduled_start + late_after);
        }
        if let Some(at) = instance.next_check_at {
            consider(at);
        }
        if node.role == NodeRole::Resource {
            if instance.scheduled_end > now {
                consider(instance.scheduled_end);
            }
            if let (Some(limit), Some(started)) = (node.terminate_after, instance.actual_start) {
                consider(started + limit);
            }
        }
    }
    wake
}

/// A duration for messages, in the largest whole unit: "1 hour", "90 minutes", "2 days".
pub fn describe_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    let (count, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")]
        .into_iter()
        .find(|(size, _)| seconds != 0 && seconds % size == 0)
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}
