//! The store on throwaway PostgreSQL databases (`loopctl_test_support::postgres`: one
//! database per test on the server named by `LOOPCTL_TEST_POSTGRES_URL`, dropped with its
//! guard; an unreachable server fails the test, never skips it).

use std::sync::Arc;

use loopctl_store::*;
use loopctl_store_postgres::PgStore;
pub use loopctl_test_support::postgres::TestDatabase;
use uuid::Uuid;

/// A store on `db` (migrating it on first use); each call stands for one server process.
pub async fn store_on(db: &TestDatabase) -> PgStore {
    PgStore::connect(&db.url).await.expect("connect the PgStore to the test database")
}

/// The conformance suite's `fresh_store`: an empty, migrated store on its own database.
pub async fn fresh_store() -> Arc<dyn Store> {
    let db = TestDatabase::create().await;
    let store = store_on(&db).await;
    Arc::new(TestStore { store, _db: db })
}

/// A store that drops its database when it is dropped. Fields drop in order: the pool
/// first, then the database.
pub struct TestStore {
    pub store: PgStore,
    pub _db: TestDatabase,
}

impl Store for TestStore {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }
    fn commit(&self, batch: WriteBatch) -> StoreResult<'_, Vec<i64>> {
        self.store.commit(batch)
    }
    fn ping(&self) -> StoreResult<'_, ()> {
        self.store.ping()
    }
    fn pressure(&self) -> StorePressure {
        self.store.pressure()
    }
    fn claims_in_flight(&self, now: chrono::DateTime<chrono::Utc>) -> StoreResult<'_, (i64, i64)> {
        self.store.claims_in_flight(now)
    }
    fn tenant(&self, id: Uuid) -> StoreResult<'_, Option<TenantRecord>> {
        self.store.tenant(id)
    }
    fn api_key_by_hash(&self, hash: &[u8]) -> StoreResult<'_, Option<ApiKeyRecord>> {
        self.store.api_key_by_hash(hash)
    }
    fn api_keys(&self, tenant_id: Uuid, include_revoked: bool) -> StoreResult<'_, Vec<ApiKeyRecord>> {
        self.store.api_keys(tenant_id, include_revoked)
    }
    fn agent(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<AgentRecord>> {
        self.store.agent(tenant_id, id)
    }
    fn agents(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<AgentRecord>> {
        self.store.agents(tenant_id)
    }
    fn project(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<ProjectRecord>> {
        self.store.project(tenant_id, id)
    }
    fn project_by_slug(&self, tenant_id: Uuid, slug: &str) -> StoreResult<'_, Option<ProjectRecord>> {
        self.store.project_by_slug(tenant_id, slug)
    }
    fn projects(&self, tenant_id: Uuid, include_archived: bool) -> StoreResult<'_, Vec<ProjectRecord>> {
        self.store.projects(tenant_id, include_archived)
    }
    fn epic(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<EpicRecord>> {
        self.store.epic(tenant_id, id)
    }
    fn epics(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Vec<EpicRecord>> {
        self.store.epics(tenant_id, project_id)
    }
    fn story(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<StoryRecord>> {
        self.store.story(tenant_id, id)
    }
    fn story_by_number(&self, tenant_id: Uuid, project_id: Uuid, number: &str) -> StoreResult<'_, Option<StoryRecord>> {
        self.store.story_by_number(tenant_id, project_id, number)
    }
    fn stories(&self, tenant_id: Uuid, filter: StoryFilter) -> StoreResult<'_, (Vec<StoryRecord>, i64)> {
        self.store.stories(tenant_id, filter)
    }
    fn dependencies(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, Dependencies> {
        self.store.dependencies(tenant_id, project_id)
    }
    fn artifacts(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ArtifactRecord>> {
        self.store.artifacts(tenant_id, story_id)
    }
    fn token_usage(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<TokenUsageRecord>> {
        self.store.token_usage(tenant_id, story_id)
    }
    fn project_token_totals(&self, tenant_id: Uuid, project_id: Uuid) -> StoreResult<'_, TokenTotals> {
        self.store.project_token_totals(tenant_id, project_id)
    }
    fn reviews(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<ReviewRecord>> {
        self.store.reviews(tenant_id, story_id)
    }
    fn verifications(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRecord>> {
        self.store.verifications(tenant_id, story_id)
    }
    fn orchestrator_state(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        state_key: &str,
    ) -> StoreResult<'_, Option<OrchestratorStateRecord>> {
        self.store.orchestrator_state(tenant_id, project_id, state_key)
    }
    fn expired_claims(&self, query: ExpiredClaims) -> StoreResult<'_, Vec<StoryRecord>> {
        self.store.expired_claims(query)
    }
    fn skill_versions(&self, tenant_id: Uuid, name: Option<&str>) -> StoreResult<'_, Vec<SkillVersionRecord>> {
        self.store.skill_versions(tenant_id, name)
    }
    fn skill_results(&self, tenant_id: Uuid, name: &str) -> StoreResult<'_, Vec<SkillResultRecord>> {
        self.store.skill_results(tenant_id, name)
    }
    fn idempotent_response(&self, scope: &[u8], key: &str) -> StoreResult<'_, Option<IdempotentResponse>> {
        self.store.idempotent_response(scope, key)
    }
    fn ready_stories(&self, query: FrontierQuery) -> StoreResult<'_, StoryPage> {
        self.store.ready_stories(query)
    }
    fn blocked_stories(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        offset: i64,
        limit: i64,
    ) -> StoreResult<'_, StoryPage> {
        self.store.blocked_stories(tenant_id, project_id, offset, limit)
    }
    fn project_tally(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, ProjectTally> {
        self.store.project_tally(tenant_id, project_id, now)
    }
    fn stories_by_number(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        numbers: &[String],
    ) -> StoreResult<'_, Vec<StoryRecord>> {
        self.store.stories_by_number(tenant_id, project_id, numbers)
    }
    fn epic_stories_after(
        &self,
        tenant_id: Uuid,
        epic_id: Uuid,
        after_sort_key: Option<i64>,
        limit: i64,
    ) -> StoreResult<'_, Vec<StoryRecord>> {
        self.store.epic_stories_after(tenant_id, epic_id, after_sort_key, limit)
    }
    fn numbered_edges(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        level: EdgeLevel,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<'_, Vec<NumberedEdge>> {
        self.store.numbered_edges(tenant_id, project_id, level, after, limit)
    }
    fn blockers(&self, tenant_id: Uuid, story_ids: &[Uuid], per_story: i64) -> StoreResult<'_, Vec<BlockerRecord>> {
        self.store.blockers(tenant_id, story_ids, per_story)
    }
    fn stage_counts(
        &self,
        tenant_id: Uuid,
        project_id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<'_, Vec<EpicCounts>> {
        self.store.stage_counts(tenant_id, project_id, now)
    }
    fn unverified_blockers(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, i64> {
        self.store.unverified_blockers(tenant_id, story_id)
    }
    fn story_and_wait(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<(StoryRecord, bool)>> {
        self.store.story_and_wait(tenant_id, id)
    }
    fn dispatch(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<DispatchRecord>> {
        self.store.dispatch(tenant_id, id)
    }
    fn dispatches(&self, tenant_id: Uuid, story_id: Option<Uuid>) -> StoreResult<'_, Vec<DispatchRecord>> {
        self.store.dispatches(tenant_id, story_id)
    }
    fn criterion_records(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<CriterionRecord>> {
        self.store.criterion_records(tenant_id, story_id)
    }
    fn verification_runs(&self, tenant_id: Uuid, story_id: Uuid) -> StoreResult<'_, Vec<VerificationRunRecord>> {
        self.store.verification_runs(tenant_id, story_id)
    }
    fn events(&self, tenant_id: Uuid, filter: EventFilter) -> StoreResult<'_, Vec<EventRecord>> {
        self.store.events(tenant_id, filter)
    }
    fn audit_links(&self, tenant_id: Uuid, after_cursor: Option<i64>, limit: i64) -> StoreResult<'_, Vec<AuditLink>> {
        self.store.audit_links(tenant_id, after_cursor, limit)
    }
    fn webhooks(&self, tenant_id: Uuid) -> StoreResult<'_, Vec<WebhookRecord>> {
        self.store.webhooks(tenant_id)
    }
    fn webhook(&self, tenant_id: Uuid, id: Uuid) -> StoreResult<'_, Option<WebhookRecord>> {
        self.store.webhook(tenant_id, id)
    }
    fn deliveries(&self, tenant_id: Uuid, webhook_id: Uuid, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>> {
        self.store.deliveries(tenant_id, webhook_id, limit)
    }
    fn due_deliveries(&self, now: chrono::DateTime<chrono::Utc>, limit: i64) -> StoreResult<'_, Vec<DeliveryRecord>> {
        self.store.due_deliveries(now, limit)
    }
    fn event_at(&self, tenant_id: Uuid, cursor: i64) -> StoreResult<'_, Option<EventRecord>> {
        self.store.event_at(tenant_id, cursor)
    }
    fn audit_tip(&self, tenant_id: Uuid) -> StoreResult<'_, Option<AuditLink>> {
        self.store.audit_tip(tenant_id)
    }
    fn tenants_behind_audit_chain(&self, limit: i64) -> StoreResult<'_, Vec<Uuid>> {
        self.store.tenants_behind_audit_chain(limit)
    }
}
