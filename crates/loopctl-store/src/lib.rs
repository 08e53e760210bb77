//! The storage contract of loopctl: one `Store` trait, the records it moves, and the
//! conformance suite (feature `testkit`) that every backend must pass unchanged.
//!
//! Writes are declarative: the service layer decides what to write (a `WriteBatch` of
//! `WriteOp`s, computed by the pure core) and the store applies the batch atomically.
//! Story transitions are compare-and-set on `lock_version`, so two racing writers can
//! never both succeed, whichever backend and however many server processes.
//! Nothing here knows SQL; nothing above the store sees a database error.

mod error;
mod record;
mod write;

#[cfg(feature = "testkit")]
pub mod conformance;

use std::future::Future;
use std::pin::Pin;

pub use error::{CustodyRefusal, StoreError};
pub use record::*;
pub use write::{InFlightGuard, StoryTransition, WriteBatch, WriteOp, is_single_row_write, is_transition_batch};

use uuid::Uuid;

/// A boxed future, so that `Store` stays usable as `dyn Store`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// The result of a store call.
pub type StoreResult<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Persistence for loopctl. Every read is scoped by tenant except the key lookup, which is
/// how a request finds its tenant in the first place.
pub trait Store: Send + Sync {
    /// `"sqlite"` or `"postgres"`, for `/health` and logs.
    fn backend(&self) -> &'static str;

    /// Applies every op of the batch in one transaction, or none of them.
    /// Answers the change-feed cursors of the events the batch appended, in order.
    fn commit(&self, batch: WriteBatch) -> StoreResult<'_, Vec<i64>>;

    /// The tenants whose events any process sharing this database committed, as they commit
    /// (a wake-up for live streams, never the events themselves: those are read from the
    /// store). `None` where one process owns the database (SQLite): its own commits wake its
    /// streams directly.
    fn commit_signals(&self) -> Option<futures_util::stream::BoxStream<'static, Uuid>> {
        None
    }

    /// Checks the database answers a real query, and (SQLite) that the writer commits.
    fn ping(&self) -> StoreResult<'_, ()>;

    /// How busy the store's connections are right now (for `/metrics`; no IO).
    fn pressure(&self) -> StorePressure;

    /// Of every tenant, the stories in flight (assigned or implementing) and how many of them
    /// have a lease that ended at or before `now`: two counts from the claim-lease index.
    fn claims_in_flight(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<'_, (i64, i64)>;

    fn tenant(&self, id: Uuid) -> StoreResult<'_, Option<TenantRecord>>;
    fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<'_, Option<ApiKeyRecord>>;
    fn api_keys(&self, tenant_id: Uuid, include_revoked: bool) -> StoreResult<'_, Vec<ApiKeyRecord>>;
    fn agent(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<AgentRecord>>;
    fn agents(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<AgentRecord>>;

    fn project(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<ProjectRecord>>;
    fn project_by_slug(&self, tenant_id: Uuid, slug: &str) -> StoreResult<'_, Option<ProjectRecord>>;
    fn projects(&self, tenant_id: Uuid, include_archived: bool) -> StoreResult<'_, Vec<ProjectRecord>>;

    fn epic(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<EpicRecord>>;
    /// Epics of a project, by position then number.
    fn epics(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Vec<EpicRecord>>;

    fn story(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<StoryRecord>>;
    fn story_by_number(&self, tenant_id: Uuid, project_id: Uuid, number: &str) -> StoreResult<'_, Option<StoryRecord>>;
    /// Stories matching the filter, by sort key, and the total count before paging.
    fn stories(&self, tenant_id: Uuid, filter: StoryFilter) -> StoreResult<'_, (Vec<StoryRecord>, i64)>;

    /// Stories still assigned or implementing whose claim lease ended at or before
    /// `query.now`, oldest lease first: of one project, or of every tenant (the lease
    /// sweeper, which asks only for those not yet announced as stale). Index-backed.
    fn expired_claims(&self, query: ExpiredClaims) -> StoreResult<'_, Vec<StoryRecord>>;

    /// A page of the ready frontier in work order (epic position, epic number, story number):
    /// stories pending or contracted and not yet claimed, or claimed with a lease that ended
    /// at or before `now` — never locked by escalation, every story and epic they depend on
    /// verified. Reads the maintained counts (`waiting_on`) through an index and stops at
    /// the page, whatever the project's size.
    fn ready_stories(&self, query: FrontierQuery) -> StoreResult<'_, StoryPage>;

    /// A page of the stories not yet claimed that wait for something unverified, in work
    /// order, and how many there are in all.
    fn blocked_stories(&self, tenant_id: Uuid, project_id: Uuid, offset: i64, limit: i64)
    -> StoreResult<'_, StoryPage>;

    /// How many stories the project has, verified, in flight and stale (`ProjectTally`).
    fn project_tally(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, ProjectTally>;

    /// What keeps each of these stories from being claimed, at most `per_story` each.
    fn blockers(&self, tenant_id: Uuid, story_ids: &[Uuid], per_story: i64) -> StoreResult<'_, Vec<BlockerRecord>>;

    /// Story counts of a project per epic (epics without stories are absent), from one
    /// aggregate query: the numbers behind progress and `status` at any project size.
    fn stage_counts(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, Vec<EpicCounts>>;

    /// How many stories keep this one from being claimed: unverified direct dependencies and
    /// unverified stories of the epics its epic depends on (counted once each). Index-backed,
    /// never loading the project (the default `story_and_wait` asks it).
    fn unverified_blockers(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, i64>;

    /// The story, and whether it waits for anything unverified (`unverified_blockers` > 0):
    /// what a contract or claim reads before it decides. A store that keeps the counts beside
    /// the row answers both in one read; by default, the story and then its blockers.
    fn story_and_wait(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<(StoryRecord, bool)>> {
        Box::pin(async move {
            let Some(story) = self.story(tenant_id, id).await? else {
                return Ok(None);
            };
            let waits = self.unverified_blockers(tenant_id, id).await? > 0;
            Ok(Some((story, waits)))
        })
    }

    /// The stories of a project with these numbers (any order; unknown numbers are absent).
    fn stories_by_number(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        numbers: &[String],
    ) -> StoreResult<'_, Vec<StoryRecord>>;

    /// Up to `limit` stories of an epic after `after_sort_key`, by number: a keyset page.
    fn epic_stories_after(
        &self,
        tenant_id: Uuid,
        epic_id: Uuid,
        after_sort_key: Option<i64>,
        limit: i64,
    ) -> StoreResult<'_, Vec<StoryRecord>>;

    /// Up to `limit` dependency edges of one level after the edge `after`, by id (creation
    /// order), each named by the numbers of its ends: a keyset page for the export.
    fn numbered_edges(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        level: EdgeLevel,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<'_, Vec<NumberedEdge>>;

    /// Dependency edges of a project at both levels.
    fn dependencies(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Dependencies>;

    fn artifacts(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ArtifactRecord>>;
    /// A story's token usage rows, oldest first.
    fn token_usage(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<TokenUsageRecord>>;
    /// A project's token usage summed (from an index that covers the sums).
    fn project_token_totals(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, TokenTotals>;
    fn reviews(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ReviewRecord>>;
    fn verifications(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRecord>>;

    fn orchestrator_state(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        state_key: &str,
    ) -> StoreResult<'_, Option<OrchestratorStateRecord>>;

    /// Stored skill versions of the tenant (of one name, or all), by name then version.
    fn skill_versions(&self, tenant_id: Uuid, name: Option<&str>) -> StoreResult<'_, Vec<SkillVersionRecord>>;
    /// Recorded results of a skill's versions, oldest first.
    fn skill_results(&self, tenant_id: Uuid, name: &str) -> StoreResult<'_, Vec<SkillResultRecord>>;
    /// The stored answer for an idempotency key of one caller, if any.
    fn idempotent_response(&self, scope: &[u8], key: &str) -> StoreResult<'_, Option<IdempotentResponse>>;

    fn dispatch(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<DispatchRecord>>;
    /// Dispatches of the tenant (of one story, or all), oldest first.
    fn dispatches(&self, tenant_id: Uuid, story_id: Option<Uuid>) -> StoreResult<'_, Vec<DispatchRecord>>;

    /// Evidence and verdicts per criterion of a story, oldest first.
    fn criterion_records(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<CriterionRecord>>;
    /// Verification runs of a story, oldest first.
    fn verification_runs(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRunRecord>>;

    /// Change feed and audit log: events after `since`, oldest first.
    fn events(&self, tenant_id: Uuid, filter: EventFilter) -> StoreResult<'_, Vec<EventRecord>>;

    fn webhooks(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<WebhookRecord>>;
    fn webhook(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<WebhookRecord>>;
    /// A webhook's newest deliveries, newest first.
    fn deliveries(&self, tenant_id: Uuid, webhook_id: Uuid, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>>;
    /// Of every tenant's enabled webhooks, the oldest pending delivery of each, when it is due
    /// at `now` and not leased: what to send next (deliveries of one webhook go out in order).
    fn due_deliveries(&self, now: chrono::DateTime<chrono::Utc>, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>>;
    /// The event at this cursor.
    fn event_at(&self, tenant_id: Uuid, cursor: i64) -> StoreResult<'_, Option<EventRecord>>;

    /// Up to `limit` links of the tenant's audit chain after `after_cursor`, oldest first.
    fn audit_links(&self, tenant_id: Uuid, after_cursor: Option<i64>, limit: i64) -> StoreResult<'_, Vec<AuditLink>>;
    /// The newest link of the tenant's audit chain.
    fn audit_tip(&self, tenant_id: Uuid) -> StoreResult<'_, Option<AuditLink>>;
    /// Up to `limit` tenants with events newer than their audit chain's tip (two index
    /// probes per tenant).
    fn tenants_behind_audit_chain(&self, limit: i64) -> StoreResult<'_, Vec<Uuid>>;
}
