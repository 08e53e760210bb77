//! loopctl's git work, in one crate so that only it compiles gix: open a repository, resolve
//! the commits a report names, walk a branch's history, list what a commit changed, write a
//! clean copy of a commit's tree, run a check command there under a time limit (sealed, and in
//! bubblewrap where it exists), and keep the runner's mirror of a repository.
//!
//! Everything but the mirror reads objects with gix, never by parsing `git` output. Nothing
//! here knows about stories, reports or the server.

mod changes;
mod check_command;
mod checkout;
mod error;
mod mirror;
mod repository;
mod sandbox;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use changes::{Change, ChangeKind};
pub use check_command::{CheckCommand, RunOutcome, TAIL_LINES};
pub use checkout::CleanCopy;
pub use error::Error;
pub use gix::ObjectId;
pub use gix::objs::tree::EntryKind;
pub use mirror::sync_mirror;
pub use repository::{Branch, History, MIN_COMMIT_ID_LEN, Repository};
pub use sandbox::bubblewrap_available;
