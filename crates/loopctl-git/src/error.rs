//! What can go wrong reading a repository; each message says what was asked and why it failed.

use std::path::PathBuf;

use gix::ObjectId;

use crate::repository::MIN_COMMIT_ID_LEN;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no git repository at {}: {source}", path.display())]
    NotARepository { path: PathBuf, source: gix::Error },
    #[error("HEAD ({head}) has no commit to check against: {source}")]
    NoCommitAtHead { head: String, source: gix::Error },
    #[error("no branch {name} in {}", git_dir.display())]
    NoSuchBranch { name: String, git_dir: PathBuf },
    #[error("{text:?} is not a commit id ({MIN_COMMIT_ID_LEN} to {max_len} hex digits)")]
    NotACommitId { text: String, max_len: usize },
    #[error("{prefix} is ambiguous in this repository; report the full id")]
    Ambiguous { prefix: String },
    #[error("no such object in this repository")]
    NoSuchObject,
    #[error("{id} is a {kind}, not a commit")]
    NotACommit { id: ObjectId, kind: gix::object::Kind },
    /// A read or write gix refused, with what was being done (`read commit 1a2b…`).
    #[error("cannot {action}: {source}")]
    Git { action: String, source: gix::Error },
    #[error("cannot {action}: {source}")]
    Io { action: String, source: std::io::Error },
    /// Paths of the tree that would overwrite each other (a case-insensitive file system).
    #[error("the checkout of {commit} is not clean: {} collided", paths.join(", "))]
    Collisions { commit: ObjectId, paths: Vec<String> },
    #[error("git could not mirror {repo}: {stderr}")]
    Mirror { repo: String, stderr: String },
}

impl Error {
    pub(crate) fn git(action: impl Into<String>) -> impl FnOnce(gix::Error) -> Error {
        let action = action.into();
        move |source| Error::Git { action, source }
    }

    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let action = action.into();
        move |source| Error::Io { action, source }
    }
}
