//! bubblewrap around a sealed check command, where the machine has it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether bubblewrap can make a sandbox on this machine (asked once per process).
pub fn bubblewrap_available() -> bool {
    static PROBE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROBE.get_or_init(|| {
        Command::new("bwrap")
            .args(["--ro-bind", "/", "/", "--dev", "/dev", "--unshare-all", "--die-with-parent", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// `sh -c COMMAND` inside bubblewrap: the filesystem read-only, a fresh `/tmp`, the caller's
/// home, config, data and state directories hidden under empty tmpfs (the runner's key and
/// profiles live there), only the clean copy and the temporary HOME writable, and no network,
/// no other processes, no session to inject input into.
pub(crate) fn command(dir: &Path, home: &Path, command: &str) -> Command {
    let mut cmd = Command::new("bwrap");
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    let private = ["HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "LOOPCTL_DATA_DIR"];
    for var in private.iter().copied().chain(["LOOPCTL_STATE_DIR", "LOOPCTL_RUNNER_DIR"]) {
        let Some(path) = std::env::var_os(var).map(PathBuf::from) else { continue };
        if path.is_absolute() && path.parent().is_some() && path.is_dir() {
            cmd.arg("--tmpfs").arg(&path);
        }
    }
    cmd.arg("--bind").arg(dir).arg(dir).arg("--bind").arg(home).arg(home);
    cmd.args(["--unshare-all", "--die-with-parent", "--new-session", "--chdir"]).arg(dir);
    cmd.arg("sh").arg("-c").arg(command);
    cmd
}
