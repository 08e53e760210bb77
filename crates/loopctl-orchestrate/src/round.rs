//! One story's round: a fresh implementer in its own worktree, a different reviewer on the
//! reported commit, loopctl's own check of the work (on the merge into the base with
//! `--merge`), and the verdict.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use loopctl_api::{
    CreateDispatch, DispatchListParams, ReasonRequest, RejectRequest, StoryDetail, UpdateStory, VerifyRequest,
};
use loopctl_client::Client;
use loopctl_git::CheckCommand;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::agent::{self, Launch};
use crate::events::{Events, Kind};
use crate::git::Repo;
use crate::prompt::{self, Role};

/// How long a dispatched token outlives the agent's time limit.
const TOKEN_SLACK: Duration = Duration::from_secs(600);
/// Longest reason sent with a rejection (the reviewer's findings and the check's tail).
const MAX_REASON_CHARS: usize = 2_000;
/// How often a round looks for the verifier runner's run.
const RUNNER_POLL: Duration = Duration::from_secs(1);
/// Agent runs kept on a story's metadata.
const MAX_RUNS_KEPT: usize = 20;
/// Lines of a failing check's output quoted in the rejection.
const CHECK_LINES_QUOTED: usize = 20;

/// What the loop needs to run rounds; shared by the rounds running at once.
pub struct Loop {
    pub orchestrator: Client,
    pub server: String,
    pub project: loopctl_api::ProjectView,
    pub repo: Repo,
    pub base_branch: String,
    pub implementer: String,
    pub reviewer: String,
    pub check: Option<String>,
    pub merge: bool,
    pub timeout: Duration,
    /// How often the orchestrator renews an implementer's claim while the agent runs: a
    /// third of the tenant's lease, so an agent that never heartbeats keeps its story.
    pub heartbeat_every: Duration,
    /// The tenant's `require_artifact_verification`: verify needs the verifier runner's
    /// signed run of the reported commit, so the round waits for it (up to `timeout`).
    pub runner_required: bool,
    pub work_dir: PathBuf,
    pub events: Events,
    /// Merges happen one at a time: each is checked on the base as it is, then published.
    /// Holds the base commit as the orchestrator last saw or made it: agents share the
    /// repository's refs through their worktrees, so a base moved by anyone else (an agent
    /// merging its own unreviewed work) is refused, not built on.
    pub merge_queue: tokio::sync::Mutex<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Verified,
    Rejected {
        escalated: bool,
    },
    /// The implementer ended without a report; the claim was taken back.
    Failed,
}

/// The task renewing a claim; it stops when this is dropped, however the round ends.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A story whose implementer reported: what the rest of its round works from.
struct Reported {
    story_id: Uuid,
    number: String,
    title: String,
    attempt: u32,
    /// `<story>-<attempt>`, the name of the round's worktrees.
    name: String,
    branch: String,
    /// The base commit the work started from.
    base: String,
    commit: String,
}

struct Token {
    dispatch_id: Uuid,
    raw_key: String,
}

impl Loop {
    pub async fn round(&self, story_id: Uuid) -> anyhow::Result<Outcome> {
        let detail = self.orchestrator.get_story(story_id).await?.story;
        let number = detail.story.number.clone();
        let attempt = self.next_attempt(story_id).await?;
        let base = self.repo.commit_of(&self.base_branch)?;
        let name = format!("{number}-{attempt}");
        let branch = format!("loopctl/{name}");

        // The implementer.
        let dir = self.work_dir.join("worktrees").join(format!("{name}-implementer"));
        self.repo.add_branch_worktree(&dir, &branch, &base)?;
        let rejection = detail.story.rejection_reason.clone();
        let exit =
            self.run_agent(&detail, Role::Implementer, attempt, &dir, &branch, &base, rejection.as_deref()).await;
        let reported = self.orchestrator.get_story(story_id).await?.story;
        self.repo.remove_worktree(&dir);
        let exit = exit?;
        if reported.story.agent_status != "reported_done" {
            let reason = format!("the implementer {} without reporting (attempt {attempt})", exit.ended);
            if matches!(reported.story.agent_status.as_str(), "assigned" | "implementing") {
                let take_back = ReasonRequest { reason: Some(reason.clone()), note: None };
                self.orchestrator.force_unclaim_story(story_id, &take_back).await?;
            }
            self.events.emit(
                Kind::Failed,
                Some(&number),
                &reason,
                json!({"attempt": attempt, "ended": exit.ended, "elapsed_s": exit.elapsed.as_secs_f64()}),
            );
            return Ok(Outcome::Failed);
        }
        let implementer_elapsed = exit.elapsed.as_secs_f64();
        let commit = reported.reported_commit_sha.clone().unwrap_or_default();
        let on_top = !commit.is_empty()
            && commit != base
            && self.repo.commit_of(&commit).is_ok()
            && self.repo.is_ancestor(&base, &commit);
        if !on_top {
            let reason = format!(
                "the report names no new commit on top of the base {} (reported: {}); commit the work in the worktree and report --commit HEAD",
                short(&base),
                if commit.is_empty() { "none".to_string() } else { short(&commit).to_string() }
            );
            return self.reject(&number, story_id, &reason).await;
        }
        // What the report claims (the commit's diff, files, tests), checked against the
        // repository itself, as `verify-artifacts` does.
        if let Err(reason) = self.check_artifacts(&reported, &branch).await? {
            return self.reject(&number, story_id, &reason).await;
        }
        self.events.emit(
            Kind::Reported,
            Some(&number),
            &format!("commit {}", short(&commit)),
            json!({"commit": commit, "attempt": attempt, "elapsed_s": implementer_elapsed}),
        );
        let work =
            Reported { story_id, number, title: detail.story.title.clone(), attempt, name, branch, base, commit };
        self.review_and_decide(&work, &reported).await
    }

    /// The rest of a round whose orchestrator died after the report (a restart, Ctrl-C): the
    /// reported commit is reviewed and checked as if the round had gone on.
    pub async fn resume(&self, story_id: Uuid) -> anyhow::Result<Outcome> {
        let reported = self.orchestrator.get_story(story_id).await?.story;
        let number = reported.story.number.clone();
        let attempt = self.next_attempt(story_id).await?.saturating_sub(1).max(1);
        let name = format!("{number}-{attempt}");
        let branch = format!("loopctl/{name}");
        let Some(commit) = reported.reported_commit_sha.clone().filter(|c| self.repo.commit_of(c).is_ok()) else {
            return self.reject(&number, story_id, "the reported commit is not in the repository").await;
        };
        let base = self.repo.merge_base(&self.base_branch, &commit)?;
        if let Err(reason) = self.check_artifacts(&reported, &branch).await? {
            return self.reject(&number, story_id, &reason).await;
        }
        self.events.emit(
            Kind::Recovered,
            Some(&number),
            &format!("resumed at the review of {}", short(&commit)),
            json!({"commit": commit}),
        );
        let work =
            Reported { story_id, number, title: reported.story.title.clone(), attempt, name, branch, base, commit };
        self.review_and_decide(&work, &reported).await
    }

    /// Review, the runner's run where required, loopctl's own check (on the merge with
    /// `--merge`), and the verdict.
    async fn review_and_decide(&self, work: &Reported, reported: &StoryDetail) -> anyhow::Result<Outcome> {
        let Reported { story_id, number, title, attempt, name, branch, base, commit } = work;
        let (story_id, attempt) = (*story_id, *attempt);
        // The reviewer: another process, another token, the reported commit.
        let dir = self.work_dir.join("worktrees").join(format!("{name}-reviewer"));
        self.repo.add_detached_worktree(&dir, commit)?;
        let exit = self.run_agent(reported, Role::Reviewer, attempt, &dir, branch, base, None).await;
        let reviewed = self.orchestrator.get_story(story_id).await?.story;
        self.repo.remove_worktree(&dir);
        let exit = exit?;
        let since = reported.story.reported_done_at.unwrap_or(reported.story.updated_at);
        let review = reviewed.reviews.iter().filter(|r| r.inserted_at >= since).max_by_key(|r| r.inserted_at);
        let Some(review) = review else {
            let reason = format!("the reviewer {} without recording a review", exit.ended);
            return self.reject(number, story_id, &reason).await;
        };
        let failed: Vec<String> = reviewed
            .criteria
            .iter()
            .filter(|c| c.review_verdict.as_deref().is_some_and(|v| v.starts_with("fail")))
            .map(|c| c.ac_id.clone())
            .collect();
        if !failed.is_empty() {
            let summary = review.summary.clone().unwrap_or_default();
            let findings =
                if review.findings.is_null() { String::new() } else { format!(" findings: {}", review.findings) };
            let reason = format!("the review failed {}: {summary}{findings}", failed.join(", "));
            return self.reject(number, story_id, &reason).await;
        }
        self.events.emit(
            Kind::Reviewed,
            Some(number),
            "every criterion passed review",
            json!({"review_id": review.id, "elapsed_s": exit.elapsed.as_secs_f64()}),
        );

        // The verifier runner's signed run of the commit, where the tenant requires one.
        if self.runner_required
            && let Err(reason) = self.runner_verdict(number, story_id, commit).await?
        {
            return self.reject(number, story_id, &reason).await;
        }
        // loopctl's own check, then the verdict.
        if self.merge {
            let mut published = self.merge_queue.lock().await;
            let base_now = self.repo.commit_of(&self.base_branch)?;
            if base_now != *published {
                anyhow::bail!(
                    "{} was moved outside the orchestrator (to {}, last published {}): an agent or a person changed it; \
                     nothing is merged onto it until it is checked and the run restarted",
                    self.base_branch,
                    short(&base_now),
                    short(&published)
                );
            }
            let dir = self.work_dir.join("worktrees").join(format!("{name}-merge"));
            self.repo.add_detached_worktree(&dir, &base_now)?;
            let merged = self.repo.merge_in(&dir, commit, &format!("Merge story {number}: {title}"));
            let merged = match merged {
                Ok(merged) => merged,
                Err(err) => {
                    self.repo.remove_worktree(&dir);
                    return self.reject(number, story_id, &format!("{err:#}")).await;
                }
            };
            let checked = self.check(number, &dir, &merged).await;
            self.repo.remove_worktree(&dir);
            if let Err(reason) = checked? {
                return self.reject(number, story_id, &reason).await;
            }
            let outcome = self.verify(number, story_id, commit).await?;
            self.repo.move_branch(&self.base_branch, &merged, &base_now)?;
            published.clone_from(&merged);
            self.events.emit(
                Kind::Merged,
                Some(number),
                &format!("{} now at {}", self.base_branch, short(&merged)),
                json!({"base": self.base_branch, "commit": merged}),
            );
            return Ok(outcome);
        }
        let dir = self.work_dir.join("worktrees").join(format!("{name}-check"));
        self.repo.add_detached_worktree(&dir, commit)?;
        let checked = self.check(number, &dir, commit).await;
        self.repo.remove_worktree(&dir);
        if let Err(reason) = checked? {
            return self.reject(number, story_id, &reason).await;
        }
        self.verify(number, story_id, commit).await
    }

    #[expect(clippy::too_many_arguments, reason = "the variables of one agent's launch")]
    async fn run_agent(
        &self,
        story: &StoryDetail,
        role: Role,
        attempt: u32,
        dir: &std::path::Path,
        branch: &str,
        base: &str,
        rejection: Option<&str>,
    ) -> anyhow::Result<agent::Exit> {
        let number = story.story.number.as_str();
        let token = self.dispatch(story.story.id, role).await?;
        let name = format!("{number}-{attempt}-{}", role.as_str());
        let prompt_file = self.work_dir.join("prompts").join(format!("{name}.md"));
        if let Some(parent) = prompt_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&prompt_file, prompt::write(story, role, attempt, rejection))
            .with_context(|| format!("write {}", prompt_file.display()))?;
        let log = self.work_dir.join("logs").join(format!("{name}.log"));
        let env = vec![
            ("LOOPCTL_SERVER", self.server.clone()),
            ("LOOPCTL_API_KEY", token.raw_key.clone()),
            ("LOOPCTL_PROJECT", self.project.slug.clone()),
            ("LOOPCTL_STORY", number.to_string()),
            ("LOOPCTL_STORY_ID", story.story.id.to_string()),
            ("LOOPCTL_ROLE", role.as_str().to_string()),
            ("LOOPCTL_ATTEMPT", attempt.to_string()),
            ("LOOPCTL_WORKTREE", dir.to_string_lossy().into_owned()),
            ("LOOPCTL_BRANCH", branch.to_string()),
            ("LOOPCTL_BASE", base.to_string()),
            ("LOOPCTL_PROMPT_FILE", prompt_file.to_string_lossy().into_owned()),
        ];
        self.events.emit(
            Kind::Dispatched,
            Some(number),
            &format!("{} (attempt {attempt}), log {}", role.as_str(), log.display()),
            json!({"role": role.as_str(), "attempt": attempt, "dispatch_id": token.dispatch_id, "log": log}),
        );
        let command = match role {
            Role::Implementer => &self.implementer,
            Role::Reviewer => &self.reviewer,
        };
        let heartbeat = (role == Role::Implementer).then(|| self.keep_claim_alive(story.story.id, &token.raw_key));
        let exit = agent::run(Launch { command, dir, env, log: log.clone(), timeout: self.timeout }).await;
        drop(heartbeat);
        if let Ok(exit) = &exit {
            self.record_run(story.story.id, role, attempt, &log, exit).await?;
        }
        // The token is good for this one agent: it goes when the agent does.
        if let Err(err) = self.orchestrator.revoke_dispatch(token.dispatch_id).await {
            self.events.emit(
                Kind::Failed,
                Some(number),
                &format!("could not revoke dispatch {}: {err}", token.dispatch_id),
                json!({}),
            );
        }
        exit
    }

    /// Renews the claim with the agent's own token until aborted (the agent may never call
    /// `loopctl heartbeat` itself). Before the agent has claimed, or after it reported, the
    /// server refuses the heartbeat, which changes nothing.
    fn keep_claim_alive(&self, story_id: Uuid, token: &str) -> Heartbeat {
        let client = Client::new(&self.server, Some(token.to_string()));
        let every = self.heartbeat_every;
        Heartbeat(tokio::spawn(async move {
            let Ok(client) = client else { return };
            loop {
                tokio::time::sleep(every).await;
                let _ = client.heartbeat_story(story_id, None).await;
            }
        }))
    }

    /// Keeps the agent's run on the story (`metadata.orchestrate.runs`: attempt, role, how it
    /// ended, wall time, log), so `loopctl status N` shows where each agent's output is.
    async fn record_run(
        &self,
        story_id: Uuid,
        role: Role,
        attempt: u32,
        log: &Path,
        exit: &agent::Exit,
    ) -> anyhow::Result<()> {
        let current = self.orchestrator.get_story(story_id).await?.story.story.metadata;
        let mut metadata = if current.is_object() { current } else { json!({}) };
        let run = json!({
            "attempt": attempt,
            "role": role.as_str(),
            "ended": exit.ended,
            "elapsed_s": (exit.elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "log": log,
            "at": chrono::Utc::now(),
        });
        let runs = &mut metadata["orchestrate"]["runs"];
        let mut kept: Vec<Value> = runs.as_array().cloned().unwrap_or_default();
        kept.push(run);
        // The newest runs; an old story's history stays in the audit log.
        let from = kept.len().saturating_sub(MAX_RUNS_KEPT);
        *runs = Value::Array(kept.split_off(from));
        let update = UpdateStory { metadata: Some(metadata), ..UpdateStory::default() };
        self.orchestrator.update_story(story_id, &update).await?;
        Ok(())
    }

    /// One more than the implementers ever dispatched for the story: the server's record, so
    /// a restarted orchestrator never reuses the worktree or branch of an agent that may still
    /// be running.
    async fn next_attempt(&self, story_id: Uuid) -> anyhow::Result<u32> {
        let params = DispatchListParams { story_id: Some(story_id), active_only: None };
        let dispatches = self.orchestrator.list_dispatches(&params).await?.data;
        let implementers = dispatches.iter().filter(|d| d.role == Role::Implementer.as_str()).count();
        Ok(u32::try_from(implementers).unwrap_or(u32::MAX - 1) + 1)
    }

    async fn dispatch(&self, story_id: Uuid, role: Role) -> anyhow::Result<Token> {
        let ttl = (self.timeout + TOKEN_SLACK).as_secs();
        let request = CreateDispatch {
            role: role.as_str().into(),
            story_id: Some(story_id),
            agent_id: None,
            parent_dispatch_id: None,
            expires_in_seconds: Some(i64::try_from(ttl).unwrap_or(i64::MAX)),
        };
        let created = self.orchestrator.create_dispatch(&request).await?.data;
        Ok(Token { dispatch_id: created.dispatch.id, raw_key: created.api_key.raw_key })
    }

    /// The artifact checks of `verify-artifacts` on this round's report, against the story's
    /// branch; `Err(reason)` naming every failed check.
    async fn check_artifacts(&self, reported: &StoryDetail, branch: &str) -> anyhow::Result<Result<(), String>> {
        let artifacts = loopctl_evidence::current_artifacts(reported.story.assigned_at, &reported.artifacts);
        let (root, branch_name) = (self.repo.root().to_path_buf(), branch.to_string());
        let report =
            tokio::task::spawn_blocking(move || loopctl_evidence::check(&root, Some(&branch_name), &artifacts, None))
                .await??;
        if report.passed() {
            return Ok(Ok(()));
        }
        let failures: Vec<String> = report.failures().map(|c| format!("{} ({})", c.name, c.detail)).collect();
        let failures = if failures.is_empty() {
            "nothing the report names could be checked".to_string()
        } else {
            failures.join("; ")
        };
        Ok(Err(format!("the report's evidence does not hold: {failures}")))
    }

    /// Waits for the verifier runner (`loopctl runner`) to record a signed run of `commit`;
    /// `Err(reason)` when it failed, or when none came within `--timeout`.
    async fn runner_verdict(&self, number: &str, story_id: Uuid, commit: &str) -> anyhow::Result<Result<(), String>> {
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let runs = self.orchestrator.list_verification_runs(story_id).await?.data;
            let run = runs
                .iter()
                .filter(|r| r.commit_sha.as_deref() == Some(commit) && r.signature_valid)
                .max_by_key(|r| r.inserted_at);
            if let Some(run) = run {
                let passed = run.result == "pass";
                let text = format!("the verifier runner's run {} at {}", run.result, short(commit));
                self.events.emit(
                    Kind::Checked,
                    Some(number),
                    &text,
                    json!({"source": "runner", "run_id": run.id, "success": passed}),
                );
                if passed {
                    return Ok(Ok(()));
                }
                let failing: Vec<String> = run
                    .checks
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["ok"] == json!(false))
                    .map(|c| format!("{} ({})", c["name"].as_str().unwrap_or("?"), c["detail"].as_str().unwrap_or("")))
                    .collect();
                return Ok(Err(format!("{text}: {}", failing.join("; "))));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(Err(format!(
                    "no verifier runner recorded a run of {} within {}s (is `loopctl runner` following this project?)",
                    short(commit),
                    self.timeout.as_secs()
                )));
            }
            tokio::time::sleep(RUNNER_POLL).await;
        }
    }

    /// `--check` in `dir` (a clean checkout of `commit`); `Err(reason)` when it fails.
    async fn check(&self, number: &str, dir: &std::path::Path, commit: &str) -> anyhow::Result<Result<(), String>> {
        let Some(command) = self.check.clone() else {
            return Ok(Ok(()));
        };
        let check = CheckCommand { command: command.clone(), timeout: self.timeout, sealed: false };
        let (dir, at) = (dir.to_path_buf(), commit.to_string());
        let outcome = tokio::task::spawn_blocking(move || check.run_in(&dir, &at)).await??;
        let details = json!({"command": command, "commit": commit, "success": outcome.success, "ended": outcome.ended});
        self.events.emit(
            Kind::Checked,
            Some(number),
            &format!("`{command}` {} at {}", outcome.ended, short(commit)),
            details,
        );
        if outcome.success {
            return Ok(Ok(()));
        }
        let quoted = outcome.tail[outcome.tail.len().saturating_sub(CHECK_LINES_QUOTED)..].join("\n");
        Ok(Err(format!("the check `{command}` {} at {}:\n{quoted}", outcome.ended, short(commit))))
    }

    async fn verify(&self, number: &str, story_id: Uuid, commit: &str) -> anyhow::Result<Outcome> {
        let summary = match &self.check {
            Some(check) => format!("review passed; `{check}` passed at {}", short(commit)),
            None => "review passed".to_string(),
        };
        let request = VerifyRequest {
            summary: Some(summary.clone()),
            result: Some("pass".into()),
            commit_sha: Some(commit.to_string()),
            ..VerifyRequest::default()
        };
        self.orchestrator.verify_story(story_id, &request).await?;
        self.events.emit(Kind::Verified, Some(number), &summary, json!({"commit": commit}));
        Ok(Outcome::Verified)
    }

    async fn reject(&self, number: &str, story_id: Uuid, reason: &str) -> anyhow::Result<Outcome> {
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        let request = RejectRequest { reason: Some(reason.clone()), ..RejectRequest::default() };
        let answer = self.orchestrator.reject_story(story_id, &request).await?;
        self.events.emit(Kind::Rejected, Some(number), &reason, json!({}));
        let escalated = answer.story.escalated;
        if escalated {
            let text =
                format!("after {} rejections: it needs a person (`loopctl escalation`)", answer.story.iteration_count);
            self.events.emit(Kind::Escalated, Some(number), &text, json!({}));
        }
        Ok(Outcome::Rejected { escalated })
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}
