//! `serve`, `admin init` and `up`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use loopctl_app::{App, Bootstrap, BootstrapRequest};
use loopctl_store::Store;
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::{create_private_dir, data_dir, open_store};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LOOPCTL_LISTEN", default_value = "127.0.0.1:4000")]
    listen: String,
    /// `postgres://…`, `sqlite://…` or a file path; default: loopctl.db in the data dir.
    #[arg(long, env = "LOOPCTL_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory of the Ed25519 keys that sign verification runs (created 0700 with a first
    /// key when missing); every server on one database needs the same keys. Default:
    /// signing-keys in the data dir.
    #[arg(long, env = "LOOPCTL_SIGNING_KEY_DIR")]
    signing_key_dir: Option<std::path::PathBuf>,
    /// How the log is written to stderr: `text` for a person, `json` (one object per line,
    /// with the request's span: method, path, request_id) for a log collector.
    #[arg(long, env = "LOOPCTL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Let webhooks reach private, loopback and link-local addresses (receivers on your own
    /// network). Off by default: a webhook could otherwise probe the server's network.
    #[arg(long, env = "LOOPCTL_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The run-signing keys of `dir`, or of the data directory.
fn signing_keys(dir: Option<std::path::PathBuf>) -> anyhow::Result<loopctl_app::signing::SigningKeys> {
    let dir = match dir {
        Some(dir) => dir,
        None => data_dir()?.join("signing-keys"),
    };
    Ok(loopctl_app::signing::SigningKeys::load_or_create(&dir)?)
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a tenant with one key per role, directly on the database.
    ///
    /// Example: loopctl admin init --tenant acme --format json
    Init(InitArgs),
    /// Make a new key for signing verification runs; runs signed by older keys keep
    /// verifying. Servers sign with it after their next start.
    ///
    /// Example: loopctl admin rotate-signing-key --signing-key-dir /var/lib/loopctl/signing-keys
    RotateSigningKey {
        /// The servers' key directory (default: signing-keys in the data dir).
        #[arg(long, env = "LOOPCTL_SIGNING_KEY_DIR")]
        signing_key_dir: Option<std::path::PathBuf>,
    },
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
    /// Let webhooks reach private, loopback and link-local addresses (a receiver on this
    /// machine, as a local setup has). Off by default, as with `serve`.
    #[arg(long, env = "LOOPCTL_ALLOW_PRIVATE_WEBHOOKS")]
    allow_private_webhooks: bool,
}

/// `serve` logs every request (`tower_http` at info); `up` is a terminal a person watches
/// while its own runner polls the feed, so there only warnings of requests show.
/// `LOOPCTL_LOG` overrides either.
fn init_tracing(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOOPCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => log.json().with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
            log.with_ansi(ansi).try_init()
        }
    };
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing("info,sqlx=warn", args.log_format);
    let store = open_store(args.database_url.as_deref()).await?;
    let listener = bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, store = store.backend(), "loopctl listening");
    eprintln!(
        "loopctl {} listening on http://{addr} ({} store); dashboard at http://{addr}/",
        env!("CARGO_PKG_VERSION"),
        store.backend()
    );
    let options = loopctl_server::ServeOptions {
        signing_keys: Some(signing_keys(args.signing_key_dir)?),
        allow_private_webhooks: args.allow_private_webhooks,
        ..Default::default()
    };
    loopctl_server::serve_with(store, listener, options).await.context("server failed")
}

async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr =
        listen.parse().with_context(|| format!("`{listen}` is not an address like 127.0.0.1:4000"))?;
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}; is another server running there?"))
}

/// `admin init`: prints JSON with `--format json` (the global flag), else a short text.
pub async fn admin(command: AdminCommand, json_output: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::RotateSigningKey { signing_key_dir } => {
            let dir = match signing_key_dir {
                Some(dir) => dir,
                None => data_dir()?.join("signing-keys"),
            };
            loopctl_app::signing::SigningKeys::load_or_create(&dir)?;
            loopctl_app::signing::SigningKeys::create_key(&dir)?;
            let keys = loopctl_app::signing::SigningKeys::load_or_create(&dir)?;
            if json_output {
                loopctl_cli::outln!("{}", json!({"key_id": keys.current_id(), "keys": keys.public_keys().len()}));
            } else {
                loopctl_cli::outln!(
                    "New signing key {} in {}; restart the servers to sign with it ({} keys verify).",
                    keys.current_id(),
                    dir.display(),
                    keys.public_keys().len()
                );
            }
            Ok(())
        }
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
    init_tracing("info,sqlx=warn,tower_http=warn", LogFormat::Text);
    let dir = data_dir()?;
    create_private_dir(&dir)?;
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
    let profiles = save_profiles(&server, &keys).await?;
    let projects = project_slugs(&store, &keys).await?;
    if first_run {
        eprintln!(
            "Created tenant `local` with an example project; keys are in {} (readable only by you).",
            keys_file.display()
        );
    } else {
        eprintln!("Reusing the data in {}.", dir.display());
    }
    eprintln!("loopctl {} is up on {server} (SQLite store in {}).", env!("CARGO_PKG_VERSION"), dir.display());
    if !profiles.saved.is_empty() {
        let named: Vec<String> = profiles
            .saved
            .iter()
            .map(|name| match *name {
                "local" if profiles.default_is_local => "local (orchestrator, default)".to_string(),
                "local" => "local (orchestrator)".to_string(),
                other => other.to_string(),
            })
            .collect();
        eprintln!("CLI profiles saved: {}.", named.join(", "));
    }
    if !profiles.kept.is_empty() {
        let kept: Vec<String> = profiles.kept.iter().map(|(name, url)| format!("{name} at {url}")).collect();
        eprintln!(
            "Left profiles {} (a server answers there); to point one here: \
             loopctl auth login --server {server} --key … --profile local (keys in {}).",
            kept.join(", "),
            keys_file.display()
        );
    }
    if projects.len() > 1 {
        eprintln!(
            "This tenant has {} projects ({}): commands that name none need `loopctl init --project P` \
             in the repository, or LOOPCTL_PROJECT=P.",
            projects.len(),
            projects.join(", ")
        );
    }
    // The commands below run with the default profile, so only when it points here.
    if profiles.default_points_here {
        eprintln!(
            "Try, in another terminal:\n  \
             loopctl status --project example\n  \
             loopctl next --project example\n  \
             loopctl --profile local-agent next --project example --claim\n  \
             loopctl blocked --project example --explain"
        );
    }
    // The verifier runner, in-process: it checks the projects a user configured with
    // `loopctl project runner` (none at first), in its own mirrors under the data dir.
    match &keys.keys.verifier {
        Some(verifier) => {
            loopctl_cli::start_runner(&server, verifier.clone(), dir.join("runner"))?;
            eprintln!(
                "Verifier runner: on (checks projects configured with `loopctl --profile local-user project runner P --repo PATH --check CMD`)."
            );
        }
        None => eprintln!("Verifier runner: off (these keys predate verifier keys; run `loopctl runner` with one)."),
    }
    eprintln!("Dashboard: {server}/ (sign in with a key from keys.json: the user's may also clear escalations).");
    eprintln!("API docs: {server}/api/v1/openapi.json   Stop with Ctrl-C.");
    // A local quickstart has one user and many agents: no rate limits (SPEC).
    let options = loopctl_server::ServeOptions {
        rate_limits: false,
        signing_keys: Some(loopctl_app::signing::SigningKeys::load_or_create(&dir.join("signing-keys"))?),
        allow_private_webhooks: args.allow_private_webhooks,
        ..Default::default()
    };
    loopctl_server::serve_with(store, listener, options).await.context("server failed")
}

const EXAMPLE: &str = include_str!("example-breakdown.json");

async fn create_example(app: &App, orchestrator_key: &str) -> anyhow::Result<()> {
    let who = app.authenticate(orchestrator_key).await.map_err(|err| anyhow::anyhow!(err.message))?;
    let project = app
        .create_project(
            &who,
            loopctl_api::CreateProject {
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

/// The slugs of the local tenant's projects.
async fn project_slugs(store: &Arc<dyn Store>, keys: &Bootstrap) -> anyhow::Result<Vec<String>> {
    let app = App::new(store.clone());
    let who = app.authenticate(&keys.keys.orchestrator).await.map_err(|err| anyhow::anyhow!(err.message))?;
    let projects = app.list_projects(&who, false).await.map_err(|err| anyhow::anyhow!(err.message))?;
    Ok(projects.into_iter().map(|p| p.slug).collect())
}

/// What `up` did with the CLI profiles.
struct Profiles {
    /// Created, or already pointing here (their keys refreshed).
    saved: Vec<&'static str>,
    /// Left as they were: they point at another server that still answers.
    kept: Vec<(&'static str, String)>,
    default_is_local: bool,
    /// The default profile is one of `local*` and points at this server.
    default_points_here: bool,
}

/// `local` (orchestrator, the default), `local-user`, `local-agent`, on this server. A profile
/// that points at another server is left alone while a server answers there (a second `up`
/// on another port must not take the first one's profiles away); one whose server is gone
/// is pointed here, so a restart on a new port carries on.
async fn save_profiles(server: &str, keys: &Bootstrap) -> anyhow::Result<Profiles> {
    use loopctl_cli::context::{Profile, load_config, save_config};
    let mut config = load_config()?;
    let mut saved = Vec::new();
    let mut kept = Vec::new();
    for (name, key) in
        [("local", &keys.keys.orchestrator), ("local-user", &keys.keys.user), ("local-agent", &keys.keys.agent)]
    {
        let elsewhere = config
            .profiles
            .get(name)
            .and_then(|profile| profile.server.clone())
            .filter(|url| url.trim_end_matches('/') != server.trim_end_matches('/'));
        if let Some(url) = elsewhere
            && answers(&url).await
        {
            kept.push((name, url));
            continue;
        }
        let profile = config.profiles.entry(name.to_string()).or_insert_with(Profile::default);
        profile.server = Some(server.to_string());
        profile.api_key = Some(key.clone());
        saved.push(name);
    }
    if config.default_profile.is_none() {
        config.default_profile = Some("local".into());
    }
    save_config(&config)?;
    let default = config.default_profile.as_deref().unwrap_or_default();
    Ok(Profiles { default_is_local: default == "local", default_points_here: saved.contains(&default), saved, kept })
}

/// Whether something accepts connections at a server URL's host and port (within a second).
async fn answers(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let default_port = if url.starts_with("https://") { 443 } else { 80 };
    let address = if authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let connect = tokio::net::TcpStream::connect(address);
    matches!(tokio::time::timeout(std::time::Duration::from_secs(1), connect).await, Ok(Ok(_)))
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
