//! Any definition file that validates, activated and run through a week of planner steps with
//! every task failing or finishing: the scheduler must return, never panic or loop forever.
#![no_main]

use std::collections::HashMap;

use chrono::Duration;
use libfuzzer_sys::fuzz_target;
use sluice_core::runtime::{self, Graph, PipelineState, PlannerConfig, State, TaskOutcome};
use sluice_core::values::parse_date_time;
use sluice_core::{Limits, definition_file, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(definition) = definition_file::parse(text) else { return };
    if validate(&definition, &Limits::default()).errored() {
        return;
    }
    let Ok(graph) = Graph::build(&definition, "df-FUZZ", 5) else { return };
    let config = PlannerConfig { max_new_instances: 200, ..PlannerConfig::default() };
    let mut state = State::empty(PipelineState::Pending);
    let mut now = parse_date_time("2026-01-01T00:00:00").expect("time");
    if runtime::activate(&graph, &mut state, now, None, None, config).is_err() {
        return;
    }
    let checks = HashMap::new();
    for step in 0..50u32 {
        runtime::advance(&graph, &mut state, now, config, &checks);
        let queues: Vec<String> = graph.nodes.iter().filter_map(|node| node.queue.clone()).collect();
        for (index, queue) in queues.iter().enumerate() {
            if let Some(attempt) = runtime::next_task(&state, queue, now).map(|attempt| attempt.id.clone()) {
                let task = format!("t{step}-{index}");
                runtime::lease(&mut state, &attempt, &task, None, now);
                let outcome = if (step + index as u32) % 3 == 0 { TaskOutcome::Failed } else { TaskOutcome::Finished };
                let _ = runtime::finish_task(&mut state, &task, outcome, now);
            }
        }
        now += Duration::hours(4);
        let _ = state.take_changes();
    }
});
