//! Console passwords, as IAM's login profiles: CreateLoginProfile, UpdateLoginProfile,
//! GetLoginProfile, DeleteLoginProfile (`aws iam create-login-profile` works). Passwords are kept
//! only as PBKDF2-HMAC-SHA256 hashes (AWS-LC's, a FIPS-approved derivation) with a random salt;
//! `verify_slowly` and `record_sign_in` are what the console's sign-in asks (failures counted in
//! the store).

use aws_lc_rs::pbkdf2;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde::{Deserialize, Serialize};
use sluice_store::{LoginProfileRecord, Transaction, UserRecord};
use sluice_wire::{ApiError, ErrorKind, Operation, parse_body};

use crate::api::{AppState, Principal, authorize};
use crate::clock::render;
use crate::handlers::{json, store_error};

/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
const ITERATIONS: u32 = 600_000;
const MIN_LENGTH: usize = 12;
const MAX_LENGTH: usize = 128;
/// Failed sign-ins in a row before the profile is locked, and for how long.
pub const MAX_FAILURES: i64 = 5;
pub const LOCK_MINUTES: i64 = 5;

/// `pbkdf2-sha256$<iterations>$<salt>$<hash>`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut hash = [0u8; 32];
    let iterations = std::num::NonZeroU32::new(ITERATIONS).ok_or_else(|| anyhow::anyhow!("iterations"))?;
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    ))
}

/// Whether `password` is the one `stored` was made from (in constant time).
pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(iterations), Ok(salt), Ok(hash)) = (
        iterations.parse::<u32>().ok().and_then(std::num::NonZeroU32::new),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// Sluice's password policy: 12 to 128 characters, not the user's name, at least three of
/// lower case, upper case, digits and symbols.
fn check_policy(user_name: &str, password: &str) -> Result<(), ApiError> {
    let violation = |message: &str| ApiError::new(ErrorKind::PasswordPolicyViolation, message.to_string());
    let length = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(violation(&format!(
            "Password should have {MIN_LENGTH} to {MAX_LENGTH} characters."
        )));
    }
    if password.to_lowercase().contains(&user_name.to_lowercase()) {
        return Err(violation("Password should not contain the user name."));
    }
    let classes = [
        password.chars().any(|character| character.is_lowercase()),
        password.chars().any(|character| character.is_uppercase()),
        password.chars().any(|character| character.is_ascii_digit()),
        password.chars().any(|character| !character.is_alphanumeric()),
    ];
    if classes.iter().filter(|present| **present).count() < 3 {
        return Err(violation(
            "Password should have at least three of: lower case letters, upper case letters, digits, symbols.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PutInput {
    user_name: String,
    password: String,
    password_reset_required: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct UserInput {
    user_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LoginProfile {
    user_name: String,
    create_date: String,
    password_reset_required: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LoginProfileOutput {
    login_profile: LoginProfile,
}

async fn user_named(tx: &mut dyn Transaction, principal: &Principal, name: &str) -> Result<UserRecord, ApiError> {
    tx.user(&principal.identity.account_id, name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::NoSuchEntity,
                format!("The user with name {name} cannot be found."),
            )
        })
}

fn no_profile(name: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NoSuchEntity,
        format!("Login Profile for User {name} cannot be found."),
    )
}

/// CreateLoginProfile (the user must have none) and UpdateLoginProfile (it must have one).
pub async fn put_login_profile(
    state: &AppState,
    tx: &mut dyn Transaction,
    principal: &Principal,
    operation: Operation,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: PutInput = parse_body(body)?;
    let user = user_named(tx, principal, &input.user_name).await?;
    authorize(principal, operation, &user.identity.arn)?;
    let existing = tx
        .login_profile(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
    match (operation, &existing) {
        (Operation::CreateLoginProfile, Some(_)) => {
            return Err(ApiError::new(
                ErrorKind::EntityAlreadyExists,
                format!("Login Profile for user {} already exists.", input.user_name),
            ));
        }
        (Operation::UpdateLoginProfile, None) => return Err(no_profile(&input.user_name)),
        _ => {}
    }
    check_policy(&input.user_name, &input.password)?;
    let password_hash = hash_password(&input.password).map_err(|_| ApiError::internal())?;
    let profile = LoginProfileRecord {
        identity_id: user.identity.identity_id.clone(),
        password_hash,
        created_at: existing
            .as_ref()
            .map_or_else(|| render(state.clock.now()), |profile| profile.created_at.clone()),
        password_reset_required: input.password_reset_required.unwrap_or(false),
        failed_attempts: 0,
        locked_until: None,
    };
    tx.put_login_profile(&profile).await.map_err(store_error)?;
    if operation == Operation::UpdateLoginProfile {
        // A new password ends the sessions signed in with the old one.
        tx.delete_console_sessions_of(&user.identity.identity_id)
            .await
            .map_err(store_error)?;
        return Ok("{}".into());
    }
    json(&LoginProfileOutput {
        login_profile: LoginProfile {
            user_name: input.user_name,
            create_date: crate::iam::iso(&profile.created_at),
            password_reset_required: profile.password_reset_required,
        },
    })
}

pub async fn get_login_profile(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: UserInput = parse_body(body)?;
    let user = user_named(tx, principal, &input.user_name).await?;
    authorize(principal, Operation::GetLoginProfile, &user.identity.arn)?;
    let profile = tx
        .login_profile(&user.identity.identity_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_profile(&input.user_name))?;
    json(&LoginProfileOutput {
        login_profile: LoginProfile {
            user_name: input.user_name,
            create_date: crate::iam::iso(&profile.created_at),
            password_reset_required: profile.password_reset_required,
        },
    })
}

pub async fn delete_login_profile(
    tx: &mut dyn Transaction,
    principal: &Principal,
    body: &[u8],
) -> Result<String, ApiError> {
    let input: UserInput = parse_body(body)?;
    let user = user_named(tx, principal, &input.user_name).await?;
    authorize(principal, Operation::DeleteLoginProfile, &user.identity.arn)?;
    if !tx
        .delete_login_profile(&user.identity.identity_id)
        .await
        .map_err(store_error)?
    {
        return Err(no_profile(&input.user_name));
    }
    tx.delete_console_sessions_of(&user.identity.identity_id)
        .await
        .map_err(store_error)?;
    Ok("{}".into())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ChangeInput {
    old_password: String,
    new_password: String,
}

/// IAM's ChangePassword: an IAM user changes its own console password, proving the old one.
/// Allowed to every user for its own password, as AWS's "allow users to change their own
/// password" account setting does — unless a policy explicitly denies `iam:ChangePassword`.
/// Wrong old passwords are counted (the call's transaction rolls back, so in this server's
/// memory): five in five minutes lock changes out. Clears a required reset and ends the user's
/// console sessions.
pub async fn change_password(tx: &mut dyn Transaction, principal: &Principal, body: &[u8]) -> Result<String, ApiError> {
    let input: ChangeInput = parse_body(body)?;
    if principal.identity.kind != "IAMUser" || principal.session_issuer.is_some() {
        return Err(ApiError::new(
            ErrorKind::AccessDeniedException,
            "only an IAM user can change its own console password",
        ));
    }
    authorize(principal, Operation::ChangePassword, &principal.identity.arn)?;
    let now = crate::iam::real_now();
    let counter = format!("password:{}", principal.identity.identity_id);
    if crate::iam::mfa_attempts_exhausted(&counter, now) {
        return Err(ApiError::new(
            ErrorKind::AccessDeniedException,
            "Too many wrong passwords: wait five minutes.",
        ));
    }
    let mut profile = tx
        .login_profile(&principal.identity.identity_id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_profile(&principal.identity.name))?;
    if !verify_slowly(profile.password_hash.clone(), input.old_password.clone()).await {
        crate::iam::record_mfa_failure(&counter, now);
        return Err(ApiError::new(
            ErrorKind::InvalidRequestException,
            "The old password is not correct.",
        ));
    }
    if input.old_password == input.new_password {
        return Err(ApiError::new(
            ErrorKind::PasswordPolicyViolation,
            "The new password must differ from the old one.",
        ));
    }
    check_policy(&principal.identity.name, &input.new_password)?;
    profile.password_hash = hash_password(&input.new_password).map_err(|_| ApiError::internal())?;
    profile.password_reset_required = false;
    profile.failed_attempts = 0;
    profile.locked_until = None;
    tx.put_login_profile(&profile).await.map_err(store_error)?;
    tx.delete_console_sessions_of(&principal.identity.identity_id)
        .await
        .map_err(store_error)?;
    Ok("{}".into())
}

/// Checks a password against a stored hash on a blocking thread, at most two at a time in the
/// whole server (each costs 600,000 HMAC rounds): a flood of sign-ins queues here instead of
/// taking every core. A missing hash is checked against a decoy, so an unknown user name takes
/// as long as a wrong password.
pub async fn verify_slowly(stored: String, password: String) -> bool {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let permits = PERMITS.get_or_init(|| tokio::sync::Semaphore::new(2));
    let Ok(_permit) = permits.acquire().await else {
        return false;
    };
    let stored = if stored.is_empty() {
        DECOY
            .get_or_init(|| hash_password("decoy password that matches nothing").unwrap_or_default())
            .clone()
    } else {
        stored
    };
    tokio::task::spawn_blocking(move || verify_password(&stored, &password))
        .await
        .unwrap_or(false)
}

/// A sign-in's password outcome written back: failures counted (five in a row lock the
/// profile for five minutes), a success clears them. Runs in the sign-in's write transaction,
/// after the (slow) check ran outside any.
pub async fn record_sign_in(
    tx: &mut dyn Transaction,
    identity_id: &str,
    correct: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let Some(mut profile) = tx.login_profile(identity_id).await.map_err(store_error)? else {
        return Ok(());
    };
    if correct {
        if profile.failed_attempts == 0 && profile.locked_until.is_none() {
            return Ok(());
        }
        profile.failed_attempts = 0;
        profile.locked_until = None;
    } else {
        profile.failed_attempts += 1;
        if profile.failed_attempts >= MAX_FAILURES {
            profile.failed_attempts = 0;
            profile.locked_until = Some(render(now + chrono::Duration::minutes(LOCK_MINUTES)));
        }
    }
    tx.put_login_profile(&profile).await.map_err(store_error)
}

/// Whether a profile is locked at `now`.
pub fn locked(profile: &LoginProfileRecord, now: chrono::DateTime<chrono::Utc>) -> bool {
    let now = render(now);
    profile
        .locked_until
        .as_deref()
        .is_some_and(|until| until > now.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let stored = hash_password("Correct-Horse-9").expect("hash");
        assert!(stored.starts_with("pbkdf2-sha256$600000$"));
        assert!(!stored.contains("Correct-Horse-9"));
        assert!(verify_password(&stored, "Correct-Horse-9"));
        assert!(!verify_password(&stored, "Correct-Horse-8"));
        assert!(!verify_password("plain", "plain"));
        assert_ne!(stored, hash_password("Correct-Horse-9").expect("hash"), "salted");
    }

    #[test]
    fn the_policy_names_what_a_password_lacks() {
        assert!(check_policy("ada", "Correct-Horse-9").is_ok());
        for (password, says) in [
            ("Short-1", "12 to 128"),
            ("my-name-is-Ada-1", "user name"),
            ("alllowercaseletters", "three of"),
        ] {
            let error = check_policy("ada", password).expect_err(password);
            assert_eq!(error.kind, ErrorKind::PasswordPolicyViolation);
            assert!(error.message.contains(says), "{password}: {}", error.message);
        }
    }
}
