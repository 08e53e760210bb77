//! What loopctl's test binaries share, so that each keeps only what is its own.
//!
//! - [`postgres`]: a throwaway database per test on the server `LOOPCTL_TEST_POSTGRES_URL` names.
//! - [`http`]: [`Api`], a client of a running server whose answers keep status and JSON body together.
//! - [`server`]: the real `loopctl_server::serve` in-process on 127.0.0.1:0 over a fresh store,
//!   tenants bootstrapped on that store, and [`both!`] for scenarios that run on both stores.
//! - [`sandbox`] and [`child`]: a private HOME / XDG / data world for children of the `loopctl`
//!   binary, and a child whose stderr is read line by line.
//! - [`fixtures`]: work through the API more than one suite does (a project's ids by number, …).
//! - [`key_trap`]: a server an attacker controls, counting the keys sent to it.
//! - [`receiver`]: a webhook receiver on loopback that fails when told to.
//! - [`tamper`]: SQL run on a server's database around the server.
//! - [`Tenant`]: the keys of a bootstrapped tenant; [`snapshot`]: checked-in expected output.
//!
//! This is test code: a failed expectation is the report, so helpers panic saying what they expected.

pub mod child;
#[cfg(feature = "http")]
pub mod fixtures;
#[cfg(feature = "http")]
pub mod http;
pub mod key_trap;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "server")]
pub mod receiver;
pub mod sandbox;
#[cfg(feature = "server")]
pub mod server;
pub mod snapshot;
#[cfg(feature = "server")]
pub mod tamper;

pub use child::{Proc, url_after};
#[cfg(feature = "http")]
pub use http::{Api, Req, Resp};
pub use sandbox::Sandbox;
#[cfg(feature = "server")]
pub use server::Server;

use serde_json::Value;

/// A JSON string field, as an owned `String`.
#[track_caller]
pub fn s(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_string()
}

/// The keys of a bootstrapped tenant (one per role), and its id.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub user: String,
    pub orch: String,
    pub agent: String,
}

impl Tenant {
    /// From what `loopctl admin init --format json` prints and `loopctl up` keeps in
    /// `keys.json`: `{"tenant_id": …, "keys": {"user": …, "orchestrator": …, "agent": …}}`.
    #[track_caller]
    pub fn from_json(value: &Value) -> Tenant {
        let keys = &value["keys"];
        Tenant {
            id: s(&value["tenant_id"]),
            user: s(&keys["user"]),
            orch: s(&keys["orchestrator"]),
            agent: s(&keys["agent"]),
        }
    }
}
