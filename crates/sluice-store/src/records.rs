//! What the store reads and writes.

use sluice_core::PipelineDefinition;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub identity_id: String,
    pub account_id: String,
    /// `Root` or `IAMUser` (CloudTrail's userIdentity types).
    pub kind: String,
    pub name: String,
    pub arn: String,
}

/// A sensitive-data finding about one output object of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    pub finding_id: String,
    pub account_id: String,
    pub pipeline_id: String,
    pub attempt_id: String,
    pub created_at: String,
    /// 1 Low, 2 Medium, 3 High.
    pub severity: i64,
    pub finding_type: String,
    /// The finding's JSON, sealed with the pipeline's data key.
    pub sealed_body: Vec<u8>,
}

/// A user's console password (IAM's login profile; see migration 0015).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProfileRecord {
    pub identity_id: String,
    /// `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64), never the password.
    pub password_hash: String,
    pub created_at: String,
    pub password_reset_required: bool,
    /// Failed sign-ins in a row.
    pub failed_attempts: i64,
    pub locked_until: Option<String>,
}

/// A classification job (see migration 0014). Times are `YYYY-MM-DDTHH:MM:SS`, UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassificationJobRecord {
    pub job_id: String,
    pub account_id: String,
    pub pipeline_id: String,
    pub name: String,
    /// `ONE_TIME` or `SCHEDULED`.
    pub job_type: String,
    /// Macie's `scheduleFrequency` as JSON (scheduled jobs only).
    pub schedule: Option<String>,
    /// RUNNING, IDLE, USER_PAUSED, CANCELLED, COMPLETE.
    pub status: String,
    pub created_at: String,
    pub next_run_at: Option<String>,
    pub last_run_started_at: Option<String>,
    pub last_run_finished_at: Option<String>,
    pub runs: i64,
    /// Of the last (or the current) run.
    pub objects_scanned: i64,
    pub bytes_scanned: i64,
    pub findings: i64,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<String>,
    /// Locations, problems and the incremental watermark, sealed with the pipeline's data key.
    pub sealed_state: Vec<u8>,
}

/// The attempt a role session was handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskBinding {
    pub pipeline_id: String,
    pub attempt_id: String,
    /// The attempt's status when read back (`None` when writing, or when the attempt is gone).
    pub attempt_status: Option<String>,
}

/// A role: policies a task (or the service) acts with, and the trust policy saying which
/// pipelines may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    /// Kind `Role`, ARN `arn:aws:iam::<account>:role<path><name>`.
    pub identity: IdentityRecord,
    pub path: String,
    pub tags: Vec<(String, String)>,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_seconds: i64,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub identity: IdentityRecord,
    pub sealed_secret: Vec<u8>,
    pub status: String,
    /// Session credentials: the SHA-256 (hex) of the session token, when they expire, and when
    /// MFA was proven for them (if it was).
    pub session: Option<SessionFacts>,
    /// When the key was last used, as last recorded (`YYYY-MM-DDTHH:MM:SS`).
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub token_hash: String,
    pub expires_at: String,
    pub mfa_at: Option<String>,
    /// The long-term key the session was got with.
    pub parent_key_id: Option<String>,
    /// A role session handed to a task: the attempt it ends with.
    pub task: Option<TaskBinding>,
}

/// A virtual MFA device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDeviceRecord {
    pub serial_number: String,
    pub account_id: String,
    pub identity_id: Option<String>,
    pub sealed_seed: Vec<u8>,
    pub last_step: i64,
    pub enabled_at: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct NewPipeline {
    pub pipeline_id: String,
    pub account_id: String,
    pub creator_identity_id: String,
    pub name: String,
    pub unique_id: String,
    pub description: Option<String>,
    pub state: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRecord {
    pub seq: i64,
    pub pipeline_id: String,
    pub account_id: String,
    pub creator_identity_id: String,
    pub name: String,
    pub unique_id: String,
    pub description: Option<String>,
    pub state: String,
    pub created_at: String,
    pub deleted_at: Option<String>,
    pub latest_version: i64,
    pub active_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSummary {
    pub seq: i64,
    pub pipeline_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A stored definition version: opaque bytes whose `format_version` says how to read them
/// (the store neither encrypts nor decrypts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDefinition {
    pub format_version: i64,
    pub body: Vec<u8>,
    /// Whether validation found errors when it was saved (it cannot be activated then).
    pub errored: bool,
}

/// Format 1: the model serialized with serde_json, in plaintext (before encryption at rest).
pub const DEFINITION_FORMAT_PLAINTEXT: i64 = 1;
/// Format 2: format 1's JSON sealed with the pipeline's data key.
pub const DEFINITION_FORMAT_SEALED: i64 = 2;

pub fn encode_definition(definition: &PipelineDefinition) -> Vec<u8> {
    serde_json::to_vec(definition).unwrap_or_default()
}

/// Reads format-1 JSON (also what a format-2 body decrypts to).
pub fn decode_definition(json: &[u8]) -> Result<PipelineDefinition, String> {
    serde_json::from_slice(json).map_err(|error| format!("definition body does not parse: {error}"))
}

/// One audit record as stored: the CloudTrail JSON and its link in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub event_id: String,
    pub event_time: String,
    pub event_name: String,
    pub event_source: String,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type: Option<String>,
    pub read_only: bool,
    pub record: String,
    pub previous_hash: String,
    pub hash: String,
}

/// A LookupEvents query: at most one attribute, a time range, newest first, paged by sequence.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub attribute: Option<(AuditAttribute, String)>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    /// Only records with a sequence number below this (the page marker).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAttribute {
    EventId,
    EventName,
    ReadOnly,
    Username,
    ResourceType,
    ResourceName,
    EventSource,
    AccessKeyId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFileRecord {
    pub file_id: i64,
    pub object_key: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub sha256: String,
    pub oldest_event_time: String,
    pub newest_event_time: String,
    pub digest_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDigestRecord {
    pub digest_id: i64,
    pub object_key: String,
    pub start_time: String,
    pub end_time: String,
    pub sha256: String,
    pub signature: String,
}

/// A notification in the outbox (`notifications`); `sealed` holds subject and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub notification_id: String,
    pub pipeline_id: String,
    pub topic_arn: String,
    pub sealed: Vec<u8>,
    pub created_at: String,
    pub attempts: i64,
    pub next_attempt_at: String,
}

/// An IAM user: its identity, path, tags and creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub identity: IdentityRecord,
    pub path: String,
    pub tags: Vec<(String, String)>,
    pub created_at: String,
}

/// An access key without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyMetadata {
    pub access_key_id: String,
    pub status: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// A customer-managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    pub policy_arn: String,
    pub account_id: String,
    pub policy_name: String,
    pub policy_id: String,
    pub path: String,
    pub document: String,
    pub description: Option<String>,
    pub created_at: String,
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub group_id: String,
    pub account_id: String,
    pub group_name: String,
    pub path: String,
    pub arn: String,
    pub created_at: String,
}
