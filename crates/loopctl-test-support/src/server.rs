//! The real `loopctl_server::serve` on 127.0.0.1:0 over a fresh store (a SQLite file in a
//! tempdir, or a [`TestDatabase`] of its own), tenants bootstrapped on that store, and the
//! HTTP client of [`Api`] (a `Server` derefs to it).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loopctl_app::{App, BootstrapRequest};
use loopctl_store::Store;
use loopctl_store_postgres::PgStore;
use loopctl_store_sqlite::SqliteStore;
use tokio::task::JoinHandle;

use crate::Tenant;
use crate::http::Api;
use crate::postgres::{TestDatabase, redacted};

/// Defines a SQLite test and a PostgreSQL test running one scenario `async fn(Server)`.
#[macro_export]
macro_rules! both {
    ($scenario:path => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $scenario($crate::Server::sqlite().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $scenario($crate::Server::postgres().await).await;
        }
    };
}

/// Aborts the serve task when dropped.
struct ServeTask(JoinHandle<std::io::Result<()>>);

impl Drop for ServeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What keeps the store's data alive: the tempdir, or the guard of the database.
enum Data {
    Sqlite { _dir: tempfile::TempDir, path: PathBuf },
    Postgres { db: TestDatabase },
}

impl Data {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Data::Sqlite { path, .. } => Arc::new(SqliteStore::open(path).await.expect("open the SQLite store")),
            Data::Postgres { db } => Arc::new(
                PgStore::connect(&db.url)
                    .await
                    .unwrap_or_else(|err| panic!("PostgreSQL store on {} failed: {err}", redacted(&db.url))),
            ),
        }
    }
}

/// A running server. Fields drop in order: the serve task first, the data last.
pub struct Server {
    task: ServeTask,
    api: Api,
    pub store: Arc<dyn Store>,
    data: Data,
}

impl Deref for Server {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Server {
    /// A server over a fresh SQLite file in its own tempdir.
    pub async fn sqlite() -> Server {
        let dir = tempfile::tempdir().expect("create a tempdir for the SQLite file");
        let path = dir.path().join("loopctl.db");
        Server::start(Data::Sqlite { _dir: dir, path }).await
    }

    /// A server over a fresh PostgreSQL database (created here, dropped with the server).
    pub async fn postgres() -> Server {
        Server::start(Data::Postgres { db: TestDatabase::create().await }).await
    }

    pub fn backend(&self) -> &'static str {
        match self.data {
            Data::Sqlite { .. } => "sqlite",
            Data::Postgres { .. } => "postgres",
        }
    }

    /// The PostgreSQL URL of this server's database (for a second server on the same data).
    pub fn database_url(&self) -> Option<&str> {
        match &self.data {
            Data::Sqlite { .. } => None,
            Data::Postgres { db } => Some(&db.url),
        }
    }

    /// The SQLite file of this server's store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.data {
            Data::Sqlite { path, .. } => Some(path),
            Data::Postgres { .. } => None,
        }
    }

    async fn start(data: Data) -> Server {
        let store = data.open().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the listener");
        let task = ServeTask(tokio::spawn(loopctl_server::serve(store.clone(), listener)));
        let server = Server { task, api: Api::new(format!("http://{addr}")), store, data };
        server.wait_healthy().await;
        server
    }

    /// Polls `GET /health` until it answers 200.
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = self.http.get(format!("{}/health", self.base)).send().await;
            if let Ok(response) = answer
                && response.status().as_u16() == 200
            {
                return;
            }
            assert!(!self.task.0.is_finished(), "the server task ended before it became healthy");
            assert!(Instant::now() < deadline, "the server did not become healthy within 15 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the server and starts a new one on the same data (same SQLite file, same
    /// PostgreSQL database), as after a crash or a redeploy.
    pub async fn restart(self) -> Server {
        let Server { task, api, store, data } = self;
        drop(task);
        drop(api);
        drop(store);
        Server::start(data).await
    }

    /// A tenant with a user, an orchestrator and an agent key, made directly on the store.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let app = App::new(self.store.clone());
        let boot = app
            .bootstrap_tenant(BootstrapRequest { tenant_name: name.to_string(), slug: None, email: None })
            .await
            .expect("bootstrap a tenant");
        Tenant {
            id: boot.tenant_id.to_string(),
            user: boot.keys.user,
            orch: boot.keys.orchestrator,
            agent: boot.keys.agent,
        }
    }
}
