//! loopctl's wire contract: every request and response body of `/api/v1` as a Rust type,
//! the envelopes the answers travel in, and [`ErrorCode`].
//!
//! The server serializes these, the client deserializes them, and the OpenAPI document is
//! generated from them. This crate depends on no other loopctl crate, and the domain does
//! not depend on it: a refactor of the core or the store cannot change the JSON by accident,
//! because records become these types only through explicit conversions in the service layer.
//! Field names are the reference implementation's, so its own clients keep working.

mod answers;
mod auth;
mod bulk;
mod deps;
mod dispatch;
mod envelope;
mod error;
mod evidence;
mod feed;
mod import;
mod lifecycle;
mod params;
mod queries;
mod skills;
mod state;
mod tenancy;
mod usage;
mod views;
mod webhooks;
mod work;

pub use answers::*;
pub use auth::bearer_key;
pub use bulk::*;
pub use deps::*;
pub use dispatch::*;
pub use envelope::*;
pub use error::*;
pub use evidence::*;
pub use feed::*;
pub use import::*;
pub use lifecycle::*;
pub use params::*;
pub use queries::*;
pub use skills::*;
pub use state::*;
pub use tenancy::*;
pub use usage::*;
pub use views::*;
pub use webhooks::*;
pub use work::*;

/// What every module of wire types needs.
mod prelude {
    pub(crate) use chrono::{DateTime, Utc};
    pub(crate) use serde::{Deserialize, Serialize};
    pub(crate) use serde_json::Value;
    pub(crate) use utoipa::ToSchema;
    pub(crate) use uuid::Uuid;

    pub(crate) use crate::*;
}
