//! `orchestrate`: the loop as a program (`loopctl-orchestrate`), with this command's key as
//! the orchestrator's.

use std::path::PathBuf;

use clap::Args;

use crate::context::Ctx;
use crate::output::{Format, usage};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("until").args(["until_done", "once"])))]
pub struct OrchestrateArgs {
    /// The git repository the agents work in (each story gets its own worktree of it).
    #[arg(long)]
    repo: PathBuf,
    /// The implementer agent, run as `sh -c CMD` in the story's worktree.
    #[arg(long)]
    implementer: String,
    /// The reviewer agent, run as `sh -c CMD` in a worktree of the reported commit.
    #[arg(long)]
    reviewer: String,
    /// Stories worked on at once (at most the tenant's max_concurrent_agents).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// The branch stories start from and merge into (default: the repository's current branch).
    #[arg(long)]
    base: Option<String>,
    /// Merge each verified story into the base, one at a time, after checking the merge.
    #[arg(long)]
    merge: bool,
    /// loopctl's own check of the work, run with `sh -c` in a clean checkout of the reported
    /// commit (with --merge: of its merge into the base).
    #[arg(long)]
    check: Option<String>,
    /// How long one agent (or the check) may run: 90s, 30m, 2h.
    #[arg(long, default_value = "30m")]
    timeout: String,
    /// Keep going, each finished slot refilled, until nothing is ready: every story verified or
    /// needing a person.
    #[arg(long)]
    until_done: bool,
    /// Work the stories ready now, then exit (the default).
    #[arg(long)]
    once: bool,
    /// Where worktrees, prompts and agents' logs go (default: .git/loopctl in the repository).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: OrchestrateArgs) -> anyhow::Result<()> {
    let project = ctx
        .project
        .clone()
        .ok_or_else(|| usage("orchestrate needs --project (or LOOPCTL_PROJECT, or a project in .loopctl.toml)"))?;
    let timeout = crate::time::duration(&args.timeout)
        .ok_or_else(|| usage(format!("--timeout `{}` is not a duration like 90s, 30m or 2h", args.timeout)))?;
    if args.parallel == 0 {
        return Err(usage("--parallel must be at least 1"));
    }
    let options = loopctl_orchestrate::Options {
        project,
        repo: args.repo,
        implementer: args.implementer,
        reviewer: args.reviewer,
        parallel: args.parallel,
        base: args.base,
        merge: args.merge,
        check: args.check,
        timeout,
        until_done: args.until_done,
        work_dir: args.work_dir,
        format: match ctx.format {
            Format::Json => loopctl_orchestrate::Format::Json,
            _ => loopctl_orchestrate::Format::Human,
        },
    };
    loopctl_orchestrate::run(ctx.client.clone(), &ctx.server, options).await?;
    Ok(())
}
