//! Webhooks: subscriptions, the secret shown once, and the delivery log.

use utoipa::IntoParams;

use crate::prelude::*;

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to post: `https://…` (or `http://…`). Addresses on private, loopback and
    /// link-local networks are refused unless the server allows them.
    pub url: String,
    /// Only this project's events (all of the tenant's when absent).
    pub project_id: Option<Uuid>,
    /// Only these actions (`verified`, `rejected`, `status_changed`, …); every action when
    /// absent or empty.
    #[serde(default)]
    pub events: Vec<String>,
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub url: String,
    pub project_id: Option<Uuid>,
    /// The actions delivered; empty for every action.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled (after repeated failure).
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A new webhook with its signing secret, shown this once.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WebhookCreated {
    pub webhook: WebhookView,
    /// The HMAC-SHA256 key of the `loopctl-signature` header (the whole string is the key).
    pub secret: String,
}

/// One delivery of one event to one webhook, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: Uuid,
    /// The event's cursor in the change feed.
    pub event_cursor: i64,
    /// `pending` or `delivered`.
    pub status: String,
    pub attempts: i64,
    /// The receiver's HTTP status of the last attempt.
    pub last_status: Option<i64>,
    /// What went wrong in the last attempt (no answer, refused address, …).
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// What a receiver gets: the body of each delivery.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct WebhookPayload {
    pub delivery_id: i64,
    pub webhook_id: Uuid,
    pub event: EventView,
}

/// `?limit=` of the delivery log.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// At most this many, newest first (default 50, at most 500).
    pub limit: Option<i64>,
}
