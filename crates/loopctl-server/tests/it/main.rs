//! The HTTP API test suite: every test starts the real server on 127.0.0.1:0 over a fresh
//! store and drives it with reqwest. Scenarios take the server handle, so the important
//! ones run on both stores (`…_sqlite` and `…_postgres`).

#![allow(clippy::unwrap_used)]

/// Defines a SQLite test and a PostgreSQL test running one scenario `fn(Server)`.
macro_rules! both {
    ($scenario:path => $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $scenario(crate::support::Server::sqlite().await).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $scenario(crate::support::Server::postgres().await).await;
        }
    };
}

mod support;

mod concurrency;
mod errors;
mod events;
mod evidence;
mod idempotency;
mod import_export;
mod isolation;
mod limits;
mod loop_truth;
mod metadata;
mod no_500;
mod openapi;
mod order;
mod seed_loop;
mod state;
mod trust;
