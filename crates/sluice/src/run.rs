//! `sluice run FILE`: a definition end to end on this machine — an embedded `sluice serve` on a
//! private data directory, the pipeline created, defined and activated through the API, an
//! in-process task runner for every worker group and resource of the definition, live
//! progress, and a summary. `sluice runner`: the same runner against a remote server.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sluice_core::runtime::Graph;
use sluice_core::{FieldValue, Limits, PipelineDefinition, definition_file, validate};
use sluice_runner::storage::StorageSettings;
use sluice_runner::{Client, Credentials, ExecutionSettings, RunnerConfig};

pub struct RunOptions {
    pub file: PathBuf,
    pub params: Vec<String>,
    pub data_dir: Option<PathBuf>,
    pub log_dir: PathBuf,
    pub work_dir: Option<PathBuf>,
    pub concurrency: usize,
    pub s3_endpoint: Option<String>,
    pub s3_ca_bundle: Option<PathBuf>,
    pub region: String,
    pub local_data_root: Option<PathBuf>,
    pub max_objects: usize,
    pub spark_home: Option<PathBuf>,
}

/// The definition as the API takes it (PutPipelineDefinition's members).
fn wire(definition: &PipelineDefinition) -> Value {
    let objects: Vec<Value> = definition
        .objects
        .iter()
        .map(|object| {
            let fields: Vec<Value> = object
                .fields
                .iter()
                .map(|field| match &field.value {
                    FieldValue::String(text) => json!({ "key": field.key, "stringValue": text }),
                    FieldValue::Ref(target) => json!({ "key": field.key, "refValue": target }),
                })
                .collect();
            json!({ "id": object.id, "name": object.name, "fields": fields })
        })
        .collect();
    let parameters: Vec<Value> = definition
        .parameters
        .iter()
        .map(|parameter| {
            let attributes: Vec<Value> = parameter
                .attributes
                .iter()
                .map(|attribute| json!({ "key": attribute.key, "stringValue": attribute.value }))
                .collect();
            json!({ "id": parameter.id, "attributes": attributes })
        })
        .collect();
    let values: Vec<Value> = definition
        .values
        .iter()
        .map(|value| json!({ "id": value.id, "stringValue": value.value }))
        .collect();
    json!({ "pipelineObjects": objects, "parameterObjects": parameters, "parameterValues": values })
}

fn load(options: &RunOptions) -> anyhow::Result<PipelineDefinition> {
    let text =
        std::fs::read_to_string(&options.file).with_context(|| format!("cannot read {}", options.file.display()))?;
    let mut definition =
        definition_file::parse(&text).map_err(|error| anyhow::anyhow!("{}: {error}", options.file.display()))?;
    for param in &options.params {
        let (id, value) = param
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--param takes KEY=VALUE, got '{param}'"))?;
        definition.values.retain(|existing| existing.id != id);
        definition.values.push(sluice_core::ParameterValue {
            id: id.to_string(),
            value: value.to_string(),
        });
    }
    Ok(definition)
}

/// Statuses an instance no longer leaves by itself.
fn ended(status: &str) -> bool {
    matches!(
        status,
        "FINISHED" | "MARK_FINISHED" | "FAILED" | "CASCADE_FAILED" | "CANCELED" | "TIMEDOUT" | "SKIPPED"
    )
}

fn failed(status: &str) -> bool {
    matches!(status, "FAILED" | "CASCADE_FAILED" | "CANCELED" | "TIMEDOUT")
}

/// Components whose instances wait on dependencies that failed (or are themselves stuck).
fn stuck_components<'a>(
    graph: &'a sluice_core::runtime::Graph,
    views: &BTreeMap<String, InstanceView>,
) -> BTreeSet<&'a str> {
    let status_of = |component: &str| -> (bool, bool) {
        let mut waiting = false;
        let mut failures = false;
        for view in views.values().filter(|view| view.component == component) {
            waiting |= view.status == "WAITING_ON_DEPENDENCIES";
            failures |= failed(&view.status);
        }
        (waiting, failures)
    };
    let mut stuck: BTreeSet<&str> = BTreeSet::new();
    loop {
        let before = stuck.len();
        for node in &graph.nodes {
            if stuck.contains(node.id.as_str()) || !status_of(&node.id).0 {
                continue;
            }
            let blocked = node
                .inputs
                .iter()
                .chain(&node.depends_on)
                .chain(&node.producers)
                .chain(&node.preconditions)
                .any(|dependency| stuck.contains(dependency.as_str()) || status_of(dependency).1);
            if blocked {
                stuck.insert(node.id.as_str());
            }
        }
        if stuck.len() == before {
            return stuck;
        }
    }
}

#[derive(Debug, Clone, Default)]
struct InstanceView {
    component: String,
    status: String,
    started: Option<String>,
    ended_at: Option<String>,
    attempts: u32,
    error: Option<String>,
    location: Option<String>,
    head_attempt: Option<String>,
}

async fn instances(client: &Client, pipeline_id: &str) -> anyhow::Result<BTreeMap<String, InstanceView>> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut request = json!({ "pipelineId": pipeline_id, "sphere": "INSTANCE", "limit": 1000 });
        if let Some(marker) = &marker {
            request["marker"] = json!(marker);
        }
        let page = client.datapipeline("QueryObjects", &request).await?;
        ids.extend(
            page["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        match page.get("marker").and_then(Value::as_str) {
            Some(next) if page["hasMoreResults"].as_bool() == Some(true) => marker = Some(next.to_string()),
            _ => break,
        }
    }
    let mut views = BTreeMap::new();
    for chunk in ids.chunks(100) {
        let described = client
            .datapipeline(
                "DescribeObjects",
                &json!({ "pipelineId": pipeline_id, "objectIds": chunk, "evaluateExpressions": true }),
            )
            .await?;
        for object in described["pipelineObjects"].as_array().into_iter().flatten() {
            let mut view = InstanceView::default();
            for field in object["fields"].as_array().into_iter().flatten() {
                let value = field
                    .get("stringValue")
                    .or_else(|| field.get("refValue"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                match field["key"].as_str().unwrap_or_default() {
                    "@componentParent" => view.component = value,
                    "@status" => view.status = value,
                    "@actualStartTime" => view.started = Some(value),
                    "@actualEndTime" => view.ended_at = Some(value),
                    "@attemptCount" => view.attempts = value.parse().unwrap_or(0),
                    "errorMessage" | "cancellationReason" => view.error = Some(value),
                    "directoryPath" | "filePath" => view.location = Some(value),
                    "@headAttempt" => view.head_attempt = Some(value),
                    _ => {}
                }
            }
            if let Some(id) = object["id"].as_str() {
                views.insert(id.to_string(), view);
            }
        }
    }
    // What failed says why on its last attempt (the runner's report).
    let heads: Vec<String> = views
        .values()
        .filter(|view| failed(&view.status))
        .filter_map(|view| view.head_attempt.clone())
        .collect();
    for chunk in heads.chunks(100) {
        let described = client
            .datapipeline(
                "DescribeObjects",
                &json!({ "pipelineId": pipeline_id, "objectIds": chunk }),
            )
            .await?;
        for object in described["pipelineObjects"].as_array().into_iter().flatten() {
            let message = object["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|field| field["key"] == "errorMessage")
                .and_then(|field| field["stringValue"].as_str());
            let instance = object["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|field| field["key"] == "@instanceParent")
                .and_then(|field| field["refValue"].as_str());
            if let (Some(message), Some(instance)) = (message, instance)
                && let Some(view) = views.get_mut(instance)
            {
                view.error = Some(message.to_string());
            }
        }
    }
    Ok(views)
}

/// Per component: (instances, ended, counts by status).
fn tally(views: &BTreeMap<String, InstanceView>) -> BTreeMap<String, (usize, usize, BTreeMap<String, usize>)> {
    let mut tally: BTreeMap<String, (usize, usize, BTreeMap<String, usize>)> = BTreeMap::new();
    for view in views.values() {
        let entry = tally.entry(view.component.clone()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(ended(&view.status));
        *entry.2.entry(view.status.clone()).or_default() += 1;
    }
    tally
}

fn describe_counts(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(status, count)| format!("{count} {}", status.to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn run(options: RunOptions) -> anyhow::Result<ExitCode> {
    let definition = load(&options)?;
    let limits = Limits {
        max_objects: options.max_objects,
        ..Limits::default()
    };
    let report = validate(&definition, &limits);
    for entry in &report.warnings {
        for message in &entry.messages {
            eprintln!("warning [{}] {message}", entry.id);
        }
    }
    if report.errored() {
        for entry in &report.errors {
            for message in &entry.messages {
                eprintln!("error [{}] {message}", entry.id);
            }
        }
        bail!("{} does not validate; nothing was run", options.file.display());
    }
    // Problems the scheduler would raise, before anything starts.
    Graph::build(&definition, "df-LOCAL", 5).map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;

    // A private server on a private data directory, reachable only on loopback, over TLS.
    let temporary = tempfile::tempdir().context("cannot create a temporary directory")?;
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().join("data"));
    let work_dir = options
        .work_dir
        .clone()
        .unwrap_or_else(|| temporary.path().join("work"));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_sender, ready) = tokio::sync::oneshot::channel();
    let scheduler = sluice_server::scheduler::SchedulerSettings {
        tick: Duration::from_millis(100),
        checks: sluice_server::scheduler::CheckSettings {
            s3_endpoint: options.s3_endpoint.clone(),
            ca_bundle: options.s3_ca_bundle.clone(),
            region: options.region.clone(),
            local_root: options.local_data_root.clone(),
        },
        poll_wait: Duration::from_secs(5),
        ..Default::default()
    };
    let config = sluice_server::ServeConfig {
        data_dir: data_dir.clone(),
        store: None,
        listen: "127.0.0.1:0".parse()?,
        tls_cert: None,
        tls_key: None,
        insecure_http: false,
        limits: limits.clone(),
        max_pipelines: 1000,
        region: options.region.clone(),
        audit: sluice_server::AuditConfig {
            directory: None,
            bucket: None,
            s3_endpoint: None,
            signing_key: None,
            schedule: sluice_server::audit::delivery::Schedule {
                delivery_interval: Duration::from_secs(60),
                digest_interval: Duration::from_secs(3600),
                retention: None,
            },
        },
        key_dir: None,
        fips: false,
        kek_versions: None,
        scheduler,
        clock_file: None,
        in_process_runner: true,
        in_process_runner_identity: sluice_server::RunnerIdentity::Root,
        runner_log_dir: None,
    };
    let server = tokio::spawn(sluice_server::serve_until(
        config,
        async {
            let _ = server_stopped.await;
        },
        Some(ready_sender),
    ));
    let (url, access) = match ready.await {
        Ok(sluice_server::Ready {
            url,
            runner: Some(access),
        }) => (url.replace("127.0.0.1", "localhost"), access),
        _ => {
            return match server.await {
                Ok(Err(error)) => Err(error.context("the embedded server did not start")),
                _ => Err(anyhow::anyhow!("the embedded server did not start")),
            };
        }
    };
    // Whatever goes wrong before the run starts, the embedded server is stopped and awaited
    // (its final audit delivery must not be cut off by the process ending).
    let prepared = async {
        let client = Arc::new(Client::new(
            &url,
            Credentials {
                access_key_id: access.access_key_id.clone(),
                secret_access_key: access.secret_access_key.clone(),
                session_token: None,
            },
            access.ca_bundle.as_deref(),
            options.region.clone(),
        )?);

        let name = options
            .file
            .file_stem()
            .map_or("pipeline".to_string(), |stem| stem.to_string_lossy().to_string());
        let pipeline_id = client
            .datapipeline(
                "CreatePipeline",
                &json!({ "name": name, "uniqueId": format!("sluice-run-{}", std::process::id()) }),
            )
            .await?["pipelineId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // Resource queues are named after the pipeline.
        let graph =
            Graph::build(&definition, &pipeline_id, 5).map_err(|problems| anyhow::anyhow!(problems.join("\n")))?;
        let queues: BTreeSet<String> = graph.nodes.iter().filter_map(|node| node.queue.clone()).collect();
        let mut put = wire(&definition);
        put["pipelineId"] = json!(pipeline_id);
        client.datapipeline("PutPipelineDefinition", &put).await?;
        client
            .datapipeline("ActivatePipeline", &json!({ "pipelineId": pipeline_id }))
            .await
            .context("activation was refused")?;
        anyhow::Ok((client, pipeline_id, graph, queues))
    }
    .await;
    let (client, pipeline_id, graph, queues) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            let _ = stop_server.send(());
            let _ = server.await;
            return Err(error);
        }
    };
    eprintln!(
        "sluice run: {} as pipeline {pipeline_id}; worker groups: {}",
        options.file.display(),
        queues.iter().cloned().collect::<Vec<_>>().join(", ")
    );

    let (stop_runner, runner_stopped) = tokio::sync::watch::channel(false);
    let runner_config = RunnerConfig {
        worker_groups: queues.iter().cloned().collect(),
        hostname: "localhost".into(),
        concurrency: options.concurrency.max(1),
        idle_poll: Duration::from_millis(10),
        // Often, so that Ctrl-C (which cancels through the service) stops running tasks at once;
        // a progress report is a one-row update.
        progress_interval: Duration::from_secs(1),
        execution: ExecutionSettings {
            work_dir: work_dir.clone(),
            log_dir: options.log_dir.clone(),
            storage: StorageSettings {
                s3_endpoint: options.s3_endpoint.clone(),
                region: options.region.clone(),
                ca_bundle: options.s3_ca_bundle.clone(),
                s3_credentials: None,
            },
            keep_work_dirs: false,
            task_api: Some(sluice_runner::execute::TaskApi {
                endpoint: url.clone(),
                ca_bundle: access.ca_bundle.clone(),
                region: options.region.clone(),
            }),
            spark: spark_settings(options.spark_home.clone()),
            findings: Default::default(),
        },
    };
    runner_config.execution.storage.warn_if_insecure();
    let runner = tokio::spawn(sluice_runner::run(client.clone(), runner_config, runner_stopped));

    let interactive = std::io::stderr().is_terminal();
    let bars = MultiProgress::new();
    let mut component_bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    let style = ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut last_line = String::new();
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut interrupted = false;
    let mut said_waiting = false;
    let mut not_run: Vec<String> = Vec::new();
    let views = loop {
        let views = instances(&client, &pipeline_id).await?;
        let tallies = tally(&views);
        for (component, (total, done, counts)) in &tallies {
            if interactive {
                let bar = component_bars.entry(component.clone()).or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new(0));
                    bar.set_style(style.clone());
                    bar.set_prefix(component.clone());
                    bar
                });
                bar.set_length(*total as u64);
                bar.set_position(*done as u64);
                bar.set_message(describe_counts(counts));
            }
        }
        if !interactive {
            let line = tallies
                .iter()
                .map(|(component, (_, _, counts))| format!("{component}: {}", describe_counts(counts)))
                .collect::<Vec<_>>()
                .join("; ");
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
        }
        let state = client
            .datapipeline("DescribePipelines", &json!({ "pipelineIds": [pipeline_id] }))
            .await?;
        let pipeline_state = state["pipelineDescriptionList"][0]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|field| field["key"] == "@pipelineState")
            .and_then(|field| field["stringValue"].as_str())
            .unwrap_or_default()
            .to_string();
        let all_ended = !views.is_empty() && views.values().all(|view| ended(&view.status));
        if pipeline_state == "FINISHED" || (graph.on_demand && all_ended) {
            break views;
        }
        // An on-demand run whose remaining work waits on failed work (without cascade) would
        // wait for ever: it is over.
        let stuck = stuck_components(&graph, &views);
        if graph.on_demand
            && !stuck.is_empty()
            && views
                .values()
                .all(|view| ended(&view.status) || stuck.contains(view.component.as_str()))
        {
            eprintln!(
                "sluice run: {} wait on failed work and will not run (failureAndRerunMode: cascade fails them instead)",
                stuck.iter().copied().collect::<Vec<_>>().join(", ")
            );
            not_run = stuck.iter().map(|component| component.to_string()).collect();
            break views;
        }
        if all_ended && !said_waiting {
            said_waiting = true;
            eprintln!(
                "sluice run: every run so far has ended; the schedule continues, so this waits for the next interval (Ctrl-C to stop)"
            );
        }
        // Each refresh reads every instance: look less often the more there are.
        let pause = Duration::from_millis(250 + 2 * views.len() as u64).min(Duration::from_secs(3));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = &mut interrupt => {
                interrupted = true;
                eprintln!("\nsluice run: interrupted; cancelling what is still running");
                let _ = client
                    .datapipeline("DeactivatePipeline", &json!({ "pipelineId": pipeline_id, "cancelActive": true }))
                    .await;
                break instances(&client, &pipeline_id).await.unwrap_or(views);
            }
        }
    };
    for bar in component_bars.values() {
        bar.finish();
    }
    let _ = stop_runner.send(true);
    let _ = runner.await;
    let _ = stop_server.send(());
    let _ = server.await;

    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>8}",
        "component", "instances", "finished", "failed", "attempts"
    );
    let mut by_component: BTreeMap<&str, (usize, usize, usize, u32)> = BTreeMap::new();
    for view in views.values() {
        let entry = by_component.entry(view.component.as_str()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(matches!(view.status.as_str(), "FINISHED" | "MARK_FINISHED"));
        entry.2 += usize::from(failed(&view.status));
        entry.3 += view.attempts;
    }
    for (component, (count, finished, failures, attempts)) in &by_component {
        println!("{component:<28} {count:>9} {finished:>9} {failures:>9} {attempts:>8}");
    }
    let problems: Vec<(&String, &InstanceView)> = views.iter().filter(|(_, view)| failed(&view.status)).collect();
    for (id, view) in &problems {
        println!(
            "  {id}: {}{}",
            view.status,
            view.error
                .as_deref()
                .map(|error| format!(" — {error}"))
                .unwrap_or_default()
        );
    }
    if !not_run.is_empty() {
        println!("not run (waiting on failed work): {}", not_run.join(", "));
    }
    if interrupted {
        let left: Vec<&String> = views
            .iter()
            .filter(|(_, view)| !ended(&view.status))
            .map(|(id, _)| id)
            .collect();
        if !left.is_empty() {
            println!(
                "not run: {}",
                left.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let mut locations = BTreeMap::new();
    for view in views.values() {
        if let Some(location) = &view.location
            && matches!(view.status.as_str(), "FINISHED" | "MARK_FINISHED")
        {
            locations.insert(view.component.clone(), location.clone());
        }
    }
    for (component, location) in &locations {
        println!("data: {component} → {location}");
    }
    println!("logs: {}/{pipeline_id}/", options.log_dir.display());
    Ok(if interrupted {
        ExitCode::from(130)
    } else if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub struct RunnerOptions {
    pub endpoint: String,
    pub worker_groups: Vec<String>,
    pub ca_bundle: Option<PathBuf>,
    pub region: String,
    pub concurrency: usize,
    pub work_dir: PathBuf,
    pub log_dir: PathBuf,
    pub s3_endpoint: Option<String>,
    pub hostname: String,
    pub progress_seconds: u64,
    pub spark_home: Option<PathBuf>,
}

/// `sluice runner`: polls a server for the named worker groups until SIGINT/SIGTERM.
pub async fn runner(options: RunnerOptions) -> anyhow::Result<ExitCode> {
    if options.worker_groups.is_empty() {
        bail!("name at least one --worker-group");
    }
    let client = Arc::new(Client::new(
        &options.endpoint,
        Credentials::from_environment()?,
        options.ca_bundle.as_deref(),
        options.region.clone(),
    )?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = RunnerConfig {
        worker_groups: options.worker_groups.clone(),
        hostname: options.hostname.clone(),
        concurrency: options.concurrency.max(1),
        idle_poll: Duration::from_secs(1),
        progress_interval: Duration::from_secs(options.progress_seconds.clamp(1, 60)),
        execution: ExecutionSettings {
            work_dir: options.work_dir.clone(),
            log_dir: options.log_dir.clone(),
            storage: StorageSettings {
                s3_endpoint: options.s3_endpoint.clone(),
                region: options.region.clone(),
                // The bundle AWS tools take (AWS_CA_BUNDLE) serves the object stores too.
                ca_bundle: options.ca_bundle.clone(),
                s3_credentials: None,
            },
            keep_work_dirs: false,
            task_api: Some(sluice_runner::execute::TaskApi {
                endpoint: options.endpoint.clone(),
                ca_bundle: options.ca_bundle.clone(),
                region: options.region.clone(),
            }),
            spark: spark_settings(options.spark_home.clone()),
            findings: Default::default(),
        },
    };
    config.execution.storage.warn_if_insecure();
    eprintln!(
        "sluice runner: polling {} for {}",
        options.endpoint,
        options.worker_groups.join(", ")
    );
    let runner = tokio::spawn(sluice_runner::run(client, config, stopped));
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("sluice runner: stopping after the tasks it holds");
    let _ = stop.send(true);
    let _ = runner.await;
    Ok(ExitCode::SUCCESS)
}

pub struct LogsOptions {
    pub pipeline_id: String,
    pub instance: Option<String>,
    pub log_dir: PathBuf,
    pub log_uri: Option<String>,
    pub s3_endpoint: Option<String>,
    pub s3_ca_bundle: Option<PathBuf>,
    pub region: String,
}

/// `sluice logs`: the stdout and stderr of a pipeline's attempts (or one instance's), from a
/// runner's log folder or from `pipelineLogUri`, oldest attempt first.
pub async fn logs(options: LogsOptions) -> anyhow::Result<ExitCode> {
    let safe = sluice_runner::execute::safe;
    let temporary = tempfile::tempdir()?;
    let root = match &options.log_uri {
        Some(uri) => {
            let location = format!("{}/{}", uri.trim_end_matches('/'), safe(&options.pipeline_id));
            let storage = StorageSettings {
                s3_endpoint: options.s3_endpoint.clone(),
                region: options.region.clone(),
                ca_bundle: options.s3_ca_bundle.clone(),
                s3_credentials: None,
            };
            sluice_runner::storage::Location::parse(&location, &storage)?
                .download_to(temporary.path())
                .await
                .with_context(|| format!("cannot read logs from {location}"))?;
            temporary.path().to_path_buf()
        }
        None => options.log_dir.join(safe(&options.pipeline_id)),
    };
    if !root.is_dir() {
        bail!("no logs for {} under {}", options.pipeline_id, root.display());
    }
    // <component>/<instance>/<attempt>/{stdout,stderr}
    let mut attempts = Vec::new();
    for component in std::fs::read_dir(&root)? {
        let component = component?.path();
        if !component.is_dir() {
            continue;
        }
        for instance in std::fs::read_dir(&component)? {
            let instance = instance?.path();
            let name = instance
                .file_name()
                .map(|name| name.to_string_lossy().to_string())
                .unwrap_or_default();
            if options.instance.as_deref().is_some_and(|wanted| safe(wanted) != name) || !instance.is_dir() {
                continue;
            }
            for attempt in std::fs::read_dir(&instance)? {
                attempts.push(attempt?.path());
            }
        }
    }
    attempts.sort();
    if attempts.is_empty() {
        bail!("no attempt logs match");
    }
    for attempt in attempts {
        let name = attempt
            .file_name()
            .map(|name| name.to_string_lossy().to_string())
            .unwrap_or_default();
        for stream in ["stdout", "stderr"] {
            let path = attempt.join(stream);
            if let Ok(text) = std::fs::read_to_string(&path)
                && !text.is_empty()
            {
                println!("==> {name} {stream} <==");
                print!("{text}");
                if !text.ends_with('\n') {
                    println!();
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sluice serve`: the server, and unless told not to, a task runner in the same process for the
/// named worker groups, with credentials the server minted for it (never on disk).
pub async fn serve_with_runner(
    config: sluice_server::ServeConfig,
    worker_groups: Vec<String>,
    concurrency: usize,
    runner_dir: PathBuf,
    spark_home: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = sluice_server::ServeConfig {
        runner_log_dir: (!worker_groups.is_empty()).then(|| runner_dir.join("logs")),
        ..config
    };
    let region = config.region.clone();
    let s3_endpoint = config.scheduler.checks.s3_endpoint.clone();
    let s3_ca_bundle = config.scheduler.checks.ca_bundle.clone();
    let (ready_sender, ready) = tokio::sync::oneshot::channel();
    let (stop_server, server_stop) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(sluice_server::serve_until(
        config,
        async {
            let _ = server_stop.await;
        },
        Some(ready_sender),
    ));
    let Ok(sluice_server::Ready { url, runner }) = ready.await else {
        return server.await?;
    };
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("sluice: listening on {url}");
    let (stop_runner, runner_stopped) = tokio::sync::watch::channel(false);
    let runner_task = match runner {
        Some(access) if !worker_groups.is_empty() => {
            let client = Arc::new(Client::new(
                &url.replace("127.0.0.1", "localhost"),
                Credentials {
                    access_key_id: access.access_key_id.clone(),
                    secret_access_key: access.secret_access_key.clone(),
                    session_token: None,
                },
                access.ca_bundle.as_deref(),
                region.clone(),
            )?);
            tracing::warn!(worker_groups = ?worker_groups, "in-process task runner: tasks run as this server's user, which can read the data directory; serve only definitions you trust this far");
            let config = RunnerConfig {
                worker_groups,
                hostname: "localhost".into(),
                concurrency: concurrency.max(1),
                idle_poll: Duration::from_millis(100),
                progress_interval: Duration::from_secs(30),
                execution: ExecutionSettings {
                    work_dir: runner_dir.join("work"),
                    log_dir: runner_dir.join("logs"),
                    storage: StorageSettings {
                        s3_endpoint,
                        region: region.clone(),
                        ca_bundle: s3_ca_bundle,
                        s3_credentials: None,
                    },
                    keep_work_dirs: false,
                    task_api: Some(sluice_runner::execute::TaskApi {
                        endpoint: url.replace("127.0.0.1", "localhost"),
                        ca_bundle: access.ca_bundle.clone(),
                        region: region.clone(),
                    }),
                    spark: spark_settings(spark_home),
                    findings: Default::default(),
                },
            };
            config.execution.storage.warn_if_insecure();
            Some(tokio::spawn(sluice_runner::run(client, config, runner_stopped)))
        }
        _ => None,
    };
    // On SIGINT/SIGTERM the runner finishes and reports what it holds, then the server stops.
    tokio::select! {
        _ = sluice_server::shutdown_signal() => {}
        finished = &mut server => {
            let _ = stop_runner.send(true);
            return finished?;
        }
    }
    let _ = stop_runner.send(true);
    if let Some(runner_task) = runner_task {
        let _ = runner_task.await;
    }
    let _ = stop_server.send(());
    server.await?
}

/// Spark for the runner's EMR-type activities, with the Java that runs it (JAVA_HOME, as the
/// runner's environment has it: tasks' environments are built, not inherited).
fn spark_settings(home: Option<PathBuf>) -> Option<sluice_runner::spark::SparkSettings> {
    #[allow(clippy::disallowed_methods, reason = "the binary reads its environment")]
    let java_home = std::env::var_os("JAVA_HOME").map(PathBuf::from);
    home.map(|home| sluice_runner::spark::SparkSettings { home, java_home })
}
