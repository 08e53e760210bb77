//! `loopctl mcp`: loopctl's MCP tools over stdio, talking to a loopctl server.
//!
//! The key comes from one of the reference MCP server's variables (`LOOPCTL_API_KEY`, or a
//! role's `LOOPCTL_ORCH_KEY`, `LOOPCTL_AGENT_KEY`, `LOOPCTL_USER_KEY`) or `--api-key`; with
//! none of them set, the CLI's profile is used. One process is one identity: keys of two
//! identities are refused at startup. The server follows the CLI's rules, so a repository's
//! `.loopctl.toml` cannot send the key elsewhere. stdout belongs to the protocol: logs go to
//! stderr only.

use anyhow::Context as _;
use loopctl_cli::Globals;
use loopctl_cli::context::{KeySource, find_repo_file, key_destination, load_config};
use loopctl_mcp::{Client, Connection, LoopctlMcp, Options, RemoteConfig};

pub async fn run(globals: &Globals) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOOPCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();

    let mut config = RemoteConfig::from_env();
    if let Some(key) = &globals.api_key {
        config.api_key = Some(key.clone());
    }
    let explicit = config.single_key().map_err(anyhow::Error::msg)?.map(|(from, key)| (from, key.to_string()));
    let repo = find_repo_file();
    let profiles = load_config()?;
    let profile_name = globals.profile.clone().or_else(|| profiles.default_profile.clone()).unwrap_or_default();
    let profile = profiles.profiles.get(&profile_name).cloned().unwrap_or_default();
    let (key, source) = match explicit {
        Some((from, key)) => (Some(key), Some(KeySource::Explicit(from))),
        None => (profile.api_key.clone(), profile.api_key.as_ref().map(|_| KeySource::Profile)),
    };
    // `--server` and LOOPCTL_SERVER both arrive in `globals.server` (clap reads the variable).
    let server = key_destination(globals.server.as_deref(), repo.as_ref(), &profile_name, &profile, source)?;
    if key.is_none() {
        tracing::warn!(
            "no API key: set one of LOOPCTL_ORCH_KEY, LOOPCTL_AGENT_KEY, LOOPCTL_USER_KEY or LOOPCTL_API_KEY, or run \
             `loopctl auth login`; every tool call will fail until then"
        );
    }
    let mut options = Options::from_env().map_err(anyhow::Error::msg)?;
    let repo_project = repo.and_then(|(_, file)| file.project);
    options.default_project = globals.project.clone().or(options.default_project).or(repo_project).or(profile.project);
    let connection = match key {
        Some(key) => Connection::Remote(Client::new(&server, Some(key)).context("loopctl mcp")?),
        None => Connection::Keyless { server },
    };
    loopctl_mcp::serve_stdio(LoopctlMcp::new(connection, options)).await.map_err(anyhow::Error::msg)
}
