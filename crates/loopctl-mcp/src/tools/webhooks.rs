//! Webhooks and the audit chain's check, for user keys: subscribe a URL to the tenant's
//! events, see what was delivered, verify that nobody rewrote the audit log.

use loopctl_client::Method;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::project::NoParams;
use super::{Effect, Outcome, Tier, ToolResult, ToolSpec, spec};
use crate::ctx::Ctx;
use crate::speak::KeyRole;

pub(super) fn specs() -> Vec<ToolSpec> {
    vec![
        spec(
            Tier::All,
            "create_webhook",
            "User: post the tenant's events (of one project, of some actions) to a URL, signed with HMAC-SHA256 \
             in the loopctl-signature header; the answer holds the secret, shown only this once.",
            Effect::Write,
            create_webhook,
        ),
        spec(
            Tier::All,
            "list_webhooks",
            "User: the tenant's webhooks, with failures and why one was disabled.",
            Effect::Read,
            list_webhooks,
        ),
        spec(
            Tier::All,
            "delete_webhook",
            "User: delete a webhook and its delivery log.",
            Effect::Write,
            delete_webhook,
        ),
        spec(
            Tier::All,
            "get_webhook_deliveries",
            "User: a webhook's deliveries, newest first: status, attempts, the receiver's last answer and latency.",
            Effect::Read,
            get_webhook_deliveries,
        ),
        spec(
            Tier::All,
            "verify_audit_chain",
            "User: re-walk the tenant's hash-chained, signed audit log and name the first entry changed, deleted \
             or inserted behind the server's back.",
            Effect::Read,
            verify_audit_chain,
        ),
    ]
}

#[derive(Deserialize, JsonSchema)]
struct CreateParams {
    /// https://… (private, loopback and link-local addresses are refused unless the server allows them).
    url: String,
    /// Project UUID or slug; absent, every project of the tenant.
    project_id: Option<String>,
    /// Only these actions, e.g. ["verified","rejected"]; absent, every action.
    events: Option<Vec<String>>,
}

async fn create_webhook(ctx: Ctx, params: CreateParams) -> ToolResult {
    let mut body = json!({"url": params.url, "events": params.events.unwrap_or_default()});
    if let Some(project) = params.project_id.as_deref().filter(|p| !p.trim().is_empty()) {
        body["project_id"] = json!(ctx.project_id(Some(project)).await?);
    }
    let answer = ctx.send(KeyRole::User, Method::POST, "/api/v1/webhooks", Some(body)).await?;
    let summary = format!("webhook {} created; keep its secret, it is not shown again", answer["webhook"]["id"]);
    Ok(Outcome::new(answer, summary))
}

async fn list_webhooks(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.request(KeyRole::User, Method::GET, "/api/v1/webhooks", None, &[], &[]).await?;
    let count = answer["data"].as_array().map_or(0, Vec::len);
    Ok(Outcome::new(answer, format!("{count} webhook(s)")))
}

#[derive(Deserialize, JsonSchema)]
struct WebhookParams {
    /// The webhook's id.
    webhook_id: String,
    /// Deliveries to show (default 50, at most 500).
    limit: Option<u32>,
}

async fn delete_webhook(ctx: Ctx, params: WebhookParams) -> ToolResult {
    let path = format!("/api/v1/webhooks/{}", loopctl_client::encode_component(params.webhook_id.trim()));
    let answer = ctx.send(KeyRole::User, Method::DELETE, &path, None).await?;
    Ok(Outcome::new(answer, "webhook deleted"))
}

async fn get_webhook_deliveries(ctx: Ctx, params: WebhookParams) -> ToolResult {
    let path = format!("/api/v1/webhooks/{}/deliveries", loopctl_client::encode_component(params.webhook_id.trim()));
    let query = vec![("limit", params.limit.unwrap_or(50).clamp(1, 500).to_string())];
    let answer = ctx.request(KeyRole::User, Method::GET, &path, None, &query, &[]).await?;
    let rows: &[Value] = answer["data"].as_array().map_or(&[], Vec::as_slice);
    let pending = rows.iter().filter(|d| d["status"] == "pending").count();
    let summary = format!("{} deliveries, {pending} pending", rows.len());
    Ok(Outcome::new(answer, summary))
}

async fn verify_audit_chain(ctx: Ctx, _: NoParams) -> ToolResult {
    let answer = ctx.request(KeyRole::User, Method::GET, "/api/v1/audit/verify", None, &[], &[]).await?;
    let found = &answer["data"];
    let summary = if found["intact"] == json!(true) {
        format!("the audit chain is intact ({} entries)", found["entries_checked"])
    } else {
        format!("the audit chain does not match: {}", found["first_mismatch"]["message"].as_str().unwrap_or_default())
    };
    Ok(Outcome::new(answer, summary))
}
