//! Webhooks (user keys): subscriptions and their delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_api::{CreateWebhook, Data, DeliveryParams, DeliveryView, WebhookCreated, WebhookView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(webhook_deliveries))
}

/// The tenant's webhooks.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", responses((status = 200, body = Data<Vec<WebhookView>>)))]
async fn list_webhooks(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Data<Vec<WebhookView>>>> {
    Ok(Json(Data { data: s.app.list_webhooks(&who).await? }))
}

/// Subscribes a URL to the tenant's events (of one project, of some actions); the answer
/// holds the signing secret, shown this once. Private, loopback and link-local targets are
/// refused unless the server allows them.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook, responses((status = 201, body = WebhookCreated)))]
async fn create_webhook(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_webhook(&who, body).await?)))
}

/// Deletes a webhook and its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", responses((status = 200, body = Data<WebhookView>)))]
async fn delete_webhook(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<Data<WebhookView>>> {
    Ok(Json(Data { data: s.app.delete_webhook(&who, id(&raw, "webhook")?).await? }))
}

/// A webhook's deliveries, newest first: status, attempts, the receiver's last answer and
/// latency, when it is tried next.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(DeliveryParams), responses((status = 200, body = Data<Vec<DeliveryView>>)))]
async fn webhook_deliveries(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(raw): Path<String>,
    Params(q): Params<DeliveryParams>,
) -> ApiResult<Json<Data<Vec<DeliveryView>>>> {
    Ok(Json(Data { data: s.app.webhook_deliveries(&who, id(&raw, "webhook")?, q.limit).await? }))
}
