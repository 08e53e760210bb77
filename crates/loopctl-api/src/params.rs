//! Query parameters, as the server reads them and the client sends them.

use utoipa::IntoParams;

use crate::prelude::*;

/// `GET /projects`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectListParams {
    /// Archived projects too.
    pub include_archived: Option<bool>,
    /// Only projects with this status (`active`, `archived`).
    pub status: Option<String>,
}

/// `GET /stories`: a project's stories, or with `number` that one story.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StoryListParams {
    /// The project's UUID, slug or name (required).
    pub project_id: Option<String>,
    pub epic_id: Option<Uuid>,
    pub agent_status: Option<String>,
    pub verified_status: Option<String>,
    /// A story number (`2.1`, `US-2.1`): answers `{"story": …}` instead of a page.
    pub number: Option<String>,
    pub limit: Option<i64>,
    pub page_size: Option<i64>,
    pub offset: Option<i64>,
}

/// `GET /epics/:id/stories`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EpicStoryParams {
    pub agent_status: Option<String>,
    pub verified_status: Option<String>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    pub limit: Option<i64>,
}

/// `GET /stories/ready`, `GET /stories/blocked`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FrontierParams {
    /// The project's UUID, slug or name (required).
    pub project_id: Option<String>,
    pub epic_id: Option<Uuid>,
    pub page: Option<i64>,
    pub page_size: Option<i64>,
    pub limit: Option<i64>,
}

/// `GET /changes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    pub project_id: Option<Uuid>,
    /// A cursor (integer) or an ISO-8601 time.
    pub since: Option<String>,
    pub entity_type: Option<String>,
    pub action: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /events` (SSE).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    pub project_id: Option<Uuid>,
    /// A cursor or an ISO-8601 time; `Last-Event-ID` wins when both are sent.
    pub since: Option<String>,
}

/// `GET /audit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    pub project_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub entity_id: Option<Uuid>,
    pub action: Option<String>,
    pub limit: Option<i64>,
    pub page_size: Option<i64>,
}

/// `GET /orchestrator/state/:project_id` and its history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateParams {
    /// Absent: `main`.
    pub state_key: Option<String>,
    pub limit: Option<i64>,
}

/// `POST /projects/:id/import`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// Update an existing project without touching statuses (also accepted in the body).
    pub merge: Option<bool>,
}

/// `GET /skills/:name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SkillVersionParams {
    /// Absent: the latest.
    pub version: Option<i64>,
}

/// `GET /api_keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyListParams {
    pub include_revoked: Option<bool>,
}

/// `GET /dispatches`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DispatchListParams {
    pub story_id: Option<Uuid>,
    pub active_only: Option<bool>,
}
