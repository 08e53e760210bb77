//! `changes`, `history`, `audit`, `state`.

use clap::{Args, Subcommand};
use loopctl_api::{AuditParams, ChangesParams, EventView, SaveState, StateParams};

use crate::context::Ctx;
use crate::output::{Format, Table, emit, emit_record, facts_do_not_hold, text, usage};
use crate::time::{Since, as_sent};

#[derive(Args, Debug)]
pub struct ChangesArgs {
    /// Where to start: a cursor from an earlier answer (42), an RFC 3339 time
    /// (2026-12-01T08:00:00Z), a date (2026-12-01, midnight UTC) or a time ago (45s, 10m, 2h,
    /// 3d); default: the start.
    #[arg(long)]
    since: Option<String>,
    /// Keep printing events as they are committed (the live stream; Ctrl-C stops), resuming
    /// from the last cursor when the connection breaks.
    #[arg(long)]
    follow: bool,
    /// Only events of this action (status_changed, verified, rejected, …).
    #[arg(long)]
    action: Option<String>,
    #[arg(long)]
    limit: Option<i64>,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCmd>,
    #[arg(long)]
    entity_type: Option<String>,
    #[arg(long)]
    action: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: i64,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Re-walk the audit chain: every event hashed again, every signed head checked; names
    /// the first entry that was changed behind the server's back (exit 5).
    ///
    /// Example: loopctl audit verify
    Verify,
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

fn event_table(events: &[EventView], format: Format, color: bool) -> String {
    let mut table = Table::new(&["cursor", "time", "entity", "action", "actor", "change"]);
    for e in events {
        // The new state is free JSON: a story's carries its number and statuses.
        let change = match (e.new_state["number"].as_str(), e.new_state["agent_status"].as_str()) {
            (Some(number), Some(status)) => {
                format!("{number}: {status} / {}", text(&e.new_state["verified_status"]))
            }
            _ => String::new(),
        };
        table.row(vec![
            e.cursor.to_string(),
            e.inserted_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
            e.entity_type.clone(),
            e.action.clone(),
            e.actor_label.clone(),
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
        let params = ChangesParams {
            project_id: Some(project),
            since: Some(since.clone()),
            entity_type: None,
            action: args.action.clone(),
            limit: args.limit,
        };
        let page = ctx.client.changes(&params).await?;
        // Where the next read starts: the answer's cursor (with nothing new after a time, the
        // cursor the feed stands at).
        let next = page.next_cursor.to_string();
        if args.follow {
            // One JSON object per line when following, so a reader can act on each as it comes.
            if ctx.format == Format::Json {
                for event in &page.data {
                    crate::outln!("{}", serde_json::to_value(event)?);
                }
            } else if !page.data.is_empty() {
                let table = event_table(&page.data, ctx.format, ctx.color());
                let skip = usize::from(!first);
                first = false;
                for line in table.lines().skip(skip) {
                    crate::outln!("{line}");
                }
            }
        } else {
            emit(ctx.format, &page, || {
                let mut out = event_table(&page.data, ctx.format, ctx.color());
                if ctx.format == Format::Human {
                    let more = if page.has_more { " (more waiting)" } else { "" };
                    out.push_str(&format!("\nnext: --since {next}{more}\n"));
                }
                out
            });
            return Ok(());
        }
        since = next;
        if !page.has_more {
            break;
        }
    }
    // Caught up: the rest comes from the live stream, resumed from the last cursor across any
    // broken connection, so nothing is printed twice or skipped.
    let mut live = ctx.client.live_events(Some(project), since.parse().unwrap_or(0));
    loop {
        let event = live.next().await?;
        if args.action.as_ref().is_some_and(|action| *action != event.action) {
            continue;
        }
        if ctx.format == Format::Json {
            crate::outln!("{}", serde_json::to_value(&event)?);
        } else {
            let table = event_table(std::slice::from_ref(&event), ctx.format, ctx.color());
            let skip = usize::from(!first);
            first = false;
            for line in table.lines().skip(skip) {
                crate::outln!("{line}");
            }
        }
    }
}

pub async fn history(ctx: &Ctx, args: super::lifecycle::StoryArg) -> anyhow::Result<()> {
    let id = ctx.story_id(&args.story).await?;
    let answer = ctx.client.story_history(id).await?;
    emit(ctx.format, &answer, || event_table(&answer.data, ctx.format, ctx.color()));
    Ok(())
}

pub async fn audit(ctx: &Ctx, args: AuditArgs) -> anyhow::Result<()> {
    if let Some(AuditCmd::Verify) = args.command {
        return verify_audit(ctx).await;
    }
    let params = AuditParams {
        entity_type: args.entity_type,
        action: args.action,
        limit: Some(args.limit),
        ..AuditParams::default()
    };
    let answer = ctx.client.audit(&params).await?;
    emit(ctx.format, &answer, || event_table(&answer.data, ctx.format, ctx.color()));
    Ok(())
}

async fn verify_audit(ctx: &Ctx) -> anyhow::Result<()> {
    let answer = ctx.client.verify_audit().await?;
    let found = &answer.data;
    if let Some(mismatch) = &found.first_mismatch {
        if ctx.format == Format::Json {
            crate::output::print_json(&answer);
        }
        let message = format!(
            "the audit chain does not match at event {} ({}): {} ({} entries matched before it)",
            mismatch.cursor, mismatch.problem, mismatch.message, found.entries_checked
        );
        return Err(facts_do_not_hold("audit_chain_mismatch", message));
    }
    emit(ctx.format, &answer, || {
        let head = found.head.as_ref().map_or_else(
            || "no events yet".to_owned(),
            |h| format!("head at event {} (sha256 {})", h.cursor, &h.hash[..16]),
        );
        let seal = found.sealed_through.as_ref().map_or_else(
            || "no signed head yet".to_owned(),
            |s| format!("signed through event {} by key {} at {}", s.cursor, s.key_id, as_sent(s.sealed_at)),
        );
        format!("The audit chain is intact: {} entries, {head}, {seal}.", found.entries_checked)
    });
    Ok(())
}

pub async fn state(ctx: &Ctx, command: StateCmd) -> anyhow::Result<()> {
    let project = ctx.project_id().await?;
    match command {
        StateCmd::Save { data, key, expect_version } => {
            let state_data = crate::json_arg("--data", &data)?;
            if !state_data.is_object() {
                return Err(usage("--data must be a JSON object"));
            }
            let save = SaveState { state_key: Some(key.clone()), state_data, version: expect_version };
            let answer = ctx.client.save_state(project, &save).await?;
            let state = &answer.state;
            emit_record(ctx.format, &answer, state, || format!("Saved state `{key}` version {}", state.version));
        }
        StateCmd::Load { key } => {
            let params = StateParams { state_key: Some(key), limit: None };
            let answer = ctx.client.load_state(project, &params).await?;
            // The checkpoint alone, so `state load | jq` works whatever the format.
            let data = &answer.state.state_data;
            if ctx.format == Format::Human {
                crate::outln!("{}", serde_json::to_string_pretty(data)?);
            } else {
                crate::outln!("{data}");
            }
        }
        StateCmd::History { key, limit } => {
            let params = StateParams { state_key: Some(key), limit: Some(limit) };
            let answer = ctx.client.state_history(project, &params).await?;
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["version", "saved at", "by", "data"]);
                for v in &answer.data {
                    table.row(vec![
                        v.version.to_string(),
                        as_sent(v.saved_at),
                        v.saved_by.clone(),
                        v.state_data.to_string(),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}
