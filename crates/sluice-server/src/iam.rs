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

pub(crate) fn iso(stored: &str) -> String {
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
    // Tags decide things (sluice:service exempts from required MFA): policies can limit them.
    crate::authz::authorize_with(
        principal,
        Operation::CreateUser,
        &arn,
        &crate::handlers::request_tags(input.tags.iter().map(|tag| (tag.key.as_str(), tag.value.as_str()))),
    )?;
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
    if !tx
        .groups_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?
        .is_empty()
    {
        return Err(conflict("remove the user from its groups"));
    }
    if !tx
        .mfa_devices_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?
        .is_empty()
    {
        return Err(conflict("deactivate MFA devices"));
    }
    // Its session credentials die with it.
    tx.delete_sessions_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
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
    // Sessions got with a key that is deactivated or deleted end with it (a compromised key
    // must not live on in its sessions).
    if input.status.as_deref() != Some("Active") {
        tx.delete_sessions_from(&input.access_key_id)
            .await
            .map_err(store_error)?;
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
pub(crate) async fn find_policy(
    tx: &mut dyn Transaction,
    principal: &Principal,
    arn: &str,
) -> Result<Policy, ApiError> {
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
    // `iam:PolicyARN` lets a policy say which policies may be attached (so a user allowed to
    // manage its own policies cannot attach AdministratorAccess).
    crate::authz::authorize_with(
        principal,
        operation,
        &user.identity.arn,
        &[("iam:PolicyARN".to_string(), vec![input.policy_arn.clone()])],
    )?;
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

/// The policies attached to a user or role, with their names (shipped or the account's).
pub(crate) async fn attached_policies_named(
    tx: &mut dyn Transaction,
    identity_id: &str,
) -> Result<Vec<AttachedPolicy>, ApiError> {
    let mut attached = Vec::new();
    for arn in tx.attached_policies(identity_id).await.map_err(store_error)? {
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
    Ok(attached)
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
    let attached = attached_policies_named(tx, &user.identity.identity_id).await?;
    json(&iam::ListAttachedUserPoliciesOutput {
        attached_policies: attached,
        is_truncated: false,
    })
}

// ---- MFA devices (virtual, TOTP) and session credentials

/// Codes are checked against the real time, as signatures are, whatever the scheduler's clock.
pub(crate) fn real_now() -> chrono::DateTime<chrono::Utc> {
    use crate::clock::Clock;
    crate::clock::SystemClock.now()
}

fn no_such_device(serial: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NoSuchEntity,
        format!(
            "MFA device {} cannot be found.",
            serial.chars().take(256).collect::<String>()
        ),
    )
}

fn invalid_codes() -> ApiError {
    ApiError::new(
        ErrorKind::AccessDeniedException,
        "MultiFactorAuthentication failed with invalid MFA one time pass code.",
    )
}

async fn device_seed(state: &AppState, device: &sluice_store::MfaDeviceRecord) -> Result<Vec<u8>, ApiError> {
    let Some(seed) = state.vault.open(
        &crate::keys::mfa_seed_context(&device.serial_number),
        &device.sealed_seed,
    ) else {
        tracing::error!(serial = %device.serial_number, "an MFA seed cannot be opened");
        return Err(ApiError::internal());
    };
    data_encoding::BASE32_NOPAD
        .decode(seed.expose_secret().as_bytes())
        .map_err(|_| ApiError::internal())
}

pub async fn create_virtual_mfa_device(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::CreateVirtualMfaDeviceInput = parse_body(body)?;
    input.check()?;
    let account = principal.identity.account_id.clone();
    let path = input.path.clone().unwrap_or_else(|| "/".into());
    let serial = format!("arn:aws:iam::{account}:mfa{path}{}", input.virtual_mfa_device_name);
    authorize(principal, Operation::CreateVirtualMFADevice, &serial)?;
    if tx.mfa_device(&serial).await.map_err(store_error)?.is_some() {
        return Err(ApiError::new(
            ErrorKind::EntityAlreadyExists,
            format!("MFADevice entity at the same path and name already exists: {serial}"),
        ));
    }
    let mut seed = [0u8; sluice_crypto::totp::SEED_BYTES];
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| ApiError::internal())?;
    let base32 = sluice_crypto::totp::base32(&seed);
    let sealed = state
        .vault
        .seal(
            &crate::keys::mfa_seed_context(&serial),
            &sluice_crypto::Secret::new(base32.clone()),
        )
        .map_err(internal)?;
    tx.insert_mfa_device(&sluice_store::MfaDeviceRecord {
        serial_number: serial.clone(),
        account_id: account.clone(),
        identity_id: None,
        sealed_seed: sealed,
        last_step: -1,
        enabled_at: None,
        created_at: render(state.clock.now()),
    })
    .await
    .map_err(store_error)?;
    let label = format!("{}@{account}", input.virtual_mfa_device_name);
    json(&iam::CreateVirtualMfaDeviceOutput {
        virtual_mfa_device: iam::VirtualMfaDevice {
            serial_number: serial,
            otpauth_uri: sluice_crypto::totp::otpauth_uri("Sluice", &label, &seed),
            base32_string_seed: base32,
        },
    })
}

/// EnableMFADevice (a device not yet in use, for the user) and ResyncMFADevice (the user's own
/// device, when its clock drifted): two consecutive codes.
pub async fn enable_or_resync_mfa_device(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::TwoCodesInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, operation, &user.identity.arn)?;
    let mut device = tx
        .mfa_device(&input.serial_number)
        .await
        .map_err(store_error)?
        .filter(|device| device.account_id == principal.identity.account_id)
        .ok_or_else(|| no_such_device(&input.serial_number))?;
    let enabling = operation == Operation::EnableMFADevice;
    match (&device.identity_id, enabling) {
        (None, true) => {}
        (Some(_), true) => {
            return Err(ApiError::new(
                ErrorKind::EntityAlreadyExists,
                "The MFA device is already in use.",
            ));
        }
        (Some(owner), false) if *owner == user.identity.identity_id => {}
        _ => return Err(no_such_device(&input.serial_number)),
    }
    // A stolen key must not be able to add its own device to a user who has one: a further
    // device for oneself takes MFA-bearing session credentials.
    if enabling
        && user.identity.identity_id == principal.identity.identity_id
        && principal.mfa_authenticated_at.is_none()
        && tx
            .mfa_devices_of(&user.identity.identity_id)
            .await
            .map_err(store_error)?
            .iter()
            .any(|existing| existing.enabled_at.is_some())
    {
        return Err(ApiError::new(
            ErrorKind::AccessDeniedException,
            "an MFA device is already enabled for this user: enable another with MFA session credentials",
        ));
    }
    let seed = device_seed(state, &device).await?;
    // Enrolment looks back five minutes; resynchronisation, for a drifted device, ten.
    let back = if enabling { 10 } else { 20 };
    let step = sluice_crypto::totp::verify_consecutive(
        &seed,
        &input.authentication_code1,
        &input.authentication_code2,
        real_now().timestamp(),
        back,
    )
    .filter(|step| *step - 1 > device.last_step)
    .ok_or_else(|| {
        ApiError::new(
            ErrorKind::InvalidRequestException,
            "Authentication codes are not valid: give two consecutive codes from the device",
        )
    })?;
    device.last_step = step;
    if enabling {
        device.identity_id = Some(user.identity.identity_id.clone());
        device.enabled_at = Some(render(state.clock.now()));
    }
    tx.update_mfa_device(&device).await.map_err(store_error)?;
    Ok("{}".into())
}

pub async fn deactivate_mfa_device(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::SerialNumberInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::DeactivateMFADevice, &user.identity.arn)?;
    let mut device = tx
        .mfa_device(&input.serial_number)
        .await
        .map_err(store_error)?
        .filter(|device| device.identity_id.as_deref() == Some(user.identity.identity_id.as_str()))
        .ok_or_else(|| no_such_device(&input.serial_number))?;
    device.identity_id = None;
    device.enabled_at = None;
    tx.update_mfa_device(&device).await.map_err(store_error)?;
    Ok("{}".into())
}

pub async fn delete_virtual_mfa_device(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::SerialNumberInput = parse_body(body)?;
    input.check()?;
    authorize(principal, Operation::DeleteVirtualMFADevice, &input.serial_number)?;
    let device = tx
        .mfa_device(&input.serial_number)
        .await
        .map_err(store_error)?
        .filter(|device| device.account_id == principal.identity.account_id)
        .ok_or_else(|| no_such_device(&input.serial_number))?;
    if device.identity_id.is_some() {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            "MFA device is in use: deactivate it first.",
        ));
    }
    tx.delete_mfa_device(&device.serial_number).await.map_err(store_error)?;
    Ok("{}".into())
}

pub async fn list_mfa_devices(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::ListMFADevices, &user.identity.arn)?;
    let devices = tx
        .mfa_devices_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
    json(&iam::ListMfaDevicesOutput {
        mfa_devices: devices
            .into_iter()
            .map(|device| iam::MfaDevice {
                user_name: user.identity.name.clone(),
                serial_number: device.serial_number,
                enable_date: device.enabled_at.as_deref().map(iso).unwrap_or_default(),
            })
            .collect(),
        is_truncated: false,
    })
}

/// Wrong codes per device in the current five-minute window: after five, the device takes no
/// codes until the window ends, so guessing a 6-digit code takes months, not minutes. Kept in
/// memory (a failed call's transaction is rolled back, so the store cannot count it); a restart
/// forgets it.
const MFA_FAILURES_ALLOWED: u32 = 5;
const MFA_FAILURE_WINDOW_SECONDS: i64 = 300;

type FailureCounts = std::sync::Mutex<std::collections::HashMap<String, (i64, u32)>>;

fn mfa_failures() -> &'static FailureCounts {
    static FAILURES: std::sync::OnceLock<FailureCounts> = std::sync::OnceLock::new();
    FAILURES.get_or_init(Default::default)
}

/// Whether `key` (an MFA device's serial, or `password:<identity>`) has had five failures in
/// the last five minutes (counted per server process).
pub(crate) fn mfa_attempts_exhausted(serial: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
    let failures = mfa_failures().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    failures.get(serial).is_some_and(|(since, count)| {
        now.timestamp() - since < MFA_FAILURE_WINDOW_SECONDS && *count >= MFA_FAILURES_ALLOWED
    })
}

pub(crate) fn record_mfa_failure(serial: &str, now: chrono::DateTime<chrono::Utc>) {
    let mut failures = mfa_failures().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = failures.entry(serial.to_string()).or_insert((now.timestamp(), 0));
    if now.timestamp() - entry.0 >= MFA_FAILURE_WINDOW_SECONDS {
        *entry = (now.timestamp(), 0);
    }
    entry.1 += 1;
}

/// Temporary credentials for the caller: an access key, secret and session token that expire,
/// carrying `aws:MultiFactorAuthPresent` when a device code was given. Never from session
/// credentials themselves; at most an hour for the root identity.
pub async fn get_session_token(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::GetSessionTokenInput = parse_body(body)?;
    input.check()?;
    authorize(principal, Operation::GetSessionToken, "*")?;
    if principal.session {
        return Err(ApiError::new(
            ErrorKind::AccessDeniedException,
            "Cannot call GetSessionToken with session credentials",
        ));
    }
    let root = principal.identity.kind == "Root";
    let seconds = input
        .duration_seconds
        .unwrap_or(if root { 3_600 } else { iam::SESSION_SECONDS_DEFAULT });
    if root && seconds > 3_600 {
        return Err(ApiError::invalid_request(
            "DurationSeconds: the root identity's sessions last at most 3600 seconds",
        ));
    }
    let now = real_now();
    let mfa_at = match (&input.serial_number, &input.token_code) {
        (Some(serial), Some(code)) => {
            let device = tx
                .mfa_device(serial)
                .await
                .map_err(store_error)?
                .filter(|device| device.identity_id.as_deref() == Some(principal.identity.identity_id.as_str()))
                .ok_or_else(invalid_codes)?;
            verify_mfa_code(state, tx, device, code, now).await?;
            Some(render(now))
        }
        _ => None,
    };
    let (credentials, expires) = mint_session(
        state,
        tx,
        &principal.identity.identity_id,
        mfa_at,
        Some(principal.access_key_id.clone()),
        seconds,
        now,
    )
    .await?;
    json(&iam::GetSessionTokenOutput {
        credentials: iam::Credentials {
            access_key_id: credentials.0,
            secret_access_key: credentials.1,
            session_token: credentials.2,
            expiration: format!("{}Z", render(expires)),
        },
    })
}

/// Checks a TOTP code of a user's device (each code once, five failures lock the device for
/// five minutes) and records the step it used.
pub(crate) async fn verify_mfa_code(
    state: &AppState,
    tx: &mut dyn Transaction,
    mut device: sluice_store::MfaDeviceRecord,
    code: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    if mfa_attempts_exhausted(&device.serial_number, now) {
        return Err(ApiError::new(
            ErrorKind::AccessDeniedException,
            "too many wrong MFA codes for this device: wait five minutes",
        ));
    }
    let seed = device_seed(state, &device).await?;
    let Some(step) = sluice_crypto::totp::verify(&seed, code, now.timestamp(), device.last_step, 1) else {
        record_mfa_failure(&device.serial_number, now);
        return Err(invalid_codes());
    };
    device.last_step = step;
    tx.update_mfa_device(&device).await.map_err(store_error)?;
    Ok(())
}

/// Session credentials for an identity, `(access key id, secret, token)` and their expiry: the
/// secret sealed, the token kept only as its hash.
pub(crate) async fn mint_session(
    state: &AppState,
    tx: &mut dyn Transaction,
    identity_id: &str,
    mfa_at: Option<String>,
    parent_key_id: Option<String>,
    seconds: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<((String, String, String), chrono::DateTime<chrono::Utc>), ApiError> {
    tx.delete_expired_sessions(&render(now)).await.map_err(store_error)?;
    let access_key_id = format!("ASIA{}", random_upper_alphanumeric(16).map_err(internal)?);
    let secret = crate::bootstrap::random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)
        .map_err(internal)?;
    let token = crate::bootstrap::random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 160)
        .map_err(internal)?;
    let sealed = state
        .vault
        .seal(
            &crate::keys::access_key_context(&access_key_id),
            &sluice_crypto::Secret::new(secret.clone()),
        )
        .map_err(internal)?;
    let expires = now + chrono::Duration::seconds(seconds);
    tx.insert_session_key(
        &access_key_id,
        identity_id,
        &sealed,
        &render(now),
        &sluice_store::SessionFacts {
            token_hash: crate::api::hex_sha256(token.as_bytes()),
            expires_at: render(expires),
            mfa_at,
            parent_key_id,
            task: None,
        },
    )
    .await
    .map_err(store_error)?;
    Ok(((access_key_id, secret, token), expires))
}

// ---- Groups: members get the policies attached to their groups.

fn group_shape(group: &sluice_store::GroupRecord) -> iam::Group {
    iam::Group {
        path: group.path.clone(),
        group_name: group.group_name.clone(),
        group_id: group.group_id.clone(),
        arn: group.arn.clone(),
        create_date: iso(&group.created_at),
    }
}

fn no_such_group(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NoSuchEntity,
        format!("The group with name {name} cannot be found."),
    )
}

async fn find_group(
    tx: &mut dyn Transaction,
    principal: &Principal,
    name: &str,
) -> Result<sluice_store::GroupRecord, ApiError> {
    tx.group(&principal.identity.account_id, name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_such_group(name))
}

pub async fn create_group(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::GroupInput = parse_body(body)?;
    input.check(false, false)?;
    let account = principal.identity.account_id.clone();
    let path = input.path.clone().unwrap_or_else(|| "/".into());
    let arn = format!("arn:aws:iam::{account}:group{path}{}", input.group_name);
    authorize(principal, Operation::CreateGroup, &arn)?;
    let taken = tx
        .groups(&account)
        .await
        .map_err(store_error)?
        .iter()
        .any(|group| group.group_name.eq_ignore_ascii_case(&input.group_name));
    if taken {
        return Err(ApiError::new(
            ErrorKind::EntityAlreadyExists,
            format!("Group with name {} already exists.", input.group_name),
        ));
    }
    let group = sluice_store::GroupRecord {
        group_id: format!("AGPA{}", random_upper_alphanumeric(17).map_err(internal)?),
        account_id: account,
        group_name: input.group_name.clone(),
        path,
        arn,
        created_at: render(state.clock.now()),
    };
    tx.insert_group(&group).await.map_err(store_error)?;
    json(&iam::GroupOutput {
        group: group_shape(&group),
    })
}

pub async fn get_group(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::GroupInput = parse_body(body)?;
    input.check(false, false)?;
    let group = find_group(tx, principal, &input.group_name).await?;
    authorize(principal, Operation::GetGroup, &group.arn)?;
    let users = tx.members(&group.group_id).await.map_err(store_error)?;
    json(&iam::GetGroupOutput {
        group: group_shape(&group),
        users: users.iter().map(user_shape).collect(),
        is_truncated: false,
    })
}

pub async fn list_groups(tx: &mut dyn Transaction, principal: &Principal) -> Result<String, ApiError> {
    authorize(principal, Operation::ListGroups, "*")?;
    let groups = tx.groups(&principal.identity.account_id).await.map_err(store_error)?;
    json(&iam::ListGroupsOutput {
        groups: groups.iter().map(group_shape).collect(),
        is_truncated: false,
    })
}

pub async fn delete_group(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: iam::GroupInput = parse_body(body)?;
    input.check(false, false)?;
    let group = find_group(tx, principal, &input.group_name).await?;
    authorize(principal, Operation::DeleteGroup, &group.arn)?;
    if !tx.members(&group.group_id).await.map_err(store_error)?.is_empty() {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            "Cannot delete entity, must remove users from group first.",
        ));
    }
    if !tx
        .group_policies(&group.group_id)
        .await
        .map_err(store_error)?
        .is_empty()
    {
        return Err(ApiError::new(
            ErrorKind::DeleteConflict,
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    tx.delete_group(&group.group_id).await.map_err(store_error)?;
    Ok("{}".into())
}

/// AddUserToGroup and RemoveUserFromGroup.
pub async fn membership(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::GroupInput = parse_body(body)?;
    input.check(true, false)?;
    let group = find_group(tx, principal, &input.group_name).await?;
    authorize(principal, operation, &group.arn)?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    if user.identity.kind == "Root" {
        return Err(ApiError::invalid_request("the root identity cannot be a group member"));
    }
    if operation == Operation::AddUserToGroup {
        tx.add_member(&group.group_id, &user.identity.identity_id)
            .await
            .map_err(store_error)?;
    } else if !tx
        .remove_member(&group.group_id, &user.identity.identity_id)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!("User {} is not in group {}.", user.identity.name, group.group_name),
        ));
    }
    Ok("{}".into())
}

pub async fn list_groups_for_user(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::UserNameInput = parse_body(body)?;
    input.check()?;
    let user = target_user(tx, principal, input.user_name.as_deref()).await?;
    authorize(principal, Operation::ListGroupsForUser, &user.identity.arn)?;
    let groups = tx.groups_of(&user.identity.identity_id).await.map_err(store_error)?;
    json(&iam::ListGroupsOutput {
        groups: groups.iter().map(group_shape).collect(),
        is_truncated: false,
    })
}

/// AttachGroupPolicy and DetachGroupPolicy.
pub async fn attach_or_detach_group(
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::GroupInput = parse_body(body)?;
    input.check(false, true)?;
    let group = find_group(tx, principal, &input.group_name).await?;
    let arn = input.policy_arn.clone().unwrap_or_default();
    crate::authz::authorize_with(
        principal,
        operation,
        &group.arn,
        &[("iam:PolicyARN".to_string(), vec![arn.clone()])],
    )?;
    if operation == Operation::AttachGroupPolicy {
        find_policy(tx, principal, &arn).await?;
        let attached = tx.group_policies(&group.group_id).await.map_err(store_error)?;
        if !attached.contains(&arn) && attached.len() >= MAX_ATTACHED_POLICIES {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!("Cannot exceed quota for PoliciesPerGroup: {MAX_ATTACHED_POLICIES}"),
            ));
        }
        tx.attach_group_policy(&group.group_id, &arn)
            .await
            .map_err(store_error)?;
    } else if !tx
        .detach_group_policy(&group.group_id, &arn)
        .await
        .map_err(store_error)?
    {
        return Err(ApiError::new(
            ErrorKind::NoSuchEntity,
            format!("Policy {} was not found.", arn.chars().take(256).collect::<String>()),
        ));
    }
    Ok("{}".into())
}

pub async fn list_attached_group_policies(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::GroupInput = parse_body(body)?;
    input.check(false, false)?;
    let group = find_group(tx, principal, &input.group_name).await?;
    authorize(principal, Operation::ListAttachedGroupPolicies, &group.arn)?;
    let mut attached = Vec::new();
    for arn in tx.group_policies(&group.group_id).await.map_err(store_error)? {
        attached.push(AttachedPolicy {
            policy_name: policy_name(tx, &arn).await?,
            policy_arn: arn,
        });
    }
    json(&iam::ListAttachedUserPoliciesOutput {
        attached_policies: attached,
        is_truncated: false,
    })
}

async fn policy_name(tx: &mut dyn Transaction, arn: &str) -> Result<String, ApiError> {
    Ok(match authz::managed_policy(arn) {
        Some((name, _)) => name.to_string(),
        None => tx
            .policy(arn)
            .await
            .map_err(store_error)?
            .map(|policy| policy.policy_name)
            .unwrap_or_default(),
    })
}

/// SimulatePrincipalPolicy: how the policies of a user (its own and its groups') decide each
/// action on each resource in a given context, and for every statement whether it applied and,
/// if not, why (Sluice's `StatementDetails`).
pub async fn simulate_principal_policy(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::SimulatePrincipalPolicyInput = parse_body(body)?;
    input.check()?;
    authorize(principal, Operation::SimulatePrincipalPolicy, &input.policy_source_arn)?;
    let user = tx
        .users(&principal.identity.account_id)
        .await
        .map_err(store_error)?
        .into_iter()
        .find(|user| user.identity.arn == input.policy_source_arn)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NoSuchEntity,
                format!(
                    "No user with ARN {}.",
                    input.policy_source_arn.chars().take(256).collect::<String>()
                ),
            )
        })?;
    let (named, tags) = crate::api::named_policies(tx, &user.identity)
        .await
        .map_err(store_error)?;
    let (arns, policies): (Vec<String>, Vec<sluice_policy::Policy>) = named.into_iter().unzip();
    let resources = if input.resource_arns.is_empty() {
        vec!["*".to_string()]
    } else {
        input.resource_arns.clone()
    };
    // Each pair is evaluated inside the request's write transaction: keep it bounded.
    if input.action_names.len() * resources.len() > 1_000 {
        return Err(ApiError::invalid_request(
            "ActionNames x ResourceArns: at most 1,000 evaluations per call",
        ));
    }
    let now = real_now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut results = Vec::new();
    for action in &input.action_names {
        for resource in &resources {
            let mut context = sluice_policy::RequestContext::new(action.clone(), resource.clone())
                .with("aws:username", user.identity.name.clone())
                .with("aws:userid", user.identity.identity_id.clone())
                .with("aws:PrincipalArn", user.identity.arn.clone())
                .with("aws:PrincipalAccount", user.identity.account_id.clone())
                .with("aws:PrincipalType", "User")
                .with("aws:SecureTransport", "true")
                .with("aws:CurrentTime", now.clone());
            for (key, value) in &tags {
                context = context.with(&format!("aws:PrincipalTag/{key}"), value.clone());
            }
            for entry in &input.context_entries {
                let values: Vec<&str> = entry.context_key_values.iter().map(String::as_str).collect();
                context = context.with_values(&entry.context_key_name, &values);
            }
            let (decision, reports) = sluice_policy::explain(&policies, &context);
            let (eval_decision, matched) = match &decision {
                sluice_policy::Decision::Allow { policy, .. } => ("allowed", Some(*policy)),
                sluice_policy::Decision::ExplicitDeny { policy, .. } => ("explicitDeny", Some(*policy)),
                sluice_policy::Decision::ImplicitDeny => ("implicitDeny", None),
            };
            results.push(iam::EvaluationResult {
                eval_action_name: action.clone(),
                eval_resource_name: resource.clone(),
                eval_decision: eval_decision.into(),
                matched_statements: matched
                    .map(|policy| iam::MatchedStatement {
                        source_policy_id: arns[policy].clone(),
                    })
                    .into_iter()
                    .collect(),
                statement_details: reports
                    .into_iter()
                    .map(|report| iam::StatementDetail {
                        source_policy_id: arns[report.policy].clone(),
                        sid: report.sid,
                        effect: format!("{:?}", report.effect),
                        applies: report.why_not.is_none(),
                        reason: report.why_not,
                    })
                    .collect(),
            });
        }
    }
    json(&iam::SimulatePrincipalPolicyOutput {
        evaluation_results: results,
        is_truncated: false,
    })
}

/// Who the caller is: its user id, account and ARN (any caller may ask).
pub fn get_caller_identity(principal: &Principal) -> Result<String, ApiError> {
    authorize(principal, Operation::GetCallerIdentity, "*")?;
    json(&serde_json::json!({
        "UserId": principal.identity.identity_id,
        "Account": principal.identity.account_id,
        "Arn": principal.identity.arn,
    }))
}

pub async fn get_account_security_settings(
    tx: &mut dyn Transaction,
    principal: &Principal,
) -> Result<String, ApiError> {
    authorize(principal, Operation::GetAccountSecuritySettings, "*")?;
    json(&account_settings(tx, &principal.identity.account_id).await?)
}

async fn account_settings(
    tx: &mut dyn Transaction,
    account_id: &str,
) -> Result<iam::AccountSecuritySettings, ApiError> {
    Ok(iam::AccountSecuritySettings {
        require_mfa: tx.require_mfa(account_id).await.map_err(store_error)?,
        guard_rails_as_errors: tx.guard_rails_as_errors(account_id).await.map_err(store_error)?,
    })
}

pub async fn update_account_security_settings(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: iam::UpdateAccountSecuritySettingsInput = parse_body(body)?;
    authorize(principal, Operation::UpdateAccountSecuritySettings, "*")?;
    let account = &principal.identity.account_id;
    let now = render(state.clock.now());
    if let Some(required) = input.require_mfa {
        tx.set_require_mfa(account, required, &now).await.map_err(store_error)?;
    }
    if let Some(on) = input.guard_rails_as_errors {
        tx.set_guard_rails_as_errors(account, on, &now)
            .await
            .map_err(store_error)?;
    }
    json(&account_settings(tx, account).await?)
}
