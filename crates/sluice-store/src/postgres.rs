//! The PostgreSQL backend (`--store postgres://…`), for several servers on one database. The
//! `Transaction` implementation is the shared one (`sql/`): its SQL is written with SQLite's `?`
//! placeholders and rewritten to PostgreSQL's `$n` once per statement.
//!
//! Writes are serialized, as SQLite's single writer serializes them: each write transaction
//! first takes one transaction-scoped advisory lock, so the invariants the shared code relies on
//! (one audit chain head, read-then-write sequences) hold across servers. Read transactions run
//! at REPEATABLE READ, READ ONLY: a snapshot that neither waits for nor holds up writers.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::{Result, Store, Transaction};

/// A write transaction's start, in one message: the transaction, then the advisory lock every
/// writer takes (its key is "sluice" in ASCII, 0x736c75696365).
const BEGIN_WRITE: &str = "BEGIN; SELECT pg_advisory_xact_lock(126909663503205)";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects (`postgres://user@host:port/database`; TLS as the URL's `sslmode` says, and
    /// `verify-full` when it says nothing and the host is not this one) and applies migrations.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let mut options = PgConnectOptions::from_str(url)?
            // A server that stops mid-transaction must not hold every writer's lock for long.
            .options([("lock_timeout", "30s"), ("idle_in_transaction_session_timeout", "60s")]);
        // Off this host, the connection is verified TLS unless the URL says otherwise.
        let host = options.get_host();
        let local = host.starts_with('/') || matches!(host, "localhost" | "127.0.0.1" | "::1");
        if !local && !url.contains("sslmode=") {
            options = options.ssl_mode(PgSslMode::VerifyFull);
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        // One round trip: the transaction and the writers' lock in one message.
        let tx = self.pool.begin_with(BEGIN_WRITE).await?;
        Ok(Box::new(shared::SqlTransaction { tx }))
    }

    async fn begin_read(&self) -> Result<Box<dyn Transaction>> {
        let tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        Ok(Box::new(shared::SqlTransaction { tx }))
    }
}

/// `?` and `?N` placeholders (outside quoted text) as PostgreSQL's `$n`.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    let mut quoted = false;
    let mut characters = sql.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                quoted = !quoted;
                out.push(character);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(digit) = characters.peek().filter(|next| next.is_ascii_digit()) {
                    digits.push(*digit);
                    characters.next();
                }
                if digits.is_empty() {
                    next += 1;
                    out.push_str(&format!("${next}"));
                } else {
                    out.push('$');
                    out.push_str(&digits);
                }
            }
            _ => out.push(character),
        }
    }
    out
}

/// Each static statement's PostgreSQL form, made once (a few hundred statements in all).
fn cached(sql: &'static str) -> &'static str {
    static CACHE: Mutex<Option<HashMap<(usize, usize), &'static str>>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let map = cache.get_or_insert_with(HashMap::new);
    map.entry((sql.as_ptr() as usize, sql.len()))
        .or_insert_with(|| Box::leak(placeholders(sql).into_boxed_str()))
}

mod shared {
    //! The shared implementation, on PostgreSQL.

    use async_trait::async_trait;
    use sluice_core::runtime::{Changes, ComponentRun, State};
    use sqlx::Row;

    use crate::{
        AUDIT_GENESIS_HASH, AccessKeyMetadata, AccessKeyRecord, AuditAttribute, AuditDigestRecord, AuditFileRecord,
        AuditQuery, AuditRecord, GroupRecord, IdentityRecord, MfaDeviceRecord, NewPipeline, NotificationRecord,
        PipelineRecord, PipelineSummary, PolicyRecord, Result, StoreError, StoredDefinition, Tag, Transaction,
        UserRecord,
    };

    pub(crate) type Db = sqlx::Postgres;
    pub(crate) type DbRow = sqlx::postgres::PgRow;
    pub(crate) type Conn = sqlx::PgConnection;

    pub(crate) fn q(sql: &'static str) -> &'static str {
        super::cached(sql)
    }

    pub(crate) fn dynamic(sql: String) -> String {
        super::placeholders(&sql)
    }

    /// What orders a table's rows as they were first inserted.
    pub(crate) const INSERTION_ORDER: &str = "ordinal";

    /// How PollForTask's pick of an attempt keeps another server's pick away.
    pub(crate) const CLAIM_LOCK: &str = " FOR UPDATE OF a SKIP LOCKED";

    mod iam {
        include!("sql/iam.rs");
    }
    mod runtime {
        include!("sql/runtime.rs");
    }
    include!("sql/transaction.rs");
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn the_write_begin_takes_the_write_lock() {
        assert_eq!(
            super::BEGIN_WRITE,
            format!(
                "BEGIN; SELECT pg_advisory_xact_lock({})",
                i64::from_be_bytes(*b"\0\0sluice")
            )
        );
    }

    #[test]
    fn placeholders_become_numbered_outside_quoted_text() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
        );
        assert_eq!(
            placeholders("(?1 IS NULL OR x = ?1) AND y < ?12"),
            "($1 IS NULL OR x = $1) AND y < $12"
        );
    }
}
