//! Where the CLI finds its server, key and project: flags > env > `.loopctl.toml` > profile —
//! except that a `.loopctl.toml` never sends a key to a server the key was not saved for
//! ([`key_destination`]).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use etcetera::BaseStrategy;
use loopctl_api::{ExitClass, ProjectListParams, ProjectView, StoryListParams, StoryView};
use loopctl_client::{Client, ClientError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use uuid::Uuid;

use crate::output::{CliError, Format, short_uuid, text, usage, uuids_in};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:4000";

/// Flags every command takes, before or after the command name.
#[derive(Args, Debug, Clone, Default)]
pub struct Globals {
    /// Server URL [env: LOOPCTL_SERVER]
    #[arg(long, global = true, env = "LOOPCTL_SERVER", hide_env = true)]
    pub server: Option<String>,
    /// API key [env: LOOPCTL_API_KEY]
    #[arg(long, global = true, env = "LOOPCTL_API_KEY", hide_env_values = true, hide_env = true)]
    pub api_key: Option<String>,
    /// Project slug, name or id [env: LOOPCTL_PROJECT]
    #[arg(long, short = 'p', global = true, env = "LOOPCTL_PROJECT", hide_env = true)]
    pub project: Option<String>,
    /// Output format [env: LOOPCTL_FORMAT]
    #[arg(long, global = true, env = "LOOPCTL_FORMAT", hide_env = true, value_enum)]
    pub format: Option<FormatArg>,
    /// Profile from the config file [env: LOOPCTL_PROFILE]
    #[arg(long, global = true, env = "LOOPCTL_PROFILE", hide_env = true)]
    pub profile: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatArg {
    Human,
    Json,
    Csv,
}

/// The config file: named profiles.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct Config {
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    pub server: Option<String>,
    pub api_key: Option<String>,
    pub project: Option<String>,
    pub format: Option<String>,
}

/// `.loopctl.toml` in a repository: shared by every worktree of it.
#[derive(Serialize, Deserialize, Debug, Default, Clone)]
pub struct RepoFile {
    pub server: Option<String>,
    pub project: Option<String>,
}

pub fn config_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LOOPCTL_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let strategy = etcetera::choose_base_strategy().context("cannot find the home directory; set LOOPCTL_CONFIG")?;
    Ok(strategy.config_dir().join("loopctl").join("config.toml"))
}

pub fn load_config() -> anyhow::Result<Config> {
    let path = config_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{} is not a valid loopctl config", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the config readable by the owner only (it holds keys).
pub fn save_config(config: &Config) -> anyhow::Result<PathBuf> {
    let path = config_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = toml::to_string_pretty(config)?;
    let tmp = path.with_extension("toml.tmp");
    write_private(&tmp, &text)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The nearest `.loopctl.toml` from the working directory up. A linked git worktree that has
/// none of its own uses its main checkout's, so every worktree of a repository agrees.
pub fn find_repo_file() -> Option<(PathBuf, RepoFile)> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let candidate = dir.join(".loopctl.toml");
        if candidate.is_file() {
            return read_repo_file(candidate);
        }
        if let Some(main) = main_checkout(&dir) {
            let candidate = main.join(".loopctl.toml");
            if candidate.is_file() {
                return read_repo_file(candidate);
            }
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn read_repo_file(path: PathBuf) -> Option<(PathBuf, RepoFile)> {
    let text = std::fs::read_to_string(&path).ok()?;
    toml::from_str(&text).ok().map(|file| (path, file))
}

/// For a linked worktree (`.git` is a file `gitdir: <main>/.git/worktrees/<name>`), the
/// main checkout's directory.
fn main_checkout(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    if !dot_git.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(dot_git).ok()?;
    let gitdir = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    let gitdir = if gitdir.is_absolute() { gitdir } else { dir.join(gitdir) };
    // <main>/.git/worktrees/<name> → <main>
    let common = gitdir.parent()?.parent()?;
    (common.file_name()? == ".git").then(|| common.parent().map(Path::to_path_buf)).flatten()
}

/// Where the key a command would send came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Given for this run: `--api-key` or an environment variable, named as the user sees it.
    Explicit(&'static str),
    /// Saved in the profile (`loopctl auth login`), together with the server it is for.
    Profile,
}

/// The server to talk to: `explicit` (`--server` / `LOOPCTL_SERVER`), else the repository's
/// `.loopctl.toml`, else the profile's, else the default.
///
/// A `.loopctl.toml` comes with whatever repository is checked out, so it may name the project
/// but it may not decide where a key goes: when it names a server other than the one the key
/// would go to without it (the profile's, else the default), and a key would be sent, this
/// refuses (exit 3) instead of sending the key there. A server chosen by flag or environment
/// is the user's own choice and always stands.
///
/// # Errors
/// A `CliError` (exit 3, `key_server_mismatch`) naming the file, both servers and the fix.
pub fn key_destination(
    explicit: Option<&str>,
    repo: Option<&(PathBuf, RepoFile)>,
    profile_name: &str,
    profile: &Profile,
    key: Option<KeySource>,
) -> anyhow::Result<String> {
    if let Some(server) = explicit {
        return Ok(server.to_string());
    }
    let home = profile.server.clone().unwrap_or_else(|| DEFAULT_SERVER.to_string());
    let Some((path, RepoFile { server: Some(named), .. })) = repo else {
        return Ok(home);
    };
    let Some(key) = key.filter(|_| !loopctl_client::same_server(named, &home)) else {
        return Ok(named.clone());
    };
    let file = path.display();
    let message = match key {
        KeySource::Profile => format!(
            "refusing to send the key of profile `{profile_name}` to {named}: {file} names that server, but the \
             profile is saved for {home}. If you trust {named}, choose it yourself with --server or LOOPCTL_SERVER; \
             otherwise remove `server` from {file}"
        ),
        KeySource::Explicit(source) => {
            let otherwise = match profile.server {
                Some(_) => format!("profile `{profile_name}`'s server is {home}"),
                None => format!("no profile names a server, so the default would be {home}"),
            };
            format!(
                "refusing to send the key from {source} to {named}: only {file} names that server ({otherwise}), \
                 and a repository's file may not choose where a key goes. Name the server with --server or \
                 LOOPCTL_SERVER, or remove `server` from {file}"
            )
        }
    };
    Err(anyhow::Error::new(CliError { exit: ExitClass::Auth, code: "key_server_mismatch", message }))
}

/// The output format: `--format` / `LOOPCTL_FORMAT`, else the profile's, else human.
pub fn output_format(globals: &Globals, profile: &Profile) -> Format {
    match globals.format {
        Some(FormatArg::Json) => Format::Json,
        Some(FormatArg::Csv) => Format::Csv,
        Some(FormatArg::Human) => Format::Human,
        None => match profile.format.as_deref() {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ => Format::Human,
        },
    }
}

/// The stories of one project by id, for naming them by number.
#[derive(Debug, Default)]
pub struct StoryIndex {
    by_id: HashMap<Uuid, StoryView>,
}

impl StoryIndex {
    pub fn get(&self, id: Option<Uuid>) -> Option<&StoryView> {
        self.by_id.get(&id?)
    }

    /// The story's number, or a short id for a story of another project.
    pub fn name(&self, id: Option<Uuid>) -> String {
        self.get(id).map_or_else(|| short_uuid(id), |story| story.number.clone())
    }
}

/// Story numbers an error's `context` already carries (`{"id": …, "number": "1.1"}` anywhere
/// in it), by id.
fn numbers_in_context(context: &Value, found: &mut HashMap<String, String>) {
    match context {
        Value::Object(fields) => {
            if let (Some(id), Some(number)) = (fields.get("id").and_then(Value::as_str), fields.get("number")) {
                found.insert(id.to_string(), text(number));
            }
            fields.values().for_each(|value| numbers_in_context(value, found));
        }
        Value::Array(items) => items.iter().for_each(|item| numbers_in_context(item, found)),
        _ => {}
    }
}

/// At most this many ids of one error message are looked up as stories.
const IDS_LOOKED_UP: usize = 3;

/// Everything a command needs: a client, the output format, the project if any.
pub struct Ctx {
    pub client: Client,
    pub format: Format,
    pub project: Option<String>,
    pub profile_name: String,
    pub server: String,
    pub has_key: bool,
}

impl Ctx {
    pub fn new(globals: &Globals) -> anyhow::Result<Ctx> {
        let config = load_config()?;
        let profile_name =
            globals.profile.clone().or_else(|| config.default_profile.clone()).unwrap_or_else(|| "default".into());
        let profile = config.profiles.get(&profile_name).cloned().unwrap_or_default();
        if globals.profile.is_some() && !config.profiles.contains_key(&profile_name) {
            let known: Vec<&String> = config.profiles.keys().collect();
            return Err(usage(format!(
                "no profile `{profile_name}`; known profiles: {known:?} (see `loopctl auth login --profile`)"
            )));
        }
        let repo = find_repo_file();
        let api_key = globals.api_key.clone().or(profile.api_key.clone());
        let key_source = match (&globals.api_key, &profile.api_key) {
            (Some(_), _) => Some(KeySource::Explicit("--api-key / LOOPCTL_API_KEY")),
            (None, Some(_)) => Some(KeySource::Profile),
            (None, None) => None,
        };
        let server = key_destination(globals.server.as_deref(), repo.as_ref(), &profile_name, &profile, key_source)?;
        let repo_project = repo.and_then(|(_, file)| file.project);
        let project = globals.project.clone().or(repo_project).or(profile.project.clone());
        let format = output_format(globals, &profile);
        let has_key = api_key.is_some();
        let client = Client::new(&server, api_key)?;
        Ok(Ctx { client, format, project, profile_name, server, has_key })
    }

    pub fn color(&self) -> bool {
        self.format == Format::Human && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
    }

    /// The project id: the one named, else the tenant's only project.
    pub async fn project_id(&self) -> anyhow::Result<Uuid> {
        Ok(self.project().await?.id)
    }

    pub async fn project(&self) -> anyhow::Result<ProjectView> {
        if let Some(reference) = &self.project {
            return Ok(self.client.resolve_project(reference).await?);
        }
        let mut projects = self.client.list_projects(&ProjectListParams::default()).await?.data;
        match projects.len() {
            1 => Ok(projects.remove(0)),
            0 => Err(usage("no project yet; create one with `loopctl project create NAME`")),
            _ => {
                let slugs: Vec<&str> = projects.iter().map(|p| p.slug.as_str()).collect();
                Err(usage(format!(
                    "say which project: --project, LOOPCTL_PROJECT, or `loopctl init --project P` (projects: {})",
                    slugs.join(", ")
                )))
            }
        }
    }

    /// A story by number (`2.1`, `US-2.1`) in the project, or by UUID.
    pub async fn story(&self, reference: &str) -> anyhow::Result<StoryView> {
        let project = match Uuid::parse_str(reference) {
            Ok(_) => None,
            Err(_) => Some(self.project_id().await?.to_string()),
        };
        Ok(self.client.resolve_story(project.as_deref(), reference).await?)
    }

    pub async fn story_id(&self, reference: &str) -> anyhow::Result<Uuid> {
        match Uuid::parse_str(reference) {
            Ok(id) => Ok(id),
            Err(_) => Ok(self.story(reference).await?.id),
        }
    }

    /// Every story of a project, from one list call (one per 500 stories).
    pub async fn story_index(&self, project_id: Uuid) -> anyhow::Result<StoryIndex> {
        const PAGE: usize = 500;
        let mut index = StoryIndex::default();
        let mut offset = 0;
        loop {
            let params = StoryListParams {
                project_id: Some(project_id.to_string()),
                limit: Some(PAGE as i64),
                offset: Some(offset as i64),
                ..StoryListParams::default()
            };
            let page = self.client.story_page(&params).await?;
            offset += page.data.len();
            let last_page = page.data.len() < PAGE || offset as i64 >= page.meta.total_count;
            index.by_id.extend(page.data.into_iter().map(|story| (story.id, story)));
            if last_page {
                return Ok(index);
            }
        }
    }

    /// A server refusal whose message names stories by UUID, reworded with their numbers, as
    /// people name them (`dispatched for story 1.1 only`). The numbers come from the error's
    /// context, else from a look-up of each id; an id that is no story this key may read stays.
    /// The JSON body stays as the server sent it.
    pub async fn name_stories_in(&self, err: anyhow::Error) -> anyhow::Error {
        let Some(ClientError::Api { status, error, body }) = err.downcast_ref::<ClientError>() else {
            return err;
        };
        let message = &error.message;
        let ids = uuids_in(message);
        if ids.is_empty() {
            return err;
        }
        let mut numbers = HashMap::new();
        numbers_in_context(&body["error"]["context"], &mut numbers);
        let mut reworded = message.clone();
        for id in ids.iter().take(IDS_LOOKED_UP) {
            let number = match numbers.remove(id) {
                Some(number) => Some(number),
                None => match Uuid::parse_str(id) {
                    Ok(id) => self.client.get_story(id).await.ok().map(|answer| answer.story.story.number),
                    Err(_) => None,
                },
            };
            if let Some(number) = number {
                reworded = reworded.replace(id.as_str(), &number);
            }
        }
        if reworded == *message {
            return err;
        }
        let error = Box::new(loopctl_api::ErrorBody { message: reworded, ..(**error).clone() });
        anyhow::Error::new(ClientError::Api { status: *status, error, body: body.clone() })
    }
}

/// Where the CLI remembers the claim epoch of each story it claimed (the fencing token
/// it sends back as `X-Claim-Epoch`).
fn epoch_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LOOPCTL_STATE_DIR") {
        return Some(PathBuf::from(dir).join("epochs"));
    }
    let strategy = etcetera::choose_base_strategy().ok()?;
    let base = strategy.state_dir().unwrap_or_else(|| strategy.data_dir());
    Some(base.join("loopctl").join("epochs"))
}

pub fn remember_epoch(story_id: Uuid, epoch: i64) {
    if let Some(dir) = epoch_dir()
        && std::fs::create_dir_all(&dir).is_ok()
    {
        let _ = std::fs::write(dir.join(story_id.to_string()), epoch.to_string());
    }
}

pub fn recall_epoch(story_id: Uuid) -> Option<i64> {
    let dir = epoch_dir()?;
    std::fs::read_to_string(dir.join(story_id.to_string())).ok()?.trim().parse().ok()
}

pub fn forget_epoch(story_id: Uuid) {
    if let Some(dir) = epoch_dir() {
        let _ = std::fs::remove_file(dir.join(story_id.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A story as the server answers it, with only its id and number worth looking at.
    fn story_numbered(id: Uuid, number: &str) -> StoryView {
        let time = "2026-12-01T00:00:00Z";
        serde_json::from_value(serde_json::json!({
            "id": id, "tenant_id": id, "project_id": id, "epic_id": id, "number": number, "title": "t",
            "acceptance_criteria": [], "ac_count": 0, "agent_status": "pending", "verified_status": "unverified",
            "sort_key": 1, "metadata": {}, "claim_epoch": 0, "iteration_count": 0, "escalated": false,
            "escalation_locked": false, "verifier_needed": false, "stale": false, "backfilled": false,
            "inserted_at": time, "updated_at": time,
        }))
        .expect("a story")
    }

    fn repo(server: &str) -> (PathBuf, RepoFile) {
        (PathBuf::from("/checkout/.loopctl.toml"), RepoFile { server: Some(server.into()), project: None })
    }

    fn refusal(result: anyhow::Result<String>) -> String {
        let err = result.expect_err("refused");
        let cli = err.downcast_ref::<CliError>().expect("a CliError");
        assert_eq!((cli.exit.exit_code(), cli.code), (3, "key_server_mismatch"));
        cli.message.clone()
    }

    #[test]
    fn a_repository_file_cannot_send_a_profile_key_to_its_own_server() {
        let profile = Profile { server: Some("http://127.0.0.1:4000".into()), ..Profile::default() };
        let evil = repo("http://127.0.0.1:9999");
        let message = refusal(key_destination(None, Some(&evil), "local", &profile, Some(KeySource::Profile)));
        for part in ["/checkout/.loopctl.toml", "http://127.0.0.1:9999", "`local`", "http://127.0.0.1:4000", "--server"]
        {
            assert!(message.contains(part), "{part} in {message}");
        }
        // An explicit key with only the file's server is refused as well.
        let explicit = Some(KeySource::Explicit("--api-key / LOOPCTL_API_KEY"));
        let message = refusal(key_destination(None, Some(&evil), "local", &profile, explicit));
        assert!(message.contains("--api-key / LOOPCTL_API_KEY") && message.contains("LOOPCTL_SERVER"), "{message}");
    }

    #[test]
    fn the_file_may_name_the_key_s_own_server_and_an_explicit_server_always_stands() {
        let profile = Profile { server: Some("http://127.0.0.1:4000".into()), ..Profile::default() };
        let same = repo("http://127.0.0.1:4000/");
        let explicit = Some(KeySource::Explicit("LOOPCTL_AGENT_KEY"));
        for key in [Some(KeySource::Profile), explicit] {
            assert_eq!(
                key_destination(None, Some(&same), "local", &profile, key).expect("allowed"),
                "http://127.0.0.1:4000/"
            );
        }
        let evil = repo("http://127.0.0.1:9999");
        let chosen = key_destination(Some("http://127.0.0.1:9999"), Some(&evil), "local", &profile, explicit);
        assert_eq!(chosen.expect("allowed"), "http://127.0.0.1:9999");
        // Without a key there is nothing to steal: the file's server is used.
        assert_eq!(
            key_destination(None, Some(&evil), "local", &profile, None).expect("allowed"),
            "http://127.0.0.1:9999"
        );
        assert_eq!(
            key_destination(None, None, "local", &Profile::default(), explicit).expect("allowed"),
            DEFAULT_SERVER
        );
    }

    #[test]
    fn an_error_context_names_story_numbers_at_any_depth() {
        let context = serde_json::json!({
            "max_concurrent_agents": 1,
            "in_flight": [{"id": "a", "number": "1.1"}, {"id": "b", "number": "2.3", "title": "x"}],
        });
        let mut found = HashMap::new();
        numbers_in_context(&context, &mut found);
        assert_eq!(found.get("a").map(String::as_str), Some("1.1"));
        assert_eq!(found.get("b").map(String::as_str), Some("2.3"));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn a_story_index_names_its_stories_by_number_and_others_by_short_id() {
        let mut index = StoryIndex::default();
        let id = |text: &str| Uuid::parse_str(text).expect("a test id");
        let known = id("01a2332d-7c4e-7f00-8a1b-0123456789ab");
        index.by_id.insert(known, story_numbered(known, "1.1"));
        assert_eq!(index.name(Some(known)), "1.1");
        assert_eq!(index.name(Some(id("01a2332d-7c4e-7f00-8a1b-ffffffffffff"))), "ffffffff");
        assert_eq!(index.name(None), "-");
    }
}
