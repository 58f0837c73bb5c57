//! The console's pages. Each reads through `super::call` (the API's operations as the signed-in
//! user, authorized and audited), so a page shows what the user's policies allow and a refusal
//! otherwise.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use serde_json::{Value, json};
use sluice_wire::{ApiError, ErrorKind, Operation};

use super::{Visit, call, see_other, signed_in_user};
use crate::api::AppState;

fn page(status: StatusCode, title: &str, user: Option<&str>, visit: Option<&Visit>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sluice" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header.top {
                    a.brand href="/console/pipelines" { "Sluice" }
                    @if let Some(user) = user {
                        nav aria-label="Sections" {
                            a href="/console/pipelines" { "Pipelines" }
                            a href="/console/findings" { "Findings" }
                            a href="/console/audit" { "Audit trail" }
                            a href="/console/users" { "Users" }
                        }
                        form.signout method="post" action="/console/signout" {
                            input type="hidden" name="csrf" value=(visit.map(Visit::csrf).unwrap_or_default());
                            span.who { (user) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    };
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

pub fn refused(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Refused",
        None,
        None,
        html! { h1 { "Not possible" } p.error role="alert" { (message) } p { a href="/console/pipelines" { "Back to the console" } } },
    )
}

pub fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        None,
        None,
        html! { h1 { "Not found" } p { "There is no such page. " a href="/console/pipelines" { "Pipelines" } } },
    )
}

pub fn sign_in(message: Option<&str>, status: StatusCode) -> Response {
    sign_in_page(message, None, status)
}

pub fn sign_in_page(message: Option<&str>, notice: Option<&str>, status: StatusCode) -> Response {
    page(
        status,
        "Sign in",
        None,
        None,
        html! {
            section.signin {
                h1 { "Sign in to Sluice" }
                @if let Some(message) = message { p.error role="alert" { (message) } }
                @if let Some(notice) = notice { p.notice role="status" { (notice) } }
                form method="post" action="/console/signin" {
                    label for="username" { "User name" }
                    input id="username" name="username" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                    label for="code" { "MFA code" span.hint { " (if your user has an MFA device)" } }
                    input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}";
                    button type="submit" { "Sign in" }
                }
                p.hint { "Console passwords are set with " code { "aws iam create-login-profile" } " or " code { "sluice iam set-password" } "." }
            }
        },
    )
}

/// What a failed call means for the page: sign in again, a refusal, or an error to show.
fn failure(visit: &Visit, user: Option<&str>, error: ApiError) -> Response {
    match error.kind {
        ErrorKind::ExpiredTokenException => see_other("/console/signin"),
        ErrorKind::AccessDeniedException => page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            user,
            Some(visit),
            html! { h1 { "Not allowed" } p.error role="alert" { "Your policies do not allow this: " (error.message) } },
        ),
        ErrorKind::InternalServiceError => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            user,
            Some(visit),
            html! { h1 { "Something went wrong" } p.error role="alert" { "The service could not answer; the operator's log has the detail." } },
        ),
        _ => page(
            StatusCode::BAD_REQUEST,
            "Not possible",
            user,
            Some(visit),
            html! { h1 { "Not possible" } p.error role="alert" { (error.message) } },
        ),
    }
}

/// A DescribePipelines/DescribeObjects field's value (`stringValue` or `refValue`).
fn field<'a>(fields: &'a Value, key: &str) -> Option<&'a str> {
    fields
        .as_array()?
        .iter()
        .find(|entry| entry["key"] == key)
        .and_then(|entry| entry["stringValue"].as_str().or_else(|| entry["refValue"].as_str()))
}

pub(crate) fn status_class(status: &str) -> &'static str {
    match status.to_ascii_uppercase().as_str() {
        "FINISHED" | "HEALTHY" | "SCHEDULED" => "ok",
        "FAILED" | "CASCADE_FAILED" | "ERROR" | "ERROR_VALIDATION" | "UNHEALTHY" => "bad",
        "CANCELED" | "SHUTTING_DOWN" | "PAUSED" | "INACTIVE" | "DEACTIVATING" => "muted",
        "RUNNING" | "ACTIVATING" | "PENDING" | "WAITING_ON_DEPENDENCIES" | "WAITING_FOR_RUNNER" => "busy",
        _ => "muted",
    }
}

pub async fn pipelines(state: &AppState, visit: &Visit) -> Response {
    let user = signed_in_user(state, visit).await;
    let listed = match call(state, visit, Operation::ListPipelines, json!({})).await {
        Ok(listed) => listed,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let mut ids: Vec<String> = listed["pipelineIdList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["id"].as_str().map(str::to_string))
        .collect();
    let mut marker = listed["marker"].as_str().map(str::to_string);
    while listed["hasMoreResults"] == true
        && let Some(next) = marker.take()
    {
        match call(state, visit, Operation::ListPipelines, json!({ "marker": next })).await {
            Ok(more) => {
                ids.extend(
                    more["pipelineIdList"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|entry| entry["id"].as_str().map(str::to_string)),
                );
                marker = more["marker"]
                    .as_str()
                    .map(str::to_string)
                    .filter(|_| more["hasMoreResults"] == true);
            }
            Err(error) => return failure(visit, user.as_deref(), error),
        }
    }
    let mut described = Vec::new();
    for chunk in ids.chunks(25) {
        match call(
            state,
            visit,
            Operation::DescribePipelines,
            json!({ "pipelineIds": chunk }),
        )
        .await
        {
            Ok(answer) => described.extend(
                answer["pipelineDescriptionList"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            ),
            Err(error) => return failure(visit, user.as_deref(), error),
        }
    }
    let search = visit.query("q").map(str::to_lowercase);
    let wanted_state = visit.query("state").map(str::to_uppercase);
    let shown: Vec<&Value> = described
        .iter()
        .filter(|pipeline| {
            let name = pipeline["name"].as_str().unwrap_or("").to_lowercase();
            let id = pipeline["pipelineId"].as_str().unwrap_or("").to_lowercase();
            let pipeline_state = field(&pipeline["fields"], "@pipelineState").unwrap_or("");
            search
                .as_ref()
                .is_none_or(|text| name.contains(text) || id.contains(text))
                && wanted_state.as_ref().is_none_or(|wanted| pipeline_state == wanted)
        })
        .collect();
    let states = [
        "PENDING",
        "SCHEDULED",
        "ACTIVATING",
        "DEACTIVATING",
        "INACTIVE",
        "FINISHED",
        "PAUSED",
    ];
    page(
        StatusCode::OK,
        "Pipelines",
        user.as_deref(),
        Some(visit),
        html! {
            h1 { "Pipelines" }

            form.filters method="get" action="/console/pipelines" role="search" {
                label for="q" { "Search" }
                input id="q" name="q" value=(visit.query("q").unwrap_or("")) placeholder="name or id";
                label for="state" { "State" }
                select id="state" name="state" {
                    option value="" { "any" }
                    @for name in states {
                        option value=(name) selected[wanted_state.as_deref() == Some(name)] { (name) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if described.is_empty() {
                p.empty { "No pipelines yet. Create one with " code { "aws datapipeline create-pipeline" } " or run " code { "sluice run" } "." }
            } @else if shown.is_empty() {
                p.empty { "No pipeline matches this filter. " a href="/console/pipelines" { "Show all" } }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Id" } th { "State" } th { "Health" } th { "Last run" } th { "Tags" } } }
                    tbody {
                        @for pipeline in &shown {
                            @let id = pipeline["pipelineId"].as_str().unwrap_or("");
                            @let pipeline_state = field(&pipeline["fields"], "@pipelineState").unwrap_or("-");
                            @let health = field(&pipeline["fields"], "@healthStatus").unwrap_or("-");
                            tr {
                                td { a href={ "/console/pipelines/" (id) } { (pipeline["name"].as_str().unwrap_or(id)) } }
                                td.mono { (id) }
                                td { span class={ "badge " (status_class(pipeline_state)) } { (pipeline_state) } }
                                td { span class={ "badge " (status_class(health)) } { (health) } }
                                td { (field(&pipeline["fields"], "@latestRunTime").unwrap_or("never")) }
                                td {
                                    @for tag in pipeline["tags"].as_array().into_iter().flatten() {
                                        span.tag { (tag["key"].as_str().unwrap_or("")) "=" (tag["value"].as_str().unwrap_or("")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The pipeline's instances (or attempts): ids by QueryObjects, then DescribeObjects.
/// The pipeline's definition, as GetPipelineDefinition gives it to the signed-in user.
async fn definition_of(state: &AppState, visit: &Visit, pipeline_id: &str) -> Result<Value, ApiError> {
    call(
        state,
        visit,
        Operation::GetPipelineDefinition,
        json!({ "pipelineId": pipeline_id }),
    )
    .await
}

async fn objects(state: &AppState, visit: &Visit, pipeline_id: &str, sphere: &str) -> Result<Vec<Value>, ApiError> {
    let mut ids = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut input = json!({ "pipelineId": pipeline_id, "sphere": sphere, "limit": 100 });
        if let Some(marker) = &marker {
            input["marker"] = json!(marker);
        }
        let answer = call(state, visit, Operation::QueryObjects, input).await?;
        ids.extend(
            answer["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|id| id.as_str().map(str::to_string)),
        );
        match answer["marker"].as_str() {
            Some(next) if answer["hasMoreResults"] == true && ids.len() < 2_000 => marker = Some(next.to_string()),
            _ => break,
        }
    }
    let mut described = Vec::new();
    for chunk in ids.chunks(100) {
        let answer = call(
            state,
            visit,
            Operation::DescribeObjects,
            json!({ "pipelineId": pipeline_id, "objectIds": chunk }),
        )
        .await?;
        described.extend(answer["pipelineObjects"].as_array().cloned().unwrap_or_default());
    }
    Ok(described)
}

pub async fn pipeline(state: &AppState, visit: &Visit, pipeline_id: &str) -> Response {
    let user = signed_in_user(state, visit).await;
    let described = match call(
        state,
        visit,
        Operation::DescribePipelines,
        json!({ "pipelineIds": [pipeline_id] }),
    )
    .await
    {
        Ok(answer) => answer["pipelineDescriptionList"][0].clone(),
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let definition = match definition_of(state, visit, pipeline_id).await {
        Ok(answer) => answer,
        Err(error) if error.kind == ErrorKind::InvalidRequestException => json!({ "pipelineObjects": [] }),
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let instances = match objects(state, visit, pipeline_id, "INSTANCE").await {
        Ok(instances) => instances,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let attempts = match objects(state, visit, pipeline_id, "ATTEMPT").await {
        Ok(attempts) => attempts,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let definition_objects = definition["pipelineObjects"].as_array().cloned().unwrap_or_default();
    let svg = super::graph::render(&definition_objects);
    let pipeline_state = field(&described["fields"], "@pipelineState").unwrap_or("-").to_string();
    let name = described["name"].as_str().unwrap_or(pipeline_id).to_string();
    // Instances by component, then by scheduled start.
    let mut by_component: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for instance in &instances {
        let component = field(&instance["fields"], "@componentParent")
            .unwrap_or("?")
            .to_string();
        by_component.entry(component).or_default().push(instance);
    }
    for list in by_component.values_mut() {
        list.sort_by_key(|instance| {
            field(&instance["fields"], "@scheduledStartTime")
                .unwrap_or("")
                .to_string()
        });
    }
    let mut attempts_of: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for attempt in &attempts {
        if let Some(instance) = field(&attempt["fields"], "@instanceParent") {
            attempts_of.entry(instance.to_string()).or_default().push(attempt);
        }
    }
    let timeline = super::graph::timeline(&by_component);
    let csrf = visit.csrf();
    page(
        StatusCode::OK,
        &name,
        user.as_deref(),
        Some(visit),
        html! {
            p.crumbs { a href="/console/pipelines" { "Pipelines" } " / " span.mono { (pipeline_id) } }
            h1 { (name) " " span class={ "badge " (status_class(&pipeline_state)) } { (pipeline_state) } }
            @if let Some(message) = visit.query("done") { p.notice role="status" { (message) } }
            form.actions method="post" action={ "/console/pipelines/" (pipeline_id) "/action" } {
                input type="hidden" name="csrf" value=(csrf);
                button name="action" value="activate" type="submit" { "Activate" }
                button name="action" value="deactivate" type="submit" { "Deactivate" }
                button name="action" value="PAUSE" type="submit" title="Pause every activity: no new attempts start" { "Pause" }
                button name="action" value="RESUME" type="submit" { "Resume" }
            }
            h2 { "Definition" }
            @if definition_objects.is_empty() {
                p.empty { "No definition yet: put one with " code { "aws datapipeline put-pipeline-definition" } "." }
            } @else {
                figure.graph aria-label="The pipeline's components and how they connect" { (svg) }
                p.legend {
                    span.key.activity { "activity" } span.key.datanode { "data node" } span.key.precondition { "precondition" }
                    span.key.schedule { "schedule" } span.key.resource { "resource" }
                    " · solid: input/output, dashed: dependsOn, dotted: schedule, precondition, runsOn"
                }
            }
            h2 { "Runs" }
            @if instances.is_empty() {
                p.empty { "No instances yet: the pipeline has not been activated, or its first period has not begun." }
            } @else {
                figure.timeline aria-label="Instances by scheduled period, coloured by status" { (timeline) }
                form method="post" action={ "/console/pipelines/" (pipeline_id) "/action" } {
                    input type="hidden" name="csrf" value=(csrf);
                    table.instances {
                        thead { tr { th { span.visually-hidden { "Select" } } th { "Component" } th { "Scheduled start" } th { "Status" } th { "Attempts" } th { "Attempts' logs and errors" } } }
                        tbody {
                            @for (component, list) in &by_component {
                                @for instance in list {
                                    @let id = instance["id"].as_str().unwrap_or("");
                                    @let status = field(&instance["fields"], "@status").unwrap_or("-");
                                    @let tries = attempts_of.get(id).map_or(0, Vec::len);
                                    tr id={ "instance-" (id) } {
                                        td { input type="checkbox" name="objectId" value=(id) aria-label={ "Select " (id) }; }
                                        td { (component) }
                                        td { (field(&instance["fields"], "@scheduledStartTime").unwrap_or("-")) }
                                        td { span class={ "badge status " (status_class(status)) } { (status) } }
                                        td { (tries) }
                                        td.error-text {
                                            @for attempt in attempts_of.get(id).into_iter().flatten() {
                                                @let attempt_id = attempt["id"].as_str().unwrap_or("");
                                                @let link = |stream: &str| format!("/console/pipelines/{pipeline_id}/log?{}", form_urlencoded::Serializer::new(String::new()).append_pair("attempt", attempt_id).append_pair("stream", stream).finish());
                                                div.attempt {
                                                    span.mono { (field(&attempt["fields"], "@status").unwrap_or("")) }
                                                    " " a href=(link("stdout")) { "stdout" } " " a href=(link("stderr")) { "stderr" }
                                                    @if let Some(message) = field(&attempt["fields"], "errorMessage") {
                                                        details {
                                                            summary { (field(&attempt["fields"], "errorId").unwrap_or("error")) }
                                                            pre { (message) }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.actions {
                        span { "Selected instances: " }
                        button name="action" value="RERUN" type="submit" { "Rerun" }
                        button name="action" value="TRY_CANCEL" type="submit" { "Cancel" }
                        button name="action" value="MARK_FINISHED" type="submit" { "Mark finished" }
                    }
                }
            }
        },
    )
}

/// The form to change one's own console password (required after an administrator set it with
/// `PasswordResetRequired`).
pub async fn password(state: &AppState, visit: &Visit, message: Option<&str>) -> Response {
    let Some(user) = signed_in_user(state, visit).await else {
        return see_other("/console/signin");
    };
    page(
        if message.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "Change password",
        Some(&user),
        Some(visit),
        html! {
            section.signin {
                h1 { "Change your password" }
                @if let Some(message) = message { p.error role="alert" { (message) } }
                form method="post" action="/console/password" {
                    input type="hidden" name="csrf" value=(visit.csrf());
                    label for="old" { "Current password" }
                    input id="old" name="old" type="password" autocomplete="current-password" required;
                    label for="new" { "New password" }
                    input id="new" name="new" type="password" autocomplete="new-password" required minlength="12";
                    label for="confirm" { "New password again" }
                    input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="12";
                    button type="submit" { "Change password" }
                }
                p.hint { "12 to 128 characters, three of: lower case, upper case, digits, symbols; not your user name." }
            }
        },
    )
}

pub async fn change_password(state: &AppState, visit: &Visit) -> Response {
    let (old, new, confirm) = (
        visit.form("old").unwrap_or(""),
        visit.form("new").unwrap_or(""),
        visit.form("confirm").unwrap_or(""),
    );
    if new != confirm {
        return password(state, visit, Some("The two new passwords differ.")).await;
    }
    match call(
        state,
        visit,
        Operation::ChangePassword,
        json!({ "OldPassword": old, "NewPassword": new }),
    )
    .await
    {
        // Changing a password ends every console session of the user, this one too.
        Ok(_) => see_other("/console/signin?changed=1"),
        Err(error) if error.kind == ErrorKind::ExpiredTokenException => see_other("/console/signin"),
        Err(error) => password(state, visit, Some(&error.message)).await,
    }
}

/// Bytes of a log shown at most (its end).
const LOG_TAIL: usize = 256 * 1024;

/// Where the server can read an attempt's log: the in-process runner's folder, then
/// `pipelineLogUri` (AWS's layout below it) when it is `s3://` or `file://` inside
/// `--local-data-root`. Only its last `LOG_TAIL` bytes are read, and whether there was more.
async fn read_log(state: &AppState, folder: &str, stream: &str, log_uri: Option<&str>) -> Option<(Vec<u8>, bool)> {
    async fn file_tail(path: &std::path::Path) -> Option<(Vec<u8>, bool)> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let mut file = tokio::fs::File::open(path).await.ok()?;
        let length = file.metadata().await.ok()?.len();
        let start = length.saturating_sub(LOG_TAIL as u64);
        file.seek(std::io::SeekFrom::Start(start)).await.ok()?;
        let mut bytes = Vec::with_capacity((length - start) as usize);
        file.take(LOG_TAIL as u64).read_to_end(&mut bytes).await.ok()?;
        Some((bytes, start > 0))
    }
    if let Some(root) = &state.runner_log_dir
        && let Some(found) = file_tail(&root.join(folder).join(stream)).await
    {
        return Some(found);
    }
    let uri = log_uri.filter(|uri| !uri.contains("#{"))?;
    let location = format!("{}/{folder}/{stream}", uri.trim_end_matches('/'));
    let settings = &state.scheduler.settings.checks;
    if let Some(path) = location.strip_prefix("file://") {
        let path = crate::checks::local_path(settings, path).ok()?;
        return file_tail(std::path::Path::new(&path)).await;
    }
    let (store, key) = crate::checks::s3_store(settings, &location).ok()?;
    let path = object_store::path::Path::from(key);
    let meta = object_store::ObjectStoreExt::head(&store, &path).await.ok()?;
    let options = object_store::GetOptions {
        range: (meta.size > LOG_TAIL as u64).then_some(object_store::GetRange::Suffix(LOG_TAIL as u64)),
        ..Default::default()
    };
    let got = store.get_opts(&path, options).await.ok()?;
    got.bytes()
        .await
        .ok()
        .map(|bytes| (bytes.to_vec(), meta.size > LOG_TAIL as u64))
}

/// The values of the pipeline's `*` fields and `*` parameters, to mask in what the console
/// shows from outside the service (logs); read only after the caller was allowed to see the
/// pipeline's objects.
async fn pipeline_secrets(state: &AppState, pipeline_id: &str) -> Vec<String> {
    let read = async {
        let mut tx = state.store.begin_read().await.ok()?;
        let record = tx.pipeline(pipeline_id).await.ok()??;
        let (_, definition) = crate::handlers::definition_in_force(state, tx.as_mut(), &record)
            .await
            .ok()??;
        Some(sluice_core::secrets::secret_values(&definition))
    };
    read.await.unwrap_or_default()
}

/// One attempt's stdout or stderr, masked again on the way out (the runner masked it first).
pub async fn attempt_log(state: &AppState, visit: &Visit, pipeline_id: &str) -> Response {
    let user = signed_in_user(state, visit).await;
    let (Some(attempt_id), Some(stream)) = (
        visit.query("attempt"),
        visit
            .query("stream")
            .filter(|stream| matches!(*stream, "stdout" | "stderr")),
    ) else {
        return not_found();
    };
    let described = match call(
        state,
        visit,
        Operation::DescribeObjects,
        json!({ "pipelineId": pipeline_id, "objectIds": [attempt_id] }),
    )
    .await
    {
        Ok(answer) => answer["pipelineObjects"][0].clone(),
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let (Some(component), Some(instance)) = (
        field(&described["fields"], "@componentParent"),
        field(&described["fields"], "@instanceParent"),
    ) else {
        return not_found();
    };
    // The runner masks a log when the attempt ends; a running attempt's file is not yet masked.
    let status = field(&described["fields"], "@status").unwrap_or("");
    let ended = matches!(
        status,
        "FINISHED" | "FAILED" | "CANCELED" | "TIMEDOUT" | "CASCADE_FAILED" | "SKIPPED" | "MARK_FINISHED"
    );
    let definition = match definition_of(state, visit, pipeline_id).await {
        Ok(answer) => answer,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let log_uri = definition["pipelineObjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|object| object["id"] == component || object["id"] == "Default")
        .filter_map(|object| field(&object["fields"], "pipelineLogUri"))
        .next()
        .map(str::to_string);
    let folder = sluice_core::layout::attempt_log_folder(pipeline_id, component, instance, attempt_id);
    let found = if ended {
        read_log(state, &folder, stream, log_uri.as_deref()).await
    } else {
        None
    };
    let secrets = if found.is_some() {
        pipeline_secrets(state, pipeline_id).await
    } else {
        Vec::new()
    };
    let text = found.map(|(mut bytes, truncated)| {
        // A tail starts mid-line: that line is dropped (half a secret would escape the masks).
        if truncated {
            let cut = bytes
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(bytes.len(), |at| at + 1);
            bytes.drain(..cut);
        }
        // Again here, whatever the runner did: the pipeline's secret values, then the detector.
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        for secret in secrets.iter().filter(|secret| secret.len() >= 4) {
            text = text.replace(secret.as_str(), "HIDDEN_DUE_TO_SECURITY_REASONS");
        }
        let mut bytes = text.into_bytes();
        if let Some(detector) = sluice_detect::managed() {
            for line in bytes.split_mut(|byte| *byte == b'\n') {
                sluice_detect::mask_line(detector, line, &[]);
            }
        }
        (truncated, String::from_utf8_lossy(&bytes).into_owned())
    });
    page(
        StatusCode::OK,
        &format!("{stream} of {attempt_id}"),
        user.as_deref(),
        Some(visit),
        html! {
            p.crumbs { a href="/console/pipelines" { "Pipelines" } " / " a href={ "/console/pipelines/" (pipeline_id) } { (pipeline_id) } " / " span.mono { (attempt_id) } }
            h1 { (stream) " of " span.mono { (attempt_id) } }
            @match &text {
                Some((_, text)) if text.is_empty() => p.empty { "The attempt wrote nothing to " (stream) "." },
                Some((truncated, text)) => {
                    @if *truncated { p.hint { "The last 256 KiB:" } }
                    pre.log { (text) }
                }
                None if !ended => p.empty {
                    "The attempt is " (status) ": its log is shown once it has ended (the runner masks its secrets then)."
                },
                None => p.empty {
                    "This server cannot read the attempt's " (stream) ": the runner keeps logs on its host ("
                    code { "sluice logs" } ") unless " code { "pipelineLogUri" } " names an s3:// location, or a file:// one inside the server's --local-data-root."
                },
            }
        },
    )
}

/// Activate, deactivate, and SetStatus on selected instances (rerun, cancel, mark finished).
pub async fn pipeline_action(state: &AppState, visit: &Visit, pipeline_id: &str) -> Response {
    let action = visit.form("action").unwrap_or("");
    let outcome = match action {
        "activate" => call(
            state,
            visit,
            Operation::ActivatePipeline,
            json!({ "pipelineId": pipeline_id }),
        )
        .await
        .map(|_| "Activated.".to_string()),
        "deactivate" => call(
            state,
            visit,
            Operation::DeactivatePipeline,
            json!({ "pipelineId": pipeline_id }),
        )
        .await
        .map(|_| "Deactivated.".to_string()),
        "PAUSE" | "RESUME" => match definition_of(state, visit, pipeline_id).await {
            Ok(definition) => {
                let activities: Vec<String> = definition["pipelineObjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|object| field(&object["fields"], "type").is_some_and(|kind| kind.ends_with("Activity")))
                    .filter_map(|object| object["id"].as_str().map(str::to_string))
                    .collect();
                if activities.is_empty() {
                    Err(ApiError::invalid_request(
                        "the pipeline has no activities to pause or resume",
                    ))
                } else {
                    call(
                        state,
                        visit,
                        Operation::SetStatus,
                        json!({ "pipelineId": pipeline_id, "objectIds": activities, "status": action }),
                    )
                    .await
                    .map(|_| format!("{} for {} activit(ies).", action.to_ascii_lowercase(), activities.len()))
                }
            }
            Err(error) => Err(error),
        },
        "RERUN" | "TRY_CANCEL" | "MARK_FINISHED" => {
            let ids = visit.form_all("objectId");
            if ids.is_empty() {
                Err(ApiError::invalid_request("select at least one instance first"))
            } else {
                call(
                    state,
                    visit,
                    Operation::SetStatus,
                    json!({ "pipelineId": pipeline_id, "objectIds": ids, "status": action }),
                )
                .await
                .map(|_| {
                    let done = match action {
                        "RERUN" => "rerun",
                        "TRY_CANCEL" => "cancel",
                        _ => "mark finished",
                    };
                    format!("{done} for {} instance(s).", ids.len())
                })
            }
        }
        _ => Err(ApiError::invalid_request("unknown action")),
    };
    match outcome {
        Ok(message) => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("done", &message)
                .finish();
            see_other(&format!("/console/pipelines/{pipeline_id}?{query}"))
        }
        Err(error) => {
            let user = signed_in_user(state, visit).await;
            failure(visit, user.as_deref(), error)
        }
    }
}

pub async fn audit(state: &AppState, visit: &Visit) -> Response {
    let user = signed_in_user(state, visit).await;
    let attribute = visit.query("attribute").unwrap_or("EventName");
    let mut input = json!({ "MaxResults": 50 });
    if let Some(value) = visit.query("value") {
        input["LookupAttributes"] = json!([{ "AttributeKey": attribute, "AttributeValue": value }]);
    }
    if let Some(token) = visit.query("next") {
        input["NextToken"] = json!(token);
    }
    let answer = match call(state, visit, Operation::LookupEvents, input).await {
        Ok(answer) => answer,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let events = answer["Events"].as_array().cloned().unwrap_or_default();
    let attributes = [
        "EventName",
        "Username",
        "ResourceName",
        "EventSource",
        "AccessKeyId",
        "ReadOnly",
    ];
    page(
        StatusCode::OK,
        "Audit trail",
        user.as_deref(),
        Some(visit),
        html! {
            h1 { "Audit trail" }
            form.filters method="get" action="/console/audit" role="search" {
                label for="attribute" { "Where" }
                select id="attribute" name="attribute" {
                    @for name in attributes { option value=(name) selected[attribute == name] { (name) } }
                }
                label for="value" { "is" }
                input id="value" name="value" value=(visit.query("value").unwrap_or(""));
                button type="submit" { "Filter" }
            }
            @if events.is_empty() {
                p.empty { "No records match." }
            } @else {
                table.audit {
                    thead { tr { th { "Time" } th { "Event" } th { "User" } th { "Source" } th { "Outcome" } th { "Record" } } }
                    tbody {
                        @for event in &events {
                            @let record: Value = event["CloudTrailEvent"].as_str().and_then(|text| serde_json::from_str(text).ok()).unwrap_or(Value::Null);
                            tr {
                                td { (record["eventTime"].as_str().unwrap_or("")) }
                                td { (event["EventName"].as_str().unwrap_or("")) }
                                td { (event["Username"].as_str().unwrap_or("-")) }
                                td { (record["sourceIPAddress"].as_str().unwrap_or("-")) }
                                td {
                                    @if let Some(code) = record["errorCode"].as_str() { span.badge.bad { (code) } }
                                    @else if let Some(login) = record["responseElements"]["ConsoleLogin"].as_str() { span class={ "badge " (if login == "Success" { "ok" } else { "bad" }) } { (login) } }
                                    @else { span.badge.ok { "ok" } }
                                }
                                td { details { summary { "JSON" } pre { (serde_json::to_string_pretty(&record).unwrap_or_default()) } } }
                            }
                        }
                    }
                }
                @if let Some(next) = answer["NextToken"].as_str() {
                    @let query = form_urlencoded::Serializer::new(String::new())
                        .append_pair("attribute", attribute)
                        .append_pair("value", visit.query("value").unwrap_or(""))
                        .append_pair("next", next)
                        .finish();
                    p { a href={ "/console/audit?" (query) } { "Older records" } }
                }
            }
        },
    )
}

pub async fn findings(state: &AppState, visit: &Visit) -> Response {
    let user = signed_in_user(state, visit).await;
    let listed = match call(state, visit, Operation::ListFindings, json!({})).await {
        Ok(answer) => answer,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let ids: Vec<String> = listed["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|finding| finding["findingId"].as_str().map(str::to_string))
        .collect();
    let mut details = Vec::new();
    for chunk in ids.chunks(50) {
        match call(state, visit, Operation::GetFindings, json!({ "findingIds": chunk })).await {
            Ok(answer) => details.extend(answer["findings"].as_array().cloned().unwrap_or_default()),
            Err(error) => return failure(visit, user.as_deref(), error),
        }
    }
    page(
        StatusCode::OK,
        "Findings",
        user.as_deref(),
        Some(visit),
        html! {
            h1 { "Sensitive-data findings" }
            @if details.is_empty() {
                p.empty { "No findings: no run or classification job has found sensitive data in what you may see." }
            } @else {
                table {
                    thead { tr { th { "Found" } th { "Severity" } th { "Type" } th { "Object" } th { "Pipeline" } th { "What, where" } } }
                    tbody {
                        @for finding in &details {
                            @let severity = finding["severity"]["description"].as_str().unwrap_or("-");
                            tr {
                                td { (finding["createdAt"].as_str().unwrap_or("")) }
                                td { span class={ "badge " (if severity == "High" { "bad" } else { "busy" }) } { (severity) } }
                                td { (finding["type"].as_str().unwrap_or("")) }
                                td.mono { (finding["resourcesAffected"]["object"]["path"].as_str().unwrap_or("")) }
                                td { a href={ "/console/pipelines/" (finding["sluicePipeline"]["pipelineId"].as_str().unwrap_or("")) } { (finding["sluicePipeline"]["pipelineId"].as_str().unwrap_or("")) } }
                                td {
                                    ul.plain {
                                        @for group in finding["classificationDetails"]["result"]["sensitiveData"].as_array().into_iter().flatten() {
                                            @for detection in group["detections"].as_array().into_iter().flatten() {
                                                li {
                                                    (detection["type"].as_str().unwrap_or("")) " ×" (detection["count"])
                                                    @for sample in detection["sluiceSamples"].as_array().into_iter().flatten() {
                                                        " " code { (sample.as_str().unwrap_or("")) }
                                                    }
                                                    @let located = &detection["occurrences"];
                                                    @for (kind, places) in located.as_object().into_iter().flatten() {
                                                        @if let Some(places) = places.as_array() {
                                                            @if !places.is_empty() { " — " (kind) ": " (places.iter().take(5).map(Value::to_string).collect::<Vec<_>>().join(", ")) }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub async fn users(state: &AppState, visit: &Visit) -> Response {
    let user = signed_in_user(state, visit).await;
    let listed = match call(state, visit, Operation::ListUsers, json!({})).await {
        Ok(answer) => answer,
        Err(error) => return failure(visit, user.as_deref(), error),
    };
    let mut rows = Vec::new();
    for entry in listed["Users"].as_array().into_iter().flatten() {
        let name = entry["UserName"].as_str().unwrap_or("").to_string();
        let devices = call(state, visit, Operation::ListMFADevices, json!({ "UserName": name }))
            .await
            .map(|answer| answer["MFADevices"].as_array().map_or(0, Vec::len));
        let keys = call(state, visit, Operation::ListAccessKeys, json!({ "UserName": name }))
            .await
            .map(|answer| {
                answer["AccessKeyMetadata"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|key| {
                        format!(
                            "{} ({})",
                            key["AccessKeyId"].as_str().unwrap_or(""),
                            key["Status"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
            });
        rows.push((
            name,
            entry["CreateDate"].as_str().unwrap_or("").to_string(),
            devices,
            keys,
        ));
    }
    page(
        StatusCode::OK,
        "Users",
        user.as_deref(),
        Some(visit),
        html! {
            h1 { "Users" }
            @if rows.is_empty() {
                p.empty { "No users yet: create them with " code { "sluice iam create-user" } "." }
            } @else {
                table {
                    thead { tr { th { "User" } th { "Created" } th { "MFA" } th { "Access keys" } } }
                    tbody {
                        @for (name, created, devices, keys) in &rows {
                            tr {
                                td { (name) }
                                td { (created) }
                                td {
                                    @match devices {
                                        Ok(0) => span.badge.bad { "none" },
                                        Ok(count) => span.badge.ok { (count) " device(s)" },
                                        Err(_) => span.badge.muted { "not allowed to see" },
                                    }
                                }
                                td.mono {
                                    @match keys {
                                        Ok(keys) if keys.is_empty() => "none",
                                        Ok(keys) => (keys.join(", ")),
                                        Err(_) => "not allowed to see",
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_escape_what_users_typed() {
        let response = refused(StatusCode::FORBIDDEN, "<script>alert(1)</script>");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{text}");
        assert!(!text.contains("<script>"));
    }
}
