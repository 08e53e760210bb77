//! Checks a story's reported artifacts against a real git repository, read with gix (never by
//! parsing `git` output), and optionally re-runs the project's tests on a clean copy of the
//! reported commit.
//!
//! What is checked (SPEC, "Threat model": evidence is checked, not taken from the report):
//! - `commit_diff` (`details.commit_sha`, optional `details.files`): the commit exists, is
//!   reachable from the branch, its diff against its first parent (the empty tree for a root
//!   commit) is not empty and touches every reported file;
//! - `file`, `test`, `migration` (`path`, plus `details.commit_sha` or the report's
//!   `commit_diff` commit): the path exists at that commit (or, for `"exists": false`, does not);
//! - anything else is listed as not checked.
//!
//! Nothing here talks to the server: [`check`] takes a repository path and the artifacts JSON
//! and answers one [`Check`] per claim.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::ObjectId;
use gix::objs::tree::EntryKind;
use serde_json::{Value, json};

use crate::output::usage;

/// How many trailing lines of a re-run's output are kept.
pub const TAIL_LINES: usize = 200;
/// Longest kept output line, in characters.
const TAIL_LINE_CHARS: usize = 400;
/// Shortest abbreviated commit id accepted.
const MIN_SHA_LEN: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    NotChecked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotChecked => "not_checked",
        }
    }
}

/// One claim of the report and what the repository says about it.
#[derive(Debug, Clone)]
pub struct Check {
    /// The artifact it belongs to (`commit_diff 1a2b3c4`, `file src/app.rs`).
    pub artifact: String,
    /// What was checked (`commit 1a2b3c4 exists`).
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    /// `{artifact, name, ok, status, detail}`; `ok` is null for what was not checked.
    pub fn to_json(&self) -> Value {
        let ok = match self.status {
            Status::Pass => json!(true),
            Status::Fail => json!(false),
            Status::NotChecked => Value::Null,
        };
        json!({"artifact": self.artifact, "name": self.name, "ok": ok, "status": self.status.as_str(), "detail": self.detail})
    }
}

/// `--run`: the command run with `sh -c` in a clean copy of the commit, and its time limit.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub command: String,
    pub timeout: Duration,
    /// Run sealed from the caller (the runner): an empty environment but `PATH`, a temporary
    /// `HOME` and `TMPDIR`, so no key, profile or config of the caller is reachable through
    /// them. Without it only `LOOPCTL_*` variables are removed (a reviewer's local check keeps
    /// its toolchain's HOME).
    pub sealed: bool,
}

/// The outcome of [`check`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The repository's work tree (its git directory when bare).
    pub repo: PathBuf,
    /// The branch (or `HEAD` when detached) reachability was checked against.
    pub branch: String,
    /// The report's commit (its last `commit_diff`), resolved to a full id when it exists.
    pub commit_sha: Option<String>,
    pub checks: Vec<Check>,
}

impl Report {
    /// Every check passed, and at least one claim was actually checked.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail) && self.checks.iter().any(|c| c.status == Status::Pass)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

/// Opens the repository at (or above) `repo`, resolves the branch (default: HEAD's) and checks
/// every artifact.
///
/// # Errors
/// A usage error when there is no repository there, the branch does not exist, or it has no
/// commit. Problems with the reported evidence are failed checks, not errors.
pub fn check(repo: &Path, branch: Option<&str>, artifacts: &[Value], run: Option<&RunSpec>) -> anyhow::Result<Report> {
    let repository =
        gix::discover(repo).map_err(|err| usage(format!("no git repository at {}: {err}", repo.display())))?;
    let (branch, tip) = resolve_branch(&repository, branch)?;
    let mut checker = Checker {
        repo: &repository,
        branch: branch.clone(),
        tip,
        reachable: None,
        commits: HashMap::new(),
        diffs: HashMap::new(),
        checked_commits: HashSet::new(),
        checks: Vec::new(),
    };
    let commit_sha = checker.check_all(artifacts, run);
    let repo = repository.workdir().unwrap_or_else(|| repository.git_dir()).to_path_buf();
    Ok(Report { repo, branch, commit_sha, checks: checker.checks })
}

/// The branch to check reachability against: `name` (any ref git would find by that name, or
/// a commit id), else the branch HEAD is on, else HEAD itself when detached.
fn resolve_branch(repo: &gix::Repository, name: Option<&str>) -> anyhow::Result<(String, ObjectId)> {
    let Some(name) = name else {
        let head_name = repo.head_name().map_err(|err| usage(format!("cannot read HEAD: {err}")))?;
        let label = head_name.as_ref().map_or_else(|| "HEAD".to_string(), |n| n.shorten().to_string());
        let commit = repo
            .head_commit()
            .map_err(|err| usage(format!("HEAD ({label}) has no commit to check against: {err}; pass --branch")))?;
        return Ok((label, commit.id));
    };
    if let Ok(Some(mut reference)) = repo.try_find_reference(name) {
        let commit = reference
            .peel_to_commit()
            .map_err(|err| usage(format!("branch {name} does not point to a commit: {err}")))?;
        return Ok((name.to_string(), commit.id));
    }
    if is_hex(name) && name.len() >= MIN_SHA_LEN {
        match resolve_commit(repo, name) {
            Ok(id) => return Ok((name.to_string(), id)),
            Err(err) => return Err(usage(format!("--branch {name}: {err}"))),
        }
    }
    Err(usage(format!("no branch {name} in {}", repo.git_dir().display())))
}

fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A reported commit id (full or abbreviated) to the commit it names.
fn resolve_commit(repo: &gix::Repository, sha: &str) -> Result<ObjectId, String> {
    let sha = sha.trim();
    let hex_len = repo.object_hash().len_in_hex();
    if !is_hex(sha) || sha.len() < MIN_SHA_LEN || sha.len() > hex_len {
        return Err(format!("{sha:?} is not a commit id ({MIN_SHA_LEN} to {hex_len} hex digits)"));
    }
    let sha = sha.to_ascii_lowercase();
    let id = if sha.len() == hex_len {
        ObjectId::from_hex(sha.as_bytes()).map_err(|err| format!("{sha:?} is not a commit id: {err}"))?
    } else {
        let prefix = gix::hash::Prefix::from_hex(&sha).map_err(|err| format!("{sha:?} is not a commit id: {err}"))?;
        match repo.objects.lookup_prefix(prefix, None) {
            Ok(Some(Ok(id))) => id,
            Ok(Some(Err(()))) => return Err(format!("{sha} is ambiguous in this repository; report the full id")),
            Ok(None) => return Err("no such object in this repository".into()),
            Err(err) => return Err(format!("cannot search the object database: {err}")),
        }
    };
    match repo.try_find_header(id) {
        Ok(Some(header)) if header.kind() == gix::object::Kind::Commit => Ok(id),
        Ok(Some(header)) => Err(format!("{id} is a {}, not a commit", header.kind())),
        Ok(None) => Err("no such object in this repository".into()),
        Err(err) => Err(format!("cannot read {id}: {err}")),
    }
}

/// One reported artifact, as far as it could be read.
enum Artifact {
    CommitDiff { sha: Option<String>, files: Vec<String>, bad_files: usize },
    Path { kind: String, path: Option<String>, sha: Option<String>, exists: bool },
    Unknown { kind: String },
}

fn parse(artifact: &Value) -> Artifact {
    let kind = artifact["artifact_type"].as_str().unwrap_or("").trim().to_ascii_lowercase();
    let details = &artifact["details"];
    let sha = details["commit_sha"]
        .as_str()
        .or_else(|| artifact["commit_sha"].as_str())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    match kind.as_str() {
        "commit_diff" => {
            let listed = details["files"].as_array().map(Vec::as_slice).unwrap_or_default();
            let mut files = Vec::new();
            let mut bad_files = 0;
            for file in listed {
                match file.as_str().or_else(|| file["path"].as_str()) {
                    Some(path) if !path.trim().is_empty() => files.push(path.trim().to_string()),
                    _ => bad_files += 1,
                }
            }
            if let Some(path) = artifact["path"].as_str().filter(|p| !p.trim().is_empty())
                && !files.iter().any(|f| f == path.trim())
            {
                files.push(path.trim().to_string());
            }
            Artifact::CommitDiff { sha, files, bad_files }
        }
        "file" | "test" | "migration" => {
            let path = artifact["path"]
                .as_str()
                .or_else(|| details["path"].as_str())
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty());
            let exists = artifact["exists"].as_bool().unwrap_or(true);
            Artifact::Path { kind, path, sha, exists }
        }
        _ => Artifact::Unknown { kind: if kind.is_empty() { "(no artifact_type)".into() } else { kind } },
    }
}

/// `src/app.rs` from `./src/app.rs` or `/src/app.rs`; `None` for paths leaving the repository.
fn normalize(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

struct Checker<'r> {
    repo: &'r gix::Repository,
    branch: String,
    tip: ObjectId,
    /// Every commit reachable from the tip, walked once on first need.
    reachable: Option<Result<HashSet<ObjectId>, String>>,
    commits: HashMap<String, Result<ObjectId, String>>,
    diffs: HashMap<ObjectId, Result<BTreeSet<String>, String>>,
    /// Reported ids whose existence and reachability are already in the list.
    checked_commits: HashSet<String>,
    checks: Vec<Check>,
}

impl Checker<'_> {
    fn push(&mut self, artifact: &str, name: String, result: Result<String, String>) {
        let (status, detail) = match result {
            Ok(detail) => (Status::Pass, detail),
            Err(detail) => (Status::Fail, detail),
        };
        self.checks.push(Check { artifact: artifact.to_string(), name, status, detail });
    }

    /// Checks every artifact; answers the report's commit (the last `commit_diff`'s).
    fn check_all(&mut self, artifacts: &[Value], run: Option<&RunSpec>) -> Option<String> {
        let parsed: Vec<Artifact> = artifacts.iter().map(parse).collect();
        let main_sha = parsed.iter().rev().find_map(|a| match a {
            Artifact::CommitDiff { sha: Some(sha), .. } => Some(sha.clone()),
            _ => None,
        });
        if parsed.is_empty() {
            self.push("report", "story reports artifacts".into(), Err("the story has no reported artifacts".into()));
        }
        let mut main_label = String::from("report");
        for (index, artifact) in parsed.iter().enumerate() {
            match artifact {
                Artifact::CommitDiff { sha, files, bad_files } => {
                    let label = match sha {
                        Some(sha) => format!("commit_diff {}", short(sha)),
                        None => format!("commit_diff #{}", index + 1),
                    };
                    if sha.is_some() && sha == &main_sha {
                        main_label = label.clone();
                    }
                    self.commit_diff(&label, sha.as_deref(), files, *bad_files);
                }
                Artifact::Path { kind, path, sha, exists } => {
                    let label = format!("{kind} {}", path.as_deref().unwrap_or("(no path)"));
                    let sha = sha.clone().or_else(|| main_sha.clone());
                    self.path_artifact(&label, kind, path.as_deref(), sha.as_deref(), *exists);
                }
                Artifact::Unknown { kind } => self.checks.push(Check {
                    artifact: kind.clone(),
                    name: "not checked".into(),
                    status: Status::NotChecked,
                    detail: format!("loopctl does not check {kind} artifacts against the repository"),
                }),
            }
        }
        if !parsed.is_empty() && !self.checks.iter().any(|c| c.status != Status::NotChecked) {
            self.push(
                "report",
                "story reports checkable artifacts".into(),
                Err("no commit_diff, file, test or migration artifact: nothing could be checked".into()),
            );
        }
        if let Some(run) = run {
            match &main_sha {
                Some(sha) => {
                    let result = self.run_tests(sha, run);
                    self.push(&main_label, format!("tests pass at {sha}"), result);
                }
                None => self.push(
                    "report",
                    "tests pass".into(),
                    Err("--run needs a reported commit (a commit_diff artifact with details.commit_sha)".into()),
                ),
            }
        }
        main_sha.map(|sha| match self.commits.get(&sha) {
            Some(Ok(id)) => id.to_string(),
            _ => sha,
        })
    }

    fn resolve(&mut self, sha: &str) -> Result<ObjectId, String> {
        if let Some(known) = self.commits.get(sha) {
            return known.clone();
        }
        let resolved = resolve_commit(self.repo, sha);
        self.commits.insert(sha.to_string(), resolved.clone());
        resolved
    }

    /// "commit X exists" and "commit X reachable from B", once per reported id.
    fn commit_checks(&mut self, label: &str, sha: &str) -> Option<ObjectId> {
        let resolved = self.resolve(sha);
        if !self.checked_commits.insert(sha.to_string()) {
            return resolved.ok();
        }
        let id = match resolved {
            Ok(id) => {
                self.push(label, format!("commit {sha} exists"), Ok(id.to_string()));
                id
            }
            Err(err) => {
                self.push(label, format!("commit {sha} exists"), Err(err));
                return None;
            }
        };
        let reachable = self.is_reachable(id).and_then(|yes| {
            if yes {
                Ok(format!("an ancestor of {} ({})", self.branch, short(&self.tip.to_string())))
            } else {
                Err(format!("not in the history of {} ({})", self.branch, short(&self.tip.to_string())))
            }
        });
        self.push(label, format!("commit {sha} reachable from {}", self.branch), reachable);
        Some(id)
    }

    fn is_reachable(&mut self, id: ObjectId) -> Result<bool, String> {
        if self.reachable.is_none() {
            let walked = self
                .repo
                .rev_walk([self.tip])
                .all()
                .map_err(|err| format!("cannot walk {}: {err}", self.branch))
                .and_then(|walk| {
                    walk.map(|info| info.map(|i| i.id).map_err(|err| format!("cannot walk {}: {err}", self.branch)))
                        .collect::<Result<HashSet<_>, _>>()
                });
            self.reachable = Some(walked);
        }
        match &self.reachable {
            Some(Ok(set)) => Ok(set.contains(&id)),
            Some(Err(err)) => Err(err.clone()),
            None => Err("the history was not walked".into()),
        }
    }

    fn changed_paths(&mut self, id: ObjectId) -> Result<BTreeSet<String>, String> {
        if let Some(known) = self.diffs.get(&id) {
            return known.clone();
        }
        let computed = changed_paths(self.repo, id);
        self.diffs.insert(id, computed.clone());
        computed
    }

    fn commit_diff(&mut self, label: &str, sha: Option<&str>, files: &[String], bad_files: usize) {
        let Some(sha) = sha else {
            self.push(label, "commit_diff reports a commit".into(), Err("details.commit_sha is missing".into()));
            return;
        };
        let id = self.commit_checks(label, sha);
        let changed = match id {
            Some(id) => self.changed_paths(id),
            None => Err(format!("commit {sha} not found")),
        };
        let not_empty = match &changed {
            Ok(paths) if paths.is_empty() => Err("the commit changes no path (compared with its first parent)".into()),
            Ok(paths) => {
                let shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
                let more = if paths.len() > 5 { format!(", … ({} in all)", paths.len()) } else { String::new() };
                Ok(format!("{} path(s) changed: {}{more}", paths.len(), shown.join(", ")))
            }
            Err(err) => Err(err.clone()),
        };
        self.push(label, format!("diff of {sha} is not empty"), not_empty);
        if bad_files > 0 {
            self.push(
                label,
                "reported files are paths".into(),
                Err(format!("{bad_files} entr(ies) of details.files are not path strings")),
            );
        }
        for file in files {
            let result = match (&changed, normalize(file)) {
                (_, None) => Err(format!("{file:?} is not a path inside the repository")),
                (Err(err), _) => Err(err.clone()),
                (Ok(paths), Some(path)) => {
                    let dir = format!("{path}/");
                    if paths.contains(&path) {
                        Ok("changed by the commit".to_string())
                    } else if let Some(inside) = paths.iter().find(|p| p.starts_with(&dir)) {
                        Ok(format!("changed under it: {inside}"))
                    } else {
                        Err("the commit does not change this path".into())
                    }
                }
            };
            self.push(label, format!("diff of {sha} touches {file}"), result);
        }
    }

    fn path_artifact(&mut self, label: &str, kind: &str, path: Option<&str>, sha: Option<&str>, exists: bool) {
        let Some(path) = path else {
            self.push(label, format!("{kind} reports a path"), Err("the artifact has no path".into()));
            return;
        };
        let Some(sha) = sha else {
            self.push(
                label,
                format!("{path} has a commit to check against"),
                Err("no details.commit_sha on the artifact and no commit_diff in the report".into()),
            );
            return;
        };
        let id = self.commit_checks(label, sha);
        let name = if exists { format!("{path} exists at {sha}") } else { format!("{path} is absent at {sha}") };
        // A test may be reported as `tests/signup.rs::creates_user`: the file is what git knows.
        let file = if kind == "test" { path.split("::").next().unwrap_or(path) } else { path };
        let result = match (id, normalize(file)) {
            (_, None) => Err(format!("{file:?} is not a path inside the repository")),
            (None, _) => Err(format!("commit {sha} not found")),
            (Some(id), Some(file)) => match (lookup(self.repo, id, &file), exists) {
                (Ok(Some(what)), true) => Ok(what),
                (Ok(None), true) => Err(format!("no {file} in the commit's tree")),
                (Ok(Some(what)), false) => Err(format!("reported as removed, but the commit has it ({what})")),
                (Ok(None), false) => Ok(format!("no {file} in the commit's tree, as reported")),
                (Err(err), _) => Err(err),
            },
        };
        self.push(label, name, result);
    }

    fn run_tests(&mut self, sha: &str, run: &RunSpec) -> Result<String, String> {
        let id = self.resolve(sha).map_err(|err| format!("commit {sha} not found: {err}"))?;
        let tree = self
            .repo
            .find_commit(id)
            .and_then(|c| c.tree_id().map(gix::Id::detach))
            .map_err(|err| format!("cannot read commit {id}: {err}"))?;
        let dir = TempDir::new(&id.to_string()).map_err(|err| format!("cannot make a temporary directory: {err}"))?;
        let files = write_tree(self.repo, tree, &dir.path)?;
        let home = if run.sealed {
            Some(TempDir::new("home").map_err(|err| format!("cannot make a temporary HOME: {err}"))?)
        } else {
            None
        };
        let outcome =
            run_command(&dir.path, &run.command, &id.to_string(), run.timeout, home.as_ref().map(|h| h.path.as_path()))
                .map_err(|err| format!("cannot run `{}`: {err}", run.command))?;
        let mut detail = format!(
            "`{}` {} after {:.1}s in a clean copy of {id} ({files} files); output {} bytes, sha256 {}",
            run.command,
            outcome.ended,
            outcome.elapsed.as_secs_f64(),
            outcome.output_bytes,
            outcome.digest
        );
        if !outcome.tail.is_empty() {
            detail.push_str(&format!(
                "\n--- last {} line(s) of output ---\n{}",
                outcome.tail.len(),
                outcome.tail.join("\n")
            ));
        }
        if outcome.success { Ok(detail) } else { Err(detail) }
    }
}

/// What is at `path` in the commit's tree (`file`, `directory`, …), or `None`.
fn lookup(repo: &gix::Repository, commit: ObjectId, path: &str) -> Result<Option<String>, String> {
    let tree = repo.find_commit(commit).and_then(|c| c.tree()).map_err(|err| format!("cannot read {commit}: {err}"))?;
    let entry = tree.lookup_entry_by_path(path).map_err(|err| format!("cannot read the tree of {commit}: {err}"))?;
    Ok(entry.map(|e| {
        match e.mode().kind() {
            EntryKind::Tree => "a directory",
            EntryKind::Blob => "a file",
            EntryKind::BlobExecutable => "an executable file",
            EntryKind::Link => "a symbolic link",
            EntryKind::Commit => "a submodule",
        }
        .to_string()
    }))
}

/// The paths whose (kind, id) differ between the commit's tree and its first parent's (the
/// empty tree for a root commit). Unchanged subtrees (same id) are skipped without reading.
pub fn changed_paths(repo: &gix::Repository, id: ObjectId) -> Result<BTreeSet<String>, String> {
    let commit = repo.find_commit(id).map_err(|err| format!("cannot read commit {id}: {err}"))?;
    let new = commit.tree_id().map_err(|err| format!("cannot read commit {id}: {err}"))?.detach();
    let old = match commit.parent_ids().next() {
        Some(parent) => Some(
            repo.find_commit(parent)
                .and_then(|p| p.tree_id().map(gix::Id::detach))
                .map_err(|err| format!("cannot read the parent {parent} of {id}: {err}"))?,
        ),
        None => None,
    };
    let mut out = BTreeSet::new();
    diff_trees(repo, old, Some(new), "", &mut out)?;
    Ok(out)
}

type Entries = BTreeMap<Vec<u8>, (EntryKind, ObjectId)>;

fn tree_entries(repo: &gix::Repository, tree: Option<ObjectId>) -> Result<Entries, String> {
    let mut out = BTreeMap::new();
    let Some(id) = tree else {
        return Ok(out);
    };
    let tree = repo.find_tree(id).map_err(|err| format!("cannot read tree {id}: {err}"))?;
    for entry in tree.iter() {
        let entry = entry.map_err(|err| format!("cannot decode tree {id}: {err}"))?;
        out.insert(entry.filename().to_vec(), (entry.mode().kind(), entry.object_id()));
    }
    Ok(out)
}

fn diff_trees(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    prefix: &str,
    out: &mut BTreeSet<String>,
) -> Result<(), String> {
    if old == new {
        return Ok(());
    }
    let old = tree_entries(repo, old)?;
    let new = tree_entries(repo, new)?;
    let names: BTreeSet<&Vec<u8>> = old.keys().chain(new.keys()).collect();
    for name in names {
        let path = format!("{prefix}{}", String::from_utf8_lossy(name));
        let before = old.get(name).copied();
        let after = new.get(name).copied();
        if before == after {
            continue;
        }
        let tree_of =
            |side: Option<(EntryKind, ObjectId)>| side.filter(|(k, _)| *k == EntryKind::Tree).map(|(_, id)| id);
        let (old_tree, new_tree) = (tree_of(before), tree_of(after));
        let blob_changed =
            before.is_some_and(|(k, _)| k != EntryKind::Tree) || after.is_some_and(|(k, _)| k != EntryKind::Tree);
        if blob_changed {
            out.insert(path.clone());
        }
        if old_tree.is_some() || new_tree.is_some() {
            diff_trees(repo, old_tree, new_tree, &format!("{path}/"), out)?;
        }
    }
    Ok(())
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(sha: &str) -> std::io::Result<TempDir> {
        let name = format!("loopctl-verify-{}-{}", short(sha), uuid::Uuid::now_v7().simple());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A tree entry name that is safe to create in a directory.
fn safe_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.eq_ignore_ascii_case(b".git")
        && !name.iter().any(|b| matches!(b, b'/' | b'\\' | 0))
}

/// Writes the tree's files (with their exec bit), symbolic links and directories into `dir`,
/// from gix objects; submodules become empty directories. Answers how many files were written.
pub fn write_tree(repo: &gix::Repository, tree: ObjectId, dir: &Path) -> Result<usize, String> {
    let entries = tree_entries(repo, Some(tree))?;
    let mut files = 0;
    for (name, (kind, id)) in entries {
        if !safe_name(&name) {
            return Err(format!(
                "the tree has an entry that cannot be checked out safely: {:?}",
                String::from_utf8_lossy(&name)
            ));
        }
        let path = dir.join(os_name(&name));
        let shown = path.display().to_string();
        match kind {
            EntryKind::Tree => {
                std::fs::create_dir(&path).map_err(|err| format!("cannot create {shown}: {err}"))?;
                files += write_tree(repo, id, &path)?;
            }
            EntryKind::Commit => std::fs::create_dir(&path).map_err(|err| format!("cannot create {shown}: {err}"))?,
            EntryKind::Blob | EntryKind::BlobExecutable => {
                let blob = repo.find_blob(id).map_err(|err| format!("cannot read blob {id}: {err}"))?;
                write_file(&path, &blob.data, kind == EntryKind::BlobExecutable)
                    .map_err(|err| format!("cannot write {shown}: {err}"))?;
                files += 1;
            }
            EntryKind::Link => {
                let blob = repo.find_blob(id).map_err(|err| format!("cannot read blob {id}: {err}"))?;
                symlink(&blob.data, &path).map_err(|err| format!("cannot create the link {shown}: {err}"))?;
                files += 1;
            }
        }
    }
    Ok(files)
}

#[cfg(unix)]
fn os_name(name: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(name).to_os_string()
}

#[cfg(not(unix))]
fn os_name(name: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(name).into_owned().into()
}

fn write_file(path: &Path, data: &[u8], executable: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    // create_new: never follow a link or reuse something already there.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if executable { 0o755 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = executable;
    options.open(path)?.write_all(data)
}

#[cfg(unix)]
fn symlink(target: &[u8], path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(os_name(target), path)
}

#[cfg(not(unix))]
fn symlink(target: &[u8], path: &Path) -> std::io::Result<()> {
    write_file(path, target, false)
}

/// How a re-run ended.
pub struct RunOutcome {
    pub success: bool,
    /// `exited 0`, `exited 1`, `was killed by signal 9`, `timed out after 600s and was killed`.
    pub ended: String,
    pub elapsed: Duration,
    /// The last [`TAIL_LINES`] lines of stdout and stderr, interleaved as written.
    pub tail: Vec<String>,
    /// SHA-256 (hex) of the whole output, and its length in bytes: what was kept is the
    /// tail, what was seen is pinned by the digest.
    pub digest: String,
    pub output_bytes: u64,
}

/// Runs `sh -c COMMAND` in `dir` in its own process group, stdout and stderr into one pipe,
/// killing the whole group at the deadline. `LOOPCTL_*` variables (keys among them) are not
/// passed on: the code under test is the implementer's. With `sealed_home`, nothing of the
/// caller's environment is: only `PATH`, and that directory as `HOME` and `TMPDIR`.
pub fn run_command(
    dir: &Path,
    command: &str,
    sha: &str,
    timeout: Duration,
    sealed_home: Option<&Path>,
) -> std::io::Result<RunOutcome> {
    let (reader, writer) = std::io::pipe()?;
    let writer_err = writer.try_clone()?;
    let mut cmd = match sealed_home {
        Some(home) if bubblewrap_available() => sandboxed(dir, home, command),
        _ => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(command);
            cmd
        }
    };
    cmd.current_dir(dir).stdin(Stdio::null()).stdout(writer).stderr(writer_err);
    match sealed_home {
        Some(home) => {
            cmd.env_clear().env("HOME", home).env("TMPDIR", home).env("LANG", "C.UTF-8");
            if let Some(path) = std::env::var_os("PATH") {
                cmd.env("PATH", path);
            }
        }
        None => {
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("LOOPCTL_") {
                    cmd.env_remove(&key);
                }
            }
        }
    }
    cmd.env("LOOPCTL_VERIFY_COMMIT", sha);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    // Our copies of the pipe's write end go with the command, so the reader sees the end.
    drop(cmd);
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(String, u64)>();
    let sink = tail.clone();
    std::thread::spawn(move || {
        use sha2::Digest;
        let mut reader = std::io::BufReader::new(reader);
        let mut line = Vec::new();
        let mut digest = sha2::Sha256::new();
        let mut seen = 0u64;
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            digest.update(&line);
            seen += line.len() as u64;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            let kept: String = text.chars().take(TAIL_LINE_CHARS).collect();
            if let Ok(mut lines) = sink.lock() {
                if lines.len() == TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(kept);
            }
            line.clear();
        }
        let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let _ = done_tx.send((hex, seen));
    });
    let deadline = started + timeout;
    let (status, timed_out) = loop {
        if let Some(status) = child.try_wait()? {
            break (Some(status), false);
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.kill();
            break (child.wait().ok(), true);
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let elapsed = started.elapsed();
    // Whatever the command left running in its group goes too (it would hold the pipe open).
    kill_group(child.id());
    let (digest, output_bytes) = done_rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let tail: Vec<String> = tail.lock().map(|lines| lines.iter().cloned().collect()).unwrap_or_default();
    let ended = if timed_out {
        format!("timed out after {}s and was killed", timeout.as_secs())
    } else {
        match status {
            Some(status) => match status.code() {
                Some(code) => format!("exited {code}"),
                None => signal_of(&status),
            },
            None => "ended in an unknown way".into(),
        }
    };
    let success = !timed_out && status.is_some_and(|s| s.success());
    Ok(RunOutcome { success, ended, elapsed, tail, digest, output_bytes })
}

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
fn sandboxed(dir: &Path, home: &Path, command: &str) -> Command {
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

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    status.signal().map_or_else(|| "ended without an exit code".into(), |s| format!("was killed by signal {s}"))
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> String {
    "ended without an exit code".into()
}

/// SIGKILL to the process group `pgid` (the shell's `kill`; no libc in this crate).
fn kill_group(pgid: u32) {
    #[cfg(unix)]
    {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -KILL -{pgid} 2>/dev/null"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pgid;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A scratch git repository made with the `git` CLI (setup only), removed when dropped.
    struct Repo {
        dir: TempDir,
    }

    impl Repo {
        fn new() -> Repo {
            let dir = TempDir::new("unit-test").expect("temp dir");
            let repo = Repo { dir };
            repo.git(&["init", "-q", "-b", "main"]);
            repo
        }

        fn path(&self) -> &Path {
            &self.dir.path
        }

        fn git(&self, args: &[&str]) -> String {
            let out = Command::new("git")
                .args(args)
                .current_dir(self.path())
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

        fn write(&self, path: &str, text: &str) {
            let full = self.path().join(path);
            if let Some(dir) = full.parent() {
                std::fs::create_dir_all(dir).expect("mkdir");
            }
            std::fs::write(full, text).expect("write");
        }

        fn commit(&self, message: &str) -> String {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "--allow-empty", "-m", message]);
            self.git(&["rev-parse", "HEAD"])
        }
    }

    fn chmod_x(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn diff(sha: &str, files: &[&str]) -> Value {
        json!({"artifact_type": "commit_diff", "details": {"commit_sha": sha, "files": files}})
    }

    fn failed(report: &Report) -> Vec<String> {
        report.failures().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn a_real_commit_with_real_paths_passes() {
        let repo = Repo::new();
        repo.write("README.md", "hello\n");
        repo.commit("root");
        repo.write("src/app.rs", "fn main() {}\n");
        repo.write("tests/app.rs", "#[test] fn t() {}\n");
        let sha = repo.commit("feature");
        let artifacts = vec![
            diff(&sha, &["src/app.rs", "tests"]),
            json!({"artifact_type": "test", "path": "tests/app.rs::t"}),
            json!({"artifact_type": "file", "path": "README.md", "details": {"commit_sha": &sha[..8]}}),
            json!({"artifact_type": "ci_run", "details": {"url": "https://ci.example/1"}}),
        ];
        let report = check(repo.path(), None, &artifacts, None).expect("checked");
        assert!(report.passed(), "{:#?}", report.checks);
        assert_eq!(report.branch, "main");
        assert_eq!(report.commit_sha.as_deref(), Some(sha.as_str()));
        let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert!(names.contains(&format!("commit {sha} exists").as_str()), "{names:?}");
        assert!(names.contains(&format!("commit {sha} reachable from main").as_str()), "{names:?}");
        assert!(names.contains(&format!("diff of {sha} touches src/app.rs").as_str()), "{names:?}");
        assert!(names.contains(&format!("tests/app.rs::t exists at {sha}").as_str()), "{names:?}");
        let unknown = report.checks.iter().find(|c| c.artifact == "ci_run").expect("ci_run listed");
        assert_eq!(unknown.status, Status::NotChecked);
        assert_eq!(unknown.name, "not checked");
    }

    #[test]
    fn the_root_commit_is_compared_with_the_empty_tree() {
        let repo = Repo::new();
        repo.write("a/b/c.txt", "x\n");
        let sha = repo.commit("root");
        let id = ObjectId::from_hex(sha.as_bytes()).expect("hex");
        let opened = gix::open(repo.path()).expect("open");
        let changed = changed_paths(&opened, id).expect("diff");
        assert_eq!(changed.into_iter().collect::<Vec<_>>(), vec!["a/b/c.txt".to_string()]);
    }

    #[test]
    fn deletions_mode_changes_and_type_changes_are_changes() {
        let repo = Repo::new();
        repo.write("keep.txt", "k\n");
        repo.write("gone/x.txt", "x\n");
        repo.write("run.sh", "true\n");
        repo.write("swap", "file\n");
        repo.commit("root");
        repo.git(&["rm", "-q", "-r", "gone"]);
        chmod_x(&repo.path().join("run.sh"));
        std::fs::remove_file(repo.path().join("swap")).expect("rm");
        repo.write("swap/inner.txt", "now a dir\n");
        let sha = repo.commit("changes");
        let opened = gix::open(repo.path()).expect("open");
        let changed = changed_paths(&opened, ObjectId::from_hex(sha.as_bytes()).expect("hex")).expect("diff");
        let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
        assert_eq!(changed, vec!["gone/x.txt", "run.sh", "swap", "swap/inner.txt"]);
    }

    #[test]
    fn made_up_missing_empty_and_unreachable_evidence_fails_by_name() {
        let repo = Repo::new();
        repo.write("README.md", "hello\n");
        let root = repo.commit("root");
        let empty = repo.commit("nothing");
        repo.git(&["checkout", "-q", "-b", "side"]);
        repo.write("side.txt", "side\n");
        let side = repo.commit("side work");
        repo.git(&["checkout", "-q", "main"]);
        let made_up = "0123456789abcdef0123456789abcdef01234567";

        let report = check(repo.path(), None, &[diff(made_up, &["x.rs"])], None).expect("checked");
        assert!(!report.passed());
        assert!(failed(&report).contains(&format!("commit {made_up} exists")), "{:#?}", report.checks);

        let report = check(
            repo.path(),
            None,
            &[diff(&root, &["README.md"]), json!({"artifact_type": "file", "path": "src/missing.rs"})],
            None,
        )
        .expect("checked");
        assert_eq!(failed(&report), vec![format!("src/missing.rs exists at {root}")]);

        let report = check(repo.path(), None, &[diff(&empty, &[])], None).expect("checked");
        assert_eq!(failed(&report), vec![format!("diff of {empty} is not empty")]);

        let report = check(repo.path(), Some("main"), &[diff(&side, &["side.txt"])], None).expect("checked");
        assert_eq!(failed(&report), vec![format!("commit {side} reachable from main")]);
        let report = check(repo.path(), Some("side"), &[diff(&side, &["side.txt"])], None).expect("checked");
        assert!(report.passed(), "{:#?}", report.checks);

        let report = check(repo.path(), None, &[diff(&root, &["other.md"])], None).expect("checked");
        assert_eq!(failed(&report), vec![format!("diff of {root} touches other.md")]);
    }

    #[test]
    fn nothing_checkable_is_not_a_pass() {
        let repo = Repo::new();
        repo.write("README.md", "hello\n");
        repo.commit("root");
        let report = check(repo.path(), None, &[], None).expect("checked");
        assert_eq!(failed(&report), vec!["story reports artifacts".to_string()]);
        let report = check(repo.path(), None, &[json!({"artifact_type": "note"})], None).expect("checked");
        assert_eq!(failed(&report), vec!["story reports checkable artifacts".to_string()]);
        let report =
            check(repo.path(), None, &[json!({"artifact_type": "commit_diff", "details": {}})], None).expect("checked");
        assert_eq!(failed(&report), vec!["commit_diff reports a commit".to_string()]);
        let report = check(repo.path(), None, &[diff("not-a-sha", &[])], None).expect("checked");
        assert!(failed(&report).contains(&"commit not-a-sha exists".to_string()), "{:#?}", report.checks);
    }

    #[test]
    fn an_unknown_branch_is_a_usage_error() {
        let repo = Repo::new();
        repo.write("README.md", "hello\n");
        repo.commit("root");
        let err = check(repo.path(), Some("nope"), &[], None).expect_err("no such branch");
        assert!(err.to_string().contains("no branch nope"), "{err}");
    }

    #[test]
    fn run_writes_the_tree_and_reports_the_exit() {
        let repo = Repo::new();
        repo.write("test.sh", "test -x tool.sh && test -L link && ./tool.sh && cat link\n");
        repo.write("tool.sh", "#!/bin/sh\necho tool ran\n");
        chmod_x(&repo.path().join("tool.sh"));
        std::os::unix::fs::symlink("tool.sh", repo.path().join("link")).expect("symlink");
        let good = repo.commit("good");
        repo.write("test.sh", "echo failing on purpose; exit 1\n");
        let bad = repo.commit("bad");
        let spec = RunSpec { command: "sh test.sh".into(), timeout: Duration::from_secs(30), sealed: false };

        let report = check(repo.path(), None, &[diff(&good, &["test.sh"])], Some(&spec)).expect("checked");
        assert!(report.passed(), "{:#?}", report.checks);
        let run = report.checks.iter().find(|c| c.name == format!("tests pass at {good}")).expect("run check");
        assert!(run.detail.contains("exited 0") && run.detail.contains("tool ran"), "{}", run.detail);

        let report = check(repo.path(), None, &[diff(&bad, &["test.sh"])], Some(&spec)).expect("checked");
        assert_eq!(failed(&report), vec![format!("tests pass at {bad}")]);
        let run = report.failures().next().expect("failure");
        assert!(run.detail.contains("exited 1") && run.detail.contains("failing on purpose"), "{}", run.detail);
    }

    #[test]
    fn run_is_killed_at_the_deadline() {
        let dir = TempDir::new("timeout-test").expect("temp dir");
        let started = Instant::now();
        let outcome =
            run_command(&dir.path, "echo started; sleep 30 & sleep 30", "0", Duration::from_millis(500), None)
                .expect("ran");
        assert!(!outcome.success);
        assert!(outcome.ended.contains("timed out"), "{}", outcome.ended);
        assert!(started.elapsed() < Duration::from_secs(10), "the group was killed");
        assert_eq!(outcome.tail, vec!["started".to_string()]);
    }

    #[test]
    fn tree_names_that_escape_are_refused() {
        assert!(safe_name(b"src"));
        for bad in [&b""[..], b".", b"..", b".git", b".GIT", b"a/b", b"a\\b"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        assert_eq!(normalize("./src//app.rs").as_deref(), Some("src/app.rs"));
        assert_eq!(normalize("../etc/passwd"), None);
    }
}
