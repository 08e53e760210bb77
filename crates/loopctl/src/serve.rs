//! `serve`, `admin init` and `up`.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Args, Subcommand};
use loopctl_app::{App, Bootstrap, BootstrapRequest};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{data_dir, open_store};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LOOPCTL_LISTEN", default_value = "127.0.0.1:4000")]
    listen: String,
    /// `postgres://…`, `sqlite://…` or a file path; default: loopctl.db in the data dir.
    #[arg(long, env = "LOOPCTL_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a tenant with one key per role, directly on the database.
    ///
    /// Example: loopctl admin init --tenant acme --format json
    Init(InitArgs),
}

#[derive(Args)]
pub struct InitArgs {
    /// Tenant name.
    #[arg(long, required_unless_present = "superadmin")]
    tenant: Option<String>,
    /// Tenant slug (default: from the name).
    #[arg(long)]
    slug: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long, env = "LOOPCTL_DATABASE_URL")]
    database_url: Option<String>,
    /// Print an operator key (superadmin) instead of creating a tenant.
    #[arg(long, conflicts_with = "tenant")]
    superadmin: bool,
}

#[derive(Args)]
pub struct UpArgs {
    #[arg(long, env = "LOOPCTL_LISTEN", default_value = "127.0.0.1:4000")]
    listen: String,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOOPCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let store = open_store(args.database_url.as_deref()).await?;
    let listener = bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = store.backend(), "loopctl listening");
    eprintln!("loopctl {} listening on http://{addr} ({} store)", env!("CARGO_PKG_VERSION"), store.backend());
    loopctl_server::serve(store, listener).await.context("server failed")
}

async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr =
        listen.parse().with_context(|| format!("`{listen}` is not an address like 127.0.0.1:4000"))?;
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}; is another server running there?"))
}

/// `admin init`: prints JSON with `--format json` (the global flag), else a short text.
pub async fn admin(command: AdminCommand, json_output: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::Init(args) => {
            let store = open_store(args.database_url.as_deref()).await?;
            let app = App::new(store);
            if args.superadmin {
                let raw = app.create_superadmin_key().await.map_err(|err| anyhow::anyhow!(err.message))?;
                if json_output {
                    loopctl_cli::outln!("{}", json!({"superadmin_key": raw}));
                } else {
                    loopctl_cli::outln!(
                        "Superadmin key (shown once; it operates tenants, it is not a tenant key):\n{raw}"
                    );
                }
                return Ok(());
            }
            let tenant_name = args.tenant.unwrap_or_default();
            let created = app
                .bootstrap_tenant(BootstrapRequest { tenant_name, slug: args.slug, email: args.email })
                .await
                .map_err(|err| anyhow::anyhow!(err.message))?;
            if json_output {
                loopctl_cli::outln!("{}", json!(created));
            } else {
                loopctl_cli::outln!("Created tenant {} ({})", created.tenant_slug, created.tenant_id);
                loopctl_cli::outln!("These keys are shown once; store them now.");
                loopctl_cli::outln!("  user:         {}", created.keys.user);
                loopctl_cli::outln!("  orchestrator: {}", created.keys.orchestrator);
                loopctl_cli::outln!("  agent:        {}", created.keys.agent);
            }
            Ok(())
        }
    }
}

/// The quickstart: a server on the embedded store. The first run creates a tenant, its keys,
/// an example project and three CLI profiles; later runs reuse all of it.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    init_tracing();
    let dir = data_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let store = open_store(Some(&dir.join("loopctl.db").to_string_lossy())).await?;
    let listener = bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    let server = format!("http://{addr}");
    let keys_file = dir.join("keys.json");
    let first_run = !keys_file.exists();
    let keys: Bootstrap = if first_run {
        let app = App::new(store.clone());
        let created = app
            .bootstrap_tenant(BootstrapRequest { tenant_name: "local".into(), slug: None, email: None })
            .await
            .map_err(|err| anyhow::anyhow!(err.message))?;
        create_example(&app, &created.keys.orchestrator).await?;
        write_private(&keys_file, &serde_json::to_string_pretty(&created)?)?;
        created
    } else {
        let text =
            std::fs::read_to_string(&keys_file).with_context(|| format!("cannot read {}", keys_file.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged; move it away to start afresh", keys_file.display()))?
    };
    save_profiles(&server, &keys)?;
    if first_run {
        eprintln!(
            "Created tenant `local` with an example project; keys are in {} (readable only by you).",
            keys_file.display()
        );
    } else {
        eprintln!("Reusing the data in {}.", dir.display());
    }
    eprintln!(
        "loopctl {} is up on {server} (SQLite store in {}).\n\
         CLI profiles saved: local (orchestrator, default), local-user, local-agent.\n\
         Try, in another terminal:\n  \
         loopctl status --project example\n  \
         loopctl next --project example\n  \
         loopctl --profile local-agent next --project example --claim\n  \
         loopctl blocked --project example --explain\n\
         API docs: {server}/api/v1/openapi.json   Stop with Ctrl-C.",
        env!("CARGO_PKG_VERSION"),
        dir.display()
    );
    // A local quickstart has one user and many agents: no rate limits (SPEC).
    let options = loopctl_server::ServeOptions { rate_limits: false };
    loopctl_server::serve_with(store, listener, options).await.context("server failed")
}

const EXAMPLE: &str = include_str!("example-breakdown.json");

async fn create_example(app: &App, orchestrator_key: &str) -> anyhow::Result<()> {
    let who = app.authenticate(orchestrator_key).await.map_err(|err| anyhow::anyhow!(err.message))?;
    let project = app
        .create_project(
            &who,
            loopctl_app::CreateProject {
                name: "Example".into(),
                slug: Some("example".into()),
                repo_url: None,
                description: Some("A small breakdown to try the loop on".into()),
                tech_stack: None,
                mission: None,
                metadata: None,
            },
        )
        .await
        .map_err(|err| anyhow::anyhow!(err.message))?;
    let doc: serde_json::Value = serde_json::from_str(EXAMPLE)?;
    app.import_project(&who, project.id, &doc, false).await.map_err(|err| anyhow::anyhow!(err.message))?;
    Ok(())
}

/// `local` (orchestrator, the default), `local-user`, `local-agent`, all on this server.
fn save_profiles(server: &str, keys: &Bootstrap) -> anyhow::Result<()> {
    use loopctl_cli::context::{Profile, load_config, save_config};
    let mut config = load_config()?;
    for (name, key) in
        [("local", &keys.keys.orchestrator), ("local-user", &keys.keys.user), ("local-agent", &keys.keys.agent)]
    {
        let profile = config.profiles.entry(name.to_string()).or_insert_with(Profile::default);
        profile.server = Some(server.to_string());
        profile.api_key = Some(key.clone());
    }
    if config.default_profile.is_none() {
        config.default_profile = Some("local".into());
    }
    save_config(&config)?;
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
