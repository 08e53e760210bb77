//! `loopctl runner`: the verifier. Holding a verifier key and following the change feed, it keeps its own mirror of the
//! project's repository (configured by a user, never an agent's worktree), and for every story
//! reported done whose reported commit has no run yet it runs the artifact checks of
//! `verify-artifacts` and the project's check command in a clean copy of that commit, sealed
//! from its own environment, and records the signed run. `verify` under
//! `require_artifact_verification` trusts only these runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use loopctl_api::{
    ChangesParams, ErrorCode, ProjectListParams, ProjectView, RecordVerificationRun, StoryListParams, StoryView,
    VerificationRunView,
};
use uuid::Uuid;

use loopctl_client::Client;
use loopctl_git::CheckCommand;

use crate::artifacts;
use crate::cmd::verify_artifacts::{current_artifacts, recorded_checks};
use crate::context::Ctx;
use crate::output::{or_dash, usage};

#[derive(Args, Debug)]
pub struct RunnerArgs {
    /// Check what is waiting once and exit (default: keep following the project).
    #[arg(long)]
    once: bool,
    /// Seconds between looks at the project.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
    /// Where the runner keeps its mirrors of project repositories (default: the system's
    /// temporary directory).
    #[arg(long, value_name = "DIR", env = "LOOPCTL_RUNNER_DIR")]
    work_dir: Option<PathBuf>,
}

/// What a user configured for the project (`loopctl project runner …`).
struct Config {
    repo: String,
    check_command: Option<String>,
    timeout: Duration,
}

pub async fn run(ctx: &Ctx, args: RunnerArgs) -> anyhow::Result<()> {
    let me = ctx.client.whoami().await?;
    if me.role != "verifier" {
        return Err(crate::output::permission(format!(
            "the runner needs a verifier key (this key is `{}`); a user mints one with `loopctl keys create runner --role verifier`",
            me.role
        )));
    }
    let project = ctx.project().await?;
    let project_id = project.id;
    let config = config_of(&project)?;
    let work_dir = args.work_dir.clone().unwrap_or_else(std::env::temp_dir).join("loopctl-runner");
    let mirror = work_dir.join(format!("{project_id}.git"));
    crate::outln!("{}", sandbox_line());
    let mut feed = Feed::default();
    loop {
        // A full look first; afterwards only when the change feed shows a new report.
        let (reported, cursor) = feed.reported_since(&ctx.client, project_id).await?;
        if reported {
            let checked = pass(&ctx.client, project_id, &config, &mirror).await?;
            for line in &checked {
                crate::outln!("{line}");
            }
            if args.once && checked.is_empty() {
                crate::outln!("Nothing waits for a run in {}.", project.slug);
            }
        }
        feed.moved_to(cursor);
        if args.once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(args.interval)).await;
    }
}

/// Where the runner stands in a project's change feed.
#[derive(Default)]
struct Feed {
    /// `None` until the first look, which always checks everything waiting.
    cursor: Option<i64>,
}

impl Feed {
    /// Whether a story was reported done since the last look (always at the first one), and
    /// the cursor to move to once that has been dealt with (`moved_to`): a look that fails
    /// is made again next time.
    async fn reported_since(&self, client: &Client, project_id: Uuid) -> anyhow::Result<(bool, i64)> {
        let since = self.cursor.unwrap_or(0);
        let mut reported = self.cursor.is_none();
        let mut cursor = since;
        loop {
            let params = ChangesParams {
                project_id: Some(project_id),
                since: Some(cursor.to_string()),
                limit: Some(1000),
                ..ChangesParams::default()
            };
            let page = client.changes(&params).await?;
            // A story's new state is free JSON carrying its statuses.
            reported |= page
                .data
                .iter()
                .any(|event| event.entity_type == "story" && event.new_state["agent_status"] == "reported_done");
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        Ok((reported, cursor))
    }

    fn moved_to(&mut self, cursor: i64) {
        self.cursor = Some(cursor);
    }
}

/// Starts the runner `loopctl up` keeps beside its server, with the tenant's verifier key:
/// every project a user configured is looked at every 5 s.
///
/// # Errors
/// When no client can be made for `server`.
pub fn start_beside(server: &str, verifier_key: String, work_dir: PathBuf) -> anyhow::Result<()> {
    let client = Client::new(server, Some(verifier_key))?;
    eprintln!("runner: {}", sandbox_line());
    tokio::spawn(follow_every_project(client, work_dir, Duration::from_secs(5)));
    Ok(())
}

/// Every project a user configured, followed through its change feed every `interval`;
/// errors are reported and the next look tries again.
async fn follow_every_project(client: Client, work_dir: PathBuf, interval: Duration) {
    let mut feeds = std::collections::HashMap::new();
    loop {
        if let Err(err) = look_at_every_project(&client, &work_dir, &mut feeds).await {
            eprintln!("runner: {err}");
        }
        tokio::time::sleep(interval).await;
    }
}

async fn look_at_every_project(
    client: &Client,
    work_dir: &Path,
    feeds: &mut std::collections::HashMap<Uuid, Feed>,
) -> anyhow::Result<()> {
    let projects = client.list_projects(&ProjectListParams::default()).await?;
    for project in &projects.data {
        let Ok(config) = config_of(project) else {
            continue;
        };
        let id = project.id;
        let feed = feeds.entry(id).or_default();
        let (reported, cursor) = feed.reported_since(client, id).await?;
        if reported {
            let mirror = work_dir.join(format!("{id}.git"));
            for line in pass(client, id, &config, &mirror).await? {
                eprintln!("runner: {line}");
            }
        }
        feed.moved_to(cursor);
    }
    Ok(())
}

/// What seals the check command from the runner: say it once, plainly.
fn sandbox_line() -> &'static str {
    if loopctl_git::bubblewrap_available() {
        "Sandbox: bubblewrap (read-only filesystem, the runner's home and data hidden, no network)."
    } else {
        "Sandbox: none (bubblewrap not found): the check command gets an empty environment and its own HOME, but can read any file this user can; run the runner as its own user or install bubblewrap."
    }
}

/// The runner a user configured, kept in the project's metadata (free JSON) under `runner`.
fn config_of(project: &ProjectView) -> anyhow::Result<Config> {
    let runner = &project.metadata["runner"];
    let repo = runner["repo"].as_str().filter(|r| !r.trim().is_empty()).ok_or_else(|| {
        usage(format!(
            "project {} has no runner configured; a user sets it with `loopctl project runner {} --repo PATH_OR_URL --check CMD`",
            project.slug, project.slug
        ))
    })?;
    Ok(Config {
        repo: repo.to_string(),
        check_command: runner["check_command"].as_str().map(str::to_string),
        timeout: Duration::from_secs(runner["timeout_seconds"].as_u64().unwrap_or(600)),
    })
}

/// The branch the report's last `commit_diff` names, if any.
fn reported_branch(artifacts: &[loopctl_api::ArtifactView]) -> Option<String> {
    artifacts
        .iter()
        .rev()
        .filter(|a| a.artifact_type == "commit_diff")
        .find_map(|a| a.details.get("branch").and_then(|b| b.as_str()).map(str::to_string))
        .filter(|b| !b.trim().is_empty() && b != "HEAD")
}

/// One look at the project: every reported, unverified story whose reported commit has no
/// run of this round yet gets one. Answers a line per run recorded.
async fn pass(client: &Client, project_id: Uuid, config: &Config, mirror: &Path) -> anyhow::Result<Vec<String>> {
    let params = StoryListParams {
        project_id: Some(project_id.to_string()),
        agent_status: Some("reported_done".into()),
        verified_status: Some("unverified".into()),
        limit: Some(100),
        ..StoryListParams::default()
    };
    let waiting = client.story_page(&params).await?;
    let mut lines = Vec::new();
    let mut synced = false;
    for row in &waiting.data {
        let detail = client.get_story(row.id).await?.story;
        let story = &detail.story;
        let artifacts = current_artifacts(story.assigned_at, &detail.artifacts);
        let runs = client.list_verification_runs(row.id).await?.data;
        if already_checked(story, detail.reported_commit_sha.as_deref(), &runs) {
            continue;
        }
        if !synced {
            loopctl_git::sync_mirror(&config.repo, mirror)?;
            synced = true;
        }
        let spec =
            config.check_command.clone().map(|command| CheckCommand { command, timeout: config.timeout, sealed: true });
        let repo = mirror.to_path_buf();
        // Reachable from the branch the report names (`report --commit` records it: a story's
        // own branch under `loopctl orchestrate`, which merges only after verify), else from
        // the repository's default branch.
        let branch = reported_branch(&artifacts);
        let report = tokio::task::spawn_blocking(move || {
            match artifacts::check(&repo, branch.as_deref(), &artifacts, spec.as_ref()) {
                Err(err) if branch.is_some() && err.is::<artifacts::SetupError>() => {
                    artifacts::check(&repo, None, &artifacts, spec.as_ref())
                }
                other => other,
            }
        })
        .await
        .map_err(|err| anyhow::anyhow!("the check did not finish: {err}"))?
        .map_err(crate::output::setup_is_usage)?;
        let result = if report.passed() { "pass" } else { "fail" };
        let run =
            RecordVerificationRun { result: result.into(), commit_sha: None, checks: recorded_checks(&report.checks) };
        match client.record_verification_run(row.id, &run).await {
            Ok(answer) => lines.push(format!(
                "{} {}: {result} at {} (run {})",
                story.number,
                story.title,
                or_dash(answer.verification_run.commit_sha.as_ref()),
                answer.verification_run.id,
            )),
            // Re-reported or verified meanwhile: the next look checks what is current.
            Err(err) if matches!(err.error_code(), Some(ErrorCode::CommitMismatch | ErrorCode::InvalidTransition)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(lines)
}

/// A signed run of this round exists for the commit the latest report names (the server says
/// which commit that is: `reported_commit_sha`).
fn already_checked(story: &StoryView, reported_commit: Option<&str>, runs: &[VerificationRunView]) -> bool {
    runs.iter().any(|run| {
        run.round == story.claim_epoch && run.signature_valid && run.commit_sha.as_deref() == reported_commit
    })
}
