//! The store conformance suite on SQLite: a fresh database file per case.

use std::sync::Arc;

use loopctl_store::Store;
use loopctl_store_sqlite::SqliteStore;

async fn fresh_store() -> Arc<dyn Store> {
    // The directory lives as long as the test process; the OS temp dir is cleaned by the run.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.keep().join("loopctl.db");
    Arc::new(SqliteStore::open(&path).await.expect("open SQLite store"))
}

loopctl_store::conformance_tests!(fresh_store);

mod migration;
