//! Sluice's findings API (`SluiceFindings.<Op>`, IAM actions `sluice:<Op>` on the pipeline):
//! task runners report the sensitive data they found in an attempt's outputs (Macie-shaped
//! findings: types, counts, located occurrences, redacted samples — never values), which are
//! sealed with the pipeline's data key; people list and read them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_store::{FindingRecord, Transaction};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal};
use crate::authz::allows;
use crate::handlers::{authorize_pipeline, crypto_error, json, pipeline_arn, pipeline_data_key, store_error};

const MAX_FINDINGS_PER_REPORT: usize = 100;
const MAX_FINDING_BYTES: usize = 64 * 1024;
const PAGE: i64 = 50;
const SEVERITIES: [&str; 4] = ["", "Low", "Medium", "High"];

fn finding_context(pipeline_id: &str, finding_id: &str) -> String {
    format!("pipeline/{pipeline_id}/finding/{finding_id}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReportInput {
    task_id: String,
    findings: Vec<Value>,
}

/// Checks, completes (id, account, region, times, the pipeline and attempt) and seals one
/// finding, and stores it; returns its id.
pub(crate) async fn store_finding(
    state: &AppState,
    tx: &mut dyn Transaction,
    account_id: &str,
    pipeline_id: &str,
    attempt_id: &str,
    mut finding: Value,
) -> Result<String, ApiError> {
    let finding_type = finding
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| kind.starts_with("SensitiveData:"))
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid_request("type must be a SensitiveData:… finding type"))?;
    let severity = finding
        .pointer("/severity/score")
        .and_then(Value::as_i64)
        .filter(|score| (1..=3).contains(score))
        .ok_or_else(|| ApiError::invalid_request("severity.score must be 1, 2 or 3"))?;
    let finding_id = uuid::Uuid::now_v7().simple().to_string();
    let now = crate::clock::render(state.clock.now());
    // The service's facts replace whatever the reporter said about them.
    let Some(members) = finding.as_object_mut() else {
        return Err(ApiError::invalid_request("a finding must be an object"));
    };
    members.insert("id".into(), json!(finding_id));
    members.insert("accountId".into(), json!(account_id));
    members.insert("region".into(), json!(state.region));
    members.insert("createdAt".into(), json!(now));
    members.insert("updatedAt".into(), json!(now));
    members.insert(
        "sluicePipeline".into(),
        json!({ "pipelineId": pipeline_id, "attemptId": attempt_id }),
    );
    let plain = serde_json::to_vec(&finding).map_err(|_| ApiError::internal())?;
    if plain.len() > MAX_FINDING_BYTES {
        return Err(ApiError::invalid_request(format!(
            "a finding may be at most {MAX_FINDING_BYTES} bytes"
        )));
    }
    let data_key = pipeline_data_key(state, tx, pipeline_id).await?;
    let sealed_body = state
        .cipher
        .seal_with_data_key(
            &data_key,
            pipeline_id,
            &finding_context(pipeline_id, &finding_id),
            &plain,
        )
        .map_err(crypto_error)?;
    tx.insert_finding(&FindingRecord {
        finding_id: finding_id.clone(),
        account_id: account_id.to_string(),
        pipeline_id: pipeline_id.to_string(),
        attempt_id: attempt_id.to_string(),
        created_at: now,
        severity,
        finding_type,
        sealed_body,
    })
    .await
    .map_err(store_error)?;
    Ok(finding_id)
}

/// A runner reports the findings of the attempt it holds (`taskId`).
pub async fn report_findings(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: ReportInput = parse_body(body)?;
    if input.task_id.is_empty() || input.task_id.len() > 2048 {
        return Err(ApiError::invalid_request("'taskId' must be 1 to 2048 characters"));
    }
    if input.findings.is_empty() || input.findings.len() > MAX_FINDINGS_PER_REPORT {
        return Err(ApiError::invalid_request(format!(
            "'findings' must hold 1 to {MAX_FINDINGS_PER_REPORT} findings"
        )));
    }
    let Some((pipeline_id, attempt_id)) = tx
        .task_attempt(&principal.identity.account_id, &input.task_id)
        .await
        .map_err(store_error)?
    else {
        return Err(ApiError::new(
            ErrorKind::TaskNotFoundException,
            "the task is not known (or no longer held by a runner)",
        ));
    };
    authorize_pipeline(tx, principal, Operation::ReportFindings, &pipeline_id).await?;
    let mut ids = Vec::new();
    for (index, finding) in input.findings.into_iter().enumerate() {
        let id = store_finding(
            state,
            tx,
            &principal.identity.account_id,
            &pipeline_id,
            &attempt_id,
            finding,
        )
        .await
        .map_err(|error| ApiError::new(error.kind, format!("findings[{index}]: {}", error.message)))?;
        ids.push(id);
    }
    json(&json!({ "findingIds": ids }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListInput {
    pipeline_id: Option<String>,
    /// Low, Medium or High: that severity and above.
    severity: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn min_severity(name: Option<&str>) -> Result<i64, ApiError> {
    match name.map(str::to_ascii_lowercase).as_deref() {
        None | Some("low") => Ok(1),
        Some("medium") => Ok(2),
        Some("high") => Ok(3),
        Some(_) => Err(ApiError::invalid_request("'severity' must be Low, Medium or High")),
    }
}

/// A page token naming the `(time, id)` a page ended with.
pub(crate) fn page_token(time: &str, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{time}|{id}"))
}

/// The `(time, id)` a page token names.
pub(crate) fn read_page_token(token: Option<&str>) -> Result<Option<(String, String)>, ApiError> {
    let Some(token) = token else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once('|')
                .map(|(time, id)| (time.to_string(), id.to_string()))
        })
        .map(Some)
        .ok_or_else(|| ApiError::invalid_request("'nextToken' is not a token this service returned"))
}

/// The caller's findings, newest first, of the pipelines it may list findings of.
pub async fn list_findings(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: ListInput = if body.iter().all(u8::is_ascii_whitespace) {
        ListInput::default()
    } else {
        parse_body(body)?
    };
    let severity = min_severity(input.severity.as_deref())?;
    let limit = input.max_results.unwrap_or(PAGE);
    if !(1..=PAGE).contains(&limit) {
        return Err(ApiError::invalid_request(format!("'maxResults' must be 1 to {PAGE}")));
    }
    let cursor = read_page_token(input.next_token.as_deref())?;
    if let Some(pipeline_id) = &input.pipeline_id {
        crate::handlers::live_pipeline(tx, principal, pipeline_id).await?;
        authorize_pipeline(tx, principal, Operation::ListFindings, pipeline_id).await?;
    }
    let mut before = cursor;
    let mut listed = Vec::new();
    let mut last = None;
    let mut more = false;
    // Page through the account's findings until the page is full of what the caller may see.
    'pages: loop {
        let rows = tx
            .findings(
                &principal.identity.account_id,
                input.pipeline_id.as_deref(),
                severity,
                before.as_ref().map(|(time, id)| (time.as_str(), id.as_str())),
                limit + 1,
            )
            .await
            .map_err(store_error)?;
        let exhausted = (rows.len() as i64) <= limit;
        for row in rows {
            if listed.len() as i64 == limit {
                more = true;
                break 'pages;
            }
            before = Some((row.created_at.clone(), row.finding_id.clone()));
            last = before.clone();
            let visible = input.pipeline_id.is_some()
                || allows(
                    principal,
                    Operation::ListFindings,
                    &pipeline_arn(principal, &row.pipeline_id),
                    &crate::handlers::pipeline_context(tx, &row.pipeline_id).await?,
                );
            if visible {
                listed.push(json!({
                    "findingId": row.finding_id,
                    "pipelineId": row.pipeline_id,
                    "attemptId": row.attempt_id,
                    "createdAt": row.created_at,
                    "type": row.finding_type,
                    "severity": SEVERITIES[row.severity.clamp(1, 3) as usize],
                }));
            }
        }
        if exhausted {
            break;
        }
    }
    let next_token = (more || listed.len() as i64 == limit)
        .then_some(last)
        .flatten()
        .map(|(time, id)| page_token(&time, &id));
    json(&json!({ "findings": listed, "nextToken": next_token }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GetInput {
    finding_ids: Vec<String>,
}

/// The findings themselves (unsealed), each authorized on its pipeline.
pub async fn get_findings(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: GetInput = parse_body(body)?;
    if input.finding_ids.is_empty() || input.finding_ids.len() > 50 {
        return Err(ApiError::invalid_request("'findingIds' must hold 1 to 50 ids"));
    }
    let mut findings = Vec::new();
    for finding_id in &input.finding_ids {
        let Some(row) = tx.finding(finding_id).await.map_err(store_error)? else {
            continue;
        };
        if row.account_id != principal.identity.account_id {
            continue;
        }
        authorize_pipeline(tx, principal, Operation::GetFindings, &row.pipeline_id).await?;
        let data_key = pipeline_data_key(state, tx, &row.pipeline_id).await?;
        let plain = state
            .cipher
            .open_with_data_key(
                &data_key,
                &row.pipeline_id,
                &finding_context(&row.pipeline_id, &row.finding_id),
                &row.sealed_body,
            )
            .map_err(crypto_error)?;
        findings.push(serde_json::from_slice::<Value>(&plain).map_err(|_| ApiError::internal())?);
    }
    json(&json!({ "findings": findings }))
}
