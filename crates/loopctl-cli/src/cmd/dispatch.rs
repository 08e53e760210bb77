//! `dispatch`: mint a capability token for a sub-agent; list and revoke them.

use clap::{Args, Subcommand, ValueEnum};
use loopctl_api::{CreateDispatch, DispatchListParams};
use uuid::Uuid;

use crate::context::{Ctx, StoryIndex};
use crate::output::{CliError, Table, emit, short_uuid, usage};
use crate::time::shown;

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
            let story_id = match story {
                Some(story) => Some(ctx.story_id(&story).await?),
                None => None,
            };
            let params = DispatchListParams { story_id, active_only: active.then_some(true) };
            let answer = ctx.client.list_dispatches(&params).await?;
            let stories = match ctx.project_id().await {
                Ok(project) => ctx.story_index(project).await?,
                // Several projects and none named: a number would not say which project's
                // story it is, so those rows keep a short id.
                Err(err) if err.downcast_ref::<CliError>().is_some() => StoryIndex::default(),
                Err(err) => return Err(err),
            };
            emit(ctx.format, &answer, || {
                let mut table = Table::new(&["id", "role", "story", "agent", "by", "expires", "active", "lineage"]);
                for d in &answer.data {
                    let active = if d.active { "yes" } else { "no" };
                    table.row(vec![
                        d.id.to_string(),
                        d.role.clone(),
                        stories.name(Some(d.story_id)),
                        short_uuid(Some(d.agent_id)),
                        short_uuid(d.dispatched_by_agent_id),
                        shown(Some(d.expires_at)),
                        active.into(),
                        format!("depth {}", d.lineage_path.len()),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
            Ok(())
        }
        Some(DispatchCmd::Revoke { id }) => {
            let dispatch = Uuid::parse_str(&id).map_err(|_| usage(format!("`{id}` is not a dispatch id")))?;
            let answer = ctx.client.revoke_dispatch(dispatch).await?;
            emit(ctx.format, &answer, || format!("Revoked dispatch {id}; its token no longer works"));
            Ok(())
        }
        None => {
            let story = args.story.ok_or_else(|| usage("say which story: loopctl dispatch 2.1 --role implementer"))?;
            let role = args.role.ok_or_else(|| usage("say which capacity: --role implementer|reviewer"))?;
            let story = ctx.story(&story).await?;
            let role = match role {
                Capacity::Implementer => "implementer",
                Capacity::Reviewer => "reviewer",
            };
            let parent_dispatch_id = args
                .parent
                .map(|parent| {
                    Uuid::parse_str(&parent).map_err(|_| usage(format!("--parent `{parent}` is not a dispatch id")))
                })
                .transpose()?;
            let dispatch = CreateDispatch {
                role: role.into(),
                story_id: Some(story.id),
                agent_id: None,
                parent_dispatch_id,
                expires_in_seconds: Some(seconds(&args.ttl)?),
            };
            let answer = ctx.client.create_dispatch(&dispatch).await?;
            let created = &answer.data;
            emit(ctx.format, &answer, || {
                format!(
                    "Dispatched {} {role} for story {} (dispatch {}, agent {}), valid until {}.\nToken (shown once; give it to the sub-agent as LOOPCTL_API_KEY):\n{}",
                    if role == "implementer" { "an" } else { "a" },
                    story.number,
                    created.dispatch.id,
                    created.dispatch.agent_id,
                    shown(Some(created.dispatch.expires_at)),
                    created.api_key.raw_key
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
