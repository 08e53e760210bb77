//! Route groups, one module per area of the API.

pub mod dispatch;
pub mod events;
pub mod evidence;
pub mod feed;
pub mod import;
pub mod lifecycle;
pub mod queries;
pub mod skills;
pub mod tenancy;
pub mod webhooks;
pub mod work;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_api::{ApiIndex, Health, HealthChecks};

use crate::AppState;

/// `GET /health`: 200 when the database answers, 503 when it does not.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = state.app.store();
    let (status, database) = match store.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let overall = if status == StatusCode::OK { "ok" } else { "degraded" };
    (
        status,
        Json(Health {
            status: overall.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            store: store.backend().into(),
            checks: HealthChecks { database: database.into() },
        }),
    )
}

/// `GET /api/v1`: where to find things.
pub async fn index() -> Json<ApiIndex> {
    Json(ApiIndex {
        name: "loopctl".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        docs: "/api/v1/openapi.json".into(),
        health: "/health".into(),
    })
}
