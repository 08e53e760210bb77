//! The runner's own mirror of a project's repository, kept with the `git` CLI (gix is built
//! without network features: cloning and fetching over every transport is git's job).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// Clones `repo` (a path or URL) as a mirror into `mirror` the first time, fetches into it
/// (pruning what the origin deleted) every time after.
///
/// # Errors
/// git cannot be run, or fails.
pub fn sync_mirror(repo: &str, mirror: &Path) -> Result<(), Error> {
    let mut git = Command::new("git");
    if mirror.join("HEAD").is_file() {
        git.arg("--git-dir").arg(mirror).args(["fetch", "--quiet", "--prune", "origin"]);
    } else {
        if let Some(parent) = mirror.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(format!("create {}", parent.display())))?;
        }
        git.args(["clone", "--quiet", "--mirror", "--", repo]).arg(mirror);
    }
    let out = git
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io(format!("run git to mirror {repo}")))?;
    if !out.status.success() {
        return Err(Error::Mirror {
            repo: repo.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}
