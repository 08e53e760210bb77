//! `loopctl orchestrate`: the loop of the seed's orchestrate skill as a program. Each story
//! gets a fresh implementer process in its own git worktree with a token dispatched for that
//! story and role, then a different reviewer process on the reported commit; loopctl checks
//! the work itself (`--check`, on the merge into the base with `--merge`) and verifies or
//! rejects. Custody stays where it is enforced, in the server: the orchestrator only ever
//! holds its own key and hands each agent a token for one story.

mod agent;
pub mod events;
mod git;
mod prompt;
mod round;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use loopctl_api::{DispatchListParams, FrontierParams, ReasonRequest, SaveState, StateParams};
use loopctl_client::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

pub use events::{Events, Format, Kind};
use round::{Loop, Outcome};

/// Ready stories read beyond `--parallel`, so escalated ones (ready, but left to a person)
/// do not hide the rest.
const READY_LOOKAHEAD: usize = 50;

/// The checkpoint's key in the orchestrator state of the project.
const STATE_KEY: &str = "orchestrate";

/// `loopctl orchestrate`'s options (see the CLI's help for each).
pub struct Options {
    pub project: String,
    pub repo: PathBuf,
    pub implementer: String,
    pub reviewer: String,
    pub parallel: usize,
    pub base: Option<String>,
    pub merge: bool,
    pub check: Option<String>,
    pub timeout: Duration,
    pub until_done: bool,
    /// Where worktrees, prompts and agents' logs go (default: `.git/loopctl` of the repo).
    pub work_dir: Option<PathBuf>,
    pub format: Format,
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Summary {
    pub verified: usize,
    pub rejected: usize,
    pub failed: usize,
    /// Stories a person must look at (escalated).
    pub needs_human: Vec<String>,
    /// The story verified last.
    pub last_verified: Option<String>,
    /// The project's budget was reached: no story was started after it.
    pub budget_reached: bool,
}

/// Runs the loop: the stories ready now with `until_done` false, else until nothing is
/// ready and nothing runs.
///
/// # Errors
/// The server refuses the orchestrator or cannot keep its checkpoint, the repository is not
/// usable, or the run is interrupted (Ctrl-C). A round that breaks is not an error of the
/// run: it costs its story an attempt.
pub async fn run(orchestrator: Client, server: &str, options: Options) -> anyhow::Result<Summary> {
    let project = orchestrator.resolve_project(&options.project).await?;
    let repo = git::Repo::open(&options.repo)?;
    let base_branch = match &options.base {
        Some(base) => base.clone(),
        None => repo.current_branch()?,
    };
    let base_at_start = repo
        .commit_of(&base_branch)
        .with_context(|| format!("--base {base_branch} is not a branch of the repository"))?;
    let tenant = orchestrator.get_tenant().await?;
    let limit = tenant.tenant.settings.get("max_concurrent_agents").and_then(Value::as_u64).unwrap_or(1);
    let parallel = options.parallel.clamp(1, usize::try_from(limit.max(1)).unwrap_or(1));
    let lease_seconds = tenant.tenant.settings.get("claim_lease_seconds").and_then(Value::as_u64).unwrap_or(1800);
    let work_dir = match &options.work_dir {
        Some(dir) => dir.clone(),
        None => repo.common_git_dir()?.join("loopctl"),
    };
    std::fs::create_dir_all(&work_dir).with_context(|| format!("create {}", work_dir.display()))?;
    let events = Events::new(options.format);
    let lp = Loop {
        orchestrator,
        server: server.to_string(),
        project,
        repo,
        base_branch,
        implementer: options.implementer,
        reviewer: options.reviewer,
        check: options.check,
        merge: options.merge,
        timeout: options.timeout,
        heartbeat_every: Duration::from_secs(lease_seconds / 3).max(Duration::from_secs(1)),
        runner_required: tenant
            .tenant
            .settings
            .get("require_artifact_verification")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        work_dir,
        events,
        merge_queue: tokio::sync::Mutex::new(base_at_start),
    };
    let to_resume = recover(&lp).await?;
    // No round runs yet: whatever worktrees are left are a dead run's (their agents' tokens
    // are revoked by now).
    lp.repo.remove_worktrees_under(&lp.work_dir.join("worktrees"));
    // An implementer that ends without reporting is not a rejection, so the server never
    // escalates the story for it; after as many such attempts in a run as the tenant allows
    // rejections, the story is left to a person instead of being dispatched all night.
    let give_up_after =
        tenant.tenant.settings.get("escalate_after_rejections").and_then(Value::as_u64).unwrap_or(3).max(1);
    let mut failures: std::collections::BTreeMap<Uuid, u64> = std::collections::BTreeMap::new();
    let mut summary = Summary::default();
    let lp = std::sync::Arc::new(lp);
    // Rounds run side by side, up to `parallel`; with --until-done a finished round's slot
    // goes to the next ready story at once (a slow story does not hold the others back).
    let mut running: JoinSet<(Uuid, String, anyhow::Result<Outcome>)> = JoinSet::new();
    let mut in_flight: Vec<(Uuid, String)> = Vec::new();
    // Stories the last run left reported are reviewed first, in slots of their own.
    for (id, number) in to_resume {
        in_flight.push((id, number.clone()));
        let lp = lp.clone();
        running.spawn(async move {
            let outcome = lp.resume(id).await;
            (id, number, outcome)
        });
    }
    let mut fill = true;
    // A terminal's table shows elapsed times that move.
    let mut redraw = tokio::time::interval(Duration::from_secs(1));
    loop {
        let free = parallel.saturating_sub(in_flight.len());
        if fill && free > 0 && budget_reached(&lp).await? {
            // Rounds in flight finish (their reviews included); no new story starts.
            summary.budget_reached = true;
            fill = false;
        }
        if fill && free > 0 {
            let ready = lp
                .orchestrator
                .ready_stories(&FrontierParams {
                    project_id: Some(lp.project.id.to_string()),
                    limit: Some(i64::try_from(parallel + READY_LOOKAHEAD).unwrap_or(1)),
                    ..FrontierParams::default()
                })
                .await?;
            // An escalated story needs a person: it is not dispatched again.
            let picks: Vec<(Uuid, String)> = ready
                .data
                .iter()
                .filter(|s| !s.escalated && failures.get(&s.id).copied().unwrap_or(0) < give_up_after)
                .filter(|s| !in_flight.iter().any(|(id, _)| *id == s.id))
                .take(free)
                .map(|s| (s.id, s.number.clone()))
                .collect();
            if !picks.is_empty() {
                in_flight.extend(picks.iter().cloned());
                checkpoint(&lp, "running", &in_flight, &summary).await?;
            }
            for (id, number) in picks {
                let lp = lp.clone();
                running.spawn(async move {
                    let outcome = lp.round(id).await;
                    (id, number, outcome)
                });
            }
            fill = options.until_done;
        }
        let joined = tokio::select! {
            joined = running.join_next() => joined,
            _ = redraw.tick() => {
                lp.events.tick();
                continue;
            }
            _ = tokio::signal::ctrl_c() => {
                // The rounds are dropped: their agents' process groups are killed. What they
                // held is taken back, as a restart would, and the run says where it stopped.
                running.abort_all();
                while running.join_next().await.is_some() {}
                lp.events.emit(Kind::Recovered, None, "interrupted: stopping the agents and releasing their claims", json!({}));
                let reported = recover(&lp).await?;
                // Reported stories stay in the checkpoint: the next run reviews them.
                checkpoint(&lp, "interrupted", &reported, &summary).await?;
                anyhow::bail!("interrupted; the stories in flight were released");
            }
        };
        let Some(joined) = joined else {
            break;
        };
        let (id, number, outcome) = joined.map_err(|err| anyhow::anyhow!("a round stopped unexpectedly: {err}"))?;
        in_flight.retain(|(running_id, _)| *running_id != id);
        match outcome {
            Ok(Outcome::Verified) => {
                summary.verified += 1;
                summary.last_verified = Some(number.clone());
            }
            Ok(Outcome::Rejected { escalated }) => {
                summary.rejected += 1;
                if escalated {
                    summary.needs_human.push(number.clone());
                }
            }
            Ok(Outcome::Failed) => {
                let failed = failures.entry(id).or_default();
                failed_attempt(&lp, &mut summary, failed, give_up_after, &number);
            }
            Err(err) => {
                // A round that broke (git failing, the server refusing something unexpected)
                // costs its story an attempt, not the whole night's run: whatever it held is
                // taken back, and it counts toward giving the story up.
                let reason = format!("the round failed: {err:#}");
                lp.events.emit(Kind::Failed, Some(&number), &reason, json!({}));
                if let Err(err) = release(&lp, id, &reason, Reported::Reject).await {
                    lp.events.emit(Kind::Failed, Some(&number), &format!("could not release it: {err:#}"), json!({}));
                }
                let failed = failures.entry(id).or_default();
                failed_attempt(&lp, &mut summary, failed, give_up_after, &number);
            }
        }
        checkpoint(&lp, "running", &in_flight, &summary).await?;
    }
    // In story order (1.2 before 1.10), whichever round ended first.
    summary.needs_human.sort_by_key(|number| {
        number.split('.').map(|part| part.parse::<u64>().unwrap_or(u64::MAX)).collect::<Vec<_>>()
    });
    let text = format!(
        "{} verified, {} rejected, {} failed attempts; needs a person: {}",
        summary.verified,
        summary.rejected,
        summary.failed,
        if summary.needs_human.is_empty() { "none".to_string() } else { summary.needs_human.join(", ") }
    );
    let text = if summary.budget_reached { format!("{text}; stopped at the project's budget") } else { text };
    lp.events.emit(Kind::Done, None, &text, json!({"verified": summary.verified, "rejected": summary.rejected, "failed": summary.failed, "needs_human": summary.needs_human, "budget_reached": summary.budget_reached}));
    checkpoint(&lp, "done", &[], &summary).await?;
    Ok(summary)
}

/// Whether the project's budget is used up (`PUT /projects/:id/budget`); says so when it is.
async fn budget_reached(lp: &Loop) -> anyhow::Result<bool> {
    let progress = lp.orchestrator.project_progress(lp.project.id).await?.progress;
    let Some(budget) = progress.budget.filter(|budget| budget.exhausted) else {
        return Ok(false);
    };
    let used = progress.token_usage;
    lp.events.emit(
        Kind::BudgetReached,
        None,
        &format!(
            "the project's budget is reached ({}% used): no more agents are dispatched; a user can raise it with `loopctl project budget`",
            budget.used_percent
        ),
        json!({"used_percent": budget.used_percent, "budget": budget.budget, "tokens": used.input_tokens + used.output_tokens, "cost_millicents": used.cost_millicents}),
    );
    Ok(true)
}

/// Counts a failed attempt of story `number` (`failed` of this run so far); the one that
/// reaches `give_up_after` leaves the story to a person.
fn failed_attempt(lp: &Loop, summary: &mut Summary, failed: &mut u64, give_up_after: u64, number: &str) {
    summary.failed += 1;
    *failed += 1;
    if *failed == give_up_after {
        let text = format!("{failed} attempts failed or ended without a report: it needs a person");
        lp.events.emit(Kind::Escalated, Some(number), &text, json!({"failed_attempts": *failed}));
        summary.needs_human.push(number.to_string());
    }
}

/// Saves where the loop is: the stories of the running pass are what a restart takes back.
async fn checkpoint(lp: &Loop, phase: &str, running: &[(Uuid, String)], summary: &Summary) -> anyhow::Result<()> {
    let state = json!({
        "phase": phase,
        "base": lp.base_branch,
        "in_flight": running.iter().map(|(id, number)| json!({"story_id": id, "number": number})).collect::<Vec<_>>(),
        "verified": summary.verified,
        "rejected": summary.rejected,
        "failed": summary.failed,
        "needs_human": summary.needs_human,
        "last_verified": summary.last_verified,
    });
    let save = SaveState { state_key: Some(STATE_KEY.into()), state_data: state, version: None };
    lp.orchestrator.save_state(lp.project.id, &save).await?;
    Ok(())
}

/// A run that died mid-pass (a crash, `kill -9`) left claims whose agents are gone: they are
/// taken back with a reason, so the stories are ready again. Verified work is never redone:
/// a verified story is not ready.
async fn recover(lp: &Loop) -> anyhow::Result<Vec<(Uuid, String)>> {
    let params = StateParams { state_key: Some(STATE_KEY.into()), ..StateParams::default() };
    let Ok(saved) = lp.orchestrator.load_state(lp.project.id, &params).await else {
        return Ok(Vec::new());
    };
    let in_flight: BTreeSet<Uuid> = saved
        .state
        .state_data
        .get("in_flight")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e.get("story_id").and_then(Value::as_str))
                .filter_map(|id| id.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut to_resume = Vec::new();
    for story_id in in_flight {
        let reason = "the orchestrator restarted; the agent of the last run is gone";
        if let Some(number) = release(lp, story_id, reason, Reported::Keep).await? {
            to_resume.push((story_id, number));
        }
    }
    Ok(to_resume)
}

/// What [`release`] does with a story its implementer has reported.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reported {
    /// Reject it: the round broke after the report.
    Reject,
    /// Leave it reported, for the next run to review (a restart, Ctrl-C).
    Keep,
}

/// Takes a story back from a round that will not finish: its agents' tokens are revoked
/// first (an agent may outlive its orchestrator: its process group survives a `kill -9`), so
/// it can change nothing, then its claim is released (a report is rejected) with `reason`.
/// Answers the story's number when it is left reported (`Reported::Keep`), to be resumed.
async fn release(lp: &Loop, story_id: Uuid, reason: &str, reported: Reported) -> anyhow::Result<Option<String>> {
    let params = DispatchListParams { story_id: Some(story_id), active_only: Some(true) };
    for dispatch in lp.orchestrator.list_dispatches(&params).await?.data {
        lp.orchestrator.revoke_dispatch(dispatch.id).await?;
    }
    let story = lp.orchestrator.get_story(story_id).await?.story.story;
    let held = matches!(story.agent_status.as_str(), "assigned" | "implementing" | "reported_done");
    if !held || story.verified_status == "verified" {
        return Ok(None);
    }
    if story.agent_status == "reported_done" && reported == Reported::Keep {
        return Ok(Some(story.number));
    }
    if story.agent_status == "reported_done" {
        let reject = loopctl_api::RejectRequest { reason: Some(reason.to_string()), ..Default::default() };
        lp.orchestrator.reject_story(story_id, &reject).await?;
    } else {
        let take_back = ReasonRequest { reason: Some(reason.to_string()), note: None };
        lp.orchestrator.force_unclaim_story(story_id, &take_back).await?;
    }
    lp.events.emit(Kind::Recovered, Some(&story.number), reason, json!({"story_id": story_id}));
    Ok(None)
}
