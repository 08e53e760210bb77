//! The pure domain of loopctl: who may do what to a story, and what follows.
//!
//! Nothing here does IO, awaits, reads a clock or generates an id: callers pass `now`,
//! ids and the facts they read from the store, and persist what the functions return.
//! That keeps every rule testable in microseconds and identical on every interface.

pub mod error;
pub mod graph;
pub mod lifecycle;
pub mod number;
pub mod role;
pub mod settings;
pub mod status;

pub use error::DomainError;
pub use lifecycle::{Action, Actor, Context, DispatchRole, StoryState, apply};
pub use number::StoryNumber;
pub use role::Role;
pub use settings::{CustodyMode, Settings};
pub use status::{AgentStatus, VerifiedStatus};
