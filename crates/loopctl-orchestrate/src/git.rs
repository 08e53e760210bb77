//! The repository as the orchestrator uses it: worktrees per story and role, the merge of a
//! story branch onto the base, and moving the base. Through the `git` command, as an agent's
//! own tools see the repository (worktrees and merges are what `git` itself does best).

use std::path::{Path, PathBuf};
use std::process::Command;

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
}

impl Repo {
    /// The repository `path` is in (its top level, when `path` is a folder inside it).
    pub fn open(path: &Path) -> anyhow::Result<Repo> {
        let dir = path.canonicalize().with_context(|| format!("--repo {} does not exist", path.display()))?;
        let top = git_in(&dir, &["rev-parse", "--show-toplevel"])
            .with_context(|| format!("--repo {} is not in a git repository with a work tree", path.display()))?;
        Ok(Repo { root: PathBuf::from(top) })
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
        self.remove_worktree(dir);
        self.git(&["worktree", "add", "--force", "-B", branch, &dir.to_string_lossy(), start])?;
        Ok(())
    }

    /// A new worktree at `dir` with `commit` checked out (no branch).
    pub fn add_detached_worktree(&self, dir: &Path, commit: &str) -> anyhow::Result<()> {
        self.remove_worktree(dir);
        self.git(&["worktree", "add", "--force", "--detach", &dir.to_string_lossy(), commit])?;
        Ok(())
    }

    /// Removes a worktree and what was in it; nothing to do when it is gone.
    pub fn remove_worktree(&self, dir: &Path) {
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
