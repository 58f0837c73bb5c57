//! Sluice's administration API (`X-Amz-Target: SluiceAdmin.<Op>`, SigV4 service `sluice`, IAM
//! actions `sluice:<Op>`): the keys at rest and the audit trail, so an operator need not reach
//! the server's disk — and every such act is authorized and audited like any other call.
//!
//! - `GetKeyStatus`: where the KEKs come from, their versions, what is still sealed under an
//!   older one, and the last re-wrap.
//! - `RotateKeys`: a new KEK version in the key folder (new data is sealed with it at once).
//! - `RewrapKeys`: starts re-sealing everything under the newest KEK in the background (each
//!   item its own transaction, so the API keeps serving); `GetKeyStatus` follows it.
//! - `VerifyAuditTrail`: the record chain, the delivered files and the signed digests, read from
//!   one snapshot.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_store::Transaction;
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal};
use crate::authz::authorize;
use crate::handlers::json;
use crate::keys::{self, RewrapReport};

/// The state of the background re-wrap, kept for `GetKeyStatus`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RewrapJob {
    /// `NEVER_RUN`, `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resealed: Option<RewrapReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Shared by the API handlers and the background job.
#[derive(Default)]
pub struct AdminJobs {
    rewrap: Mutex<RewrapJob>,
}

impl AdminJobs {
    fn rewrap(&self) -> RewrapJob {
        let job = match self.rewrap.lock() {
            Ok(job) => job.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        RewrapJob {
            state: if job.state.is_empty() { "NEVER_RUN" } else { job.state },
            ..job
        }
    }

    /// Starts `job` unless one is running; returns the running one if so.
    fn claim_rewrap(&self, job: RewrapJob) -> Option<RewrapJob> {
        let mut current = match self.rewrap.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.state == "RUNNING" {
            return Some(current.clone());
        }
        *current = job;
        None
    }

    fn set_rewrap(&self, job: RewrapJob) {
        match self.rewrap.lock() {
            Ok(mut current) => *current = job,
            Err(poisoned) => *poisoned.into_inner() = job,
        }
    }
}

fn keyring_arn(principal: &Principal) -> String {
    format!("arn:aws:sluice:local:{}:keyring", principal.identity.account_id)
}

fn audit_trail_arn(principal: &Principal) -> String {
    format!("arn:aws:sluice:local:{}:audit-trail", principal.identity.account_id)
}

fn internal(context: &str, error: anyhow::Error) -> ApiError {
    tracing::error!(error = %format!("{error:#}"), "{context}");
    ApiError::internal()
}

pub async fn get_key_status(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
) -> Result<String, ApiError> {
    authorize(principal, Operation::GetKeyStatus, &keyring_arn(principal))?;
    let pending = keys::pending(tx, &state.cipher)
        .await
        .map_err(|error| internal("cannot count what awaits re-wrapping", error))?;
    let versions = state.cipher.versions();
    json(&json!({
        "KeySource": if state.cipher.directory().is_some() { "FOLDER" } else { "ENVIRONMENT" },
        "KeyVersions": versions,
        "NewestVersion": versions.last(),
        "PendingRewrap": pending,
        "PendingRewrapTotal": pending.total(),
        "Rewrap": state.admin.rewrap(),
        "Fips": state.fips,
    }))
}

pub async fn rotate_keys(state: &AppState, principal: &Principal) -> Result<String, ApiError> {
    authorize(principal, Operation::RotateKeys, &keyring_arn(principal))?;
    if state.cipher.directory().is_none() {
        return Err(ApiError::new(
            ErrorKind::InvalidRequestException,
            "the key-encryption keys come from the environment (SLUICE_KEK_V<N> or --kek-command), not a key folder: add the new version where they are issued and restart the server",
        ));
    }
    let version = state
        .cipher
        .rotate()
        .map_err(|error| internal("cannot rotate the key-encryption key", error))?;
    tracing::info!(version, "key-encryption key rotated through the API");
    json(&json!({ "NewestVersion": version, "KeyVersions": state.cipher.versions() }))
}

pub async fn rewrap_keys(state: &AppState, principal: &Principal) -> Result<String, ApiError> {
    authorize(principal, Operation::RewrapKeys, &keyring_arn(principal))?;
    let started_at = crate::clock::render(state.clock.now());
    let job = RewrapJob {
        state: "RUNNING",
        started_at: Some(started_at.clone()),
        ..RewrapJob::default()
    };
    // Checked and claimed under one lock: two calls never start two jobs.
    if let Some(current) = state.admin.claim_rewrap(job.clone()) {
        return json(&json!({ "Started": false, "Rewrap": current }));
    }
    let (store, cipher, clock, admin) = (
        state.store.clone(),
        state.cipher.clone(),
        state.clock.clone(),
        state.admin.clone(),
    );
    // The job's transactions start once this request's has committed (SQLite has one writer).
    tokio::spawn(async move {
        let outcome = keys::rewrap(store.as_ref(), &cipher, &started_at).await;
        let finished_at = Some(crate::clock::render(clock.now()));
        let finished = match outcome {
            Ok(report) => {
                tracing::info!(?report, "re-wrap finished");
                RewrapJob {
                    state: "SUCCEEDED",
                    started_at: Some(started_at),
                    finished_at,
                    resealed: Some(report),
                    error: None,
                }
            }
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "re-wrap failed; run it again to resume");
                RewrapJob {
                    state: "FAILED",
                    started_at: Some(started_at),
                    finished_at,
                    resealed: None,
                    error: Some(
                        "the re-wrap stopped on an error (see the server's log); run it again to resume".into(),
                    ),
                }
            }
        };
        admin.set_rewrap(finished);
    });
    json(&json!({ "Started": true, "Rewrap": job }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct VerifyInput {
    start_time: Option<String>,
    end_time: Option<String>,
}

fn checked_time(value: Option<String>, member: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = value else { return Ok(None) };
    match chrono::DateTime::parse_from_rfc3339(&value) {
        Ok(time) => Ok(Some(
            time.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
        )),
        Err(_) => Err(ApiError::new(
            ErrorKind::InvalidRequestException,
            format!("{member} must be a time such as 2026-11-28T17:00:00Z"),
        )),
    }
}

pub async fn verify_audit_trail(state: &AppState, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: VerifyInput = if body.iter().all(u8::is_ascii_whitespace) {
        VerifyInput::default()
    } else {
        parse_body(body)?
    };
    let range = crate::audit::verify::Range {
        from: checked_time(input.start_time, "StartTime")?,
        to: checked_time(input.end_time, "EndTime")?,
    };
    authorize(principal, Operation::VerifyAuditTrail, &audit_trail_arn(principal))?;
    let report = crate::audit::verify::verify(
        state.store.as_ref(),
        &state.audit.destination,
        &state.audit.public_key(),
        &range,
    )
    .await
    .map_err(|error| internal("audit verification could not run", error))?;
    json(&json!({
        "Intact": report.problems.is_empty(),
        "RecordsChecked": report.n_records,
        "FilesChecked": report.n_files,
        "DigestsChecked": report.n_digests,
        "Problems": report.problems,
        "Notes": report.notes,
    }))
}
