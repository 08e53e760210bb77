//! Where loopctl keeps its data, and how a database URL picks a store.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use etcetera::BaseStrategy;
use loopctl_store::Store;

/// The data directory: `LOOPCTL_DATA_DIR`, else the platform's (e.g. `~/.local/share/loopctl`).
pub fn data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("LOOPCTL_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let strategy = etcetera::choose_base_strategy().context("cannot find the home directory; set LOOPCTL_DATA_DIR")?;
    Ok(strategy.data_dir().join("loopctl"))
}

/// Opens the store a URL names: `postgres://…`, `sqlite://…`, a file path, or the default
/// SQLite file in the data directory when there is none. Migrations run here.
pub async fn open_store(database_url: Option<&str>) -> anyhow::Result<Arc<dyn Store>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = loopctl_store_postgres::PgStore::connect(url)
                .await
                .with_context(|| format!("cannot open PostgreSQL at {}", redact(url)))?;
            Ok(Arc::new(store))
        }
        Some(url) if url.starts_with("sqlite:") => {
            let store = loopctl_store_sqlite::SqliteStore::open_url(url)
                .await
                .with_context(|| format!("cannot open SQLite at {url}"))?;
            Ok(Arc::new(store))
        }
        Some(path) => open_sqlite(PathBuf::from(path)).await,
        None => {
            let dir = data_dir()?;
            open_sqlite(dir.join("loopctl.db")).await
        }
    }
}

async fn open_sqlite(path: PathBuf) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = loopctl_store_sqlite::SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open SQLite at {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Hides a password in a URL before it reaches a message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}
