//! The declarative writes a store applies atomically.

use chrono::{DateTime, Utc};
use loopctl_core::StoryState;
use uuid::Uuid;

use crate::record::*;

/// Ops applied in order in one transaction.
pub type WriteBatch = Vec<WriteOp>;

/// Refuse a claim when the project already has `limit` stories assigned or implementing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightGuard {
    pub project_id: Uuid,
    pub limit: u32,
}

/// Compare-and-set of a story's lifecycle state: applies only if `lock_version` still equals
/// `expected_version` (and the guard holds), and raises `lock_version` by one. With
/// `only_if_unblocked`, also only while nothing the story or its epic depends on is
/// unverified (a dependency added or reopened since the decision leaves the version as it
/// was): otherwise a `VersionConflict`, so the caller reads the story again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryTransition {
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub expected_version: i64,
    pub state: StoryState,
    pub updated_at: DateTime<Utc>,
    pub guard: Option<InFlightGuard>,
    pub only_if_unblocked: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    InsertTenant(TenantRecord),
    UpdateTenant(TenantRecord),
    InsertAgent(AgentRecord),
    UpdateAgent(AgentRecord),
    InsertApiKey(ApiKeyRecord),
    /// Sets `revoked_at` and/or `expires_at` of a key of the tenant.
    EndApiKey {
        tenant_id: Uuid,
        id: Uuid,
        revoked_at: Option<DateTime<Utc>>,
        expires_at: Option<DateTime<Utc>>,
    },
    /// Records that a key was used (best effort, outside any story write).
    TouchApiKey {
        id: Uuid,
        at: DateTime<Utc>,
    },
    InsertProject(ProjectRecord),
    UpdateProject(ProjectRecord),
    InsertEpic(EpicRecord),
    UpdateEpic(EpicRecord),
    DeleteEpic {
        tenant_id: Uuid,
        id: Uuid,
    },
    InsertStory(StoryRecord),
    /// Content fields only (title, description, criteria, hours, metadata); never status.
    /// Raises `lock_version` by one: a transition decided on the old content misses.
    UpdateStoryContent(StoryRecord),
    DeleteStory {
        tenant_id: Uuid,
        id: Uuid,
    },
    /// Compare-and-set of a story's lifecycle state ([`StoryTransition`]).
    TransitionStory(StoryTransition),
    InsertStoryDependency(DependencyRecord),
    InsertEpicDependency(DependencyRecord),
    DeleteStoryDependency {
        tenant_id: Uuid,
        id: Uuid,
    },
    DeleteEpicDependency {
        tenant_id: Uuid,
        id: Uuid,
    },
    InsertArtifact(ArtifactRecord),
    InsertTokenUsage(TokenUsageRecord),
    InsertReview(ReviewRecord),
    InsertVerification(NewVerification),
    /// Compare-and-set of a checkpoint: `expected_version` 0 inserts (no row may exist yet),
    /// n updates the row at version n to `record.version`.
    SaveOrchestratorState {
        record: OrchestratorStateRecord,
        expected_version: i64,
    },
    AppendEvent(NewEvent),
    /// A new version of a skill; a taken (tenant, name, version) is a `Duplicate`.
    InsertSkillVersion(SkillVersionRecord),
    InsertSkillResult(SkillResultRecord),
    /// Claims (scope, key) for one request by writing its in-flight marker. A marker older
    /// than `stale_before` (its server died before answering) is replaced; any other row for
    /// the pair is a `Duplicate`, so of any number of concurrent requests exactly one begins.
    BeginIdempotentRequest {
        marker: IdempotentResponse,
        stale_before: DateTime<Utc>,
    },
    /// Keeps an answer for replay: it completes the pair's in-flight marker, or is inserted
    /// when there is none. An answer already kept is never replaced.
    SaveIdempotentResponse(IdempotentResponse),
    /// Drops the pair's in-flight marker (the request ended without an answer worth
    /// replaying), so a retry runs again. A kept answer stays.
    AbandonIdempotentRequest {
        scope: Vec<u8>,
        key: String,
    },
    InsertDispatch(DispatchRecord),
    InsertCriterionRecord(CriterionRecord),
    InsertVerificationRun(VerificationRunRecord),
    /// Revokes a dispatch and, with it, its token.
    RevokeDispatch {
        tenant_id: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
    },
    /// Appends links to tenants' audit chains; a link already written (same tenant and
    /// cursor) is a `Duplicate`, and the whole batch is refused with it.
    AppendAuditLinks(Vec<AuditLink>),
    InsertWebhook(WebhookRecord),
    /// Deletes a webhook and its deliveries.
    DeleteWebhook {
        tenant_id: Uuid,
        id: Uuid,
    },
    /// Takes a pending delivery for one sender until `until`: a `VersionConflict` when it is
    /// no longer pending or another sender's lease on it has not ended at `now`.
    LeaseDelivery {
        tenant_id: Uuid,
        id: Uuid,
        delivery_id: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Records an attempt: the delivery's outcome and log columns, its lease ended, and the
    /// webhook's failure count (and its disabling).
    RecordDeliveryAttempt(DeliveryAttempt),
    /// Forgets answers stored before this time.
    PurgeIdempotentResponses {
        before: DateTime<Utc>,
    },
}

/// Whether `ops` is a single idempotency row or key touch: one write of one row, with no
/// triggers and no locks of ours, which every store applies as a single statement. A store
/// may run such a batch without a transaction or savepoint of its own around it.
pub fn is_single_row_write(ops: &[WriteOp]) -> bool {
    matches!(
        ops,
        [WriteOp::BeginIdempotentRequest { .. }
            | WriteOp::SaveIdempotentResponse(_)
            | WriteOp::AbandonIdempotentRequest { .. }
            | WriteOp::PurgeIdempotentResponses { .. }
            | WriteOp::TouchApiKey { .. }]
    )
}

impl WriteOp {
    /// Whether this op is a row of evidence a transition's batch may carry: an artifact,
    /// token usage, a review, a verdict or a criterion record.
    pub fn is_evidence(&self) -> bool {
        matches!(
            self,
            WriteOp::InsertArtifact(_)
                | WriteOp::InsertTokenUsage(_)
                | WriteOp::InsertReview(_)
                | WriteOp::InsertVerification(_)
                | WriteOp::InsertCriterionRecord(_)
        )
    }
}

/// Whether `ops` has the shape of a transition's batch: an optional idempotency marker
/// first, rows of evidence, one compare-and-set of a story, and last its one event. The
/// shape the service layer writes for every lifecycle step, which a store may send in one
/// trip.
pub fn is_transition_batch(ops: &[WriteOp]) -> bool {
    let ops = match ops {
        [WriteOp::BeginIdempotentRequest { .. }, rest @ ..] => rest,
        all => all,
    };
    let [evidence @ .., WriteOp::TransitionStory(_), WriteOp::AppendEvent(_)] = ops else {
        return false;
    };
    evidence.iter().all(WriteOp::is_evidence)
}
