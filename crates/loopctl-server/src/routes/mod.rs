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

/// `GET /health`: 200 when the database answers a real query (and SQLite's writer commits),
/// 503 when it does not.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = state.app.store();
    // A real query, and on SQLite a commit through the writer; a store that does not answer
    // within the time a load balancer waits is as good as down.
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), store.ping()).await;
    let (status, database) = match answered {
        Ok(Ok(())) => (StatusCode::OK, "ok"),
        Ok(Err(_)) | Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
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
