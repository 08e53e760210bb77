//! The one loopctl binary: the server (`serve`, `admin`, `up`) and the CLI commands.

mod config;
mod mcp;
mod serve;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use loopctl_cli::{Format, Globals};

#[derive(Parser)]
#[command(
    name = "loopctl",
    version,
    about = "Control plane for AI-driven development loops",
    long_about = "Control plane for AI-driven development loops.\n\nStart here: `loopctl up` runs a local server and saves profiles; `loopctl next` lists ready stories."
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
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
    /// Start a local server on the embedded SQLite store; the first run creates a tenant,
    /// keys, CLI profiles and an example project.
    ///
    /// Example: loopctl up
    Up(serve::UpArgs),
    /// Serve loopctl's MCP tools over stdio, for an agent's MCP client, as one identity.
    ///
    /// The key from one of LOOPCTL_ORCH_KEY, LOOPCTL_AGENT_KEY, LOOPCTL_USER_KEY or
    /// LOOPCTL_API_KEY (keys of two identities are refused: run one MCP server per role), else
    /// the profile; LOOPCTL_MCP_TOOLS=core|standard|all picks how many tools are offered.
    ///
    /// Example: LOOPCTL_AGENT_KEY=lc_… loopctl mcp
    Mcp,
    /// Print shell completions.
    ///
    /// Example: loopctl completions bash > /etc/bash_completion.d/loopctl
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Cli(loopctl_cli::Command),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "loopctl", &mut script);
        loopctl_cli::output::write_out(&String::from_utf8_lossy(&script));
        return ExitCode::SUCCESS;
    }
    let format = match cli.globals.format {
        Some(loopctl_cli::context::FormatArg::Json) => Format::Json,
        Some(loopctl_cli::context::FormatArg::Csv) => Format::Csv,
        _ => Format::Human,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let globals = cli.globals;
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::serve(args).await,
            Command::Admin(command) => serve::admin(command, format == Format::Json).await,
            Command::Up(args) => serve::up(args).await,
            Command::Mcp => mcp::run(&globals).await,
            Command::Completions { .. } => Ok(()),
            Command::Cli(command) => loopctl_cli::run(command, &globals).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(loopctl_cli::report_error(&err, format)),
    }
}

/// clap's refusals, as one JSON line with `--format json` (exit 2), else clap's own text.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = {
        let args: Vec<String> = std::env::args().collect();
        args.windows(2).any(|w| w[0] == "--format" && w[1] == "json")
            || args.iter().any(|a| a == "--format=json")
            || std::env::var("LOOPCTL_FORMAT").is_ok_and(|f| f == "json")
    };
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !wants_json {
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    let text = err.to_string();
    let message = text.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ").to_string();
    eprintln!("{}", serde_json::json!({"error": {"code": "usage", "message": message}}));
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks its definitions only when a command is parsed; check them all at once.
    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
