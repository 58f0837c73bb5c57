//! The request path: target → body → authentication → authorization → handler, in one store
//! transaction, and the one place errors become HTTP responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use http::{HeaderValue, Method, StatusCode};
use sluice_core::Limits;
use sluice_crypto::sigv4::{self, RequestParts};
use sluice_store::{IdentityRecord, Store, Transaction};
use sluice_wire::{ApiError, ErrorKind, Operation};

use crate::audit::{self, CallRecord, RequestContext};
use crate::clock::{Clock, render};
use crate::vault::SecretVault;
use crate::{authz, handlers};

/// Bodies up to 24 MiB: EvaluateExpression alone may carry a 20 MiB expression. Anything larger
/// is refused before it is read.
pub const MAX_BODY_BYTES: usize = 24 * 1024 * 1024;
const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub vault: Arc<dyn SecretVault>,
    pub cipher: Arc<crate::keys::Cipher>,
    pub limits: Limits,
    pub max_pipelines: i64,
    /// The account this server holds (one per data directory today).
    pub account_id: String,
    /// Region named in audit records when a request names none.
    pub region: String,
    /// Running with `--fips` (checked at start).
    pub fips: bool,
    pub scheduler: std::sync::Arc<crate::scheduler::Scheduler>,
    /// Where the audit trail is delivered, and its signing key's public half.
    pub audit: Arc<crate::audit::delivery::AuditDelivery>,
    /// The administration API's background jobs.
    pub admin: Arc<crate::admin::AdminJobs>,
    /// Classification jobs (kept while the server runs).
    pub classification: Arc<crate::classification::ClassificationJobs>,
    /// Where the in-process runner writes attempt logs, if there is one.
    pub runner_log_dir: Option<std::path::PathBuf>,
}

/// What the connection told us: the peer and the negotiated TLS parameters.
#[derive(Clone, Debug, Default)]
pub struct ConnectionInfo {
    pub peer: Option<SocketAddr>,
    pub tls_version: Option<String>,
    pub cipher_suite: Option<String>,
}

/// Who made the call, once SigV4 is verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub identity: IdentityRecord,
    pub access_key_id: String,
    /// The policies attached to the identity, parsed and indexed (none for the root identity).
    pub policies: Arc<sluice_policy::PolicySet>,
    /// The identity's tags (`aws:PrincipalTag/<key>`).
    pub tags: Vec<(String, String)>,
    pub source_ip: Option<String>,
    /// The request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// When the request was authenticated, RFC 3339 (`aws:CurrentTime`).
    pub request_time: String,
    /// Signed with session credentials (GetSessionToken).
    pub session: bool,
    /// When MFA was proven for the session (`aws:MultiFactorAuthPresent`, `...Age`).
    pub mfa_authenticated_at: Option<DateTime<Utc>>,
    /// The account requires MFA of this (human) user and the call does not carry it: only what
    /// sets MFA up is allowed.
    pub mfa_missing: bool,
    /// For a role session (a task's credentials): the role it is a session of. `identity` is
    /// then the session (`AssumedRole`, `arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    pub session_issuer: Option<IdentityRecord>,
}

/// SHA-256 in lowercase hex (session tokens are stored only as this).
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sluice/status", axum::routing::get(status))
        .merge(crate::console::routes())
        .fallback(handle)
        .with_state(state)
}

/// Liveness and posture, for load balancers and operators: no data, no authentication.
async fn status(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "service": "sluice",
        "version": env!("CARGO_PKG_VERSION"),
        "fips": state.fips && crate::tls::crypto_module_is_fips(),
        "tlsVersions": ["TLSv1.2", "TLSv1.3"],
        // Whether this server holds the scheduler's lease (one of several on PostgreSQL).
        "scheduler": { "leader": state.scheduler.is_leader() },
    });
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn respond(request_id: &str, status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

fn error_response(request_id: &str, error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(request_id, status, error.body())
}

/// What is known of a request as it goes down the path; all of it feeds the audit record.
#[derive(Default)]
pub(crate) struct Attempt {
    /// Sent in the query protocol (form parameters, XML answers): `aws sts`, boto3's STS client.
    pub(crate) query: bool,
    pub(crate) operation: Option<Operation>,
    pub(crate) unknown_event_name: Option<String>,
    pub(crate) body: Option<bytes::Bytes>,
    pub(crate) principal: Option<Principal>,
    pub(crate) claimed_access_key_id: Option<String>,
    pub(crate) region: Option<String>,
}

fn header_text(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let connection = request
        .extensions()
        .get::<ConnectionInfo>()
        .cloned()
        .unwrap_or_default();
    let context = RequestContext {
        request_id: uuid::Uuid::new_v4().to_string(),
        source_ip: connection.peer.map(|peer| peer.ip().to_string()),
        user_agent: header_text(&request, "user-agent"),
        host: header_text(&request, "host"),
        tls_version: connection.tls_version.clone(),
        cipher_suite: connection.cipher_suite.clone(),
    };
    let target = header_text(&request, "x-amz-target");
    let mut attempt = Attempt::default();
    let result = process(&state, &context, &mut attempt, request).await;
    let response = match &result {
        Ok(body) if attempt.query => crate::query::respond(&context.request_id, attempt.operation, body),
        Ok(body) => respond(&context.request_id, StatusCode::OK, body.clone()),
        Err(error) => {
            // The request's own transaction is gone; its record goes in one of its own.
            if let Err(audit_error) = record_failure(&state, &context, &attempt, error).await {
                tracing::error!(request_id = %context.request_id, error = %audit_error, "could not record a failed call in the audit trail");
            }
            if attempt.query {
                crate::query::error(&context.request_id, attempt.operation, error)
            } else {
                error_response(&context.request_id, error)
            }
        }
    };
    let access_key_id = attempt
        .principal
        .as_ref()
        .map(|principal| principal.access_key_id.clone())
        .or(attempt.claimed_access_key_id.clone());
    tracing::info!(
        request_id = %context.request_id,
        target = target.as_deref().unwrap_or("-"),
        peer = ?connection.peer,
        access_key_id = access_key_id.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        outcome = result.as_ref().err().map_or("ok", |error| error.kind.as_str()),
        elapsed_ms = started.elapsed().as_millis() as u64,
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

pub(crate) fn call_record<'a>(
    state: &'a AppState,
    context: &'a RequestContext,
    attempt: &'a Attempt,
) -> CallRecord<'a> {
    CallRecord {
        context,
        event_time: state.clock.now(),
        account_id: &state.account_id,
        region: attempt.region.as_deref().unwrap_or(&state.region),
        operation: attempt.operation,
        unknown_event_name: attempt.unknown_event_name.clone(),
        principal: attempt.principal.as_ref(),
        claimed_access_key_id: attempt.claimed_access_key_id.as_deref(),
        request_body: attempt.body.as_deref(),
        response_body: None,
        error: None,
    }
}

pub(crate) async fn record_failure(
    state: &AppState,
    context: &RequestContext,
    attempt: &Attempt,
    error: &ApiError,
) -> Result<(), sluice_store::StoreError> {
    let mut call = call_record(state, context, attempt);
    call.error = Some((error.kind.as_str(), &error.message));
    let (record, row) = audit::build(&call);
    let mut tx = state.store.begin().await?;
    audit::append(tx.as_mut(), &record, row).await?;
    tx.commit().await
}

pub(crate) fn store_failure(error: sluice_store::StoreError) -> ApiError {
    // The detail goes to the log for the operator; the client learns only that it failed.
    tracing::error!(%error, "store error");
    ApiError::internal()
}

async fn process(
    state: &AppState,
    context: &RequestContext,
    attempt: &mut Attempt,
    request: Request,
) -> Result<String, ApiError> {
    let target = header_text(&request, "x-amz-target");
    // The query protocol (STS) names the operation in the form body, not in a header.
    attempt.query = target.is_none()
        && header_text(&request, "content-type")
            .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    let target_operation = if attempt.query {
        None
    } else {
        let operation = Operation::from_target(target.as_deref()).inspect_err(|_| {
            // Name the event after what was asked for, cut short: it is caller input.
            attempt.unknown_event_name = target
                .as_deref()
                .map(|target| target.rsplit('.').next().unwrap_or(target).chars().take(64).collect());
        })?;
        attempt.operation = Some(operation);
        Some(operation)
    };
    if request.method() != Method::POST {
        return Err(ApiError::new(
            ErrorKind::UnknownOperationException,
            "the API takes POST requests only",
        ));
    }
    let declared_length = header_text(&request, "content-length").and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())?;
    // SigV4 covers the body as sent; handlers take JSON, so query parameters become JSON.
    let (operation, handler_body) = match target_operation {
        Some(operation) => (operation, body.clone()),
        None => {
            let (operation, json) = crate::query::to_json(&body).inspect_err(|_| {
                attempt.unknown_event_name = crate::query::action(&body);
            })?;
            attempt.operation = Some(operation);
            (operation, bytes::Bytes::from(json))
        }
    };
    attempt.body = Some(handler_body.clone());

    // PollForTask is a long poll: with no task to hand out it waits (outside any transaction)
    // until a task is queued or the wait ends, then answers as any other call.
    let long_poll_until =
        (operation == Operation::PollForTask).then(|| Instant::now() + state.scheduler.settings.poll_wait);
    let (mut tx, response) = loop {
        let queued = state.scheduler.tasks_queued();
        tokio::pin!(queued);
        queued.as_mut().enable();
        let mut tx = state.store.begin().await.map_err(store_failure)?;
        let principal = authenticate(state, tx.as_mut(), &parts, &body, operation, attempt, context).await?;
        attempt.principal = Some(principal.clone());
        let response = handlers::dispatch(state, tx.as_mut(), &principal, operation, &handler_body).await?;
        let remaining = long_poll_until.map(|until| until.saturating_duration_since(Instant::now()));
        match remaining {
            Some(remaining) if !remaining.is_zero() && response == handlers::NO_TASK => {
                drop(tx);
                // Tasks also become available when a retry delay passes: look again each second.
                let _ = tokio::time::timeout(remaining.min(std::time::Duration::from_secs(1)), queued).await;
            }
            _ => break (tx, response),
        }
    };

    let mut call = call_record(state, context, attempt);
    call.response_body = Some(&response);
    let (record, row) = audit::build(&call);
    audit::append(tx.as_mut(), &record, row).await.map_err(store_failure)?;
    tx.commit().await.map_err(store_failure)?;
    Ok(response)
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorKind::RequestEntityTooLarge,
        format!("the request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
    )
}

/// Authorization is per operation and resource: handlers call this once they know the pipeline.
pub fn authorize(principal: &Principal, operation: Operation, resource: &str) -> Result<(), ApiError> {
    authz::authorize(principal, operation, resource)
}

fn parse_amz_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|naive| naive.and_utc())
}

async fn authenticate(
    state: &AppState,
    tx: &mut dyn Transaction,
    parts: &http::request::Parts,
    body: &[u8],
    operation: Operation,
    attempt: &mut Attempt,
    context: &RequestContext,
) -> Result<Principal, ApiError> {
    let auth_error = |error: sigv4::SigV4Error| {
        let kind = match error.aws_error_type() {
            "MissingAuthenticationToken" => ErrorKind::MissingAuthenticationToken,
            "IncompleteSignature" => ErrorKind::IncompleteSignature,
            "RequestExpired" => ErrorKind::RequestExpired,
            _ => ErrorKind::InvalidSignatureException,
        };
        ApiError::new(kind, error.to_string())
    };
    let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(auth_error(sigv4::SigV4Error::MissingAuthentication));
    };
    let header = header.to_str().map_err(|_| {
        auth_error(sigv4::SigV4Error::Incomplete(
            "the Authorization header is not ASCII".into(),
        ))
    })?;
    let authorization = sigv4::parse_authorization(header).map_err(auth_error)?;
    attempt.claimed_access_key_id = Some(authorization.access_key_id.chars().take(128).collect());
    attempt.region = Some(authorization.region.chars().take(64).collect());
    // Kept as a named step: every failure below is an authentication failure as it stands.
    let fail = |error: ApiError| error;

    let service = operation.signing_service();
    if authorization.service != service {
        return Err(auth_error(sigv4::SigV4Error::InvalidScope(format!(
            "Credential should be scoped to correct service: '{service}'"
        ))));
    }
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            fail(auth_error(sigv4::SigV4Error::Incomplete(
                "Authorization header requires existence of a 'X-Amz-Date' header".into(),
            )))
        })?;
    let request_time = parse_amz_date(amz_date).ok_or_else(|| {
        fail(auth_error(sigv4::SigV4Error::Incomplete(
            "X-Amz-Date must have the form YYYYMMDDTHHMMSSZ".into(),
        )))
    })?;
    // Signatures expire in real time, whatever time the scheduler is told it is.
    let now = crate::clock::SystemClock.now();
    let skew = (request_time - now).num_seconds();
    let stamp = |time: DateTime<Utc>| time.format("%Y%m%dT%H%M%SZ").to_string();
    if skew < -MAX_CLOCK_SKEW_SECONDS {
        return Err(fail(auth_error(sigv4::SigV4Error::Expired {
            request_time: amz_date.to_string(),
            earliest: stamp(now - chrono::Duration::seconds(MAX_CLOCK_SKEW_SECONDS)),
            now: stamp(now),
        })));
    }
    if skew > MAX_CLOCK_SKEW_SECONDS {
        return Err(fail(auth_error(sigv4::SigV4Error::NotYetCurrent {
            request_time: amz_date.to_string(),
            latest: stamp(now + chrono::Duration::seconds(MAX_CLOCK_SKEW_SECONDS)),
            now: stamp(now),
        })));
    }

    let mut headers: Vec<(String, String)> = Vec::with_capacity(parts.headers.len() + 1);
    for (name, value) in &parts.headers {
        let value = value.to_str().map_err(|_| {
            fail(auth_error(sigv4::SigV4Error::Incomplete(format!(
                "header '{name}' is not ASCII"
            ))))
        })?;
        headers.push((name.as_str().to_string(), value.to_string()));
    }
    if !headers.iter().any(|(name, _)| name == "host")
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host".into(), authority.to_string()));
    }
    let request_parts = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    sigv4::check_structure(&authorization, &request_parts, amz_date).map_err(|error| fail(auth_error(error)))?;

    let unrecognized = || {
        fail(ApiError::new(
            ErrorKind::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ))
    };
    let session_token = headers
        .iter()
        .find(|(name, _)| name == "x-amz-security-token")
        .map(|(_, value)| value.clone());
    let key = tx
        .access_key(&authorization.access_key_id)
        .await
        .map_err(store_failure)
        .map_err(fail)?;
    let Some(key) = key.filter(|key| key.status == "Active") else {
        return Err(unrecognized());
    };
    // Session credentials need their token, and only they have one; an expired session says so.
    match (&key.session, &session_token) {
        (None, None) => {}
        (Some(session), Some(token)) => {
            let hash = hex_sha256(token.as_bytes());
            if aws_lc_rs::constant_time::verify_slices_are_equal(hash.as_bytes(), session.token_hash.as_bytes())
                .is_err()
            {
                return Err(unrecognized());
            }
            if session.expires_at <= render(now) {
                return Err(ApiError::new(
                    ErrorKind::ExpiredTokenException,
                    "The security token included in the request is expired",
                ));
            }
            // A task's credentials work only while its attempt runs.
            if let Some(task) = &session.task
                && task.attempt_status.as_deref() != Some("RUNNING")
            {
                return Err(ApiError::new(
                    ErrorKind::ExpiredTokenException,
                    "The security token included in the request is expired: the task attempt it was issued for has ended",
                ));
            }
        }
        _ => return Err(unrecognized()),
    }
    let Some(secret) = state
        .vault
        .open(&crate::keys::access_key_context(&key.access_key_id), &key.sealed_secret)
    else {
        tracing::error!(access_key_id = %key.access_key_id, "stored key secret cannot be opened");
        return Err(fail(ApiError::internal()));
    };
    sigv4::verify(&authorization, &request_parts, &secret, amz_date).map_err(|error| fail(auth_error(error)))?;
    principal_for_key(tx, key, context, now).await
}

/// The principal an authenticated access key acts as: its identity's policies and tags, its
/// session's MFA facts, and for a task's role session the role it is a session of.
pub(crate) async fn principal_for_key(
    tx: &mut dyn Transaction,
    key: sluice_store::AccessKeyRecord,
    context: &RequestContext,
    now: DateTime<Utc>,
) -> Result<Principal, ApiError> {
    // The last-used time is kept to the minute (IAM's own is coarser): a key in steady use
    // costs no write per call.
    let used_at = render(now);
    let recent = key
        .last_used_at
        .as_deref()
        .is_some_and(|last| last.get(..16) == used_at.get(..16));
    if !recent {
        tx.touch_access_key(&key.access_key_id, &used_at)
            .await
            .map_err(store_failure)?;
    }
    let (policies, tags) = if key.identity.kind == "Root" {
        (Vec::new(), Vec::new())
    } else {
        identity_policies(tx, &key.identity).await.map_err(store_failure)?
    };
    let policies = Arc::new(sluice_policy::PolicySet::new(policies));
    let mfa_authenticated_at = key
        .session
        .as_ref()
        .and_then(|session| session.mfa_at.as_deref())
        .and_then(|time| NaiveDateTime::parse_from_str(time, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|time| time.and_utc());
    // Human users (not tagged `sluice:service` = `true`) of an account that requires MFA must
    // call with MFA-bearing session credentials.
    let mfa_missing = key.identity.kind == "IAMUser"
        && mfa_authenticated_at.is_none()
        && !tags
            .iter()
            .any(|(key, value)| key == "sluice:service" && value.eq_ignore_ascii_case("true"))
        && tx.require_mfa(&key.identity.account_id).await.map_err(store_failure)?;
    // A role session acts as `assumed-role/<role>/<session>` with the role's policies.
    let (identity, session_issuer) = match key.session.as_ref().and_then(|session| session.task.as_ref()) {
        Some(task) if key.identity.kind == "Role" => {
            let session = crate::roles::session_name(&task.pipeline_id, &task.attempt_id);
            let assumed = IdentityRecord {
                identity_id: format!("{}:{session}", key.identity.identity_id),
                account_id: key.identity.account_id.clone(),
                kind: "AssumedRole".into(),
                name: session.clone(),
                arn: format!(
                    "arn:aws:sts::{}:assumed-role/{}/{session}",
                    key.identity.account_id, key.identity.name
                ),
            };
            (assumed, Some(key.identity))
        }
        _ => (key.identity, None),
    };
    Ok(Principal {
        mfa_missing,
        session_issuer,
        session: key.session.is_some(),
        mfa_authenticated_at,
        identity,
        access_key_id: key.access_key_id,
        policies,
        tags,
        source_ip: context.source_ip.clone(),
        secure_transport: context.tls_version.is_some(),
        request_time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// The policies attached to a user (shipped ones by ARN, the account's from the store) and its
/// tags. A stored policy was parsed when it was created; one that no longer parses counts as
/// absent (it can only deny less) and is logged.
async fn identity_policies(
    tx: &mut dyn Transaction,
    identity: &IdentityRecord,
) -> sluice_store::Result<(Vec<sluice_policy::Policy>, Vec<(String, String)>)> {
    let (named, tags) = named_policies(tx, identity).await?;
    Ok((named.into_iter().map(|(_, policy)| policy).collect(), tags))
}

/// `identity_policies` with each policy's ARN.
pub(crate) async fn named_policies(
    tx: &mut dyn Transaction,
    identity: &IdentityRecord,
) -> sluice_store::Result<(Vec<(String, sluice_policy::Policy)>, Vec<(String, String)>)> {
    let tags = if identity.kind == "Role" {
        tx.role(&identity.account_id, &identity.name)
            .await?
            .map(|role| role.tags)
            .unwrap_or_default()
    } else {
        tx.user(&identity.account_id, &identity.name)
            .await?
            .map(|user| user.tags)
            .unwrap_or_default()
    };
    let mut policies = Vec::new();
    // The user's own policies, then those of each of its groups.
    let mut arns = tx.attached_policies(&identity.identity_id).await?;
    for group in tx.groups_of(&identity.identity_id).await? {
        arns.extend(tx.group_policies(&group.group_id).await?);
    }
    arns.sort();
    arns.dedup();
    for arn in arns {
        let document = match authz::managed_policy(&arn) {
            Some((_, document)) => document.to_string(),
            None => match tx.policy(&arn).await? {
                Some(policy) => policy.document,
                None => continue,
            },
        };
        match sluice_policy::parse(&document) {
            Ok(policy) => policies.push((arn, policy)),
            Err(error) => tracing::error!(policy = %arn, %error, "an attached policy does not parse; ignored"),
        }
    }
    Ok((policies, tags))
}
