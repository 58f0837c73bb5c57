//! What an activated pipeline does over time (reference §g, §h): the objects it runs
//! (`graph`), their instances and attempts (`state`), the planner that moves them forward
//! (`planner`) and the commands users and task runners send (`commands`).
//!
//! Pure like the rest of this crate: "now" is an argument, the store loads and saves `State`,
//! and checks that need I/O (service-evaluated preconditions) arrive as inputs.

pub mod commands;
pub mod graph;
pub mod planner;
pub mod state;
pub mod support;

pub use commands::{
    CommandError, SetStatusCommand, TaskOutcome, activate, adopt_definition, deactivate, finish_task, lease, next_task,
    report_progress, set_status,
};
pub use graph::{ANY_RESOURCE_QUEUE, Graph, Node, NodeRole, RESOURCE_QUEUE_PREFIX, ServiceCheck};
pub use planner::{CheckResult, Event, PlannerConfig, advance, due_checks, next_wake};
pub use state::{Attempt, Changes, ComponentRun, Health, Instance, PipelineRun, PipelineState, State, Status};

use chrono::NaiveDateTime;

/// Instance ids as AWS writes them: `@<component>_<scheduledStartTime>`.
pub fn instance_id(component: &str, scheduled_start: NaiveDateTime) -> String {
    format!("@{component}_{}", render_time(scheduled_start))
}

pub fn attempt_id(instance: &str, number: u32) -> String {
    format!("{instance}_Attempt={number}")
}

/// DateTime as Data Pipeline renders it: `YYYY-MM-DDTHH:MM:SS`.
pub fn render_time(time: NaiveDateTime) -> String {
    time.format("%Y-%m-%dT%H:%M:%S").to_string()
}
