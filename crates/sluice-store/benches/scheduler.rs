//! The scheduler's plan-and-apply throughput on the embedded store (a benchmark, not a test).
//! One pipeline, a 1-minute schedule that started 50,000 minutes ago, an input data node and an
//! activity: 100,000 instances. Step 1 backfills them (created, data nodes FINISHED, activities
//! queued); step 2 hands every task out and finishes it (activities RUNNING, then FINISHED).
//! Each step is load → plan → write → commit, with durable commits, as the server does.
//! `cargo bench -p sluice-store --bench scheduler`

use std::collections::HashMap;
use std::time::Instant;

use chrono::Duration;
use sluice_core::definition_file;
use sluice_core::runtime::{self, Changes, Graph, PlannerConfig, Status, TaskOutcome};
use sluice_core::values::parse_date_time;
use sluice_store::{NewPipeline, SqliteStore, Store};

const INTERVALS: i64 = 50_000;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Status changes an instance went through in a step (creation counts as one).
fn transitions(before: &HashMap<String, Status>, changes: &Changes) -> usize {
    changes
        .instances
        .iter()
        .map(|instance| match before.get(&instance.id) {
            None => 1 + usize::from(instance.status != Status::WaitingOnDependencies),
            Some(old) => usize::from(*old != instance.status),
        })
        .sum()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join("sluice.db"))
            .await
            .expect("store");
        let now = parse_date_time("2026-11-28T00:00:00").expect("time");
        let start = now - Duration::minutes(INTERVALS - 1);
        let text = format!(
            r#"{{"objects": [
            {{"id": "Default", "workerGroup": "wg", "schedule": {{"ref": "Every"}}}},
            {{"id": "Every", "type": "Schedule", "period": "1 minute", "startDateTime": "{}"}},
            {{"id": "Input", "type": "S3DataNode", "directoryPath": "s3://bucket/in"}},
            {{"id": "Work", "type": "ShellCommandActivity", "command": "true", "input": {{"ref": "Input"}}}}]}}"#,
            runtime::render_time(start)
        );
        let definition = definition_file::parse(&text).expect("definition");
        // Every activity instance may be active at once, so every one moves in each step.
        let graph = Graph::build(&definition, "df-BENCH", u32::MAX).expect("graph");
        let config = PlannerConfig {
            max_new_instances: 100_000,
            ..PlannerConfig::default()
        };
        let mut tx = store.begin().await.expect("begin");
        tx.insert_pipeline(&NewPipeline {
            pipeline_id: "df-BENCH".into(),
            account_id: "123456789012".into(),
            creator_identity_id: "root".into(),
            name: "bench".into(),
            unique_id: "bench".into(),
            description: None,
            state: "PENDING".into(),
            created_at: "2026-11-28T00:00:00".into(),
        })
        .await
        .expect("pipeline");
        tx.commit().await.expect("commit");

        let checks = HashMap::new();
        let mut total_transitions = 0;
        let mut total_seconds = 0.0;
        for step in ["backfill", "run every task"] {
            let started = Instant::now();
            let mut tx = store.begin().await.expect("begin");
            let mut state = tx.runtime("df-BENCH").await.expect("load").expect("pipeline");
            let loaded = started.elapsed().as_secs_f64();
            let before: HashMap<String, Status> = state
                .instances()
                .iter()
                .map(|instance| (instance.id.clone(), instance.status))
                .collect();
            let planning = Instant::now();
            if step == "backfill" {
                runtime::activate(&graph, &mut state, now, None, None, config).expect("activate");
            } else {
                let queued: Vec<String> = state
                    .attempts()
                    .iter()
                    .filter(|attempt| attempt.status == Status::WaitingForRunner)
                    .map(|attempt| attempt.id.clone())
                    .collect();
                for (index, attempt) in queued.iter().enumerate() {
                    let task = format!("task-{index}");
                    runtime::lease(&mut state, attempt, &task, Some("bench"), now);
                    runtime::finish_task(&mut state, &task, TaskOutcome::Finished, now).expect("held");
                }
            }
            runtime::advance(&graph, &mut state, now, config, &checks);
            let changes = state.take_changes();
            let planned = planning.elapsed().as_secs_f64();
            let writing = Instant::now();
            tx.save_runtime("df-BENCH", &changes).await.expect("save");
            tx.commit().await.expect("commit");
            let written = writing.elapsed().as_secs_f64();
            let seconds = started.elapsed().as_secs_f64();
            let count = transitions(&before, &changes);
            // Leasing counts too: every activity went RUNNING before FINISHED.
            let count = if step == "backfill" { count } else { count + changes.attempts.len() };
            total_transitions += count;
            total_seconds += seconds;
            println!(
                "{step}: {} instances, {count} transitions in {seconds:.2} s (load {loaded:.2}, plan {planned:.2}, write+commit {written:.2}) = {:.0} transitions/s",
                state.instances().len(),
                count as f64 / seconds
            );
        }
        println!(
            "total: {total_transitions} instance transitions in {total_seconds:.2} s = {:.0} transitions/s; peak RSS {:.0} MiB",
            total_transitions as f64 / total_seconds,
            peak_rss_mib()
        );
    });
}
