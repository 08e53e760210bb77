//! Who am I, the tenant, API keys, agents.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_app::{CreateApiKey, RegisterAgent, RotateApiKey, UpdateTenant};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, Body, Caller, OptionalBody, Params, Path, id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes(routes!(get_tenant, update_tenant))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(rotate_api_key))
        .routes(routes!(register_agent))
        .routes(routes!(list_agents))
        .routes(routes!(get_agent))
}

/// Tenant, role, agent identity and key prefix of the calling key.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "tenancy", responses((status = 200, body = loopctl_app::WhoAmI)))]
async fn whoami(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Value>> {
    let me = s.app.whoami(&who).await?;
    Ok(Json(json!(me)))
}

#[utoipa::path(get, path = "/api/v1/tenants/me", tag = "tenancy")]
async fn get_tenant(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"tenant": s.app.tenant_info(&who).await?})))
}

/// Merges settings (numbers may come as strings); user keys only.
#[utoipa::path(patch, path = "/api/v1/tenants/me", tag = "tenancy", request_body = UpdateTenant)]
async fn update_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<UpdateTenant>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"tenant": s.app.update_tenant(&who, body).await?})))
}

/// Creates a key (user keys only); the raw key is in this answer and never again.
#[utoipa::path(post, path = "/api/v1/api_keys", tag = "tenancy", request_body = CreateApiKey)]
async fn create_api_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let key = s.app.create_api_key(&who, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"api_key": key}))))
}

#[derive(Deserialize, Default)]
struct KeyListQuery {
    include_revoked: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/api_keys", tag = "tenancy")]
async fn list_api_keys(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<KeyListQuery>,
) -> ApiResult<Json<Value>> {
    let keys = s.app.list_api_keys(&who, q.include_revoked.unwrap_or(false)).await?;
    Ok(Json(json!({"api_keys": keys})))
}

#[utoipa::path(delete, path = "/api/v1/api_keys/{id}", tag = "tenancy")]
async fn revoke_api_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    let key = s.app.revoke_api_key(&who, id(&key, "API key")?).await?;
    Ok(Json(json!({"api_key": key})))
}

#[utoipa::path(post, path = "/api/v1/api_keys/{id}/rotate", tag = "tenancy", request_body = RotateApiKey)]
async fn rotate_api_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(key): Path<String>,
    OptionalBody(body): OptionalBody<RotateApiKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let rotated = s.app.rotate_api_key(&who, id(&key, "API key")?, body).await?;
    Ok((StatusCode::CREATED, Json(json!(rotated))))
}

/// Names the calling key's own agent identity.
#[utoipa::path(post, path = "/api/v1/agents/register", tag = "tenancy", request_body = RegisterAgent)]
async fn register_agent(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<RegisterAgent>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let agent = s.app.register_agent(&who, body).await?;
    Ok((StatusCode::CREATED, Json(json!({"agent": agent}))))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "tenancy")]
async fn list_agents(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<Value>> {
    let agents = s.app.list_agents(&who).await?;
    let total = agents.len();
    Ok(Json(json!({"agents": agents, "total": total})))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "tenancy")]
async fn get_agent(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(agent): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"agent": s.app.get_agent(&who, id(&agent, "agent")?).await?})))
}
