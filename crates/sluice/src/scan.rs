//! `sluice scan PATH|s3://bucket/prefix ...`: Macie-style discovery of sensitive data in files and
//! buckets, with a progress bar and a summary table (or Macie findings as JSON lines).
//! Exit status 0 when nothing was found, 1 when something was, 2 when something could not be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use sluice_detect::{AllowList, CustomIdentifier, Detector, Format, ObjectReport, managed_identifiers, scan_object};

pub struct ScanOptions {
    pub targets: Vec<String>,
    pub format: Option<String>,
    pub json: bool,
    pub custom_identifiers: Option<PathBuf>,
    pub allow_list: Option<PathBuf>,
    pub s3_endpoint: Option<String>,
    pub s3_ca_bundle: Option<PathBuf>,
    pub region: String,
}

fn files_below(root: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    out.extend(sluice_runner::sensitive::files_below(root).with_context(|| format!("cannot list {}", root.display()))?);
    Ok(())
}

fn detector(options: &ScanOptions) -> anyhow::Result<Detector> {
    let mut identifiers = managed_identifiers();
    if let Some(path) = &options.custom_identifiers {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let custom: Vec<CustomIdentifier> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: a JSON list of {{name, regex, keywords, ignoreWords, maximumMatchDistance}}",
                path.display()
            )
        })?;
        for identifier in custom {
            identifiers.push(identifier.identifier()?);
        }
    }
    let mut allow = AllowList::default();
    if let Some(path) = &options.allow_list {
        // One literal per line; lines of the form `regex:<pattern>` are patterns.
        for line in std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .filter(|line| !line.trim().is_empty())
        {
            match line.strip_prefix("regex:") {
                Some(pattern) => allow.patterns.push(pattern.to_string()),
                None => allow.words.push(line.to_string()),
            }
        }
    }
    Detector::new(identifiers, &allow)
}

pub async fn run(options: ScanOptions) -> anyhow::Result<ExitCode> {
    let detector = detector(&options)?;
    let format = match &options.format {
        Some(name) => {
            Some(Format::parse(name).with_context(|| format!("--format {name}: text, csv, tsv, json or jsonl"))?)
        }
        None => None,
    };
    // (name reported, local file)
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let staging = tempfile::tempdir()?;
    for (index, target) in options.targets.iter().enumerate() {
        if target.contains("://") {
            let storage = sluice_runner::storage::StorageSettings {
                s3_endpoint: options.s3_endpoint.clone(),
                region: options.region.clone(),
                ca_bundle: options.s3_ca_bundle.clone(),
                s3_credentials: None,
            };
            let folder = staging.path().join(index.to_string());
            sluice_runner::storage::Location::parse(target, &storage)?
                .download_to(&folder)
                .await
                .with_context(|| format!("cannot read {target}"))?;
            let mut found = Vec::new();
            files_below(&folder, &mut found)?;
            for file in found {
                let relative = file
                    .strip_prefix(&folder)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .into_owned();
                files.push((format!("{}/{relative}", target.trim_end_matches('/')), file));
            }
        } else {
            let mut found = Vec::new();
            files_below(Path::new(target), &mut found)?;
            files.extend(found.into_iter().map(|file| (file.display().to_string(), file)));
        }
    }
    let total: u64 = files
        .iter()
        .map(|(_, file)| std::fs::metadata(file).map(|metadata| metadata.len()).unwrap_or(0))
        .sum();
    let progress = if options.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    // One object at a time per core, in the order given; the report keeps that order.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<ObjectReport>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((name, file)) = files.get(index) else { break };
                    progress.set_message(name.clone());
                    let report = match std::fs::File::open(file) {
                        Ok(reader) => {
                            let mut report = scan_object(&detector, file.to_string_lossy().as_ref(), reader, format);
                            report.path = name.clone();
                            report
                        }
                        Err(error) => {
                            let mut report = ObjectReport::new(name.clone(), Format::Text);
                            report.problem = Some(format!("cannot open: {error}"));
                            report
                        }
                    };
                    progress.inc(std::fs::metadata(file).map(|metadata| metadata.len()).unwrap_or(0));
                    if let Ok(mut slot) = slots[index].lock() {
                        *slot = Some(report);
                    }
                }
            });
        }
    });
    let reports: Vec<ObjectReport> = slots
        .into_iter()
        .filter_map(|slot| slot.into_inner().ok().flatten())
        .collect();
    let unreadable = reports.iter().filter(|report| report.problem.is_some()).count();
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let with_findings: Vec<&ObjectReport> = reports.iter().filter(|report| report.total() > 0).collect();
    if options.json {
        let now = sluice_server::clock::Clock::now(&sluice_server::clock::SystemClock)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        for (index, report) in with_findings.iter().enumerate() {
            let resource = json!({ "object": { "path": report.path, "size": report.size_classified } });
            if let Some(finding) = report.finding(&format!("local-{index}"), "local", &options.region, &now, resource) {
                println!("{finding}");
            }
        }
    } else {
        println!(
            "{:<50} {:<36} {:>7} {:<8} samples",
            "object", "type", "count", "severity"
        );
        for report in &with_findings {
            for (name, detail) in report.detections.values().flatten() {
                println!(
                    "{:<50} {:<36} {:>7} {:<8} {}",
                    shorten(&report.path, 50),
                    name,
                    detail.count,
                    detail.severity().description(),
                    detail.samples.join(", ")
                );
            }
        }
        for report in reports.iter().filter(|report| report.problem.is_some()) {
            println!(
                "{:<50} could not be read whole: {}",
                shorten(&report.path, 50),
                report.problem.as_deref().unwrap_or("")
            );
        }
        let bytes: u64 = reports.iter().map(|report| report.size_classified).sum();
        println!(
            "\n{} object(s), {:.1} MiB in {seconds:.2} s ({:.0} MiB/s): {} with sensitive data, {} occurrence(s){}",
            reports.len(),
            bytes as f64 / 1048576.0,
            bytes as f64 / 1048576.0 / seconds.max(1e-9),
            with_findings.len(),
            with_findings.iter().map(|report| report.total()).sum::<u64>(),
            if unreadable > 0 {
                format!(", {unreadable} unreadable")
            } else {
                String::new()
            }
        );
    }
    Ok(if unreadable > 0 {
        ExitCode::from(2)
    } else if with_findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let tail: String = text
        .chars()
        .rev()
        .take(width - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// `sluice findings`: ListFindings page by page, then GetFindings for what is shown.
pub async fn findings(
    admin: crate::AdminEndpoint,
    pipeline: Option<String>,
    severity: Option<String>,
    max: usize,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let client = admin
        .client()?
        .context("sluice findings asks a running server: give --endpoint")?;
    let mut request = json!({ "maxResults": 50 });
    if let Some(pipeline) = &pipeline {
        request["pipelineId"] = json!(pipeline);
    }
    if let Some(severity) = &severity {
        request["severity"] = json!(severity);
    }
    let mut ids = Vec::new();
    loop {
        let page = client.call("SluiceFindings.ListFindings", "sluice", &request).await?;
        for finding in page["findings"].as_array().into_iter().flatten() {
            if ids.len() < max
                && let Some(id) = finding["findingId"].as_str()
            {
                ids.push(id.to_string());
            }
        }
        match page["nextToken"].as_str() {
            Some(token) if ids.len() < max => request["nextToken"] = json!(token),
            _ => break,
        }
    }
    if !as_json {
        println!(
            "{:<20} {:<24} {:<8} {:<34} object",
            "created", "pipeline", "severity", "types"
        );
    }
    for chunk in ids.chunks(50) {
        let got = client
            .call("SluiceFindings.GetFindings", "sluice", &json!({ "findingIds": chunk }))
            .await?;
        for finding in got["findings"].as_array().into_iter().flatten() {
            if as_json {
                println!("{finding}");
                continue;
            }
            let types: Vec<String> = finding["classificationDetails"]["result"]["sensitiveData"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|group| group["detections"].as_array().cloned().unwrap_or_default())
                .map(|detection| format!("{} ×{}", detection["type"].as_str().unwrap_or("?"), detection["count"]))
                .collect();
            println!(
                "{:<20} {:<24} {:<8} {:<34} {}",
                finding["createdAt"].as_str().unwrap_or(""),
                finding["sluicePipeline"]["pipelineId"].as_str().unwrap_or(""),
                finding["severity"]["description"].as_str().unwrap_or(""),
                types.join(", "),
                finding["resourcesAffected"]["object"]["path"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--schedule daily | weekly:DAY | monthly:N` as Macie's `scheduleFrequency`.
fn schedule_frequency(text: &str) -> anyhow::Result<serde_json::Value> {
    let lower = text.to_ascii_lowercase();
    match lower.split_once(':') {
        None if lower == "daily" => Ok(json!({ "dailySchedule": {} })),
        Some(("weekly", day)) => Ok(json!({ "weeklySchedule": { "dayOfWeek": day.to_ascii_uppercase() } })),
        Some(("monthly", day)) => {
            let day: u32 = day
                .parse()
                .with_context(|| format!("--schedule {text}: the day of the month is a number, 1 to 31"))?;
            Ok(json!({ "monthlySchedule": { "dayOfMonth": day } }))
        }
        _ => anyhow::bail!("--schedule {text}: give daily, weekly:MONDAY … weekly:SUNDAY or monthly:1 … monthly:31"),
    }
}

/// `sluice classify PIPELINE`: starts a classification job; a one-time job is followed to the
/// end (exit 0: nothing found, 1: findings, 2: the job did not complete).
pub async fn classify(
    admin: crate::AdminEndpoint,
    pipeline: String,
    schedule: Option<&str>,
    initial_run: bool,
    name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let client = admin
        .client()?
        .context("sluice classify asks a running server: give --endpoint")?;
    let mut request = json!({ "pipelineId": pipeline });
    if let Some(name) = name {
        request["name"] = json!(name);
    }
    if let Some(schedule) = schedule {
        request["jobType"] = json!("SCHEDULED");
        request["scheduleFrequency"] = schedule_frequency(schedule)?;
        request["initialRun"] = json!(initial_run);
    }
    let started = client
        .call("SluiceFindings.StartClassificationJob", "sluice", &request)
        .await?;
    let job_id = started["jobId"]
        .as_str()
        .context("the server named no job")?
        .to_string();
    if schedule.is_some() && !initial_run {
        let job = client
            .call(
                "SluiceFindings.GetClassificationJob",
                "sluice",
                &json!({ "jobId": job_id }),
            )
            .await?;
        println!(
            "classification job {job_id} scheduled; first run at {} UTC (sluice classification show {job_id})",
            job["nextRunAt"].as_str().unwrap_or("?")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let job = loop {
        let job = client
            .call(
                "SluiceFindings.GetClassificationJob",
                "sluice",
                &json!({ "jobId": job_id }),
            )
            .await?;
        if job["jobStatus"] != "RUNNING" {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    for problem in job["problems"].as_array().into_iter().flatten() {
        println!("note: {}", problem.as_str().unwrap_or_default());
    }
    println!(
        "classification job {job_id}: {}, {} object(s), {} byte(s) scanned, {} finding(s) (sluice findings --pipeline {pipeline})",
        job["jobStatus"].as_str().unwrap_or("?"),
        job["objectsScanned"],
        job["bytesScanned"],
        job["findings"]
    );
    if let Some(next) = job["nextRunAt"].as_str() {
        println!("next run at {next} UTC");
    }
    Ok(match (job["jobStatus"].as_str(), job["findings"].as_u64()) {
        (Some("COMPLETE" | "IDLE"), Some(0)) => ExitCode::SUCCESS,
        (Some("COMPLETE" | "IDLE"), _) => ExitCode::from(1),
        _ => ExitCode::from(2),
    })
}

/// `sluice classification list|show|cancel|pause|resume`.
pub async fn classification(command: crate::ClassificationCommand) -> anyhow::Result<ExitCode> {
    use crate::ClassificationCommand as C;
    let (admin, request, operation) = match command {
        C::List { admin, pipeline } => {
            let mut request = json!({});
            if let Some(pipeline) = pipeline {
                request["pipelineId"] = json!(pipeline);
            }
            (admin, request, "ListClassificationJobs")
        }
        C::Show { admin, job_id } => (admin, json!({ "jobId": job_id }), "GetClassificationJob"),
        C::Cancel { admin, job_id } => (
            admin,
            json!({ "jobId": job_id, "jobStatus": "CANCELLED" }),
            "UpdateClassificationJob",
        ),
        C::Pause { admin, job_id } => (
            admin,
            json!({ "jobId": job_id, "jobStatus": "USER_PAUSED" }),
            "UpdateClassificationJob",
        ),
        C::Resume { admin, job_id } => (
            admin,
            json!({ "jobId": job_id, "jobStatus": "RUNNING" }),
            "UpdateClassificationJob",
        ),
    };
    let client = admin
        .client()?
        .context("sluice classification asks a running server: give --endpoint")?;
    let mut jobs = Vec::new();
    let mut request = request;
    loop {
        let answer = client
            .call(&format!("SluiceFindings.{operation}"), "sluice", &request)
            .await?;
        if operation != "ListClassificationJobs" {
            jobs.push(answer);
            break;
        }
        jobs.extend(answer["items"].as_array().cloned().unwrap_or_default());
        match answer["nextToken"].as_str() {
            Some(token) => request["nextToken"] = json!(token),
            None => break,
        }
    }
    if operation == "ListClassificationJobs" && jobs.is_empty() {
        println!("no classification jobs");
    }
    for job in &jobs {
        let schedule = job["scheduleFrequency"]
            .as_object()
            .and_then(|members| members.iter().next())
            .map(|(kind, detail)| {
                let detail = detail
                    .as_object()
                    .and_then(|detail| detail.values().next())
                    .map(|value| format!(" {}", value.as_str().map_or_else(|| value.to_string(), str::to_string)))
                    .unwrap_or_default();
                format!("{}{detail}", kind.trim_end_matches("Schedule"))
            })
            .unwrap_or_else(|| "once".into());
        println!(
            "{}  {:<11} {:<12} {}  runs {}  last run {} object(s), {} finding(s){}",
            job["jobId"].as_str().unwrap_or("?"),
            job["jobStatus"].as_str().unwrap_or("?"),
            schedule,
            job["pipelineId"].as_str().unwrap_or("?"),
            job["numberOfRuns"],
            job["objectsScanned"],
            job["findings"],
            job["nextRunAt"]
                .as_str()
                .map(|next| format!(", next run {next} UTC"))
                .unwrap_or_default()
        );
        for location in job["locations"].as_array().into_iter().flatten() {
            println!("  location: {}", location.as_str().unwrap_or_default());
        }
        for problem in job["problems"].as_array().into_iter().flatten() {
            println!("  note: {}", problem.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}
