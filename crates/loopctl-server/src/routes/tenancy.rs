//! Who am I, the tenant, API keys, agents.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use loopctl_api::{
    AgentAnswer, AgentList, ApiKeyAnswer, ApiKeyList, CreateApiKey, KeyListParams, RegisterAgent, RotateApiKey,
    RotatedKey, TenantAnswer, UpdateTenant, WhoAmI,
};
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
#[utoipa::path(get, path = "/api/v1/whoami", tag = "tenancy", responses((status = 200, body = WhoAmI)))]
async fn whoami(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<WhoAmI>> {
    Ok(Json(s.app.whoami(&who).await?))
}

#[utoipa::path(get, path = "/api/v1/tenants/me", tag = "tenancy", responses((status = 200, body = TenantAnswer)))]
async fn get_tenant(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<TenantAnswer>> {
    Ok(Json(TenantAnswer { tenant: s.app.tenant_info(&who).await? }))
}

/// Merges settings (numbers may come as strings); user keys only.
#[utoipa::path(patch, path = "/api/v1/tenants/me", tag = "tenancy", request_body = UpdateTenant, responses((status = 200, body = TenantAnswer)))]
async fn update_tenant(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<UpdateTenant>,
) -> ApiResult<Json<TenantAnswer>> {
    Ok(Json(TenantAnswer { tenant: s.app.update_tenant(&who, body).await? }))
}

/// Creates a key (user keys only); the raw key is in this answer and never again.
#[utoipa::path(post, path = "/api/v1/api_keys", tag = "tenancy", request_body = CreateApiKey, responses((status = 201, body = ApiKeyAnswer)))]
async fn create_api_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<ApiKeyAnswer>)> {
    let api_key = s.app.create_api_key(&who, body).await?;
    Ok((StatusCode::CREATED, Json(ApiKeyAnswer { api_key })))
}

#[utoipa::path(get, path = "/api/v1/api_keys", tag = "tenancy", params(KeyListParams), responses((status = 200, body = ApiKeyList)))]
async fn list_api_keys(
    State(s): State<AppState>,
    Caller(who): Caller,
    Params(q): Params<KeyListParams>,
) -> ApiResult<Json<ApiKeyList>> {
    let api_keys = s.app.list_api_keys(&who, q.include_revoked.unwrap_or(false)).await?;
    Ok(Json(ApiKeyList { api_keys }))
}

#[utoipa::path(delete, path = "/api/v1/api_keys/{id}", tag = "tenancy", responses((status = 200, body = ApiKeyAnswer)))]
async fn revoke_api_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(key): Path<String>,
) -> ApiResult<Json<ApiKeyAnswer>> {
    let api_key = s.app.revoke_api_key(&who, id(&key, "API key")?).await?;
    Ok(Json(ApiKeyAnswer { api_key }))
}

#[utoipa::path(post, path = "/api/v1/api_keys/{id}/rotate", tag = "tenancy", request_body = RotateApiKey, responses((status = 201, body = RotatedKey)))]
async fn rotate_api_key(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(key): Path<String>,
    OptionalBody(body): OptionalBody<RotateApiKey>,
) -> ApiResult<(StatusCode, Json<RotatedKey>)> {
    let rotated = s.app.rotate_api_key(&who, id(&key, "API key")?, body).await?;
    Ok((StatusCode::CREATED, Json(rotated)))
}

/// Names the calling key's own agent identity.
#[utoipa::path(post, path = "/api/v1/agents/register", tag = "tenancy", request_body = RegisterAgent, responses((status = 201, body = AgentAnswer)))]
async fn register_agent(
    State(s): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<RegisterAgent>,
) -> ApiResult<(StatusCode, Json<AgentAnswer>)> {
    let agent = s.app.register_agent(&who, body).await?;
    Ok((StatusCode::CREATED, Json(AgentAnswer { agent })))
}

#[utoipa::path(get, path = "/api/v1/agents", tag = "tenancy", responses((status = 200, body = AgentList)))]
async fn list_agents(State(s): State<AppState>, Caller(who): Caller) -> ApiResult<Json<AgentList>> {
    let agents = s.app.list_agents(&who).await?;
    let total = agents.len();
    Ok(Json(AgentList { agents, total }))
}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "tenancy", responses((status = 200, body = AgentAnswer)))]
async fn get_agent(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(agent): Path<String>,
) -> ApiResult<Json<AgentAnswer>> {
    Ok(Json(AgentAnswer { agent: s.app.get_agent(&who, id(&agent, "agent")?).await? }))
}
