//! The runtime state of one pipeline: its activation, a cursor per component, instances and
//! attempts. Every change goes through `State`'s methods, which remember what changed so the
//! store writes only that.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDateTime;

/// `@status` values (reference §h.3), spelled as AWS spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    WaitingOnDependencies,
    WaitingForRunner,
    Running,
    Finished,
    MarkFinished,
    Failed,
    CascadeFailed,
    Canceled,
    TimedOut,
    Skipped,
    Paused,
}

impl Status {
    pub const ALL: &[Status] = &[
        Status::WaitingOnDependencies,
        Status::WaitingForRunner,
        Status::Running,
        Status::Finished,
        Status::MarkFinished,
        Status::Failed,
        Status::CascadeFailed,
        Status::Canceled,
        Status::TimedOut,
        Status::Skipped,
        Status::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::WaitingOnDependencies => "WAITING_ON_DEPENDENCIES",
            Status::WaitingForRunner => "WAITING_FOR_RUNNER",
            Status::Running => "RUNNING",
            Status::Finished => "FINISHED",
            Status::MarkFinished => "MARK_FINISHED",
            Status::Failed => "FAILED",
            Status::CascadeFailed => "CASCADE_FAILED",
            Status::Canceled => "CANCELED",
            Status::TimedOut => "TIMEDOUT",
            Status::Skipped => "SKIPPED",
            Status::Paused => "PAUSED",
        }
    }

    /// Case-insensitive; `CANCELLED` (what `aws datapipeline list-runs` sends) means `CANCELED`.
    pub fn parse(text: &str) -> Option<Status> {
        let upper = text.to_ascii_uppercase();
        if upper == "CANCELLED" {
            return Some(Status::Canceled);
        }
        Status::ALL.iter().copied().find(|status| status.as_str() == upper)
    }

    /// No planner step changes it any more (only a rerun does).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Finished
                | Status::MarkFinished
                | Status::Failed
                | Status::CascadeFailed
                | Status::Canceled
                | Status::TimedOut
                | Status::Skipped
        )
    }

    pub fn is_success(self) -> bool {
        matches!(self, Status::Finished | Status::MarkFinished)
    }

    /// Terminal without success: what a dependency's failure looks like to its consumers.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::CascadeFailed | Status::Canceled | Status::TimedOut
        )
    }
}

/// `@pipelineState` (reference §h.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineState {
    Pending,
    Scheduled,
    Deactivating,
    Inactive,
    Finished,
}

impl PipelineState {
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineState::Pending => "PENDING",
            PipelineState::Scheduled => "SCHEDULED",
            PipelineState::Deactivating => "DEACTIVATING",
            PipelineState::Inactive => "INACTIVE",
            PipelineState::Finished => "FINISHED",
        }
    }

    pub fn parse(text: &str) -> Option<PipelineState> {
        [
            PipelineState::Pending,
            PipelineState::Scheduled,
            PipelineState::Deactivating,
            PipelineState::Inactive,
            PipelineState::Finished,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Error,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "HEALTHY",
            Health::Error => "ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<Health> {
        match text {
            "HEALTHY" => Some(Health::Healthy),
            "ERROR" => Some(Health::Error),
            _ => None,
        }
    }
}

/// The pipeline-level part of the runtime state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRun {
    pub state: PipelineState,
    /// What `startAt: FIRST_ACTIVATION_DATE_TIME` means; set by the first activation.
    pub first_activation: Option<NaiveDateTime>,
    /// The latest ActivatePipeline.
    pub activated_at: Option<NaiveDateTime>,
    /// DeactivatePipeline's `cancelActive` while `Deactivating`.
    pub cancel_active: bool,
    /// When the planner next has something to do without being told (`None`: nothing timed).
    pub wake_at: Option<NaiveDateTime>,
}

/// A component's scheduling cursor, pause flag and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentRun {
    pub component: String,
    /// The next schedule interval to create an instance for.
    pub next_index: u32,
    /// The schedule has no interval left.
    pub exhausted: bool,
    pub paused: bool,
    pub health: Option<Health>,
    pub health_instance: Option<String>,
    pub health_time: Option<NaiveDateTime>,
}

impl ComponentRun {
    pub fn new(component: &str) -> ComponentRun {
        ComponentRun {
            component: component.to_string(),
            next_index: 0,
            exhausted: false,
            paused: false,
            health: None,
            health_instance: None,
            health_time: None,
        }
    }
}

/// One scheduled run of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub component: String,
    pub scheduled_start: NaiveDateTime,
    pub scheduled_end: NaiveDateTime,
    pub status: Status,
    pub attempt_count: u32,
    pub tries_left: u32,
    pub actual_start: Option<NaiveDateTime>,
    pub actual_end: Option<NaiveDateTime>,
    pub head_attempt: Option<String>,
    pub created_at: NaiveDateTime,
    /// `onLateAction` already fired for this run.
    pub late_fired: bool,
    /// Started by RERUN: does not count toward `maxActiveInstances`.
    pub rerun: bool,
    /// Service-evaluated preconditions: when to check next.
    pub next_check_at: Option<NaiveDateTime>,
    /// Why the service ended or cancelled it (`cancellationReason` / `errorMessage`): text of
    /// the service's own, never data a task sent.
    pub reason: Option<String>,
}

/// One try of an instance, and its place in the task queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: String,
    pub instance: String,
    pub component: String,
    pub number: u32,
    pub status: Status,
    /// The queue it waits in: the `workerGroup`, or `runsOn:<pipeline id>/<resource id>`.
    pub queue: String,
    /// Not handed out before this (retry delays).
    pub available_at: NaiveDateTime,
    /// The token a runner holds while the task is handed out to it.
    pub task_id: Option<String>,
    pub leased_at: Option<NaiveDateTime>,
    /// The runner reported progress at least once since the hand-out.
    pub acknowledged: bool,
    pub progress_at: Option<NaiveDateTime>,
    pub actual_start: Option<NaiveDateTime>,
    pub actual_end: Option<NaiveDateTime>,
    pub hostname: Option<String>,
    /// What the runner reported, before the planner acts on it.
    pub outcome: Option<super::TaskOutcome>,
    /// Why the service ended it (timeouts, lost lease, cancellation).
    pub reason: Option<String>,
}

/// Everything the planner reads and changes for one pipeline.
#[derive(Debug, Clone)]
pub struct State {
    pub pipeline: PipelineRun,
    components: Vec<ComponentRun>,
    instances: Vec<Instance>,
    attempts: Vec<Attempt>,
    instance_index: HashMap<String, usize>,
    attempt_index: HashMap<String, usize>,
    /// Attempts by the task id they were last handed out under (checked on use: a requeued
    /// attempt drops its task id).
    task_index: HashMap<String, usize>,
    /// Instance positions per component, in creation order (which is schedule order).
    by_component: HashMap<String, Vec<usize>>,
    pipeline_changed: bool,
    changed_components: BTreeSet<usize>,
    changed_instances: BTreeSet<usize>,
    changed_attempts: BTreeSet<usize>,
}

/// What changed since the state was loaded: what the store writes.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub pipeline: Option<PipelineRun>,
    pub components: Vec<ComponentRun>,
    pub instances: Vec<Instance>,
    pub attempts: Vec<Attempt>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.pipeline.is_none() && self.components.is_empty() && self.instances.is_empty() && self.attempts.is_empty()
    }
}

impl State {
    pub fn new(
        pipeline: PipelineRun,
        components: Vec<ComponentRun>,
        mut instances: Vec<Instance>,
        attempts: Vec<Attempt>,
    ) -> State {
        instances
            .sort_by(|a, b| (a.scheduled_start, &a.component, &a.id).cmp(&(b.scheduled_start, &b.component, &b.id)));
        let mut state = State {
            pipeline,
            components,
            instances: Vec::new(),
            attempts: Vec::new(),
            instance_index: HashMap::new(),
            attempt_index: HashMap::new(),
            task_index: HashMap::new(),
            by_component: HashMap::new(),
            pipeline_changed: false,
            changed_components: BTreeSet::new(),
            changed_instances: BTreeSet::new(),
            changed_attempts: BTreeSet::new(),
        };
        for instance in instances {
            state.push_instance(instance);
        }
        for attempt in attempts {
            state.push_attempt(attempt);
        }
        state.changed_instances.clear();
        state.changed_attempts.clear();
        state
    }

    /// A pipeline that was never activated.
    pub fn empty(state: PipelineState) -> State {
        State::new(
            PipelineRun {
                state,
                first_activation: None,
                activated_at: None,
                cancel_active: false,
                wake_at: None,
            },
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    fn push_instance(&mut self, instance: Instance) -> usize {
        let position = self.instances.len();
        self.instance_index.insert(instance.id.clone(), position);
        self.by_component
            .entry(instance.component.clone())
            .or_default()
            .push(position);
        self.instances.push(instance);
        self.changed_instances.insert(position);
        position
    }

    fn push_attempt(&mut self, attempt: Attempt) -> usize {
        let position = self.attempts.len();
        self.attempt_index.insert(attempt.id.clone(), position);
        if let Some(task) = &attempt.task_id {
            self.task_index.insert(task.clone(), position);
        }
        self.attempts.push(attempt);
        self.changed_attempts.insert(position);
        position
    }

    pub fn pipeline_mut(&mut self) -> &mut PipelineRun {
        self.pipeline_changed = true;
        &mut self.pipeline
    }

    pub fn components(&self) -> &[ComponentRun] {
        &self.components
    }

    pub fn component(&self, id: &str) -> Option<&ComponentRun> {
        self.components.iter().find(|run| run.component == id)
    }

    /// The component's run record, created on first use.
    pub fn component_mut(&mut self, id: &str) -> &mut ComponentRun {
        let position = match self.components.iter().position(|run| run.component == id) {
            Some(position) => position,
            None => {
                self.components.push(ComponentRun::new(id));
                self.components.len() - 1
            }
        };
        self.changed_components.insert(position);
        &mut self.components[position]
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    pub fn instance_position(&self, id: &str) -> Option<usize> {
        self.instance_index.get(id).copied()
    }

    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instance_position(id).map(|position| &self.instances[position])
    }

    pub fn instance_at(&self, position: usize) -> &Instance {
        &self.instances[position]
    }

    pub fn instance_at_mut(&mut self, position: usize) -> &mut Instance {
        self.changed_instances.insert(position);
        &mut self.instances[position]
    }

    pub fn attempt(&self, id: &str) -> Option<&Attempt> {
        self.attempt_index.get(id).map(|position| &self.attempts[*position])
    }

    pub fn attempt_mut(&mut self, id: &str) -> Option<&mut Attempt> {
        let position = *self.attempt_index.get(id)?;
        self.changed_attempts.insert(position);
        Some(&mut self.attempts[position])
    }

    pub fn attempt_by_task(&self, task_id: &str) -> Option<&Attempt> {
        let attempt = &self.attempts[*self.task_index.get(task_id)?];
        (attempt.task_id.as_deref() == Some(task_id)).then_some(attempt)
    }

    /// Hands attempt `id` out under `task_id`.
    pub fn assign_task(&mut self, id: &str, task_id: &str) {
        if let Some(position) = self.attempt_index.get(id).copied() {
            self.changed_attempts.insert(position);
            self.attempts[position].task_id = Some(task_id.to_string());
            self.task_index.insert(task_id.to_string(), position);
        }
    }

    /// Instances of a component in schedule order.
    pub fn instances_of(&self, component: &str) -> &[usize] {
        self.by_component.get(component).map_or(&[], Vec::as_slice)
    }

    pub fn has_instance(&self, id: &str) -> bool {
        self.instance_index.contains_key(id)
    }

    pub fn add_instance(&mut self, instance: Instance) -> usize {
        self.push_instance(instance)
    }

    pub fn add_attempt(&mut self, attempt: Attempt) {
        self.push_attempt(attempt);
    }

    /// What changed, and forget it (the caller saves it).
    pub fn take_changes(&mut self) -> Changes {
        let changes = Changes {
            pipeline: self.pipeline_changed.then(|| self.pipeline.clone()),
            components: self
                .changed_components
                .iter()
                .map(|position| self.components[*position].clone())
                .collect(),
            instances: self
                .changed_instances
                .iter()
                .map(|position| self.instances[*position].clone())
                .collect(),
            attempts: self
                .changed_attempts
                .iter()
                .map(|position| self.attempts[*position].clone())
                .collect(),
        };
        self.pipeline_changed = false;
        self.changed_components.clear();
        self.changed_instances.clear();
        self.changed_attempts.clear();
        changes
    }
}
