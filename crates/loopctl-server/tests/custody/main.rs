//! Issue 6, "How it is checked": the chain of custody over HTTP. Every test starts the real
//! server (`loopctl_server::serve`) on 127.0.0.1:0 over a fresh store and drives it with
//! reqwest; the authorization matrix and the reviewer race run on SQLite and PostgreSQL.
//!
//! - `tokens`: dispatched implementer and reviewer tokens, expiry, revocation, key minting
//! - `custody`: the implementer's identity never reviews or verifies; reviewer race; bulk
//! - `limits`: escalation and its lock, the concurrency limit, force-unclaim fencing
//! - `matrix`: every mutating endpoint × every kind of caller

#![allow(clippy::unwrap_used)]

mod support;

mod custody;
mod limits;
mod matrix;
mod tokens;
