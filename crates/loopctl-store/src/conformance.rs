//! The store conformance suite: every backend runs these cases unchanged.
//!
//! A backend's test file invokes `conformance_tests!(fresh_store)`, where `fresh_store`
//! is an `async fn() -> Arc<dyn Store>` that opens an empty, migrated store. Each case
//! makes its own tenant, so cases never see each other's rows. A behaviour of the store
//! exists when it has a case here.

#![expect(clippy::unwrap_used, clippy::missing_panics_doc, reason = "test code: a failed expectation is the report")]

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use loopctl_core::{AgentStatus, DispatchRole, Role, StoryNumber, StoryState, VerifiedStatus};
use serde_json::json;
use uuid::Uuid;

use crate::*;

/// Expands to one `#[tokio::test]` per conformance case.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@cases $fresh;
            keys_are_found_by_hash_and_scoped_by_tenant,
            reads_never_cross_tenants,
            duplicates_are_refused,
            a_batch_is_all_or_nothing,
            transition_is_compare_and_set,
            fifty_concurrent_claims_have_one_winner,
            in_flight_guard_refuses_over_the_limit,
            stories_list_filters_pages_and_orders_numerically,
            dependencies_round_trip_and_refuse_self_edges,
            evidence_rows_round_trip,
            token_usage_sums_per_story_and_project_within_the_tenant,
            orchestrator_state_is_versioned,
            events_page_by_cursor_time_and_filters,
            audit_links_are_written_once_per_event_and_never_rewritten,
            database_refuses_self_review_and_self_verification,
            counters_only_rise_in_the_database,
            deleting_an_epic_removes_its_stories,
            expired_claims_are_found_across_tenants,
            skill_versions_are_unique_and_ordered,
            idempotent_responses_replay_per_caller_and_expire,
            an_idempotency_key_begins_once_until_answered_or_abandoned,
            answers_completed_together_each_land_on_their_own_marker,
            a_batch_that_loses_its_marker_applies_nothing_and_spares_its_neighbours,
            dispatches_round_trip_and_revoke_their_token,
            database_refuses_a_self_verified_story_row,
            unverified_blockers_count_story_and_epic_dependencies,
            a_transition_batch_with_its_marker_applies_whole_or_not_at_all,
            racing_transition_batches_leave_each_winner_whole_and_each_loser_without_a_trace,
            edits_of_tenants_agents_projects_epics_and_stories_round_trip,
            a_content_edit_moves_the_version_a_transition_was_decided_on,
            a_transition_decided_unblocked_misses_once_a_dependency_appears,
            ready_stories_agree_with_the_dependency_graph,
            the_maintained_frontier_equals_the_graph_after_random_edits,
            stage_counts_are_disjoint_per_epic_and_scoped,
            a_story_turns_verified_only_with_the_event_naming_its_verifier,
            a_review_by_the_assignee_written_around_the_service_is_refused_as_self_review,
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                $crate::conformance::$case($fresh().await).await;
            }
        )*
    };
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// A tenant with a project, an epic and two agents, ready for stories.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub tenant: Uuid,
    pub project: Uuid,
    pub epic: Uuid,
    pub agents: [Uuid; 2],
}

impl Fixture {
    pub async fn new(store: Arc<dyn Store>) -> Fixture {
        let tenant = Uuid::now_v7();
        let project = Uuid::now_v7();
        let epic = Uuid::now_v7();
        let agents = [Uuid::now_v7(), Uuid::now_v7()];
        let slug = format!("t-{}", tenant.simple());
        let mut batch = vec![
            WriteOp::InsertTenant(TenantRecord {
                id: tenant,
                name: "Acme".into(),
                slug,
                email: None,
                settings: json!({}),
                status: "active".into(),
                created_at: t0(),
                updated_at: t0(),
            }),
            WriteOp::InsertProject(project_record(tenant, project, "web")),
            WriteOp::InsertEpic(epic_record(tenant, project, epic, 1)),
        ];
        for (idx, agent) in agents.iter().enumerate() {
            batch.push(WriteOp::InsertAgent(AgentRecord {
                id: *agent,
                tenant_id: tenant,
                name: format!("agent-{idx}"),
                agent_type: "implementer".into(),
                status: "active".into(),
                metadata: json!({}),
                created_at: t0(),
                updated_at: t0(),
            }));
        }
        store.commit(batch).await.unwrap();
        Fixture { store, tenant, project, epic, agents }
    }

    pub fn story_record(&self, number: &str) -> StoryRecord {
        story_record(self.tenant, self.project, self.epic, number)
    }

    pub async fn story(&self, number: &str) -> StoryRecord {
        let record = self.story_record(number);
        self.store.commit(vec![WriteOp::InsertStory(record.clone())]).await.unwrap();
        record
    }

    /// Moves a story to `state` from the version read now.
    /// Sets a story's state, with the `verified` event the database asks for when it
    /// becomes verified.
    pub async fn force_state(&self, story: Uuid, state: StoryState) {
        let current = self.store.story(self.tenant, story).await.unwrap().unwrap();
        let mut batch = vec![transition(&current, state.clone(), None)];
        if state.verified_status == VerifiedStatus::Verified
            && current.state.verified_status != VerifiedStatus::Verified
        {
            batch.push(verified_event(self.tenant, story));
        }
        self.store.commit(batch).await.unwrap();
    }
}

pub fn project_record(tenant: Uuid, id: Uuid, slug: &str) -> ProjectRecord {
    ProjectRecord {
        id,
        tenant_id: tenant,
        name: slug.to_uppercase(),
        slug: slug.into(),
        repo_url: None,
        description: None,
        tech_stack: None,
        mission: None,
        status: "active".into(),
        metadata: json!({}),
        created_at: t0(),
        updated_at: t0(),
    }
}

pub fn epic_record(tenant: Uuid, project: Uuid, id: Uuid, number: i64) -> EpicRecord {
    EpicRecord {
        id,
        tenant_id: tenant,
        project_id: project,
        number,
        title: format!("Epic {number}"),
        description: None,
        phase: None,
        position: number,
        metadata: json!({}),
        created_at: t0(),
        updated_at: t0(),
    }
}

pub fn story_record(tenant: Uuid, project: Uuid, epic: Uuid, number: &str) -> StoryRecord {
    StoryRecord {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        project_id: project,
        epic_id: epic,
        number: number.into(),
        sort_key: StoryNumber::parse(number).unwrap().sort_key(),
        title: format!("Story {number}"),
        description: Some("as a user…".into()),
        acceptance_criteria: json!([{"id": "AC-1", "criterion": "works"}]),
        estimated_hours: Some(2.5),
        metadata: json!({"area": "core"}),
        state: StoryState::default(),
        lock_version: 0,
        created_at: t0(),
        updated_at: t0(),
    }
}

pub fn transition(current: &StoryRecord, state: StoryState, guard: Option<InFlightGuard>) -> WriteOp {
    WriteOp::TransitionStory(StoryTransition {
        tenant_id: current.tenant_id,
        story_id: current.id,
        expected_version: current.lock_version,
        state,
        updated_at: t0(),
        guard,
        only_if_unblocked: false,
    })
}

/// The event a verify writes: a key (not the system) verified `story`.
pub fn verified_event(tenant: Uuid, story: Uuid) -> WriteOp {
    WriteOp::AppendEvent(event(tenant, None, story, "verified", Utc::now()))
}

fn claimed_by(agent: Uuid, from: &StoryState) -> StoryState {
    StoryState {
        agent_status: AgentStatus::Assigned,
        assigned_agent_id: Some(agent),
        assigned_at: Some(t0()),
        claim_epoch: from.claim_epoch + 1,
        lease_expires_at: Some(t0() + Duration::minutes(30)),
        ..from.clone()
    }
}

fn event(tenant: Uuid, project: Option<Uuid>, entity: Uuid, action: &str, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        tenant_id: tenant,
        project_id: project,
        entity_type: "story".into(),
        entity_id: entity,
        action: action.into(),
        actor: ActorStamp {
            actor_type: "api_key".into(),
            key_id: Some(Uuid::now_v7()),
            agent_id: None,
            role: Some(Role::Orchestrator),
            label: "orchestrator:main".into(),
        },
        old_state: json!({"agent_status": "pending"}),
        new_state: json!({"agent_status": "contracted"}),
        metadata: json!({}),
        inserted_at: at,
    }
}

pub async fn keys_are_found_by_hash_and_scoped_by_tenant(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let other = Fixture::new(store.clone()).await;
    let key = ApiKeyRecord {
        id: Uuid::now_v7(),
        tenant_id: Some(fx.tenant),
        name: "impl-1".into(),
        key_hash: vec![7; 32],
        key_prefix: "lc_abcde".into(),
        role: Role::Agent,
        agent_id: Some(fx.agents[0]),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        created_at: t0(),
        scope: None,
    };
    store.commit(vec![WriteOp::InsertApiKey(key.clone())]).await.unwrap();
    assert_eq!(store.api_key_by_hash(&[7; 32]).await.unwrap(), Some(key.clone()));
    assert_eq!(store.api_key_by_hash(&[8; 32]).await.unwrap(), None);
    assert_eq!(store.api_keys(fx.tenant, false).await.unwrap(), vec![key.clone()]);
    assert!(store.api_keys(other.tenant, true).await.unwrap().is_empty());

    // Another tenant cannot revoke it.
    let foreign = WriteOp::EndApiKey { tenant_id: other.tenant, id: key.id, revoked_at: Some(t0()), expires_at: None };
    assert!(matches!(store.commit(vec![foreign]).await, Err(StoreError::NotFound { .. })));
    let revoke = WriteOp::EndApiKey { tenant_id: fx.tenant, id: key.id, revoked_at: Some(t0()), expires_at: None };
    store.commit(vec![revoke]).await.unwrap();
    assert!(store.api_keys(fx.tenant, false).await.unwrap().is_empty());
    let revoked = store.api_key_by_hash(&[7; 32]).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(t0()));
    assert_eq!(store.api_keys(fx.tenant, true).await.unwrap().len(), 1);
}

pub async fn reads_never_cross_tenants(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let other = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    assert!(store.project(other.tenant, fx.project).await.unwrap().is_none());
    assert!(store.epic(other.tenant, fx.epic).await.unwrap().is_none());
    assert!(store.story(other.tenant, story.id).await.unwrap().is_none());
    assert!(store.story_by_number(other.tenant, fx.project, "1.1").await.unwrap().is_none());
    assert!(store.agent(other.tenant, fx.agents[0]).await.unwrap().is_none());
    let filter = StoryFilter { project_id: Some(fx.project), limit: 100, ..StoryFilter::default() };
    assert_eq!(store.stories(other.tenant, filter).await.unwrap().1, 0);
    assert!(store.epics(other.tenant, fx.project).await.unwrap().is_empty());
    let mine = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(mine, story);
    // A write addressed to another tenant's row finds nothing.
    let steal = WriteOp::TransitionStory(StoryTransition {
        tenant_id: other.tenant,
        story_id: story.id,
        expected_version: 0,
        state: claimed_by(other.agents[0], &story.state),
        updated_at: t0(),
        guard: None,
        only_if_unblocked: false,
    });
    assert!(matches!(store.commit(vec![steal]).await, Err(StoreError::NotFound { .. })));
}

pub async fn duplicates_are_refused(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    fx.story("1.1").await;
    let dup_story = fx.story_record("1.1");
    assert!(matches!(store.commit(vec![WriteOp::InsertStory(dup_story)]).await, Err(StoreError::Duplicate { .. })));
    let dup_epic = epic_record(fx.tenant, fx.project, Uuid::now_v7(), 1);
    assert!(matches!(store.commit(vec![WriteOp::InsertEpic(dup_epic)]).await, Err(StoreError::Duplicate { .. })));
    let dup_project = project_record(fx.tenant, Uuid::now_v7(), "web");
    assert!(matches!(store.commit(vec![WriteOp::InsertProject(dup_project)]).await, Err(StoreError::Duplicate { .. })));
    // The same slug in another tenant is fine.
    let other = Fixture::new(store.clone()).await;
    assert!(store.project_by_slug(other.tenant, "web").await.unwrap().is_some());
}

pub async fn a_batch_is_all_or_nothing(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    fx.story("1.1").await;
    let fresh = fx.story_record("1.2");
    let duplicate = fx.story_record("1.1");
    let outcome = store
        .commit(vec![
            WriteOp::InsertStory(fresh.clone()),
            WriteOp::AppendEvent(event(fx.tenant, Some(fx.project), fresh.id, "created", t0())),
            WriteOp::InsertStory(duplicate),
        ])
        .await;
    assert!(outcome.is_err());
    assert!(store.story(fx.tenant, fresh.id).await.unwrap().is_none());
    let filter = EventFilter { limit: 100, ..EventFilter::default() };
    assert!(store.events(fx.tenant, filter).await.unwrap().is_empty());
}

pub async fn transition_is_compare_and_set(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let claimed = claimed_by(fx.agents[0], &story.state);
    store.commit(vec![transition(&story, claimed.clone(), None)]).await.unwrap();
    let after = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(after.state, claimed);
    assert_eq!(after.lock_version, story.lock_version + 1);
    // The same write from the old version loses.
    let stale = transition(&story, claimed_by(fx.agents[1], &story.state), None);
    assert!(matches!(store.commit(vec![stale]).await, Err(StoreError::VersionConflict { .. })));
    let unchanged = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(unchanged.state.assigned_agent_id, Some(fx.agents[0]));
}

pub async fn fifty_concurrent_claims_have_one_winner(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        let tenant = fx.tenant;
        let story_id = story.id;
        tasks.push(tokio::spawn(async move {
            let agent = Uuid::now_v7();
            let current = store.story(tenant, story_id).await.unwrap().unwrap();
            if current.state.agent_status != AgentStatus::Pending {
                return None;
            }
            let claim = transition(&current, claimed_by(agent, &current.state), None);
            store.commit(vec![claim]).await.ok().map(|_| agent)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(agent) = task.await.unwrap() {
            winners.push(agent);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins");
    let after = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(after.state.assigned_agent_id, Some(winners[0]));
    assert_eq!(after.state.claim_epoch, 1);
    assert_eq!(after.lock_version, 1);
}

pub async fn in_flight_guard_refuses_over_the_limit(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let first = fx.story("1.1").await;
    let second = fx.story("1.2").await;
    let guard = Some(InFlightGuard { project_id: fx.project, limit: 1 });
    store.commit(vec![transition(&first, claimed_by(fx.agents[0], &first.state), guard)]).await.unwrap();
    let refused = store.commit(vec![transition(&second, claimed_by(fx.agents[1], &second.state), guard)]).await;
    assert_eq!(refused, Err(StoreError::ConcurrencyLimit { limit: 1, in_flight: vec!["1.1".into()] }));
    // Re-writing the story already in flight does not count against itself.
    let first_now = store.story(fx.tenant, first.id).await.unwrap().unwrap();
    let started = StoryState { agent_status: AgentStatus::Implementing, ..first_now.state.clone() };
    store.commit(vec![transition(&first_now, started, guard)]).await.unwrap();
}

pub async fn stories_list_filters_pages_and_orders_numerically(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let second_epic = Uuid::now_v7();
    let mut early = epic_record(fx.tenant, fx.project, second_epic, 2);
    early.position = 0; // placed before epic 1
    store.commit(vec![WriteOp::InsertEpic(early)]).await.unwrap();
    for number in ["1.10", "1.9", "1.2"] {
        fx.story(number).await;
    }
    let mut first_of_early = story_record(fx.tenant, fx.project, second_epic, "2.1");
    first_of_early.state = StoryState::default();
    store.commit(vec![WriteOp::InsertStory(first_of_early)]).await.unwrap();

    let all = StoryFilter { project_id: Some(fx.project), limit: 100, ..StoryFilter::default() };
    let (stories, total) = store.stories(fx.tenant, all.clone()).await.unwrap();
    let numbers: Vec<_> = stories.iter().map(|s| s.number.as_str()).collect();
    assert_eq!(numbers, ["2.1", "1.2", "1.9", "1.10"]);
    assert_eq!(total, 4);

    let page = StoryFilter { limit: 2, offset: 1, ..all.clone() };
    let (stories, total) = store.stories(fx.tenant, page).await.unwrap();
    let numbers: Vec<_> = stories.iter().map(|s| s.number.as_str()).collect();
    assert_eq!((numbers, total), (vec!["1.2", "1.9"], 4));

    let in_epic = StoryFilter { epic_id: Some(fx.epic), ..all.clone() };
    assert_eq!(store.stories(fx.tenant, in_epic).await.unwrap().1, 3);

    let story = store.story_by_number(fx.tenant, fx.project, "1.9").await.unwrap().unwrap();
    fx.force_state(story.id, claimed_by(fx.agents[0], &story.state)).await;
    let assigned = StoryFilter { agent_status: Some(AgentStatus::Assigned), ..all.clone() };
    let (stories, total) = store.stories(fx.tenant, assigned).await.unwrap();
    assert_eq!((stories[0].number.as_str(), total), ("1.9", 1));
    let verified = StoryFilter { verified_status: Some(VerifiedStatus::Verified), ..all };
    assert_eq!(store.stories(fx.tenant, verified).await.unwrap().1, 0);
}

pub async fn dependencies_round_trip_and_refuse_self_edges(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let a = fx.story("1.1").await;
    let b = fx.story("1.2").await;
    let edge = DependencyRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        from_id: b.id,
        to_id: a.id,
        created_at: t0(),
    };
    store.commit(vec![WriteOp::InsertStoryDependency(edge.clone())]).await.unwrap();
    let again = DependencyRecord { id: Uuid::now_v7(), ..edge.clone() };
    assert!(matches!(
        store.commit(vec![WriteOp::InsertStoryDependency(again)]).await,
        Err(StoreError::Duplicate { .. })
    ));
    let selfish = DependencyRecord { id: Uuid::now_v7(), to_id: b.id, ..edge.clone() };
    assert!(matches!(store.commit(vec![WriteOp::InsertStoryDependency(selfish)]).await, Err(StoreError::Invariant(_))));
    let epic_b = Uuid::now_v7();
    store.commit(vec![WriteOp::InsertEpic(epic_record(fx.tenant, fx.project, epic_b, 2))]).await.unwrap();
    let epic_edge = DependencyRecord { id: Uuid::now_v7(), from_id: epic_b, to_id: fx.epic, ..edge.clone() };
    store.commit(vec![WriteOp::InsertEpicDependency(epic_edge.clone())]).await.unwrap();
    let deps = store.dependencies(fx.tenant, fx.project).await.unwrap();
    assert_eq!(deps, Dependencies { stories: vec![edge.clone()], epics: vec![epic_edge] });
    store.commit(vec![WriteOp::DeleteStoryDependency { tenant_id: fx.tenant, id: edge.id }]).await.unwrap();
    assert!(store.dependencies(fx.tenant, fx.project).await.unwrap().stories.is_empty());
}

pub async fn evidence_rows_round_trip(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let artifact = ArtifactRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reported_by: "agent".into(),
        reporter_agent_id: Some(fx.agents[0]),
        artifact_type: "commit_diff".into(),
        path: None,
        exists: true,
        details: json!({"commit_sha": "abc123"}),
        created_at: t0(),
    };
    let review = ReviewRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reviewer_agent_id: Some(fx.agents[1]),
        review_type: "standard".into(),
        findings_count: 2,
        fixes_count: 1,
        disproved_count: 1,
        summary: Some("two nits".into()),
        findings: json!({"nits": 2}),
        completed_at: t0(),
        created_at: t0(),
    };
    let verification = NewVerification {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        verifier_agent_id: Some(fx.agents[1]),
        result: "pass".into(),
        summary: Some("all good".into()),
        findings: json!({}),
        review_type: Some("standard".into()),
        created_at: t0(),
    };
    let second = NewVerification { id: Uuid::now_v7(), result: "fail".into(), ..verification.clone() };
    store
        .commit(vec![
            WriteOp::InsertArtifact(artifact.clone()),
            WriteOp::InsertReview(review.clone()),
            WriteOp::InsertVerification(verification.clone()),
        ])
        .await
        .unwrap();
    store.commit(vec![WriteOp::InsertVerification(second.clone())]).await.unwrap();
    assert_eq!(store.artifacts(fx.tenant, story.id).await.unwrap(), vec![artifact]);
    assert_eq!(store.reviews(fx.tenant, story.id).await.unwrap(), vec![review]);
    // The store numbers a story's verdicts as they are written.
    let numbered = vec![verification.numbered(1), second.numbered(2)];
    assert_eq!(store.verifications(fx.tenant, story.id).await.unwrap(), numbered);
    let other = Fixture::new(store.clone()).await;
    assert!(store.artifacts(other.tenant, story.id).await.unwrap().is_empty());
}

pub async fn token_usage_sums_per_story_and_project_within_the_tenant(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let (first, second) = (fx.story("1.1").await, fx.story("1.2").await);
    let usage = |story: &StoryRecord, phase: &str, input: i64, cost: i64| TokenUsageRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        story_id: story.id,
        agent_id: Some(fx.agents[0]),
        phase: phase.into(),
        input_tokens: input,
        output_tokens: input / 10,
        cost_millicents: cost,
        model_name: Some("m".into()),
        created_at: t0(),
    };
    let rows = [
        usage(&first, "implementing", 1000, 7),
        usage(&first, "reviewing", 200, 0),
        usage(&second, "implementing", 5, 1),
    ];
    store.commit(rows.iter().cloned().map(WriteOp::InsertTokenUsage).collect()).await.unwrap();
    assert_eq!(store.token_usage(fx.tenant, first.id).await.unwrap(), rows[..2].to_vec());
    assert_eq!(
        store.project_token_totals(fx.tenant, fx.project).await.unwrap(),
        TokenTotals { reports: 3, input_tokens: 1205, output_tokens: 120, cost_millicents: 8 }
    );
    // The database refuses what no agent spent, whatever the service let through.
    let negative = TokenUsageRecord { output_tokens: -1, ..usage(&first, "implementing", 1, 0) };
    assert!(store.commit(vec![WriteOp::InsertTokenUsage(negative)]).await.is_err());
    let other = Fixture::new(store.clone()).await;
    assert!(store.token_usage(other.tenant, first.id).await.unwrap().is_empty());
    assert_eq!(store.project_token_totals(other.tenant, fx.project).await.unwrap(), TokenTotals::default());
}

pub async fn orchestrator_state_is_versioned(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let record = OrchestratorStateRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        state_key: "main".into(),
        state_data: json!({"phase": "one"}),
        version: 1,
        created_at: t0(),
        updated_at: t0(),
    };
    let save =
        |record: OrchestratorStateRecord, expected_version| WriteOp::SaveOrchestratorState { record, expected_version };
    store.commit(vec![save(record.clone(), 0)]).await.unwrap();
    assert!(matches!(store.commit(vec![save(record.clone(), 0)]).await, Err(StoreError::VersionConflict { .. })));
    let second = OrchestratorStateRecord { state_data: json!({"phase": "two"}), version: 2, ..record.clone() };
    store.commit(vec![save(second.clone(), 1)]).await.unwrap();
    assert!(matches!(store.commit(vec![save(second.clone(), 1)]).await, Err(StoreError::VersionConflict { .. })));
    let loaded = store.orchestrator_state(fx.tenant, fx.project, "main").await.unwrap().unwrap();
    assert_eq!((loaded.version, loaded.state_data), (2, json!({"phase": "two"})));
    assert!(store.orchestrator_state(fx.tenant, fx.project, "other").await.unwrap().is_none());
}

pub async fn events_page_by_cursor_time_and_filters(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let other = Fixture::new(store.clone()).await;
    let entity = Uuid::now_v7();
    let mut cursors = Vec::new();
    for minute in 0..5 {
        let project = if minute % 2 == 0 { Some(fx.project) } else { None };
        let at = t0() + Duration::minutes(minute);
        let action = if minute == 4 { "verified" } else { "status_changed" };
        let got =
            store.commit(vec![WriteOp::AppendEvent(event(fx.tenant, project, entity, action, at))]).await.unwrap();
        cursors.extend(got);
    }
    store
        .commit(vec![WriteOp::AppendEvent(event(other.tenant, Some(other.project), entity, "x", t0()))])
        .await
        .unwrap();
    assert_eq!(cursors.len(), 5);
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors rise: {cursors:?}");

    let all = EventFilter { limit: 100, ..EventFilter::default() };
    let events = store.events(fx.tenant, all.clone()).await.unwrap();
    assert_eq!(events.iter().map(|e| e.cursor).collect::<Vec<_>>(), cursors);
    assert_eq!(events[0].event.actor.role, Some(Role::Orchestrator));

    let after = EventFilter { after_cursor: Some(cursors[2]), ..all.clone() };
    assert_eq!(store.events(fx.tenant, after).await.unwrap().len(), 2);
    let since = EventFilter { after_time: Some(t0() + Duration::minutes(1)), ..all.clone() };
    assert_eq!(store.events(fx.tenant, since).await.unwrap().len(), 3);
    let in_project = EventFilter { project_id: Some(fx.project), ..all.clone() };
    assert_eq!(store.events(fx.tenant, in_project).await.unwrap().len(), 3);
    let verified = EventFilter { action: Some("verified".into()), ..all.clone() };
    assert_eq!(store.events(fx.tenant, verified).await.unwrap().len(), 1);
    let limited = EventFilter { limit: 2, ..all.clone() };
    assert_eq!(store.events(fx.tenant, limited).await.unwrap().len(), 2);
    let newest = EventFilter { newest_first: true, limit: 1, ..all };
    assert_eq!(store.events(fx.tenant, newest).await.unwrap()[0].cursor, cursors[4]);
}

/// The audit chain's links: one writer per (tenant, cursor), the tip and the tenants behind
/// it read by index, and a batch that repeats a written link lands nothing.
pub async fn audit_links_are_written_once_per_event_and_never_rewritten(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let other = Fixture::new(store.clone()).await;
    let entity = Uuid::now_v7();
    let mut cursors = Vec::new();
    for minute in 0..3 {
        let at = t0() + Duration::minutes(minute);
        cursors
            .extend(store.commit(vec![WriteOp::AppendEvent(event(fx.tenant, None, entity, "x", at))]).await.unwrap());
    }
    store.commit(vec![WriteOp::AppendEvent(event(other.tenant, None, entity, "x", t0()))]).await.unwrap();
    let behind = store.tenants_behind_audit_chain(100).await.unwrap();
    assert!(behind.contains(&fx.tenant) && behind.contains(&other.tenant), "{behind:?}");
    assert_eq!(store.audit_tip(fx.tenant).await.unwrap(), None);

    let link = |cursor: i64, byte: u8, seal: Option<AuditSeal>| AuditLink {
        tenant_id: fx.tenant,
        cursor,
        event_id: Uuid::now_v7(),
        prev_hash: vec![byte; 32],
        hash: vec![byte + 1; 32],
        seal,
    };
    let seal = AuditSeal { key_id: "k1".into(), signature: "c2ln".into(), sealed_at: t0() };
    let written = vec![link(cursors[0], 0, None), link(cursors[1], 1, Some(seal.clone()))];
    store.commit(vec![WriteOp::AppendAuditLinks(written.clone())]).await.unwrap();
    assert_eq!(store.audit_links(fx.tenant, None, 10).await.unwrap(), written);
    assert_eq!(store.audit_links(fx.tenant, Some(cursors[0]), 10).await.unwrap(), written[1..].to_vec());
    assert_eq!(store.audit_tip(fx.tenant).await.unwrap().as_ref(), written.last());
    assert_eq!(store.audit_links(other.tenant, None, 10).await.unwrap(), Vec::new(), "scoped by tenant");

    // A second server chaining the same events: the whole batch is refused, nothing lands.
    let racing = vec![link(cursors[2], 7, None), link(cursors[1], 9, None)];
    let refused = store.commit(vec![WriteOp::AppendAuditLinks(racing)]).await.unwrap_err();
    assert!(matches!(refused, StoreError::Duplicate { .. }), "{refused:?}");
    assert_eq!(store.audit_links(fx.tenant, None, 10).await.unwrap(), written);
    assert!(store.tenants_behind_audit_chain(100).await.unwrap().contains(&fx.tenant));
    store.commit(vec![WriteOp::AppendAuditLinks(vec![link(cursors[2], 2, None)])]).await.unwrap();
    let behind = store.tenants_behind_audit_chain(100).await.unwrap();
    assert!(!behind.contains(&fx.tenant) && behind.contains(&other.tenant), "{behind:?}");
}

pub async fn database_refuses_self_review_and_self_verification(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let implementer = fx.agents[0];
    let reported = StoryState {
        agent_status: AgentStatus::ReportedDone,
        assigned_agent_id: Some(implementer),
        reported_done_at: Some(t0()),
        claim_epoch: 1,
        ..StoryState::default()
    };
    fx.force_state(story.id, reported).await;
    let self_review = ReviewRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reviewer_agent_id: Some(implementer),
        review_type: "standard".into(),
        findings_count: 0,
        fixes_count: 0,
        disproved_count: 0,
        summary: None,
        findings: json!({}),
        completed_at: t0(),
        created_at: t0(),
    };
    let refused = store.commit(vec![WriteOp::InsertReview(self_review)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfReview)));
    let self_verify = NewVerification {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        verifier_agent_id: Some(implementer),
        result: "pass".into(),
        summary: None,
        findings: json!({}),
        review_type: None,
        created_at: t0(),
    };
    let refused = store.commit(vec![WriteOp::InsertVerification(self_verify)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfVerify)));
    // Verified is only reachable from reported_done (even with the event naming its verifier).
    let fresh = fx.story("1.2").await;
    let skip = StoryState { verified_status: VerifiedStatus::Verified, ..StoryState::default() };
    let refused = store.commit(vec![transition(&fresh, skip, None), verified_event(fx.tenant, fresh.id)]).await;
    assert!(matches!(refused, Err(StoreError::Invariant(_))), "{refused:?}");
    // Two assignees cannot be expressed; one assignee only while claimed.
    let orphan = StoryState { agent_status: AgentStatus::Implementing, ..StoryState::default() };
    assert!(matches!(store.commit(vec![transition(&fresh, orphan, None)]).await, Err(StoreError::Invariant(_))));
}

pub async fn counters_only_rise_in_the_database(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let raised = StoryState { iteration_count: 2, claim_epoch: 3, ..StoryState::default() };
    fx.force_state(story.id, raised).await;
    let current = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    let lowered = StoryState { iteration_count: 1, ..current.state.clone() };
    assert!(matches!(store.commit(vec![transition(&current, lowered, None)]).await, Err(StoreError::Invariant(_))));
    let epoch_back = StoryState { claim_epoch: 2, ..current.state.clone() };
    assert!(matches!(store.commit(vec![transition(&current, epoch_back, None)]).await, Err(StoreError::Invariant(_))));
}

pub async fn deleting_an_epic_removes_its_stories(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    store.commit(vec![WriteOp::DeleteEpic { tenant_id: fx.tenant, id: fx.epic }]).await.unwrap();
    assert!(store.story(fx.tenant, story.id).await.unwrap().is_none());
    assert!(matches!(
        store.commit(vec![WriteOp::DeleteEpic { tenant_id: fx.tenant, id: fx.epic }]).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn expired_claims_are_found_across_tenants(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let other = Fixture::new(store.clone()).await;
    let expired = fx.story("1.1").await;
    let alive = fx.story("1.2").await;
    let elsewhere = other.story("1.1").await;
    let lease = |minutes| StoryState {
        agent_status: AgentStatus::Implementing,
        assigned_agent_id: Some(fx.agents[0]),
        claim_epoch: 1,
        lease_expires_at: Some(t0() + Duration::minutes(minutes)),
        ..StoryState::default()
    };
    fx.force_state(expired.id, lease(1)).await;
    fx.force_state(alive.id, lease(60)).await;
    other.force_state(elsewhere.id, lease(2)).await;
    let every_tenant =
        |limit| ExpiredClaims { now: t0() + Duration::minutes(5), project: None, unannounced_only: true, limit };
    let found = store.expired_claims(every_tenant(100)).await.unwrap();
    let ids: Vec<Uuid> = found.iter().map(|s| s.id).collect();
    assert!(ids.contains(&expired.id) && ids.contains(&elsewhere.id), "{ids:?}");
    assert!(!ids.contains(&alive.id));
    let first_only = store.expired_claims(every_tenant(1)).await.unwrap();
    assert_eq!(first_only.len(), 1);
    // One project's: the other tenant's expired claim is not among them.
    let mine = ExpiredClaims { project: Some((fx.tenant, fx.project)), ..every_tenant(100) };
    let ids_of = |found: Vec<StoryRecord>| found.iter().map(|s| s.id).collect::<Vec<Uuid>>();
    assert_eq!(ids_of(store.expired_claims(mine).await.unwrap()), vec![expired.id]);
    // Once announced as stale the sweeper no longer sees it; a reclaim still does.
    fx.force_state(expired.id, StoryState { stale_since: Some(t0() + Duration::minutes(2)), ..lease(1) }).await;
    let unannounced = ids_of(store.expired_claims(every_tenant(100)).await.unwrap());
    assert!(!unannounced.contains(&expired.id) && unannounced.contains(&elsewhere.id), "{unannounced:?}");
    let reclaimable = ExpiredClaims { unannounced_only: false, ..mine };
    assert_eq!(ids_of(store.expired_claims(reclaimable).await.unwrap()), vec![expired.id]);
}

pub async fn skill_versions_are_unique_and_ordered(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let other = Fixture::new(store.clone()).await;
    let version = |name: &str, version: i64| SkillVersionRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        name: name.into(),
        version,
        prompt_text: format!("{name} v{version}"),
        changelog: Some("sharper".into()),
        created_by: "user:alice".into(),
        created_at: t0(),
    };
    store
        .commit(vec![
            WriteOp::InsertSkillVersion(version("loopctl:review", 3)),
            WriteOp::InsertSkillVersion(version("loopctl:review", 2)),
            WriteOp::InsertSkillVersion(version("team:lint", 1)),
        ])
        .await
        .unwrap();
    assert!(matches!(
        store.commit(vec![WriteOp::InsertSkillVersion(version("loopctl:review", 2))]).await,
        Err(StoreError::Duplicate { .. })
    ));
    let review = store.skill_versions(fx.tenant, Some("loopctl:review")).await.unwrap();
    assert_eq!(review.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(review[1].prompt_text, "loopctl:review v3");
    assert_eq!(store.skill_versions(fx.tenant, None).await.unwrap().len(), 3);
    assert!(store.skill_versions(other.tenant, None).await.unwrap().is_empty());

    let story = fx.story("1.1").await;
    let result = SkillResultRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        name: "loopctl:review".into(),
        version: 3,
        story_id: Some(story.id),
        result: "pass".into(),
        metrics: json!({"findings_count": 2}),
        created_at: t0(),
    };
    store.commit(vec![WriteOp::InsertSkillResult(result.clone())]).await.unwrap();
    assert_eq!(store.skill_results(fx.tenant, "loopctl:review").await.unwrap(), vec![result]);
    assert!(store.skill_results(other.tenant, "loopctl:review").await.unwrap().is_empty());
}

pub async fn idempotent_responses_replay_per_caller_and_expire(store: Arc<dyn Store>) {
    let answer = |scope: u8, body: &str, minutes: i64| IdempotentResponse {
        scope: vec![scope; 32],
        key: "retry-1".into(),
        method: "POST".into(),
        path: "/api/v1/stories/x/report".into(),
        status: 200,
        body: body.into(),
        created_at: t0() + Duration::minutes(minutes),
    };
    store.commit(vec![WriteOp::SaveIdempotentResponse(answer(1, "first", 0))]).await.unwrap();
    // A second answer under the same key is ignored: the first one is what gets replayed.
    store.commit(vec![WriteOp::SaveIdempotentResponse(answer(1, "second", 1))]).await.unwrap();
    store.commit(vec![WriteOp::SaveIdempotentResponse(answer(2, "other caller", 10))]).await.unwrap();
    assert_eq!(store.idempotent_response(&[1; 32], "retry-1").await.unwrap(), Some(answer(1, "first", 0)));
    assert_eq!(store.idempotent_response(&[2; 32], "retry-1").await.unwrap().unwrap().body, "other caller");
    assert_eq!(store.idempotent_response(&[3; 32], "retry-1").await.unwrap(), None);
    store.commit(vec![WriteOp::PurgeIdempotentResponses { before: t0() + Duration::minutes(5) }]).await.unwrap();
    assert_eq!(store.idempotent_response(&[1; 32], "retry-1").await.unwrap(), None);
    assert!(store.idempotent_response(&[2; 32], "retry-1").await.unwrap().is_some());
}

/// The in-flight marker is what makes concurrent requests with one key run once: of many
/// concurrent begins exactly one succeeds, the others see `Duplicate` until the answer is
/// kept (then they replay it) or the marker is abandoned (then one of them may begin).
pub async fn an_idempotency_key_begins_once_until_answered_or_abandoned(store: Arc<dyn Store>) {
    // Scopes of this case only: other cases may share the database.
    let scope = Uuid::now_v7().as_bytes().to_vec();
    let other_scope = Uuid::now_v7().as_bytes().to_vec();
    // Whole seconds, so the stored times compare equal; after the other case's purge horizon.
    let now = t0() + Duration::days(1);
    let marker = |scope: &[u8], key: &str, at: DateTime<Utc>| IdempotentResponse {
        scope: scope.to_vec(),
        key: key.into(),
        method: "POST".into(),
        path: "/api/v1/projects".into(),
        status: IdempotentResponse::IN_FLIGHT,
        body: String::new(),
        created_at: at,
    };
    let begin = |marker: IdempotentResponse| {
        let store = store.clone();
        async move {
            let op = WriteOp::BeginIdempotentRequest { marker, stale_before: now - Duration::minutes(2) };
            store.commit(vec![op]).await
        }
    };

    let racers: Vec<_> = (0..10).map(|_| tokio::spawn(begin(marker(&scope, "k", now)))).collect();
    let mut begun = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => begun += 1,
            Err(StoreError::Duplicate { .. }) => {}
            Err(other) => panic!("a second begin is a Duplicate, not {other:?}"),
        }
    }
    assert_eq!(begun, 1, "exactly one of ten concurrent requests begins");
    assert!(store.idempotent_response(&scope, "k").await.unwrap().unwrap().in_flight());
    // Another caller's key of the same name is its own pair.
    begin(marker(&other_scope, "k", now)).await.unwrap();

    // The answer completes the marker; a later answer never replaces it; nothing begins again.
    let answer = IdempotentResponse { status: 201, body: "{\"project\":1}".into(), ..marker(&scope, "k", now) };
    store.commit(vec![WriteOp::SaveIdempotentResponse(answer.clone())]).await.unwrap();
    let late = IdempotentResponse { body: "late".into(), ..answer.clone() };
    store.commit(vec![WriteOp::SaveIdempotentResponse(late)]).await.unwrap();
    assert_eq!(store.idempotent_response(&scope, "k").await.unwrap(), Some(answer.clone()));
    assert!(matches!(begin(marker(&scope, "k", now)).await, Err(StoreError::Duplicate { .. })));
    let abandon = |scope: &[u8]| WriteOp::AbandonIdempotentRequest { scope: scope.to_vec(), key: "k".into() };
    store.commit(vec![abandon(&scope)]).await.unwrap();
    assert_eq!(store.idempotent_response(&scope, "k").await.unwrap(), Some(answer), "abandon keeps an answer");

    // An abandoned marker frees the pair at once; a stale one (its server died) is replaced.
    store.commit(vec![abandon(&other_scope)]).await.unwrap();
    assert_eq!(store.idempotent_response(&other_scope, "k").await.unwrap(), None);
    begin(marker(&other_scope, "stale", now - Duration::minutes(10))).await.unwrap();
    let fresh = marker(&other_scope, "stale", now);
    begin(fresh.clone()).await.unwrap();
    assert_eq!(store.idempotent_response(&other_scope, "stale").await.unwrap(), Some(fresh));
    assert!(matches!(begin(marker(&other_scope, "stale", now)).await, Err(StoreError::Duplicate { .. })));
}

/// Forty requests answered at the same moment (a store may write them in one statement):
/// each answer completes its own marker, and the one whose pair holds a kept answer already
/// leaves that answer as it was.
pub async fn answers_completed_together_each_land_on_their_own_marker(store: Arc<dyn Store>) {
    const REQUESTS: usize = 40;
    let scope = Uuid::now_v7().as_bytes().to_vec();
    let now = t0() + Duration::days(1);
    let row = |key: usize, status: u16, body: String| IdempotentResponse {
        scope: scope.clone(),
        key: format!("k{key}"),
        method: "POST".into(),
        path: format!("/api/v1/stories/{key}/claim"),
        status,
        body,
        created_at: now,
    };
    for key in 0..REQUESTS {
        let marker = row(key, IdempotentResponse::IN_FLIGHT, String::new());
        let op = WriteOp::BeginIdempotentRequest { marker, stale_before: now - Duration::minutes(2) };
        store.commit(vec![op]).await.unwrap();
    }
    let kept = row(0, 200, "{\"kept\":true}".into());
    store.commit(vec![WriteOp::SaveIdempotentResponse(kept.clone())]).await.unwrap();
    let saves: Vec<_> = (0..REQUESTS)
        .map(|key| {
            let (store, answer) = (store.clone(), row(key, 200, format!("{{\"answer\":{key}}}")));
            tokio::spawn(async move { store.commit(vec![WriteOp::SaveIdempotentResponse(answer)]).await })
        })
        .collect();
    for save in saves {
        save.await.unwrap().unwrap();
    }
    assert_eq!(store.idempotent_response(&scope, "k0").await.unwrap(), Some(kept), "a kept answer stays");
    for key in 1..REQUESTS {
        let stored = store.idempotent_response(&scope, &format!("k{key}")).await.unwrap();
        assert_eq!(stored, Some(row(key, 200, format!("{{\"answer\":{key}}}"))));
    }
}

/// Ten copies of one request race ten other requests, each batch led by its marker (as the
/// service commits them): one copy applies, nine are the `Duplicate` and leave no write
/// behind, and the other requests, committed beside them, all stand.
pub async fn a_batch_that_loses_its_marker_applies_nothing_and_spares_its_neighbours(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let scope = Uuid::now_v7().as_bytes().to_vec();
    let now = t0() + Duration::days(1);
    let batch = |key: &str, entity: Uuid| {
        let marker = IdempotentResponse {
            scope: scope.clone(),
            key: key.into(),
            method: "POST".into(),
            path: "/api/v1/stories/1.1/report".into(),
            status: IdempotentResponse::IN_FLIGHT,
            body: String::new(),
            created_at: now,
        };
        vec![
            WriteOp::BeginIdempotentRequest { marker, stale_before: now - Duration::minutes(2) },
            WriteOp::AppendEvent(event(fx.tenant, None, entity, "reported", now)),
        ]
    };
    let copies_entity = Uuid::now_v7();
    let mut racers = Vec::new();
    for i in 0..20 {
        let ops = if i % 2 == 0 { batch("copied", copies_entity) } else { batch(&format!("own-{i}"), Uuid::now_v7()) };
        let store = store.clone();
        racers.push(tokio::spawn(async move { (i % 2 == 0, store.commit(ops).await) }));
    }
    let (mut applied, mut duplicates) = (0, 0);
    for racer in racers {
        match racer.await.unwrap() {
            (true, Ok(_)) => applied += 1,
            (true, Err(StoreError::Duplicate { .. })) => duplicates += 1,
            (false, Ok(_)) => {}
            (copy, outcome) => panic!("copy {copy}: unexpected {outcome:?}"),
        }
    }
    assert_eq!((applied, duplicates), (1, 9), "one copy applies, nine are refused");
    let events = |entity: Option<Uuid>| EventFilter { entity_id: entity, limit: -1, ..EventFilter::default() };
    assert_eq!(
        store.events(fx.tenant, events(Some(copies_entity))).await.unwrap().len(),
        1,
        "refused copies left no event"
    );
    let reported = store.events(fx.tenant, events(None)).await.unwrap();
    assert_eq!(reported.iter().filter(|e| e.event.action == "reported").count(), 11, "every other request stands");
}

pub async fn dispatches_round_trip_and_revoke_their_token(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let dispatch_id = Uuid::now_v7();
    let key = ApiKeyRecord {
        id: Uuid::now_v7(),
        tenant_id: Some(fx.tenant),
        name: "dispatch-impl".into(),
        key_hash: vec![9; 32],
        key_prefix: "lc_dispa".into(),
        role: Role::Agent,
        agent_id: Some(fx.agents[1]),
        expires_at: Some(t0() + Duration::hours(1)),
        revoked_at: None,
        last_used_at: None,
        created_at: t0(),
        scope: Some(KeyScope { dispatch_id, story_id: story.id, role: DispatchRole::Implementer }),
    };
    let dispatch = DispatchRecord {
        id: dispatch_id,
        tenant_id: fx.tenant,
        parent_dispatch_id: None,
        dispatched_by_key_id: Uuid::now_v7(),
        dispatched_by_agent_id: Some(fx.agents[0]),
        agent_id: fx.agents[1],
        api_key_id: key.id,
        story_id: story.id,
        role: DispatchRole::Implementer,
        lineage_path: vec![dispatch_id],
        expires_at: t0() + Duration::hours(1),
        revoked_at: None,
        created_at: t0(),
    };
    store.commit(vec![WriteOp::InsertApiKey(key.clone()), WriteOp::InsertDispatch(dispatch.clone())]).await.unwrap();
    assert_eq!(store.api_key_by_hash(&[9; 32]).await.unwrap(), Some(key.clone()));
    assert_eq!(store.dispatch(fx.tenant, dispatch_id).await.unwrap(), Some(dispatch.clone()));
    assert_eq!(store.dispatches(fx.tenant, Some(story.id)).await.unwrap(), vec![dispatch.clone()]);
    let other = Fixture::new(store.clone()).await;
    assert!(store.dispatch(other.tenant, dispatch_id).await.unwrap().is_none());
    let revoke =
        |tenant| WriteOp::RevokeDispatch { tenant_id: tenant, id: dispatch_id, at: t0() + Duration::minutes(1) };
    assert!(matches!(store.commit(vec![revoke(other.tenant)]).await, Err(StoreError::NotFound { .. })));
    store.commit(vec![revoke(fx.tenant)]).await.unwrap();
    let revoked = store.dispatch(fx.tenant, dispatch_id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(t0() + Duration::minutes(1)));
    let token = store.api_key_by_hash(&[9; 32]).await.unwrap().unwrap();
    assert_eq!(token.revoked_at, Some(t0() + Duration::minutes(1)));
    // A reviewer dispatch to the story's implementer is refused by the database itself.
    let claimed = StoryState {
        agent_status: AgentStatus::Implementing,
        assigned_agent_id: Some(fx.agents[1]),
        claim_epoch: 1,
        ..StoryState::default()
    };
    fx.force_state(story.id, claimed).await;
    let sneaky = DispatchRecord { id: Uuid::now_v7(), role: DispatchRole::Reviewer, lineage_path: vec![], ..dispatch };
    let refused = store.commit(vec![WriteOp::InsertDispatch(sneaky)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfReview)));
}

/// Code that bypasses the service layer still cannot write a self-verification.
pub async fn database_refuses_a_self_verified_story_row(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let implementer = fx.agents[0];
    let reported = StoryState {
        agent_status: AgentStatus::ReportedDone,
        assigned_agent_id: Some(implementer),
        reported_done_at: Some(t0()),
        claim_epoch: 1,
        ..StoryState::default()
    };
    fx.force_state(story.id, reported.clone()).await;
    let current = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    let self_verified = StoryState {
        verified_status: VerifiedStatus::Verified,
        verified_at: Some(t0()),
        verified_by_agent_id: Some(implementer),
        ..reported.clone()
    };
    // With the event naming a verifier, so that only the self-verification is wrong.
    let refused =
        store.commit(vec![transition(&current, self_verified, None), verified_event(fx.tenant, story.id)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfVerify)));
    // Verified by someone else is fine.
    let verified = StoryState {
        verified_status: VerifiedStatus::Verified,
        verified_at: Some(t0()),
        verified_by_agent_id: Some(fx.agents[1]),
        ..reported
    };
    store.commit(vec![transition(&current, verified, None), verified_event(fx.tenant, story.id)]).await.unwrap();
    // Straight from pending (no backfill shape: it has an assignee) to verified is refused too.
    let other = fx.story("1.2").await;
    let claimed = StoryState {
        agent_status: AgentStatus::Implementing,
        assigned_agent_id: Some(implementer),
        claim_epoch: 1,
        ..StoryState::default()
    };
    fx.force_state(other.id, claimed.clone()).await;
    let current = store.story(fx.tenant, other.id).await.unwrap().unwrap();
    let skipped = StoryState {
        agent_status: AgentStatus::ReportedDone,
        verified_status: VerifiedStatus::Verified,
        verified_by_agent_id: Some(fx.agents[1]),
        ..claimed
    };
    let refused = store.commit(vec![transition(&current, skipped, None), verified_event(fx.tenant, other.id)]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::VerifiedBeforeReport)));
}

pub async fn unverified_blockers_count_story_and_epic_dependencies(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let second_epic = Uuid::now_v7();
    store.commit(vec![WriteOp::InsertEpic(epic_record(fx.tenant, fx.project, second_epic, 2))]).await.unwrap();
    let a = fx.story("1.1").await;
    let b = fx.story("1.2").await;
    let c = story_record(fx.tenant, fx.project, second_epic, "2.1");
    store.commit(vec![WriteOp::InsertStory(c.clone())]).await.unwrap();
    let edge = |from: Uuid, to: Uuid| DependencyRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        from_id: from,
        to_id: to,
        created_at: t0(),
    };
    store
        .commit(vec![
            WriteOp::InsertStoryDependency(edge(c.id, a.id)),
            WriteOp::InsertEpicDependency(edge(second_epic, fx.epic)),
        ])
        .await
        .unwrap();
    // 2.1 waits for 1.1 directly and for all of epic 1 (1.1 again, and 1.2): two stories.
    assert_eq!(store.unverified_blockers(fx.tenant, c.id).await.unwrap(), 2);
    assert_eq!(store.unverified_blockers(fx.tenant, a.id).await.unwrap(), 0);
    let waits = |id: Uuid| {
        let store = store.clone();
        async move { store.story_and_wait(fx.tenant, id).await.unwrap().map(|(story, waits)| (story.id, waits)) }
    };
    assert_eq!(waits(c.id).await, Some((c.id, true)), "the one read a claim makes agrees");
    assert_eq!(waits(a.id).await, Some((a.id, false)));
    assert_eq!(waits(Uuid::now_v7()).await, None);
    let verified = StoryState {
        agent_status: AgentStatus::ReportedDone,
        verified_status: VerifiedStatus::Verified,
        ..StoryState::default()
    };
    fx.force_state(b.id, verified.clone()).await;
    assert_eq!(store.unverified_blockers(fx.tenant, c.id).await.unwrap(), 1);
    assert_eq!(waits(c.id).await, Some((c.id, true)));
    fx.force_state(a.id, verified).await;
    assert_eq!(store.unverified_blockers(fx.tenant, c.id).await.unwrap(), 0);
    assert_eq!(waits(c.id).await, Some((c.id, false)), "free once both epics' stories and its own are verified");
    // Another tenant learns nothing.
    let other = Fixture::new(store.clone()).await;
    assert_eq!(store.unverified_blockers(other.tenant, c.id).await.unwrap(), 0);
}

/// A transition's batch as the HTTP face sends it (its Idempotency-Key marker, evidence, the
/// compare-and-set, its event) applies whole, or, when the marker's pair is taken or the
/// compare-and-set lost, not at all: no event, no evidence, and no marker left to hold up
/// the retry.
pub async fn a_transition_batch_with_its_marker_applies_whole_or_not_at_all(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let scope = Uuid::now_v7().as_bytes().to_vec();
    let now = t0() + Duration::days(1);
    let batch = |key: &str, from: &StoryRecord, agent: Uuid| {
        vec![
            claim_marker(&scope, key, &story, now),
            an_artifact(&fx, &story, now),
            transition(from, claimed_by(agent, &from.state), None),
            WriteOp::AppendEvent(event(fx.tenant, Some(fx.project), story.id, "status_changed", now)),
        ]
    };
    let story_events = || {
        let store = store.clone();
        async move {
            let filter = EventFilter { entity_id: Some(story.id), limit: -1, ..EventFilter::default() };
            store.events(fx.tenant, filter).await.unwrap().len()
        }
    };
    let artifacts = || {
        let store = store.clone();
        async move { store.artifacts(fx.tenant, story.id).await.unwrap().len() }
    };

    let cursors = store.commit(batch("first", &story, fx.agents[0])).await.expect("a batch on a free pair applies");
    assert_eq!(cursors.len(), 1, "the event's cursor");
    let claimed = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!((claimed.lock_version, claimed.state.assigned_agent_id), (story.lock_version + 1, Some(fx.agents[0])));
    assert!(store.idempotent_response(&scope, "first").await.unwrap().is_some(), "the marker is in");
    assert_eq!((story_events().await, artifacts().await), (1, 1));

    // The same pair again, on the current version: refused whole.
    let held = store.commit(batch("first", &claimed, fx.agents[1])).await;
    assert!(matches!(held, Err(StoreError::Duplicate { .. })), "{held:?}");
    // A free pair on the old version: refused whole, and the pair stays free.
    let stale = store.commit(batch("second", &story, fx.agents[1])).await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { .. })), "{stale:?}");
    assert!(store.idempotent_response(&scope, "second").await.unwrap().is_none(), "no marker outlives its batch");
    let gone = StoryRecord { id: Uuid::now_v7(), ..story.clone() };
    let mut missing = batch("third", &gone, fx.agents[1]);
    missing.remove(1);
    let missing = store.commit(missing).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    assert!(store.idempotent_response(&scope, "third").await.unwrap().is_none());
    let after = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(after, claimed, "no refused batch touched the story");
    assert_eq!((story_events().await, artifacts().await), (1, 1), "nor left an event or evidence");

    // The retry with the free pair, on the version it reads now, applies.
    store.commit(batch("second", &claimed, fx.agents[1])).await.expect("the retry applies");
    assert_eq!((story_events().await, artifacts().await), (2, 2));
}

/// The in-flight marker of a claim of `story` under (`scope`, `key`), as the HTTP face writes it.
fn claim_marker(scope: &[u8], key: &str, story: &StoryRecord, now: DateTime<Utc>) -> WriteOp {
    WriteOp::BeginIdempotentRequest {
        marker: IdempotentResponse {
            scope: scope.to_vec(),
            key: key.into(),
            method: "POST".into(),
            path: format!("/api/v1/stories/{}/claim", story.id),
            status: IdempotentResponse::IN_FLIGHT,
            body: String::new(),
            created_at: now,
        },
        stale_before: now - Duration::minutes(2),
    }
}

/// A row of evidence for `story`: a commit diff the first agent reported.
fn an_artifact(fx: &Fixture, story: &StoryRecord, now: DateTime<Utc>) -> WriteOp {
    WriteOp::InsertArtifact(ArtifactRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reported_by: "agent".into(),
        reporter_agent_id: Some(fx.agents[0]),
        artifact_type: "commit_diff".into(),
        path: None,
        exists: true,
        details: json!({}),
        created_at: now,
    })
}

/// Transition batches committed at once (so a store that commits in groups takes them
/// together): eight race for one story and one each for eight others, every batch with its
/// marker, evidence row and event. One of the eight racers wins; the others leave no marker,
/// evidence or event, and none of them undoes a neighbour's batch.
pub async fn racing_transition_batches_leave_each_winner_whole_and_each_loser_without_a_trace(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let hot = fx.story("1.1").await;
    let mut calm = Vec::new();
    for i in 2..10 {
        calm.push(fx.story(&format!("1.{i}")).await);
    }
    let scope = Uuid::now_v7().as_bytes().to_vec();
    let now = t0() + Duration::days(1);
    let batch = |key: String, story: &StoryRecord| {
        vec![
            claim_marker(&scope, &key, story, now),
            an_artifact(&fx, story, now),
            transition(story, claimed_by(fx.agents[0], &story.state), None),
            WriteOp::AppendEvent(event(fx.tenant, Some(fx.project), story.id, "status_changed", now)),
        ]
    };
    let mut racers = Vec::new();
    for i in 0..8 {
        let (store, ops) = (store.clone(), batch(format!("hot-{i}"), &hot));
        racers.push(tokio::spawn(async move { store.commit(ops).await }));
    }
    let mut neighbours = Vec::new();
    for (i, story) in calm.iter().enumerate() {
        let (store, ops) = (store.clone(), batch(format!("calm-{i}"), story));
        neighbours.push(tokio::spawn(async move { store.commit(ops).await }));
    }
    let mut winners = Vec::new();
    for (i, racer) in racers.into_iter().enumerate() {
        match racer.await.unwrap() {
            Ok(cursors) => winners.push((i, cursors)),
            Err(StoreError::VersionConflict { .. }) => {}
            Err(other) => panic!("a racer that lost is told VersionConflict, not {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one of eight racers for a story wins: {winners:?}");
    let (winner, cursors) = &winners[0];
    assert_eq!(cursors.len(), 1, "the winner is answered its event's cursor");
    for neighbour in neighbours {
        assert_eq!(neighbour.await.unwrap().expect("a batch on a story of its own applies").len(), 1);
    }

    for (i, story) in std::iter::once(&hot).chain(&calm).enumerate() {
        let now_at = store.story(fx.tenant, story.id).await.unwrap().unwrap();
        assert_eq!(now_at.lock_version, story.lock_version + 1, "story {i} moved once");
        let filter = EventFilter { entity_id: Some(story.id), limit: -1, ..EventFilter::default() };
        assert_eq!(store.events(fx.tenant, filter).await.unwrap().len(), 1, "story {i} has one event");
        assert_eq!(store.artifacts(fx.tenant, story.id).await.unwrap().len(), 1, "story {i} has one artifact");
    }
    for i in 0..8 {
        let kept = store.idempotent_response(&scope, &format!("hot-{i}")).await.unwrap();
        assert_eq!(kept.is_some(), i == *winner, "only the winner's marker stays (racer {i})");
    }
}

/// Every edit op writes what it says and nothing else, and reads back as written.
pub async fn edits_of_tenants_agents_projects_epics_and_stories_round_trip(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let later = t0() + Duration::hours(1);
    let tenant = store.tenant(fx.tenant).await.unwrap().unwrap();
    let tenant = TenantRecord { name: "Acme, renamed".into(), settings: json!({"x": 1}), updated_at: later, ..tenant };
    let agent = store.agent(fx.tenant, fx.agents[0]).await.unwrap().unwrap();
    let agent = AgentRecord { name: "renamed".into(), metadata: json!({"m": true}), updated_at: later, ..agent };
    let project = store.project(fx.tenant, fx.project).await.unwrap().unwrap();
    let project = ProjectRecord { description: Some("now described".into()), updated_at: later, ..project };
    let epic = store.epic(fx.tenant, fx.epic).await.unwrap().unwrap();
    let epic = EpicRecord { title: "Retitled".into(), metadata: json!({"e": 2}), updated_at: later, ..epic };
    let story = fx.story("1.1").await;
    let edited = StoryRecord { description: Some("described".into()), updated_at: later, ..story.clone() };
    store
        .commit(vec![
            WriteOp::UpdateTenant(tenant.clone()),
            WriteOp::UpdateAgent(agent.clone()),
            WriteOp::UpdateProject(project.clone()),
            WriteOp::UpdateEpic(epic.clone()),
            WriteOp::UpdateStoryContent(edited.clone()),
        ])
        .await
        .expect("every edit applies");
    assert_eq!(store.tenant(fx.tenant).await.unwrap(), Some(tenant));
    assert_eq!(store.agent(fx.tenant, fx.agents[0]).await.unwrap(), Some(agent));
    assert_eq!(store.project(fx.tenant, fx.project).await.unwrap(), Some(project));
    assert_eq!(store.epic(fx.tenant, fx.epic).await.unwrap(), Some(epic));
    let read = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(read, StoryRecord { lock_version: story.lock_version + 1, ..edited }, "the version moved with it");
}

/// An edit of a story's content moves its version, so a transition decided on the old
/// content (a contract naming the old title, a verify of the old criteria) misses and is
/// decided again.
pub async fn a_content_edit_moves_the_version_a_transition_was_decided_on(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let edited = StoryRecord { title: "A new title".into(), ..story.clone() };
    store.commit(vec![WriteOp::UpdateStoryContent(edited)]).await.unwrap();
    let after = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!((after.title.as_str(), after.lock_version), ("A new title", story.lock_version + 1));
    let decided_on_old = store.commit(vec![transition(&story, claimed_by(fx.agents[0], &story.state), None)]).await;
    assert!(matches!(decided_on_old, Err(StoreError::VersionConflict { .. })), "{decided_on_old:?}");
    store.commit(vec![transition(&after, claimed_by(fx.agents[0], &after.state), None)]).await.unwrap();
}

/// A claim decided while everything its story depends on was verified applies only while that
/// holds: a dependency added (or reopened) since leaves the version as it was, and the
/// compare-and-set itself looks, on story and epic edges alike.
pub async fn a_transition_decided_unblocked_misses_once_a_dependency_appears(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let first = fx.story("1.1").await;
    let second = fx.story("1.2").await;
    let later_epic = Uuid::now_v7();
    store.commit(vec![WriteOp::InsertEpic(epic_record(fx.tenant, fx.project, later_epic, 2))]).await.unwrap();
    let later = story_record(fx.tenant, fx.project, later_epic, "2.1");
    store.commit(vec![WriteOp::InsertStory(later.clone())]).await.unwrap();
    let later = store.story(fx.tenant, later.id).await.unwrap().unwrap();
    let edge = |from: Uuid, to: Uuid| DependencyRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        from_id: from,
        to_id: to,
        created_at: t0(),
    };
    let unblocked_claim = |of: &StoryRecord| {
        WriteOp::TransitionStory(StoryTransition {
            tenant_id: fx.tenant,
            story_id: of.id,
            expected_version: of.lock_version,
            state: claimed_by(fx.agents[0], &of.state),
            updated_at: t0(),
            guard: None,
            only_if_unblocked: true,
        })
    };
    // Decided free; then 1.1 comes to wait for 1.2, and 2.1's epic for epic 1.
    store
        .commit(vec![
            WriteOp::InsertStoryDependency(edge(first.id, second.id)),
            WriteOp::InsertEpicDependency(edge(later_epic, fx.epic)),
        ])
        .await
        .unwrap();
    for decided in [&first, &later] {
        let late = store.commit(vec![unblocked_claim(decided)]).await;
        assert!(matches!(late, Err(StoreError::VersionConflict { .. })), "{late:?}");
        let unchanged = store.story(fx.tenant, decided.id).await.unwrap().unwrap();
        assert_eq!(unchanged, *decided, "the waiting story was not claimed");
    }
    // 1.2 waits for nothing: its claim applies; without the flag (a start, a report) the
    // edges do not matter.
    store.commit(vec![unblocked_claim(&second)]).await.expect("a free story's claim applies");
    store.commit(vec![transition(&first, claimed_by(fx.agents[0], &first.state), None)]).await.unwrap();
}

pub async fn ready_stories_agree_with_the_dependency_graph(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let early_epic = Uuid::now_v7();
    let mut early = epic_record(fx.tenant, fx.project, early_epic, 2);
    early.position = 0;
    store.commit(vec![WriteOp::InsertEpic(early)]).await.unwrap();
    let numbers = ["1.1", "1.2", "1.3", "1.10", "1.9"];
    let mut stories = Vec::new();
    for number in numbers {
        stories.push(fx.story(number).await);
    }
    let early_story = story_record(fx.tenant, fx.project, early_epic, "2.1");
    store.commit(vec![WriteOp::InsertStory(early_story.clone())]).await.unwrap();
    let edge = |from: Uuid, to: Uuid| DependencyRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        from_id: from,
        to_id: to,
        created_at: t0(),
    };
    // 1.2 waits for 1.1; epic 1 waits for epic 2 (so all of epic 1 waits for 2.1).
    store
        .commit(vec![
            WriteOp::InsertStoryDependency(edge(stories[1].id, stories[0].id)),
            WriteOp::InsertEpicDependency(edge(fx.epic, early_epic)),
        ])
        .await
        .unwrap();
    let now = t0() + Duration::hours(1);
    let ready = |store: Arc<dyn Store>| async move {
        let found = store.ready_stories(frontier(fx.tenant, fx.project, now)).await.unwrap();
        assert_eq!(found.total, Some(found.stories.len() as i64));
        found.stories.iter().map(|s| s.number.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ready(store.clone()).await, vec!["2.1"]);
    fx.force_state(
        early_story.id,
        StoryState {
            agent_status: AgentStatus::ReportedDone,
            verified_status: VerifiedStatus::Verified,
            ..StoryState::default()
        },
    )
    .await;
    // Numeric order within the epic; 1.2 still waits for 1.1.
    assert_eq!(ready(store.clone()).await, vec!["1.1", "1.3", "1.9", "1.10"]);
    // A story locked by escalation, or claimed with a live lease, is not ready; a contracted
    // one waiting for its claim, and a claim whose lease ran out, are.
    fx.force_state(stories[2].id, StoryState { escalated: true, escalation_locked: true, ..StoryState::default() })
        .await;
    let claimed = |minutes| StoryState {
        lease_expires_at: Some(t0() + Duration::minutes(minutes)),
        ..claimed_by(fx.agents[0], &StoryState::default())
    };
    fx.force_state(stories[3].id, claimed(120)).await;
    fx.force_state(stories[4].id, claimed(30)).await;
    let contracted = StoryState {
        agent_status: AgentStatus::Contracted,
        contracted_by_agent_id: Some(fx.agents[0]),
        contracted_at: Some(t0()),
        ..StoryState::default()
    };
    fx.force_state(stories[0].id, contracted).await;
    let found = ready(store.clone()).await;
    assert_eq!(found, vec!["1.1", "1.9"]);
    // The same answer as the pure graph over everything the project holds.
    let (records, graph) = project_graph(&store, &fx, now).await;
    let by_graph: Vec<String> = records.iter().filter(|s| graph.is_ready(s.id)).map(|s| s.number.clone()).collect();
    assert_eq!(found, by_graph);
    let other = Fixture::new(store.clone()).await;
    assert!(store.ready_stories(frontier(other.tenant, fx.project, now)).await.unwrap().stories.is_empty());
    // Pages cut the same order.
    let page = |offset, limit| FrontierQuery { offset, limit, ..frontier(fx.tenant, fx.project, now) };
    let second = store.ready_stories(page(1, 1)).await.unwrap();
    assert_eq!(second.stories.iter().map(|s| s.number.as_str()).collect::<Vec<_>>(), vec!["1.9"]);
    assert_eq!(second.total, Some(2));
}

/// Every story of the fixture's project (work order), and the pure graph over them.
async fn project_graph(
    store: &Arc<dyn Store>,
    fx: &Fixture,
    now: DateTime<Utc>,
) -> (Vec<StoryRecord>, loopctl_core::graph::ProjectGraph) {
    use loopctl_core::graph::{ProjectGraph, StoryNode};
    let all = StoryFilter { project_id: Some(fx.project), limit: 10_000, ..StoryFilter::default() };
    let (records, _) = store.stories(fx.tenant, all).await.unwrap();
    let deps = store.dependencies(fx.tenant, fx.project).await.unwrap();
    let graph = ProjectGraph::new(
        records.iter().map(|s| StoryNode {
            id: s.id,
            epic_id: s.epic_id,
            agent_status: s.state.agent_status,
            verified_status: s.state.verified_status,
            escalation_locked: s.state.escalation_locked,
            lease_expired: s.state.lease_expired(now),
        }),
        &deps.stories.iter().map(|d| (d.from_id, d.to_id)).collect::<Vec<_>>(),
        &deps.epics.iter().map(|d| (d.from_id, d.to_id)).collect::<Vec<_>>(),
    );
    (records, graph)
}

/// A small deterministic generator, so a failing sequence is replayed by its seed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % below.max(1)
    }
}

/// A story's state with its counters kept (they only rise in the database).
fn with_counters(current: &StoryRecord, state: StoryState) -> StoryState {
    StoryState { claim_epoch: current.state.claim_epoch, iteration_count: current.state.iteration_count, ..state }
}

/// Property: after any sequence of story and epic inserts, moves and deletes, edge edits,
/// verdicts, rejections, claims (live and lapsed) and escalation locks, the maintained
/// frontier (`ready_stories`, `blocked_stories`, `blockers`, `project_tally`) answers what
/// the pure dependency graph computes from every row of the project.
pub async fn the_maintained_frontier_equals_the_graph_after_random_edits(store: Arc<dyn Store>) {
    for seed in 1..=8u64 {
        random_edits(store.clone(), seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)).await;
    }
}

async fn random_edits(store: Arc<dyn Store>, seed: u64) {
    let fx = Fixture::new(store.clone()).await;
    let mut dice = Dice(seed);
    let now = t0() + Duration::hours(1);
    let mut epics: Vec<(Uuid, i64)> = vec![(fx.epic, 1)];
    let mut stories: Vec<Uuid> = Vec::new();
    let mut story_edges: Vec<(Uuid, Uuid, Uuid)> = Vec::new();
    let mut epic_edges: Vec<(Uuid, Uuid, Uuid)> = Vec::new();
    let mut next_number = 1;
    let edge = |from: Uuid, to: Uuid| DependencyRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        project_id: fx.project,
        from_id: from,
        to_id: to,
        created_at: t0(),
    };
    for step in 0..60 {
        let pick = |dice: &mut Dice, ids: &[Uuid]| ids[dice.roll(ids.len())];
        match dice.roll(14) {
            0..=2 => {
                let (epic, number) = epics[dice.roll(epics.len())];
                next_number += 1;
                let story = story_record(fx.tenant, fx.project, epic, &format!("{number}.{next_number}"));
                store.commit(vec![WriteOp::InsertStory(story.clone())]).await.unwrap();
                stories.push(story.id);
            }
            3 | 4 if stories.len() > 1 => {
                let (from, to) = (pick(&mut dice, &stories), pick(&mut dice, &stories));
                if from != to && !story_edges.iter().any(|e| e.1 == from && e.2 == to) {
                    let record = edge(from, to);
                    store.commit(vec![WriteOp::InsertStoryDependency(record.clone())]).await.unwrap();
                    story_edges.push((record.id, from, to));
                }
            }
            5 if !story_edges.is_empty() => {
                let (id, _, _) = story_edges.remove(dice.roll(story_edges.len()));
                store.commit(vec![WriteOp::DeleteStoryDependency { tenant_id: fx.tenant, id }]).await.unwrap();
            }
            6 if epics.len() > 1 => {
                let (from, to) = (epics[dice.roll(epics.len())].0, epics[dice.roll(epics.len())].0);
                if from != to && !epic_edges.iter().any(|e| e.1 == from && e.2 == to) {
                    let record = edge(from, to);
                    store.commit(vec![WriteOp::InsertEpicDependency(record.clone())]).await.unwrap();
                    epic_edges.push((record.id, from, to));
                }
            }
            7 if !epic_edges.is_empty() => {
                let (id, _, _) = epic_edges.remove(dice.roll(epic_edges.len()));
                store.commit(vec![WriteOp::DeleteEpicDependency { tenant_id: fx.tenant, id }]).await.unwrap();
            }
            8 | 9 if !stories.is_empty() => {
                // A verdict, a rejection, a claim (live or lapsed), or an escalation lock.
                let id = pick(&mut dice, &stories);
                let current = store.story(fx.tenant, id).await.unwrap().unwrap();
                let state = match dice.roll(5) {
                    0 | 1 => StoryState {
                        agent_status: AgentStatus::ReportedDone,
                        verified_status: VerifiedStatus::Verified,
                        ..StoryState::default()
                    },
                    2 => StoryState { verified_status: VerifiedStatus::Rejected, ..StoryState::default() },
                    3 => StoryState {
                        lease_expires_at: Some(t0() + Duration::minutes([30, 120][dice.roll(2)])),
                        verified_status: VerifiedStatus::Unverified,
                        ..claimed_by(fx.agents[0], &current.state)
                    },
                    _ => StoryState { escalated: true, escalation_locked: true, ..StoryState::default() },
                };
                if state.verified_status == VerifiedStatus::Verified
                    && current.state.agent_status != AgentStatus::ReportedDone
                {
                    let reported = StoryState { agent_status: AgentStatus::ReportedDone, ..StoryState::default() };
                    fx.force_state(id, with_counters(&current, reported)).await;
                }
                let current = store.story(fx.tenant, id).await.unwrap().unwrap();
                fx.force_state(id, with_counters(&current, state)).await;
            }
            10 if !stories.is_empty() => {
                let mut moved = store.story(fx.tenant, pick(&mut dice, &stories)).await.unwrap().unwrap();
                moved.epic_id = epics[dice.roll(epics.len())].0;
                store.commit(vec![WriteOp::UpdateStoryContent(moved)]).await.unwrap();
            }
            11 if !stories.is_empty() => {
                let id = stories.remove(dice.roll(stories.len()));
                store.commit(vec![WriteOp::DeleteStory { tenant_id: fx.tenant, id }]).await.unwrap();
                story_edges.retain(|e| e.1 != id && e.2 != id);
            }
            12 => {
                let number = epics.iter().map(|e| e.1).max().unwrap_or(0) + 1;
                let id = Uuid::now_v7();
                let mut record = epic_record(fx.tenant, fx.project, id, number);
                record.position = i64::try_from(dice.roll(3)).unwrap();
                store.commit(vec![WriteOp::InsertEpic(record)]).await.unwrap();
                epics.push((id, number));
            }
            13 if epics.len() > 2 => {
                let (id, _) = epics.remove(dice.roll(epics.len()));
                store.commit(vec![WriteOp::DeleteEpic { tenant_id: fx.tenant, id }]).await.unwrap();
                epic_edges.retain(|e| e.1 != id && e.2 != id);
                let mut kept = Vec::new();
                for story in stories {
                    if store.story(fx.tenant, story).await.unwrap().is_some() {
                        kept.push(story);
                    }
                }
                stories = kept;
                story_edges.retain(|e| stories.contains(&e.1) && stories.contains(&e.2));
            }
            _ => continue,
        }
        if step % 3 == 0 || step == 59 {
            assert_frontier_matches_graph(&store, &fx, now, seed, step).await;
        }
    }
}

async fn assert_frontier_matches_graph(
    store: &Arc<dyn Store>,
    fx: &Fixture,
    now: DateTime<Utc>,
    seed: u64,
    step: usize,
) {
    let (records, graph) = project_graph(store, fx, now).await;
    let context = format!("seed {seed:#x}, step {step}");
    let ready = store.ready_stories(frontier(fx.tenant, fx.project, now)).await.unwrap();
    let expected: Vec<Uuid> = records.iter().filter(|s| graph.is_ready(s.id)).map(|s| s.id).collect();
    assert_eq!(ready.stories.iter().map(|s| s.id).collect::<Vec<_>>(), expected, "ready, {context}");
    assert_eq!(ready.total, Some(expected.len() as i64), "ready total, {context}");
    let blocked = store.blocked_stories(fx.tenant, fx.project, 0, 10_000).await.unwrap();
    let expected: Vec<Uuid> = records.iter().filter(|s| graph.is_blocked(s.id)).map(|s| s.id).collect();
    assert_eq!(blocked.stories.iter().map(|s| s.id).collect::<Vec<_>>(), expected, "blocked, {context}");
    assert_eq!(blocked.total, Some(expected.len() as i64), "blocked total, {context}");
    let found = store.blockers(fx.tenant, &expected, 10_000).await.unwrap();
    for id in &expected {
        let mut listed: Vec<Uuid> = found.iter().filter(|b| b.blocked_id == *id).map(|b| b.id).collect();
        listed.sort();
        assert_eq!(listed, graph.blockers(*id), "blockers of a story, {context}");
    }
    let tally = store.project_tally(fx.tenant, fx.project, now).await.unwrap();
    let verified = records.iter().filter(|s| s.state.verified_status == VerifiedStatus::Verified).count();
    let in_flight: Vec<&StoryRecord> = records.iter().filter(|s| s.state.agent_status.in_flight()).collect();
    let expected = ProjectTally {
        total: records.len() as i64,
        verified: verified as i64,
        in_flight: in_flight.len() as i64,
        stale: in_flight.iter().filter(|s| s.state.lease_expired(now)).count() as i64,
    };
    assert_eq!(tally, expected, "tally, {context}");
}

/// The whole ready frontier of a project (one page of up to 10,000), with its total.
pub fn frontier(tenant_id: Uuid, project_id: Uuid, now: DateTime<Utc>) -> FrontierQuery {
    FrontierQuery { tenant_id, project_id, epic_id: None, now, offset: 0, limit: 10_000, with_total: true }
}

pub async fn stage_counts_are_disjoint_per_epic_and_scoped(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let second_epic = Uuid::now_v7();
    store.commit(vec![WriteOp::InsertEpic(epic_record(fx.tenant, fx.project, second_epic, 2))]).await.unwrap();
    let numbers = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6"];
    let mut stories = Vec::new();
    for number in numbers {
        stories.push(fx.story(number).await);
    }
    let mut hours = story_record(fx.tenant, fx.project, second_epic, "2.1");
    hours.estimated_hours = Some(2.5);
    store.commit(vec![WriteOp::InsertStory(hours.clone())]).await.unwrap();
    let now = t0() + Duration::hours(1);
    let claimed = |minutes| StoryState {
        lease_expires_at: Some(t0() + Duration::minutes(minutes)),
        ..claimed_by(fx.agents[0], &StoryState::default())
    };
    let verified = StoryState {
        agent_status: AgentStatus::ReportedDone,
        verified_status: VerifiedStatus::Verified,
        ..StoryState::default()
    };
    fx.force_state(stories[1].id, StoryState { agent_status: AgentStatus::Contracted, ..StoryState::default() }).await;
    fx.force_state(stories[2].id, claimed(120)).await;
    fx.force_state(stories[3].id, StoryState { agent_status: AgentStatus::Implementing, ..claimed(30) }).await;
    fx.force_state(stories[4].id, StoryState { agent_status: AgentStatus::ReportedDone, ..claimed(120) }).await;
    fx.force_state(stories[5].id, verified.clone()).await;
    fx.force_state(hours.id, verified).await;
    let counts = store.stage_counts(fx.tenant, fx.project, now).await.unwrap();
    let first = counts.iter().find(|c| c.epic_id == fx.epic).expect("epic 1 counted");
    let expected = EpicCounts {
        epic_id: fx.epic,
        total: 6,
        pending: 1,
        contracted: 1,
        assigned: 1,
        implementing: 1,
        stale: 1,
        reported: 1,
        verified: 1,
        // Six stories of 2.5 hours each (the fixture's estimate), one of them verified.
        hours_total: 15.0,
        hours_verified: 2.5,
        ..EpicCounts::default()
    };
    assert_eq!(*first, expected);
    let second = counts.iter().find(|c| c.epic_id == second_epic).expect("epic 2 counted");
    assert_eq!((second.total, second.verified, second.hours_total, second.hours_verified), (1, 1, 2.5, 2.5));
    assert!(second.complete() && !first.complete());
    let other = Fixture::new(store.clone()).await;
    assert!(store.stage_counts(other.tenant, fx.project, now).await.unwrap().is_empty());
}

/// Written around the server: a verified row without its event, or with only a system event,
/// is refused; with the event of a key (in either order within the batch) it is accepted.
pub async fn a_story_turns_verified_only_with_the_event_naming_its_verifier(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let reported = StoryState {
        agent_status: AgentStatus::ReportedDone,
        assigned_agent_id: Some(fx.agents[0]),
        claim_epoch: 1,
        ..StoryState::default()
    };
    fx.force_state(story.id, reported.clone()).await;
    let current = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    let verified =
        StoryState { verified_status: VerifiedStatus::Verified, verified_by_agent_id: Some(fx.agents[1]), ..reported };
    let bare = store.commit(vec![transition(&current, verified.clone(), None)]).await;
    assert_eq!(
        bare,
        Err(StoreError::Custody(CustodyRefusal::VerifiedWithoutEvent)),
        "a verified row without its event"
    );
    let system = WriteOp::AppendEvent(NewEvent {
        actor: ActorStamp {
            actor_type: "system".into(),
            key_id: None,
            agent_id: None,
            role: None,
            label: "system:sweeper".into(),
        },
        ..event(fx.tenant, None, story.id, "verified", Utc::now())
    });
    let by_system = store.commit(vec![transition(&current, verified.clone(), None), system]).await;
    assert_eq!(by_system, Err(StoreError::Custody(CustodyRefusal::VerifiedWithoutEvent)), "the system is no verifier");
    let unchanged = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(unchanged.state.verified_status, VerifiedStatus::Unverified);
    store
        .commit(vec![transition(&current, verified, None), verified_event(fx.tenant, story.id)])
        .await
        .expect("verified with the event of a key");
    let now = store.story(fx.tenant, story.id).await.unwrap().unwrap();
    assert_eq!(now.state.verified_status, VerifiedStatus::Verified);
}

/// Code that writes a review row straight to the store, with no service layer to ask, is told
/// by the database itself, typed, that the story's assignee may not review it; nothing of
/// the batch is written. Another agent's review goes through.
pub async fn a_review_by_the_assignee_written_around_the_service_is_refused_as_self_review(store: Arc<dyn Store>) {
    let fx = Fixture::new(store.clone()).await;
    let story = fx.story("1.1").await;
    let assignee = fx.agents[0];
    fx.force_state(
        story.id,
        StoryState { agent_status: AgentStatus::Implementing, ..claimed_by(assignee, &story.state) },
    )
    .await;
    let review_by = |reviewer: Uuid| ReviewRecord {
        id: Uuid::now_v7(),
        tenant_id: fx.tenant,
        story_id: story.id,
        reviewer_agent_id: Some(reviewer),
        review_type: "standard".into(),
        findings_count: 0,
        fixes_count: 0,
        disproved_count: 0,
        summary: Some("looks good to me".into()),
        findings: json!({}),
        completed_at: t0(),
        created_at: t0(),
    };
    let audit = WriteOp::AppendEvent(event(fx.tenant, Some(fx.project), story.id, "review_completed", t0()));
    let refused = store.commit(vec![audit.clone(), WriteOp::InsertReview(review_by(assignee))]).await;
    assert_eq!(refused, Err(StoreError::Custody(CustodyRefusal::SelfReview)));
    assert!(store.reviews(fx.tenant, story.id).await.unwrap().is_empty(), "no review was written");
    let all = EventFilter { limit: 10, ..EventFilter::default() };
    assert!(store.events(fx.tenant, all.clone()).await.unwrap().is_empty(), "nor its event");

    store.commit(vec![audit, WriteOp::InsertReview(review_by(fx.agents[1]))]).await.unwrap();
    let reviews = store.reviews(fx.tenant, story.id).await.unwrap();
    assert_eq!(reviews.iter().map(|review| review.reviewer_agent_id).collect::<Vec<_>>(), [Some(fx.agents[1])]);
    assert_eq!(store.events(fx.tenant, all).await.unwrap().len(), 1);
}
