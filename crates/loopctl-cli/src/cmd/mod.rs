//! Commands, grouped by area.

pub mod admin;
pub mod auth;
pub mod dispatch;
pub mod feed;
pub mod lifecycle;
pub mod orchestrate;
pub mod read;
pub mod runner;
pub mod skill;
pub mod verify_artifacts;
pub mod webhook;
