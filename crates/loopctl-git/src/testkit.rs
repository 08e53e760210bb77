//! A throwaway git repository for tests (feature `testkit`): made with the `git` CLI, as a
//! person would (setup only; what is tested reads it with gix), removed when dropped.

use std::path::Path;
use std::process::Command;

use gix::ObjectId;

use crate::Repository;

pub struct ScratchRepo {
    dir: tempfile::TempDir,
}

impl ScratchRepo {
    /// An empty repository on branch `main`.
    pub fn init() -> ScratchRepo {
        let dir = tempfile::Builder::new().prefix("loopctl-git-test-").tempdir().expect("a temporary directory");
        let repo = ScratchRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn open(&self) -> Repository {
        Repository::discover(self.path()).expect("the scratch repository opens")
    }

    /// `git ARGS…` in the repository (see [`git`]).
    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// Writes `text` to `path` in the work tree, making its directories.
    pub fn write(&self, path: &str, text: &str) {
        let full = self.path().join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(full, text).expect("write");
    }

    #[cfg(unix)]
    pub fn make_executable(&self, path: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.path().join(path), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[cfg(unix)]
    pub fn symlink(&self, target: &str, link: &str) {
        std::os::unix::fs::symlink(target, self.path().join(link)).expect("symlink");
    }

    /// Commits everything in the work tree (empty commits allowed); answers the full id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// A full commit id as the object id gix reads.
pub fn id(sha: &str) -> ObjectId {
    ObjectId::from_hex(sha.as_bytes()).expect("a full commit id")
}

/// `git ARGS…` in `dir` with a fixed identity and no user or system config; answers its
/// stdout, trimmed, and fails the test when git does.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git on PATH");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
