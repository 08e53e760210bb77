//! Applying a write batch inside the caller's transaction, op by op, with the same
//! semantics and error mapping as the SQLite store.
//!
//! Transactions run at READ COMMITTED, and several server processes may write at once.
//! Two rules need more than a single statement to hold under that isolation level; each
//! takes a transaction-scoped advisory lock (released at COMMIT or ROLLBACK, after the
//! transaction's rows are visible):
//! - a claim under an in-flight limit holds its project's lock (class 0x6c630002, shared
//!   with one of a few slots of class 0x6c630004 far below the limit, exclusive near it)
//!   before counting: its compare-and-set's condition, `loopctl_in_flight_room` (migration
//!   15), takes them;
//! - the first event a batch appends for a tenant takes that tenant's change feed lock in
//!   shared mode (see `statements::push_event`): writers never wait for each other on it; a feed reader
//!   takes it exclusively for a moment to learn how far the feed is settled.
//!
//! The service puts a batch's events after its transition, so batches take these locks in
//! one order (project, slot, then feed) and never wait on each other in a cycle. A batch that
//! appends before a guarded transition could; PostgreSQL detects the deadlock, and the
//! store reports it as `Retryable`.

use loopctl_store::*;
use sqlx::postgres::PgQueryResult;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::row::{json, map_err};
use crate::statements::{self, Cas, FeedLock, LOCK_CLASS_EVENTS, Sql, Target, lock_key, waits};

pub(crate) async fn batch(conn: &mut PgConnection, ops: &[WriteOp]) -> Result<Vec<i64>, StoreError> {
    let mut cursors = Vec::new();
    let mut feeds_locked: Vec<Uuid> = Vec::new();
    for op in ops {
        cursors.extend(one(conn, op, &mut feeds_locked).await?);
    }
    Ok(cursors)
}

async fn advisory_xact_lock(conn: &mut PgConnection, class: i32, id: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(class)
        .bind(lock_key(id))
        .execute(conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// The newest cursor of the tenant's feed that no running transaction can still precede;
/// `None` when the tenant has no events.
pub(crate) async fn settled_cursor(conn: &mut PgConnection, tenant_id: Uuid) -> Result<Option<i64>, StoreError> {
    advisory_xact_lock(conn, LOCK_CLASS_EVENTS, tenant_id).await?;
    // READ COMMITTED: this statement's snapshot is taken after the lock was granted, so it
    // sees every writer that held the lock before (their rows are visible before their locks
    // are released).
    sqlx::query_scalar("SELECT max(cursor) FROM events WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_one(conn)
        .await
        .map_err(map_err)
}

fn expect_row(result: PgQueryResult, what: &str) -> Result<(), StoreError> {
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: what.to_string() });
    }
    Ok(())
}

/// Applies one op; `feeds_locked` are the tenants whose feed lock the batch holds already.
async fn one(conn: &mut PgConnection, op: &WriteOp, feeds_locked: &mut Vec<Uuid>) -> Result<Option<i64>, StoreError> {
    let conn = &mut *conn;
    match op {
        WriteOp::InsertTenant(t) => {
            sqlx::query("INSERT INTO tenants (id, name, slug, email, settings, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(t.id).bind(&t.name).bind(&t.slug).bind(&t.email).bind(json(&t.settings)).bind(&t.status)
                .bind(t.created_at).bind(t.updated_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateTenant(t) => {
            let res = sqlx::query("UPDATE tenants SET name = $1, slug = $2, email = $3, settings = $4, status = $5, updated_at = $6 WHERE id = $7")
                .bind(&t.name).bind(&t.slug).bind(&t.email).bind(json(&t.settings)).bind(&t.status)
                .bind(t.updated_at).bind(t.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "tenant")?;
        }
        WriteOp::InsertAgent(a) => {
            sqlx::query("INSERT INTO agents (id, tenant_id, name, agent_type, status, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(a.id).bind(a.tenant_id).bind(&a.name).bind(&a.agent_type).bind(&a.status).bind(json(&a.metadata))
                .bind(a.created_at).bind(a.updated_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateAgent(a) => {
            let res = sqlx::query("UPDATE agents SET name = $1, agent_type = $2, status = $3, metadata = $4, updated_at = $5 WHERE tenant_id = $6 AND id = $7")
                .bind(&a.name).bind(&a.agent_type).bind(&a.status).bind(json(&a.metadata)).bind(a.updated_at)
                .bind(a.tenant_id).bind(a.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "agent")?;
        }
        WriteOp::InsertApiKey(k) => {
            sqlx::query("INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, role, agent_id, expires_at, revoked_at, last_used_at, created_at, scope_story_id, scope_role, dispatch_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
                .bind(k.id).bind(k.tenant_id).bind(&k.name).bind(&k.key_hash).bind(&k.key_prefix).bind(k.role.as_str())
                .bind(k.agent_id).bind(k.expires_at).bind(k.revoked_at).bind(k.last_used_at).bind(k.created_at)
                .bind(k.scope.map(|s| s.story_id)).bind(k.scope.map(|s| s.role.as_str())).bind(k.scope.map(|s| s.dispatch_id))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::EndApiKey { tenant_id, id, revoked_at, expires_at } => {
            let res = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE($1, revoked_at), expires_at = COALESCE($2, expires_at) WHERE tenant_id = $3 AND id = $4")
                .bind(*revoked_at).bind(*expires_at).bind(tenant_id).bind(id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "api key")?;
        }
        WriteOp::TouchApiKey { id, at } => {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(*at)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
        }
        WriteOp::InsertProject(p) => {
            sqlx::query("INSERT INTO projects (id, tenant_id, name, slug, repo_url, description, tech_stack, mission, status, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                .bind(p.id).bind(p.tenant_id).bind(&p.name).bind(&p.slug).bind(&p.repo_url).bind(&p.description)
                .bind(&p.tech_stack).bind(&p.mission).bind(&p.status).bind(json(&p.metadata))
                .bind(p.created_at).bind(p.updated_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateProject(p) => {
            let res = sqlx::query("UPDATE projects SET name = $1, repo_url = $2, description = $3, tech_stack = $4, mission = $5, status = $6, metadata = $7, updated_at = $8 WHERE tenant_id = $9 AND id = $10")
                .bind(&p.name).bind(&p.repo_url).bind(&p.description).bind(&p.tech_stack).bind(&p.mission)
                .bind(&p.status).bind(json(&p.metadata)).bind(p.updated_at).bind(p.tenant_id).bind(p.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "project")?;
        }
        WriteOp::InsertEpic(e) => {
            sqlx::query("INSERT INTO epics (id, tenant_id, project_id, number, title, description, phase, position, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                .bind(e.id).bind(e.tenant_id).bind(e.project_id).bind(e.number).bind(&e.title).bind(&e.description)
                .bind(&e.phase).bind(e.position).bind(json(&e.metadata)).bind(e.created_at).bind(e.updated_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateEpic(e) => {
            let res = sqlx::query("UPDATE epics SET title = $1, description = $2, phase = $3, position = $4, metadata = $5, updated_at = $6 WHERE tenant_id = $7 AND id = $8")
                .bind(&e.title).bind(&e.description).bind(&e.phase).bind(e.position).bind(json(&e.metadata))
                .bind(e.updated_at).bind(e.tenant_id).bind(e.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "epic")?;
        }
        WriteOp::DeleteEpic { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM epics WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "epic")?;
        }
        WriteOp::InsertStory(s) => {
            let st = &s.state;
            sqlx::query("INSERT INTO stories (id, tenant_id, project_id, epic_id, number, sort_key, title, description, acceptance_criteria, estimated_hours, metadata, agent_status, verified_status, assigned_agent_id, reported_done_at, reported_by_agent_id, verified_at, lock_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)")
                .bind(s.id).bind(s.tenant_id).bind(s.project_id).bind(s.epic_id).bind(&s.number).bind(s.sort_key)
                .bind(&s.title).bind(&s.description).bind(json(&s.acceptance_criteria)).bind(s.estimated_hours)
                .bind(json(&s.metadata)).bind(st.agent_status.as_str()).bind(st.verified_status.as_str())
                .bind(st.assigned_agent_id).bind(st.reported_done_at).bind(st.reported_by_agent_id)
                .bind(st.verified_at).bind(s.lock_version).bind(s.created_at).bind(s.updated_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateStoryContent(s) => {
            let res = sqlx::query("UPDATE stories SET epic_id = $1, title = $2, description = $3, acceptance_criteria = $4, estimated_hours = $5, metadata = $6, updated_at = $7, lock_version = lock_version + 1 WHERE tenant_id = $8 AND id = $9")
                .bind(s.epic_id).bind(&s.title).bind(&s.description).bind(json(&s.acceptance_criteria))
                .bind(s.estimated_hours).bind(json(&s.metadata)).bind(s.updated_at).bind(s.tenant_id).bind(s.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "story")?;
        }
        WriteOp::DeleteStory { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM stories WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "story")?;
        }
        WriteOp::TransitionStory(_) => {
            if let Some(cas) = Cas::of(op) {
                transition(conn, cas).await?;
            }
        }
        WriteOp::InsertStoryDependency(d) => {
            sqlx::query("INSERT INTO story_dependencies (id, tenant_id, project_id, story_id, depends_on_story_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(d.id).bind(d.tenant_id).bind(d.project_id).bind(d.from_id).bind(d.to_id).bind(d.created_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::InsertEpicDependency(d) => {
            sqlx::query("INSERT INTO epic_dependencies (id, tenant_id, project_id, epic_id, depends_on_epic_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(d.id).bind(d.tenant_id).bind(d.project_id).bind(d.from_id).bind(d.to_id).bind(d.created_at)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::DeleteStoryDependency { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM story_dependencies WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "story dependency")?;
        }
        WriteOp::DeleteEpicDependency { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM epic_dependencies WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "epic dependency")?;
        }
        WriteOp::SaveOrchestratorState { record: r, expected_version } => {
            if *expected_version == 0 {
                sqlx::query("INSERT INTO orchestrator_states (id, tenant_id, project_id, state_key, state_data, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .bind(r.id).bind(r.tenant_id).bind(r.project_id).bind(&r.state_key).bind(json(&r.state_data))
                    .bind(r.version).bind(r.created_at).bind(r.updated_at)
                    .execute(conn).await
                    .map_err(|err| match map_err(err) {
                        StoreError::Duplicate { .. } => StoreError::VersionConflict { what: "orchestrator state".into() },
                        other => other,
                    })?;
            } else {
                let res = sqlx::query("UPDATE orchestrator_states SET state_data = $1, version = $2, updated_at = $3 WHERE tenant_id = $4 AND project_id = $5 AND state_key = $6 AND version = $7")
                    .bind(json(&r.state_data)).bind(r.version).bind(r.updated_at)
                    .bind(r.tenant_id).bind(r.project_id).bind(&r.state_key).bind(expected_version)
                    .execute(conn).await.map_err(map_err)?;
                if res.rows_affected() == 0 {
                    return Err(StoreError::VersionConflict { what: "orchestrator state".into() });
                }
            }
        }
        WriteOp::AppendEvent(e) => {
            let feed = if feeds_locked.contains(&e.tenant_id) {
                FeedLock::Held
            } else {
                feeds_locked.push(e.tenant_id);
                FeedLock::Take
            };
            let mut q = Sql::default();
            statements::push_event(&mut q, e, feed);
            return q.build_query_scalar().fetch_one(&mut *conn).await.map_err(map_err).map(Some);
        }
        WriteOp::InsertDispatch(d) => {
            sqlx::query("INSERT INTO dispatches (id, tenant_id, parent_dispatch_id, dispatched_by_key_id, dispatched_by_agent_id, agent_id, api_key_id, story_id, role, lineage_path, expires_at, revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
                .bind(d.id).bind(d.tenant_id).bind(d.parent_dispatch_id).bind(d.dispatched_by_key_id).bind(d.dispatched_by_agent_id)
                .bind(d.agent_id).bind(d.api_key_id).bind(d.story_id).bind(d.role.as_str()).bind(sqlx::types::Json(&d.lineage_path))
                .bind(d.expires_at).bind(d.revoked_at).bind(d.created_at)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::RevokeDispatch { tenant_id, id, at } => {
            let res = sqlx::query(
                "UPDATE dispatches SET revoked_at = COALESCE(revoked_at, $1) WHERE tenant_id = $2 AND id = $3",
            )
            .bind(*at)
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
            if res.rows_affected() == 0 {
                return Err(StoreError::NotFound { what: "dispatch".into() });
            }
            sqlx::query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE tenant_id = $2 AND dispatch_id = $3",
            )
            .bind(*at)
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        }
        WriteOp::InsertVerificationRun(r) => {
            sqlx::query("INSERT INTO verification_runs (id, tenant_id, story_id, round, result, commit_sha, checks, recorded_by_agent_id, signature, created_at, signed_payload, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                .bind(r.id).bind(r.tenant_id).bind(r.story_id).bind(r.round).bind(&r.result).bind(&r.commit_sha)
                .bind(json(&r.checks)).bind(r.recorded_by_agent_id).bind(&r.signature).bind(r.created_at)
                .bind(&r.signed_payload).bind(&r.key_id)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::InsertSkillVersion(v) => {
            sqlx::query("INSERT INTO skill_versions (id, tenant_id, name, version, prompt_text, changelog, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(v.id).bind(v.tenant_id).bind(&v.name).bind(v.version).bind(&v.prompt_text).bind(&v.changelog)
                .bind(&v.created_by).bind(v.created_at)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::InsertSkillResult(r) => {
            sqlx::query("INSERT INTO skill_results (id, tenant_id, name, version, story_id, result, metrics, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(r.id).bind(r.tenant_id).bind(&r.name).bind(r.version).bind(r.story_id).bind(&r.result)
                .bind(json(&r.metrics)).bind(r.created_at)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::BeginIdempotentRequest { marker, stale_before } => {
            let mut q = Sql::default();
            statements::push_marker(&mut q, marker, *stale_before);
            if q.build().execute(&mut *conn).await.map_err(map_err)?.rows_affected() == 0 {
                return Err(StoreError::Duplicate { what: "idempotency key".into() });
            }
        }
        WriteOp::SaveIdempotentResponse(r) => {
            sqlx::query("INSERT INTO idempotent_responses (scope, key, method, path, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, status = excluded.status, body = excluded.body, created_at = excluded.created_at \
                         WHERE idempotent_responses.status = $8")
                .bind(&r.scope).bind(&r.key).bind(&r.method).bind(&r.path).bind(i32::from(r.status)).bind(&r.body)
                .bind(r.created_at).bind(i32::from(IdempotentResponse::IN_FLIGHT))
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::AbandonIdempotentRequest { scope, key } => {
            sqlx::query("DELETE FROM idempotent_responses WHERE scope = $1 AND key = $2 AND status = $3")
                .bind(scope)
                .bind(key)
                .bind(i32::from(IdempotentResponse::IN_FLIGHT))
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        WriteOp::InsertWebhook(w) => {
            sqlx::query("INSERT INTO webhooks (id, tenant_id, project_id, url, actions, enabled, disabled_reason, consecutive_failures, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                .bind(w.id).bind(w.tenant_id).bind(w.project_id).bind(&w.url).bind(w.actions_column())
                .bind(w.enabled).bind(&w.disabled_reason).bind(w.consecutive_failures).bind(&w.created_by).bind(w.created_at)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::DeleteWebhook { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM webhooks WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
            if res.rows_affected() == 0 {
                return Err(StoreError::NotFound { what: "webhook".into() });
            }
        }
        WriteOp::LeaseDelivery { tenant_id, id, delivery_id, now, until } => {
            let res = sqlx::query("UPDATE webhook_deliveries SET leased_until = $1 WHERE id = $2 AND tenant_id = $3 AND webhook_id = $4 AND status = 'pending' AND (leased_until IS NULL OR leased_until <= $5)")
                .bind(*until).bind(delivery_id).bind(tenant_id).bind(id).bind(*now)
                .execute(&mut *conn).await.map_err(map_err)?;
            if res.rows_affected() == 0 {
                return Err(StoreError::VersionConflict { what: "delivery".into() });
            }
        }
        WriteOp::RecordDeliveryAttempt(a) => {
            let status = if a.delivered { "delivered" } else { "pending" };
            let delivered_at = a.delivered.then_some(a.at);
            sqlx::query("UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, last_status = $2, last_error = $3, last_latency_ms = $4, next_attempt_at = $5, delivered_at = $6, leased_until = NULL WHERE id = $7 AND tenant_id = $8")
                .bind(status).bind(a.status).bind(&a.error).bind(a.latency_ms).bind(a.next_attempt_at).bind(delivered_at)
                .bind(a.delivery_id).bind(a.tenant_id)
                .execute(&mut *conn).await.map_err(map_err)?;
            sqlx::query("UPDATE webhooks SET consecutive_failures = $1, enabled = (enabled AND $2), disabled_reason = COALESCE($3, disabled_reason) WHERE id = $4 AND tenant_id = $5")
                .bind(a.consecutive_failures).bind(a.disable.is_none()).bind(&a.disable).bind(a.webhook_id).bind(a.tenant_id)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::AppendAuditLinks(links) => {
            // PostgreSQL's limit on bound values (65,535) over 8 columns.
            for chunk in links.chunks(1_000) {
                let mut insert = QueryBuilder::<Postgres>::new(
                    "INSERT INTO audit_links (tenant_id, cursor, event_id, prev_hash, hash, seal_key_id, seal_signature, sealed_at) ",
                );
                insert.push_values(chunk, |mut row, link| {
                    let seal = link.seal.as_ref();
                    row.push_bind(link.tenant_id)
                        .push_bind(link.cursor)
                        .push_bind(link.event_id)
                        .push_bind(&link.prev_hash)
                        .push_bind(&link.hash)
                        .push_bind(seal.map(|s| s.key_id.as_str()))
                        .push_bind(seal.map(|s| s.signature.as_str()))
                        .push_bind(seal.map(|s| s.sealed_at));
                });
                insert.build().execute(&mut *conn).await.map_err(map_err)?;
            }
        }
        WriteOp::PurgeIdempotentResponses { before } => {
            sqlx::query("DELETE FROM idempotent_responses WHERE created_at < $1")
                .bind(*before)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
        }
        WriteOp::InsertArtifact(_)
        | WriteOp::InsertTokenUsage(_)
        | WriteOp::InsertReview(_)
        | WriteOp::InsertVerification(_)
        | WriteOp::InsertCriterionRecord(_) => {
            let mut q = Sql::default();
            statements::push_evidence(&mut q, op);
            q.build().execute(&mut *conn).await.map_err(map_err)?;
        }
    }
    Ok(None)
}

/// A transition's compare-and-set; under an in-flight guard its condition counts the
/// project's claims (`statements::push_story_update`).
async fn transition(conn: &mut PgConnection, cas: Cas<'_>) -> Result<(), StoreError> {
    let mut q = Sql::default();
    cas.push(&mut q);
    if q.build().execute(&mut *conn).await.map_err(map_err)?.rows_affected() == 1 {
        return Ok(());
    }
    Err(not_updated(conn, cas.target, cas.guard).await)
}

/// Why a compare-and-set touched no row: the story is gone, moved on, or (still at the version
/// read) waits for something after all, or its project is at the in-flight limit.
pub(crate) async fn not_updated(conn: &mut PgConnection, target: Target, guard: Option<InFlightGuard>) -> StoreError {
    let sql = concat!("SELECT lock_version, ", waits!(), " FROM stories WHERE tenant_id = $1 AND id = $2");
    let row: Option<(i64, Option<bool>)> =
        match sqlx::query_as(sql).bind(target.tenant_id).bind(target.story_id).fetch_optional(&mut *conn).await {
            Ok(row) => row,
            Err(err) => return map_err(err),
        };
    let unchanged = |v: i64| v == target.expected_version;
    match (row, guard) {
        (None, _) => StoreError::NotFound { what: "story".into() },
        (Some((v, Some(true))), _) if unchanged(v) && target.only_if_unblocked => {
            StoreError::VersionConflict { what: "story".into() }
        }
        (Some((v, _)), Some(guard)) if unchanged(v) => {
            let in_flight = sqlx::query_scalar(
                "SELECT number FROM stories WHERE project_id = $1 AND agent_status IN ('assigned', 'implementing') \
                 ORDER BY sort_key",
            )
            .bind(guard.project_id)
            .fetch_all(&mut *conn)
            .await;
            match in_flight {
                Ok(in_flight) => StoreError::ConcurrencyLimit { limit: guard.limit, in_flight },
                Err(err) => map_err(err),
            }
        }
        _ => StoreError::VersionConflict { what: "story".into() },
    }
}
