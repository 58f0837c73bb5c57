//! Sluice's identity API: IAM users with tags, their access keys (at most two, active or
//! inactive, secrets sealed like the root's), customer-managed policies in IAM's grammar (parsed
//! before they are stored), the policies Sluice ships, and attachments. Each operation is
//! authorized as `iam:<Op>` on the user's or the policy's ARN, so a policy can let users manage
//! their own keys (`arn:aws:iam::<account>:user/${aws:username}`).

use sluice_store::{PolicyRecord, Transaction, UserRecord};
use sluice_wire::iam::{self, AccessKeyMetadata, AttachedPolicy, Policy, User};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal};
use crate::authz::{self, MANAGED_POLICIES, authorize};
use crate::bootstrap::{new_access_key, random_upper_alphanumeric};
use crate::clock::render;
use crate::handlers::{json, store_error};

const MAX_ACCESS_KEYS: usize = 2;
const MAX_ATTACHED_POLICIES: usize = 20;

fn no_such_user(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NoSuchEntity,
        format!("The user with name {name} cannot be found."),
    )
}

fn iso(stored: &str) -> String {
    if stored.ends_with('Z') {
        stored.to_string()
    } else {
        format!("{stored}Z")
    }
}

fn user_arn(account_id: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:user{path}{name}")
}

fn user_shape(user: &UserRecord) -> User {
    User {
        path: user.path.clone(),
        user_name: user.identity.name.clone(),
        user_id: user.identity.identity_id.clone(),
        arn: user.identity.arn.clone(),
        create_date: iso(&user.created_at),
        tags: user
            .tags
            .iter()
            .map(|(key, value)| iam::Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

fn internal(error: anyhow::Error) -> ApiError {
    tracing::error!(error = %format!("{error:#}"), "identity API");
    ApiError::internal()
}

/// The user a call names, or the caller when it names none. The root identity counts as a user
/// here only for its own access keys.
async fn target_user(
    tx: &mut dyn Transaction,
    principal: &Principal,
    name: Option<&str>,
) -> Result<UserRecord, ApiError> {
    let account = &principal.identity.account_id;
    match name {
        Some(name) => tx
            .user(account, name)
            .await
            .map_err(store_error)?
            .ok_or_else(|| no_such_user(name)),
        None if principal.identity.kind == "Root" => Ok(UserRecord {
            identity: principal.identity.clone(),
            path: "/".into(),
            tags: Vec::new(),
            created_at: String::new(),
        }),
        None => tx
            .user(account, &principal.identity.name)
            .await
            .map_err(store_error)?
            .ok_or_else(|| no_such_user(&principal.identity.name)),
    }
}

pub async fn create_user(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::CreateUserInput = parse_body(body)?;
    input.check()?;
    let account = principal.identity.account_id.clone();
    let path = input.path.clone().unwrap_or_else(|| "/".into());
    let arn = user_arn(&account, &path, &input.user_name);
    authorize(principal, Operation::CreateUser, &arn)?;
    // IAM names are unique without regard to case.
    let taken = tx
        .users(&account)
        .await
        .map_err(store_error)?
        .iter()
        .any(|user| user.identity.name.eq_ignore_ascii_case(&input.user_name));
    if taken || input.user_name.eq_ignore_ascii_case("root") {
        return Err(ApiError::new(
            ErrorKind::EntityAlreadyExists,
            format!("User with name {} already exists.", input.user_name),
        ));
    }
    let user = UserRecord {
        identity: sluice_store::IdentityRecord {
            identity_id: format!("AIDA{}", random_upper_alphanumeric(17).map_err(internal)?),
            account_id: account,
            kind: "IAMUser".into(),
            name: input.user_name.clone(),
            arn,
        },
        path,
        tags: input
            .tags
            .iter()
            .map(|tag| (tag.key.clone(), tag.value.clone()))
            .collect(),
        created_at: render(state.clock.now()),
    };
    tx.insert_user(&user).await.map_err(store_error)?;
    json(&iam::UserOutput {
        user: user_shape(&user),
    })
}

pub async fn get_user(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::GetUser, &user.identity.arn)?;
    json(&iam::UserOutput {
        user: user_shape(&user),
    })
}

pub async fn list_users(tx: &mut dyn Transaction, principal: &Principal) -> Result<String, ApiError> {
    authorize(principal, Operation::ListUsers, "*")?;
    let users = tx.users(&principal.identity.account_id).await.map_err(store_error)?;
    json(&iam::ListUsersOutput {
        users: users.iter().map(user_shape).collect(),
        is_truncated: false,
    })
}

pub async fn delete_user(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let Some(name) = input.user_name.as_deref() else {
        return Err(ApiError::invalid_request(
            "1 validation error detected: Value at 'UserName' failed to satisfy constraint: Member must not be null",
        ));
    };
    let user = target_user(tx, principal, Some(name)).await?;
    authorize(principal, Operation::DeleteUser, &user.identity.arn)?;
    let conflict = |what: &str| {
        ApiError::new(
            ErrorKind::DeleteConflict,
            format!("Cannot delete entity, must {what} first."),
        )
    };
    if !tx
        .access_keys_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?
        .is_empty()
    {
        return Err(conflict("delete access keys"));
    }
    if !tx
        .attached_policies(&user.identity.identity_id)
        .await
        .map_err(store_error)?
        .is_empty()
    {
        return Err(conflict("detach all policies"));
    }
    tx.delete_identity(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
    Ok("{}".into())
}

pub async fn create_access_key(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::CreateAccessKey, &user.identity.arn)?;
    let existing = tx
        .access_keys_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
    // The in-process runner's key belongs to the root identity but is not one of its keys.
    let counted = existing
        .iter()
        .filter(|key| !key.access_key_id.starts_with(crate::IN_PROCESS_KEY_PREFIX))
        .count();
    if counted >= MAX_ACCESS_KEYS {
        return Err(ApiError::new(
            ErrorKind::LimitExceeded,
            format!("Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"),
        ));
    }
    let (access_key_id, secret) = new_access_key().map_err(internal)?;
    let sealed = state
        .vault
        .seal(&crate::keys::access_key_context(&access_key_id), &secret)
        .map_err(internal)?;
    let now = render(state.clock.now());
    tx.insert_access_key(&access_key_id, &user.identity.identity_id, &sealed, &now)
        .await
        .map_err(store_error)?;
    // The only time the secret leaves the server; the audit record redacts it.
    json(&iam::CreateAccessKeyOutput {
        access_key: iam::AccessKey {
            user_name: user.identity.name.clone(),
            access_key_id,
            status: "Active".into(),
            secret_access_key: secret.expose_secret().clone(),
            create_date: iso(&now),
        },
    })
}

pub async fn list_access_keys(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::ListAccessKeys, &user.identity.arn)?;
    let keys = tx
        .access_keys_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
    json(&iam::ListAccessKeysOutput {
        access_key_metadata: keys
            .into_iter()
            .filter(|key| !key.access_key_id.starts_with(crate::IN_PROCESS_KEY_PREFIX))
            .map(|key| AccessKeyMetadata {
                user_name: user.identity.name.clone(),
                access_key_id: key.access_key_id,
                status: key.status,
                create_date: iso(&key.created_at),
                last_used_date: key.last_used_at.as_deref().map(iso),
            })
            .collect(),
        is_truncated: false,
    })
}

/// UpdateAccessKey and DeleteAccessKey: the key must be the user's.
pub async fn change_access_key(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::AccessKeyInput = parse_body(body)?;
    input.check(operation == Operation::UpdateAccessKey)?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, operation, &user.identity.arn)?;
    let owned = tx
        .access_keys_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?
        .iter()
        .any(|key| key.access_key_id == input.access_key_id);
    if !owned {
        return Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!(
                "The Access Key with id {} cannot be found.",
                input.access_key_id.chars().take(128).collect::<String>()
            ),
        ));
    }
    match (operation, input.status.as_deref()) {
        (Operation::UpdateAccessKey, Some(status)) => {
            tx.set_access_key_status(&input.access_key_id, status)
                .await
                .map_err(store_error)?;
        }
        _ => {
            tx.delete_access_key(&input.access_key_id).await.map_err(store_error)?;
        }
    }
    Ok("{}".into())
}

fn managed_shape(name: &str, document: &str, attachments: i64) -> Policy {
    Policy {
        policy_name: name.to_string(),
        policy_id: format!(
            "ANPASLUICE{}",
            name.to_ascii_uppercase().chars().take(11).collect::<String>()
        ),
        arn: authz::managed_policy_arn(name),
        path: "/".into(),
        default_version_id: "v1".into(),
        attachment_count: attachments,
        is_attachable: true,
        description: Some("A policy Sluice ships".into()),
        create_date: "2026-11-28T00:00:00Z".into(),
        policy_document: document.to_string(),
    }
}

fn policy_shape(policy: &PolicyRecord, attachments: i64) -> Policy {
    Policy {
        policy_name: policy.policy_name.clone(),
        policy_id: policy.policy_id.clone(),
        arn: policy.policy_arn.clone(),
        path: policy.path.clone(),
        default_version_id: "v1".into(),
        attachment_count: attachments,
        is_attachable: true,
        description: policy.description.clone(),
        create_date: iso(&policy.created_at),
        policy_document: policy.document.clone(),
    }
}

pub async fn create_policy(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::CreatePolicyInput = parse_body(body)?;
    input.check()?;
    let account = principal.identity.account_id.clone();
    let path = input.path.clone().unwrap_or_else(|| "/".into());
    let arn = format!("arn:aws:iam::{account}:policy{path}{}", input.policy_name);
    authorize(principal, Operation::CreatePolicy, &arn)?;
    // Refused before it is stored: a policy that does not parse would silently allow nothing.
    sluice_policy::parse(&input.policy_document)
        .map_err(|error| ApiError::new(ErrorKind::MalformedPolicyDocument, error.to_string()))?;
    let taken = tx
        .policies(&account)
        .await
        .map_err(store_error)?
        .iter()
        .any(|policy| policy.policy_name.eq_ignore_ascii_case(&input.policy_name));
    if taken {
        return Err(ApiError::new(
            ErrorKind::EntityAlreadyExists,
            format!("A policy called {} already exists.", input.policy_name),
        ));
    }
    let record = PolicyRecord {
        policy_arn: arn,
        account_id: account,
        policy_name: input.policy_name.clone(),
        policy_id: format!("ANPA{}", random_upper_alphanumeric(17).map_err(internal)?),
        path,
        document: input.policy_document.clone(),
        description: input.description.clone(),
        created_at: render(state.clock.now()),
    };
    tx.insert_policy(&record).await.map_err(store_error)?;
    json(&iam::PolicyOutput {
        policy: policy_shape(&record, 0),
    })
}

/// A policy by ARN: one Sluice ships, or one of the caller's account.
async fn find_policy(tx: &mut dyn Transaction, principal: &Principal, arn: &str) -> Result<Policy, ApiError> {
    let attachments = tx.attachment_count(arn).await.map_err(store_error)?;
    if let Some((name, document)) = authz::managed_policy(arn) {
        return Ok(managed_shape(name, document, attachments));
    }
    match tx.policy(arn).await.map_err(store_error)? {
        Some(policy) if policy.account_id == principal.identity.account_id => Ok(policy_shape(&policy, attachments)),
        _ => Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!(
                "Policy {} does not exist or is not attachable.",
                arn.chars().take(256).collect::<String>()
            ),
        )),
    }
}

pub async fn get_policy(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::PolicyArnInput = parse_body(body)?;
    input.check(false)?;
    authorize(principal, Operation::GetPolicy, &input.policy_arn)?;
    let policy = find_policy(tx, principal, &input.policy_arn).await?;
    json(&iam::PolicyOutput { policy })
}

pub async fn list_policies(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::ListPoliciesInput = parse_body(body)?;
    let scope = input.scope.as_deref().unwrap_or("All");
    if !matches!(scope, "All" | "AWS" | "Local") {
        return Err(ApiError::invalid_request(
            "1 validation error detected: Value at 'Scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]",
        ));
    }
    authorize(principal, Operation::ListPolicies, "*")?;
    let mut policies = Vec::new();
    if scope != "Local" {
        for (name, document) in MANAGED_POLICIES {
            let count = tx
                .attachment_count(&authz::managed_policy_arn(name))
                .await
                .map_err(store_error)?;
            policies.push(managed_shape(name, document, count));
        }
    }
    if scope != "AWS" {
        for policy in tx.policies(&principal.identity.account_id).await.map_err(store_error)? {
            let count = tx.attachment_count(&policy.policy_arn).await.map_err(store_error)?;
            policies.push(policy_shape(&policy, count));
        }
    }
    json(&iam::ListPoliciesOutput {
        policies,
        is_truncated: false,
    })
}

pub async fn delete_policy(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::PolicyArnInput = parse_body(body)?;
    input.check(false)?;
    authorize(principal, Operation::DeletePolicy, &input.policy_arn)?;
    let policy = find_policy(tx, principal, &input.policy_arn).await?;
    if authz::managed_policy(&input.policy_arn).is_some() {
        return Err(ApiError::invalid_request(format!(
            "{} is a policy Sluice ships; it cannot be deleted",
            policy.policy_name
        )));
    }
    if policy.attachment_count > 0 {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            "Cannot delete a policy attached to entities.",
        ));
    }
    tx.delete_policy(&input.policy_arn).await.map_err(store_error)?;
    Ok("{}".into())
}

/// AttachUserPolicy and DetachUserPolicy.
pub async fn attach_or_detach(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::PolicyArnInput = parse_body(body)?;
    input.check(true)?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, operation, &user.identity.arn)?;
    if user.identity.kind == "Root" {
        return Err(ApiError::invalid_request(
            "policies cannot be attached to the root identity",
        ));
    }
    let identity_id = &user.identity.identity_id;
    if operation == Operation::AttachUserPolicy {
        find_policy(tx, principal, &input.policy_arn).await?;
        let attached = tx.attached_policies(identity_id).await.map_err(store_error)?;
        if !attached.contains(&input.policy_arn) && attached.len() >= MAX_ATTACHED_POLICIES {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!("Cannot exceed quota for PoliciesPerUser: {MAX_ATTACHED_POLICIES}"),
            ));
        }
        tx.attach_policy(identity_id, &input.policy_arn)
            .await
            .map_err(store_error)?;
    } else if !tx
        .detach_policy(identity_id, &input.policy_arn)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!(
                "Policy {} was not found.",
                input.policy_arn.chars().take(256).collect::<String>()
            ),
        ));
    }
    Ok("{}".into())
}

pub async fn list_attached_user_policies(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::ListAttachedUserPolicies, &user.identity.arn)?;
    let mut attached = Vec::new();
    for arn in tx
        .attached_policies(&user.identity.identity_id)
        .await
        .map_err(store_error)?
    {
        let name = match authz::managed_policy(&arn) {
            Some((name, _)) => name.to_string(),
            None => tx
                .policy(&arn)
                .await
                .map_err(store_error)?
                .map(|policy| policy.policy_name)
                .unwrap_or_default(),
        };
        attached.push(AttachedPolicy {
            policy_name: name,
            policy_arn: arn,
        });
    }
    json(&iam::ListAttachedUserPoliciesOutput {
        attached_policies: attached,
        is_truncated: false,
    })
}
