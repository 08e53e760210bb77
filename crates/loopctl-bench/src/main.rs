//! `loopctl-bench`: what loopctl costs, measured in one run against baselines of the same run
//! (this machine is too noisy for absolute numbers to mean much on their own).
//!
//! `cargo build --release -p loopctl -p loopctl-bench`, then `target/release/loopctl-bench
//! <scenario> --help`. `docs/performance.md` holds the tables and the commands behind them.

use clap::{Parser, Subcommand};

mod dashboard;
mod lab;
mod peers;
mod polling;
mod scale;
mod seed_loop;
mod stats;

#[derive(Parser, Debug)]
#[command(name = "loopctl-bench", version, about = "Measures loopctl against baselines measured in the same run")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// The seed loop with C agents: raw store compare-and-set, service layer, HTTP (over N
    /// instances on PostgreSQL) and a constant HTTP handler, with ratios.
    Loop(seed_loop::LoopArgs),
    /// Read-heavy polling (`ready`, `status` counts, `changes --since`) while agents claim.
    Poll(polling::PollArgs),
    /// A claim storm: many agents racing for a few hot stories; counts winners.
    Storm(polling::StormArgs),
    /// Project sizes: import, next, status, blocked, export, next --claim, server RSS.
    Scale(scale::ScaleArgs),
    /// The same 1,000-task workload through Backlog.md and Task Master, one process per call.
    Peers(PeersArgs),
    /// The dashboard's pages of an N-story project, first byte and whole, against `/health`.
    Dashboard(dashboard::DashboardArgs),
}

#[derive(clap::Args, Debug)]
struct PeersArgs {
    /// Tasks in each tool's project.
    #[arg(long, default_value_t = 1000)]
    tasks: usize,
    /// The `loopctl` binary to measure (default: next to this one).
    #[arg(long, value_name = "PATH")]
    loopctl: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().scenario {
        Scenario::Loop(args) => seed_loop::run(args).await,
        Scenario::Poll(args) => polling::poll(args).await,
        Scenario::Storm(args) => polling::storm(args).await,
        Scenario::Scale(args) => scale::run(args).await,
        Scenario::Peers(args) => {
            let bin = match args.loopctl {
                Some(path) => path,
                None => lab::default_loopctl()?,
            };
            peers::run(&bin, args.tasks).await
        }
        Scenario::Dashboard(args) => dashboard::run(&lab::default_loopctl()?, args).await,
    }
}
