//! Rows as the store hands them over. Plain data: validation happens before a record is
//! built, in the service layer and the core.

use chrono::{DateTime, Utc};
use loopctl_core::{AgentStatus, DispatchRole, Role, StoryState, VerifiedStatus};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub email: Option<String>,
    /// Raw settings as stored (a JSON object); defaults are applied by the service layer.
    pub settings: Value,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `orchestrator` or `implementer`.
    pub agent_type: String,
    pub status: String,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    /// `None` only for superadmin keys.
    pub tenant_id: Option<Uuid>,
    pub name: String,
    /// SHA-256 of the raw key; the raw key is never stored.
    pub key_hash: Vec<u8>,
    pub key_prefix: String,
    pub role: Role,
    pub agent_id: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Set for a capability token minted by dispatch: the one story and capacity it serves.
    pub scope: Option<KeyScope>,
}

/// What a dispatched capability token may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyScope {
    pub dispatch_id: Uuid,
    pub story_id: Uuid,
    pub role: DispatchRole,
}

/// A sub-agent dispatched by an orchestrator for one story and one capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub parent_dispatch_id: Option<Uuid>,
    pub dispatched_by_key_id: Uuid,
    pub dispatched_by_agent_id: Option<Uuid>,
    /// The identity the token acts as (fresh unless the orchestrator named one).
    pub agent_id: Uuid,
    pub api_key_id: Uuid,
    pub story_id: Uuid,
    pub role: DispatchRole,
    /// Ids from the root dispatch down to this one.
    pub lineage_path: Vec<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub repo_url: Option<String>,
    pub description: Option<String>,
    pub tech_stack: Option<String>,
    pub mission: Option<String>,
    /// `active` or `archived`.
    pub status: String,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EpicRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub number: i64,
    pub title: String,
    pub description: Option<String>,
    pub phase: Option<String>,
    pub position: i64,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoryRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub epic_id: Uuid,
    /// Canonical form, e.g. `2.1`.
    pub number: String,
    pub sort_key: i64,
    pub title: String,
    pub description: Option<String>,
    /// A JSON array of criterion objects.
    pub acceptance_criteria: Value,
    pub estimated_hours: Option<f64>,
    pub metadata: Value,
    pub state: StoryState,
    /// Raised by every transition; the compare-and-set token.
    pub lock_version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoryRecord {
    pub fn ac_count(&self) -> usize {
        self.acceptance_criteria.as_array().map_or(0, Vec::len)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DependencyRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    /// The story (or epic) that waits.
    pub from_id: Uuid,
    /// The story (or epic) it waits for.
    pub to_id: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dependencies {
    pub stories: Vec<DependencyRecord>,
    pub epics: Vec<DependencyRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    /// `agent` or `orchestrator`: the role of the reporter.
    pub reported_by: String,
    pub reporter_agent_id: Option<Uuid>,
    pub artifact_type: String,
    pub path: Option<String>,
    pub exists: bool,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// Tokens an agent spent on a story, as it reported them with a report or a review.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUsageRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub story_id: Uuid,
    pub agent_id: Option<Uuid>,
    /// `implementing` (with a report) or `reviewing` (with a review).
    pub phase: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Thousandths of a cent (the reference's unit): 1 USD is 100,000.
    pub cost_millicents: i64,
    pub model_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Sums of token usage rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenTotals {
    pub reports: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_millicents: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub reviewer_agent_id: Option<Uuid>,
    pub review_type: String,
    pub findings_count: i64,
    pub fixes_count: i64,
    pub disproved_count: i64,
    pub summary: Option<String>,
    pub findings: Value,
    pub completed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VerificationRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub verifier_agent_id: Option<Uuid>,
    /// `pass`, `fail` or `partial`.
    pub result: String,
    pub summary: Option<String>,
    pub findings: Value,
    pub review_type: Option<String>,
    pub iteration: i64,
    pub created_at: DateTime<Utc>,
}

/// A verdict to record. The store numbers it: its `iteration` is one more than the story's
/// verdicts before it, counted in the write itself (a verdict's compare-and-set on the story
/// keeps two of them from counting the same).
#[derive(Debug, Clone, PartialEq)]
pub struct NewVerification {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub verifier_agent_id: Option<Uuid>,
    /// `pass`, `fail` or `partial`.
    pub result: String,
    pub summary: Option<String>,
    pub findings: Value,
    pub review_type: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl NewVerification {
    /// The row it becomes as the story's `iteration`-th verdict.
    pub fn numbered(self, iteration: i64) -> VerificationRecord {
        VerificationRecord {
            id: self.id,
            tenant_id: self.tenant_id,
            story_id: self.story_id,
            verifier_agent_id: self.verifier_agent_id,
            result: self.result,
            summary: self.summary,
            findings: self.findings,
            review_type: self.review_type,
            iteration,
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrchestratorStateRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    pub state_key: String,
    pub state_data: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An event to append to the change feed / audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Option<Uuid>,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub action: String,
    pub actor: ActorStamp,
    pub old_state: Value,
    pub new_state: Value,
    pub metadata: Value,
    pub inserted_at: DateTime<Utc>,
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorStamp {
    /// `api_key` or `system`.
    pub actor_type: String,
    pub key_id: Option<Uuid>,
    pub agent_id: Option<Uuid>,
    pub role: Option<Role>,
    /// `"<role>:<key name>"`, or `system:<what>`.
    pub label: String,
}

/// The store's connections at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorePressure {
    /// Connections open in the read pool (PostgreSQL: the one pool) and how many are idle.
    pub pool_size: u32,
    pub pool_idle: u32,
    /// Batches waiting for SQLite's one writer (none on PostgreSQL).
    pub writer_queue: Option<usize>,
}

/// A webhook subscription: where a tenant's events (of one project, or all; of some actions,
/// or all) are posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub project_id: Option<Uuid>,
    pub url: String,
    /// The actions delivered; empty for every action.
    pub actions: Vec<String>,
    pub enabled: bool,
    /// Why it was disabled (after repeated failure).
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl WebhookRecord {
    /// The action filter as the stores keep it: `*` for every action, else each action
    /// between commas (`,verified,rejected,`), which a trigger matches with one `instr`.
    #[must_use]
    pub fn actions_column(&self) -> String {
        if self.actions.is_empty() { "*".to_owned() } else { format!(",{},", self.actions.join(",")) }
    }

    /// The action filter read back from [`WebhookRecord::actions_column`].
    #[must_use]
    pub fn actions_from_column(column: &str) -> Vec<String> {
        column.split(',').filter(|a| !a.is_empty() && *a != "*").map(str::to_owned).collect()
    }
}

/// What happened to a delivery so far: a row of the outbox and of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub event_cursor: i64,
    /// `pending` or `delivered` (a disabled webhook's deliveries wait, pending).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub leased_until: Option<DateTime<Utc>>,
    /// The receiver's HTTP status of the last attempt.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// How one attempt of a delivery ended (`WriteOp::RecordDeliveryAttempt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub tenant_id: Uuid,
    pub delivery_id: i64,
    pub webhook_id: Uuid,
    pub delivered: bool,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
    pub at: DateTime<Utc>,
    /// When to try again (failed attempts).
    pub next_attempt_at: DateTime<Utc>,
    /// The webhook's failures in a row after this attempt.
    pub consecutive_failures: i64,
    /// Disables the webhook with this reason (its deliveries wait until it is enabled).
    pub disable: Option<String>,
}

/// One link of a tenant's audit chain: an event's hash, chained to the link before it.
/// Links are written after their events commit, in feed order, by whichever server chains
/// first (the tenant and cursor are the key, so a second writer of the same link is a
/// `Duplicate`); the last link of each written run carries the server's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLink {
    pub tenant_id: Uuid,
    /// The event's cursor.
    pub cursor: i64,
    pub event_id: Uuid,
    /// The previous link's hash (32 zero bytes for a tenant's first).
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub seal: Option<AuditSeal>,
}

/// The server's signature over a chain head (`AuditLink`): who signed and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSeal {
    pub key_id: String,
    pub signature: String,
    pub sealed_at: DateTime<Utc>,
}

/// An event as read back, with its cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub cursor: i64,
    pub event: NewEvent,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoryFilter {
    pub project_id: Option<Uuid>,
    pub epic_id: Option<Uuid>,
    pub agent_status: Option<AgentStatus>,
    pub verified_status: Option<VerifiedStatus>,
    pub limit: i64,
    pub offset: i64,
}

/// Which page of a project's ready frontier to read (`Store::ready_stories`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontierQuery {
    pub tenant_id: Uuid,
    pub project_id: Uuid,
    /// Only this epic's stories.
    pub epic_id: Option<Uuid>,
    /// A claim whose lease ended at or before this time is available again.
    pub now: chrono::DateTime<chrono::Utc>,
    pub offset: i64,
    pub limit: i64,
    /// Also count the whole frontier (an index-only count; claims do not need it).
    pub with_total: bool,
}

/// The counts a frontier answer carries, read from the epics' maintained counts and the
/// claim-lease index: nothing here reads every story of the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProjectTally {
    pub total: i64,
    pub verified: i64,
    /// Assigned or implementing.
    pub in_flight: i64,
    /// In flight with a lease that ran out.
    pub stale: i64,
}

impl ProjectTally {
    /// Every story verified, and there is at least one.
    pub fn complete(&self) -> bool {
        self.total > 0 && self.verified == self.total
    }
}

/// A page of stories in work order, and (when asked) how many there are in all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoryPage {
    pub stories: Vec<StoryRecord>,
    pub total: Option<i64>,
}

/// A dependency edge named by numbers (`Store::numbered_edges`): `"2.1"` → `"1.3"` for
/// stories, `"2"` → `"1"` for epics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedEdge {
    pub id: Uuid,
    pub from: String,
    pub to: String,
}

/// Which level of the dependency graph (`Store::numbered_edges`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeLevel {
    Story,
    Epic,
}

/// A story that keeps another from being claimed (`Store::blockers`): an unverified direct
/// dependency, or an unverified story of an epic its epic depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockerRecord {
    /// The blocked story.
    pub blocked_id: Uuid,
    pub id: Uuid,
    pub number: String,
    pub title: String,
    pub agent_status: AgentStatus,
    pub verified_status: VerifiedStatus,
}

/// Which expired claims to read (`Store::expired_claims`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiredClaims {
    pub now: chrono::DateTime<chrono::Utc>,
    /// `(tenant_id, project_id)`; `None` reads every tenant.
    pub project: Option<(Uuid, Uuid)>,
    /// Only claims not yet announced as stale (`stale_since` unset).
    pub unannounced_only: bool,
    pub limit: i64,
}

/// How many stories of one epic are at each stage. The stages are disjoint and add up to
/// `total`: pending (incl. rejected, back in the queue), contracted, assigned, implementing,
/// reported (done, not verified yet) and verified. `stale` counts the assigned or
/// implementing ones whose lease ran out; `rejected` the pending ones last rejected.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpicCounts {
    pub epic_id: Uuid,
    pub total: i64,
    pub pending: i64,
    pub contracted: i64,
    pub assigned: i64,
    pub implementing: i64,
    pub stale: i64,
    pub reported: i64,
    pub verified: i64,
    pub rejected: i64,
    pub escalated: i64,
    pub hours_total: f64,
    pub hours_verified: f64,
}

impl EpicCounts {
    /// Assigned or implementing: the core's "in flight" (`AgentStatus::in_flight`).
    pub fn in_flight(&self) -> usize {
        usize::try_from(self.assigned + self.implementing).unwrap_or(0)
    }

    /// Every story verified, and there is at least one.
    pub fn complete(&self) -> bool {
        self.total > 0 && self.verified == self.total
    }

    /// The counts of several epics together (the whole project).
    pub fn sum<'a>(epics: impl IntoIterator<Item = &'a EpicCounts>) -> EpicCounts {
        epics.into_iter().fold(EpicCounts::default(), |sum, e| sum.plus(e))
    }

    /// The counts of `epic` among `per_epic` (zero when it has no stories).
    pub fn of(per_epic: &[EpicCounts], epic: Uuid) -> EpicCounts {
        per_epic.iter().find(|c| c.epic_id == epic).copied().unwrap_or_default()
    }

    /// The counts of two groups of stories together (the epic id of `self` is kept).
    #[must_use]
    pub fn plus(&self, other: &EpicCounts) -> EpicCounts {
        EpicCounts {
            epic_id: self.epic_id,
            total: self.total + other.total,
            pending: self.pending + other.pending,
            contracted: self.contracted + other.contracted,
            assigned: self.assigned + other.assigned,
            implementing: self.implementing + other.implementing,
            stale: self.stale + other.stale,
            reported: self.reported + other.reported,
            verified: self.verified + other.verified,
            rejected: self.rejected + other.rejected,
            escalated: self.escalated + other.escalated,
            hours_total: self.hours_total + other.hours_total,
            hours_verified: self.hours_verified + other.hours_verified,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventFilter {
    pub project_id: Option<Uuid>,
    pub entity_type: Option<String>,
    pub entity_id: Option<Uuid>,
    pub action: Option<String>,
    /// Events with a cursor greater than this.
    pub after_cursor: Option<i64>,
    /// Events inserted strictly after this time.
    pub after_time: Option<DateTime<Utc>>,
    pub limit: i64,
    /// Newest first instead of oldest first (audit queries).
    pub newest_first: bool,
}

/// One version of a skill (a prompt document). Built-in skills are version 1 of their
/// name and live in the binary; tenants publish later versions, which are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SkillVersionRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub version: i64,
    pub prompt_text: String,
    pub changelog: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// How a story went when worked with a given skill version.
#[derive(Debug, Clone, PartialEq)]
pub struct SkillResultRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub version: i64,
    pub story_id: Option<Uuid>,
    /// `pass` or `fail`.
    pub result: String,
    pub metrics: Value,
    pub created_at: DateTime<Utc>,
}

/// A stored answer to a mutating request that carried an `Idempotency-Key`, or the marker of
/// one still running (`status` [`IdempotentResponse::IN_FLIGHT`], empty body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// SHA-256 of the caller's API key: answers are replayed only to the same key.
    pub scope: Vec<u8>,
    pub key: String,
    pub method: String,
    pub path: String,
    /// The HTTP status of the answer; `IN_FLIGHT` while the request runs.
    pub status: u16,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl IdempotentResponse {
    /// The status of a marker: no HTTP answer has status 0, so it can never be mistaken for one.
    pub const IN_FLIGHT: u16 = 0;

    /// True while the request that wrote this marker has not answered yet.
    pub fn in_flight(&self) -> bool {
        self.status == Self::IN_FLIGHT
    }
}

/// Evidence for, or a verdict on, one acceptance criterion in one round of a story.
#[derive(Debug, Clone, PartialEq)]
pub struct CriterionRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub ac_id: String,
    /// `evidence` (report), `review` or `verify`.
    pub kind: String,
    /// The story's claim epoch when it was recorded: evidence belongs to one round.
    pub round: i64,
    /// `pass` / `fail` for verdicts; none for evidence.
    pub verdict: Option<String>,
    pub detail: Value,
    pub actor_agent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The outcome of checking a story's artifacts against the repository, signed by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct VerificationRunRecord {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub round: i64,
    /// `pass` or `fail`.
    pub result: String,
    pub commit_sha: Option<String>,
    pub checks: Value,
    pub recorded_by_agent_id: Option<Uuid>,
    /// Base64 Ed25519 signature over `signed_payload`, by the key `key_id`.
    pub signature: String,
    pub created_at: DateTime<Utc>,
    /// The exact bytes that were signed: the run as canonical JSON.
    pub signed_payload: String,
    pub key_id: String,
}
