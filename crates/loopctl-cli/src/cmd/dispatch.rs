//! `dispatch`: mint a capability token for a sub-agent; list and revoke them.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::context::{Ctx, StoryIndex};
use crate::output::{CliError, Table, emit, short_id, text, usage};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DispatchArgs {
    #[command(subcommand)]
    command: Option<DispatchCmd>,
    /// The story the sub-agent works on (2.1, US-2.1 or its id).
    story: Option<String>,
    /// The capacity the token works in.
    #[arg(long, value_enum)]
    role: Option<Capacity>,
    /// How long the token lives: 90s, 30m, 2h (at most 24h).
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The parent dispatch, to record lineage.
    #[arg(long)]
    parent: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum Capacity {
    Implementer,
    Reviewer,
}

#[derive(Subcommand, Debug)]
pub enum DispatchCmd {
    /// Dispatches with their lineage.
    ///
    /// Example: loopctl dispatch list --story 2.1 --active
    List {
        #[arg(long)]
        story: Option<String>,
        #[arg(long)]
        active: bool,
    },
    /// Revoke a dispatch and its token.
    ///
    /// Example: loopctl dispatch revoke 01a2…
    Revoke { id: String },
}

/// `90s`, `30m`, `2h`, or plain seconds.
fn seconds(ttl: &str) -> anyhow::Result<i64> {
    let ttl = ttl.trim();
    if let Ok(seconds) = ttl.parse::<u32>() {
        return Ok(i64::from(seconds));
    }
    crate::time::duration(ttl)
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| usage(format!("--ttl `{ttl}` is not a duration like 90s, 30m or 2h")))
}

pub async fn run(ctx: &Ctx, args: DispatchArgs) -> anyhow::Result<()> {
    match args.command {
        Some(DispatchCmd::List { story, active }) => {
            let mut query = Vec::new();
            if let Some(story) = story {
                query.push(("story_id", ctx.story_id(&story).await?));
            }
            if active {
                query.push(("active_only", "true".to_string()));
            }
            let answer = ctx.client.get_query("/api/v1/dispatches", &query).await?;
            let stories = match ctx.project_id().await {
                Ok(project) => ctx.story_index(&project).await?,
                // Several projects and none named: a number would not say which project's
                // story it is, so those rows keep a short id.
                Err(err) if err.downcast_ref::<CliError>().is_some() => StoryIndex::default(),
                Err(err) => return Err(err),
            };
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["id", "role", "story", "agent", "by", "expires", "active", "lineage"]);
                for d in answer["data"].as_array().into_iter().flatten() {
                    let lineage = d["lineage_path"].as_array().map_or(0, Vec::len);
                    let active = if d["active"] == true { "yes" } else { "no" };
                    table.row(vec![
                        text(&d["id"]),
                        text(&d["role"]),
                        stories.name(&d["story_id"]),
                        short_id(&d["agent_id"]),
                        short_id(&d["dispatched_by_agent_id"]),
                        crate::time::display_time(&text(&d["expires_at"])),
                        active.into(),
                        format!("depth {lineage}"),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
            Ok(())
        }
        Some(DispatchCmd::Revoke { id }) => {
            let answer = ctx.client.delete(&format!("/api/v1/dispatches/{id}")).await?;
            emit(ctx.format, &answer, || format!("Revoked dispatch {id}; its token no longer works"));
            Ok(())
        }
        None => {
            let story = args.story.ok_or_else(|| usage("say which story: loopctl dispatch 2.1 --role implementer"))?;
            let role = args.role.ok_or_else(|| usage("say which capacity: --role implementer|reviewer"))?;
            let story = ctx.story(&story).await?;
            let story_id = text(&story["id"]);
            let role = match role {
                Capacity::Implementer => "implementer",
                Capacity::Reviewer => "reviewer",
            };
            let body = json!({
                "role": role,
                "story_id": story_id,
                "expires_in_seconds": seconds(&args.ttl)?,
                "parent_dispatch_id": args.parent,
            });
            let answer = ctx.client.post("/api/v1/dispatches", body).await?;
            let data = &answer["data"];
            emit(ctx.format, &answer, || {
                format!(
                    "Dispatched {} {role} for story {} (dispatch {}, agent {}), valid until {}.\nToken (shown once; give it to the sub-agent as LOOPCTL_API_KEY):\n{}",
                    if role == "implementer" { "an" } else { "a" },
                    text(&story["number"]),
                    text(&data["dispatch"]["id"]),
                    text(&data["dispatch"]["agent_id"]),
                    crate::time::display_time(&text(&data["dispatch"]["expires_at"])),
                    text(&data["api_key"]["raw_key"])
                )
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_plain_seconds_or_durations() {
        assert_eq!(seconds("90s").ok(), Some(90));
        assert_eq!(seconds("30m").ok(), Some(1800));
        assert_eq!(seconds("2h").ok(), Some(7200));
        assert_eq!(seconds("45").ok(), Some(45));
        assert_eq!(seconds("1d").ok(), Some(86_400));
        assert!(seconds("h").is_err());
        assert!(seconds("-5m").is_err());
    }
}
