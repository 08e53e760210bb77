//! The PostgreSQL store's tests: the conformance suite every backend passes, plus what only
//! PostgreSQL has (several processes on one database). Each test runs on a database of its
//! own on the server named by `LOOPCTL_TEST_POSTGRES_URL`; see `support`.

mod migration;
mod pg;
mod support;

loopctl_store::conformance_tests!(support::fresh_store);
