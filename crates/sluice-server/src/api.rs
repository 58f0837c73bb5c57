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

use crate::clock::{Clock, render};
use crate::vault::SecretVault;
use crate::{authz, handlers};

/// Bodies up to 24 MiB: EvaluateExpression alone may carry a 20 MiB expression. Anything larger
/// is refused before it is read.
pub const MAX_BODY_BYTES: usize = 24 * 1024 * 1024;
pub const SIGNING_SERVICE: &str = "datapipeline";
const MAX_CLOCK_SKEW_SECONDS: i64 = 5 * 60;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub vault: Arc<dyn SecretVault>,
    pub limits: Limits,
    pub max_pipelines: i64,
}

#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Who made the call, once SigV4 is verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub identity: IdentityRecord,
    pub access_key_id: String,
}

pub fn router(state: AppState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

fn respond(request_id: &str, status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    response
}

fn error_response(request_id: &str, error: &ApiError) -> Response {
    let status =
        StatusCode::from_u16(error.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(request_id, status, error.body())
}

async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let peer = request.extensions().get::<Peer>().map(|peer| peer.0);
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let result = process(&state, request).await;
    let (response, outcome, access_key_id) = match result {
        Ok((body, principal)) => (
            respond(&request_id, StatusCode::OK, body),
            "ok".to_string(),
            Some(principal.access_key_id),
        ),
        Err(failure) => (
            error_response(&request_id, &failure.error),
            failure.error.kind.as_str().to_string(),
            failure.access_key_id,
        ),
    };
    tracing::info!(
        request_id = %request_id,
        target = target.as_deref().unwrap_or("-"),
        peer = ?peer,
        access_key_id = access_key_id.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        outcome = %outcome,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

struct Failure {
    error: ApiError,
    access_key_id: Option<String>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            access_key_id: None,
        }
    }
}

fn store_failure(error: sluice_store::StoreError) -> ApiError {
    // The detail goes to the log for the operator; the client learns only that it failed.
    tracing::error!(%error, "store error");
    ApiError::internal()
}

async fn process(state: &AppState, request: Request) -> Result<(String, Principal), Failure> {
    if request.method() != Method::POST {
        return Err(ApiError::new(
            ErrorKind::UnknownOperationException,
            "the API takes POST requests only",
        )
        .into());
    }
    let operation = Operation::from_target(
        request
            .headers()
            .get("x-amz-target")
            .and_then(|value| value.to_str().ok()),
    )?;
    let declared_length = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large().into());
    }
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())?;

    let mut tx = state.store.begin().await.map_err(store_failure)?;
    let principal = authenticate(state, tx.as_mut(), &parts, &body).await?;
    let access_key_id = Some(principal.access_key_id.clone());
    let with_key = |error: ApiError| Failure {
        error,
        access_key_id: access_key_id.clone(),
    };
    let result = handlers::dispatch(state, tx.as_mut(), &principal, operation, &body)
        .await
        .map_err(with_key)?;
    tx.commit().await.map_err(store_failure).map_err(with_key)?;
    Ok((result, principal))
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorKind::RequestEntityTooLarge,
        format!("the request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
    )
}

/// Authorization is per operation and resource: handlers call this once they know the pipeline.
pub fn authorize(
    principal: &Principal,
    operation: Operation,
    resource: &str,
) -> Result<(), ApiError> {
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
) -> Result<Principal, Failure> {
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
        return Err(auth_error(sigv4::SigV4Error::MissingAuthentication).into());
    };
    let header = header.to_str().map_err(|_| {
        auth_error(sigv4::SigV4Error::Incomplete(
            "the Authorization header is not ASCII".into(),
        ))
    })?;
    let authorization = sigv4::parse_authorization(header).map_err(auth_error)?;
    let access_key_id = Some(authorization.access_key_id.clone());
    let fail = |error: ApiError| Failure {
        error,
        access_key_id: access_key_id.clone(),
    };

    if authorization.service != SIGNING_SERVICE {
        return Err(fail(auth_error(sigv4::SigV4Error::InvalidScope(format!(
            "Credential should be scoped to correct service: '{SIGNING_SERVICE}'"
        )))));
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
    let now = state.clock.now();
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
    sigv4::check_structure(&authorization, &request_parts, amz_date)
        .map_err(|error| fail(auth_error(error)))?;

    let unrecognized = || {
        fail(ApiError::new(
            ErrorKind::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        ))
    };
    if headers
        .iter()
        .any(|(name, _)| name == "x-amz-security-token")
    {
        // Session credentials arrive with [iam]; until then no session token is valid.
        return Err(unrecognized());
    }
    let key = tx
        .access_key(&authorization.access_key_id)
        .await
        .map_err(store_failure)
        .map_err(fail)?;
    let Some(key) = key.filter(|key| key.status == "Active") else {
        return Err(unrecognized());
    };
    let Some(secret) = state.vault.open(&key.sealed_secret) else {
        tracing::error!(access_key_id = %key.access_key_id, "stored key secret cannot be opened");
        return Err(fail(ApiError::internal()));
    };
    sigv4::verify(&authorization, &request_parts, &secret, amz_date)
        .map_err(|error| fail(auth_error(error)))?;
    tx.touch_access_key(&key.access_key_id, &render(now))
        .await
        .map_err(store_failure)
        .map_err(fail)?;
    Ok(Principal {
        identity: key.identity,
        access_key_id: key.access_key_id,
    })
}
