//! Throwaway PostgreSQL databases for tests.
//!
//! Each [`TestDatabase`] is a database of its own, `loopctl_test_<uuid v7>`, created on the
//! server named by `LOOPCTL_TEST_POSTGRES_URL` (default [`DEFAULT_ADMIN_URL`]) and dropped
//! (`WITH (FORCE)`) when the guard is dropped, even when the test panics. Databases left
//! behind by a killed test process are dropped by the next run once they are an hour old
//! (the age is read from the v7 uuid in the name). When the server cannot be reached the
//! test fails with a message saying so; it never skips.

use std::time::{Duration, SystemTime};

use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The server the tests use when `LOOPCTL_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PREFIX: &str = "loopctl_test_";
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The server the tests use, as an admin connection URL: `LOOPCTL_TEST_POSTGRES_URL`, else
/// [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var("LOOPCTL_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string())
}

/// A connection to the server behind `admin_url`; fails the test, naming the server, when it
/// cannot be reached.
async fn admin(admin_url: &str) -> PgConnection {
    match PgConnection::connect(admin_url).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "PostgreSQL is unreachable at {}: {err}\n\
             These tests need a running PostgreSQL server: start it, or point \
             LOOPCTL_TEST_POSTGRES_URL at one (a user that may CREATE DATABASE)",
            redacted(admin_url)
        ),
    }
}

/// `url` without its password, for messages that end up in CI logs.
pub fn redacted(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |idx| idx + 3);
    let Some(at) = url[authority_start..].find('@').map(|idx| authority_start + idx) else {
        return url.to_string();
    };
    match url[authority_start..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..authority_start + colon], &url[at..]),
        None => url.to_string(),
    }
}

/// `url` with its database replaced by `database`.
pub fn url_for(url: &str, database: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(idx) => url.split_at(idx),
        None => (url, ""),
    };
    let authority_start = base.find("://").map_or(0, |idx| idx + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |idx| authority_start + idx);
    format!("{}/{database}{query}", &base[..path_start])
}

/// An empty database on the test server, dropped with this guard.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    /// Its connection URL (the admin URL with the database replaced).
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database on the server of [`admin_url`].
    pub async fn create() -> TestDatabase {
        TestDatabase::create_on(&admin_url()).await
    }

    async fn create_on(admin_url: &str) -> TestDatabase {
        static SWEPT: OnceCell<()> = OnceCell::const_new();
        SWEPT.get_or_init(|| sweep_stale(admin_url)).await;
        let name = format!("{PREFIX}{}", Uuid::now_v7().simple());
        let mut conn = admin(admin_url).await;
        // The name is ours (a prefix and hex digits), so quoting it is enough.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|err| panic!("cannot create test database {name}: {err}"));
        let _ = conn.close().await;
        let url = url_for(admin_url, &name);
        TestDatabase { name, url, admin_url: admin_url.to_string() }
    }
}

impl Drop for TestDatabase {
    /// Runs on its own thread with its own runtime: the test's runtime may be shutting down
    /// or panicking, and a runtime cannot be started from inside another.
    fn drop(&mut self) {
        let (name, admin_url) = (self.name.clone(), self.admin_url.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => return eprintln!("cannot drop test database {name}: {err}"),
            };
            runtime.block_on(async {
                if let Err(err) = drop_database(&admin_url, &name).await {
                    eprintln!("cannot drop test database {name}: {err}");
                }
            });
        });
        if dropper.join().is_err() {
            eprintln!("dropping test database {} panicked", self.name);
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

/// Drops test databases an hour old or older: left behind by a killed test process.
async fn sweep_stale(admin_url: &str) {
    let mut conn = admin(admin_url).await;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'loopctl\\_test\\_%'")
            .fetch_all(&mut conn)
            .await
            .unwrap_or_default();
    let _ = conn.close().await;
    for name in names {
        let created =
            name.strip_prefix(PREFIX).and_then(|id| Uuid::parse_str(id).ok()).and_then(|id| id.get_timestamp()).map(
                |ts| {
                    let (secs, nanos) = ts.to_unix();
                    SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
                },
            );
        let stale = created.is_some_and(|at| at.elapsed().is_ok_and(|age| age >= STALE_AFTER));
        if stale && let Err(err) = drop_database(admin_url, &name).await {
            eprintln!("cannot drop stale test database {name}: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_for_replaces_only_the_database() {
        assert_eq!(url_for("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(url_for("postgres://u@h:5432/test?sslmode=disable", "x"), "postgres://u@h:5432/x?sslmode=disable");
        assert_eq!(url_for("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(url_for("postgres://u@h?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    }

    #[test]
    fn redacted_hides_only_the_password() {
        assert_eq!(redacted("postgres://u:secret@h:5432/test"), "postgres://u:***@h:5432/test");
        assert_eq!(redacted("postgres://u@h:5432/test"), "postgres://u@h:5432/test");
        assert_eq!(redacted("postgres://h:5432/test"), "postgres://h:5432/test");
    }

    /// A server that is named but does not answer fails the test, naming it and the variable
    /// that picks it, without its password; it never passes as skipped.
    #[tokio::test]
    #[should_panic(expected = "PostgreSQL is unreachable at postgres://postgres:***@127.0.0.1:1/test")]
    async fn an_unreachable_server_fails_the_test_loudly() {
        TestDatabase::create_on("postgres://postgres:secret@127.0.0.1:1/test").await;
    }

    #[tokio::test]
    async fn a_test_database_exists_until_its_guard_is_dropped() {
        let db = TestDatabase::create().await;
        let exists = |name: String| async move {
            let mut conn = admin(&admin_url()).await;
            let found: Option<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut conn)
                .await
                .expect("read pg_database");
            found.is_some()
        };
        let mut conn = PgConnection::connect(&db.url).await.expect("connect to the test database");
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.expect("a query on it");
        assert_eq!(one, 1);
        conn.close().await.expect("close");
        let name = db.name.clone();
        assert!(exists(name.clone()).await, "{name} exists while its guard lives");
        drop(db);
        assert!(!exists(name.clone()).await, "{name} is dropped with its guard");
    }
}
