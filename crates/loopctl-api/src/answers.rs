//! The reference's named wrappers of single records (`{"story": …}`, `{"project": …}`), the
//! list metas, and the answers that are more than one record.

use crate::prelude::*;

macro_rules! named_answers {
    ($($(#[$doc:meta])* $answer:ident { $field:ident: $ty:ty })*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
            pub struct $answer {
                pub $field: $ty,
            }
        )*
    };
}

named_answers! {
    ProjectAnswer { project: ProjectView }
    EpicAnswer { epic: EpicView }
    StoryAnswer { story: StoryView }
    /// `GET /stories/:id`: the story with everything recorded about it.
    StoryDetailAnswer { story: StoryDetail }
    ProgressAnswer { progress: Progress }
    EpicStatusAnswer { progress: EpicStatusCounts }
    RunnerAnswer { runner: RunnerSettings }
    StoryDependencyAnswer { story_dependency: StoryDependencyView }
    EpicDependencyAnswer { epic_dependency: EpicDependencyView }
    ReviewAnswer { review_record: ReviewView }
    TenantAnswer { tenant: TenantView }
    ApiKeyAnswer { api_key: ApiKeyView }
    ApiKeyList { api_keys: Vec<ApiKeyView> }
    AgentAnswer { agent: AgentView }
    SkillVersionAnswer { skill: SkillVersionView }
    VersionAnswer { version: SkillVersionView }
    SkillResultAnswer { skill_result: SkillResultView }
    StateAnswer { state: OrchestratorStateView }
    /// `POST /projects/:id/import` without `merge`: what was created.
    ImportCreatedAnswer { import: ImportCreated }
    /// `POST /projects/:id/import?merge=true`: what changed.
    ImportMergedAnswer { import: ImportSummary }
    VerificationRunAnswer { verification_run: VerificationRunView }
    DispatchAnswer { dispatch: DispatchView }
    BulkAnswer { results: Vec<BulkResult> }
    GraphAnswer { graph: DependencyGraph }
}

/// The meta of a list that fits in one page (projects, epics).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageInfo {
    pub page: i64,
    pub page_size: i64,
    pub total_count: i64,
    pub total_pages: i64,
}

impl PageInfo {
    /// The meta of a whole list answered as one page.
    pub fn whole(total: usize) -> PageInfo {
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        PageInfo { page: 1, page_size: total, total_count: total, total_pages: 1 }
    }
}

/// `{"total_count": n}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CountMeta {
    pub total_count: usize,
}

/// The audit log's and a story history's `pagination`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pagination {
    pub total: usize,
    pub page: i64,
    pub page_size: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventView>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
    pub total: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SkillAnswer {
    pub skill: SkillVersionView,
    pub current_prompt: String,
}

/// `POST /stories/:id/verify` (202, as the reference answers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyAnswer {
    /// Always `verified`.
    pub status: String,
    /// Always null: verification is synchronous here.
    pub run_id: Option<Uuid>,
    pub story: StoryView,
    pub next_actions: Vec<NextAction>,
}

/// `POST /stories/:id/heartbeat`: the transition answer plus the renewed lease's end.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAnswer {
    pub story: StoryView,
    pub next_actions: Vec<NextAction>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// Counts of an epic's stories by each status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EpicStatusCounts {
    pub stories_by_agent_status: AgentStatusCounts,
    pub stories_by_verified_status: VerifiedStatusCounts,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AgentStatusCounts {
    pub pending: usize,
    pub contracted: usize,
    pub assigned: usize,
    pub implementing: usize,
    pub reported_done: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct VerifiedStatusCounts {
    pub unverified: usize,
    pub verified: usize,
    pub rejected: usize,
}

/// What the verifier runner checks for a project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RunnerSettings {
    /// A path or git URL the runner clones.
    pub repo: String,
    /// Run in a clean copy of each reported commit; absent, only the artifacts are checked.
    pub check_command: Option<String>,
    pub timeout_seconds: u32,
}

/// The counts of a non-merge import.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportCreated {
    pub epics_created: usize,
    pub stories_created: usize,
    pub dependencies_created: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReclaimAnswer {
    /// Numbers of the stories returned to the queue.
    pub reclaimed: Vec<String>,
}

/// `POST /epics/:id/verify-all`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyAllAnswer {
    pub verified_count: usize,
    pub skipped_count: usize,
    pub total_eligible: usize,
    pub errors: Vec<BulkRefusal>,
}

/// One story a bulk call could not do, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkRefusal {
    pub story_id: Uuid,
    pub code: ErrorCode,
    pub reason: String,
}

/// A bulk call that refused every story: the error (the first story's code) and every result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BulkRefused {
    pub error: ErrorBody,
    pub results: Vec<BulkResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SkillResultView {
    pub id: Uuid,
    pub name: String,
    pub version: i64,
    pub story_id: Option<Uuid>,
    pub result: String,
    #[schema(value_type = Object)]
    pub metrics: Value,
}

/// `POST /dispatches`: the dispatch and the token for the new agent (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DispatchCreated {
    pub dispatch: DispatchView,
    pub api_key: DispatchToken,
    pub next_action: Hint,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DispatchToken {
    pub raw_key: String,
    /// `implementer` or `reviewer`.
    pub role: String,
    pub agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub story_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Hint {
    pub description: String,
}

/// `GET /.well-known/loopctl/signing-key`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyInfo {
    /// `ed25519`.
    pub algorithm: String,
    pub encoding: String,
    /// The key new runs are signed with.
    pub key_id: String,
    pub public_key: Option<String>,
    /// Every key a stored run may have been signed with.
    pub keys: Vec<PublicKey>,
    pub signed: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicKey {
    pub key_id: String,
    pub public_key: String,
}

/// Both levels of edges of a project; `from` depends on `to`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DependencyGraph {
    pub epics: Vec<GraphEpic>,
    pub epic_dependencies: Vec<Edge>,
    pub story_dependencies: Vec<Edge>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphEpic {
    pub id: Uuid,
    pub number: i64,
    pub title: String,
    pub phase: Option<String>,
    pub position: i64,
    pub stories: Vec<GraphStory>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphStory {
    pub id: Uuid,
    pub number: String,
    pub title: String,
    pub agent_status: String,
    pub verified_status: String,
    pub sort_key: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Edge {
    pub from: Uuid,
    pub to: Uuid,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when the database does not answer (503).
    pub status: String,
    pub version: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    pub checks: HealthChecks,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthChecks {
    pub database: String,
}

/// `GET /api/v1`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiIndex {
    pub name: String,
    pub version: String,
    pub docs: String,
    pub health: String,
}

/// `GET /stories`: a page of stories, or with `number` that one story.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StoryListAnswer {
    Page(Page<StoryView>),
    One(Box<StoryAnswer>),
}
