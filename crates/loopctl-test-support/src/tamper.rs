//! Writes to a server's database around the server: what someone with database access (a
//! stolen backup restored, a DBA, a compromised host) can do, for tests that must notice it.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

/// Runs `sql` (one or more statements) on the database `database_url` names: a
/// `postgres://` URL, or a SQLite file's path (as given to `--database-url`).
pub async fn behind_the_servers_back(database_url: &str, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    let outcome = if database_url.starts_with("postgres") {
        let mut conn = PgConnection::connect(database_url).await.expect("connect to the server's PostgreSQL database");
        sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
    } else {
        let path = database_url.strip_prefix("sqlite:").unwrap_or(database_url);
        let options = SqliteConnectOptions::new().filename(Path::new(path)).busy_timeout(Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options).await.expect("open the server's SQLite file");
        sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
    };
    outcome.unwrap_or_else(|err| panic!("the tampering SQL failed on {database_url}: {err}"));
}
