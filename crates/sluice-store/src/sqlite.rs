//! The embedded SQLite backend: one file in the data directory, WAL mode.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};

use crate::records::{DEFINITION_FORMAT_VERSION, decode_definition, encode_definition};
use crate::{
    AccessKeyRecord, DefinitionRecord, IdentityRecord, NewPipeline, PipelineRecord,
    PipelineSummary, Result, Store, StoreError, Tag, Transaction,
};

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
        Ok(Box::new(SqliteTransaction { tx }))
    }
}

struct SqliteTransaction {
    tx: sqlx::Transaction<'static, Sqlite>,
}

fn pipeline_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<PipelineRecord> {
    Ok(PipelineRecord {
        seq: row.try_get("seq")?,
        pipeline_id: row.try_get("pipeline_id")?,
        account_id: row.try_get("account_id")?,
        creator_identity_id: row.try_get("creator_identity_id")?,
        name: row.try_get("name")?,
        unique_id: row.try_get("unique_id")?,
        description: row.try_get("description")?,
        state: row.try_get("state")?,
        created_at: row.try_get("created_at")?,
        deleted_at: row.try_get("deleted_at")?,
        latest_version: row.try_get("latest_version")?,
        active_version: row.try_get("active_version")?,
    })
}

/// sqlx 0.9 takes only static SQL, so the shared column list is spliced in at compile time.
macro_rules! select_pipelines {
    ($condition:literal) => {
        concat!(
            "SELECT seq, pipeline_id, account_id, creator_identity_id, name, unique_id, description, state, created_at, deleted_at, latest_version, active_version FROM pipelines WHERE ",
            $condition
        )
    };
}

#[async_trait]
impl Transaction for SqliteTransaction {
    async fn count_identities(&mut self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM identities")
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn insert_identity(&mut self, identity: &IdentityRecord, created_at: &str) -> Result<()> {
        sqlx::query("INSERT INTO identities (identity_id, account_id, kind, name, arn, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&identity.identity_id)
            .bind(&identity.account_id)
            .bind(&identity.kind)
            .bind(&identity.name)
            .bind(&identity.arn)
            .bind(created_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn insert_access_key(
        &mut self,
        access_key_id: &str,
        identity_id: &str,
        sealed_secret: &[u8],
        created_at: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO access_keys (access_key_id, identity_id, sealed_secret, status, created_at) VALUES (?, ?, ?, 'Active', ?)")
            .bind(access_key_id)
            .bind(identity_id)
            .bind(sealed_secret)
            .bind(created_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn access_key(&mut self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        let row = sqlx::query(
            "SELECT k.access_key_id, k.sealed_secret, k.status, i.identity_id, i.account_id, i.kind, i.name, i.arn
             FROM access_keys k JOIN identities i ON i.identity_id = k.identity_id WHERE k.access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AccessKeyRecord {
            access_key_id: row.try_get("access_key_id")?,
            sealed_secret: row.try_get("sealed_secret")?,
            status: row.try_get("status")?,
            identity: IdentityRecord {
                identity_id: row.try_get("identity_id")?,
                account_id: row.try_get("account_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                arn: row.try_get("arn")?,
            },
        }))
    }

    async fn touch_access_key(&mut self, access_key_id: &str, used_at: &str) -> Result<()> {
        sqlx::query("UPDATE access_keys SET last_used_at = ? WHERE access_key_id = ?")
            .bind(used_at)
            .bind(access_key_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn find_live_pipeline(
        &mut self,
        creator_identity_id: &str,
        name: &str,
        unique_id: &str,
    ) -> Result<Option<PipelineRecord>> {
        let query = select_pipelines!(
            "creator_identity_id = ? AND name = ? AND unique_id = ? AND deleted_at IS NULL"
        );
        let row = sqlx::query(query)
            .bind(creator_identity_id)
            .bind(name)
            .bind(unique_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(pipeline_from_row).transpose()
    }

    async fn insert_pipeline(&mut self, pipeline: &NewPipeline) -> Result<()> {
        sqlx::query(
            "INSERT INTO pipelines (pipeline_id, account_id, creator_identity_id, name, unique_id, description, state, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&pipeline.pipeline_id)
        .bind(&pipeline.account_id)
        .bind(&pipeline.creator_identity_id)
        .bind(&pipeline.name)
        .bind(&pipeline.unique_id)
        .bind(&pipeline.description)
        .bind(&pipeline.state)
        .bind(&pipeline.created_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn pipeline(&mut self, pipeline_id: &str) -> Result<Option<PipelineRecord>> {
        let query = select_pipelines!("pipeline_id = ?");
        let row = sqlx::query(query)
            .bind(pipeline_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(pipeline_from_row).transpose()
    }

    async fn count_live_pipelines(&mut self, account_id: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM pipelines WHERE account_id = ? AND deleted_at IS NULL",
        )
        .bind(account_id)
        .fetch_one(&mut *self.tx)
        .await?)
    }

    async fn list_pipelines(
        &mut self,
        account_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<PipelineSummary>> {
        let rows = sqlx::query(
            "SELECT seq, pipeline_id, name FROM pipelines WHERE account_id = ? AND deleted_at IS NULL AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(account_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PipelineSummary {
                    seq: row.try_get("seq")?,
                    pipeline_id: row.try_get("pipeline_id")?,
                    name: row.try_get("name")?,
                })
            })
            .collect()
    }

    async fn delete_pipeline(&mut self, pipeline_id: &str, deleted_at: &str) -> Result<()> {
        sqlx::query("DELETE FROM definition_versions WHERE pipeline_id = ?")
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM pipeline_tags WHERE pipeline_id = ?")
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("UPDATE pipelines SET deleted_at = ?, state = 'DELETED', description = NULL WHERE pipeline_id = ?")
            .bind(deleted_at)
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn tags(&mut self, pipeline_id: &str) -> Result<Vec<Tag>> {
        let rows = sqlx::query(
            "SELECT key, value FROM pipeline_tags WHERE pipeline_id = ? ORDER BY position",
        )
        .bind(pipeline_id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Tag {
                    key: row.try_get("key")?,
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }

    async fn replace_tags(&mut self, pipeline_id: &str, tags: &[Tag]) -> Result<()> {
        sqlx::query("DELETE FROM pipeline_tags WHERE pipeline_id = ?")
            .bind(pipeline_id)
            .execute(&mut *self.tx)
            .await?;
        for (position, tag) in tags.iter().enumerate() {
            sqlx::query(
                "INSERT INTO pipeline_tags (pipeline_id, position, key, value) VALUES (?, ?, ?, ?)",
            )
            .bind(pipeline_id)
            .bind(position as i64)
            .bind(&tag.key)
            .bind(&tag.value)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn put_definition(
        &mut self,
        pipeline_id: &str,
        definition: &DefinitionRecord,
        created_at: &str,
    ) -> Result<i64> {
        let version: i64 = sqlx::query_scalar("UPDATE pipelines SET latest_version = latest_version + 1 WHERE pipeline_id = ? RETURNING latest_version")
            .bind(pipeline_id)
            .fetch_one(&mut *self.tx)
            .await?;
        sqlx::query("INSERT INTO definition_versions (pipeline_id, version, format_version, body, errored, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(pipeline_id)
            .bind(version)
            .bind(DEFINITION_FORMAT_VERSION)
            .bind(encode_definition(&definition.definition))
            .bind(definition.errored)
            .bind(created_at)
            .execute(&mut *self.tx)
            .await?;
        Ok(version)
    }

    async fn definition(
        &mut self,
        pipeline_id: &str,
        version: i64,
    ) -> Result<Option<DefinitionRecord>> {
        let row = sqlx::query("SELECT format_version, body, errored FROM definition_versions WHERE pipeline_id = ? AND version = ?")
            .bind(pipeline_id)
            .bind(version)
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let format_version: i64 = row.try_get("format_version")?;
        let body: String = row.try_get("body")?;
        let definition = decode_definition(format_version, &body).map_err(StoreError::Corrupt)?;
        Ok(Some(DefinitionRecord {
            definition,
            errored: row.try_get("errored")?,
        }))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}
