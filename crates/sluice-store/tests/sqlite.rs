//! The conformance suite on the SQLite backend, plus the golden file of definition format 1.

use sluice_store::{SqliteStore, store_conformance_suite};

async fn temporary_sqlite() -> SqliteStore {
    // Each test keeps its own directory for the life of the process.
    let directory = tempfile::tempdir().expect("temporary directory").keep();
    SqliteStore::open(&directory.join("sluice.db")).await.expect("open")
}

store_conformance_suite!(sqlite, temporary_sqlite());
