//! The loopctl command line: every command of the orchestration loop, over the HTTP API.
//!
//! Workflow verbs stay top-level exactly as the seed skill spells them (`loopctl claim 2.1`,
//! `loopctl next --project p`); administration uses `<noun> <verb>` (`loopctl keys list`).
//! Nothing here touches a database: every command is a client of the API.

mod cmd;
pub mod context;
pub mod output;
mod time;

use clap::Subcommand;
/// The artifact checks of `verify-artifacts` and the runner.
use loopctl_evidence as artifacts;

pub use cmd::runner::start_beside as start_runner;
use context::Ctx;
pub use context::Globals;
pub use output::{Format, report_error};

/// The CLI's commands; the binary adds `serve`, `admin`, `up`, `completions`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Log in, see who you are, log out.
    #[command(subcommand)]
    Auth(cmd::auth::AuthCmd),
    /// Show or change the CLI's configuration.
    #[command(subcommand)]
    Config(cmd::auth::ConfigCmd),
    /// Write .loopctl.toml here so every worktree of this repository uses one project.
    ///
    /// Example: loopctl init --project web
    Init(cmd::auth::InitArgs),
    /// Project overview, or one story in full.
    ///
    /// Examples: loopctl status --project web; loopctl status 2.1
    Status(cmd::read::StatusArgs),
    /// The project overview, drawn again as the project changes (the live stream; Ctrl-C stops).
    ///
    /// Example: loopctl watch --project web
    Watch,
    /// Ready stories, the suggested batch marked; --claim picks and claims one.
    ///
    /// Example: loopctl next --project web --claim
    Next(cmd::read::NextArgs),
    /// Stories waiting for dependencies, and what each waits for.
    ///
    /// Example: loopctl blocked --project web --explain
    Blocked(cmd::read::BlockedArgs),
    /// Stories not started yet (pending or contracted).
    ///
    /// Example: loopctl pending --project web
    Pending,
    /// Acknowledge a story: its title and acceptance-criteria count.
    ///
    /// Example: loopctl contract 2.1
    Contract(cmd::lifecycle::ContractArgs),
    /// Claim a contracted story (remembers the claim epoch for later writes).
    ///
    /// Example: loopctl claim 2.1
    Claim(cmd::lifecycle::StoryArg),
    /// Start work on a claimed story.
    ///
    /// Example: loopctl start 2.1
    Start(cmd::lifecycle::StoryArg),
    /// Renew the lease on a claimed story.
    ///
    /// Example: loopctl heartbeat 2.1
    Heartbeat(cmd::lifecycle::StoryArg),
    /// Ask for review (strict custody flow).
    ///
    /// Example: loopctl request-review 2.1
    RequestReview(cmd::lifecycle::StoryArg),
    /// Report a story done, with what it produced.
    ///
    /// Example: loopctl report 2.1 --artifact '{"artifact_type":"commit_diff","details":{"commit_sha":"abc123"}}'
    Report(cmd::lifecycle::ReportArgs),
    /// Give a claimed story back.
    ///
    /// Example: loopctl unclaim 2.1
    Unclaim(cmd::lifecycle::StoryArg),
    /// Take a story back from its holder (orchestrator or user); recorded in the audit log.
    ///
    /// Example: loopctl force-unclaim 2.1 --reason "agent crashed"
    ForceUnclaim(cmd::lifecycle::ReasonArgs),
    /// Record an independent review (never by the implementer).
    ///
    /// Example: loopctl review-complete 2.1 --summary "ACs met"
    ReviewComplete(cmd::lifecycle::ReviewArgs),
    /// Record the verdict: pass verifies, fail rejects with the summary as reason.
    ///
    /// Example: loopctl verify 2.1 --result pass --summary "All ACs met"
    Verify(cmd::lifecycle::VerifyArgs),
    /// Reject a reported story: back to pending, iteration count +1.
    ///
    /// Example: loopctl reject 2.1 --reason "Missing tests for AC-2"
    Reject(cmd::lifecycle::ReasonArgs),
    /// Mark work done outside loopctl as verified, with the reason.
    ///
    /// Example: loopctl backfill 2.1 --reason "shipped before loopctl"
    Backfill(cmd::lifecycle::BackfillArgs),
    /// Check a story's reported commits and paths against the git repository (--run re-runs the
    /// tests on a clean copy); records a signed verification run; exit 5 when a check fails.
    ///
    /// Example: loopctl verify-artifacts 2.1 --branch main --run "cargo test"
    VerifyArtifacts(cmd::verify_artifacts::VerifyArtifactsArgs),
    /// The verifier: checks every reported commit in its own clone and records signed runs
    /// (needs a verifier key; a user configures the project with `loopctl project runner`).
    ///
    /// Example: loopctl --api-key $VERIFIER_KEY runner --project web
    Runner(cmd::runner::RunnerArgs),
    /// Dispatch a sub-agent for one story: mints a capability token scoped to that story and
    /// capacity; `dispatch list`, `dispatch revoke ID`.
    ///
    /// Example: loopctl dispatch 2.1 --role implementer --ttl 2h
    Dispatch(cmd::dispatch::DispatchArgs),
    /// Run the loop: a fresh implementer per story in its own git worktree, a different
    /// reviewer, loopctl's own check, verify or reject, and (with --merge) a merge queue.
    ///
    /// Example: loopctl orchestrate --project web --repo . --implementer 'claude -p "$(cat $LOOPCTL_PROMPT_FILE)"' --reviewer 'codex exec "$(cat $LOOPCTL_PROMPT_FILE)"' --parallel 2 --merge --check 'cargo test' --until-done
    Orchestrate(cmd::orchestrate::OrchestrateArgs),
    /// Escalations (stories that failed too often).
    #[command(subcommand)]
    Escalation(cmd::lifecycle::EscalationCmd),
    /// The change feed: events after a cursor or time; --follow keeps streaming.
    ///
    /// Example: loopctl changes --project web --since 2026-01-01T00:00:00Z
    Changes(cmd::feed::ChangesArgs),
    /// Every event of one story.
    ///
    /// Example: loopctl history 2.1
    History(cmd::lifecycle::StoryArg),
    /// The audit log (user keys).
    ///
    /// Example: loopctl audit --action verified
    Audit(cmd::feed::AuditArgs),
    /// Orchestrator checkpoints: save, load, history.
    #[command(subcommand)]
    State(cmd::feed::StateCmd),
    /// Skills: versioned prompt documents (loopctl:orchestrate, loopctl:review, …).
    #[command(subcommand)]
    Skill(cmd::skill::SkillCmd),
    /// Projects.
    #[command(subcommand)]
    Project(cmd::admin::ProjectCmd),
    /// Import a work breakdown (JSON) into the project.
    ///
    /// Example: loopctl import --project web breakdown.json --merge
    Import(cmd::admin::ImportArgs),
    /// Export the project's work breakdown as JSON.
    ///
    /// Example: loopctl export --project web > breakdown.json
    Export,
    /// Epics.
    #[command(subcommand)]
    Epic(cmd::admin::EpicCmd),
    /// Stories: create, update, dependencies.
    #[command(subcommand)]
    Story(cmd::admin::StoryCmd),
    /// API keys (user keys).
    #[command(subcommand)]
    Keys(cmd::admin::KeysCmd),
    /// Agent identities.
    #[command(subcommand)]
    Agent(cmd::admin::AgentCmd),
    /// Webhooks: signed deliveries of events to a URL (user keys).
    #[command(subcommand)]
    Webhook(cmd::webhook::WebhookCmd),
    /// The tenant and its settings.
    #[command(subcommand)]
    Tenant(cmd::admin::TenantCmd),
}

/// Runs a CLI command.
///
/// # Errors
/// Whatever the server or the arguments refuse; `report_error` turns it into a line and an
/// exit code.
pub async fn run(command: Command, globals: &Globals) -> anyhow::Result<()> {
    if let Command::Auth(auth) = command {
        return cmd::auth::run(auth, globals).await;
    }
    if let Command::Config(config) = command {
        return cmd::auth::config(config, globals);
    }
    if let Command::Init(args) = command {
        return cmd::auth::init(args, globals);
    }
    let ctx = Ctx::new(globals)?;
    let outcome = run_with(&ctx, command).await;
    match outcome {
        // People read story numbers; programs get the server's error body as it came.
        Err(err) if ctx.format == output::Format::Human => Err(ctx.name_stories_in(err).await),
        other => other,
    }
}

async fn run_with(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Auth(_) | Command::Config(_) | Command::Init(_) => Ok(()),
        Command::Status(args) => cmd::read::status(ctx, args).await,
        Command::Watch => cmd::read::watch(ctx).await,
        Command::Next(args) => cmd::read::next(ctx, args).await,
        Command::Blocked(args) => cmd::read::blocked(ctx, args).await,
        Command::Pending => cmd::read::pending(ctx).await,
        Command::Contract(args) => cmd::lifecycle::contract(ctx, args).await,
        Command::Claim(args) => cmd::lifecycle::claim(ctx, args).await,
        Command::Start(args) => cmd::lifecycle::claimant(ctx, args, cmd::lifecycle::ClaimantWrite::Start).await,
        Command::Heartbeat(args) => cmd::lifecycle::claimant(ctx, args, cmd::lifecycle::ClaimantWrite::Heartbeat).await,
        Command::RequestReview(args) => {
            cmd::lifecycle::claimant(ctx, args, cmd::lifecycle::ClaimantWrite::RequestReview).await
        }
        Command::Report(args) => cmd::lifecycle::report(ctx, args).await,
        Command::Unclaim(args) => cmd::lifecycle::claimant(ctx, args, cmd::lifecycle::ClaimantWrite::Unclaim).await,
        Command::ForceUnclaim(args) => cmd::lifecycle::force_unclaim(ctx, args).await,
        Command::ReviewComplete(args) => cmd::lifecycle::review_complete(ctx, args).await,
        Command::Verify(args) => cmd::lifecycle::verify(ctx, args).await,
        Command::Reject(args) => cmd::lifecycle::reject(ctx, args).await,
        Command::Backfill(args) => cmd::lifecycle::backfill(ctx, args).await,
        Command::VerifyArtifacts(args) => cmd::verify_artifacts::run(ctx, args).await,
        Command::Runner(args) => cmd::runner::run(ctx, args).await,
        Command::Dispatch(args) => cmd::dispatch::run(ctx, args).await,
        Command::Orchestrate(args) => cmd::orchestrate::run(ctx, args).await,
        Command::Escalation(sub) => cmd::lifecycle::escalation(ctx, sub).await,
        Command::Changes(args) => cmd::feed::changes(ctx, args).await,
        Command::History(args) => cmd::feed::history(ctx, args).await,
        Command::Audit(args) => cmd::feed::audit(ctx, args).await,
        Command::State(sub) => cmd::feed::state(ctx, sub).await,
        Command::Skill(sub) => cmd::skill::run(ctx, sub).await,
        Command::Project(sub) => cmd::admin::project(ctx, sub).await,
        Command::Import(args) => cmd::admin::import(ctx, args).await,
        Command::Export => cmd::admin::export(ctx).await,
        Command::Epic(sub) => cmd::admin::epic(ctx, sub).await,
        Command::Story(sub) => cmd::admin::story(ctx, sub).await,
        Command::Keys(sub) => cmd::admin::keys(ctx, sub).await,
        Command::Webhook(sub) => cmd::webhook::webhook(ctx, sub).await,
        Command::Agent(sub) => cmd::admin::agent(ctx, sub).await,
        Command::Tenant(sub) => cmd::admin::tenant(ctx, sub).await,
    }
}

/// Reads `@file` or returns the text itself (for JSON arguments).
pub(crate) fn text_or_file(value: &str) -> anyhow::Result<String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|err| output::usage(format!("cannot read {path}: {err}"))),
        None => Ok(value.to_string()),
    }
}

/// Parses a JSON argument (`'{"a":1}'` or `@file.json`).
pub(crate) fn json_arg(name: &str, value: &str) -> anyhow::Result<serde_json::Value> {
    let text = text_or_file(value)?;
    serde_json::from_str(&text).map_err(|err| output::usage(format!("{name} is not valid JSON: {err}")))
}
