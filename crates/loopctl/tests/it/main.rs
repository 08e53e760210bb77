//! End-to-end tests of the `loopctl` binary (issue 4): each test runs the built binary as a
//! server child process on 127.0.0.1:0 over its own SQLite file and drives it with the CLI,
//! in a private HOME / XDG / data / state directory with every `LOOPCTL_*` variable of the
//! outer environment removed.

#![allow(clippy::unwrap_used)]

mod support;

mod admin;
mod audit;
mod config;
mod exit_codes;
mod feed;
mod loop_e2e;
mod misc;
mod names;
mod orchestrate;
mod output;
mod readme;
mod restart;
mod runner;
mod trust;
mod up;
mod verify_artifacts;
mod webhooks;
