//! Checks a story's reported artifacts against a real git repository (read through
//! `loopctl-git`, never by parsing `git` output), and optionally re-runs the project's tests on
//! a clean copy of the reported commit.
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

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use loopctl_api::ArtifactView;
use loopctl_git::{CheckCommand, EntryKind, History, ObjectId, Repository};
use serde_json::{Value, json};

/// The repository or branch to check against is not there: the caller's mistake, not a
/// failed check (the CLI answers it as a usage error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    SetupError(message.into()).into()
}

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
/// every artifact; `run` re-runs the tests in a clean copy of the report's commit.
///
/// # Errors
/// A [`SetupError`] when there is no repository there, the branch does not exist, or it has no
/// commit. Problems with the reported evidence are failed checks, not errors.
pub fn check(
    repo: &Path,
    branch: Option<&str>,
    artifacts: &[ArtifactView],
    run: Option<&CheckCommand>,
) -> anyhow::Result<Report> {
    let repository = Repository::discover(repo).map_err(|err| usage(err.to_string()))?;
    let resolved = repository.branch(branch).map_err(|err| match (branch, &err) {
        (None, _) => usage(format!("{err}; pass --branch")),
        (Some(_), loopctl_git::Error::NoSuchBranch { .. }) => usage(err.to_string()),
        (Some(name), _) => usage(format!("--branch {name}: {err}")),
    })?;
    let mut checker = Checker {
        repo: &repository,
        branch: resolved.name.clone(),
        tip: resolved.tip,
        history: None,
        commits: HashMap::new(),
        diffs: HashMap::new(),
        checked_commits: HashSet::new(),
        checks: Vec::new(),
    };
    let commit_sha = checker.check_all(artifacts, run);
    Ok(Report { repo: repository.root().to_path_buf(), branch: resolved.name, commit_sha, checks: checker.checks })
}

/// The artifacts of the latest report: those reported after the current claim (a story
/// re-claimed after a rejection keeps its earlier artifacts; they are not this round's
/// evidence). Without a current claim, all of them.
pub fn current_artifacts(assigned_at: Option<DateTime<Utc>>, artifacts: &[ArtifactView]) -> Vec<ArtifactView> {
    artifacts.iter().filter(|a| assigned_at.is_none_or(|since| a.inserted_at >= since)).cloned().collect()
}

/// One reported artifact, as far as it could be read.
enum Artifact {
    CommitDiff { sha: Option<String>, files: Vec<String>, bad_files: usize },
    Path { kind: String, path: Option<String>, sha: Option<String>, exists: bool },
    Unknown { kind: String },
}

fn parse(artifact: &ArtifactView) -> Artifact {
    let kind = artifact.artifact_type.trim().to_ascii_lowercase();
    // What the reporter said about the artifact is free JSON: read it as far as it goes.
    let details = &artifact.details;
    let sha = details["commit_sha"].as_str().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let path = artifact.path.as_deref().map(str::trim).filter(|p| !p.is_empty());
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
            if let Some(path) = path
                && !files.iter().any(|f| f == path)
            {
                files.push(path.to_string());
            }
            Artifact::CommitDiff { sha, files, bad_files }
        }
        "file" | "test" | "migration" => {
            let path =
                path.or_else(|| details["path"].as_str().map(str::trim).filter(|p| !p.is_empty())).map(str::to_string);
            Artifact::Path { kind, path, sha, exists: artifact.exists }
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
    repo: &'r Repository,
    branch: String,
    tip: ObjectId,
    /// Every commit reachable from the tip, walked once on first need.
    history: Option<Result<History, String>>,
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
    fn check_all(&mut self, artifacts: &[ArtifactView], run: Option<&CheckCommand>) -> Option<String> {
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
        let resolved = self.repo.resolve_commit(sha).map_err(|err| err.to_string());
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
        let (repo, tip) = (self.repo, self.tip);
        let history = self.history.get_or_insert_with(|| repo.history(tip).map_err(|err| err.to_string()));
        history.as_ref().map(|history| history.contains(id)).map_err(Clone::clone)
    }

    /// The paths the commit changed (files, links, submodules; a directory counts through
    /// what is in it).
    fn changed_paths(&mut self, id: ObjectId) -> Result<BTreeSet<String>, String> {
        let repo = self.repo;
        let changed = self.diffs.entry(id).or_insert_with(|| {
            let changes = repo.changes(id).map_err(|err| err.to_string());
            changes.map(|changes| changes.into_iter().map(|change| change.path).collect())
        });
        changed.clone()
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
            (Some(id), Some(file)) => match (self.entry_at(id, &file), exists) {
                (Ok(Some(what)), true) => Ok(what),
                (Ok(None), true) => Err(format!("no {file} in the commit's tree")),
                (Ok(Some(what)), false) => Err(format!("reported as removed, but the commit has it ({what})")),
                (Ok(None), false) => Ok(format!("no {file} in the commit's tree, as reported")),
                (Err(err), _) => Err(err),
            },
        };
        self.push(label, name, result);
    }

    fn run_tests(&mut self, sha: &str, run: &CheckCommand) -> Result<String, String> {
        let id = self.resolve(sha).map_err(|err| format!("commit {sha} not found: {err}"))?;
        let copy = self.repo.clean_copy(id).map_err(|err| err.to_string())?;
        let outcome =
            run.run_in(copy.path(), &id.to_string()).map_err(|err| format!("cannot run `{}`: {err}", run.command))?;
        let files = copy.files();
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

    /// What is at `path` in the commit's tree (`a file`, `a directory`, …), or `None`.
    fn entry_at(&self, commit: ObjectId, path: &str) -> Result<Option<String>, String> {
        let entry = self.repo.entry_at(commit, path).map_err(|err| err.to_string())?;
        Ok(entry.map(|kind| {
            match kind {
                EntryKind::Tree => "a directory",
                EntryKind::Blob => "a file",
                EntryKind::BlobExecutable => "an executable file",
                EntryKind::Link => "a symbolic link",
                EntryKind::Commit => "a submodule",
            }
            .to_string()
        }))
    }
}

/// An artifact row as the server answers it, with `fields` as reported (for tests).
#[cfg(any(test, feature = "testkit"))]
pub fn artifact_row(fields: Value) -> ArtifactView {
    let id = "01a2332d-7c4e-7f00-8a1b-0123456789ab";
    let mut row = json!({
        "id": id, "tenant_id": id, "story_id": id, "reported_by": "agent", "exists": true, "details": {},
        "inserted_at": "2026-12-01T00:00:00Z",
    });
    for (name, value) in fields.as_object().into_iter().flatten() {
        row[name] = value.clone();
    }
    serde_json::from_value(row).expect("an artifact")
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use loopctl_git::testkit::ScratchRepo;

    use super::*;

    fn diff(sha: &str, files: &[&str]) -> ArtifactView {
        artifact_row(json!({"artifact_type": "commit_diff", "details": {"commit_sha": sha, "files": files}}))
    }

    fn failed(report: &Report) -> Vec<String> {
        report.failures().map(|c| c.name.clone()).collect()
    }

    #[test]
    fn a_real_commit_with_real_paths_passes() {
        let repo = ScratchRepo::init();
        repo.write("README.md", "hello\n");
        repo.commit("root");
        repo.write("src/app.rs", "fn main() {}\n");
        repo.write("tests/app.rs", "#[test] fn t() {}\n");
        let sha = repo.commit("feature");
        let artifacts = vec![
            diff(&sha, &["src/app.rs", "tests"]),
            artifact_row(json!({"artifact_type": "test", "path": "tests/app.rs::t"})),
            artifact_row(json!({"artifact_type": "file", "path": "README.md", "details": {"commit_sha": &sha[..8]}})),
            artifact_row(json!({"artifact_type": "ci_run", "details": {"url": "https://ci.example/1"}})),
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
    fn made_up_missing_empty_and_unreachable_evidence_fails_by_name() {
        let repo = ScratchRepo::init();
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
            &[diff(&root, &["README.md"]), artifact_row(json!({"artifact_type": "file", "path": "src/missing.rs"}))],
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
        let repo = ScratchRepo::init();
        repo.write("README.md", "hello\n");
        repo.commit("root");
        let report = check(repo.path(), None, &[], None).expect("checked");
        assert_eq!(failed(&report), vec!["story reports artifacts".to_string()]);
        let report =
            check(repo.path(), None, &[artifact_row(json!({"artifact_type": "note"}))], None).expect("checked");
        assert_eq!(failed(&report), vec!["story reports checkable artifacts".to_string()]);
        let report =
            check(repo.path(), None, &[artifact_row(json!({"artifact_type": "commit_diff", "details": {}}))], None)
                .expect("checked");
        assert_eq!(failed(&report), vec!["commit_diff reports a commit".to_string()]);
        let report = check(repo.path(), None, &[diff("not-a-sha", &[])], None).expect("checked");
        assert!(failed(&report).contains(&"commit not-a-sha exists".to_string()), "{:#?}", report.checks);
    }

    #[test]
    fn an_unknown_branch_is_a_usage_error() {
        let repo = ScratchRepo::init();
        repo.write("README.md", "hello\n");
        repo.commit("root");
        let err = check(repo.path(), Some("nope"), &[], None).expect_err("no such branch");
        assert!(err.to_string().contains("no branch nope"), "{err}");
    }

    #[test]
    fn run_writes_the_tree_and_reports_the_exit() {
        let repo = ScratchRepo::init();
        repo.write("test.sh", "test -x tool.sh && test -L link && ./tool.sh && cat link\n");
        repo.write("tool.sh", "#!/bin/sh\necho tool ran\n");
        repo.make_executable("tool.sh");
        repo.symlink("tool.sh", "link");
        let good = repo.commit("good");
        repo.write("test.sh", "echo failing on purpose; exit 1\n");
        let bad = repo.commit("bad");
        let spec = CheckCommand { command: "sh test.sh".into(), timeout: Duration::from_secs(30), sealed: false };

        let report = check(repo.path(), None, &[diff(&good, &["test.sh"])], Some(&spec)).expect("checked");
        assert!(report.passed(), "{:#?}", report.checks);
        let run = report.checks.iter().find(|c| c.name == format!("tests pass at {good}")).expect("run check");
        assert!(run.detail.contains("exited 0") && run.detail.contains("tool ran"), "{}", run.detail);

        let report = check(repo.path(), None, &[diff(&bad, &["test.sh"])], Some(&spec)).expect("checked");
        assert_eq!(failed(&report), vec![format!("tests pass at {bad}")]);
        let run = report.failures().next().expect("failure");
        assert!(run.detail.contains("exited 1") && run.detail.contains("failing on purpose"), "{}", run.detail);
    }

    /// (Tree entries that escape a clean copy are refused by loopctl-git's checkout.)
    #[test]
    fn reported_paths_that_escape_are_refused() {
        assert_eq!(normalize("./src//app.rs").as_deref(), Some("src/app.rs"));
        assert_eq!(normalize("../etc/passwd"), None);
    }
}
