//! The conformance suite on the PostgreSQL backend, each test on a database of its own on the
//! server `SLUICE_TEST_POSTGRES` names (this machine's: postgres://postgres@127.0.0.1:5432).

use sluice_store::{PostgresStore, store_conformance_suite};
use sqlx::Connection;

#[allow(
    clippy::disallowed_methods,
    reason = "a test names the database server it runs against"
)]
fn server() -> String {
    std::env::var("SLUICE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn temporary_postgres() -> PostgresStore {
    static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let admin_url = format!("{}/postgres", server());
    // Databases an earlier run of this suite left behind go first (once per process).
    CLEANED
        .get_or_init(|| async {
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to PostgreSQL");
            let stale: Vec<String> =
                sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'sluice\\_conformance\\_%'")
                    .fetch_all(&mut admin)
                    .await
                    .expect("list databases");
            for name in stale {
                // A database of a test process still running (another checkout's run) stays.
                let pid = name.split('_').nth(2).unwrap_or("");
                if !pid.is_empty() && std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    continue;
                }
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            }
        })
        .await;
    // Unique per test in this process and across runs (the process id and a counter).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "sluice_conformance_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create database");
    PostgresStore::open(&format!("{}/{name}", server()))
        .await
        .expect("open")
}

store_conformance_suite!(postgres, temporary_postgres());
