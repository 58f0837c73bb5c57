//! The web console, served by `sluice serve` under `/console/`: server-rendered HTML (no script
//! at all, so the Content-Security-Policy allows none), one stylesheet embedded in the binary,
//! forms for every action.
//!
//! Sign-in takes an IAM user's name, console password (a login profile) and, when the user has
//! an MFA device, a TOTP code; it mints session credentials like GetSessionToken's (one hour,
//! carrying the MFA time) whose key id and token form the session cookie (`__Host-`, Secure,
//! HttpOnly, SameSite=Strict). Every page and action is one or more calls of the API's own
//! operations made as that session: authorized by the same policies through
//! `handlers::dispatch`, and audited as CloudTrail records console calls
//! (`sessionCredentialFromConsole`). Sign-ins are audited as `ConsoleLogin` events. Forms carry a
//! CSRF token derived from the session's secret token, and a POST whose Origin is another site is
//! refused.

mod graph;
mod pages;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use sluice_wire::{ApiError, ErrorKind, Operation};

use crate::api::{AppState, ConnectionInfo, Principal};
use crate::audit::{self, RequestContext};

const COOKIE: &str = "__Host-sluice-console";
const SESSION_SECONDS: i64 = 3600;
const MAX_FORM_BYTES: usize = 64 * 1024;
const STYLESHEET: &str = include_str!("console.css");
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", axum::routing::any(handle))
        .route("/console/", axum::routing::any(handle))
        .route("/console/{*path}", axum::routing::any(handle))
}

/// One console request as it goes through: who asks, from where.
pub(crate) struct Visit {
    pub context: RequestContext,
    /// `(access key id, token)` from the session cookie.
    pub session: Option<(String, String)>,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
}

impl Visit {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    pub fn form(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn form_all(&self, name: &str) -> Vec<String> {
        self.form
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The CSRF token the session's forms carry.
    pub fn csrf(&self) -> String {
        self.session
            .as_ref()
            .map(|(_, token)| csrf_token(token))
            .unwrap_or_default()
    }
}

fn csrf_token(session_token: &str) -> String {
    crate::api::hex_sha256(format!("sluice-console-csrf:{session_token}").as_bytes())
}

fn cookie_session(headers: &HeaderMap) -> Option<(String, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| value.split_once('.'))
        .filter(|(key, token)| key.starts_with("ASIA") && key.len() <= 128 && !token.is_empty() && token.len() <= 512)
        .map(|(key, token)| (key.to_string(), token.to_string()))
}

fn pairs(text: &[u8]) -> Vec<(String, String)> {
    // No field holds a NUL (the store's text could not).
    form_urlencoded::parse(text)
        .filter(|(key, value)| !key.contains('\0') && !value.contains('\0'))
        .take(1000)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let connection = request
        .extensions()
        .get::<ConnectionInfo>()
        .cloned()
        .unwrap_or_default();
    let headers = request.headers().clone();
    let header_text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
    };
    let context = RequestContext {
        request_id: uuid::Uuid::new_v4().to_string(),
        source_ip: connection.peer.map(|peer| peer.ip().to_string()),
        user_agent: header_text(header::USER_AGENT),
        // HTTP/2 carries the host as the request's authority, not a Host header.
        host: header_text(header::HOST).or_else(|| request.uri().authority().map(|authority| authority.to_string())),
        tls_version: connection.tls_version.clone(),
        cipher_suite: connection.cipher_suite.clone(),
    };
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_string();
    let query = pairs(request.uri().query().unwrap_or("").as_bytes());
    let mut visit = Visit {
        context,
        session: cookie_session(&headers),
        query,
        form: Vec::new(),
    };
    let secure = connection.tls_version.is_some();
    let mut response = if method == Method::POST {
        // Another site's page must not drive this one (SameSite=Strict keeps the cookie away
        // too; a form token covers browsers that send no Origin).
        let same_origin = match header_text(header::ORIGIN) {
            None => true,
            Some(origin) => {
                let scheme = if secure { "https" } else { "http" };
                visit
                    .context
                    .host
                    .as_deref()
                    .is_some_and(|host| origin == format!("{scheme}://{host}"))
            }
        };
        match axum::body::to_bytes(Body::new(request.into_body()), MAX_FORM_BYTES).await {
            _ if !same_origin => pages::refused(StatusCode::FORBIDDEN, "This form was sent from another site."),
            Ok(body) => {
                visit.form = pairs(&body);
                post(&state, &path, &visit, secure).await
            }
            Err(_) => pages::refused(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."),
        }
    } else if method == Method::GET {
        get(&state, &path, &visit).await
    } else {
        pages::refused(StatusCode::METHOD_NOT_ALLOWED, "The console takes GET and POST.")
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        // `same-origin`: the console's own forms carry their Origin (with `no-referrer`
        // Chromium sends `Origin: null`), other sites learn nothing.
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    visit.form.clear();
    response
}

/// Whether the signed-in user must set a new password before anything else
/// (`PasswordResetRequired`).
async fn reset_due(state: &AppState, visit: &Visit) -> bool {
    let Ok(mut tx) = state.store.begin().await else {
        return false;
    };
    let Ok(principal) = session_principal(tx.as_mut(), visit, crate::iam::real_now()).await else {
        return false;
    };
    let due = tx
        .login_profile(&principal.identity.identity_id)
        .await
        .ok()
        .flatten()
        .is_some_and(|profile| profile.password_reset_required);
    let _ = tx.commit().await;
    due
}

async fn get(state: &AppState, path: &str, visit: &Visit) -> Response {
    if !matches!(
        path,
        "/console/static/console.css" | "/console/signin" | "/console/password"
    ) && reset_due(state, visit).await
    {
        return see_other("/console/password");
    }
    match path {
        "/console/password" => pages::password(state, visit, None).await,
        "/console/static/console.css" => {
            let mut response = STYLESHEET.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
            response
        }
        "/console/signin" => pages::sign_in_page(
            None,
            visit
                .query("changed")
                .map(|_| "Your password is changed: sign in with the new one."),
            StatusCode::OK,
        ),
        "" | "/console" | "/console/pipelines" => pages::pipelines(state, visit).await,
        "/console/audit" => pages::audit(state, visit).await,
        "/console/findings" => pages::findings(state, visit).await,
        "/console/users" => pages::users(state, visit).await,
        _ => match path
            .strip_prefix("/console/pipelines/")
            .map(|rest| rest.split_once('/'))
        {
            Some(None) => pages::pipeline(state, visit, &path["/console/pipelines/".len()..]).await,
            Some(Some((pipeline_id, "log"))) => pages::attempt_log(state, visit, pipeline_id).await,
            _ => pages::not_found(),
        },
    }
}

async fn post(state: &AppState, path: &str, visit: &Visit, secure: bool) -> Response {
    if path == "/console/signin" {
        return sign_in(state, visit, secure).await;
    }
    // Every other form belongs to a session and carries its token.
    let expected = visit.csrf();
    let given = visit.form("csrf").unwrap_or("");
    if expected.is_empty()
        || aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_err()
    {
        return pages::refused(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from your session: reload the page and try again.",
        );
    }
    if path == "/console/signout" {
        return sign_out(state, visit).await;
    }
    if path == "/console/password" {
        return pages::change_password(state, visit).await;
    }
    if reset_due(state, visit).await {
        return see_other("/console/password");
    }
    match path
        .strip_prefix("/console/pipelines/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((pipeline_id, "action")) => pages::pipeline_action(state, visit, pipeline_id).await,
        _ => pages::not_found(),
    }
}

/// Redirects with 303 (after a POST, the browser GETs the target).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The principal of the visit's session, or why there is none (then the page sends the visitor
/// to sign in).
async fn session_principal(
    tx: &mut dyn sluice_store::Transaction,
    visit: &Visit,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Principal, ApiError> {
    let expired = || ApiError::new(ErrorKind::ExpiredTokenException, "sign in to continue");
    let (key_id, token) = visit.session.as_ref().ok_or_else(expired)?;
    let key = tx
        .access_key(key_id)
        .await
        .map_err(crate::api::store_failure)?
        .filter(|key| key.status == "Active")
        .ok_or_else(expired)?;
    let session = key.session.as_ref().ok_or_else(expired)?;
    let hash = crate::api::hex_sha256(token.as_bytes());
    if aws_lc_rs::constant_time::verify_slices_are_equal(hash.as_bytes(), session.token_hash.as_bytes()).is_err()
        || session.expires_at <= crate::clock::render(now)
        || session.task.is_some()
        // Console sessions have no parent key (GetSessionToken's do): only they are cookies.
        || session.parent_key_id.is_some()
        || key.identity.kind != "IAMUser"
    {
        return Err(expired());
    }
    crate::api::principal_for_key(tx, key, &visit.context, now).await
}

/// One API operation as the visit's session, in its own transaction, audited as a console
/// call; the answer's JSON.
pub(crate) async fn call(
    state: &AppState,
    visit: &Visit,
    operation: Operation,
    input: Value,
) -> Result<Value, ApiError> {
    let body = bytes::Bytes::from(input.to_string());
    let now = crate::iam::real_now();
    let mut attempt = crate::api::Attempt {
        operation: Some(operation),
        body: Some(body.clone()),
        region: Some(state.region.clone()),
        ..Default::default()
    };
    let mut tx = state.store.begin().await.map_err(crate::api::store_failure)?;
    let principal = session_principal(tx.as_mut(), visit, now).await?;
    attempt.principal = Some(principal.clone());
    let outcome = crate::handlers::dispatch(state, tx.as_mut(), &principal, operation, &body).await;
    match outcome {
        Ok(answer) => {
            let mut call = crate::api::call_record(state, &visit.context, &attempt);
            call.response_body = Some(&answer);
            let (mut record, row) = audit::build(&call);
            record["sessionCredentialFromConsole"] = json!("true");
            audit::append(tx.as_mut(), &record, row)
                .await
                .map_err(crate::api::store_failure)?;
            tx.commit().await.map_err(crate::api::store_failure)?;
            serde_json::from_str(&answer).map_err(|_| ApiError::internal())
        }
        Err(error) => {
            drop(tx);
            if let Err(audit_error) = crate::api::record_failure(state, &visit.context, &attempt, &error).await {
                tracing::error!(error = %audit_error, "could not record a failed console call in the audit trail");
            }
            Err(error)
        }
    }
}

/// The signed-in user's name, for the page header.
pub(crate) async fn signed_in_user(state: &AppState, visit: &Visit) -> Option<String> {
    let mut tx = state.store.begin().await.ok()?;
    let principal = session_principal(tx.as_mut(), visit, crate::iam::real_now())
        .await
        .ok()?;
    tx.commit().await.ok()?;
    Some(principal.identity.name)
}

/// What the sign-in form's check decided, for the page and the `ConsoleLogin` record.
enum SignIn {
    Signed {
        principal_name: String,
        identity_id: String,
        arn: String,
        mfa: bool,
    },
    Refused {
        message: &'static str,
        user_name: Option<String>,
    },
}

const WRONG: &str = "The user name, password or MFA code is not right.";

async fn sign_in(state: &AppState, visit: &Visit, secure: bool) -> Response {
    // A password crosses the network only inside TLS (plain HTTP is for loopback tests).
    let loopback = visit
        .context
        .source_ip
        .as_deref()
        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback());
    if !secure && !loopback {
        return pages::sign_in(
            Some("Sign in over HTTPS: this server refuses passwords sent in the clear."),
            StatusCode::FORBIDDEN,
        );
    }
    let name = visit.form("username").unwrap_or("").trim().to_string();
    let password = visit.form("password").unwrap_or("").to_string();
    let code = visit.form("code").unwrap_or("").trim().to_string();
    let now = crate::iam::real_now();
    let result = async {
        // What the check needs, read without holding the write lock: the password hash costs
        // 600,000 rounds and must not stall every writer while it runs.
        let (user, profile) = {
            let mut tx = state.store.begin_read().await.map_err(crate::api::store_failure)?;
            let user = if name.is_empty() || name.len() > 64 {
                None
            } else {
                tx.user(&state.account_id, &name)
                    .await
                    .map_err(crate::api::store_failure)?
            };
            let profile = match &user {
                Some(user) => tx
                    .login_profile(&user.identity.identity_id)
                    .await
                    .map_err(crate::api::store_failure)?,
                None => None,
            };
            (user, profile)
        };
        let is_locked = profile
            .as_ref()
            .is_some_and(|profile| crate::login::locked(profile, now));
        let correct = !is_locked
            && crate::login::verify_slowly(
                profile
                    .as_ref()
                    .map(|profile| profile.password_hash.clone())
                    .unwrap_or_default(),
                password.clone(),
            )
            .await
            && profile.is_some();
        let mut tx = state.store.begin().await.map_err(crate::api::store_failure)?;
        if let (Some(user), false) = (&user, is_locked) {
            crate::login::record_sign_in(tx.as_mut(), &user.identity.identity_id, correct, now).await?;
        }
        // One answer for every refusal, so that neither a user name nor a password is confirmed.
        let outcome = match (&user, correct) {
            (Some(user), true) => {
                let devices: Vec<_> = tx
                    .mfa_devices_of(&user.identity.identity_id)
                    .await
                    .map_err(crate::api::store_failure)?
                    .into_iter()
                    .filter(|device| device.enabled_at.is_some())
                    .collect();
                let mut verified = false;
                let refused = if devices.is_empty() {
                    tx.require_mfa(&state.account_id)
                        .await
                        .map_err(crate::api::store_failure)?
                } else {
                    for device in devices {
                        if crate::iam::verify_mfa_code(state, tx.as_mut(), device, &code, now)
                            .await
                            .is_ok()
                        {
                            verified = true;
                            break;
                        }
                    }
                    !verified
                };
                if refused {
                    SignIn::Refused {
                        message: WRONG,
                        user_name: Some(name.clone()),
                    }
                } else {
                    SignIn::Signed {
                        principal_name: user.identity.name.clone(),
                        identity_id: user.identity.identity_id.clone(),
                        arn: user.identity.arn.clone(),
                        mfa: verified,
                    }
                }
            }
            _ => SignIn::Refused {
                message: WRONG,
                // A user name that does not exist may be a password typed in the wrong box.
                user_name: user.as_ref().map(|user| user.identity.name.clone()),
            },
        };
        let cookie = match &outcome {
            SignIn::Signed { identity_id, mfa, .. } => {
                let mfa_at = mfa.then(|| crate::clock::render(now));
                let ((key_id, _, token), _) =
                    crate::iam::mint_session(state, tx.as_mut(), identity_id, mfa_at, None, SESSION_SECONDS, now)
                        .await?;
                Some(format!("{key_id}.{token}"))
            }
            SignIn::Refused { .. } => None,
        };
        let (record, row) = login_record(state, visit, &outcome, if is_locked { Some("locked") } else { None });
        audit::append(tx.as_mut(), &record, row)
            .await
            .map_err(crate::api::store_failure)?;
        tx.commit().await.map_err(crate::api::store_failure)?;
        Ok::<_, ApiError>((outcome, cookie))
    }
    .await;
    match result {
        Ok((_, Some(cookie))) => {
            let mut response = see_other("/console/pipelines");
            // `__Host-` cookies are Secure, on `/`, for this host only: browsers keep them only
            // from HTTPS (or a loopback address).
            let value =
                format!("{COOKIE}={cookie}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Ok((SignIn::Refused { message, .. }, None)) => pages::sign_in(Some(message), StatusCode::UNAUTHORIZED),
        Ok(_) => pages::sign_in(Some("Sign-in failed."), StatusCode::UNAUTHORIZED),
        Err(error) => {
            tracing::warn!(error = %error.message, "console sign-in failed");
            pages::sign_in(
                Some("Sign-in is not possible right now."),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

/// CloudTrail's `ConsoleLogin` record (`AwsConsoleSignIn`, `signin.amazonaws.com`).
fn login_record(
    state: &AppState,
    visit: &Visit,
    outcome: &SignIn,
    note: Option<&str>,
) -> (Value, sluice_store::AuditRecord) {
    let attempt = crate::api::Attempt {
        unknown_event_name: Some("ConsoleLogin".into()),
        region: Some(state.region.clone()),
        ..Default::default()
    };
    let call = crate::api::call_record(state, &visit.context, &attempt);
    let (mut record, mut row) = audit::build(&call);
    let (identity, result, mfa, error) = match outcome {
        SignIn::Signed {
            principal_name,
            identity_id,
            arn,
            mfa,
        } => (
            json!({ "type": "IAMUser", "principalId": identity_id, "arn": arn,
                    "accountId": state.account_id, "userName": principal_name }),
            "Success",
            *mfa,
            None,
        ),
        SignIn::Refused { message, user_name } => (
            json!({ "type": "IAMUser", "accountId": state.account_id,
                    "userName": user_name.clone().unwrap_or_else(|| "HIDDEN_DUE_TO_SECURITY_REASONS".into()) }),
            "Failure",
            false,
            Some(*message),
        ),
    };
    row.username = identity["userName"].as_str().map(str::to_string);
    row.event_source = "signin.amazonaws.com".into();
    row.read_only = false;
    record["userIdentity"] = identity;
    record["eventSource"] = json!("signin.amazonaws.com");
    record["eventType"] = json!("AwsConsoleSignIn");
    record["readOnly"] = json!(false);
    record["requestParameters"] = Value::Null;
    record["responseElements"] = json!({ "ConsoleLogin": result });
    record["additionalEventData"] = json!({
        "LoginTo": "/console/pipelines",
        "MobileVersion": "No",
        "MFAUsed": if mfa { "Yes" } else { "No" },
    });
    if let Some(message) = error {
        record["errorMessage"] = json!(match note {
            Some("locked") => "Failed authentication: too many failed sign-ins, locked for five minutes",
            _ => message,
        });
    }
    (record, row)
}

async fn sign_out(state: &AppState, visit: &Visit) -> Response {
    // Only the session the cookie proves (its token checked) is ended, and the end is recorded.
    let ended = async {
        let mut tx = state.store.begin().await.ok()?;
        let principal = session_principal(tx.as_mut(), visit, crate::iam::real_now())
            .await
            .ok()?;
        tx.delete_access_key(&principal.access_key_id).await.ok()?;
        let attempt = crate::api::Attempt {
            unknown_event_name: Some("ConsoleSignOut".into()),
            region: Some(state.region.clone()),
            principal: Some(principal.clone()),
            ..Default::default()
        };
        let call = crate::api::call_record(state, &visit.context, &attempt);
        let (mut record, mut row) = audit::build(&call);
        record["eventSource"] = json!("signin.amazonaws.com");
        record["eventType"] = json!("AwsConsoleSignIn");
        record["sessionCredentialFromConsole"] = json!("true");
        row.event_source = "signin.amazonaws.com".into();
        audit::append(tx.as_mut(), &record, row).await.ok()?;
        tx.commit().await.ok()
    };
    if ended.await.is_none() {
        tracing::debug!("console sign-out without a valid session");
    }
    let mut response = see_other("/console/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("__Host-sluice-console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure"),
    );
    response
}
