//! Where loopctl keeps its data, and how a database URL picks a store.

use std::path::{Path, PathBuf};
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
        Some(other) if let Some(scheme) = url_scheme(other) => anyhow::bail!(
            "unsupported database URL scheme `{scheme}:` in {}; loopctl stores data in SQLite \
             (`sqlite:PATH` or a plain file path) or PostgreSQL (`postgres://…` or `postgresql://…`)",
            redact(other)
        ),
        Some(path) => open_sqlite(PathBuf::from(path)).await,
        None => {
            let dir = data_dir()?;
            open_sqlite(dir.join("loopctl.db")).await
        }
    }
}

/// Creates `dir` and its missing parents readable by the owner only (0700): a data directory
/// holds the database and `keys.json`. A directory that exists is left as it is (it may be
/// shared, like `/tmp`); the files loopctl puts in it are 0600 themselves.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).with_context(|| format!("cannot create {}", dir.display()))
}

async fn open_sqlite(path: PathBuf) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let store = loopctl_store_sqlite::SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open SQLite at {}", path.display()))?;
    Ok(Arc::new(store))
}

/// The scheme of a URL-looking value (`mysql` of `mysql://x`), or `None` for a file path.
/// A path with a colon in its first segment needs `sqlite:` or `./` in front.
fn url_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once(':')?;
    let mut chars = scheme.chars();
    let looks_like_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    looks_like_scheme.then_some(scheme)
}

/// Hides a password in a URL before it reaches a message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::url_scheme;

    #[test]
    fn a_url_of_another_database_is_recognised_and_a_file_path_is_not() {
        assert_eq!(url_scheme("mysql://x"), Some("mysql"));
        assert_eq!(url_scheme("mariadb://root@localhost/db"), Some("mariadb"));
        assert_eq!(url_scheme("redis:x"), Some("redis"));
        assert_eq!(url_scheme("/var/lib/loopctl/loopctl.db"), None);
        assert_eq!(url_scheme("./data.db"), None);
        assert_eq!(url_scheme("data.db"), None);
    }
}
