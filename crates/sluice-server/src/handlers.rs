//! The operations. Each parses its input, checks constraints, authorizes against the pipeline it
//! touches, and reads or writes through the request's transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sluice_core::PipelineDefinition;
use sluice_core::validate;
use sluice_store::{NewPipeline, PipelineRecord, StoreError, StoredDefinition, Tag, Transaction};
use sluice_wire::shapes::{self, Field, PipelineDescription, PipelineIdName};
use sluice_wire::{ApiError, Operation, parse_body};

use crate::api::{AppState, Principal, authorize};
use crate::bootstrap::random_upper_alphanumeric;
use crate::clock::render;
use crate::runs;

const LIST_PAGE_SIZE: i64 = 100;
/// PollForTask's answer when there is no task.
pub const NO_TASK: &str = "{}";
const MAX_TAGS: usize = 10;

pub(crate) fn store_error(error: StoreError) -> ApiError {
    tracing::error!(%error, "store error");
    ApiError::internal()
}

pub(crate) fn crypto_error(error: anyhow::Error) -> ApiError {
    tracing::error!(error = %format!("{error:#}"), "encryption at rest failed");
    ApiError::internal()
}

/// The pipeline's data key, unwrapped.
pub(crate) async fn pipeline_data_key(
    state: &AppState,
    tx: &mut dyn Transaction,
    pipeline_id: &str,
) -> Result<sluice_crypto::envelope::KeyMaterial, ApiError> {
    let wrapped = tx.data_key(pipeline_id).await.map_err(store_error)?.ok_or_else(|| {
        tracing::error!(pipeline_id, "pipeline has no data key");
        ApiError::internal()
    })?;
    state
        .cipher
        .unwrap_data_key(pipeline_id, &wrapped)
        .map_err(crypto_error)
}

/// Decodes a stored definition version, decrypting it when sealed.
pub(crate) async fn read_definition(
    state: &AppState,
    tx: &mut dyn Transaction,
    pipeline_id: &str,
    version: i64,
    stored: &StoredDefinition,
) -> Result<PipelineDefinition, ApiError> {
    let json = match stored.format_version {
        sluice_store::DEFINITION_FORMAT_PLAINTEXT => stored.body.clone(),
        sluice_store::DEFINITION_FORMAT_SEALED => {
            let data_key = pipeline_data_key(state, tx, pipeline_id).await?;
            let context = crate::keys::definition_context(pipeline_id, version);
            state
                .cipher
                .open_with_data_key(&data_key, pipeline_id, &context, &stored.body)
                .map_err(crypto_error)?
        }
        other => {
            tracing::error!(
                pipeline_id,
                version,
                format_version = other,
                "unknown definition format"
            );
            return Err(ApiError::internal());
        }
    };
    sluice_store::decode_definition(&json).map_err(|error| {
        tracing::error!(pipeline_id, version, %error, "stored definition does not decode");
        ApiError::internal()
    })
}

pub(crate) fn json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|_| ApiError::internal())
}

/// Authorizes a call on one pipeline, with the pipeline's context keys for policies:
/// `datapipeline:PipelineCreator` (the creator's user id) and `datapipeline:Tag/<key>`.
pub(crate) async fn authorize_pipeline(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    pipeline_id: &str,
) -> Result<(), ApiError> {
    authorize_pipeline_with(tx, principal, operation, pipeline_id, Vec::new()).await
}

/// `authorize_pipeline` with more context keys (the tags a request sets).
pub(crate) async fn authorize_pipeline_with(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    pipeline_id: &str,
    mut extra: Vec<(String, Vec<String>)>,
) -> Result<(), ApiError> {
    let resource = pipeline_arn(principal, pipeline_id);
    if principal.identity.kind == "Root" {
        return authorize(principal, operation, &resource);
    }
    extra.extend(pipeline_context(tx, pipeline_id).await?);
    crate::authz::authorize_with(principal, operation, &resource, &extra)
}

/// Whether the caller may read the pipeline's `*` fields and parameters
/// (`sluice:RevealSecretFields` on the pipeline, with its tags and creator as context).
pub(crate) async fn reveals_secrets(
    tx: &mut dyn Transaction,
    principal: &Principal,
    pipeline_id: &str,
) -> Result<bool, ApiError> {
    let resource = pipeline_arn(principal, pipeline_id);
    let extra = if principal.identity.kind == "Root" {
        Vec::new()
    } else {
        pipeline_context(tx, pipeline_id).await?
    };
    Ok(crate::authz::permits(
        principal,
        crate::authz::Permission::RevealSecretFields,
        &resource,
        &extra,
    ))
}

/// `aws:RequestTag/<key>` and `aws:TagKeys` for the tags a request sets.
pub(crate) fn request_tags<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, Vec<String>)> {
    let mut keys = Vec::new();
    let mut extra = Vec::new();
    for (key, value) in tags {
        keys.push(key.to_string());
        extra.push((format!("aws:RequestTag/{key}"), vec![value.to_string()]));
    }
    extra.push(("aws:TagKeys".to_string(), keys));
    extra
}

/// A pipeline's context keys for policies.
pub(crate) async fn pipeline_context(
    tx: &mut dyn Transaction,
    pipeline_id: &str,
) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let mut extra: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(record) = tx.pipeline(pipeline_id).await.map_err(store_error)? {
        extra.push(("datapipeline:PipelineCreator".into(), vec![record.creator_identity_id]));
    }
    for tag in tx.tags(pipeline_id).await.map_err(store_error)? {
        extra.push((format!("datapipeline:Tag/{}", tag.key), vec![tag.value]));
    }
    Ok(extra)
}

pub(crate) fn pipeline_arn(principal: &Principal, pipeline_id: &str) -> String {
    format!(
        "arn:aws:datapipeline:local:{}:pipeline/{pipeline_id}",
        principal.identity.account_id
    )
}

pub async fn dispatch(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    match operation {
        Operation::CreatePipeline => create_pipeline(state, tx, principal, body).await,
        Operation::DeletePipeline => delete_pipeline(state, tx, principal, body).await,
        Operation::DescribePipelines => describe_pipelines(tx, principal, body).await,
        Operation::ListPipelines => list_pipelines(tx, principal, body).await,
        Operation::PutPipelineDefinition => put_definition(state, tx, principal, body, operation).await,
        Operation::ValidatePipelineDefinition => put_definition(state, tx, principal, body, operation).await,
        Operation::GetPipelineDefinition => get_definition(state, tx, principal, body).await,
        Operation::AddTags => add_tags(tx, principal, body).await,
        Operation::RemoveTags => remove_tags(tx, principal, body).await,
        Operation::LookupEvents => crate::audit::lookup::lookup_events(tx, principal, body).await,
        Operation::EvaluateExpression => evaluate_expression(state, tx, principal, body).await,
        Operation::DescribeObjects => describe_objects(state, tx, principal, body).await,
        Operation::QueryObjects => query_objects(state, tx, principal, body).await,
        Operation::ActivatePipeline => runs::activate_pipeline(state, tx, principal, body).await,
        Operation::DeactivatePipeline => runs::deactivate_pipeline(state, tx, principal, body).await,
        Operation::SetStatus => runs::set_status(state, tx, principal, body).await,
        Operation::PollForTask => runs::poll_for_task(state, tx, principal, body).await,
        Operation::ReportTaskProgress => runs::report_task_progress(state, tx, principal, body).await,
        Operation::SetTaskStatus => runs::set_task_status(state, tx, principal, body).await,
        Operation::ReportTaskRunnerHeartbeat => runs::report_task_runner_heartbeat(principal, body).await,
        Operation::CreateUser => crate::iam::create_user(state, tx, principal, body).await,
        Operation::GetUser => crate::iam::get_user(tx, principal, body).await,
        Operation::ListUsers => crate::iam::list_users(tx, principal).await,
        Operation::DeleteUser => crate::iam::delete_user(tx, principal, body).await,
        Operation::CreateAccessKey => crate::iam::create_access_key(state, tx, principal, body).await,
        Operation::ListAccessKeys => crate::iam::list_access_keys(tx, principal, body).await,
        Operation::UpdateAccessKey | Operation::DeleteAccessKey => {
            crate::iam::change_access_key(tx, principal, operation, body).await
        }
        Operation::CreatePolicy => crate::iam::create_policy(state, tx, principal, body).await,
        Operation::GetPolicy => crate::iam::get_policy(tx, principal, body).await,
        Operation::ListPolicies => crate::iam::list_policies(tx, principal, body).await,
        Operation::DeletePolicy => crate::iam::delete_policy(tx, principal, body).await,
        Operation::AttachUserPolicy | Operation::DetachUserPolicy => {
            crate::iam::attach_or_detach(tx, principal, operation, body).await
        }
        Operation::ListAttachedUserPolicies => crate::iam::list_attached_user_policies(tx, principal, body).await,
        Operation::CreateLoginProfile | Operation::UpdateLoginProfile => {
            crate::login::put_login_profile(state, tx, principal, operation, body).await
        }
        Operation::GetLoginProfile => crate::login::get_login_profile(tx, principal, body).await,
        Operation::DeleteLoginProfile => crate::login::delete_login_profile(tx, principal, body).await,
        Operation::ChangePassword => crate::login::change_password(tx, principal, body).await,
        Operation::CreateVirtualMFADevice => crate::iam::create_virtual_mfa_device(state, tx, principal, body).await,
        Operation::EnableMFADevice | Operation::ResyncMFADevice => {
            crate::iam::enable_or_resync_mfa_device(state, tx, principal, operation, body).await
        }
        Operation::DeactivateMFADevice => crate::iam::deactivate_mfa_device(tx, principal, body).await,
        Operation::DeleteVirtualMFADevice => crate::iam::delete_virtual_mfa_device(tx, principal, body).await,
        Operation::ListMFADevices => crate::iam::list_mfa_devices(tx, principal, body).await,
        Operation::GetSessionToken => crate::iam::get_session_token(state, tx, principal, body).await,
        Operation::CreateGroup => crate::iam::create_group(state, tx, principal, body).await,
        Operation::GetGroup => crate::iam::get_group(tx, principal, body).await,
        Operation::ListGroups => crate::iam::list_groups(tx, principal).await,
        Operation::DeleteGroup => crate::iam::delete_group(tx, principal, body).await,
        Operation::AddUserToGroup | Operation::RemoveUserFromGroup => {
            crate::iam::membership(tx, principal, operation, body).await
        }
        Operation::ListGroupsForUser => crate::iam::list_groups_for_user(tx, principal, body).await,
        Operation::AttachGroupPolicy | Operation::DetachGroupPolicy => {
            crate::iam::attach_or_detach_group(tx, principal, operation, body).await
        }
        Operation::ListAttachedGroupPolicies => crate::iam::list_attached_group_policies(tx, principal, body).await,
        Operation::SimulatePrincipalPolicy => crate::iam::simulate_principal_policy(tx, principal, body).await,
        Operation::GetCallerIdentity => crate::iam::get_caller_identity(principal),
        Operation::GetAccountSecuritySettings => crate::iam::get_account_security_settings(tx, principal).await,
        Operation::UpdateAccountSecuritySettings => {
            crate::iam::update_account_security_settings(state, tx, principal, body).await
        }
        Operation::CreateRole => crate::roles::create_role(state, tx, principal, body).await,
        Operation::GetRole => crate::roles::get_role(tx, principal, body).await,
        Operation::ListRoles => crate::roles::list_roles(tx, principal).await,
        Operation::DeleteRole => crate::roles::delete_role(tx, principal, body).await,
        Operation::UpdateAssumeRolePolicy => crate::roles::update_assume_role_policy(tx, principal, body).await,
        Operation::AttachRolePolicy | Operation::DetachRolePolicy => {
            crate::roles::attach_or_detach_role_policy(tx, principal, operation, body).await
        }
        Operation::ListAttachedRolePolicies => crate::roles::list_attached_role_policies(tx, principal, body).await,
        Operation::PutRoleSecret => crate::roles::put_role_secret(state, tx, principal, body).await,
        Operation::ListRoleSecrets => crate::roles::list_role_secrets(tx, principal, body).await,
        Operation::DeleteRoleSecret => crate::roles::delete_role_secret(tx, principal, body).await,
        Operation::ReportFindings => crate::findings::report_findings(state, tx, principal, body).await,
        Operation::ListFindings => crate::findings::list_findings(tx, principal, body).await,
        Operation::GetFindings => crate::findings::get_findings(state, tx, principal, body).await,
        Operation::StartClassificationJob => {
            crate::classification::start_classification_job(state, tx, principal, body).await
        }
        Operation::GetClassificationJob => {
            crate::classification::get_classification_job(state, tx, principal, body).await
        }
        Operation::ListClassificationJobs => {
            crate::classification::list_classification_jobs(state, tx, principal, body).await
        }
        Operation::UpdateClassificationJob => {
            crate::classification::update_classification_job(state, tx, principal, body).await
        }
        Operation::GetKeyStatus => crate::admin::get_key_status(state, tx, principal).await,
        Operation::RotateKeys => crate::admin::rotate_keys(state, principal).await,
        Operation::RewrapKeys => crate::admin::rewrap_keys(state, principal).await,
        Operation::VerifyAuditTrail => crate::admin::verify_audit_trail(state, principal, body).await,
    }
}

/// The pipeline, if it exists for the caller's account and is not deleted.
pub(crate) async fn live_pipeline(
    tx: &mut dyn Transaction,
    principal: &Principal,
    pipeline_id: &str,
) -> Result<PipelineRecord, ApiError> {
    let record = tx.pipeline(pipeline_id).await.map_err(store_error)?;
    match record {
        Some(record) if record.account_id == principal.identity.account_id => {
            if record.deleted_at.is_some() {
                Err(ApiError::pipeline_deleted(pipeline_id))
            } else {
                Ok(record)
            }
        }
        _ => Err(ApiError::pipeline_not_found(pipeline_id)),
    }
}

async fn create_pipeline(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::CreatePipelineInput = parse_body(body)?;
    input.check()?;
    crate::authz::authorize_with(
        principal,
        Operation::CreatePipeline,
        "*",
        &request_tags(input.tags.iter().map(|tag| (tag.key.as_str(), tag.value.as_str()))),
    )?;
    check_unique_tag_keys(&input.tags)?;
    refuse_credentials("the pipeline name", &input.name)?;
    refuse_credentials("the uniqueId", &input.unique_id)?;
    if let Some(description) = &input.description {
        refuse_credentials("the description", description)?;
    }
    refuse_credentials_in_tags(&input.tags)?;
    if tx
        .guard_rails_as_errors(&principal.identity.account_id)
        .await
        .map_err(store_error)?
    {
        let mut texts = vec![("the pipeline name".to_string(), input.name.clone())];
        if let Some(description) = &input.description {
            texts.push(("the description".into(), description.clone()));
        }
        texts.extend(tag_texts(&input.tags));
        refuse_personal_data(&texts)?;
    }
    if let Some(existing) = tx
        .find_live_pipeline(&principal.identity.identity_id, &input.name, &input.unique_id)
        .await
        .map_err(store_error)?
    {
        return json(&shapes::CreatePipelineOutput {
            pipeline_id: existing.pipeline_id,
        });
    }
    let live = tx
        .count_live_pipelines(&principal.identity.account_id)
        .await
        .map_err(store_error)?;
    if live >= state.max_pipelines {
        return Err(ApiError::invalid_request(format!(
            "the account has {live} pipelines, the limit (raise it with `sluice serve --max-pipelines`); delete one first"
        )));
    }
    let pipeline_id = format!(
        "df-{}",
        random_upper_alphanumeric(20).map_err(|_| ApiError::internal())?
    );
    let now = render(state.clock.now());
    tx.insert_pipeline(&NewPipeline {
        pipeline_id: pipeline_id.clone(),
        account_id: principal.identity.account_id.clone(),
        creator_identity_id: principal.identity.identity_id.clone(),
        name: input.name,
        unique_id: input.unique_id,
        description: input.description,
        state: "PENDING".into(),
        created_at: now,
    })
    .await
    .map_err(store_error)?;
    // Every pipeline gets its own data key: deleting the pipeline destroys it.
    let (_, wrapped) = state.cipher.new_data_key(&pipeline_id).map_err(crypto_error)?;
    tx.insert_data_key(&pipeline_id, &wrapped, &render(state.clock.now()))
        .await
        .map_err(store_error)?;
    let tags: Vec<Tag> = input
        .tags
        .into_iter()
        .map(|tag| Tag {
            key: tag.key,
            value: tag.value,
        })
        .collect();
    tx.replace_tags(&pipeline_id, &tags).await.map_err(store_error)?;
    json(&shapes::CreatePipelineOutput { pipeline_id })
}

/// Names, descriptions and tags are stored and logged unencrypted: a credential there is refused.
/// (Personal data there is flagged in the audit record instead; see `audit::guard_rail_findings`.)
fn refuse_credentials(what: &str, text: &str) -> Result<(), ApiError> {
    match sluice_core::guard::credential_in(text) {
        Some(kind) => Err(ApiError::invalid_request(format!(
            "{what} holds {kind}; names, descriptions and tags are stored and logged unencrypted, so it is refused"
        ))),
        None => Ok(()),
    }
}

fn refuse_credentials_in_tags(tags: &[shapes::Tag]) -> Result<(), ApiError> {
    // Tags by position: the message must not repeat the credential it refuses.
    for (index, tag) in tags.iter().enumerate() {
        refuse_credentials(&format!("the key of tag {}", index + 1), &tag.key)?;
        refuse_credentials(&format!("the value of tag {}", index + 1), &tag.value)?;
    }
    Ok(())
}

fn tag_texts(tags: &[shapes::Tag]) -> Vec<(String, String)> {
    tags.iter()
        .enumerate()
        .flat_map(|(index, tag)| {
            [
                (format!("the key of tag {}", index + 1), tag.key.clone()),
                (format!("the value of tag {}", index + 1), tag.value.clone()),
            ]
        })
        .collect()
}

/// The account treats personal data in names, descriptions and tags as an error; the message
/// names where it is and what it seems to be, never the text.
fn refuse_personal_data(texts: &[(String, String)]) -> Result<(), ApiError> {
    for (what, text) in texts {
        if let Some(kind) = sluice_core::guard::personal_data_in(text) {
            return Err(ApiError::invalid_request(format!(
                "{what} seems to hold {kind}; this account treats personal data in names, descriptions and tags as an error (GuardRailsAsErrors)"
            )));
        }
    }
    Ok(())
}

fn check_unique_tag_keys(tags: &[shapes::Tag]) -> Result<(), ApiError> {
    for (index, tag) in tags.iter().enumerate() {
        if tags[..index].iter().any(|earlier| earlier.key == tag.key) {
            return Err(ApiError::invalid_request(format!(
                "tag key '{}' appears more than once",
                tag.key
            )));
        }
    }
    Ok(())
}

async fn delete_pipeline(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::PipelineIdInput = parse_body(body)?;
    input.check()?;
    // A deleted pipeline is gone for DeletePipeline: the model lists only PipelineNotFound here.
    let record = live_pipeline(tx, principal, &input.pipeline_id)
        .await
        .map_err(|error| match error.kind {
            sluice_wire::ErrorKind::PipelineDeletedException => ApiError::pipeline_not_found(&input.pipeline_id),
            _ => error,
        })?;
    authorize_pipeline(tx, principal, Operation::DeletePipeline, &record.pipeline_id).await?;
    tx.delete_pipeline(&record.pipeline_id, &render(state.clock.now()))
        .await
        .map_err(store_error)?;
    Ok("{}".into())
}

async fn describe_pipelines(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: shapes::DescribePipelinesInput = parse_body(body)?;
    input.check()?;
    let mut descriptions = Vec::with_capacity(input.pipeline_ids.len());
    for pipeline_id in &input.pipeline_ids {
        let record = live_pipeline(tx, principal, pipeline_id).await?;
        authorize_pipeline(tx, principal, Operation::DescribePipelines, pipeline_id).await?;
        let tags = tx.tags(pipeline_id).await.map_err(store_error)?;
        let components = tx.component_runs(pipeline_id).await.map_err(store_error)?;
        let mut description = describe(&record, &tags);
        if let Some(health) = runs::pipeline_health(&components) {
            description.fields.push(Field {
                key: "@healthStatus".into(),
                string_value: Some(health.as_str().into()),
                ref_value: None,
            });
        }
        descriptions.push(description);
    }
    json(&shapes::DescribePipelinesOutput {
        pipeline_description_list: descriptions,
    })
}

fn describe(record: &PipelineRecord, tags: &[Tag]) -> PipelineDescription {
    let string = |key: &str, value: &str| Field {
        key: key.into(),
        string_value: Some(value.into()),
        ref_value: None,
    };
    let wire_tags: Vec<shapes::Tag> = tags
        .iter()
        .map(|tag| shapes::Tag {
            key: tag.key.clone(),
            value: tag.value.clone(),
        })
        .collect();
    let mut fields = vec![
        string("@pipelineState", &record.state),
        string("name", &record.name),
        string("@id", &record.pipeline_id),
        string("@sphere", "PIPELINE"),
        string("@creationTime", &record.created_at),
        string("@userId", &record.creator_identity_id),
        string("@accountId", &record.account_id),
        string("uniqueId", &record.unique_id),
        string("pipelineCreator", &record.creator_identity_id),
    ];
    if let Some(description) = &record.description {
        fields.push(string("description", description));
    }
    if record.latest_version > 0 {
        fields.push(string("@version", &record.latest_version.to_string()));
    }
    if !wire_tags.is_empty() {
        fields.push(string("*tags", &serde_json::to_string(&wire_tags).unwrap_or_default()));
    }
    PipelineDescription {
        pipeline_id: record.pipeline_id.clone(),
        name: record.name.clone(),
        fields,
        description: record.description.clone(),
        tags: wire_tags,
    }
}

fn encode_marker(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{seq}"))
}

fn decode_marker(marker: &str) -> Result<i64, ApiError> {
    if marker.is_empty() {
        return Ok(0);
    }
    URL_SAFE_NO_PAD
        .decode(marker)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix("v1:").and_then(|seq| seq.parse::<i64>().ok()))
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| ApiError::invalid_request("'marker' is not a marker this service returned"))
}

async fn list_pipelines(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: shapes::ListPipelinesInput = parse_body(body)?;
    input.check()?;
    // A caller allowed to list on `*` sees every pipeline its policies let it list; one whose
    // policies allow listing only some pipelines (by ARN, tag or creator) sees only those.
    let everywhere = authorize(principal, Operation::ListPipelines, "*");
    let after = decode_marker(input.marker.as_deref().unwrap_or(""))?;
    let mut page = tx
        .list_pipelines(&principal.identity.account_id, after, LIST_PAGE_SIZE + 1)
        .await
        .map_err(store_error)?;
    let has_more_results = page.len() as i64 > LIST_PAGE_SIZE;
    page.truncate(LIST_PAGE_SIZE as usize);
    let marker = if has_more_results {
        page.last().map(|last| encode_marker(last.seq))
    } else {
        None
    };
    if principal.identity.kind != "Root" {
        let mut visible = Vec::with_capacity(page.len());
        for summary in page {
            let extra = pipeline_context(tx, &summary.pipeline_id).await?;
            let resource = pipeline_arn(principal, &summary.pipeline_id);
            if crate::authz::allows(principal, Operation::ListPipelines, &resource, &extra) {
                visible.push(summary);
            }
        }
        // Nothing visible on this page: a caller with no listing permission at all is told
        // so; one that may list some pipelines gets the empty page and the marker to go on.
        if visible.is_empty() && !has_more_results {
            everywhere?;
        }
        page = visible;
    }
    json(&shapes::ListPipelinesOutput {
        pipeline_id_list: page
            .into_iter()
            .map(|summary| PipelineIdName {
                id: summary.pipeline_id,
                name: summary.name,
            })
            .collect(),
        marker,
        has_more_results,
    })
}

async fn put_definition(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
    operation: Operation,
) -> Result<String, ApiError> {
    let input: shapes::PutPipelineDefinitionInput = parse_body(body)?;
    input.check()?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, operation, &record.pipeline_id).await?;
    let mut definition = input.to_definition()?;
    let mut restored = false;
    if sluice_core::secrets::holds_mask(&definition) {
        // A definition read back masked keeps the secrets stored before in the places the mask holds.
        let previous = match tx
            .definition(&record.pipeline_id, record.latest_version)
            .await
            .map_err(store_error)?
        {
            Some(stored) if record.latest_version > 0 => {
                Some(read_definition(state, tx, &record.pipeline_id, record.latest_version, &stored).await?)
            }
            _ => None,
        };
        sluice_core::secrets::restore_in_place(&mut definition, previous.as_ref())
            .map_err(ApiError::invalid_request)?;
        restored = true;
    }
    let mut report = validate(&definition, &state.limits);
    if tx
        .guard_rails_as_errors(&principal.identity.account_id)
        .await
        .map_err(store_error)?
    {
        report.personal_data_as_errors();
    }
    if restored {
        // The caller sent masks: the messages must not quote what was put back.
        let secrets = sluice_core::secrets::secret_values(&definition);
        for message in report
            .errors
            .iter_mut()
            .chain(report.warnings.iter_mut())
            .flat_map(|entry| entry.messages.iter_mut())
            .chain(report.fatal.iter_mut())
        {
            for secret in &secrets {
                if message.contains(secret.as_str()) {
                    *message = message.replace(secret.as_str(), sluice_core::expression::MASK);
                }
            }
        }
    }
    if operation == Operation::PutPipelineDefinition {
        if report.has_fatal_errors() {
            return Err(ApiError::invalid_request(format!(
                "Pipeline definition has errors: Could not save the pipeline definition due to FATAL errors: {} Please call Validate to validate your pipeline",
                report.fatal.join(" ")
            )));
        }
        // A FINISHED pipeline still takes a definition: extending its schedule and activating it
        // again is how it runs again (reference §g.3).
        let version = record.latest_version + 1;
        store_definition(state, tx, &record.pipeline_id, version, &definition, report.errored()).await?;
    }
    json(&shapes::ValidationOutput::from_report(&report))
}

/// Seals a definition with the pipeline's data key and stores it as `version` (the latest plus
/// one).
pub(crate) async fn store_definition(
    state: &AppState,
    tx: &mut dyn Transaction,
    pipeline_id: &str,
    version: i64,
    definition: &PipelineDefinition,
    errored: bool,
) -> Result<(), ApiError> {
    let data_key = pipeline_data_key(state, tx, pipeline_id).await?;
    let body = state
        .cipher
        .seal_with_data_key(
            &data_key,
            pipeline_id,
            &crate::keys::definition_context(pipeline_id, version),
            &sluice_store::encode_definition(definition),
        )
        .map_err(crypto_error)?;
    let stored = StoredDefinition {
        format_version: sluice_store::DEFINITION_FORMAT_SEALED,
        body,
        errored,
    };
    tx.put_definition(pipeline_id, version, &stored, &render(state.clock.now()))
        .await
        .map_err(store_error)
}

async fn get_definition(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::GetPipelineDefinitionInput = parse_body(body)?;
    input.check()?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::GetPipelineDefinition, &record.pipeline_id).await?;
    let version = match input.version.as_deref() {
        None | Some("") | Some("latest") => Some(record.latest_version),
        Some("active") => record.active_version,
        Some(other) => match other.parse::<i64>() {
            Ok(number) if number >= 1 && number <= record.latest_version => Some(number),
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "'version' must be 'latest', 'active' or a version number from 1 to {}",
                    record.latest_version
                )));
            }
        },
    };
    // A pipeline never defined (or never activated, for 'active') has an empty definition.
    let definition = match version.filter(|version| *version > 0) {
        Some(version) => match tx.definition(&record.pipeline_id, version).await.map_err(store_error)? {
            Some(stored) => Some(read_definition(state, tx, &record.pipeline_id, version, &stored).await?),
            None => None,
        },
        None => None,
    }
    .unwrap_or_default();
    if !reveals_secrets(tx, principal, &record.pipeline_id).await? {
        return json(&shapes::GetPipelineDefinitionOutput::from_definition(
            &sluice_core::secrets::masked(&definition),
        ));
    }
    json(&shapes::GetPipelineDefinitionOutput::from_definition(&definition))
}

/// The definition in force: the active version, or the latest before activation. `None` when
/// the pipeline has none yet.
pub(crate) async fn definition_in_force(
    state: &AppState,
    tx: &mut dyn Transaction,
    record: &PipelineRecord,
) -> Result<Option<(i64, std::sync::Arc<PipelineDefinition>)>, ApiError> {
    // The active version is compiled and cached by the scheduler: no second read and decrypt.
    if let Some((version, (definition, _))) = crate::scheduler::load_compiled(state, tx, record).await? {
        return Ok(Some((version, definition)));
    }
    let version = record.latest_version;
    match tx.definition(&record.pipeline_id, version).await.map_err(store_error)? {
        Some(stored) if version > 0 => Ok(Some((
            version,
            std::sync::Arc::new(read_definition(state, tx, &record.pipeline_id, version, &stored).await?),
        ))),
        _ => Ok(None),
    }
}

/// Describes components of the definition in force, as the service shows them: the stored
/// fields, the implicit `parent` → Default, and the system fields. Instances and attempts exist
/// once the scheduler creates them; ids of objects that do not exist are left out.
async fn describe_objects(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::DescribeObjectsInput = parse_body(body)?;
    input.check()?;
    if input.marker.as_deref().is_some_and(|marker| !marker.is_empty()) {
        return Err(ApiError::invalid_request(
            "'marker' is not a marker this service returned",
        ));
    }
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::DescribeObjects, &record.pipeline_id).await?;
    let mut objects = Vec::new();
    let run = crate::scheduler::load_run(state, tx, &record).await?;
    let reports = match &run {
        Some(_) if input.object_ids.iter().any(|id| id.contains("_Attempt=")) => {
            runs::reports(state, tx, &record.pipeline_id).await?
        }
        _ => Default::default(),
    };
    // Whoever may describe objects sees expressions evaluated, but not the secrets in them
    // unless allowed to (sluice:RevealSecretFields).
    let reveal = reveals_secrets(tx, principal, &record.pipeline_id).await?;
    let evaluation = match (input.evaluate_expressions, reveal) {
        (false, _) => runs::Evaluation::None,
        (true, false) => runs::Evaluation::Masked,
        (true, true) => runs::Evaluation::Revealed,
    };
    if let Some((version, definition)) = definition_in_force(state, tx, &record).await? {
        let has_default = definition.object("Default").is_some();
        for id in &input.object_ids {
            if let Some(run) = &run {
                if let Some(instance) = run.state.instance(id) {
                    objects.push(runs::instance_object(run, &record.pipeline_id, instance, evaluation));
                    continue;
                }
                if let Some(attempt) = run.state.attempt(id)
                    && let Some(object) = runs::attempt_object(run, &record.pipeline_id, attempt, evaluation, &reports)
                {
                    objects.push(object);
                    continue;
                }
            }
            let Some(object) = definition.object(id) else { continue };
            let scope = sluice_core::expression::ComponentScope::new(&definition, &record.pipeline_id, id)
                .map(|scope| if reveal { scope } else { scope.masking_secrets() });
            let mut fields: Vec<shapes::Field> = object
                .fields
                .iter()
                .map(|field| {
                    let mut wire = shapes::wire_field(field);
                    if input.evaluate_expressions
                        && let (Some(text), Some(scope)) = (wire.string_value.as_deref(), scope.as_ref())
                        && text.contains("#{")
                        && let Ok(parts) = sluice_core::expression::evaluate_template(text, scope)
                    {
                        wire.string_value = Some(parts.join(","));
                    }
                    wire
                })
                .collect();
            let string = |key: &str, value: String| shapes::Field {
                key: key.into(),
                string_value: Some(value),
                ref_value: None,
            };
            if object.first("parent").is_none() && object.id != "Default" && has_default {
                fields.push(shapes::Field {
                    key: "parent".into(),
                    string_value: None,
                    ref_value: Some("Default".into()),
                });
            }
            fields.push(string("@sphere", "COMPONENT".into()));
            fields.push(string("@version", version.to_string()));
            fields.push(string("@pipelineId", record.pipeline_id.clone()));
            fields.extend(runs::component_runtime_fields(run.as_ref(), &object.id));
            objects.push(shapes::PipelineObject {
                id: object.id.clone(),
                name: object.name.clone(),
                fields,
            });
        }
    }
    if !reveal {
        for field in objects.iter_mut().flat_map(|object| object.fields.iter_mut()) {
            if sluice_core::secrets::is_secret_key(&field.key) && field.string_value.is_some() {
                field.string_value = Some(sluice_core::expression::MASK.to_string());
            }
        }
    }
    json(&shapes::DescribeObjectsOutput {
        pipeline_objects: objects,
        has_more_results: false,
    })
}

/// Whether an object's field values satisfy one selector (case-sensitive, as stored; LE, GE and
/// BETWEEN compare as text, which orders `YYYY-MM-DDTHH:MM:SS` datetimes correctly).
fn selector_matches(object: &sluice_core::PipelineObject, selector: &shapes::Selector) -> Result<bool, ApiError> {
    let Some(field_name) = selector.field_name.as_deref() else {
        return Ok(true);
    };
    let Some(operator) = &selector.operator else {
        return Ok(true);
    };
    let values: Vec<&sluice_core::FieldValue> = match field_name {
        "@id" | "id" => return text_matches(operator, &object.id),
        "name" => return text_matches(operator, &object.name),
        _ => object.values(field_name).collect(),
    };
    let operator_type = operator.operator_type.as_deref().unwrap_or("EQ");
    for value in values {
        let matched = match (operator_type, value) {
            ("REF_EQ", sluice_core::FieldValue::Ref(target)) => operator.values.iter().any(|wanted| wanted == target),
            ("REF_EQ", _) => false,
            (_, sluice_core::FieldValue::String(text)) => text_matches(operator, text)?,
            (_, sluice_core::FieldValue::Ref(_)) => false,
        };
        if matched {
            return Ok(true);
        }
    }
    Ok(false)
}

fn text_matches(operator: &shapes::Operator, text: &str) -> Result<bool, ApiError> {
    let first = || {
        operator
            .values
            .first()
            .map(String::as_str)
            .ok_or_else(|| ApiError::invalid_request("a selector's operator needs a value"))
    };
    Ok(match operator.operator_type.as_deref().unwrap_or("EQ") {
        "EQ" => operator.values.iter().any(|wanted| wanted == text),
        "REF_EQ" => false,
        "LE" => text <= first()?,
        "GE" => text >= first()?,
        "BETWEEN" => match operator.values.as_slice() {
            [low, high] => text >= low.as_str() && text <= high.as_str(),
            _ => return Err(ApiError::invalid_request("BETWEEN takes exactly two values")),
        },
        other => {
            return Err(ApiError::invalid_request(format!(
                "operator type '{other}' is not one of EQ, REF_EQ, LE, GE, BETWEEN"
            )));
        }
    })
}

/// Finds object ids by selectors. Components come from the definition in force; instances and
/// attempts appear once the scheduler creates them, so those spheres answer an empty list.
async fn query_objects(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::QueryObjectsInput = parse_body(body)?;
    input.check()?;
    let sphere = input.sphere.to_ascii_uppercase();
    if !matches!(sphere.as_str(), "COMPONENT" | "INSTANCE" | "ATTEMPT") {
        return Err(ApiError::invalid_request(format!(
            "'sphere' must be COMPONENT, INSTANCE or ATTEMPT, not '{}'",
            input.sphere
        )));
    }
    let limit = input.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_request("'limit' must be between 1 and 1000"));
    }
    let start = match input.marker.as_deref() {
        None | Some("") => 0,
        Some(marker) => URL_SAFE_NO_PAD
            .decode(marker)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.strip_prefix("q1:").and_then(|offset| offset.parse::<usize>().ok()))
            .ok_or_else(|| ApiError::invalid_request("'marker' is not a marker this service returned"))?,
    };
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::QueryObjects, &record.pipeline_id).await?;
    let selectors = input.query.map(|query| query.selectors).unwrap_or_default();
    // Selecting on a secret field would tell its value one guess at a time.
    if let Some(secret) = selectors.iter().find_map(|selector| {
        selector
            .field_name
            .as_deref()
            .filter(|name| sluice_core::secrets::is_secret_key(name))
    }) && !reveals_secrets(tx, principal, &record.pipeline_id).await?
    {
        return Err(ApiError::new(
            sluice_wire::ErrorKind::AccessDeniedException,
            format!(
                "User: {} is not authorized to perform: {} on resource: {} (selecting on the secret field '{secret}')",
                principal.identity.arn,
                crate::authz::Permission::RevealSecretFields.action(),
                pipeline_arn(principal, &record.pipeline_id)
            ),
        ));
    }
    let mut ids = Vec::new();
    if sphere != "COMPONENT" {
        if let Some(run) = crate::scheduler::load_run(state, tx, &record).await? {
            ids = runs::query(&run, &sphere, &selectors)?;
        } else {
            // Nothing ran yet; the selectors are still checked.
            runs::query_nothing(&selectors)?;
        }
    } else if let Some((_, definition)) = definition_in_force(state, tx, &record).await? {
        for object in &definition.objects {
            let mut all = true;
            for selector in &selectors {
                if !selector_matches(object, selector)? {
                    all = false;
                    break;
                }
            }
            if all {
                ids.push(object.id.clone());
            }
        }
    }
    let page: Vec<String> = ids.iter().skip(start).take(limit as usize).cloned().collect();
    let next = start + page.len();
    let has_more_results = next < ids.len();
    json(&shapes::QueryObjectsOutput {
        ids: page,
        marker: has_more_results.then(|| URL_SAFE_NO_PAD.encode(format!("q1:{next}"))),
        has_more_results,
    })
}

/// Evaluates an expression in the context of a component of the pipeline's active definition
/// (the latest one before activation). `*` parameters and fields read as a mask: only the task
/// that needs a secret gets it, not whoever can evaluate expressions.
async fn evaluate_expression(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: shapes::EvaluateExpressionInput = parse_body(body)?;
    input.check()?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::EvaluateExpression, &record.pipeline_id).await?;
    let Some((_, definition)) = definition_in_force(state, tx, &record).await? else {
        return Err(ApiError::invalid_request(format!(
            "pipeline {} has no definition yet",
            record.pipeline_id
        )));
    };
    let run = crate::scheduler::load_run(state, tx, &record).await?;
    let runtime_scope = run.as_ref().and_then(|run| {
        let (instance, attempt) = match run.state.instance(&input.object_id) {
            Some(instance) => (instance, None),
            None => {
                let attempt = run.state.attempt(&input.object_id)?;
                (run.state.instance(&attempt.instance)?, Some(attempt))
            }
        };
        runs::instance_scope(&run.definition, &record.pipeline_id, instance, attempt)
    });
    let scope = runtime_scope
        .or_else(|| sluice_core::expression::ComponentScope::new(&definition, &record.pipeline_id, &input.object_id))
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "object '{}' is not in the definition of {}",
                input.object_id, record.pipeline_id
            ))
        })?;
    let scope = if reveals_secrets(tx, principal, &record.pipeline_id).await? {
        scope
    } else {
        scope.masking_secrets()
    };
    let parts = sluice_core::expression::evaluate_template(&input.expression, &scope).map_err(|error| {
        ApiError::invalid_request(format!(
            "the expression cannot be evaluated: {} at position {}",
            error.message, error.position
        ))
    })?;
    json(&shapes::EvaluateExpressionOutput {
        evaluated_expression: parts.join(","),
    })
}

async fn add_tags(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: shapes::AddTagsInput = parse_body(body)?;
    input.check()?;
    check_unique_tag_keys(&input.tags)?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline_with(
        tx,
        principal,
        Operation::AddTags,
        &record.pipeline_id,
        request_tags(input.tags.iter().map(|tag| (tag.key.as_str(), tag.value.as_str()))),
    )
    .await?;
    if tx
        .guard_rails_as_errors(&principal.identity.account_id)
        .await
        .map_err(store_error)?
    {
        refuse_personal_data(&tag_texts(&input.tags))?;
    }
    let mut tags = tx.tags(&record.pipeline_id).await.map_err(store_error)?;
    for tag in input.tags {
        match tags.iter_mut().find(|existing| existing.key == tag.key) {
            Some(existing) => existing.value = tag.value,
            None => tags.push(Tag {
                key: tag.key,
                value: tag.value,
            }),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_request(format!(
            "a pipeline has at most {MAX_TAGS} tags; this would give it {}",
            tags.len()
        )));
    }
    tx.replace_tags(&record.pipeline_id, &tags).await.map_err(store_error)?;
    Ok("{}".into())
}

async fn remove_tags(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: shapes::RemoveTagsInput = parse_body(body)?;
    input.check()?;
    let record = live_pipeline(tx, principal, &input.pipeline_id).await?;
    authorize_pipeline(tx, principal, Operation::RemoveTags, &record.pipeline_id).await?;
    let mut tags = tx.tags(&record.pipeline_id).await.map_err(store_error)?;
    tags.retain(|tag| !input.tag_keys.contains(&tag.key));
    tx.replace_tags(&record.pipeline_id, &tags).await.map_err(store_error)?;
    Ok("{}".into())
}
