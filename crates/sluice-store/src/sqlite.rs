//! The embedded SQLite backend: one file in the data directory, WAL mode. The `Transaction`
//! implementation is the shared one (`sql/`), with SQLite's placeholders as written.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{Result, Store, Transaction};

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        // IMMEDIATE takes the write lock up front: two deferred transactions that both read and
        // then write would otherwise deadlock into SQLITE_BUSY.
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(shared::SqlTransaction { tx }))
    }

    async fn begin_read(&self) -> Result<Box<dyn Transaction>> {
        // Deferred: a reader in WAL mode reads its snapshot beside the one writer.
        let tx = self.pool.begin_with("BEGIN DEFERRED").await?;
        Ok(Box::new(shared::SqlTransaction { tx }))
    }
}

mod shared {
    //! The shared implementation, on SQLite.

    use async_trait::async_trait;
    use sluice_core::runtime::{Changes, ComponentRun, State};
    use sqlx::Row;

    use crate::{
        AUDIT_GENESIS_HASH, AccessKeyMetadata, AccessKeyRecord, AuditAttribute, AuditDigestRecord, AuditFileRecord,
        AuditQuery, AuditRecord, GroupRecord, IdentityRecord, MfaDeviceRecord, NewPipeline, NotificationRecord,
        PipelineRecord, PipelineSummary, PolicyRecord, Result, StoreError, StoredDefinition, Tag, Transaction,
        UserRecord,
    };

    pub(crate) type Db = sqlx::Sqlite;
    pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
    pub(crate) type Conn = sqlx::SqliteConnection;

    /// SQL as written (SQLite's `?` placeholders).
    pub(crate) fn q(sql: &'static str) -> &'static str {
        sql
    }

    pub(crate) fn dynamic(sql: String) -> String {
        sql
    }

    /// What orders a table's rows as they were first inserted.
    pub(crate) const INSERTION_ORDER: &str = "rowid";

    /// (One writer at a time: nothing to skip.)
    pub(crate) const CLAIM_LOCK: &str = "";

    mod iam {
        include!("sql/iam.rs");
    }
    mod runtime {
        include!("sql/runtime.rs");
    }
    include!("sql/transaction.rs");
}
