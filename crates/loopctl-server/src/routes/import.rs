//! Import and export of a work breakdown; imports get a larger body limit.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use loopctl_api::{ExportWriter, ImportCreated, ImportCreatedAnswer, ImportMergedAnswer, ImportParams, ProjectExport};
use serde_json::Value;
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

/// Imports a whole breakdown (up to 16 MiB); `merge` (query or body) updates an existing
/// project without touching statuses.
#[utoipa::path(
    post,
    path = "/api/v1/projects/{id}/import",
    tag = "work",
    params(ImportParams),
    request_body(content = Object, description = "the breakdown: `{project?, epics: [{number, title, stories: [...]}], story_dependencies?, epic_dependencies?}`, as `export` answers it"),
    responses((status = 201, body = ImportCreatedAnswer), (status = 200, description = "with `merge`: what changed", body = ImportMergedAnswer)),
)]
async fn import_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
    Params(q): Params<ImportParams>,
    Body(doc): Body<Value>,
) -> ApiResult<Response> {
    let body_merge = doc.get("merge").and_then(Value::as_bool).unwrap_or(false);
    let merge = q.merge.unwrap_or(false) || body_merge;
    let project = s.app.resolve_project(&who, &project).await?;
    let summary = s.app.import_project(&who, project.id, &doc, merge).await?;
    if merge {
        return Ok(Json(ImportMergedAnswer { import: summary }).into_response());
    }
    let import = ImportCreated {
        epics_created: summary.epics_created,
        stories_created: summary.stories_created,
        dependencies_created: summary.dependencies_created,
    };
    Ok((StatusCode::CREATED, Json(ImportCreatedAnswer { import })).into_response())
}

/// The project's breakdown as one document that imports back.
///
/// Streamed: the server reads and writes it a page at a time, so an export of any size
/// costs one page of memory.
#[utoipa::path(get, path = "/api/v1/projects/{id}/export", tag = "work", responses((status = 200, body = ProjectExport)))]
async fn export_project(
    State(s): State<AppState>,
    Caller(who): Caller,
    Path(project): Path<String>,
) -> ApiResult<Response> {
    let cursor = s.app.export(&who, id(&project, "project")?).await?;
    let chunks =
        futures_util::stream::try_unfold((cursor, Some(ExportWriter::default())), |(mut cursor, writer)| async move {
            let Some(mut writer) = writer else {
                return Ok(None);
            };
            // The writer is dropped once it has written the closing bytes: the stream ends.
            let (bytes, writer) = match cursor.next_part().await.map_err(stream_error)? {
                Some(part) => (writer.part(&part).map_err(stream_error)?, Some(writer)),
                None => (writer.finish().map_err(stream_error)?, None),
            };
            Ok::<_, std::io::Error>(Some((Bytes::from(bytes), (cursor, writer))))
        });
    Ok(([(header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(chunks)).into_response())
}

/// A failure after the head was sent cannot change the status any more: the stream ends
/// early, the client sees a truncated document, and the log says why.
fn stream_error(err: impl std::fmt::Display) -> std::io::Error {
    tracing::error!(%err, "an export stopped midway");
    std::io::Error::other(err.to_string())
}
