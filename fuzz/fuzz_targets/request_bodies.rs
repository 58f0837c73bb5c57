//! Any bytes as the body of each operation the scheduler and the task protocol answer: parsing
//! and the constraint check must return an answer or an error, never panic; QueryObjects
//! selectors and SetStatus values go through their own interpretation too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::runtime::{SetStatusCommand, Status, TaskOutcome};
use sluice_wire::parse_body;
use sluice_wire::shapes::{
    ActivatePipelineInput, DeactivatePipelineInput, DescribeObjectsInput, PollForTaskInput, QueryObjectsInput,
    ReportTaskProgressInput, ReportTaskRunnerHeartbeatInput, SetStatusInput, SetTaskStatusInput,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = parse_body::<ActivatePipelineInput>(data) {
        let _ = input.check();
        let _ = input.values();
    }
    if let Ok(input) = parse_body::<DeactivatePipelineInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<SetStatusInput>(data)
        && input.check().is_ok()
    {
        let _ = SetStatusCommand::parse(&input.status);
        let _ = Status::parse(&input.status);
    }
    if let Ok(input) = parse_body::<QueryObjectsInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<DescribeObjectsInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<PollForTaskInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<ReportTaskProgressInput>(data) {
        let _ = input.check();
    }
    if let Ok(input) = parse_body::<SetTaskStatusInput>(data)
        && input.check().is_ok()
    {
        let _ = TaskOutcome::parse(&input.task_status);
    }
    if let Ok(input) = parse_body::<ReportTaskRunnerHeartbeatInput>(data) {
        let _ = input.check();
    }
});
