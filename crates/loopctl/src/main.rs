//! The one loopctl binary: `serve`, `admin`, `up` (and, later, the CLI commands).

mod config;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loopctl", version, about = "Control plane for AI-driven development loops", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API server.
    ///
    /// Example: loopctl serve --listen 127.0.0.1:4000 --database-url postgres://localhost/loopctl
    Serve(serve::ServeArgs),
    /// Operator commands that work on the database directly.
    #[command(subcommand)]
    Admin(serve::AdminCommand),
    /// Start a local server on the embedded SQLite store; the first run creates a tenant and keys.
    ///
    /// Example: loopctl up
    Up(serve::UpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::serve(args).await,
            Command::Admin(command) => serve::admin(command).await,
            Command::Up(args) => serve::up(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
