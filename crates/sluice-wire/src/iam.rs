//! Shapes of Sluice's identity API: IAM's operations with IAM's member names (PascalCase), sent
//! as AWS JSON 1.1 with `X-Amz-Target: SluiceIAM.<Op>`.

use serde::{Deserialize, Serialize};

use crate::{ApiError, Check};

const NAME_MAX: usize = 64;
const PATH_MAX: usize = 512;
const POLICY_MAX: usize = 6_144;
const TAGS_MAX: usize = 50;

/// IAM's user and policy names: letters, digits and `+=,.@_-`.
fn check_name(check: &mut Check, path: &str, name: &str) {
    check.string(path, name, 1, NAME_MAX);
    if !name
        .chars()
        .all(|character| character.is_ascii_alphanumeric() || "+=,.@_-".contains(character))
    {
        check.violation(format!(
            "Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern [\\w+=,.@-]+"
        ));
    }
}

fn check_path(check: &mut Check, path: &Option<String>) {
    if let Some(value) = path {
        check.string("Path", value, 1, PATH_MAX);
        if !value.starts_with('/') || !value.ends_with('/') {
            check.violation("Value at 'Path' failed to satisfy constraint: Member must begin and end with '/'".into());
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateUserInput {
    pub user_name: String,
    pub path: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl CreateUserInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "UserName", &self.user_name);
        check_path(&mut check, &self.path);
        check.count("Tags", self.tags.len(), 0, TAGS_MAX);
        for (index, tag) in self.tags.iter().enumerate() {
            check
                .string(&format!("Tags.{}.member.Key", index + 1), &tag.key, 1, 128)
                .string(&format!("Tags.{}.member.Value", index + 1), &tag.value, 0, 256);
        }
        check.finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub path: String,
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    pub create_date: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserOutput {
    pub user: User,
}

/// Inputs that name a user (GetUser without one names the caller).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserNameInput {
    pub user_name: Option<String>,
}

impl UserNameInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        if let Some(name) = &self.user_name {
            check_name(&mut check, "UserName", name);
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListUsersOutput {
    pub users: Vec<User>,
    pub is_truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKey {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    pub secret_access_key: String,
    pub create_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateAccessKeyOutput {
    pub access_key: AccessKey,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyMetadata {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    pub create_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_date: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAccessKeysOutput {
    pub access_key_metadata: Vec<AccessKeyMetadata>,
    pub is_truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyInput {
    pub user_name: Option<String>,
    pub access_key_id: String,
    /// UpdateAccessKey: `Active` or `Inactive`.
    pub status: Option<String>,
}

impl AccessKeyInput {
    pub fn check(&self, needs_status: bool) -> Result<(), ApiError> {
        let mut check = Check::new();
        if let Some(name) = &self.user_name {
            check_name(&mut check, "UserName", name);
        }
        check.string("AccessKeyId", &self.access_key_id, 16, 128);
        match (&self.status, needs_status) {
            (Some(status), true) if status == "Active" || status == "Inactive" => {}
            (_, true) => {
                check.violation(
                    "Value at 'Status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                        .into(),
                );
            }
            _ => {}
        }
        check.finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreatePolicyInput {
    pub policy_name: String,
    pub policy_document: String,
    pub path: Option<String>,
    pub description: Option<String>,
}

impl CreatePolicyInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "PolicyName", &self.policy_name);
        check.string("PolicyDocument", &self.policy_document, 1, POLICY_MAX);
        check_path(&mut check, &self.path);
        if let Some(description) = &self.description {
            check.string("Description", description, 0, 1000);
        }
        check.finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub policy_name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    pub default_version_id: String,
    pub attachment_count: i64,
    pub is_attachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub create_date: String,
    /// Sluice returns the document with the policy (IAM needs GetPolicyVersion for it).
    pub policy_document: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyOutput {
    pub policy: Policy,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyArnInput {
    pub policy_arn: String,
    pub user_name: Option<String>,
}

impl PolicyArnInput {
    pub fn check(&self, needs_user: bool) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.string("PolicyArn", &self.policy_arn, 20, 2048);
        match (&self.user_name, needs_user) {
            (Some(name), _) => check_name(&mut check, "UserName", name),
            (None, true) => {
                check.violation("Value at 'UserName' failed to satisfy constraint: Member must not be null".into());
            }
            (None, false) => {}
        }
        check.finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPoliciesInput {
    /// `All`, `AWS` (the policies Sluice ships) or `Local` (the account's).
    pub scope: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPoliciesOutput {
    pub policies: Vec<Policy>,
    pub is_truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    pub policy_name: String,
    pub policy_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAttachedUserPoliciesOutput {
    pub attached_policies: Vec<AttachedPolicy>,
    pub is_truncated: bool,
}

// ---- MFA devices and session credentials

fn check_code(check: &mut Check, path: &str, code: &str) {
    if code.len() != 6 || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        check.violation(format!(
            "Value at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern [\\d]{{6}}"
        ));
    }
}

fn check_serial(check: &mut Check, serial: &str) {
    check.string("SerialNumber", serial, 9, 256);
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVirtualMfaDeviceInput {
    #[serde(rename = "VirtualMFADeviceName")]
    pub virtual_mfa_device_name: String,
    pub path: Option<String>,
}

impl CreateVirtualMfaDeviceInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "VirtualMFADeviceName", &self.virtual_mfa_device_name);
        check_path(&mut check, &self.path);
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualMfaDevice {
    pub serial_number: String,
    /// The seed for an authenticator app, base32 (IAM returns it base64-encoded; Sluice returns
    /// the base32 text apps take).
    pub base32_string_seed: String,
    /// `otpauth://totp/...`, what the QR code encodes.
    pub otpauth_uri: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVirtualMfaDeviceOutput {
    #[serde(rename = "VirtualMFADevice")]
    pub virtual_mfa_device: VirtualMfaDevice,
}

/// EnableMFADevice and ResyncMFADevice: two consecutive codes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TwoCodesInput {
    pub user_name: Option<String>,
    pub serial_number: String,
    pub authentication_code1: String,
    pub authentication_code2: String,
}

impl TwoCodesInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        if let Some(name) = &self.user_name {
            check_name(&mut check, "UserName", name);
        }
        check_serial(&mut check, &self.serial_number);
        check_code(&mut check, "AuthenticationCode1", &self.authentication_code1);
        check_code(&mut check, "AuthenticationCode2", &self.authentication_code2);
        check.finish()
    }
}

/// DeactivateMFADevice (with a user) and DeleteVirtualMFADevice.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SerialNumberInput {
    pub user_name: Option<String>,
    pub serial_number: String,
}

impl SerialNumberInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        if let Some(name) = &self.user_name {
            check_name(&mut check, "UserName", name);
        }
        check_serial(&mut check, &self.serial_number);
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MfaDevice {
    pub user_name: String,
    pub serial_number: String,
    pub enable_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMfaDevicesOutput {
    #[serde(rename = "MFADevices")]
    pub mfa_devices: Vec<MfaDevice>,
    pub is_truncated: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionTokenInput {
    pub duration_seconds: Option<i64>,
    pub serial_number: Option<String>,
    pub token_code: Option<String>,
}

/// 15 minutes to 36 hours (one hour at most for the root identity).
pub const SESSION_SECONDS_MIN: i64 = 900;
pub const SESSION_SECONDS_MAX: i64 = 129_600;
pub const SESSION_SECONDS_DEFAULT: i64 = 43_200;

impl GetSessionTokenInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        if let Some(seconds) = self.duration_seconds
            && !(SESSION_SECONDS_MIN..=SESSION_SECONDS_MAX).contains(&seconds)
        {
            check.violation(format!(
                "Value at 'DurationSeconds' failed to satisfy constraint: Member must have value between {SESSION_SECONDS_MIN} and {SESSION_SECONDS_MAX}"
            ));
        }
        match (&self.serial_number, &self.token_code) {
            (Some(serial), Some(code)) => {
                check_serial(&mut check, serial);
                check_code(&mut check, "TokenCode", code);
            }
            (None, None) => {}
            _ => {
                check.violation("SerialNumber and TokenCode go together".into());
            }
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSessionTokenOutput {
    pub credentials: Credentials,
}

// ---- Groups

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupInput {
    pub group_name: String,
    pub path: Option<String>,
    /// AddUserToGroup, RemoveUserFromGroup.
    pub user_name: Option<String>,
    /// AttachGroupPolicy, DetachGroupPolicy.
    pub policy_arn: Option<String>,
}

impl GroupInput {
    pub fn check(&self, needs_user: bool, needs_policy: bool) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "GroupName", &self.group_name);
        check_path(&mut check, &self.path);
        match (&self.user_name, needs_user) {
            (Some(name), _) => check_name(&mut check, "UserName", name),
            (None, true) => {
                check.violation("Value at 'UserName' failed to satisfy constraint: Member must not be null".into());
            }
            (None, false) => {}
        }
        match (&self.policy_arn, needs_policy) {
            (Some(arn), _) => {
                check.string("PolicyArn", arn, 20, 2048);
            }
            (None, true) => {
                check.violation("Value at 'PolicyArn' failed to satisfy constraint: Member must not be null".into());
            }
            (None, false) => {}
        }
        check.finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub path: String,
    pub group_name: String,
    pub group_id: String,
    pub arn: String,
    pub create_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GroupOutput {
    pub group: Group,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetGroupOutput {
    pub group: Group,
    pub users: Vec<User>,
    pub is_truncated: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGroupsOutput {
    pub groups: Vec<Group>,
    pub is_truncated: bool,
}

// ---- SimulatePrincipalPolicy

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContextEntry {
    pub context_key_name: String,
    #[serde(default)]
    pub context_key_values: Vec<String>,
    pub context_key_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SimulatePrincipalPolicyInput {
    pub policy_source_arn: String,
    pub action_names: Vec<String>,
    #[serde(default)]
    pub resource_arns: Vec<String>,
    #[serde(default)]
    pub context_entries: Vec<ContextEntry>,
}

impl SimulatePrincipalPolicyInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check.string("PolicySourceArn", &self.policy_source_arn, 20, 2048);
        check.count("ActionNames", self.action_names.len(), 1, 100);
        for (index, action) in self.action_names.iter().enumerate() {
            check.string(&format!("ActionNames.{}", index + 1), action, 3, 128);
        }
        check.count("ResourceArns", self.resource_arns.len(), 0, 100);
        for (index, resource) in self.resource_arns.iter().enumerate() {
            check.string(&format!("ResourceArns.{}", index + 1), resource, 1, 2048);
        }
        check.count("ContextEntries", self.context_entries.len(), 0, 50);
        for (index, entry) in self.context_entries.iter().enumerate() {
            check.string(
                &format!("ContextEntries.{}.ContextKeyName", index + 1),
                &entry.context_key_name,
                5,
                256,
            );
            check.count(
                &format!("ContextEntries.{}.ContextKeyValues", index + 1),
                entry.context_key_values.len(),
                0,
                50,
            );
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MatchedStatement {
    pub source_policy_id: String,
}

/// Sluice's addition to IAM's result: every statement, whether it applied, and why not.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatementDetail {
    pub source_policy_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: String,
    pub applies: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvaluationResult {
    pub eval_action_name: String,
    pub eval_resource_name: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub eval_decision: String,
    pub matched_statements: Vec<MatchedStatement>,
    pub statement_details: Vec<StatementDetail>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SimulatePrincipalPolicyOutput {
    pub evaluation_results: Vec<EvaluationResult>,
    pub is_truncated: bool,
}

// ---- Account security settings (Sluice's own)

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSecuritySettings {
    /// Every human IAM user (one without the tag `sluice:service` = `true`) must call with
    /// MFA-bearing session credentials; without them only what sets MFA up is allowed.
    pub require_mfa: bool,
    /// Personal data in pipeline names, descriptions, tags and object names/ids is an error
    /// (the definition is not saved, the call refused) instead of a warning.
    #[serde(default)]
    pub guard_rails_as_errors: bool,
}

/// UpdateAccountSecuritySettings: what is given changes, the rest stays.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateAccountSecuritySettingsInput {
    pub require_mfa: Option<bool>,
    pub guard_rails_as_errors: Option<bool>,
}

// ---- Roles

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateRoleInput {
    pub role_name: String,
    pub assume_role_policy_document: String,
    pub path: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl CreateRoleInput {
    pub fn check(&self) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "RoleName", &self.role_name);
        check.string(
            "AssumeRolePolicyDocument",
            &self.assume_role_policy_document,
            1,
            POLICY_MAX,
        );
        check_path(&mut check, &self.path);
        if let Some(description) = &self.description {
            check.string("Description", description, 0, 1000);
        }
        if let Some(seconds) = self.max_session_duration
            && !(3_600..=43_200).contains(&seconds)
        {
            check.violation(
                "Value at 'MaxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
                    .into(),
            );
        }
        check.count("Tags", self.tags.len(), 0, TAGS_MAX);
        for (index, tag) in self.tags.iter().enumerate() {
            check
                .string(&format!("Tags.{}.member.Key", index + 1), &tag.key, 1, 128)
                .string(&format!("Tags.{}.member.Value", index + 1), &tag.value, 0, 256);
        }
        check.finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub path: String,
    pub role_name: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: String,
    pub assume_role_policy_document: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub max_session_duration: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleOutput {
    pub role: Role,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRolesOutput {
    pub roles: Vec<Role>,
    pub is_truncated: bool,
}

/// Inputs that name a role, and for some a policy (attach, detach) or a trust policy (update).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleInput {
    pub role_name: String,
    pub policy_arn: Option<String>,
    pub policy_document: Option<String>,
}

impl RoleInput {
    pub fn check(&self, needs_policy_arn: bool, needs_document: bool) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "RoleName", &self.role_name);
        match (&self.policy_arn, needs_policy_arn) {
            (Some(arn), _) => {
                check.string("PolicyArn", arn, 20, 2048);
            }
            (None, true) => {
                check.violation("Value at 'PolicyArn' failed to satisfy constraint: Member must not be null".into());
            }
            (None, false) => {}
        }
        match (&self.policy_document, needs_document) {
            (Some(document), _) => {
                check.string("PolicyDocument", document, 1, POLICY_MAX);
            }
            (None, true) => {
                check.violation(
                    "Value at 'PolicyDocument' failed to satisfy constraint: Member must not be null".into(),
                );
            }
            (None, false) => {}
        }
        check.finish()
    }
}

/// PutRoleSecret, ListRoleSecrets (name and value absent) and DeleteRoleSecret (no value).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleSecretInput {
    pub role_name: String,
    pub secret_name: Option<String>,
    pub secret_value: Option<String>,
}

/// At most this many bytes in one secret.
pub const ROLE_SECRET_MAX: usize = 16_384;

impl RoleSecretInput {
    pub fn check(&self, needs_name: bool, needs_value: bool) -> Result<(), ApiError> {
        let mut check = Check::new();
        check_name(&mut check, "RoleName", &self.role_name);
        match (&self.secret_name, needs_name) {
            (Some(name), _) => {
                check.string("SecretName", name, 1, 128);
                if !name
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || "._-".contains(character))
                {
                    check.violation(
                        "Value at 'SecretName' failed to satisfy constraint: Member must satisfy regular expression pattern [A-Za-z0-9._-]+"
                            .into(),
                    );
                }
            }
            (None, true) => {
                check.violation("Value at 'SecretName' failed to satisfy constraint: Member must not be null".into());
            }
            (None, false) => {}
        }
        match (&self.secret_value, needs_value) {
            (Some(value), _) => {
                // Never echoes the value: only its size is checked and named.
                if value.is_empty() || value.len() > ROLE_SECRET_MAX {
                    check.violation(format!(
                        "Value at 'SecretValue' failed to satisfy constraint: Member must have length between 1 and {ROLE_SECRET_MAX}"
                    ));
                }
            }
            (None, true) => {
                check.violation("Value at 'SecretValue' failed to satisfy constraint: Member must not be null".into());
            }
            (None, false) => {}
        }
        check.finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleSecret {
    pub secret_name: String,
    pub create_date: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListRoleSecretsOutput {
    pub secrets: Vec<RoleSecret>,
}
