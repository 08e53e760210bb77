//! The statements of the ops a transition batch is made of, pushed into a `QueryBuilder`
//! rather than written with fixed `$n`: `apply` sends each on its own, and `one_trip` sends
//! several as the parts of one statement, where every part's placeholders are numbered after
//! the previous part's.

use chrono::{DateTime, Utc};
use loopctl_core::StoryState;
use loopctl_store::{IdempotentResponse, InFlightGuard, WriteOp};
use sqlx::query_builder::Separated;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::row::json;

pub(crate) type Sql = QueryBuilder<Postgres>;

/// Advisory-lock class of change-feed appends, keyed by tenant.
pub(crate) const LOCK_CLASS_EVENTS: i32 = 0x6c63_0003;

/// Folds an id into the 32-bit key of the two-key advisory lock functions. Two ids that
/// share a key only wait for each other more than they must.
pub(crate) fn lock_key(id: Uuid) -> i32 {
    let v = id.as_u128();
    let folded = (v ^ (v >> 32) ^ (v >> 64) ^ (v >> 96)) as u32;
    i32::from_ne_bytes(folded.to_ne_bytes())
}

/// `into` (`INSERT INTO table (columns)`) and one row of values, bound by `values`.
fn insert(q: &mut Sql, into: &str, values: impl FnOnce(&mut Separated<'_, Postgres, &'static str>)) {
    q.push(into).push(" VALUES (");
    values(&mut q.separated(", "));
    q.push(")");
}

/// The INSERT of an evidence row ([`WriteOp::is_evidence`]); pushes nothing for any other op.
pub(crate) fn push_evidence(q: &mut Sql, op: &WriteOp) {
    match op {
        WriteOp::InsertArtifact(a) => insert(
            q,
            "INSERT INTO artifacts (id, tenant_id, story_id, reported_by, reporter_agent_id, artifact_type, path, \"exists\", details, created_at)",
            |row| {
                row.push_bind(a.id).push_bind(a.tenant_id).push_bind(a.story_id).push_bind(&a.reported_by);
                row.push_bind(a.reporter_agent_id).push_bind(&a.artifact_type).push_bind(&a.path).push_bind(a.exists);
                row.push_bind(json(&a.details)).push_bind(a.created_at);
            },
        ),
        WriteOp::InsertTokenUsage(t) => insert(
            q,
            "INSERT INTO token_usage (id, tenant_id, project_id, story_id, agent_id, phase, input_tokens, output_tokens, cost_millicents, model_name, created_at)",
            |row| {
                row.push_bind(t.id).push_bind(t.tenant_id).push_bind(t.project_id).push_bind(t.story_id);
                row.push_bind(t.agent_id).push_bind(&t.phase).push_bind(t.input_tokens).push_bind(t.output_tokens);
                row.push_bind(t.cost_millicents).push_bind(&t.model_name).push_bind(t.created_at);
            },
        ),
        WriteOp::InsertReview(r) => insert(
            q,
            "INSERT INTO reviews (id, tenant_id, story_id, reviewer_agent_id, review_type, findings_count, fixes_count, disproved_count, summary, findings, completed_at, created_at)",
            |row| {
                row.push_bind(r.id).push_bind(r.tenant_id).push_bind(r.story_id).push_bind(r.reviewer_agent_id);
                row.push_bind(&r.review_type).push_bind(r.findings_count).push_bind(r.fixes_count);
                row.push_bind(r.disproved_count).push_bind(&r.summary).push_bind(json(&r.findings));
                row.push_bind(r.completed_at).push_bind(r.created_at);
            },
        ),
        WriteOp::InsertVerification(v) => insert(
            q,
            "INSERT INTO verifications (id, tenant_id, story_id, verifier_agent_id, result, summary, findings, review_type, iteration, created_at)",
            |row| {
                row.push_bind(v.id).push_bind(v.tenant_id).push_bind(v.story_id).push_bind(v.verifier_agent_id);
                row.push_bind(&v.result).push_bind(&v.summary).push_bind(json(&v.findings));
                row.push_bind(&v.review_type);
                // Numbered by the store: one more than the story's verdicts so far.
                row.push("(SELECT count(*) + 1 FROM verifications p WHERE p.tenant_id = ");
                row.push_bind_unseparated(v.tenant_id).push_unseparated(" AND p.story_id = ");
                row.push_bind_unseparated(v.story_id).push_unseparated(")");
                row.push_bind(v.created_at);
            },
        ),
        WriteOp::InsertCriterionRecord(c) => insert(
            q,
            "INSERT INTO criterion_records (id, tenant_id, story_id, ac_id, kind, round, verdict, detail, actor_agent_id, created_at)",
            |row| {
                row.push_bind(c.id).push_bind(c.tenant_id).push_bind(c.story_id).push_bind(&c.ac_id);
                row.push_bind(&c.kind).push_bind(c.round).push_bind(&c.verdict).push_bind(json(&c.detail));
                row.push_bind(c.actor_agent_id).push_bind(c.created_at);
            },
        ),
        _ => {}
    }
}

/// An Idempotency-Key's in-flight marker: it takes a free pair or a stale marker's, and
/// touches nothing else. A pair held by a kept answer or a live marker writes no row, the
/// `Duplicate` that tells the caller to wait for that request's answer; a concurrent insert
/// of the same pair waits for this transaction, then finds the pair taken.
pub(crate) fn push_marker(q: &mut Sql, marker: &IdempotentResponse, stale_before: DateTime<Utc>) {
    insert(q, "INSERT INTO idempotent_responses (scope, key, method, path, status, body, created_at)", |row| {
        row.push_bind(&marker.scope).push_bind(&marker.key).push_bind(&marker.method).push_bind(&marker.path);
        row.push_bind(i32::from(marker.status)).push_bind(&marker.body).push_bind(marker.created_at);
    });
    q.push(
        " ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, status = excluded.status, \
         body = excluded.body, created_at = excluded.created_at WHERE idempotent_responses.status = ",
    );
    q.push_bind(i32::from(IdempotentResponse::IN_FLIGHT));
    q.push(" AND idempotent_responses.created_at < ").push_bind(stale_before);
}

/// The story a transition applies to, the version it was read at, and whether the decision
/// took it for unblocked (`WriteOp::TransitionStory`).
#[derive(Clone, Copy)]
pub(crate) struct Target {
    pub tenant_id: Uuid,
    pub story_id: Uuid,
    pub expected_version: i64,
    pub only_if_unblocked: bool,
}

/// A `WriteOp::TransitionStory`: its target, guard, and the state it writes.
pub(crate) struct Cas<'a> {
    pub target: Target,
    pub guard: Option<InFlightGuard>,
    state: &'a StoryState,
    updated_at: DateTime<Utc>,
}

impl<'a> Cas<'a> {
    /// The compare-and-set `op` is, if it is one.
    pub(crate) fn of(op: &'a WriteOp) -> Option<Cas<'a>> {
        let WriteOp::TransitionStory(t) = op else {
            return None;
        };
        let target = Target {
            tenant_id: t.tenant_id,
            story_id: t.story_id,
            expected_version: t.expected_version,
            only_if_unblocked: t.only_if_unblocked,
        };
        Some(Cas { target, guard: t.guard, state: &t.state, updated_at: t.updated_at })
    }

    /// Its UPDATE ([`push_story_update`]).
    pub(crate) fn push(&self, q: &mut Sql) {
        push_story_update(q, self.target, self.state, self.updated_at, self.guard);
    }
}

/// Whether the story waits for anything unverified, by the maintained counts (migration 9):
/// its unverified direct dependencies, and on its epic the epics it depends on that still
/// have unverified stories. An expression over a row of `stories`.
/// (A macro so the statements that use it stay `&'static str`, with `concat!`.)
macro_rules! waits {
    () => {
        "(stories.waiting_on > 0 OR (SELECT e.waiting_on > 0 FROM epics e WHERE e.id = stories.epic_id))"
    };
}
pub(crate) use waits;

/// The compare-and-set of a transition: every state column, where the story is still at the
/// version it was read at; under an in-flight guard, and where the claim leaves its project
/// within the limit (`loopctl_in_flight_room`, migration 15, which counts under the
/// project's locks with a snapshot taken after them).
fn push_story_update(
    q: &mut Sql,
    target: Target,
    st: &StoryState,
    updated_at: DateTime<Utc>,
    guard: Option<InFlightGuard>,
) {
    q.push("UPDATE stories SET ");
    let mut set = q.separated(", ");
    set.push("agent_status = ").push_bind_unseparated(st.agent_status.as_str());
    set.push("verified_status = ").push_bind_unseparated(st.verified_status.as_str());
    set.push("assigned_agent_id = ").push_bind_unseparated(st.assigned_agent_id);
    set.push("assigned_at = ").push_bind_unseparated(st.assigned_at);
    set.push("reported_done_at = ").push_bind_unseparated(st.reported_done_at);
    set.push("reported_by_agent_id = ").push_bind_unseparated(st.reported_by_agent_id);
    set.push("verified_at = ").push_bind_unseparated(st.verified_at);
    set.push("rejected_at = ").push_bind_unseparated(st.rejected_at);
    set.push("rejection_reason = ").push_bind_unseparated(&st.rejection_reason);
    set.push("claim_epoch = ").push_bind_unseparated(st.claim_epoch);
    set.push("lease_expires_at = ").push_bind_unseparated(st.lease_expires_at);
    set.push("iteration_count = ").push_bind_unseparated(st.iteration_count);
    set.push("rejections_since_clear = ").push_bind_unseparated(st.rejections_since_clear);
    set.push("escalated = ").push_bind_unseparated(st.escalated);
    set.push("escalated_at = ").push_bind_unseparated(st.escalated_at);
    set.push("escalation_locked = ").push_bind_unseparated(st.escalation_locked);
    set.push("review_requested_at = ").push_bind_unseparated(st.review_requested_at);
    set.push("last_review_at = ").push_bind_unseparated(st.last_review_at);
    set.push("verified_by_agent_id = ").push_bind_unseparated(st.verified_by_agent_id);
    set.push("contracted_by_agent_id = ").push_bind_unseparated(st.contracted_by_agent_id);
    set.push("contracted_at = ").push_bind_unseparated(st.contracted_at);
    set.push("stale_since = ").push_bind_unseparated(st.stale_since);
    set.push("previous_assignee_agent_id = ").push_bind_unseparated(st.previous_assignee_agent_id);
    set.push("lock_version = lock_version + 1");
    set.push("updated_at = ").push_bind_unseparated(updated_at);
    q.push(" WHERE tenant_id = ").push_bind(target.tenant_id);
    q.push(" AND id = ").push_bind(target.story_id);
    q.push(" AND lock_version = ").push_bind(target.expected_version);
    if target.only_if_unblocked {
        q.push(concat!(" AND NOT ", waits!()));
    }
    if let Some(guard) = guard {
        // After the version test: a condition is evaluated cheapest first, so a claim that
        // lost the race takes no lock.
        q.push(" AND loopctl_in_flight_room(").push_bind(guard.project_id);
        q.push(", ").push_bind(lock_key(guard.project_id));
        q.push(", ").push_bind(target.story_id);
        q.push(", ").push_bind(i32::try_from(guard.limit).unwrap_or(i32::MAX)).push(")");
    }
}

/// Whether an event's insert must first take its tenant's feed lock ([`push_event`]).
#[derive(Clone, Copy)]
pub(crate) enum FeedLock {
    /// The batch's first event of the tenant: the insert takes the lock itself.
    Take,
    /// An earlier insert of this batch holds it.
    Held,
}

/// An event's INSERT, answering its cursor.
///
/// Cursors come from a sequence: they are handed out in insertion order, but transactions
/// commit in any order. A reader polling `events(after_cursor = N)` could see N+2 committed
/// while N+1 is still to come, move its cursor past N+1, and never see it.
///
/// So every event-writing transaction holds its tenant's feed lock in shared mode from
/// before its first cursor is drawn until COMMIT, and a reader reads only up to the feed's
/// settled cursor (`apply::settled_cursor`): the newest cursor at a moment when it held the
/// lock exclusively, so no writer was between drawing a cursor and committing, and every
/// later writer draws a larger one. Writers of one tenant commit side by side (an exclusive
/// lock per tenant made them take turns, fsync by fsync); a reader waits for the writers
/// already running, and new writers wait for that reader's one statement.
///
/// With [`FeedLock::Take`] the lock is taken by the INSERT itself (a materialized CTE, which
/// the insert reads before it draws the cursor), which saves a round trip per write.
pub(crate) fn push_event(q: &mut Sql, e: &loopctl_store::NewEvent, feed: FeedLock) {
    if let FeedLock::Take = feed {
        q.push("WITH feed AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(").push_bind(LOCK_CLASS_EVENTS);
        q.push(", ").push_bind(lock_key(e.tenant_id)).push(")) ");
    }
    q.push(
        "INSERT INTO events (id, tenant_id, project_id, entity_type, entity_id, action, actor_type, \
         actor_key_id, actor_agent_id, actor_role, actor_label, old_state, new_state, metadata, inserted_at) ",
    );
    q.push(match feed {
        FeedLock::Take => "SELECT ",
        FeedLock::Held => "VALUES (",
    });
    let mut row = q.separated(", ");
    row.push_bind(e.id).push_bind(e.tenant_id).push_bind(e.project_id).push_bind(&e.entity_type);
    row.push_bind(e.entity_id).push_bind(&e.action).push_bind(&e.actor.actor_type).push_bind(e.actor.key_id);
    row.push_bind(e.actor.agent_id).push_bind(e.actor.role.map(|r| r.as_str())).push_bind(&e.actor.label);
    row.push_bind(json(&e.old_state)).push_bind(json(&e.new_state)).push_bind(json(&e.metadata));
    row.push_bind(e.inserted_at);
    q.push(match feed {
        FeedLock::Take => " FROM feed RETURNING cursor",
        FeedLock::Held => ") RETURNING cursor",
    });
}
