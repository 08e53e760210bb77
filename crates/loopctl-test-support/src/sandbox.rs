//! A private world for children of the `loopctl` binary: one temp dir holding HOME, the XDG
//! directories and loopctl's data and state directories, and a command environment in which
//! nothing loopctl reads from the outer environment survives (no real profile, key or server
//! of the person running the tests is ever picked up).

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The directories made in every sandbox.
const DIRS: [&str; 8] = ["home", "config", "state", "data", "cache", "xdg-data", "cli-state", "work"];

/// Variables besides `LOOPCTL_*` that change what loopctl or git print or where they look.
const CLEARED: [&str; 5] = ["NO_COLOR", "CLICOLOR_FORCE", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"];

#[derive(Debug)]
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// A new sandbox in a temp dir named `PREFIX…`, removed when it is dropped.
    pub fn new(prefix: &str) -> Sandbox {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir().expect("create the sandbox's temp dir");
        let sandbox = Sandbox { dir };
        for sub in DIRS {
            std::fs::create_dir_all(sandbox.path(sub)).expect("create a sandbox directory");
        }
        sandbox
    }

    /// The sandbox's own directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.root().join(sub)
    }

    /// `LOOPCTL_DATA_DIR`: where `up` keeps its database and keys.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// Gives `cmd` the private environment, and the sandbox as its working directory.
    pub fn apply(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LOOPCTL_") {
                cmd.env_remove(&key);
            }
        }
        for key in CLEARED {
            cmd.env_remove(key);
        }
        cmd.env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_DATA_HOME", self.path("xdg-data"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("LOOPCTL_DATA_DIR", self.data_dir())
            .env("LOOPCTL_STATE_DIR", self.path("cli-state"))
            .env("RUST_BACKTRACE", "0")
            .current_dir(self.root());
    }

    /// `program` with the private environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a child sees: the sandbox's directories, and of the `LOOPCTL_*` variables only
    /// the sandbox's and those set after `apply` (the checks run with
    /// `LOOPCTL_TEST_POSTGRES_URL` set: it must not reach the child).
    #[test]
    fn a_child_sees_only_the_sandbox() {
        let sandbox = Sandbox::new("loopctl-sandbox-test-");
        let mut cmd = sandbox.command("env");
        cmd.env("LOOPCTL_FROM_THE_TEST", "kept: set after apply");
        let output = cmd.output().expect("env runs");
        let env = String::from_utf8_lossy(&output.stdout);
        let home = format!("HOME={}", sandbox.path("home").display());
        assert!(env.lines().any(|line| line == home), "{env}");
        let mut loopctl: Vec<&str> = env.lines().filter(|line| line.starts_with("LOOPCTL_")).collect();
        loopctl.sort_unstable();
        let data = format!("LOOPCTL_DATA_DIR={}", sandbox.data_dir().display());
        let state = format!("LOOPCTL_STATE_DIR={}", sandbox.path("cli-state").display());
        assert_eq!(loopctl, [data.as_str(), "LOOPCTL_FROM_THE_TEST=kept: set after apply", state.as_str()]);
    }
}
