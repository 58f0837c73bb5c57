//! Persistence for Sluice behind one `Store` trait: SQLite (embedded, the default) today,
//! PostgreSQL later, both held to one conformance suite (`store_conformance_suite!`).
//!
//! Every API request runs in one `Transaction`; dropping it without `commit` rolls back, so a
//! failed request leaves nothing half-written. This is the only crate that contains SQL. It never
//! sees plaintext secrets: access-key secrets arrive sealed by the caller.

mod conformance;
mod records;
mod sqlite;

use async_trait::async_trait;

pub use records::{
    AccessKeyRecord, DefinitionRecord, IdentityRecord, NewPipeline, PipelineRecord,
    PipelineSummary, Tag,
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
}

/// Everything a request can read or change, inside one transaction.
#[async_trait]
pub trait Transaction: Send {
    async fn count_identities(&mut self) -> Result<i64>;
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
    async fn list_pipelines(
        &mut self,
        account_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<PipelineSummary>>;
    /// Keeps a tombstone and drops the definitions and tags.
    async fn delete_pipeline(&mut self, pipeline_id: &str, deleted_at: &str) -> Result<()>;

    async fn tags(&mut self, pipeline_id: &str) -> Result<Vec<Tag>>;
    async fn replace_tags(&mut self, pipeline_id: &str, tags: &[Tag]) -> Result<()>;

    /// Stores a new version and makes it the latest; returns its number.
    async fn put_definition(
        &mut self,
        pipeline_id: &str,
        definition: &DefinitionRecord,
        created_at: &str,
    ) -> Result<i64>;
    async fn definition(
        &mut self,
        pipeline_id: &str,
        version: i64,
    ) -> Result<Option<DefinitionRecord>>;

    async fn commit(self: Box<Self>) -> Result<()>;
}
