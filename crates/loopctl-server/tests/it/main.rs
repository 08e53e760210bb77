//! The HTTP API test suite: every test starts the real server on 127.0.0.1:0 over a fresh
//! store and drives it with reqwest. Scenarios take the server handle, so the important
//! ones run on both stores (`…_sqlite` and `…_postgres`).

#![allow(clippy::unwrap_used)]

mod support;

mod browser;
mod concurrency;
mod dashboard;
mod errors;
mod events;
mod evidence;
mod idempotency;
mod import_export;
mod isolation;
mod limits;
mod loop_truth;
mod metadata;
mod metrics;
mod no_500;
mod openapi;
mod order;
mod seed_loop;
mod state;
mod trust;
mod usage;
