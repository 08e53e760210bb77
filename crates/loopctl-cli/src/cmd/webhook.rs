//! `webhook create|list|delete|deliveries` (user keys).

use clap::Subcommand;
use loopctl_api::{CreateWebhook, DeliveryParams};

use super::admin::id_arg;
use crate::context::Ctx;
use crate::output::{Table, emit, or_dash};
use crate::time::as_sent;

#[derive(Subcommand, Debug)]
pub enum WebhookCmd {
    /// Post the tenant's events to a URL, signed (HMAC-SHA256, header `loopctl-signature`);
    /// the secret is shown this once. Scoped to the project (--project, LOOPCTL_PROJECT,
    /// .loopctl.toml) when one is named, unless --all-projects.
    ///
    /// Example: loopctl webhook create https://ci.example.com/loopctl --event verified --event rejected
    Create {
        url: String,
        /// Only events of this action (repeat it); every action when absent.
        #[arg(long = "event")]
        events: Vec<String>,
        /// Every project's events, even when a project is named.
        #[arg(long)]
        all_projects: bool,
    },
    /// Example: loopctl webhook list
    List,
    /// Delete a webhook and its delivery log.
    ///
    /// Example: loopctl webhook delete 01a2…
    Delete { id: String },
    /// A webhook's deliveries, newest first: status, attempts, the receiver's answer, latency.
    ///
    /// Example: loopctl webhook deliveries 01a2… --limit 20
    Deliveries {
        id: String,
        #[arg(long)]
        limit: Option<i64>,
    },
}

pub async fn webhook(ctx: &Ctx, command: WebhookCmd) -> anyhow::Result<()> {
    match command {
        WebhookCmd::Create { url, events, all_projects } => {
            let project = if all_projects || ctx.project.is_none() { None } else { Some(ctx.project().await?) };
            let request = CreateWebhook { url, project_id: project.as_ref().map(|p| p.id), events };
            let answer = ctx.client.create_webhook(&request).await?;
            let hook = &answer.webhook;
            emit(ctx.format, &answer, || {
                let scope =
                    project.as_ref().map_or_else(|| "every project".to_owned(), |p| format!("project {}", p.slug));
                let actions = if hook.events.is_empty() { "every action".to_owned() } else { hook.events.join(", ") };
                format!(
                    "Created webhook {} to {} ({scope}; {actions}).\nIts signing secret, shown only this once (verify `loopctl-signature` with it):\n{}",
                    hook.id, hook.url, answer.secret
                )
            });
        }
        WebhookCmd::List => {
            let answer = ctx.client.webhooks().await?;
            emit(ctx.format, &answer, || {
                let mut table =
                    Table::new(&["id", "url", "project", "events", "enabled", "failures", "disabled because"]);
                for w in &answer.data {
                    let events = if w.events.is_empty() { "*".to_owned() } else { w.events.join(",") };
                    table.row(vec![
                        w.id.to_string(),
                        w.url.clone(),
                        or_dash(w.project_id),
                        events,
                        w.enabled.to_string(),
                        w.consecutive_failures.to_string(),
                        or_dash(w.disabled_reason.as_ref()),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
        WebhookCmd::Delete { id } => {
            let answer = ctx.client.delete_webhook(id_arg("a webhook", &id)?).await?;
            emit(ctx.format, &answer, || format!("Deleted webhook {} to {}", answer.data.id, answer.data.url));
        }
        WebhookCmd::Deliveries { id, limit } => {
            let answer = ctx.client.webhook_deliveries(id_arg("a webhook", &id)?, &DeliveryParams { limit }).await?;
            emit(ctx.format, &answer, || {
                let mut table =
                    Table::new(&["id", "event", "status", "attempts", "answer", "latency ms", "next attempt", "error"]);
                for d in &answer.data {
                    table.row(vec![
                        d.id.to_string(),
                        d.event_cursor.to_string(),
                        d.status.clone(),
                        d.attempts.to_string(),
                        or_dash(d.last_status),
                        or_dash(d.last_latency_ms),
                        if d.status == "pending" { as_sent(d.next_attempt_at) } else { "-".to_owned() },
                        or_dash(d.last_error.as_ref()),
                    ]);
                }
                table.render(ctx.format, ctx.color())
            });
        }
    }
    Ok(())
}
