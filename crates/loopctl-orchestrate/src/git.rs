//! The repository as the orchestrator uses it: worktrees per story and role, the merge of a
//! story branch onto the base, and moving the base. Through the `git` command, as an agent's
//! own tools see the repository (worktrees and merges are what `git` itself does best).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, bail};

/// Who signs the merge commits the orchestrator makes.
const MERGER: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "loopctl orchestrate"),
    ("GIT_AUTHOR_EMAIL", "orchestrate@loopctl.invalid"),
    ("GIT_COMMITTER_NAME", "loopctl orchestrate"),
    ("GIT_COMMITTER_EMAIL", "orchestrate@loopctl.invalid"),
];

#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
    /// Held around every change to the repository's worktrees. Rounds run side by side, and
    /// git does not lock its worktree list: a `worktree prune` (every removal ends with one)
    /// deletes the entry another round's `worktree add` has made but not yet filled in, and
    /// that add fails ("could not open '.git/worktrees/…/gitdir' for writing").
    worktrees: Arc<Mutex<()>>,
}

impl Repo {
    /// The repository `path` is in (its top level, when `path` is a folder inside it).
    pub fn open(path: &Path) -> anyhow::Result<Repo> {
        let dir = path.canonicalize().with_context(|| format!("--repo {} does not exist", path.display()))?;
        let top = git_in(&dir, &["rev-parse", "--show-toplevel"])
            .with_context(|| format!("--repo {} is not in a git repository with a work tree", path.display()))?;
        Ok(Repo { root: PathBuf::from(top), worktrees: Arc::default() })
    }

    /// The repository's own git directory (shared by all its worktrees): where the
    /// orchestrator keeps its work by default, out of every checkout.
    pub fn common_git_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = PathBuf::from(self.git(&["rev-parse", "--git-common-dir"])?);
        Ok(if dir.is_absolute() { dir } else { self.root.join(dir) })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The branch checked out in the repository (the default `--base`).
    pub fn current_branch(&self) -> anyhow::Result<String> {
        self.git(&["symbolic-ref", "--short", "HEAD"]).context("the repository has no branch checked out; pass --base")
    }

    /// The full commit id `rev` names.
    pub fn commit_of(&self, rev: &str) -> anyhow::Result<String> {
        self.git(&["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
            .with_context(|| format!("`{rev}` is not a commit of {}", self.root.display()))
    }

    /// The newest commit `a` and `b` share.
    pub fn merge_base(&self, a: &str, b: &str) -> anyhow::Result<String> {
        self.git(&["merge-base", a, b])
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.git(&["merge-base", "--is-ancestor", ancestor, descendant]).is_ok()
    }

    /// A new worktree at `dir` on a new branch `branch` (replaced if it exists) from `start`.
    pub fn add_branch_worktree(&self, dir: &Path, branch: &str, start: &str) -> anyhow::Result<()> {
        let _changing = self.changing_worktrees();
        self.remove_worktree_locked(dir);
        self.git(&["worktree", "add", "--force", "-B", branch, &dir.to_string_lossy(), start])?;
        Ok(())
    }

    /// A new worktree at `dir` with `commit` checked out (no branch).
    pub fn add_detached_worktree(&self, dir: &Path, commit: &str) -> anyhow::Result<()> {
        let _changing = self.changing_worktrees();
        self.remove_worktree_locked(dir);
        self.git(&["worktree", "add", "--force", "--detach", &dir.to_string_lossy(), commit])?;
        Ok(())
    }

    /// Removes a worktree and what was in it; nothing to do when it is gone.
    pub fn remove_worktree(&self, dir: &Path) {
        let _changing = self.changing_worktrees();
        self.remove_worktree_locked(dir);
    }

    /// The lock on the worktree list ([`Repo::worktrees`]); a round that panicked holding it
    /// left no worktree half made that the next change cannot handle.
    fn changing_worktrees(&self) -> std::sync::MutexGuard<'_, ()> {
        self.worktrees.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remove_worktree_locked(&self, dir: &Path) {
        let _ = self.git(&["worktree", "remove", "--force", &dir.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(dir);
        let _ = self.git(&["worktree", "prune"]);
    }

    /// Removes every worktree under `parent` (a dead run's, left on disk).
    pub fn remove_worktrees_under(&self, parent: &Path) {
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            self.remove_worktree(&entry.path());
        }
    }

    /// Merges `commit` into the worktree at `dir` (at the base), as a merge commit even when
    /// a fast-forward would do, so the base's history says which story came in. Answers the
    /// merge commit, or why it could not be made (a conflict).
    pub fn merge_in(&self, dir: &Path, commit: &str, message: &str) -> anyhow::Result<String> {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir).args(["merge", "--no-ff", "--no-edit", "-m", message, commit]).envs(MERGER);
        let out = cmd.output().context("run git merge")?;
        if !out.status.success() {
            let _ = Command::new("git").current_dir(dir).args(["merge", "--abort"]).output();
            bail!("the story does not merge onto the base: {}", tail(&out.stdout, &out.stderr));
        }
        git_in(dir, &["rev-parse", "HEAD"])
    }

    /// Moves `branch` from `from` to `to` (a descendant), only if it still points at `from`.
    /// When the repository itself has `branch` checked out, its files follow (a fast-forward).
    pub fn move_branch(&self, branch: &str, to: &str, from: &str) -> anyhow::Result<()> {
        if self.current_branch().ok().as_deref() == Some(branch) {
            if self.commit_of(branch)? != from {
                bail!("{branch} moved while the merge was checked");
            }
            self.git(&["merge", "--ff-only", "--quiet", to])?;
            return Ok(());
        }
        self.git(&["update-ref", "-m", "loopctl orchestrate: merge", &format!("refs/heads/{branch}"), to, from])
            .with_context(|| format!("{branch} moved while the merge was checked"))?;
        Ok(())
    }

    fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        git_in(&self.root, args)
    }
}

fn git_in(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git").current_dir(dir).args(args).output().context("run git (is it installed?)")?;
    if !out.status.success() {
        bail!("git {} failed: {}", args.join(" "), tail(&out.stdout, &out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four rounds side by side, each adding and removing its worktrees over and over on one
    /// repository, as `--parallel` runs them: no add is undone by another round's prune.
    #[test]
    fn rounds_side_by_side_never_lose_a_worktree_to_each_others_prune() {
        let root = std::env::temp_dir().join(format!("loopctl-worktrees-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&root).expect("a folder for the repository");
        let git = |args: &[&str]| git_in(&root, args).expect("git runs");
        git(&["init", "-q", "-b", "main"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "base"]);
        let repo = Repo::open(&root).expect("the repository opens");
        let head = repo.commit_of("main").expect("main has a commit");
        let rounds: Vec<_> = (0..4)
            .map(|round| {
                let (repo, head, root) = (repo.clone(), head.clone(), root.clone());
                std::thread::spawn(move || {
                    for i in 0..12 {
                        let dir = root.join(".git").join(format!("wt-{round}-{i}"));
                        repo.add_detached_worktree(&dir, &head).expect("the worktree is added");
                        assert!(dir.join(".git").exists(), "round {round}: worktree {i} is there");
                        repo.remove_worktree(&dir);
                    }
                })
            })
            .collect();
        for round in rounds {
            round.join().expect("a round of adds and removes ends without a failed add");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
