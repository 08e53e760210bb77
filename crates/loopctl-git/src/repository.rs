//! A repository opened with gix, and the questions a report raises about it: which commit an id
//! names, which branch to hold it against, whether that branch's history contains it, and what
//! is at a path of its tree.

use std::collections::HashSet;
use std::path::Path;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::Error;

/// Shortest abbreviated commit id accepted.
pub const MIN_COMMIT_ID_LEN: usize = 7;

pub struct Repository {
    pub(crate) repo: gix::Repository,
}

/// The branch reachability is checked against, and the commit it points to.
#[derive(Debug, Clone)]
pub struct Branch {
    /// As given, or HEAD's branch shortened (`main`), or `HEAD` when detached.
    pub name: String,
    pub tip: ObjectId,
}

/// Every commit reachable from a tip, the tip included.
pub struct History(HashSet<ObjectId>);

impl History {
    pub fn contains(&self, commit: ObjectId) -> bool {
        self.0.contains(&commit)
    }
}

impl Repository {
    /// The repository at or above `path`.
    ///
    /// # Errors
    /// [`Error::NotARepository`] when there is none.
    pub fn discover(path: &Path) -> Result<Repository, Error> {
        let repo = gix::discover(path).map_err(|source| Error::NotARepository { path: path.to_path_buf(), source })?;
        Ok(Repository { repo })
    }

    /// Its work tree, or its git directory when it is bare.
    pub fn root(&self) -> &Path {
        self.repo.workdir().unwrap_or_else(|| self.repo.git_dir())
    }

    /// `name` (any ref git would find by that name, or a commit id), else the branch HEAD is
    /// on, else HEAD itself when detached.
    ///
    /// # Errors
    /// No such branch, a branch or HEAD without a commit, or a ref that cannot be read.
    pub fn branch(&self, name: Option<&str>) -> Result<Branch, Error> {
        let Some(name) = name else {
            let head_name = self.repo.head_name().map_err(Error::git("read HEAD"))?;
            let head = head_name.as_ref().map_or_else(|| "HEAD".to_string(), |n| n.shorten().to_string());
            return match self.repo.head_commit() {
                Ok(commit) => Ok(Branch { name: head, tip: commit.id }),
                Err(source) => Err(Error::NoCommitAtHead { head, source }),
            };
        };
        if let Ok(Some(mut reference)) = self.repo.try_find_reference(name) {
            let commit = reference.peel_to_commit().map_err(Error::git(format!("peel branch {name} to a commit")))?;
            return Ok(Branch { name: name.to_string(), tip: commit.id });
        }
        if is_hex(name) && name.len() >= MIN_COMMIT_ID_LEN {
            let tip = self.resolve_commit(name)?;
            return Ok(Branch { name: name.to_string(), tip });
        }
        Err(Error::NoSuchBranch { name: name.to_string(), git_dir: self.repo.git_dir().to_path_buf() })
    }

    /// The commit a full or abbreviated id names.
    ///
    /// # Errors
    /// Not a commit id, ambiguous, absent, or an object that is not a commit.
    pub fn resolve_commit(&self, id: &str) -> Result<ObjectId, Error> {
        let id = id.trim();
        let max_len = self.repo.object_hash().len_in_hex();
        if !is_hex(id) || id.len() < MIN_COMMIT_ID_LEN || id.len() > max_len {
            return Err(Error::NotACommitId { text: id.to_string(), max_len });
        }
        let hex = id.to_ascii_lowercase();
        let not_an_id = || Error::NotACommitId { text: id.to_string(), max_len };
        let object = if hex.len() == max_len {
            ObjectId::from_hex(hex.as_bytes()).map_err(|_| not_an_id())?
        } else {
            let prefix = gix::hash::Prefix::from_hex(&hex).map_err(|_| not_an_id())?;
            match self.repo.objects.lookup_prefix(prefix, None) {
                Ok(Some(Ok(object))) => object,
                Ok(Some(Err(()))) => return Err(Error::Ambiguous { prefix: hex }),
                Ok(None) => return Err(Error::NoSuchObject),
                Err(err) => {
                    return Err(Error::Git {
                        action: "search the object database".into(),
                        source: gix::Error::from_error(err),
                    });
                }
            }
        };
        match self.repo.try_find_header(object) {
            Ok(Some(header)) if header.kind() == gix::object::Kind::Commit => Ok(object),
            Ok(Some(header)) => Err(Error::NotACommit { id: object, kind: header.kind() }),
            Ok(None) => Err(Error::NoSuchObject),
            Err(source) => Err(Error::Git { action: format!("read {object}"), source }),
        }
    }

    /// Every commit reachable from `tip`.
    ///
    /// # Errors
    /// A commit of the history cannot be read.
    pub fn history(&self, tip: ObjectId) -> Result<History, Error> {
        let action = || format!("walk the history of {tip}");
        let walk = self.repo.rev_walk([tip]).all().map_err(Error::git(action()))?;
        let commits = walk.map(|info| info.map(|i| i.id)).collect::<Result<HashSet<_>, _>>();
        commits.map(History).map_err(Error::git(action()))
    }

    /// What is at `path` in the commit's tree, if anything.
    ///
    /// # Errors
    /// The commit or one of its trees cannot be read.
    pub fn entry_at(&self, commit: ObjectId, path: &str) -> Result<Option<EntryKind>, Error> {
        let tree =
            self.repo.find_commit(commit).and_then(|c| c.tree()).map_err(Error::git(format!("read {commit}")))?;
        let entry = tree.lookup_entry_by_path(path).map_err(Error::git(format!("read the tree of {commit}")))?;
        Ok(entry.map(|e| e.mode().kind()))
    }
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}
