//! `loopctl mcp`: loopctl's MCP tools over stdio, talking to a loopctl server.
//!
//! Keys come from the reference MCP server's variables (`LOOPCTL_API_KEY`, or per role
//! `LOOPCTL_ORCH_KEY`, `LOOPCTL_AGENT_KEY`, `LOOPCTL_USER_KEY`); with none of them set, the
//! CLI's profile is used. stdout belongs to the protocol: logs go to stderr only.

use std::sync::Arc;

use anyhow::Context as _;
use loopctl_cli::Globals;
use loopctl_cli::context::{find_repo_file, load_config};
use loopctl_mcp::{LoopctlMcp, Options, RemoteBackend, RemoteConfig};

pub async fn run(globals: &Globals) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOOPCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();

    // Precedence as in the CLI: flags > env > .loopctl.toml > profile.
    let mut config = RemoteConfig::from_env();
    if let Some(key) = &globals.api_key {
        config.api_key = Some(key.clone());
    }
    let repo = find_repo_file().map(|(_, file)| file).unwrap_or_default();
    let profiles = load_config()?;
    let profile_name = globals.profile.clone().or_else(|| profiles.default_profile.clone());
    let profile = profile_name.as_ref().and_then(|name| profiles.profiles.get(name)).cloned().unwrap_or_default();
    config.server = globals.server.clone().or(config.server).or(repo.server).or(profile.server.clone());
    if !config.has_any_key() {
        config.api_key.clone_from(&profile.api_key);
    }
    if !config.has_any_key() {
        tracing::warn!(
            "no API key: set LOOPCTL_ORCH_KEY / LOOPCTL_AGENT_KEY (or LOOPCTL_API_KEY), or run `loopctl auth login`; \
             every tool call will fail until then"
        );
    }
    let mut options = Options::from_env().map_err(anyhow::Error::msg)?;
    options.default_project = globals.project.clone().or(options.default_project).or(repo.project).or(profile.project);
    let backend = RemoteBackend::new(&config).map_err(|err| anyhow::anyhow!(err.message)).context("loopctl mcp")?;
    loopctl_mcp::serve_stdio(LoopctlMcp::new(Arc::new(backend), options)).await.map_err(anyhow::Error::msg)
}
