//! Persistence for Sluice behind one `Store` trait: SQLite (embedded, the default) and
//! PostgreSQL (several servers), one implementation of the SQL (`sql/`) included by each, both
//! held to one conformance suite (`store_conformance_suite!`).
//!
//! Every API request runs in one `Transaction`; dropping it without `commit` rolls back, so a
//! failed request leaves nothing half-written. This is the only crate that contains SQL. It never
//! sees plaintext secrets: access-key secrets arrive sealed by the caller.

mod conformance;
mod records;

pub use records::{DEFINITION_FORMAT_PLAINTEXT, DEFINITION_FORMAT_SEALED, decode_definition, encode_definition};
mod postgres;
mod sqlite;

use async_trait::async_trait;
use sluice_core::runtime::{Changes, ComponentRun, State};

pub use postgres::PostgresStore;
pub use records::{
    AccessKeyMetadata, AccessKeyRecord, AuditAttribute, AuditDigestRecord, AuditFileRecord, AuditQuery, AuditRecord,
    ClassificationJobRecord, FindingRecord, GroupRecord, IdentityRecord, LoginProfileRecord, MfaDeviceRecord,
    NewPipeline, NotificationRecord, PipelineRecord, PipelineSummary, PolicyRecord, RoleRecord, SessionFacts,
    StoredDefinition, Tag, TaskBinding, UserRecord,
};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Starts a transaction that may write.
    async fn begin(&self) -> Result<Box<dyn Transaction>>;
    /// Starts a transaction that only reads: it keeps the snapshot of its first read and does not wait for, nor
    /// hold up, writers (long reads such as audit verification). Writing through it fails.
    async fn begin_read(&self) -> Result<Box<dyn Transaction>>;
}

/// Everything a request can read or change, inside one transaction. A statement that fails
/// ends what the transaction can do (PostgreSQL aborts it; SQLite would go on): callers return
/// the error and drop the transaction.
#[async_trait]
pub trait Transaction: Send {
    async fn count_identities(&mut self) -> Result<i64>;
    /// The account of the root identity, once bootstrap created it.
    async fn root_account_id(&mut self) -> Result<Option<String>>;
    async fn insert_identity(&mut self, identity: &IdentityRecord, created_at: &str) -> Result<()>;
    async fn insert_access_key(
        &mut self,
        access_key_id: &str,
        identity_id: &str,
        sealed_secret: &[u8],
        created_at: &str,
    ) -> Result<()>;
    async fn access_key(&mut self, access_key_id: &str) -> Result<Option<AccessKeyRecord>>;
    async fn touch_access_key(&mut self, access_key_id: &str, used_at: &str) -> Result<()>;
    /// Removes every access key whose id starts with `prefix`; returns how many.
    async fn delete_access_keys_with_prefix(&mut self, prefix: &str) -> Result<u64>;

    // ---- IAM users, keys, policies
    async fn insert_user(&mut self, user: &UserRecord) -> Result<()>;
    async fn user(&mut self, account_id: &str, name: &str) -> Result<Option<UserRecord>>;
    async fn users(&mut self, account_id: &str) -> Result<Vec<UserRecord>>;
    /// Removes a user's identity (never the root's); its keys and attachments must be gone.
    async fn delete_identity(&mut self, identity_id: &str) -> Result<()>;
    async fn access_keys_of(&mut self, identity_id: &str) -> Result<Vec<AccessKeyMetadata>>;
    async fn set_access_key_status(&mut self, access_key_id: &str, status: &str) -> Result<bool>;
    async fn delete_access_key(&mut self, access_key_id: &str) -> Result<bool>;
    async fn insert_policy(&mut self, policy: &PolicyRecord) -> Result<()>;
    async fn policy(&mut self, policy_arn: &str) -> Result<Option<PolicyRecord>>;
    async fn policies(&mut self, account_id: &str) -> Result<Vec<PolicyRecord>>;
    async fn delete_policy(&mut self, policy_arn: &str) -> Result<()>;
    async fn attach_policy(&mut self, identity_id: &str, policy_arn: &str) -> Result<()>;
    async fn detach_policy(&mut self, identity_id: &str, policy_arn: &str) -> Result<bool>;
    async fn attached_policies(&mut self, identity_id: &str) -> Result<Vec<String>>;
    async fn attachment_count(&mut self, policy_arn: &str) -> Result<i64>;
    /// Session credentials: an access key with a session token (hash), expiry and MFA time.
    async fn insert_session_key(
        &mut self,
        access_key_id: &str,
        identity_id: &str,
        sealed_secret: &[u8],
        created_at: &str,
        session: &SessionFacts,
    ) -> Result<()>;
    async fn delete_expired_sessions(&mut self, now: &str) -> Result<u64>;
    async fn delete_sessions_of(&mut self, identity_id: &str) -> Result<u64>;
    /// Ends an identity's console sessions (sessions got by signing in, not with a key).
    async fn delete_console_sessions_of(&mut self, identity_id: &str) -> Result<u64>;
    /// Ends the sessions got with a long-term key.
    async fn delete_sessions_from(&mut self, parent_key_id: &str) -> Result<u64>;
    /// Ends the role sessions handed to an attempt.
    async fn delete_task_sessions(&mut self, pipeline_id: &str, attempt_id: &str) -> Result<u64>;
    async fn insert_role(&mut self, role: &RoleRecord) -> Result<()>;
    async fn role(&mut self, account_id: &str, name: &str) -> Result<Option<RoleRecord>>;
    async fn roles(&mut self, account_id: &str) -> Result<Vec<RoleRecord>>;
    async fn update_trust_policy(&mut self, identity_id: &str, trust_policy: &str) -> Result<()>;
    /// Removes a role; its attachments must be gone (its sessions and secrets go with it).
    async fn delete_role(&mut self, identity_id: &str) -> Result<()>;
    /// Adds or replaces a role's secret (sealed by the server).
    async fn put_role_secret(
        &mut self,
        identity_id: &str,
        name: &str,
        sealed_value: &[u8],
        created_at: &str,
    ) -> Result<()>;
    /// A role's secrets: `(name, sealed value, created_at)` by name.
    async fn role_secrets(&mut self, identity_id: &str) -> Result<Vec<(String, Vec<u8>, String)>>;
    async fn delete_role_secret(&mut self, identity_id: &str, name: &str) -> Result<bool>;
    /// Replaces a role secret's sealed value only if it is still `expected` (re-wrapping must
    /// not bring back a secret deleted or replaced meanwhile).
    async fn reseal_role_secret(
        &mut self,
        identity_id: &str,
        name: &str,
        expected: &[u8],
        resealed: &[u8],
    ) -> Result<bool>;
    /// Every role secret `(identity_id, name, sealed value)`, for re-encryption.
    async fn all_role_secrets(&mut self) -> Result<Vec<(String, String, Vec<u8>)>>;

    /// The pipeline and attempt a task id was handed out for, while it runs, in this account.
    async fn task_attempt(&mut self, account_id: &str, task_id: &str) -> Result<Option<(String, String)>>;
    async fn insert_finding(&mut self, finding: &FindingRecord) -> Result<()>;
    /// An account's findings, newest first, optionally of one pipeline and at least `min_severity`,
    /// after the `(created_at, finding_id)` a previous page ended with.
    async fn findings(
        &mut self,
        account_id: &str,
        pipeline_id: Option<&str>,
        min_severity: i64,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<FindingRecord>>;
    async fn finding(&mut self, finding_id: &str) -> Result<Option<FindingRecord>>;
    /// Takes or renews the lease `name` for `holder` until `until`, if it is free, expired at
    /// `now`, or already `holder`'s; its epoch (a new holder gets the next one), or `None` when
    /// another holds it.
    async fn acquire_lease(&mut self, name: &str, holder: &str, now: &str, until: &str) -> Result<Option<i64>>;
    /// Whether `holder` holds lease `name` at `epoch`, unexpired at `now` (the fence work done
    /// under a lease checks in its own transaction).
    async fn holds_lease(&mut self, name: &str, holder: &str, epoch: i64, now: &str) -> Result<bool>;
    /// Creates or replaces a user's login profile.
    async fn put_login_profile(&mut self, profile: &LoginProfileRecord) -> Result<()>;
    async fn login_profile(&mut self, identity_id: &str) -> Result<Option<LoginProfileRecord>>;
    async fn delete_login_profile(&mut self, identity_id: &str) -> Result<bool>;
    async fn insert_classification_job(&mut self, job: &ClassificationJobRecord) -> Result<()>;
    /// Writes every column of an existing job but its account, pipeline, name and creation.
    async fn update_classification_job(&mut self, job: &ClassificationJobRecord) -> Result<()>;
    async fn classification_job(&mut self, job_id: &str) -> Result<Option<ClassificationJobRecord>>;
    /// An account's jobs (optionally of one pipeline), newest first, at most `limit`, after the
    /// `(created_at, job_id)` a previous page ended with.
    async fn classification_jobs(
        &mut self,
        account_id: &str,
        pipeline_id: Option<&str>,
        before: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ClassificationJobRecord>>;
    /// Jobs that should run at `now` and that no server holds: IDLE ones whose next run is due,
    /// and RUNNING ones whose claim ran out (their server stopped).
    async fn due_classification_jobs(&mut self, now: &str, limit: i64) -> Result<Vec<String>>;
    /// Takes a job for `owner` until `until` if no one else holds it at `now` (or `owner`
    /// does) and it is still to run (RUNNING, or IDLE and due); whether it was taken.
    async fn claim_classification_job(&mut self, job_id: &str, owner: &str, until: &str, now: &str) -> Result<bool>;
    async fn insert_mfa_device(&mut self, device: &MfaDeviceRecord) -> Result<()>;
    async fn mfa_device(&mut self, serial_number: &str) -> Result<Option<MfaDeviceRecord>>;
    async fn mfa_devices_of(&mut self, identity_id: &str) -> Result<Vec<MfaDeviceRecord>>;
    /// Writes a device's owner, last accepted step and enablement time.
    async fn update_mfa_device(&mut self, device: &MfaDeviceRecord) -> Result<()>;
    async fn delete_mfa_device(&mut self, serial_number: &str) -> Result<()>;
    async fn insert_group(&mut self, group: &GroupRecord) -> Result<()>;
    async fn group(&mut self, account_id: &str, name: &str) -> Result<Option<GroupRecord>>;
    async fn groups(&mut self, account_id: &str) -> Result<Vec<GroupRecord>>;
    async fn groups_of(&mut self, identity_id: &str) -> Result<Vec<GroupRecord>>;
    /// Removes a group; its members and attachments must be gone.
    async fn delete_group(&mut self, group_id: &str) -> Result<()>;
    async fn add_member(&mut self, group_id: &str, identity_id: &str) -> Result<()>;
    async fn remove_member(&mut self, group_id: &str, identity_id: &str) -> Result<bool>;
    async fn members(&mut self, group_id: &str) -> Result<Vec<UserRecord>>;
    async fn attach_group_policy(&mut self, group_id: &str, policy_arn: &str) -> Result<()>;
    async fn detach_group_policy(&mut self, group_id: &str, policy_arn: &str) -> Result<bool>;
    async fn group_policies(&mut self, group_id: &str) -> Result<Vec<String>>;
    /// Whether the account requires MFA of its human users.
    async fn require_mfa(&mut self, account_id: &str) -> Result<bool>;
    async fn set_require_mfa(&mut self, account_id: &str, required: bool, updated_at: &str) -> Result<()>;
    /// Whether personal data in names, descriptions and tags is an error (not a warning).
    async fn guard_rails_as_errors(&mut self, account_id: &str) -> Result<bool>;
    async fn set_guard_rails_as_errors(&mut self, account_id: &str, on: bool, updated_at: &str) -> Result<()>;

    async fn find_live_pipeline(
        &mut self,
        creator_identity_id: &str,
        name: &str,
        unique_id: &str,
    ) -> Result<Option<PipelineRecord>>;
    async fn insert_pipeline(&mut self, pipeline: &NewPipeline) -> Result<()>;
    /// A pipeline by id, deleted ones included (`deleted_at` set): callers tell "deleted" from
    /// "never existed".
    async fn pipeline(&mut self, pipeline_id: &str) -> Result<Option<PipelineRecord>>;
    async fn count_live_pipelines(&mut self, account_id: &str) -> Result<i64>;
    /// Live pipelines of an account in creation order, after position `after_seq`.
    async fn list_pipelines(&mut self, account_id: &str, after_seq: i64, limit: i64) -> Result<Vec<PipelineSummary>>;
    /// Keeps a tombstone and drops the definitions, tags and data key (crypto-shredding).
    async fn delete_pipeline(&mut self, pipeline_id: &str, deleted_at: &str) -> Result<()>;

    async fn tags(&mut self, pipeline_id: &str) -> Result<Vec<Tag>>;
    async fn replace_tags(&mut self, pipeline_id: &str, tags: &[Tag]) -> Result<()>;

    /// Stores version `version`, which must be the pipeline's latest plus one (the caller seals
    /// the body for that version), and makes it the latest.
    async fn put_definition(
        &mut self,
        pipeline_id: &str,
        version: i64,
        definition: &StoredDefinition,
        created_at: &str,
    ) -> Result<()>;
    async fn definition(&mut self, pipeline_id: &str, version: i64) -> Result<Option<StoredDefinition>>;
    /// Every stored version as `(pipeline_id, version, format_version)`, for re-encryption.
    async fn definition_versions(&mut self) -> Result<Vec<(String, i64, i64)>>;
    async fn replace_definition_body(
        &mut self,
        pipeline_id: &str,
        version: i64,
        definition: &StoredDefinition,
    ) -> Result<()>;

    /// The pipeline's data key, wrapped by the KEK.
    async fn insert_data_key(&mut self, pipeline_id: &str, wrapped: &[u8], created_at: &str) -> Result<()>;
    async fn data_key(&mut self, pipeline_id: &str) -> Result<Option<Vec<u8>>>;
    async fn data_keys(&mut self) -> Result<Vec<(String, Vec<u8>)>>;
    async fn replace_data_key(&mut self, pipeline_id: &str, wrapped: &[u8]) -> Result<()>;
    /// Every access key's sealed secret, for re-encryption.
    async fn access_key_secrets(&mut self) -> Result<Vec<(String, Vec<u8>)>>;
    async fn replace_access_key_secret(&mut self, access_key_id: &str, sealed_secret: &[u8]) -> Result<()>;
    /// Every MFA device's sealed seed `(serial_number, sealed)`, for re-encryption.
    async fn mfa_seeds(&mut self) -> Result<Vec<(String, Vec<u8>)>>;
    async fn replace_mfa_seed(&mut self, serial_number: &str, sealed_seed: &[u8]) -> Result<()>;

    /// The newest link of the audit chain: `(seq, hash)`, the pruning anchor, or `(0, genesis)`.
    async fn last_audit_link(&mut self) -> Result<(i64, String)>;
    async fn append_audit(&mut self, record: &AuditRecord) -> Result<()>;
    /// Many records in few statements: the group-commit path for service events.
    async fn append_audit_batch(&mut self, records: &[AuditRecord]) -> Result<()>;
    /// Records with `seq > after_seq`, oldest first.
    async fn audit_records_after(&mut self, after_seq: i64, limit: i64) -> Result<Vec<AuditRecord>>;
    async fn lookup_audit(&mut self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;
    /// `(seq, hash)` of the anchor left by retention, if any record was ever pruned.
    async fn audit_anchor(&mut self) -> Result<Option<(i64, String)>>;
    async fn last_delivered_seq(&mut self) -> Result<i64>;
    async fn insert_audit_file(&mut self, file: &AuditFileRecord, delivered_at: &str) -> Result<()>;
    async fn audit_files(&mut self) -> Result<Vec<AuditFileRecord>>;
    async fn insert_audit_digest(&mut self, digest: &AuditDigestRecord, file_ids: &[i64]) -> Result<i64>;
    async fn audit_digests(&mut self) -> Result<Vec<AuditDigestRecord>>;
    /// Deletes delivered and digested records and files older than `before_time`, keeping the
    /// chain verifiable: the last deleted record's link becomes the anchor. Returns the file
    /// keys whose files the caller should remove.
    async fn prune_audit(&mut self, before_time: &str) -> Result<Vec<String>>;

    /// The runtime state of a pipeline (instances, attempts, cursors), `None` if there is no
    /// such pipeline.
    async fn runtime(&mut self, pipeline_id: &str) -> Result<Option<State>>;
    /// Part of the runtime state: the pipeline's facts and the named instances and attempts
    /// that exist (no component runs), for calls that touch a few rows. `None`: no such pipeline.
    async fn runtime_part(
        &mut self,
        pipeline_id: &str,
        instance_ids: &[String],
        attempt_ids: &[String],
    ) -> Result<Option<State>>;
    /// The component cursors and health of a pipeline, without its instances.
    async fn component_runs(&mut self, pipeline_id: &str) -> Result<Vec<ComponentRun>>;
    /// Writes what the planner or a command changed.
    async fn save_runtime(&mut self, pipeline_id: &str, changes: &Changes) -> Result<()>;
    /// Live pipelines whose scheduler wake-up time has come, soonest first.
    async fn due_pipelines(&mut self, now: &str, limit: i64) -> Result<Vec<String>>;
    /// The oldest attempt waiting in `queue` and available at `now`, of an active pipeline of
    /// the account: `(pipeline_id, attempt_id)`.
    async fn next_task(&mut self, account_id: &str, queue: &str, now: &str) -> Result<Option<(String, String)>>;
    /// The pipeline holding a handed-out task.
    async fn task_pipeline(&mut self, task_id: &str) -> Result<Option<String>>;
    /// ReportTaskProgress in one statement: a RUNNING attempt handed out as `task_id`, of a live
    /// pipeline of the account, is marked acknowledged with its progress time. Returns the
    /// pipeline and the attempt's status (`None`: no such task).
    async fn report_task_progress(
        &mut self,
        account_id: &str,
        task_id: &str,
        now: &str,
    ) -> Result<Option<(String, String)>>;
    /// A runner's report on an attempt, sealed by the caller.
    async fn put_attempt_report(&mut self, pipeline_id: &str, attempt_id: &str, sealed: &[u8]) -> Result<()>;
    async fn attempt_reports(&mut self, pipeline_id: &str) -> Result<Vec<(String, Vec<u8>)>>;
    async fn insert_notification(&mut self, notification: &NotificationRecord) -> Result<()>;
    /// Undelivered notifications due at `now` with fewer than `max_attempts` tries, oldest first.
    async fn due_notifications(&mut self, now: &str, max_attempts: i64, limit: i64) -> Result<Vec<NotificationRecord>>;
    /// Records a delivery (`delivered_at`) or a failed try (`error`, and when to try again).
    async fn update_notification(
        &mut self,
        notification_id: &str,
        delivered_at: Option<&str>,
        error: Option<&str>,
        next_attempt_at: &str,
    ) -> Result<()>;
    async fn set_active_version(&mut self, pipeline_id: &str, version: i64) -> Result<()>;

    async fn commit(self: Box<Self>) -> Result<()>;
}

/// The `previous_hash` of the first record ever written.
pub const AUDIT_GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
