//! `payload_path`: the one tool parameter that reads a file of the MCP server's machine (the
//! import document of `import_stories`, stdio mode only). The agent naming the path is not
//! trusted with the machine, so the file must resolve — `..` and symbolic links followed — to
//! somewhere inside the MCP server's working directory, and never into `/proc`, `/dev` or
//! `/sys` (a working directory of `/` would otherwise let `/proc/self/environ` through).
//! On Linux the file actually opened is checked once more, so a link swapped in between the
//! check and the open does not lead outside either.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use loopctl_api::ErrorCode;
use loopctl_client::ClientError;
use serde_json::Value;

use crate::refusal::{invalid, refusal};

/// Reads `path` (absolute, or relative to the working directory) as JSON, if it is inside the
/// working directory and at most `max_bytes` long.
pub(crate) fn read_json_in_working_dir(path: &str, max_bytes: u64) -> Result<Value, ClientError> {
    let root = std::env::current_dir().and_then(|dir| dir.canonicalize()).map_err(|err| {
        invalid(format!(
            "payload_path cannot be read: the MCP server's working directory is unavailable ({err}); pass the document as payload"
        ))
    })?;
    read_json_inside(&root, path, max_bytes)
}

/// [`read_json_in_working_dir`] with the directory given (canonical already).
pub(crate) fn read_json_inside(root: &Path, path: &str, max_bytes: u64) -> Result<Value, ClientError> {
    if path.trim().is_empty() {
        return Err(invalid("payload_path is empty; name a JSON file inside the MCP server's working directory"));
    }
    let outside = |why: &str| {
        invalid(format!(
            "payload_path `{path}` {why}; the file must be inside the MCP server's working directory {} \
             (`..` and symbolic links are followed): copy it there, or pass the document as payload",
            root.display()
        ))
    };
    let given = Path::new(path);
    let joined = if given.is_absolute() { given.to_path_buf() } else { root.join(given) };
    let real = joined.canonicalize().map_err(|err| outside(&format!("cannot be resolved ({err})")))?;
    if !allowed(root, &real) {
        return Err(outside(&format!("resolves to {}, outside the working directory", real.display())));
    }
    let mut file = std::fs::File::open(&real).map_err(|err| outside(&format!("cannot be opened ({err})")))?;
    if let Some(opened) = opened_path(&file)
        && !allowed(root, &opened)
    {
        return Err(outside(&format!("was opened as {}, outside the working directory", opened.display())));
    }
    let meta = file.metadata().map_err(|err| outside(&format!("cannot be read ({err})")))?;
    if !meta.is_file() {
        return Err(invalid(format!("payload_path `{path}` is not a regular file")));
    }
    if meta.len() > max_bytes {
        return Err(too_large(path, max_bytes));
    }
    let mut text = String::new();
    file.by_ref()
        .take(max_bytes + 1)
        .read_to_string(&mut text)
        .map_err(|err| invalid(format!("cannot read payload_path `{path}`: {err}")))?;
    if text.len() as u64 > max_bytes {
        return Err(too_large(path, max_bytes));
    }
    serde_json::from_str(&text)
        .map_err(|err| refusal(ErrorCode::InvalidJson, format!("payload_path `{path}` is not valid JSON: {err}")))
}

fn allowed(root: &Path, real: &Path) -> bool {
    real.starts_with(root) && !["/proc", "/dev", "/sys"].iter().any(|system| real.starts_with(system))
}

fn too_large(path: &str, max_bytes: u64) -> ClientError {
    refusal(
        ErrorCode::PayloadTooLarge,
        format!("payload_path `{path}` is larger than {} MiB; split it and use merge", max_bytes >> 20),
    )
}

/// Where the open file really is, as the kernel sees it.
#[cfg(target_os = "linux")]
fn opened_path(file: &std::fs::File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd as _;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(not(target_os = "linux"))]
fn opened_path(_file: &std::fs::File) -> Option<PathBuf> {
    None
}
