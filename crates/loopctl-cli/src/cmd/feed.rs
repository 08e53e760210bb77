//! `changes`, `history`, `audit`, `state`.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::output::{Format, Table, emit, emit_record, text, usage};
use crate::time::Since;

#[derive(Args, Debug)]
pub struct ChangesArgs {
    /// Where to start: a cursor from an earlier answer (42), an RFC 3339 time
    /// (2026-12-01T08:00:00Z), a date (2026-12-01, midnight UTC) or a time ago (45s, 10m, 2h,
    /// 3d); default: the start.
    #[arg(long)]
    since: Option<String>,
    /// Keep polling for new events (Ctrl-C stops); resumes from the last cursor.
    #[arg(long)]
    follow: bool,
    /// Only events of this action (status_changed, verified, rejected, …).
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    limit: Option<i64>,
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[arg(long)]
    entity_type: Option<String>,
    #[arg(long)]
    action: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

#[derive(Subcommand, Debug)]
pub enum StateCmd {
    /// Save a checkpoint (JSON or @file); --expect-version refuses a stale save.
    ///
    /// Example: loopctl state save --project web --data '{"phase":"epic-2","last_verified":"US-2.1"}'
    Save {
        #[arg(long)]
        data: String,
        #[arg(long, default_value = "main")]
        key: String,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Print the last checkpoint's JSON alone (pipe it).
    ///
    /// Example: loopctl state load --project web | jq .phase
    Load {
        #[arg(long, default_value = "main")]
        key: String,
    },
    /// Earlier checkpoints, newest first.
    History {
        #[arg(long, default_value = "main")]
        key: String,
        #[arg(long, default_value_t = 25)]
        limit: i64,
    },
}

fn event_table(events: &[Value], format: Format, color: bool) -> String {
    let mut table = Table::new(&["cursor", "time", "entity", "action", "actor", "change"]);
    for e in events {
        let change = match (e["new_state"]["number"].as_str(), e["new_state"]["agent_status"].as_str()) {
            (Some(number), Some(status)) => {
                format!("{number}: {status} / {}", text(&e["new_state"]["verified_status"]))
            }
            _ => String::new(),
        };
        table.row(vec![
            text(&e["cursor"]),
            text(&e["inserted_at"]).chars().take(19).collect(),
            text(&e["entity_type"]),
            text(&e["action"]),
            text(&e["actor_label"]),
            change,
        ]);
    }
    table.render(format, color)
}

pub async fn changes(ctx: &Ctx, args: ChangesArgs) -> anyhow::Result<()> {
    let since = match &args.since {
        Some(text) => Since::parse(text, chrono::Utc::now()).map_err(usage)?,
        None => Since::Cursor(0),
    };
    let project = ctx.project_id().await?;
    let mut since = since.query_value();
    let mut first = true;
    loop {
        let mut query = vec![("project_id", project.clone()), ("since", since.clone())];
        if let Some(action) = &args.action {
            query.push(("action", action.clone()));
        }
        if let Some(limit) = args.limit {
            query.push(("limit", limit.to_string()));
        }
        let page = ctx.client.get_query("/api/v1/changes", &query).await?;
        let events = page["data"].as_array().cloned().unwrap_or_default();
        // Where the next read starts: the answer's cursor, else (no event yet after a time)
        // the same `since`, which the server takes again.
        let next = page["next_cursor"].as_i64().map_or_else(|| since.clone(), |cursor| cursor.to_string());
        if args.follow {
            // One JSON object per line when following, so a reader can act on each as it comes.
            if ctx.format == Format::Json {
                for event in &events {
                    crate::outln!("{event}");
                }
            } else if !events.is_empty() {
                let table = event_table(&events, ctx.format, ctx.color());
                let skip = usize::from(!first);
                first = false;
                for line in table.lines().skip(skip) {
                    crate::outln!("{line}");
                }
            }
        } else {
            emit(ctx.format, &page, || {
                let mut out = event_table(&events, ctx.format, ctx.color());
                if ctx.format == Format::Human {
                    let more = if page["has_more"] == true { " (more waiting)" } else { "" };
                    out.push_str(&format!("\nnext: --since {next}{more}\n"));
                }
                out
            });
            return Ok(());
        }
        since = next;
        if page["has_more"] != true {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

pub async fn history(ctx: &Ctx, args: super::lifecycle::StoryArg) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer = ctx.client.get(&format!("/api/v1/stories/{id}/history")).await?;
    let events = answer["data"].as_array().cloned().unwrap_or_default();
    emit(ctx.format, &answer, || event_table(&events, ctx.format, ctx.color()));
    Ok(())
}

pub async fn audit(ctx: &Ctx, args: AuditArgs) -> anyhow::Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    if let Some(entity) = args.entity_type {
        query.push(("entity_type", entity));
    }
    if let Some(action) = args.action {
        query.push(("action", action));
    }
    let answer = ctx.client.get_query("/api/v1/audit", &query).await?;
    let events = answer["data"].as_array().cloned().unwrap_or_default();
    emit(ctx.format, &answer, || event_table(&events, ctx.format, ctx.color()));
    Ok(())
}

pub async fn state(ctx: &Ctx, command: StateCmd) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    let path = format!("/api/v1/orchestrator/state/{project}");
    match command {
        StateCmd::Save { data, key, expect_version } => {
            let state_data = crate::json_arg("--data", &data)?;
            if !state_data.is_object() {
                return Err(usage("--data must be a JSON object"));
            }
            let mut body = json!({"state_key": key, "state_data": state_data});
            if let Some(version) = expect_version {
                body["version"] = json!(version);
            }
            let answer = ctx.client.put(&path, body).await?;
            let state = &answer["state"];
            emit_record(ctx.format, &answer, state, || {
                format!("Saved state `{key}` version {}", text(&state["version"]))
            });
        }
        StateCmd::Load { key } => {
            let answer = ctx.client.get_query(&path, &[("state_key", key)]).await?;
            // The checkpoint alone, so `state load | jq` works whatever the format.
            let data = &answer["state"]["state_data"];
            if ctx.format == Format::Human {
                crate::outln!("{}", serde_json::to_string_pretty(data)?);
            } else {
                crate::outln!("{data}");
            }
        }
        StateCmd::History { key, limit } => {
            let answer = ctx
                .client
                .get_query(&format!("{path}/history"), &[("state_key", key), ("limit", limit.to_string())])
                .await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["version", "saved at", "by", "data"]);
                for v in answer["data"].as_array().into_iter().flatten() {
                    table.row(vec![
                        text(&v["version"]),
                        text(&v["saved_at"]),
                        text(&v["saved_by"]),
                        v["state_data"].to_string(),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}
