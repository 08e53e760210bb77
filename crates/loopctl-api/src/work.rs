//! Projects, epics and stories: create, update, page through, progress.

use crate::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateProject {
    pub name: String,
    pub slug: Option<String>,
    pub repo_url: Option<String>,
    pub description: Option<String>,
    pub tech_stack: Option<String>,
    pub mission: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub repo_url: Option<String>,
    pub description: Option<String>,
    pub tech_stack: Option<String>,
    pub mission: Option<String>,
    /// `active` or `archived`.
    pub status: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

/// `PUT /projects/:id/runner`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunnerConfig {
    /// A local path or git URL the runner clones (its own clone, never an agent's worktree).
    pub repo: String,
    /// Run in a clean copy of each reported commit, e.g. `cargo test`.
    pub check_command: Option<String>,
    /// Time limit of the check command (default 600).
    pub timeout_seconds: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateEpic {
    #[schema(value_type = i64)]
    pub number: Value,
    pub title: String,
    pub description: Option<String>,
    pub phase: Option<String>,
    pub position: Option<i64>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct UpdateEpic {
    pub title: Option<String>,
    pub description: Option<String>,
    pub phase: Option<String>,
    pub position: Option<i64>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateStory {
    #[schema(value_type = String)]
    pub number: Value,
    pub title: String,
    pub description: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub acceptance_criteria: Option<Value>,
    #[schema(value_type = f64)]
    pub estimated_hours: Option<Value>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
    /// Only for `POST /projects/:id/stories`: which epic the story goes in.
    #[schema(value_type = i64)]
    pub epic_number: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, Default)]
pub struct UpdateStory {
    pub title: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub acceptance_criteria: Option<Value>,
    #[schema(value_type = f64)]
    pub estimated_hours: Option<Value>,
    #[schema(value_type = Object)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct PageMeta {
    pub total_count: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct Progress {
    pub total_stories: usize,
    /// Counts by `agent_status`, except that verified stories are left out of `reported_done`
    /// (they are in `stories_by_verified_status.verified`): nothing done looks like it waits.
    #[schema(value_type = Object)]
    pub stories_by_agent_status: Value,
    #[schema(value_type = Object)]
    pub stories_by_verified_status: Value,
    pub total_epics: usize,
    pub epics_completed: usize,
    pub verification_percentage: f64,
    pub estimated_hours_total: f64,
    pub estimated_hours_completed: f64,
    /// Assigned or implementing (stale claims included).
    pub in_flight: usize,
    pub escalated: usize,
    /// Where each story is, in disjoint stages that add up to `total_stories`.
    pub stages: Stages,
    /// Every story is verified.
    pub complete: bool,
    /// The same counts per epic, in epic order.
    pub epics: Vec<EpicProgress>,
    /// What the project's agents reported spending.
    pub token_usage: TokenTotalsView,
    /// The project's budget, when a user set one (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
}

/// Disjoint stages: a verified story is only `verified`, a reported one waits in
/// `awaiting_verification`; `stale` is the part of `in_flight` whose lease ran out.
#[derive(Debug, Clone, Deserialize, Copy, Serialize, ToSchema)]
pub struct Stages {
    pub pending: i64,
    pub contracted: i64,
    pub in_flight: i64,
    pub stale: i64,
    pub awaiting_verification: i64,
    pub verified: i64,
    /// Pending stories whose last verdict was a rejection.
    pub rejected: i64,
    pub escalated: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct EpicProgress {
    pub id: Uuid,
    pub number: i64,
    pub title: String,
    pub total_stories: i64,
    pub verified: i64,
    pub complete: bool,
    pub stages: Stages,
}

/// A story with everything recorded about it (`GET /stories/:id`, `status N`).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct StoryDetail {
    #[serde(flatten)]
    pub story: StoryView,
    pub dependencies: Vec<StoryDependencyRef>,
    pub artifacts: Vec<ArtifactView>,
    pub reviews: Vec<ReviewView>,
    pub verifications: Vec<VerificationView>,
    pub latest_verification: Option<VerificationView>,
    pub project_mission: Option<String>,
    /// Criteria with this round's evidence and verdicts.
    pub criteria: Vec<CriterionView>,
    /// The commit the latest report names: what a verification run of this round is bound to
    /// (`commit_mismatch` for any other), so a runner need not work it out itself.
    pub reported_commit_sha: Option<String>,
    /// What its agents reported spending on it, every round.
    pub token_usage: TokenTotalsView,
}

/// A story this one depends on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoryDependencyRef {
    pub id: Uuid,
    pub story_id: Uuid,
    pub depends_on_story_id: Uuid,
}
