//! The statements a transition's batch is made of (its idempotency marker, evidence rows,
//! the story's compare-and-set and its event), written once for both ways they are sent:
//! one op at a time (`apply.rs`), or the whole batch in one trip (`one_trip.rs`).
//!
//! Placeholders are anonymous (`?`): in a query of several statements SQLite's parameters
//! are bound in order across them, where a numbered one (`?3`) would name the query's third
//! value, not its statement's.

use chrono::{DateTime, Utc};
use loopctl_store::{IdempotentResponse, NewEvent, StoreError, StoryTransition, WriteOp};
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, Encode, Sqlite, Type};

use crate::row::{json, micros, opt_micros};

/// SQL text and its values, bound in the order they are pushed.
#[derive(Default)]
pub(crate) struct Statements {
    sql: String,
    args: SqliteArguments,
    unbindable: Option<String>,
}

impl Statements {
    pub(crate) fn text(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a `?` and its value.
    pub(crate) fn bind<'t, T: Encode<'t, Sqlite> + Type<Sqlite> + 't>(&mut self, value: T) -> &mut Self {
        self.sql.push('?');
        if let Err(err) = self.args.add(value) {
            self.unbindable.get_or_insert(err.to_string());
        }
        self
    }

    /// `, ?` and its value: the next of a list.
    pub(crate) fn and<'t, T: Encode<'t, Sqlite> + Type<Sqlite> + 't>(&mut self, value: T) -> &mut Self {
        self.sql.push_str(", ");
        self.bind(value)
    }

    /// Ends a statement; another may follow in the same query.
    pub(crate) fn end(&mut self) -> &mut Self {
        self.sql.push_str("; ");
        self
    }

    /// The query (its text is cached as a prepared statement, as a literal's would be).
    pub(crate) fn query(self) -> Result<Query<'static, Sqlite, SqliteArguments>, StoreError> {
        if let Some(err) = self.unbindable {
            return Err(StoreError::Backend(format!("a value could not be bound: {err}")));
        }
        Ok(sqlx::query_with(AssertSqlSafe(self.sql), self.args))
    }
}

/// Takes a request's idempotency pair with its in-flight marker: a free pair or a stale
/// marker's, touching nothing else (0 rows when another request holds it).
pub(crate) fn marker(s: &mut Statements, m: &IdempotentResponse, stale_before: DateTime<Utc>) {
    s.text("INSERT INTO idempotent_responses (scope, key, method, path, status, body, created_at) VALUES (")
        .bind(m.scope.as_slice())
        .and(m.key.as_str())
        .and(m.method.as_str())
        .and(m.path.as_str())
        .and(i64::from(m.status))
        .and(m.body.as_str())
        .and(micros(m.created_at))
        .text(
            ") ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, \
             status = excluded.status, body = excluded.body, created_at = excluded.created_at \
             WHERE idempotent_responses.status = ",
        )
        .bind(i64::from(IdempotentResponse::IN_FLIGHT))
        .text(" AND idempotent_responses.created_at < ")
        .bind(micros(stale_before));
}

pub(crate) fn event(s: &mut Statements, e: &NewEvent) {
    s.text(
        "INSERT INTO events (id, tenant_id, project_id, entity_type, entity_id, action, actor_type, actor_key_id, \
         actor_agent_id, actor_role, actor_label, old_state, new_state, metadata, inserted_at) VALUES (",
    )
    .bind(e.id)
    .and(e.tenant_id)
    .and(e.project_id)
    .and(e.entity_type.as_str())
    .and(e.entity_id)
    .and(e.action.as_str())
    .and(e.actor.actor_type.as_str())
    .and(e.actor.key_id)
    .and(e.actor.agent_id)
    .and(e.actor.role.map(|r| r.as_str()))
    .and(e.actor.label.as_str())
    .and(json(&e.old_state))
    .and(json(&e.new_state))
    .and(json(&e.metadata))
    .and(micros(e.inserted_at))
    .text(")");
}

/// The INSERT of a row of evidence; `false` (nothing pushed) for any other op.
pub(crate) fn evidence(s: &mut Statements, op: &WriteOp) -> bool {
    match op {
        WriteOp::InsertArtifact(a) => {
            s.text(
                "INSERT INTO artifacts (id, tenant_id, story_id, reported_by, reporter_agent_id, artifact_type, path, \
                 \"exists\", details, created_at) VALUES (",
            )
            .bind(a.id)
            .and(a.tenant_id)
            .and(a.story_id)
            .and(a.reported_by.as_str())
            .and(a.reporter_agent_id)
            .and(a.artifact_type.as_str())
            .and(a.path.as_deref())
            .and(a.exists)
            .and(json(&a.details))
            .and(micros(a.created_at))
            .text(")");
        }
        WriteOp::InsertTokenUsage(t) => {
            s.text(
                "INSERT INTO token_usage (id, tenant_id, project_id, story_id, agent_id, phase, input_tokens, \
                 output_tokens, cost_millicents, model_name, created_at) VALUES (",
            )
            .bind(t.id)
            .and(t.tenant_id)
            .and(t.project_id)
            .and(t.story_id)
            .and(t.agent_id)
            .and(t.phase.as_str())
            .and(t.input_tokens)
            .and(t.output_tokens)
            .and(t.cost_millicents)
            .and(t.model_name.as_deref())
            .and(micros(t.created_at))
            .text(")");
        }
        WriteOp::InsertReview(r) => {
            s.text(
                "INSERT INTO reviews (id, tenant_id, story_id, reviewer_agent_id, review_type, findings_count, \
                 fixes_count, disproved_count, summary, findings, completed_at, created_at) VALUES (",
            )
            .bind(r.id)
            .and(r.tenant_id)
            .and(r.story_id)
            .and(r.reviewer_agent_id)
            .and(r.review_type.as_str())
            .and(r.findings_count)
            .and(r.fixes_count)
            .and(r.disproved_count)
            .and(r.summary.as_deref())
            .and(json(&r.findings))
            .and(micros(r.completed_at))
            .and(micros(r.created_at))
            .text(")");
        }
        WriteOp::InsertVerification(v) => {
            // Numbered by the store: one more than the story's verdicts so far.
            s.text(
                "INSERT INTO verifications (id, tenant_id, story_id, verifier_agent_id, result, summary, findings, \
                 review_type, iteration, created_at) VALUES (",
            )
            .bind(v.id)
            .and(v.tenant_id)
            .and(v.story_id)
            .and(v.verifier_agent_id)
            .and(v.result.as_str())
            .and(v.summary.as_deref())
            .and(json(&v.findings))
            .and(v.review_type.as_deref())
            .text(", (SELECT count(*) + 1 FROM verifications p WHERE p.tenant_id = ")
            .bind(v.tenant_id)
            .text(" AND p.story_id = ")
            .bind(v.story_id)
            .text(")")
            .and(micros(v.created_at))
            .text(")");
        }
        WriteOp::InsertCriterionRecord(c) => {
            s.text(
                "INSERT INTO criterion_records (id, tenant_id, story_id, ac_id, kind, round, verdict, detail, \
                 actor_agent_id, created_at) VALUES (",
            )
            .bind(c.id)
            .and(c.tenant_id)
            .and(c.story_id)
            .and(c.ac_id.as_str())
            .and(c.kind.as_str())
            .and(c.round)
            .and(c.verdict.as_deref())
            .and(json(&c.detail))
            .and(c.actor_agent_id)
            .and(micros(c.created_at))
            .text(")");
        }
        _ => return false,
    }
    true
}

/// Whether the story waits for anything unverified, by the maintained counts (migration 9):
/// its unverified direct dependencies, and on its epic the epics it depends on that still
/// have unverified stories. An expression over a row of `stories`.
/// A macro so the statements that use it stay `&'static str` (`concat!`), built once.
macro_rules! waits {
    () => {
        "(stories.waiting_on > 0 OR COALESCE((SELECT e.waiting_on > 0 FROM epics e WHERE e.id = stories.epic_id), 0))"
    };
}
pub(crate) use waits;

/// A story's compare-and-set ([`StoryTransition`]): 1 row when the story is still at the
/// version, free of what it waits for (when decided unblocked) and, under an in-flight
/// limit, below it; else 0.
pub(crate) fn transition(s: &mut Statements, t: &StoryTransition) {
    let st = &t.state;
    s.text("UPDATE stories SET agent_status = ")
        .bind(st.agent_status.as_str())
        .text(", verified_status = ")
        .bind(st.verified_status.as_str())
        .text(", assigned_agent_id = ")
        .bind(st.assigned_agent_id)
        .text(", assigned_at = ")
        .bind(opt_micros(st.assigned_at))
        .text(", reported_done_at = ")
        .bind(opt_micros(st.reported_done_at))
        .text(", reported_by_agent_id = ")
        .bind(st.reported_by_agent_id)
        .text(", verified_at = ")
        .bind(opt_micros(st.verified_at))
        .text(", rejected_at = ")
        .bind(opt_micros(st.rejected_at))
        .text(", rejection_reason = ")
        .bind(st.rejection_reason.as_deref())
        .text(", claim_epoch = ")
        .bind(st.claim_epoch)
        .text(", lease_expires_at = ")
        .bind(opt_micros(st.lease_expires_at))
        .text(", iteration_count = ")
        .bind(st.iteration_count)
        .text(", rejections_since_clear = ")
        .bind(st.rejections_since_clear)
        .text(", escalated = ")
        .bind(st.escalated)
        .text(", escalated_at = ")
        .bind(opt_micros(st.escalated_at))
        .text(", escalation_locked = ")
        .bind(st.escalation_locked)
        .text(", review_requested_at = ")
        .bind(opt_micros(st.review_requested_at))
        .text(", last_review_at = ")
        .bind(opt_micros(st.last_review_at))
        .text(", verified_by_agent_id = ")
        .bind(st.verified_by_agent_id)
        .text(", contracted_by_agent_id = ")
        .bind(st.contracted_by_agent_id)
        .text(", contracted_at = ")
        .bind(opt_micros(st.contracted_at))
        .text(", stale_since = ")
        .bind(opt_micros(st.stale_since))
        .text(", previous_assignee_agent_id = ")
        .bind(st.previous_assignee_agent_id)
        .text(", lock_version = lock_version + 1, updated_at = ")
        .bind(micros(t.updated_at))
        .text(" WHERE tenant_id = ")
        .bind(t.tenant_id)
        .text(" AND id = ")
        .bind(t.story_id)
        .text(" AND lock_version = ")
        .bind(t.expected_version);
    if t.only_if_unblocked {
        s.text(concat!(" AND NOT ", waits!()));
    }
    if let Some(guard) = t.guard {
        s.text(" AND (SELECT COUNT(*) FROM stories o WHERE o.project_id = ")
            .bind(guard.project_id)
            .text(" AND o.id <> ")
            .bind(t.story_id)
            .text(" AND o.agent_status IN ('assigned', 'implementing')) < ")
            .bind(i64::from(guard.limit));
    }
}
