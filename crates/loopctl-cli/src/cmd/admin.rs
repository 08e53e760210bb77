//! Administration: projects, import/export, epics, stories, keys, agents, the tenant.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::context::{Ctx, StoryIndex, encode};
use crate::output::{Format, Table, emit, text, usage};

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
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The breakdown: a JSON file (or - for stdin).
    file: String,
    /// Add to or update the existing project instead of refusing existing numbers.
    #[arg(long)]
    merge: bool,
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
            let body = json!({"name": name, "slug": slug, "repo_url": repo_url, "description": description, "mission": mission});
            let answer = ctx.client.post("/api/v1/projects", body).await?;
            let p = &answer["project"];
            emit(ctx.format, &answer, || format!("Created project {} ({})", text(&p["slug"]), text(&p["id"])));
        }
        ProjectCmd::List { all } => {
            let query = if all { vec![("include_archived", "true".to_string())] } else { vec![] };
            let answer = ctx.client.get_query("/api/v1/projects", &query).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["slug", "name", "status", "id"]);
                for p in answer["data"].as_array().into_iter().flatten() {
                    table.row(vec![text(&p["slug"]), text(&p["name"]), text(&p["status"]), text(&p["id"])]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        ProjectCmd::Info { project } => {
            let reference = match project {
                Some(p) => p,
                None => text(&ctx.project().await?["id"]),
            };
            let answer = ctx.client.get(&format!("/api/v1/projects/{}", encode(&reference))).await?;
            let p = &answer["project"];
            emit(ctx.format, &answer, || {
                format!(
                    "{} ({})\n  id:      {}\n  status:  {}\n  epics:   {}\n  stories: {}\n  repo:    {}\n",
                    text(&p["name"]),
                    text(&p["slug"]),
                    text(&p["id"]),
                    text(&p["status"]),
                    text(&p["epic_count"]),
                    text(&p["story_count"]),
                    text(&p["repo_url"])
                )
            });
        }
        ProjectCmd::Runner { project, repo, check, timeout } => {
            let found = ctx.client.get(&format!("/api/v1/projects/{}", encode(&project))).await?;
            let id = text(&found["project"]["id"]);
            let body = json!({"repo": repo, "check_command": check, "timeout_seconds": timeout});
            let answer = ctx.client.put(&format!("/api/v1/projects/{id}/runner"), body).await?;
            emit(ctx.format, &answer, || {
                format!(
                    "Runner of {project}: mirrors {repo}, checks with {}",
                    check.as_deref().unwrap_or("(artifacts only)")
                )
            });
        }
        ProjectCmd::Archive { project } => {
            let found = ctx.client.get(&format!("/api/v1/projects/{}", encode(&project))).await?;
            let id = text(&found["project"]["id"]);
            let answer = ctx.client.delete(&format!("/api/v1/projects/{id}")).await?;
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
    let doc: Value =
        serde_json::from_str(&text_in).map_err(|err| usage(format!("{} is not valid JSON: {err}", args.file)))?;
    let project = ctx.project_id().await?;
    let path = format!("/api/v1/projects/{project}/import{}", if args.merge { "?merge=true" } else { "" });
    let answer = ctx.client.post(&path, doc).await?;
    let i = &answer["import"];
    emit(ctx.format, &answer, || {
        let mut out = format!(
            "Imported: {} epics created, {} stories created, {} dependencies created",
            text(&i["epics_created"]),
            text(&i["stories_created"]),
            text(&i["dependencies_created"])
        );
        if args.merge {
            out.push_str(&format!(
                "; {} epics and {} stories updated; {} existing dependencies kept",
                text(&i["epics_updated"]),
                text(&i["stories_updated"]),
                text(&i["dependencies_existing"])
            ));
            let orphans: Vec<String> =
                i["stories_orphaned"].as_array().into_iter().flatten().map(|o| text(&o["number"])).collect();
            if !orphans.is_empty() {
                out.push_str(&format!("\nIn the project but not in the file (kept): {}", orphans.join(", ")));
            }
        }
        out
    });
    Ok(())
}

pub async fn export(ctx: &Ctx) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let doc = ctx.client.get(&format!("/api/v1/projects/{project}/export")).await?;
    crate::outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

pub async fn epic(ctx: &Ctx, command: EpicCmd) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    match command {
        EpicCmd::Create { number, title, phase, description } => {
            let body = json!({"number": number, "title": title, "phase": phase, "description": description});
            let answer = ctx.client.post(&format!("/api/v1/projects/{project}/epics"), body).await?;
            emit(ctx.format, &answer, || {
                format!("Created epic {} {}", text(&answer["epic"]["number"]), text(&answer["epic"]["title"]))
            });
        }
        EpicCmd::List => {
            let answer = ctx.client.get(&format!("/api/v1/projects/{project}/epics")).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["epic", "title", "phase", "stories", "done %"]);
                for e in answer["data"].as_array().into_iter().flatten() {
                    table.row(vec![
                        text(&e["number"]),
                        text(&e["title"]),
                        text(&e["phase"]),
                        text(&e["story_count"]),
                        text(&e["completion_percentage"]),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}

fn criteria(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .enumerate()
            .map(|(idx, text)| json!({"id": format!("AC-{}", idx + 1), "description": text}))
            .collect(),
    )
}

pub async fn story(ctx: &Ctx, command: StoryCmd) -> anyhow::Result<()> {
    match command {
        StoryCmd::Create { number, title, epic, acceptance_criteria, description, estimated_hours } => {
            let project = ctx.project_id().await?;
            let body = json!({
                "number": number, "title": title, "epic_number": epic, "description": description,
                "acceptance_criteria": criteria(&acceptance_criteria), "estimated_hours": estimated_hours,
            });
            let answer = ctx.client.post(&format!("/api/v1/projects/{project}/stories"), body).await?;
            emit(ctx.format, &answer, || {
                format!("Created story {} {}", text(&answer["story"]["number"]), text(&answer["story"]["title"]))
            });
        }
        StoryCmd::Update { story, title, description, acceptance_criteria, estimated_hours } => {
            let id = ctx.story_id(&story).await?;
            let mut body = json!({});
            if let Some(title) = title {
                body["title"] = json!(title);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            if !acceptance_criteria.is_empty() {
                body["acceptance_criteria"] = criteria(&acceptance_criteria);
            }
            if let Some(hours) = estimated_hours {
                body["estimated_hours"] = json!(hours);
            }
            let answer = ctx.client.patch(&format!("/api/v1/stories/{id}"), body).await?;
            emit(ctx.format, &answer, || format!("Updated story {}", text(&answer["story"]["number"])));
        }
        StoryCmd::Deps { story, add, remove } => {
            let id = ctx.story_id(&story).await?;
            for target in &add {
                let target_id = ctx.story_id(target).await?;
                ctx.client
                    .post("/api/v1/story_dependencies", json!({"story_id": id, "depends_on_story_id": target_id}))
                    .await?;
            }
            let detail = ctx.client.get(&format!("/api/v1/stories/{id}")).await?;
            for target in &remove {
                let target_id = ctx.story_id(target).await?;
                let edge = detail["story"]["dependencies"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|d| d["depends_on_story_id"] == target_id.as_str())
                    .and_then(|d| d["id"].as_str().map(str::to_string))
                    .ok_or_else(|| usage(format!("{story} does not depend on {target}")))?;
                ctx.client.delete(&format!("/api/v1/story_dependencies/{edge}")).await?;
            }
            let detail = ctx.client.get(&format!("/api/v1/stories/{id}")).await?;
            let deps = detail["story"]["dependencies"].clone();
            let targets: Vec<&Value> =
                deps.as_array().into_iter().flatten().map(|d| &d["depends_on_story_id"]).collect();
            let stories = match (ctx.format, targets.is_empty()) {
                (Format::Human | Format::Csv, false) => ctx.story_index(&text(&detail["story"]["project_id"])).await?,
                _ => StoryIndex::default(),
            };
            emit(ctx.format, &json!({"dependencies": deps}), || {
                let number = text(&detail["story"]["number"]);
                let names: Vec<String> = targets.iter().map(|id| stories.name(id)).collect();
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

pub async fn keys(ctx: &Ctx, command: KeysCmd) -> anyhow::Result<()> {
    match command {
        KeysCmd::Create { name, role, agent_id, expires_at } => {
            let answer = ctx
                .client
                .post(
                    "/api/v1/api_keys",
                    json!({"name": name, "role": role, "agent_id": agent_id, "expires_at": expires_at}),
                )
                .await?;
            let key = &answer["api_key"];
            emit(ctx.format, &answer, || {
                format!(
                    "Created {} key `{}`; this is the only time it is shown:\n{}",
                    text(&key["role"]),
                    text(&key["name"]),
                    text(&key["raw_key"])
                )
            });
        }
        KeysCmd::List { all } => {
            let query = if all { vec![("include_revoked", "true".to_string())] } else { vec![] };
            let answer = ctx.client.get_query("/api/v1/api_keys", &query).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["id", "name", "role", "prefix", "agent", "revoked", "expires"]);
                for k in answer["api_keys"].as_array().into_iter().flatten() {
                    table.row(vec![
                        text(&k["id"]),
                        text(&k["name"]),
                        text(&k["role"]),
                        text(&k["key_prefix"]),
                        text(&k["agent_id"]),
                        text(&k["revoked_at"]),
                        text(&k["expires_at"]),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        KeysCmd::Revoke { id } => {
            let answer = ctx.client.delete(&format!("/api/v1/api_keys/{}", encode(&id))).await?;
            emit(ctx.format, &answer, || format!("Revoked key {}", text(&answer["api_key"]["name"])));
        }
        KeysCmd::Rotate { id, grace_hours } => {
            let answer = ctx
                .client
                .post(&format!("/api/v1/api_keys/{}/rotate", encode(&id)), json!({"grace_period_hours": grace_hours}))
                .await?;
            emit(ctx.format, &answer, || {
                format!(
                    "New key (shown once):\n{}\nThe old key works until {}",
                    text(&answer["new_key"]["raw_key"]),
                    text(&answer["old_key_expires_at"])
                )
            });
        }
    }
    Ok(())
}

pub async fn agent(ctx: &Ctx, command: AgentCmd) -> anyhow::Result<()> {
    match command {
        AgentCmd::Register { name, agent_type } => {
            let answer =
                ctx.client.post("/api/v1/agents/register", json!({"name": name, "agent_type": agent_type})).await?;
            emit(ctx.format, &answer, || {
                format!(
                    "This key's agent is now `{}` ({})",
                    text(&answer["agent"]["name"]),
                    text(&answer["agent"]["id"])
                )
            });
        }
        AgentCmd::List => {
            let answer = ctx.client.get("/api/v1/agents").await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["name", "type", "status", "id"]);
                for a in answer["agents"].as_array().into_iter().flatten() {
                    table.row(vec![text(&a["name"]), text(&a["agent_type"]), text(&a["status"]), text(&a["id"])]);
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
            let answer = ctx.client.get("/api/v1/tenants/me").await?;
            let t = &answer["tenant"];
            emit(ctx.format, &answer, || {
                let mut out = format!("{} ({})\n", text(&t["name"]), text(&t["slug"]));
                for (key, value) in t["settings"].as_object().into_iter().flatten() {
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
            let answer = ctx.client.patch("/api/v1/tenants/me", json!({"settings": settings})).await?;
            emit(ctx.format, &answer, || {
                let s = &answer["tenant"]["settings"];
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
