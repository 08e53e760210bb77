//! Torture tests: the claims of ARCHITECTURE.md under load, crashes, a cut database and
//! random input, each bounded in time. Real parts only: SQLite files, PostgreSQL databases
//! of their own (`LOOPCTL_TEST_POSTGRES_URL`), the real `loopctl` binary as a server child
//! process (or `loopctl_server::serve` in-process), HTTP over loopback.

#![allow(clippy::unwrap_used)]

mod support;

mod claimers;
mod cut;
mod import_fuzz;
mod instances;
mod kill9;
