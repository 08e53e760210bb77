//! `auth`, `config`, `init`: where the CLI's server, key and project come from.

use clap::{Args, Subcommand};
use loopctl_api::WhoAmI;
use loopctl_client::Client;
use serde::Serialize;
use serde_json::json;

use crate::context::output_format;
use crate::context::{Ctx, Globals, Profile, RepoFile, config_path, load_config, save_config, write_private};
use crate::output::{Format, emit, emit_record, usage};

#[derive(Subcommand, Debug)]
pub enum AuthCmd {
    /// Check a key against a server and save both as a profile.
    ///
    /// Example: loopctl auth login --server http://127.0.0.1:4000 --key lc_… --profile impl-1
    Login(LoginArgs),
    /// Tenant, role, agent and key prefix of the current key, and the server.
    ///
    /// Example: loopctl auth whoami --format json
    Whoami,
    /// Forget the key of a profile.
    ///
    /// Example: loopctl auth logout --profile impl-1
    Logout,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The key (or set LOOPCTL_API_KEY).
    #[arg(long)]
    key: Option<String>,
    /// Make this profile the default.
    #[arg(long)]
    default: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print the configuration in effect (keys shown by prefix only).
    ///
    /// Example: loopctl config show --format json
    Show,
    /// Print one setting of the profile: server, api_key, project, format.
    Get { key: String },
    /// Set one setting of the profile.
    ///
    /// Example: loopctl config set project web
    Set { key: String, value: String },
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Also pin the server URL in the file.
    #[arg(long)]
    pin_server: bool,
}

pub async fn run(command: AuthCmd, globals: &Globals) -> anyhow::Result<()> {
    match command {
        AuthCmd::Login(args) => login(args, globals).await,
        AuthCmd::Whoami => whoami(globals).await,
        AuthCmd::Logout => logout(globals),
    }
}

fn profile_name(globals: &Globals, config: &crate::context::Config) -> String {
    globals.profile.clone().or_else(|| config.default_profile.clone()).unwrap_or_else(|| "default".into())
}

async fn login(args: LoginArgs, globals: &Globals) -> anyhow::Result<()> {
    let mut config = load_config()?;
    let name = globals.profile.clone().unwrap_or_else(|| "default".into());
    let key = args.key.or_else(|| globals.api_key.clone()).ok_or_else(|| usage("say which key: --key lc_…"))?;
    let existing = config.profiles.get(&name).cloned().unwrap_or_default();
    let server = globals
        .server
        .clone()
        .or(existing.server.clone())
        .unwrap_or_else(|| crate::context::DEFAULT_SERVER.to_string());
    let client = Client::new(&server, Some(key.clone()))?;
    let me = client.whoami().await?;
    let profile = Profile {
        server: Some(server.clone()),
        api_key: Some(key),
        project: globals.project.clone().or(existing.project),
        format: existing.format,
    };
    config.profiles.insert(name.clone(), profile);
    if args.default || config.default_profile.is_none() {
        config.default_profile = Some(name.clone());
    }
    let path = save_config(&config)?;
    let format = if globals.format == Some(crate::context::FormatArg::Json) { Format::Json } else { Format::Human };
    emit(format, &json!({"profile": name, "server": server, "whoami": me, "config": path}), || {
        format!(
            "Logged in to {server} as {} ({}) in tenant {}; saved as profile `{name}` in {}",
            me.key_name,
            me.role,
            me.tenant_slug,
            path.display()
        )
    });
    Ok(())
}

async fn whoami(globals: &Globals) -> anyhow::Result<()> {
    let ctx = Ctx::new(globals)?;
    if !ctx.has_key {
        return Err(usage(
            "no API key configured; run `loopctl auth login --server URL --key KEY` or set LOOPCTL_API_KEY",
        ));
    }
    let whoami = ctx.client.whoami().await?;
    let me = Identity { whoami: &whoami, server: &ctx.server, profile: &ctx.profile_name };
    emit_record(ctx.format, &me, &me, || {
        let agent = match (&whoami.agent_name, whoami.agent_id) {
            (Some(name), Some(id)) => format!("{name} ({id})"),
            _ => "-".into(),
        };
        format!(
            "server:   {}\ntenant:   {} ({})\nrole:     {}\nagent:    {agent}\nkey:      {} ({}…)\nprofile:  {}\n",
            ctx.server,
            whoami.tenant_name,
            whoami.tenant_slug,
            whoami.role,
            whoami.key_name,
            whoami.key_prefix,
            ctx.profile_name
        )
    });
    Ok(())
}

/// The caller as the server knows it, and where this CLI sent the question.
#[derive(Serialize)]
struct Identity<'a> {
    #[serde(flatten)]
    whoami: &'a WhoAmI,
    server: &'a str,
    profile: &'a str,
}

fn logout(globals: &Globals) -> anyhow::Result<()> {
    let mut config = load_config()?;
    let name = profile_name(globals, &config);
    let Some(profile) = config.profiles.get_mut(&name) else {
        return Err(usage(format!("no profile `{name}` to log out of")));
    };
    profile.api_key = None;
    save_config(&config)?;
    crate::outln!("Forgot the key of profile `{name}`.");
    Ok(())
}

pub fn config(command: ConfigCmd, globals: &Globals) -> anyhow::Result<()> {
    let mut config = load_config()?;
    let name = profile_name(globals, &config);
    match command {
        ConfigCmd::Show => {
            let repo = crate::context::find_repo_file();
            let mut shown = config.clone();
            for profile in shown.profiles.values_mut() {
                if let Some(key) = &profile.api_key {
                    profile.api_key = Some(format!("{}…", key.chars().take(8).collect::<String>()));
                }
            }
            let value = json!({
                "config_file": config_path()?,
                "profile": name,
                "repo_file": repo.as_ref().map(|(path, _)| path.clone()),
                "repo": repo.map(|(_, file)| json!({"server": file.server, "project": file.project})),
                "profiles": shown.profiles.iter().map(|(k, p)| (k.clone(), json!(p))).collect::<serde_json::Map<_, _>>(),
                "default_profile": config.default_profile,
            });
            let profile = config.profiles.get(&name).cloned().unwrap_or_default();
            // People have always been shown this JSON; it reads well as it is.
            let pretty = serde_json::to_string_pretty(&value)?;
            emit_record(output_format(globals, &profile), &value, &value, || pretty);
        }
        ConfigCmd::Get { key } => {
            let profile = config.profiles.get(&name).cloned().unwrap_or_default();
            let value = match key.as_str() {
                "server" => profile.server,
                "api_key" => profile.api_key.map(|k| format!("{}…", k.chars().take(8).collect::<String>())),
                "project" => profile.project,
                "format" => profile.format,
                other => {
                    return Err(usage(format!("unknown setting `{other}`; use server, api_key, project or format")));
                }
            };
            crate::outln!("{}", value.unwrap_or_default());
        }
        ConfigCmd::Set { key, value } => {
            let profile = config.profiles.entry(name.clone()).or_default();
            match key.as_str() {
                "server" => profile.server = Some(value),
                "api_key" => profile.api_key = Some(value),
                "project" => profile.project = Some(value),
                "format" if matches!(value.as_str(), "human" | "json" | "csv") => profile.format = Some(value),
                "format" => return Err(usage("format is human, json or csv")),
                other => {
                    return Err(usage(format!("unknown setting `{other}`; use server, api_key, project or format")));
                }
            }
            if config.default_profile.is_none() {
                config.default_profile = Some(name.clone());
            }
            save_config(&config)?;
            crate::outln!("Set {key} in profile `{name}`.");
        }
    }
    Ok(())
}

pub fn init(args: InitArgs, globals: &Globals) -> anyhow::Result<()> {
    let project = globals.project.clone().ok_or_else(|| usage("say which project: loopctl init --project P"))?;
    let server = if args.pin_server { globals.server.clone() } else { None };
    let file = RepoFile { server, project: Some(project.clone()) };
    let path = std::env::current_dir()?.join(".loopctl.toml");
    let text = toml::to_string_pretty(&file)?;
    write_private(&path, &text)?;
    crate::outln!("Wrote {}: commands here and in every worktree below use project `{project}`.", path.display());
    Ok(())
}
