//! The scheduler's rules, one scenario at a time: a definition, then activation, task results,
//! SetStatus and the passing of time, with the instances after each step as a snapshot.
//! Refresh with `UPDATE_EXPECT=1 cargo test -p sluice-core --test runtime` and review the diff.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use expect_test::{Expect, expect};
use sluice_core::definition_file;
use sluice_core::runtime::{
    self, CheckResult, Event, Graph, PipelineState, PlannerConfig, SetStatusCommand, State, TaskOutcome,
};
use sluice_core::values::parse_date_time;

fn time(text: &str) -> NaiveDateTime {
    parse_date_time(text).expect("test time")
}

struct Sim {
    graph: Graph,
    state: State,
    now: NaiveDateTime,
    config: PlannerConfig,
    events: Vec<String>,
    tasks: u32,
    checks: HashMap<String, CheckResult>,
}

impl Sim {
    fn new(objects: &str) -> Sim {
        let text = format!(r#"{{"objects": [{objects}]}}"#);
        let definition = definition_file::parse(&text).expect("test definition parses");
        let graph = Graph::build(&definition, "df-TEST", 5).expect("graph builds");
        Sim {
            graph,
            state: State::empty(PipelineState::Pending),
            now: time("2026-11-28T12:00:00"),
            config: PlannerConfig::default(),
            events: Vec::new(),
            tasks: 0,
            checks: HashMap::new(),
        }
    }

    fn activate(&mut self, start_timestamp: Option<&str>) -> Result<(), String> {
        runtime::activate(
            &self.graph,
            &mut self.state,
            self.now,
            start_timestamp.map(time),
            Some(Duration::days(1)),
            self.config,
        )
        .map_err(|error| error.0)?;
        self.step();
        Ok(())
    }

    fn step(&mut self) {
        let events = runtime::advance(&self.graph, &mut self.state, self.now, self.config, &self.checks);
        for event in events {
            self.events.push(match event {
                Event::ActionFired {
                    action,
                    action_type,
                    instance,
                    trigger,
                } => format!("{trigger} {action} ({action_type}) for {instance}"),
                Event::InstanceEnded { instance, status } => format!("{instance} ended {}", status.as_str()),
                Event::TaskRequeued { attempt } => format!("{attempt} requeued"),
            });
        }
    }

    fn at(&mut self, when: &str) {
        self.now = time(when);
        self.step();
    }

    fn later(&mut self, minutes: i64) {
        self.now += Duration::minutes(minutes);
        self.step();
    }

    /// A runner on `queue` takes the next task and acknowledges it.
    fn poll(&mut self, queue: &str) -> Option<String> {
        let attempt = runtime::next_task(&self.state, queue, self.now)?.id.clone();
        self.tasks += 1;
        let task = format!("task-{}", self.tasks);
        runtime::lease(&mut self.state, &attempt, &task, Some("host"), self.now);
        runtime::report_progress(&mut self.state, &task, self.now).expect("progress");
        self.step();
        Some(task)
    }

    fn report(&mut self, task: &str, outcome: TaskOutcome) {
        runtime::finish_task(&mut self.state, task, outcome, self.now).expect("task is held");
        self.step();
    }

    /// Polls and reports until nothing is handed out: every task gets `outcome`.
    fn run_all(&mut self, queue: &str, outcome: TaskOutcome) {
        while let Some(task) = self.poll(queue) {
            self.report(&task, outcome);
        }
    }

    fn set_status(&mut self, ids: &[&str], status: &str) -> Result<(), String> {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        let command = SetStatusCommand::parse(status).expect("a SetStatus value");
        let graph = self.graph.clone();
        let events = runtime::set_status(
            &graph,
            &mut self.state,
            &ids,
            command,
            &|id| graph.node(id).is_some(),
            self.now,
        )
        .map_err(|error| error.0)?;
        for event in events {
            if let Event::InstanceEnded { instance, status } = event {
                self.events.push(format!("{instance} ended {}", status.as_str()));
            }
        }
        self.step();
        Ok(())
    }

    fn snapshot(&mut self) -> String {
        let mut out = format!(
            "pipeline {} wake {}\n",
            self.state.pipeline.state.as_str(),
            self.state
                .pipeline
                .wake_at
                .map_or("-".to_string(), runtime::render_time)
        );
        let mut instances: Vec<_> = self.state.instances().to_vec();
        instances.sort_by(|a, b| (a.scheduled_start, &a.id).cmp(&(b.scheduled_start, &b.id)));
        for instance in instances {
            out.push_str(&format!(
                "{} {} tries={} attempts={}",
                instance.id,
                instance.status.as_str(),
                instance.tries_left,
                instance.attempt_count
            ));
            if let Some(head) = instance.head_attempt.as_deref().and_then(|id| self.state.attempt(id)) {
                out.push_str(&format!(
                    " head={}@{}",
                    head.status.as_str(),
                    runtime::render_time(head.available_at)
                ));
            }
            if let Some(reason) = &instance.reason {
                out.push_str(&format!(" ({reason})"));
            }
            out.push('\n');
        }
        for run in self.state.components() {
            if let Some(health) = run.health {
                out.push_str(&format!("health {} {}\n", run.component, health.as_str()));
            }
        }
        for event in self.events.drain(..) {
            out.push_str(&format!("event {event}\n"));
        }
        out
    }

    fn check(&mut self, expected: Expect) {
        expected.assert_eq(&self.snapshot());
    }
}

const EVERY_15: &str = r#"{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "Every"}},
    {"id": "Every", "type": "Schedule", "period": "15 minutes", "startDateTime": "2026-11-28T11:00:00"}"#;

fn with(head: &str, objects: &str) -> String {
    format!("{head}, {objects}")
}

#[test]
fn cron_backfills_from_an_hour_ago_and_runs_at_each_period_start() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi"}"#,
    ));
    sim.activate(None).expect("activates");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:15:00
        @Hello_2026-11-28T11:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:30:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:45:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
    "#]]);
    sim.run_all("wg", TaskOutcome::Finished);
    sim.at("2026-11-28T12:14:59");
    sim.at("2026-11-28T12:15:00");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:30:00
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:30:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:45:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T12:15:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:15:00
        health Hello HEALTHY
        event @Hello_2026-11-28T11:00:00 ended FINISHED
        event @Hello_2026-11-28T11:15:00 ended FINISHED
        event @Hello_2026-11-28T11:30:00 ended FINISHED
        event @Hello_2026-11-28T11:45:00 ended FINISHED
        event @Hello_2026-11-28T12:00:00 ended FINISHED
    "#]]);
}

#[test]
fn timeseries_runs_at_each_period_end() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi", "scheduleType": "timeseries"}"#,
    ));
    sim.activate(None).expect("activates");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:15:00
        @Hello_2026-11-28T11:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:30:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:45:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
    "#]]);
}

#[test]
fn an_end_date_finishes_the_pipeline_once_everything_ran() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "Every"}},
        {"id": "Every", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-11-28T11:00:00", "endDateTime": "2026-11-28T13:00:00"},
        {"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi"}"#,
    );
    sim.activate(None).expect("activates");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline FINISHED wake -
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        health Hello HEALTHY
        event @Hello_2026-11-28T11:00:00 ended FINISHED
        event @Hello_2026-11-28T12:00:00 ended FINISHED
    "#]]);
    sim.at("2026-11-28T13:00:00");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline FINISHED wake -
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        health Hello HEALTHY
    "#]]);
}

#[test]
fn occurrences_count_from_first_activation() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "Daily"}},
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startAt": "FIRST_ACTIVATION_DATE_TIME", "occurrences": "2"},
        {"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi"}"#,
    );
    sim.activate(None).expect("activates");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.at("2026-11-29T12:00:00");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.at("2026-11-30T12:00:00");
    sim.check(expect![[r#"
        pipeline FINISHED wake -
        @Hello_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-29T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-29T12:00:00
        health Hello HEALTHY
        event @Hello_2026-11-28T12:00:00 ended FINISHED
        event @Hello_2026-11-29T12:00:00 ended FINISHED
    "#]]);
}

#[test]
fn max_active_instances_releases_one_at_a_time() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi", "maxActiveInstances": "1"}"#,
    ));
    sim.activate(None).expect("activates");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:15:00
        @Hello_2026-11-28T11:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:45:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
    "#]]);
    let task = sim.poll("wg").expect("the first is handed out");
    assert_eq!(sim.poll("wg"), None, "only one is active");
    sim.report(&task, TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:15:00
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T11:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:45:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        health Hello HEALTHY
        event @Hello_2026-11-28T11:00:00 ended FINISHED
    "#]]);
}

#[test]
fn the_backfill_guard_and_start_timestamp() {
    let objects = r#"{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "Every"}},
        {"id": "Every", "type": "Schedule", "period": "6 hours", "startDateTime": "2026-11-26T00:00:00"},
        {"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi"}"#;
    let mut sim = Sim::new(objects);
    expect!["Hello: the first scheduled start 2026-11-26T00:00:00 is more than 24 hours before activation; pass startTimestamp to backfill from a chosen time"].assert_eq(&sim.activate(None).expect_err("blocked"));
    assert_eq!(sim.state.pipeline.state, PipelineState::Pending, "nothing changed");
    sim.activate(Some("2026-11-28T06:00:00"))
        .expect("activates from a chosen time");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T18:00:00
        @Hello_2026-11-26T00:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-26T06:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-26T12:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-26T18:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-27T00:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-27T06:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-27T12:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-27T18:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-28T00:00:00 SKIPPED tries=0 attempts=0
        @Hello_2026-11-28T06:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Hello_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
    "#]]);
}

#[test]
fn on_demand_runs_once_per_activation() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg", "scheduleType": "ondemand"},
        {"id": "Input", "type": "S3DataNode", "directoryPath": "s3://bucket/in"},
        {"id": "Copy", "type": "ShellCommandActivity", "command": "echo", "input": {"ref": "Input"}}"#,
    );
    sim.activate(None).expect("activates");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Copy_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Input_2026-11-28T12:00:00 FINISHED tries=0 attempts=0
        health Input HEALTHY
        event @Input_2026-11-28T12:00:00 ended FINISHED
    "#]]);
    sim.later(0);
    expect!["1 on-demand run(s) are still active and maxActiveInstances is 1; wait for one to end or cancel it"]
        .assert_eq(&sim.activate(None).expect_err("one run is active"));
    sim.run_all("wg", TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Copy_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Input_2026-11-28T12:00:00 FINISHED tries=0 attempts=0
        health Input HEALTHY
        health Copy HEALTHY
        event @Copy_2026-11-28T12:00:00 ended FINISHED
    "#]]);
    sim.later(60);
    sim.activate(None).expect("a second run");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Copy_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Input_2026-11-28T12:00:00 FINISHED tries=0 attempts=0
        @Copy_2026-11-28T13:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T13:00:00
        @Input_2026-11-28T13:00:00 FINISHED tries=0 attempts=0
        health Input HEALTHY
        health Copy HEALTHY
        event @Input_2026-11-28T13:00:00 ended FINISHED
    "#]]);
}

#[test]
fn retries_wait_for_the_retry_delay_then_fail_with_on_fail() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "false", "maximumRetries": "2",
            "retryDelay": "5 minutes", "onFail": {"ref": "Alarm"}, "schedule": {"ref": "Once"}},
        {"id": "Once", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-28T12:00:00", "occurrences": "1"},
        {"id": "Alarm", "type": "SnsAlarm", "topicArn": "arn:aws:sns:us-east-1:123456789012:t", "subject": "s", "message": "m", "role": "r"}"#,
    ));
    sim.activate(None).expect("activates");
    let task = sim.poll("wg").expect("first attempt");
    sim.report(&task, TaskOutcome::Failed);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Hello_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=1 attempts=2 head=WAITING_FOR_RUNNER@2026-11-28T12:05:00
    "#]]);
    sim.later(4);
    assert_eq!(sim.poll("wg"), None, "not before the retry delay");
    sim.later(1);
    let task = sim.poll("wg").expect("second attempt");
    sim.report(&task, TaskOutcome::Failed);
    sim.later(5);
    let task = sim.poll("wg").expect("third attempt");
    sim.report(&task, TaskOutcome::Failed);
    sim.check(expect![[r#"
        pipeline FINISHED wake -
        @Hello_2026-11-28T12:00:00 FAILED tries=0 attempts=3 head=FAILED@2026-11-28T12:10:00
        health Hello ERROR
        event @Hello_2026-11-28T12:00:00 ended FAILED
        event onFail Alarm (SnsAlarm) for @Hello_2026-11-28T12:00:00
    "#]]);
}

#[test]
fn lost_runners_attempt_timeouts_and_unacknowledged_tasks() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg", "scheduleType": "ondemand"},
        {"id": "Slow", "type": "ShellCommandActivity", "command": "sleep 1000", "attemptTimeout": "1 hour", "maximumRetries": "1", "retryDelay": "1 minute"}"#,
    );
    sim.activate(None).expect("activates");
    // Handed out but never acknowledged: back in the queue after 2 minutes.
    let attempt = runtime::next_task(&sim.state, "wg", sim.now)
        .expect("queued")
        .id
        .clone();
    runtime::lease(&mut sim.state, &attempt, "unacked", None, sim.now);
    sim.later(2);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Slow_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=1 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        event @Slow_2026-11-28T12:00:00_Attempt=1 requeued
    "#]]);
    // Acknowledged, then silent for the 15-minute lease: the attempt fails and is retried.
    let _task = sim.poll("wg").expect("handed out again");
    sim.later(15);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Slow_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=2 head=WAITING_FOR_RUNNER@2026-11-28T12:18:00
    "#]]);
    // Reporting progress all along, but past attemptTimeout.
    sim.later(1);
    let task = sim.poll("wg").expect("retry");
    for _ in 0..5 {
        sim.later(10);
        runtime::report_progress(&mut sim.state, &task, sim.now).expect("still held");
    }
    sim.later(10);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Slow_2026-11-28T12:00:00 FAILED tries=0 attempts=2 head=FAILED@2026-11-28T12:18:00 (the attempt ran longer than attemptTimeout (1 hour))
        health Slow ERROR
        event @Slow_2026-11-28T12:00:00 ended FAILED
    "#]]);
}

#[test]
fn late_actions_fire_while_the_instance_is_late() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "sleep 1", "lateAfterTimeout": "30 minutes",
            "onLateAction": [{"ref": "Alarm"}, {"ref": "Stop"}], "schedule": {"ref": "Once"}},
        {"id": "Once", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-28T12:00:00", "occurrences": "1"},
        {"id": "Alarm", "type": "SnsAlarm", "topicArn": "arn:aws:sns:us-east-1:123456789012:t", "subject": "s", "message": "m", "role": "r"},
        {"id": "Stop", "type": "Terminate"}"#,
    ));
    sim.activate(None).expect("activates");
    let task = sim.poll("wg").expect("running");
    for minutes in [10, 10, 9] {
        sim.later(minutes);
        runtime::report_progress(&mut sim.state, &task, sim.now).expect("held");
    }
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:30:00
        @Hello_2026-11-28T12:00:00 RUNNING tries=0 attempts=1 head=RUNNING@2026-11-28T12:00:00
    "#]]);
    sim.later(1);
    sim.check(expect![[r#"
        pipeline FINISHED wake -
        @Hello_2026-11-28T12:00:00 CANCELED tries=0 attempts=1 head=CANCELED@2026-11-28T12:00:00 (terminated by Stop: late after lateAfterTimeout (30 minutes))
        health Hello ERROR
        event onLateAction Alarm (SnsAlarm) for @Hello_2026-11-28T12:00:00
        event onLateAction Stop (Terminate) for @Hello_2026-11-28T12:00:00
        event @Hello_2026-11-28T12:00:00 ended CANCELED
    "#]]);
    assert_eq!(
        runtime::report_progress(&mut sim.state, &task, sim.now),
        Ok(true),
        "the runner is told to stop"
    );
}

const CHAIN: &str = r#"{"id": "Default", "workerGroup": "wg", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE"},
    {"id": "Extract", "type": "ShellCommandActivity", "command": "x", "output": {"ref": "Staged"}},
    {"id": "Staged", "type": "S3DataNode", "directoryPath": "s3://bucket/staged"},
    {"id": "Load", "type": "ShellCommandActivity", "command": "y", "input": {"ref": "Staged"}, "onFail": {"ref": "Alarm"}},
    {"id": "Alarm", "type": "SnsAlarm", "topicArn": "arn:aws:sns:us-east-1:123456789012:t", "subject": "s", "message": "m", "role": "r"}"#;

#[test]
fn cascade_failure_and_rerun() {
    let mut sim = Sim::new(CHAIN);
    sim.activate(None).expect("activates");
    sim.run_all("wg", TaskOutcome::Failed);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Extract_2026-11-28T12:00:00 FAILED tries=0 attempts=1 head=FAILED@2026-11-28T12:00:00
        @Load_2026-11-28T12:00:00 CASCADE_FAILED tries=0 attempts=0 (dependency @Staged_2026-11-28T12:00:00 is CASCADE_FAILED)
        @Staged_2026-11-28T12:00:00 CASCADE_FAILED tries=0 attempts=0 (dependency @Extract_2026-11-28T12:00:00 is FAILED)
        health Extract ERROR
        health Staged ERROR
        health Load ERROR
        event @Extract_2026-11-28T12:00:00 ended FAILED
        event @Staged_2026-11-28T12:00:00 ended CASCADE_FAILED
        event @Load_2026-11-28T12:00:00 ended CASCADE_FAILED
        event onFail Alarm (SnsAlarm) for @Load_2026-11-28T12:00:00
    "#]]);
    let extract = sim.state.instances()[0].id.clone();
    sim.set_status(&[&extract], "rerun").expect("rerun");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Extract_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=2 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        @Load_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Staged_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        health Extract ERROR
        health Staged ERROR
        health Load ERROR
    "#]]);
    sim.run_all("wg", TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Extract_2026-11-28T12:00:00 FINISHED tries=0 attempts=2 head=FINISHED@2026-11-28T12:00:00
        @Load_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Staged_2026-11-28T12:00:00 FINISHED tries=0 attempts=0
        health Extract HEALTHY
        health Staged HEALTHY
        health Load HEALTHY
        event @Extract_2026-11-28T12:00:00 ended FINISHED
        event @Staged_2026-11-28T12:00:00 ended FINISHED
        event @Load_2026-11-28T12:00:00 ended FINISHED
    "#]]);
}

#[test]
fn without_cascade_consumers_wait() {
    let mut sim = Sim::new(&CHAIN.replace(r#", "failureAndRerunMode": "CASCADE""#, ""));
    sim.activate(None).expect("activates");
    sim.run_all("wg", TaskOutcome::Failed);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Extract_2026-11-28T12:00:00 FAILED tries=0 attempts=1 head=FAILED@2026-11-28T12:00:00
        @Load_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Staged_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        health Extract ERROR
        event @Extract_2026-11-28T12:00:00 ended FAILED
    "#]]);
}

#[test]
fn set_status_pause_resume_cancel_mark_finished() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "A", "type": "ShellCommandActivity", "command": "a", "schedule": {"ref": "Once"}},
        {"id": "B", "type": "ShellCommandActivity", "command": "b", "dependsOn": {"ref": "A"}, "schedule": {"ref": "Once"}},
        {"id": "Once", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-28T12:00:00", "occurrences": "2"}"#,
    ));
    sim.activate(None).expect("activates");
    sim.set_status(&["A"], "PAUSE").expect("pause");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-29T12:00:00
        @A_2026-11-28T12:00:00 PAUSED tries=0 attempts=1 head=PAUSED@2026-11-28T12:00:00
        @B_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
    "#]]);
    assert_eq!(sim.poll("wg"), None, "a paused component hands nothing out");
    sim.set_status(&["A"], "resume").expect("resume");
    let a = "@A_2026-11-28T12:00:00";
    let b = "@B_2026-11-28T12:00:00";
    expect!["objectIds: mixes components with instances or attempts; send them in separate calls"]
        .assert_eq(&sim.set_status(&["A", a], "PAUSE").expect_err("mixed"));
    expect!["objectIds: '@A_2026-11-28T12:00:00' is WAITING_FOR_RUNNER; only an ended instance can be rerun"]
        .assert_eq(&sim.set_status(&[a], "RERUN").expect_err("not ended"));
    expect!["objectIds: 'Nope' is not an object of this pipeline"]
        .assert_eq(&sim.set_status(&["Nope"], "PAUSE").expect_err("unknown"));
    expect![
        "status: instances and attempts take TRY_CANCEL, RERUN or MARK_FINISHED; PAUSE and RESUME apply to components"
    ]
    .assert_eq(&sim.set_status(&[a], "PAUSE").expect_err("wrong sphere"));
    sim.set_status(&[a], "MARK_FINISHED").expect("mark finished");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-29T12:00:00
        @A_2026-11-28T12:00:00 MARK_FINISHED tries=0 attempts=1 head=CANCELED@2026-11-28T12:00:00 (marked finished by SetStatus MARK_FINISHED)
        @B_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        health A HEALTHY
        event @A_2026-11-28T12:00:00 ended MARK_FINISHED
    "#]]);
    sim.set_status(&[b], "TRY_CANCEL").expect("cancel");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-29T12:00:00
        @A_2026-11-28T12:00:00 MARK_FINISHED tries=0 attempts=1 head=CANCELED@2026-11-28T12:00:00 (marked finished by SetStatus MARK_FINISHED)
        @B_2026-11-28T12:00:00 CANCELED tries=0 attempts=1 head=CANCELED@2026-11-28T12:00:00 (canceled by SetStatus TRY_CANCEL)
        health A HEALTHY
        health B ERROR
        event @B_2026-11-28T12:00:00 ended CANCELED
    "#]]);
    sim.set_status(&[&format!("{b}_Attempt=1")], "rerun")
        .expect("an attempt stands for its instance");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-29T12:00:00
        @A_2026-11-28T12:00:00 MARK_FINISHED tries=0 attempts=1 head=CANCELED@2026-11-28T12:00:00 (marked finished by SetStatus MARK_FINISHED)
        @B_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=2 head=WAITING_FOR_RUNNER@2026-11-28T12:00:00
        health A HEALTHY
        health B ERROR
    "#]]);
    sim.at("2026-11-29T12:00:00");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline FINISHED wake -
        @A_2026-11-28T12:00:00 MARK_FINISHED tries=0 attempts=1 head=CANCELED@2026-11-28T12:00:00 (marked finished by SetStatus MARK_FINISHED)
        @B_2026-11-28T12:00:00 FINISHED tries=0 attempts=2 head=FINISHED@2026-11-28T12:00:00
        @A_2026-11-29T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-29T12:00:00
        @B_2026-11-29T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-29T12:00:00
        health A HEALTHY
        health B HEALTHY
        event @B_2026-11-28T12:00:00 ended FINISHED
        event @A_2026-11-29T12:00:00 ended FINISHED
        event @B_2026-11-29T12:00:00 ended FINISHED
    "#]]);
    expect!["the pipeline is FINISHED: extend its schedule and activate it to run it again"]
        .assert_eq(&sim.set_status(&[a], "RERUN").expect_err("finished pipeline"));
}

#[test]
fn deactivation_cancels_or_drains_and_reactivation_catches_up() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "echo hi", "maxActiveInstances": "1"}"#,
    ));
    sim.activate(None).expect("activates");
    let task = sim.poll("wg").expect("one runs");
    runtime::deactivate(&mut sim.state, false).expect("deactivate, let it finish");
    sim.step();
    sim.check(expect![[r#"
        pipeline DEACTIVATING wake 2026-11-28T12:15:00
        @Hello_2026-11-28T11:00:00 RUNNING tries=0 attempts=1 head=RUNNING@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:45:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
    "#]]);
    sim.report(&task, TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline INACTIVE wake -
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:45:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        health Hello HEALTHY
        event @Hello_2026-11-28T11:00:00 ended FINISHED
    "#]]);
    sim.at("2026-11-28T12:40:00");
    sim.activate(None).expect("reactivates");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:45:00
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:40:00
        @Hello_2026-11-28T11:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:45:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:15:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        health Hello HEALTHY
    "#]]);
    runtime::deactivate(&mut sim.state, true).expect("deactivate, cancel");
    sim.step();
    sim.check(expect![[r#"
        pipeline INACTIVE wake -
        @Hello_2026-11-28T11:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Hello_2026-11-28T11:15:00 CANCELED tries=0 attempts=1 head=CANCELED@2026-11-28T12:40:00 (the pipeline was deactivated)
        @Hello_2026-11-28T11:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T11:45:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:15:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Hello_2026-11-28T12:30:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        health Hello ERROR
        event @Hello_2026-11-28T11:15:00 ended CANCELED
    "#]]);
}

#[test]
fn preconditions_checked_by_the_service_and_by_runners() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg", "scheduleType": "ondemand"},
        {"id": "Ready", "type": "S3KeyExists", "s3Key": "s3://bucket/ready", "retryDelay": "10 minutes", "preconditionTimeout": "30 minutes"},
        {"id": "Script", "type": "ShellCommandPrecondition", "command": "test -f x", "retryDelay": "5 minutes"},
        {"id": "Input", "type": "S3DataNode", "directoryPath": "s3://bucket/in", "precondition": [{"ref": "Ready"}, {"ref": "Script"}]},
        {"id": "Use", "type": "ShellCommandActivity", "command": "echo", "input": {"ref": "Input"}}"#,
    );
    sim.activate(None).expect("activates");
    let ready = sim
        .state
        .instances()
        .iter()
        .find(|instance| instance.component == "Ready")
        .expect("instance")
        .id
        .clone();
    assert_eq!(
        runtime::due_checks(&sim.graph, &sim.state, sim.now),
        vec![ready.clone()]
    );
    sim.checks.insert(ready.clone(), Ok(false));
    sim.step();
    let task = sim.poll("wg").expect("the runner precondition");
    sim.report(&task, TaskOutcome::False);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:10:00
        @Input_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
        @Ready_2026-11-28T12:00:00 RUNNING tries=0 attempts=0
        @Script_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=2 head=WAITING_FOR_RUNNER@2026-11-28T12:05:00
        @Use_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
    "#]]);
    sim.checks.insert(ready.clone(), Ok(true));
    sim.later(10);
    let task = sim.poll("wg").expect("checked again");
    sim.report(&task, TaskOutcome::Finished);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Input_2026-11-28T12:00:00 FINISHED tries=0 attempts=0
        @Ready_2026-11-28T12:00:00 FINISHED tries=0 attempts=0
        @Script_2026-11-28T12:00:00 FINISHED tries=0 attempts=2 head=FINISHED@2026-11-28T12:05:00
        @Use_2026-11-28T12:00:00 WAITING_FOR_RUNNER tries=0 attempts=1 head=WAITING_FOR_RUNNER@2026-11-28T12:10:00
        health Ready HEALTHY
        health Script HEALTHY
        health Input HEALTHY
        event @Ready_2026-11-28T12:00:00 ended FINISHED
        event @Script_2026-11-28T12:00:00 ended FINISHED
        event @Input_2026-11-28T12:00:00 ended FINISHED
    "#]]);
}

#[test]
fn a_precondition_that_never_holds_times_out() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg", "scheduleType": "ondemand", "failureAndRerunMode": "cascade"},
        {"id": "Ready", "type": "S3PrefixNotEmpty", "s3Prefix": "s3://bucket/in/", "retryDelay": "10 minutes", "preconditionTimeout": "20 minutes"},
        {"id": "Use", "type": "ShellCommandActivity", "command": "echo", "precondition": {"ref": "Ready"}}"#,
    );
    sim.activate(None).expect("activates");
    let ready = sim.state.instances()[0].id.clone();
    sim.checks.insert(ready, Err("bucket 'bucket' does not exist".into()));
    sim.step();
    sim.later(10);
    sim.later(10);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Ready_2026-11-28T12:00:00 FAILED tries=0 attempts=0 (the precondition could not be checked: bucket 'bucket' does not exist)
        @Use_2026-11-28T12:00:00 FAILED tries=0 attempts=0 (precondition @Ready_2026-11-28T12:00:00 failed)
        health Ready ERROR
        health Use ERROR
        event @Ready_2026-11-28T12:00:00 ended FAILED
        event @Use_2026-11-28T12:00:00 ended FAILED
    "#]]);
}

#[test]
fn resources_run_while_their_activities_need_them() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "scheduleType": "ondemand"},
        {"id": "Box", "type": "Ec2Resource", "terminateAfter": "1 hour"},
        {"id": "First", "type": "ShellCommandActivity", "command": "a", "runsOn": {"ref": "Box"}},
        {"id": "Second", "type": "ShellCommandActivity", "command": "b", "runsOn": {"ref": "Box"}, "dependsOn": {"ref": "First"}}"#,
    );
    sim.activate(None).expect("activates");
    let task = sim.poll("runsOn:df-TEST/Box").expect("first");
    sim.check(expect![[r#"
        pipeline SCHEDULED wake 2026-11-28T12:15:00
        @Box_2026-11-28T12:00:00 RUNNING tries=0 attempts=0
        @First_2026-11-28T12:00:00 RUNNING tries=0 attempts=1 head=RUNNING@2026-11-28T12:00:00
        @Second_2026-11-28T12:00:00 WAITING_ON_DEPENDENCIES tries=0 attempts=0
    "#]]);
    sim.report(&task, TaskOutcome::Finished);
    let _task = sim.poll("runsOn:df-TEST/Box").expect("second");
    sim.later(60);
    sim.check(expect![[r#"
        pipeline SCHEDULED wake -
        @Box_2026-11-28T12:00:00 TIMEDOUT tries=0 attempts=0 (the resource ran longer than terminateAfter (1 hour))
        @First_2026-11-28T12:00:00 FINISHED tries=0 attempts=1 head=FINISHED@2026-11-28T12:00:00
        @Second_2026-11-28T12:00:00 FAILED tries=0 attempts=1 head=FAILED@2026-11-28T12:00:00 (resource @Box_2026-11-28T12:00:00 timed out)
        health Box ERROR
        health First HEALTHY
        health Second ERROR
        event @First_2026-11-28T12:00:00 ended FINISHED
        event @Box_2026-11-28T12:00:00 ended TIMEDOUT
        event @Second_2026-11-28T12:00:00 ended FAILED
    "#]]);
}

#[test]
fn statuses_parse_as_aws_and_the_cli_spell_them() {
    use runtime::Status;
    assert_eq!(Status::parse("cancelled"), Some(Status::Canceled));
    assert_eq!(Status::parse("CANCELED"), Some(Status::Canceled));
    assert_eq!(Status::parse("waiting_for_runner"), Some(Status::WaitingForRunner));
    assert_eq!(Status::parse("AWAITING_RUNNER"), None);
    assert_eq!(SetStatusCommand::parse("pause"), Some(SetStatusCommand::Pause));
    assert_eq!(SetStatusCommand::parse("CANCELLED"), Some(SetStatusCommand::Cancel));
    assert_eq!(SetStatusCommand::parse("Try_Cancel"), Some(SetStatusCommand::Cancel));
    assert_eq!(SetStatusCommand::parse("FINISH"), None);
}

#[test]
fn graph_problems_name_the_object_and_field() {
    let text = r#"{"objects": [{"id": "Default", "schedule": {"ref": "Every"}},
        {"id": "Every", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-01-01T00:00:00"},
        {"id": "A", "type": "ShellCommandActivity", "command": "a", "maximumRetries": "9", "onFail": {"ref": "Every"}},
        {"id": "B", "type": "ShellCommandActivity", "command": "b", "workerGroup": "wg", "scheduleType": "ondemand"}]}"#;
    let definition = definition_file::parse(text).expect("parses");
    let problems = Graph::build(&definition, "df-TEST", 5).expect_err("problems");
    expect![[r#"
        A: field 'maximumRetries': 9 is outside 0..5
        B: field 'scheduleType': ondemand applies to the whole pipeline and must be set on Default
        A: an activity needs 'runsOn' or 'workerGroup' to be run
        A: 'Every' is not an action object"#]]
    .assert_eq(&problems.join("\n"));
}

#[test]
fn a_daily_consumer_of_an_hourly_dependency_waits_for_the_days_last_hour() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "workerGroup": "wg"},
        {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-11-28T12:00:00"},
        {"id": "Daily", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-28T12:00:00", "occurrences": "1"},
        {"id": "Extract", "type": "ShellCommandActivity", "command": "x", "schedule": {"ref": "Hourly"}},
        {"id": "Report", "type": "ShellCommandActivity", "command": "y", "schedule": {"ref": "Daily"},
         "dependsOn": {"ref": "Extract"}, "scheduleType": "timeseries"}"#,
    );
    sim.activate(None).expect("activates");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.at("2026-11-29T10:59:00");
    sim.run_all("wg", TaskOutcome::Finished);
    sim.at("2026-11-29T12:00:00");
    let report = "@Report_2026-11-28T12:00:00";
    let status = |sim: &Sim| sim.state.instance(report).map(|instance| instance.status);
    assert_eq!(
        status(&sim),
        Some(runtime::Status::WaitingOnDependencies),
        "the day's last hour (11:00) has not run yet"
    );
    sim.run_all("wg", TaskOutcome::Finished);
    assert_eq!(status(&sim), Some(runtime::Status::Finished));
}

#[test]
fn a_paused_late_instance_does_not_keep_the_planner_busy_and_on_demand_runs_resume() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Hello", "type": "ShellCommandActivity", "command": "x", "lateAfterTimeout": "5 minutes",
            "schedule": {"ref": "Once"}},
        {"id": "Once", "type": "Schedule", "period": "1 day", "startDateTime": "2026-11-28T12:00:00", "occurrences": "1"}"#,
    ));
    sim.activate(None).expect("activates");
    sim.set_status(&["Hello"], "PAUSE").expect("pause");
    sim.later(10);
    assert_eq!(sim.state.pipeline.wake_at, None, "nothing timed while paused");

    let mut on_demand = Sim::new(CHAIN);
    on_demand.activate(None).expect("activates");
    let task = on_demand.poll("wg").expect("extract");
    runtime::deactivate(&mut on_demand.state, false).expect("drain");
    on_demand.report(&task, TaskOutcome::Finished);
    assert_eq!(on_demand.state.pipeline.state, PipelineState::Inactive);
    on_demand.activate(None).expect("the stopped run resumes");
    assert_eq!(on_demand.state.pipeline.state, PipelineState::Scheduled);
    on_demand.run_all("wg", TaskOutcome::Finished);
    assert!(
        on_demand
            .state
            .instances()
            .iter()
            .all(|instance| instance.status.is_success())
    );
}

#[test]
fn a_new_definition_after_deactivation_continues_each_schedule() {
    let mut sim = Sim::new(&with(
        EVERY_15,
        r#"{"id": "Old", "type": "ShellCommandActivity", "command": "x"},
        {"id": "Kept", "type": "ShellCommandActivity", "command": "y"}"#,
    ));
    sim.activate(None).expect("activates");
    runtime::deactivate(&mut sim.state, false).expect("deactivate");
    sim.step();
    // The new definition drops Old and runs Kept hourly from the same start.
    let text = r#"{"objects": [{"id": "Default", "workerGroup": "wg", "schedule": {"ref": "Hourly"}},
        {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-11-28T11:00:00"},
        {"id": "Kept", "type": "ShellCommandActivity", "command": "y"}]}"#;
    sim.graph = Graph::build(&definition_file::parse(text).expect("parses"), "df-TEST", 5).expect("graph");
    sim.at("2026-11-28T13:10:00");
    runtime::adopt_definition(&sim.graph, &mut sim.state, sim.now);
    sim.activate(None).expect("activates again");
    let ids: Vec<String> = sim
        .state
        .instances()
        .iter()
        .filter(|instance| !instance.status.is_terminal())
        .map(|instance| instance.id.clone())
        .collect();
    expect![[r#"
        @Kept_2026-11-28T11:00:00
        @Kept_2026-11-28T11:15:00
        @Kept_2026-11-28T11:30:00
        @Kept_2026-11-28T11:45:00
        @Kept_2026-11-28T12:00:00
        @Kept_2026-11-28T13:00:00"#]]
    .assert_eq(&ids.join("\n"));
    assert!(
        sim.state
            .instances()
            .iter()
            .filter(|instance| instance.component == "Old")
            .all(|instance| instance.status == runtime::Status::Canceled)
    );
}

#[test]
fn a_resource_timing_out_fails_only_the_work_of_its_own_interval() {
    let mut sim = Sim::new(
        r#"{"id": "Default", "schedule": {"ref": "Hourly"}},
        {"id": "Hourly", "type": "Schedule", "period": "1 hour", "startDateTime": "2026-11-28T12:00:00"},
        {"id": "Box", "type": "Ec2Resource", "terminateAfter": "90 minutes"},
        {"id": "Work", "type": "ShellCommandActivity", "command": "sleep 9999", "runsOn": {"ref": "Box"}}"#,
    );
    sim.config.lease = Duration::hours(10);
    sim.activate(None).expect("activates");
    let first = sim.poll("runsOn:df-TEST/Box").expect("the noon run");
    sim.at("2026-11-28T13:00:00");
    let second = sim.poll("runsOn:df-TEST/Box").expect("the one o'clock run");
    sim.at("2026-11-28T13:30:00");
    let status = |sim: &Sim, id: &str| sim.state.instance(id).map(|instance| instance.status);
    assert_eq!(
        status(&sim, "@Box_2026-11-28T12:00:00"),
        Some(runtime::Status::TimedOut)
    );
    assert_eq!(status(&sim, "@Work_2026-11-28T12:00:00"), Some(runtime::Status::Failed));
    assert_eq!(
        status(&sim, "@Work_2026-11-28T13:00:00"),
        Some(runtime::Status::Running),
        "the next interval's work runs on its own resource instance"
    );
    assert!(runtime::report_progress(&mut sim.state, &second, sim.now).is_ok());
    assert!(runtime::report_progress(&mut sim.state, &first, sim.now).is_err());
}
