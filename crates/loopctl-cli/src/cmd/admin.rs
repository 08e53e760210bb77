//! Administration: projects, import/export, epics, stories, keys, agents, the tenant.

use clap::{Args, Subcommand};
use loopctl_api::{
    CreateApiKey, CreateEpic, CreateProject, CreateStory, CreateStoryDependency, ImportMergedAnswer, ImportSummary,
    KeyListParams, ProjectAnswer, ProjectBudget, ProjectListParams, RegisterAgent, RotateApiKey, RunnerConfig,
    StoryDependencyRef, UpdateStory, UpdateTenant,
};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cmd::read::budget_words;
use crate::context::{Ctx, StoryIndex};
use crate::output::{Format, Table, emit, json_number, or_dash, text, usage};
use crate::time::as_sent;

#[derive(Subcommand, Debug)]
pub enum ProjectCmd {
    /// Example: loopctl project create "Web shop" --slug web
    Create {
        name: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long)]
        repo_url: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        mission: Option<String>,
    },
    /// Example: loopctl project list --all
    List {
        /// Include archived projects.
        #[arg(long)]
        all: bool,
    },
    /// Example: loopctl project info web
    Info { project: Option<String> },
    /// Example: loopctl project archive web
    Archive { project: String },
    /// What the verifier runner checks (users only): the repository it clones and the check
    /// it runs in a clean copy of each reported commit.
    ///
    /// Example: loopctl project runner web --repo /srv/git/web.git --check "cargo test" --timeout 900
    Runner {
        project: String,
        /// A local path or git URL; the runner keeps its own mirror of it.
        #[arg(long)]
        repo: String,
        /// The command run in a clean copy of each reported commit.
        #[arg(long)]
        check: Option<String>,
        /// Time limit of the check in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u32,
    },
    /// Sets the project's budget (users only): `orchestrate` dispatches no agent once the
    /// agents' reported tokens or cost reach it, and `status` warns from 80 %. Neither limit
    /// removes the budget.
    ///
    /// Example: loopctl project budget web --tokens 5000000 --cost-usd 40
    Budget {
        project: String,
        /// Input plus output tokens.
        #[arg(long)]
        tokens: Option<i64>,
        /// Dollars of reported cost.
        #[arg(long)]
        cost_usd: Option<f64>,
    },
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The breakdown: a JSON file (or - for stdin).
    file: String,
    /// Add to or update the existing project instead of refusing existing numbers.
    #[arg(long)]
    merge: bool,
    /// Stories per request: a larger file is sent in batches (each lands whole; the
    /// dependencies travel with the last; batches after the first merge).
    #[arg(long, default_value_t = loopctl_client::DEFAULT_IMPORT_BATCH, value_name = "N")]
    batch_size: usize,
}

#[derive(Subcommand, Debug)]
pub enum EpicCmd {
    /// Example: loopctl epic create 3 "Billing" --phase p1
    Create {
        number: i64,
        title: String,
        #[arg(long)]
        phase: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Example: loopctl epic list
    List,
}

#[derive(Subcommand, Debug)]
pub enum StoryCmd {
    /// Example: loopctl story create 3.1 "Invoice PDF" --epic 3 --ac "PDF renders" --ac "Totals match"
    Create {
        number: String,
        title: String,
        /// The epic's number.
        #[arg(long)]
        epic: i64,
        /// An acceptance criterion (repeatable).
        #[arg(long = "ac")]
        acceptance_criteria: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        estimated_hours: Option<f64>,
    },
    /// Example: loopctl story update 3.1 --title "Invoice PDF export"
    Update {
        story: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Replaces the acceptance criteria (repeatable).
        #[arg(long = "ac")]
        acceptance_criteria: Vec<String>,
        #[arg(long)]
        estimated_hours: Option<f64>,
    },
    /// Show, add or remove what a story depends on.
    ///
    /// Example: loopctl story deps 3.2 --add 3.1
    Deps {
        story: String,
        #[arg(long)]
        add: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Example: loopctl keys create impl-7 --role agent
    Create {
        name: String,
        #[arg(long, value_parser = ["user", "orchestrator", "agent", "verifier"])]
        role: String,
        /// Link to an existing agent identity instead of a new one.
        #[arg(long)]
        agent_id: Option<String>,
        /// ISO-8601 expiry.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Example: loopctl keys list --all
    List {
        #[arg(long)]
        all: bool,
    },
    /// Example: loopctl keys revoke 01a2…
    Revoke { id: String },
    /// Example: loopctl keys rotate 01a2… --grace-hours 1
    Rotate {
        id: String,
        #[arg(long)]
        grace_hours: Option<i64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCmd {
    /// Name this key's agent identity.
    ///
    /// Example: loopctl agent register impl-7 --type implementer
    Register {
        name: String,
        #[arg(long = "type", value_parser = ["orchestrator", "implementer"])]
        agent_type: Option<String>,
    },
    /// Example: loopctl agent list
    List,
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Example: loopctl tenant info
    Info,
    /// Change settings.
    ///
    /// Example: loopctl tenant settings set max_concurrent_agents=3
    #[command(subcommand)]
    Settings(SettingsCmd),
}

#[derive(Subcommand, Debug)]
pub enum SettingsCmd {
    /// Example: loopctl tenant settings set max_concurrent_agents=3 custody_mode=strict
    Set { pairs: Vec<String> },
}

pub async fn project(ctx: &Ctx, command: ProjectCmd) -> anyhow::Result<()> {
    match command {
        ProjectCmd::Create { name, slug, repo_url, description, mission } => {
            let project =
                CreateProject { name, slug, repo_url, description, tech_stack: None, mission, metadata: None };
            let answer = ctx.client.create_project(&project).await?;
            let p = &answer.project;
            emit(ctx.format, &answer, || format!("Created project {} ({})", p.slug, p.id));
        }
        ProjectCmd::List { all } => {
            let params = ProjectListParams { include_archived: all.then_some(true), status: None };
            let answer = ctx.client.list_projects(&params).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["slug", "name", "status", "id"]);
                for p in &answer.data {
                    table.row(vec![p.slug.clone(), p.name.clone(), p.status.clone(), p.id.to_string()]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        ProjectCmd::Info { project } => {
            let answer = match project {
                Some(reference) => ProjectAnswer { project: ctx.client.resolve_project(&reference).await? },
                None => ctx.client.get_project(ctx.project_id().await?).await?,
            };
            let p = &answer.project;
            emit(ctx.format, &answer, || {
                format!(
                    "{} ({})\n  id:      {}\n  status:  {}\n  epics:   {}\n  stories: {}\n  repo:    {}\n",
                    p.name,
                    p.slug,
                    p.id,
                    p.status,
                    or_dash(p.epic_count),
                    or_dash(p.story_count),
                    or_dash(p.repo_url.as_ref())
                )
            });
        }
        ProjectCmd::Runner { project, repo, check, timeout } => {
            let id = ctx.client.resolve_project(&project).await?.id;
            let runner =
                RunnerConfig { repo: repo.clone(), check_command: check.clone(), timeout_seconds: Some(timeout) };
            let answer = ctx.client.set_project_runner(id, &runner).await?;
            emit(ctx.format, &answer, || {
                format!(
                    "Runner of {project}: mirrors {repo}, checks with {}",
                    check.as_deref().unwrap_or("(artifacts only)")
                )
            });
        }
        ProjectCmd::Budget { project, tokens, cost_usd } => {
            let id = ctx.client.resolve_project(&project).await?.id;
            let cost_millicents = match cost_usd {
                Some(usd) if usd.is_finite() && usd > 0.0 && usd <= 1e7 => Some((usd * 100_000.0).round() as i64),
                Some(_) => return Err(usage("--cost-usd must be dollars above 0 and at most 10000000")),
                None => None,
            };
            let answer = ctx.client.set_project_budget(id, &ProjectBudget { tokens, cost_millicents }).await?;
            emit(ctx.format, &answer, || match &answer.budget {
                Some(status) => {
                    format!("Budget of {project}: {} ({:.1} % used)", budget_words(&status.budget), status.used_percent)
                }
                None => format!("Budget of {project} removed"),
            });
        }
        ProjectCmd::Archive { project } => {
            let id = ctx.client.resolve_project(&project).await?.id;
            let answer = ctx.client.archive_project(id).await?;
            emit(ctx.format, &answer, || format!("Archived project {project}"));
        }
    }
    Ok(())
}

pub async fn import(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let text_in = if args.file == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&args.file).map_err(|err| usage(format!("cannot read {}: {err}", args.file)))?
    };
    // The breakdown is free JSON: the server judges it.
    let doc: Value =
        serde_json::from_str(&text_in).map_err(|err| usage(format!("{} is not valid JSON: {err}", args.file)))?;
    let project = ctx.project_id().await?;
    let batches = loopctl_client::import_batches(&doc, args.batch_size);
    if batches.len() == 1 && !args.merge {
        let answer = ctx.client.import_project(project, &doc).await?;
        let i = &answer.import;
        emit(ctx.format, &answer, || created_line(i.epics_created, i.stories_created, i.dependencies_created));
        return Ok(());
    }
    let count = batches.len();
    let mut total = ImportSummary::default();
    for (n, batch) in batches.iter().enumerate() {
        let landed = if n == 0 && !args.merge {
            ctx.client.import_project(project, batch).await.map(|a| ImportSummary {
                epics_created: a.import.epics_created,
                stories_created: a.import.stories_created,
                dependencies_created: a.import.dependencies_created,
                ..ImportSummary::default()
            })
        } else {
            ctx.client.import_project_merge(project, batch).await.map(|a| a.import)
        };
        let i = match landed {
            Ok(i) => i,
            Err(err) => {
                if n > 0 {
                    eprintln!(
                        "batch {} of {count} was refused; batches 1-{n} landed: run the same import with --merge to finish it",
                        n + 1
                    );
                }
                return Err(err.into());
            }
        };
        if count > 1 {
            eprintln!(
                "batch {} of {count}: {} stories created, {} updated",
                n + 1,
                i.stories_created,
                i.stories_updated
            );
        }
        total = ImportSummary {
            epics_created: total.epics_created + i.epics_created,
            // An epic split across batches is created by the first and touched by the next.
            epics_updated: total.epics_updated + i.epics_updated,
            stories_created: total.stories_created + i.stories_created,
            stories_updated: total.stories_updated + i.stories_updated,
            dependencies_created: total.dependencies_created + i.dependencies_created,
            dependencies_existing: total.dependencies_existing + i.dependencies_existing,
            stories_orphaned: i.stories_orphaned,
            stories_orphaned_count: i.stories_orphaned_count,
        };
    }
    let answer = ImportMergedAnswer { import: total };
    let i = &answer.import;
    emit(ctx.format, &answer, || {
        let mut out = created_line(i.epics_created, i.stories_created, i.dependencies_created);
        if args.merge {
            out.push_str(&format!(
                "; {} epics and {} stories updated; {} existing dependencies kept",
                i.epics_updated, i.stories_updated, i.dependencies_existing
            ));
            let orphans: Vec<&str> = i.stories_orphaned.iter().map(|o| o.number.as_str()).collect();
            if !orphans.is_empty() {
                out.push_str(&format!("\nIn the project but not in the file (kept): {}", orphans.join(", ")));
            }
        }
        if count > 1 {
            out.push_str(&format!(" (in {count} batches)"));
        }
        out
    });
    Ok(())
}

fn created_line(epics: usize, stories: usize, dependencies: usize) -> String {
    format!("Imported: {epics} epics created, {stories} stories created, {dependencies} dependencies created")
}

pub async fn export(ctx: &Ctx) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    // Through `Value`: keys print sorted, as every other JSON the CLI prints.
    let doc = serde_json::to_value(ctx.client.export_project(project).await?)?;
    crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub async fn epic(ctx: &Ctx, command: EpicCmd) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    match command {
        EpicCmd::Create { number, title, phase, description } => {
            let epic = CreateEpic { number: number.into(), title, description, phase, position: None, metadata: None };
            let answer = ctx.client.create_epic(project, &epic).await?;
            emit(ctx.format, &answer, || format!("Created epic {} {}", answer.epic.number, answer.epic.title));
        }
        EpicCmd::List => {
            let answer = ctx.client.list_epics(project).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["epic", "title", "phase", "stories", "done %"]);
                for e in &answer.data {
                    table.row(vec![
                        e.number.to_string(),
                        e.title.clone(),
                        or_dash(e.phase.as_ref()),
                        or_dash(e.story_count),
                        e.completion_percentage.map_or_else(|| "-".into(), json_number),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}

/// `--ac` texts as criteria `AC-1`, `AC-2`, … (free JSON, as stories store them).
fn criteria(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .enumerate()
            .map(|(idx, text)| json!({"id": format!("AC-{}", idx + 1), "description": text}))
            .collect(),
    )
}

/// What `story deps --format json` prints.
#[derive(Serialize)]
struct Dependencies<'a> {
    dependencies: &'a [StoryDependencyRef],
}

pub async fn story(ctx: &Ctx, command: StoryCmd) -> anyhow::Result<()> {
    match command {
        StoryCmd::Create { number, title, epic, acceptance_criteria, description, estimated_hours } => {
            let project = ctx.project_id().await?;
            let story = CreateStory {
                number: number.into(),
                title,
                description,
                acceptance_criteria: Some(criteria(&acceptance_criteria)),
                estimated_hours: estimated_hours.map(Value::from),
                metadata: None,
                epic_number: Some(epic.into()),
            };
            let answer = ctx.client.create_project_story(project, &story).await?;
            emit(ctx.format, &answer, || format!("Created story {} {}", answer.story.number, answer.story.title));
        }
        StoryCmd::Update { story, title, description, acceptance_criteria, estimated_hours } => {
            let id = ctx.story_id(&story).await?;
            let update = UpdateStory {
                title,
                description,
                acceptance_criteria: (!acceptance_criteria.is_empty()).then(|| criteria(&acceptance_criteria)),
                estimated_hours: estimated_hours.map(Value::from),
                metadata: None,
            };
            let answer = ctx.client.update_story(id, &update).await?;
            emit(ctx.format, &answer, || format!("Updated story {}", answer.story.number));
        }
        StoryCmd::Deps { story, add, remove } => {
            let id = ctx.story_id(&story).await?;
            for target in &add {
                let depends_on_story_id = ctx.story_id(target).await?;
                ctx.client
                    .create_story_dependency(&CreateStoryDependency { story_id: id, depends_on_story_id })
                    .await?;
            }
            let detail = ctx.client.get_story(id).await?.story;
            for target in &remove {
                let target_id = ctx.story_id(target).await?;
                let edge = detail
                    .dependencies
                    .iter()
                    .find(|d| d.depends_on_story_id == target_id)
                    .map(|d| d.id)
                    .ok_or_else(|| usage(format!("{story} does not depend on {target}")))?;
                ctx.client.delete_story_dependency(edge).await?;
            }
            let detail = ctx.client.get_story(id).await?.story;
            let deps = &detail.dependencies;
            let stories = match (ctx.format, deps.is_empty()) {
                (Format::Human | Format::Csv, false) => ctx.story_index(detail.story.project_id).await?,
                _ => StoryIndex::default(),
            };
            emit(ctx.format, &Dependencies { dependencies: deps }, || {
                let number = detail.story.number.clone();
                let names: Vec<String> = deps.iter().map(|d| stories.name(Some(d.depends_on_story_id))).collect();
                if ctx.format == Format::Csv {
                    let mut table = Table::new(&["story", "depends on"]);
                    names.into_iter().for_each(|name| table.row(vec![number.clone(), name]));
                    return table.render(ctx.format, false);
                }
                if names.is_empty() {
                    format!("{number} depends on nothing")
                } else {
                    format!("{number} depends on {}", names.join(", "))
                }
            });
        }
    }
    Ok(())
}

/// An id argument (a key's, an agent's).
pub(crate) fn id_arg(what: &str, text: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| usage(format!("`{text}` is not {what} id")))
}

pub async fn keys(ctx: &Ctx, command: KeysCmd) -> anyhow::Result<()> {
    match command {
        KeysCmd::Create { name, role, agent_id, expires_at } => {
            let agent_id = agent_id.map(|id| id_arg("an agent", &id)).transpose()?;
            let expires_at = expires_at
                .map(|at| {
                    crate::time::instant(&at).ok_or_else(|| {
                        usage(format!("--expires-at `{at}` is not an RFC 3339 time (2026-12-01T08:00:00Z)"))
                    })
                })
                .transpose()?;
            let answer = ctx.client.create_api_key(&CreateApiKey { name, role, agent_id, expires_at }).await?;
            let key = &answer.api_key;
            emit(ctx.format, &answer, || {
                format!(
                    "Created {} key `{}`; this is the only time it is shown:\n{}",
                    key.role,
                    key.name,
                    or_dash(key.raw_key.as_ref())
                )
            });
        }
        KeysCmd::List { all } => {
            let answer = ctx.client.list_api_keys(&KeyListParams { include_revoked: all.then_some(true) }).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["id", "name", "role", "prefix", "agent", "revoked", "expires"]);
                for k in &answer.api_keys {
                    table.row(vec![
                        k.id.to_string(),
                        k.name.clone(),
                        k.role.clone(),
                        k.key_prefix.clone(),
                        or_dash(k.agent_id),
                        or_dash(k.revoked_at.map(as_sent)),
                        or_dash(k.expires_at.map(as_sent)),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        KeysCmd::Revoke { id } => {
            let answer = ctx.client.revoke_api_key(id_arg("a key", &id)?).await?;
            emit(ctx.format, &answer, || format!("Revoked key {}", answer.api_key.name));
        }
        KeysCmd::Rotate { id, grace_hours } => {
            let rotation = RotateApiKey { grace_period_hours: grace_hours };
            let answer = ctx.client.rotate_api_key(id_arg("a key", &id)?, &rotation).await?;
            emit(ctx.format, &answer, || {
                format!(
                    "New key (shown once):\n{}\nThe old key works until {}",
                    or_dash(answer.new_key.raw_key.as_ref()),
                    as_sent(answer.old_key_expires_at)
                )
            });
        }
    }
    Ok(())
}

pub async fn agent(ctx: &Ctx, command: AgentCmd) -> anyhow::Result<()> {
    match command {
        AgentCmd::Register { name, agent_type } => {
            let answer = ctx.client.register_agent(&RegisterAgent { name, agent_type, metadata: None }).await?;
            emit(ctx.format, &answer, || {
                format!("This key's agent is now `{}` ({})", answer.agent.name, answer.agent.id)
            });
        }
        AgentCmd::List => {
            let answer = ctx.client.list_agents().await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["name", "type", "status", "id"]);
                for a in &answer.agents {
                    table.row(vec![a.name.clone(), a.agent_type.clone(), a.status.clone(), a.id.to_string()]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}

pub async fn tenant(ctx: &Ctx, command: TenantCmd) -> anyhow::Result<()> {
    match command {
        TenantCmd::Info => {
            let answer = ctx.client.get_tenant().await?;
            let t = &answer.tenant;
            emit(ctx.format, &answer, || {
                let mut out = format!("{} ({})\n", t.name, t.slug);
                // Settings are free JSON, printed as they are.
                for (key, value) in t.settings.as_object().into_iter().flatten() {
                    out.push_str(&format!("  {key} = {}\n", text(value)));
                }
                out
            });
        }
        TenantCmd::Settings(SettingsCmd::Set { pairs }) => {
            let mut settings = serde_json::Map::new();
            for pair in &pairs {
                let (key, value) = pair.split_once('=').ok_or_else(|| usage(format!("`{pair}` is not key=value")))?;
                let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| json!(value));
                settings.insert(key.trim().to_string(), value);
            }
            if settings.is_empty() {
                return Err(usage("name at least one setting: loopctl tenant settings set max_concurrent_agents=3"));
            }
            let update = UpdateTenant { name: None, email: None, settings: Some(Value::Object(settings)) };
            let answer = ctx.client.update_tenant(&update).await?;
            emit(ctx.format, &answer, || {
                let s = &answer.tenant.settings;
                pairs
                    .iter()
                    .map(|p| p.split('=').next().unwrap_or_default())
                    .map(|k| format!("{k} = {}\n", text(&s[k])))
                    .collect()
            });
        }
    }
    Ok(())
}
