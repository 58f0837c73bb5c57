//! `sluice audit verify` (offline, on a data directory) and `sluice audit lookup` (through the API).

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use sluice_server::audit::destination::AuditDestination;
use sluice_server::audit::{delivery, verify};
use sluice_store::SqliteStore;

use crate::AuditCommand;
use sluice_runner::client::{Client, Credentials};

const LOOKUP_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

fn to_epoch(text: &str, option: &str) -> anyhow::Result<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").map(|time| time.and_utc().timestamp())
        })
        .with_context(|| format!("{option} '{text}' is not a time such as 2026-11-28T17:00:00Z"))?;
    Ok(parsed)
}

/// Prints a verification's findings; exit 1 when anything was tampered with.
fn print_verification(problems: &[impl AsRef<str>], notes: &[impl AsRef<str>], counts: [usize; 3]) -> ExitCode {
    for problem in problems {
        println!("TAMPERED: {}", problem.as_ref());
    }
    for note in notes {
        println!("note: {}", note.as_ref());
    }
    let [records, files, digests] = counts;
    println!(
        "{records} records, {files} log files, {digests} digests checked: {}",
        if problems.is_empty() {
            "intact".to_string()
        } else {
            format!("{} problem(s)", problems.len())
        }
    );
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            data_dir,
            audit_location,
            audit_signing_key,
            public_key,
            from,
            to,
            admin,
        } => {
            if let Some(client) = admin.client()? {
                let mut request = json!({});
                if let Some(from) = &from {
                    request["StartTime"] = json!(from);
                }
                if let Some(to) = &to {
                    request["EndTime"] = json!(to);
                }
                let report = client.call("SluiceAdmin.VerifyAuditTrail", "sluice", &request).await?;
                let problems: Vec<&str> = report["Problems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                return Ok(print_verification(
                    &problems,
                    &report["Notes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>(),
                    [
                        &report["RecordsChecked"],
                        &report["FilesChecked"],
                        &report["DigestsChecked"],
                    ]
                    .map(|count| count.as_u64().unwrap_or(0) as usize),
                ));
            }
            let database = data_dir.join("sluice.db");
            if !database.exists() {
                anyhow::bail!("{} holds no Sluice store", data_dir.display());
            }
            let store = SqliteStore::open(&database).await?;
            let destination = match &audit_location.audit_bucket {
                Some(bucket) => {
                    AuditDestination::bucket(bucket, audit_location.audit_s3_endpoint.as_deref(), &admin.region)?
                }
                None => AuditDestination::folder(&audit_location.audit_dir.unwrap_or_else(|| data_dir.join("audit")))?,
            };
            let signing_key = audit_signing_key.unwrap_or_else(|| delivery::default_key_path(&data_dir));
            let public_key = verify::load_public_key(public_key.as_ref(), &signing_key)?;
            let report = verify::verify(&store, &destination, &public_key, &verify::Range { from, to }).await?;
            Ok(print_verification(
                &report.problems,
                &report.notes,
                [report.n_records, report.n_files, report.n_digests],
            ))
        }
        AuditCommand::Lookup {
            endpoint,
            ca_bundle,
            region,
            event_name,
            username,
            resource_name,
            event_source,
            read_only,
            access_key_id,
            event_id,
            start_time,
            end_time,
            max,
            json: as_json,
        } => {
            let attributes: Vec<(&str, String)> = [
                ("EventName", event_name),
                ("Username", username),
                ("ResourceName", resource_name),
                ("EventSource", event_source),
                ("ReadOnly", read_only.map(|flag| flag.to_string())),
                ("AccessKeyId", access_key_id),
                ("EventId", event_id),
            ]
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
            if attributes.len() > 1 {
                anyhow::bail!("LookupEvents takes one attribute at a time; give only one of the filters");
            }
            let client = Client::new(
                &endpoint,
                Credentials::from_environment()?,
                ca_bundle.as_deref(),
                region,
            )?;
            let mut request = json!({ "MaxResults": max.clamp(1, 50) });
            if let Some((key, value)) = attributes.first() {
                request["LookupAttributes"] = json!([{ "AttributeKey": key, "AttributeValue": value }]);
            }
            if let Some(start) = &start_time {
                request["StartTime"] = json!(to_epoch(start, "--start-time")?);
            }
            if let Some(end) = &end_time {
                request["EndTime"] = json!(to_epoch(end, "--end-time")?);
            }
            let mut printed = 0;
            loop {
                let response = client.call(LOOKUP_TARGET, "cloudtrail", &request).await?;
                for event in response.get("Events").and_then(Value::as_array).into_iter().flatten() {
                    if printed == max {
                        break;
                    }
                    printed += 1;
                    let record: Value = event
                        .get("CloudTrailEvent")
                        .and_then(Value::as_str)
                        .and_then(|text| serde_json::from_str(text).ok())
                        .unwrap_or(Value::Null);
                    if as_json {
                        println!("{record}");
                        continue;
                    }
                    let field = |path: &[&str]| {
                        let mut value = &record;
                        for key in path {
                            value = value.get(key).unwrap_or(&Value::Null);
                        }
                        value.as_str().unwrap_or("-").to_string()
                    };
                    println!(
                        "{}  {:<28} {:<16} {:<15} {:<24} {}",
                        field(&["eventTime"]),
                        field(&["eventName"]),
                        event
                            .get("Username")
                            .and_then(Value::as_str)
                            .unwrap_or(&field(&["userIdentity", "type"])),
                        field(&["sourceIPAddress"]),
                        event
                            .get("Resources")
                            .and_then(Value::as_array)
                            .and_then(|resources| resources.first())
                            .and_then(|resource| resource.get("ResourceName"))
                            .and_then(Value::as_str)
                            .unwrap_or("-"),
                        record.get("errorCode").and_then(Value::as_str).unwrap_or("ok"),
                    );
                }
                match response.get("NextToken").and_then(Value::as_str) {
                    Some(token) if printed < max => request["NextToken"] = json!(token),
                    _ => break,
                }
            }
            if printed == 0 && !as_json {
                println!("no events match");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
