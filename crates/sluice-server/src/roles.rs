//! Roles: named sets of policies a pipeline's tasks act with (`resourceRole`) and the service acts
//! with for it (`role`), each with a trust policy saying which pipelines may use it — by id
//! (`aws:SourceArn`), tag (`datapipeline:Tag/<key>`) or creator (`datapipeline:PipelineCreator`).
//!
//! - The identity API's role operations by IAM's names (CreateRole, GetRole, ListRoles,
//!   DeleteRole, UpdateAssumeRolePolicy, AttachRolePolicy, DetachRolePolicy,
//!   ListAttachedRolePolicies), so `aws iam create-role` works.
//! - ActivatePipeline refuses a definition naming a role that does not exist, does not trust the
//!   pipeline, or that the caller may not pass (`iam:PassRole`, as on AWS).
//! - PollForTask hands each attempt temporary credentials of its `resourceRole`, bound to the
//!   attempt: they stop working when it ends (`api.rs` checks the attempt at every call).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_core::PipelineDefinition;
use sluice_policy::{Decision, RequestContext};
use sluice_store::{IdentityRecord, RoleRecord, Transaction};
use sluice_wire::iam::{self, Role};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal};
use crate::authz::{self, authorize};
use crate::bootstrap::random_upper_alphanumeric;
use crate::clock::render;
use crate::handlers::{json, store_error};
use crate::iam::iso;

/// The roles every account starts with, as AWS Data Pipeline's console creates them, so AWS's
/// definitions (which name them) activate unchanged. They trust every pipeline of the account
/// and hold no policy: a task gets credentials that may do nothing until a policy is attached.
pub const DEFAULT_ROLES: [&str; 2] = ["DataPipelineDefaultRole", "DataPipelineDefaultResourceRole"];

const DEFAULT_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["datapipeline.amazonaws.com","elasticmapreduce.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;

/// The services a trust policy may name as the principal: the pipeline service and what AWS's
/// default roles name for the resources it starts.
const TRUSTED_SERVICES: [&str; 3] = [
    "datapipeline.amazonaws.com",
    "elasticmapreduce.amazonaws.com",
    "ec2.amazonaws.com",
];

/// The fields of a definition that name roles.
pub const ROLE_FIELDS: [&str; 2] = ["role", "resourceRole"];

const MAX_ATTACHED_POLICIES: usize = 20;
const DEFAULT_SESSION_SECONDS: i64 = 3_600;
const MAX_ROLE_SECRETS: usize = 50;

fn role_arn(account_id: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:role{path}{name}")
}

fn malformed(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::MalformedPolicyDocument, message)
}

fn no_such_role(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NoSuchEntity,
        format!(
            "The role with name {} cannot be found.",
            name.chars().take(64).collect::<String>()
        ),
    )
}

/// A trust policy in IAM's grammar, checked and made evaluable: each statement's `Principal`
/// must be the pipeline service (Sluice's roles are used by pipelines, nothing else), and is
/// then set aside; a statement without `Resource` applies to the role itself.
pub fn parse_trust_policy(text: &str) -> Result<sluice_policy::Policy, ApiError> {
    let mut document: Value =
        serde_json::from_str(text).map_err(|error| malformed(format!("the trust policy is not JSON: {error}")))?;
    let statements = match document.get_mut("Statement") {
        Some(Value::Array(statements)) => statements.iter_mut().collect::<Vec<_>>(),
        Some(statement @ Value::Object(_)) => vec![statement],
        _ => return Err(malformed("the trust policy has no Statement")),
    };
    for (index, statement) in statements.into_iter().enumerate() {
        let Some(members) = statement.as_object_mut() else {
            return Err(malformed(format!("Statement[{index}] must be an object")));
        };
        if let Some(principal) = members.remove("Principal") {
            let services: Vec<&str> = match principal.get("Service") {
                Some(Value::String(service)) => vec![service.as_str()],
                Some(Value::Array(services)) => services.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let only_services = principal.as_object().is_some_and(|object| object.len() == 1);
            if services.is_empty()
                || !only_services
                || services.iter().any(|service| !TRUSTED_SERVICES.contains(service))
            {
                return Err(malformed(format!(
                    "Statement[{index}].Principal: a Sluice role is used by pipelines, so its principal must be {{\"Service\": \"datapipeline.amazonaws.com\"}} (ec2.amazonaws.com and elasticmapreduce.amazonaws.com are accepted, as AWS's default roles name them)"
                )));
            }
        }
        if members.contains_key("NotPrincipal") {
            return Err(malformed(format!(
                "Statement[{index}].NotPrincipal is not supported in a role's trust policy"
            )));
        }
        if !members.contains_key("Resource") && !members.contains_key("NotResource") {
            members.insert("Resource".into(), Value::String("*".into()));
        }
    }
    sluice_policy::parse(&document.to_string()).map_err(|error| malformed(format!("the trust policy: {error}")))
}

/// Whether the role's trust policy lets this pipeline use it.
pub fn trusts(role: &RoleRecord, pipeline_arn: &str, pipeline_context: &[(String, Vec<String>)]) -> bool {
    let Ok(policy) = parse_trust_policy(&role.trust_policy) else {
        return false;
    };
    let mut context = RequestContext::new("sts:AssumeRole", role.identity.arn.clone())
        .with("aws:SourceArn", pipeline_arn.to_string())
        .with("aws:SourceAccount", role.identity.account_id.clone())
        .with("aws:PrincipalType", "Service")
        .with("aws:PrincipalServiceName", "datapipeline.amazonaws.com");
    for (key, values) in pipeline_context {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        context = context.with_values(key, &values);
    }
    matches!(
        sluice_policy::evaluate(std::slice::from_ref(&policy), &context),
        Decision::Allow { .. }
    )
}

fn role_shape(role: &RoleRecord) -> Role {
    Role {
        path: role.path.clone(),
        role_name: role.identity.name.clone(),
        role_id: role.identity.identity_id.clone(),
        arn: role.identity.arn.clone(),
        create_date: iso(&role.created_at),
        assume_role_policy_document: role.trust_policy.clone(),
        description: role.description.clone(),
        max_session_duration: role.max_session_seconds,
        tags: role
            .tags
            .iter()
            .map(|(key, value)| iam::Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

async fn find_role(tx: &mut dyn Transaction, principal: &Principal, name: &str) -> Result<RoleRecord, ApiError> {
    tx.role(&principal.identity.account_id, name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_such_role(name))
}

fn new_role(account_id: &str, name: &str, path: &str, trust_policy: &str, now: &str) -> Result<RoleRecord, ApiError> {
    Ok(RoleRecord {
        identity: IdentityRecord {
            identity_id: format!(
                "AROA{}",
                random_upper_alphanumeric(17).map_err(|_| ApiError::internal())?
            ),
            account_id: account_id.to_string(),
            kind: "Role".into(),
            name: name.to_string(),
            arn: role_arn(account_id, path, name),
        },
        path: path.to_string(),
        tags: Vec::new(),
        trust_policy: trust_policy.to_string(),
        description: None,
        max_session_seconds: DEFAULT_SESSION_SECONDS,
        created_at: now.to_string(),
    })
}

/// Creates the default roles of an account that lacks them (at every start: cheap, and a store
/// from before roles gets them too).
pub async fn ensure_default_roles(tx: &mut dyn Transaction, account_id: &str, now: &str) -> anyhow::Result<()> {
    for name in DEFAULT_ROLES {
        if tx.role(account_id, name).await?.is_none() {
            let mut role = new_role(account_id, name, "/", DEFAULT_TRUST_POLICY, now)
                .map_err(|error| anyhow::anyhow!("{}", error.message))?;
            role.description =
                Some("Sluice's default: trusted by every pipeline of the account, no policies attached".into());
            tx.insert_role(&role).await?;
        }
    }
    Ok(())
}

pub async fn create_role(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::CreateRoleInput = parse_body(body)?;
    input.check()?;
    let account = principal.identity.account_id.clone();
    let path = input.path.clone().unwrap_or_else(|| "/".into());
    let arn = role_arn(&account, &path, &input.role_name);
    authz::authorize_with(
        principal,
        Operation::CreateRole,
        &arn,
        &crate::handlers::request_tags(input.tags.iter().map(|tag| (tag.key.as_str(), tag.value.as_str()))),
    )?;
    parse_trust_policy(&input.assume_role_policy_document)?;
    let taken = tx
        .roles(&account)
        .await
        .map_err(store_error)?
        .iter()
        .any(|role| role.identity.name.eq_ignore_ascii_case(&input.role_name));
    if taken {
        return Err(ApiError::new(
            ErrorKind::EntityAlreadyExists,
            format!("Role with name {} already exists.", input.role_name),
        ));
    }
    let mut role = new_role(
        &account,
        &input.role_name,
        &path,
        &input.assume_role_policy_document,
        &render(state.clock.now()),
    )?;
    role.description = input.description.clone();
    role.max_session_seconds = input.max_session_duration.unwrap_or(DEFAULT_SESSION_SECONDS);
    role.tags = input
        .tags
        .iter()
        .map(|tag| (tag.key.clone(), tag.value.clone()))
        .collect();
    tx.insert_role(&role).await.map_err(store_error)?;
    json(&iam::RoleOutput {
        role: role_shape(&role),
    })
}

pub async fn get_role(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::RoleInput = parse_body(body)?;
    input.check(false, false)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::GetRole, &role.identity.arn)?;
    json(&iam::RoleOutput {
        role: role_shape(&role),
    })
}

pub async fn list_roles(tx: &mut dyn Transaction, principal: &Principal) -> Result<String, ApiError> {
    authorize(
        principal,
        Operation::ListRoles,
        &format!("arn:aws:iam::{}:role/", principal.identity.account_id),
    )?;
    let roles = tx.roles(&principal.identity.account_id).await.map_err(store_error)?;
    json(&iam::ListRolesOutput {
        roles: roles.iter().map(role_shape).collect(),
        is_truncated: false,
    })
}

pub async fn delete_role(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::RoleInput = parse_body(body)?;
    input.check(false, false)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::DeleteRole, &role.identity.arn)?;
    if !tx
        .attached_policies(&role.identity.identity_id)
        .await
        .map_err(store_error)?
        .is_empty()
    {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    tx.delete_role(&role.identity.identity_id).await.map_err(store_error)?;
    Ok("{}".into())
}

pub async fn update_assume_role_policy(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::RoleInput = parse_body(body)?;
    input.check(false, true)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::UpdateAssumeRolePolicy, &role.identity.arn)?;
    let document = input.policy_document.unwrap_or_default();
    parse_trust_policy(&document)?;
    tx.update_trust_policy(&role.identity.identity_id, &document)
        .await
        .map_err(store_error)?;
    Ok("{}".into())
}

pub async fn attach_or_detach_role_policy(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::RoleInput = parse_body(body)?;
    input.check(true, false)?;
    let policy_arn = input.policy_arn.unwrap_or_default();
    let role = find_role(tx, principal, &input.role_name).await?;
    authz::authorize_with(
        principal,
        operation,
        &role.identity.arn,
        &[("iam:PolicyARN".to_string(), vec![policy_arn.clone()])],
    )?;
    let identity_id = &role.identity.identity_id;
    if operation == Operation::AttachRolePolicy {
        crate::iam::find_policy(tx, principal, &policy_arn).await?;
        let attached = tx.attached_policies(identity_id).await.map_err(store_error)?;
        if !attached.contains(&policy_arn) && attached.len() >= MAX_ATTACHED_POLICIES {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!("Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_POLICIES}"),
            ));
        }
        tx.attach_policy(identity_id, &policy_arn).await.map_err(store_error)?;
    } else if !tx.detach_policy(identity_id, &policy_arn).await.map_err(store_error)? {
        return Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!(
                "Policy {} was not found.",
                policy_arn.chars().take(256).collect::<String>()
            ),
        ));
    }
    Ok("{}".into())
}

pub async fn list_attached_role_policies(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::RoleInput = parse_body(body)?;
    input.check(false, false)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::ListAttachedRolePolicies, &role.identity.arn)?;
    let attached = crate::iam::attached_policies_named(tx, &role.identity.identity_id).await?;
    json(&iam::ListAttachedUserPoliciesOutput {
        attached_policies: attached,
        is_truncated: false,
    })
}

/// Context binding a role secret's ciphertext to its role and name.
pub fn role_secret_context(role_id: &str, name: &str) -> String {
    format!("role-secret/{role_id}/{name}")
}

/// Keeps a credential for an external system with the role, sealed under the KEK; replaces a
/// secret of the same name.
pub async fn put_role_secret(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::RoleSecretInput = parse_body(body)?;
    input.check(true, true)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::PutRoleSecret, &role.identity.arn)?;
    let name = input.secret_name.unwrap_or_default();
    let value = sluice_crypto::Secret::new(input.secret_value.unwrap_or_default());
    let existing = tx.role_secrets(&role.identity.identity_id).await.map_err(store_error)?;
    if existing.len() >= MAX_ROLE_SECRETS && !existing.iter().any(|(known, _, _)| *known == name) {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!("Cannot exceed quota for SecretsPerRole: {MAX_ROLE_SECRETS}"),
        ));
    }
    let sealed = state
        .vault
        .seal(&role_secret_context(&role.identity.identity_id, &name), &value)
        .map_err(crate::handlers::crypto_error)?;
    tx.put_role_secret(&role.identity.identity_id, &name, &sealed, &render(state.clock.now()))
        .await
        .map_err(store_error)?;
    Ok("{}".into())
}

/// The names of a role's secrets, never their values.
pub async fn list_role_secrets(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::RoleSecretInput = parse_body(body)?;
    input.check(false, false)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::ListRoleSecrets, &role.identity.arn)?;
    let secrets = tx.role_secrets(&role.identity.identity_id).await.map_err(store_error)?;
    json(&iam::ListRoleSecretsOutput {
        secrets: secrets
            .into_iter()
            .map(|(name, _, created)| iam::RoleSecret {
                secret_name: name,
                create_date: iso(&created),
            })
            .collect(),
    })
}

pub async fn delete_role_secret(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::RoleSecretInput = parse_body(body)?;
    input.check(true, false)?;
    let role = find_role(tx, principal, &input.role_name).await?;
    authorize(principal, Operation::DeleteRoleSecret, &role.identity.arn)?;
    let name = input.secret_name.unwrap_or_default();
    if !tx
        .delete_role_secret(&role.identity.identity_id, &name)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!("The role {} has no secret named {name}.", role.identity.name),
        ));
    }
    Ok("{}".into())
}

/// The roles a definition names: role name → the first `(object id, field)` naming it.
pub fn named_roles(definition: &PipelineDefinition) -> BTreeMap<String, (String, String)> {
    let mut roles = BTreeMap::new();
    for object in &definition.objects {
        for field in ROLE_FIELDS {
            for value in object.values(field) {
                if let Some(name) = value.as_string() {
                    roles
                        .entry(name.to_string())
                        .or_insert_with(|| (object.id.clone(), field.to_string()));
                }
            }
        }
    }
    roles
}

/// At activation: every role the definition names exists, trusts this pipeline, and may be
/// passed by the caller (`iam:PassRole` on the role; the root may pass any).
pub async fn check_definition_roles(
    tx: &mut dyn Transaction,
    principal: &Principal,
    pipeline_id: &str,
    definition: &PipelineDefinition,
) -> Result<(), ApiError> {
    // A role is named, never referred to: a reference would escape the checks below.
    for object in &definition.objects {
        for field in ROLE_FIELDS {
            if object.values(field).any(|value| value.as_ref_target().is_some()) {
                return Err(ApiError::invalid_request(format!(
                    "object '{}' field '{field}' must name a role (a string), not refer to an object",
                    object.id
                )));
            }
        }
    }
    let named = named_roles(definition);
    if named.is_empty() {
        return Ok(());
    }
    let pipeline_arn = crate::handlers::pipeline_arn(principal, pipeline_id);
    let context = crate::handlers::pipeline_context(tx, pipeline_id).await?;
    for (name, (object, field)) in named {
        let role = if name.starts_with("arn:") {
            let short = name.rsplit('/').next().unwrap_or_default().to_string();
            tx.role(&principal.identity.account_id, &short)
                .await
                .map_err(store_error)?
                .filter(|role| role.identity.arn == name)
        } else {
            tx.role(&principal.identity.account_id, &name)
                .await
                .map_err(store_error)?
        };
        let shown: String = name.chars().take(128).collect();
        let Some(role) = role else {
            return Err(ApiError::invalid_request(format!(
                "object '{object}' field '{field}': role '{shown}' does not exist in this account; create it (sluice iam create-role, or aws iam create-role) or name an existing one"
            )));
        };
        if !trusts(&role, &pipeline_arn, &context) {
            return Err(ApiError::invalid_request(format!(
                "object '{object}' field '{field}': role '{shown}' does not trust pipeline {pipeline_id}: its trust policy (aws iam get-role) must allow sts:AssumeRole for this pipeline"
            )));
        }
        if !authz::permits(principal, authz::Permission::PassRole, &role.identity.arn, &[]) {
            return Err(ApiError::new(
                ErrorKind::AccessDeniedException,
                format!(
                    "User: {} is not authorized to perform: iam:PassRole on resource: {} (named by object '{object}' field '{field}')",
                    principal.identity.arn, role.identity.arn
                ),
            ));
        }
    }
    Ok(())
}

/// The `resourceRole` a task runs with: the attempt's own (its activity's, or inherited from
/// Default), else that of the resource it runs on.
pub fn task_role_name(
    objects: &BTreeMap<String, sluice_wire::shapes::PipelineObject>,
    attempt_id: &str,
) -> Option<String> {
    let field = |object: &sluice_wire::shapes::PipelineObject, key: &str| {
        object
            .fields
            .iter()
            .find(|field| field.key == key)
            .and_then(|field| field.string_value.clone())
    };
    let reference = |object: &sluice_wire::shapes::PipelineObject, key: &str| {
        object
            .fields
            .iter()
            .find(|field| field.key == key)
            .and_then(|field| field.ref_value.clone())
    };
    let attempt = objects.get(attempt_id)?;
    if let Some(role) = field(attempt, "resourceRole") {
        return Some(role);
    }
    let resource = reference(attempt, "resource").or_else(|| reference(attempt, "runsOn"))?;
    objects
        .get(&resource)
        .and_then(|resource| field(resource, "resourceRole"))
}

/// The credentials a task gets at hand-out: a session of its `resourceRole` if the role exists
/// and still trusts the pipeline (checked again: the trust policy may have changed since
/// activation), lasting the attempt's timeout or at most the role's maximum session.
pub async fn credentials_for_task(
    app: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    pipeline_id: &str,
    attempt_id: &str,
    role_name: &str,
    attempt_timeout_seconds: Option<i64>,
) -> Result<Option<Value>, ApiError> {
    let short = role_name.rsplit('/').next().unwrap_or(role_name);
    let role = tx
        .role(&principal.identity.account_id, short)
        .await
        .map_err(store_error)?
        .filter(|role| !role_name.starts_with("arn:") || role.identity.arn == role_name);
    let Some(role) = role else {
        tracing::warn!(
            pipeline_id,
            attempt_id,
            "the task's resourceRole does not exist: it runs without credentials"
        );
        return Ok(None);
    };
    let pipeline_arn = crate::handlers::pipeline_arn(principal, pipeline_id);
    let context = crate::handlers::pipeline_context(tx, pipeline_id).await?;
    if !trusts(&role, &pipeline_arn, &context) {
        tracing::warn!(pipeline_id, attempt_id, role = %role.identity.name, "the task's resourceRole no longer trusts the pipeline: it runs without credentials");
        return Ok(None);
    }
    // An attempt handed out again (its first lease lapsed) gets new credentials; the earlier
    // runner's die.
    tx.delete_task_sessions(pipeline_id, attempt_id)
        .await
        .map_err(store_error)?;
    let seconds = attempt_timeout_seconds.map_or(role.max_session_seconds, |timeout| {
        timeout.min(role.max_session_seconds)
    });
    task_credentials(app, tx, &role, pipeline_id, attempt_id, seconds)
        .await
        .map(Some)
}

/// Mints the attempt's role session: temporary credentials of `role` that end with the attempt
/// (and at the latest after `seconds`).
async fn task_credentials(
    app: &AppState,
    tx: &mut dyn Transaction,
    role: &RoleRecord,
    pipeline_id: &str,
    attempt_id: &str,
    seconds: i64,
) -> Result<Value, ApiError> {
    let (_, secret) = crate::bootstrap::new_access_key().map_err(|_| ApiError::internal())?;
    let access_key_id = format!(
        "ASIA{}",
        random_upper_alphanumeric(16).map_err(|_| ApiError::internal())?
    );
    let token = format!(
        "SLUICETASK{}",
        random_upper_alphanumeric(96).map_err(|_| ApiError::internal())?
    );
    let sealed = app
        .vault
        .seal(&crate::keys::access_key_context(&access_key_id), &secret)
        .map_err(crate::handlers::crypto_error)?;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let expires = now + chrono::Duration::seconds(seconds.clamp(60, 43_200));
    tx.insert_session_key(
        &access_key_id,
        &role.identity.identity_id,
        &sealed,
        &render(now),
        &sluice_store::SessionFacts {
            token_hash: crate::api::hex_sha256(token.as_bytes()),
            expires_at: render(expires),
            mfa_at: None,
            parent_key_id: None,
            task: Some(sluice_store::TaskBinding {
                pipeline_id: pipeline_id.to_string(),
                attempt_id: attempt_id.to_string(),
                attempt_status: None,
            }),
        },
    )
    .await
    .map_err(store_error)?;
    // The role's credentials for external systems go with its session, to this task only.
    let mut secrets = serde_json::Map::new();
    for (name, sealed, _) in tx.role_secrets(&role.identity.identity_id).await.map_err(store_error)? {
        match app
            .vault
            .open(&role_secret_context(&role.identity.identity_id, &name), &sealed)
        {
            Some(value) => {
                secrets.insert(name, Value::String(value.expose_secret().clone()));
            }
            None => {
                tracing::error!(role = %role.identity.name, secret = %name, "a role secret cannot be opened; left out")
            }
        }
    }
    Ok(json!({
        "secrets": secrets,
        "roleArn": role.identity.arn,
        "roleName": role.identity.name,
        "accessKeyId": access_key_id,
        "secretAccessKey": secret.expose_secret(),
        "sessionToken": token,
        "expiration": format!("{}Z", expires.format("%Y-%m-%dT%H:%M:%S")),
    }))
}

/// The name a role session of a task carries in its ARN (`assumed-role/<role>/<session>`):
/// the pipeline and the attempt, in IAM's session-name alphabet.
pub fn session_name(pipeline_id: &str, attempt_id: &str) -> String {
    let raw = format!("{pipeline_id}.{attempt_id}");
    let name: String = raw
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "+=,.@_-".contains(character) {
                character
            } else {
                '-'
            }
        })
        .collect();
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(trust: &str) -> RoleRecord {
        RoleRecord {
            identity: IdentityRecord {
                identity_id: "AROAEXAMPLE".into(),
                account_id: "123456789012".into(),
                kind: "Role".into(),
                name: "Reader".into(),
                arn: "arn:aws:iam::123456789012:role/Reader".into(),
            },
            path: "/".into(),
            tags: Vec::new(),
            trust_policy: trust.into(),
            description: None,
            max_session_seconds: 3600,
            created_at: "2026-01-01T00:00:00".into(),
        }
    }

    #[test]
    fn trust_policies_name_the_pipeline_service_and_conditions_pick_pipelines() {
        let pipeline = "arn:aws:datapipeline:local:123456789012:pipeline/df-A";
        let blue = vec![("datapipeline:Tag/team".to_string(), vec!["blue".to_string()])];
        assert!(trusts(&role(DEFAULT_TRUST_POLICY), pipeline, &[]));
        let by_tag = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"datapipeline.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"datapipeline:Tag/team":"blue"}}}]}"#;
        assert!(trusts(&role(by_tag), pipeline, &blue));
        assert!(!trusts(&role(by_tag), pipeline, &[]));
        let by_id = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"datapipeline.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:datapipeline:*:*:pipeline/df-A"}}}}"#;
        assert!(trusts(&role(by_id), pipeline, &[]));
        assert!(!trusts(
            &role(by_id),
            "arn:aws:datapipeline:local:123456789012:pipeline/df-B",
            &[]
        ));
        // Another principal is refused when the policy is put, and never trusts.
        for bad in [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"sts:AssumeRole"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
            "not json",
        ] {
            assert!(parse_trust_policy(bad).is_err(), "{bad}");
            assert!(!trusts(&role(bad), pipeline, &[]));
        }
    }

    #[test]
    fn session_names_keep_to_iams_alphabet() {
        assert_eq!(
            session_name("df-1", "@Job_2026-11-29T00:41:12_Attempt=1"),
            "df-1.@Job_2026-11-29T00-41-12_Attempt=1"
        );
    }
}
