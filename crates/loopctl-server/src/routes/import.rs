//! Import and export of a work breakdown; imports get a larger body limit.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiResult, Body, Caller, Params, Path, id};
use crate::{AppState, IMPORT_BODY_LIMIT};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_project))
        .layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT))
        .routes(routes!(export_project))
}

#[derive(Deserialize, Default)]
struct ImportParams {
    merge: Option<bool>,
}

/// Imports a whole breakdown (up to 16 MiB); `merge` (query or body) updates an existing
/// project without touching statuses.
#[utoipa::path(post, path = "/api/v1/projects/{id}/import", tag = "work")]
async fn import_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Params(q): Params<ImportParams>,
    Body(doc): Body<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body_merge = doc.get("merge").and_then(Value::as_bool).unwrap_or(false);
    let merge = q.merge.unwrap_or(false) || body_merge;
    let project = s.app.resolve_project(&who, &project).await?;
    let summary = s.app.import_project(&who, project.id, &doc, merge).await?;
    let status = if merge { StatusCode::OK } else { StatusCode::CREATED };
    let body = if merge {
        json!({"import": summary})
    } else {
        json!({"import": {"epics_created": summary.epics_created, "stories_created": summary.stories_created, "dependencies_created": summary.dependencies_created}})
    };
    Ok((status, Json(body)))
}

/// The project's breakdown as one document that imports back.
#[utoipa::path(get, path = "/api/v1/projects/{id}/export", tag = "work")]
async fn export_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.app.export_project(&who, id(&project, "project")?).await?))
}
