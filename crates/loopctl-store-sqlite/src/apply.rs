//! Applying a write batch on the writer's connection (inside the caller's savepoint).

use chrono::{DateTime, Utc};
use loopctl_store::*;
use sqlx::sqlite::SqliteQueryResult;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::row::{json, map_err, micros, opt_micros};
use crate::statements::{self, Statements, waits};

pub(crate) async fn batch(conn: &mut SqliteConnection, ops: &[WriteOp]) -> Result<Vec<i64>, StoreError> {
    // Events first: a story turns verified only when the event naming its verifier is
    // already there (trigger `stories_verified_with_its_event`; SQLite has no deferred
    // triggers). One writer, so the order takes no locks that could cross.
    let (events, rest): (Vec<&WriteOp>, Vec<&WriteOp>) =
        ops.iter().partition(|op| matches!(op, WriteOp::AppendEvent(_)));
    let mut cursors = Vec::new();
    for op in events.into_iter().chain(rest) {
        if let Some(cursor) = one(conn, op).await? {
            cursors.push(cursor);
        }
    }
    Ok(cursors)
}

/// Takes a request's idempotency pair with its in-flight marker (`statements::marker`), after
/// `prefix` (savepoint bookkeeping that binds nothing), in one trip. A pair held by a kept
/// answer or a live marker is the `Duplicate` that tells the caller to wait for that
/// request's answer.
pub(crate) async fn take_marker(
    conn: &mut SqliteConnection,
    prefix: &str,
    marker: &IdempotentResponse,
    stale_before: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut s = Statements::default();
    statements::marker(s.text(prefix), marker, stale_before);
    s.text(" RETURNING 1");
    match s.query()?.fetch_optional(conn).await.map_err(map_err)? {
        Some(_) => Ok(()),
        None => Err(StoreError::Duplicate { what: "idempotency key".into() }),
    }
}

/// Runs the one statement `push` writes; answers its result.
async fn single(
    conn: &mut SqliteConnection,
    push: impl FnOnce(&mut Statements),
) -> Result<SqliteQueryResult, StoreError> {
    let mut s = Statements::default();
    push(&mut s);
    s.query()?.execute(conn).await.map_err(map_err)
}

/// Most answers [`save_answers`] writes in one statement. A power of two, as every chunk is,
/// so the writer's statement cache holds at most a handful of its shapes.
pub(crate) const MAX_ANSWERS_AT_ONCE: usize = 32;

/// Completes several requests' in-flight markers with their answers in one statement: one
/// trip to the connection's worker thread instead of one each (the same upsert as
/// `SaveIdempotentResponse`). `answers.len()` is a power of two up to
/// [`MAX_ANSWERS_AT_ONCE`].
pub(crate) async fn save_answers(
    conn: &mut SqliteConnection,
    answers: &[&IdempotentResponse],
) -> Result<(), StoreError> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO idempotent_responses (scope, key, method, path, status, body, created_at) ",
    );
    query.push_values(answers, |mut row, r| {
        row.push_bind(r.scope.clone())
            .push_bind(r.key.clone())
            .push_bind(r.method.clone())
            .push_bind(r.path.clone())
            .push_bind(i64::from(r.status))
            .push_bind(r.body.clone())
            .push_bind(micros(r.created_at));
    });
    query.push(
        " ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, \
         status = excluded.status, body = excluded.body, created_at = excluded.created_at \
         WHERE idempotent_responses.status = ",
    );
    query.push_bind(i64::from(IdempotentResponse::IN_FLIGHT));
    query.build().execute(conn).await.map_err(map_err)?;
    Ok(())
}

fn expect_row(result: SqliteQueryResult, what: &str) -> Result<(), StoreError> {
    if result.rows_affected() == 0 {
        return Err(StoreError::NotFound { what: what.to_string() });
    }
    Ok(())
}

async fn one(conn: &mut SqliteConnection, op: &WriteOp) -> Result<Option<i64>, StoreError> {
    let conn = &mut *conn;
    match op {
        WriteOp::InsertTenant(t) => {
            sqlx::query("INSERT INTO tenants (id, name, slug, email, settings, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(t.id).bind(&t.name).bind(&t.slug).bind(&t.email).bind(json(&t.settings)).bind(&t.status)
                .bind(micros(t.created_at)).bind(micros(t.updated_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateTenant(t) => {
            let res = sqlx::query("UPDATE tenants SET name = ?, slug = ?, email = ?, settings = ?, status = ?, updated_at = ? WHERE id = ?")
                .bind(&t.name).bind(&t.slug).bind(&t.email).bind(json(&t.settings)).bind(&t.status)
                .bind(micros(t.updated_at)).bind(t.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "tenant")?;
        }
        WriteOp::InsertAgent(a) => {
            sqlx::query("INSERT INTO agents (id, tenant_id, name, agent_type, status, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(a.id).bind(a.tenant_id).bind(&a.name).bind(&a.agent_type).bind(&a.status).bind(json(&a.metadata))
                .bind(micros(a.created_at)).bind(micros(a.updated_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateAgent(a) => {
            let res = sqlx::query("UPDATE agents SET name = ?, agent_type = ?, status = ?, metadata = ?, updated_at = ? WHERE tenant_id = ? AND id = ?")
                .bind(&a.name).bind(&a.agent_type).bind(&a.status).bind(json(&a.metadata)).bind(micros(a.updated_at))
                .bind(a.tenant_id).bind(a.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "agent")?;
        }
        WriteOp::InsertApiKey(k) => {
            sqlx::query("INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, role, agent_id, expires_at, revoked_at, last_used_at, created_at, scope_story_id, scope_role, dispatch_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(k.id).bind(k.tenant_id).bind(&k.name).bind(&k.key_hash).bind(&k.key_prefix).bind(k.role.as_str())
                .bind(k.agent_id).bind(opt_micros(k.expires_at)).bind(opt_micros(k.revoked_at))
                .bind(opt_micros(k.last_used_at)).bind(micros(k.created_at))
                .bind(k.scope.map(|s| s.story_id)).bind(k.scope.map(|s| s.role.as_str())).bind(k.scope.map(|s| s.dispatch_id))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::EndApiKey { tenant_id, id, revoked_at, expires_at } => {
            let res = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(?, revoked_at), expires_at = COALESCE(?, expires_at) WHERE tenant_id = ? AND id = ?")
                .bind(opt_micros(*revoked_at)).bind(opt_micros(*expires_at)).bind(tenant_id).bind(id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "api key")?;
        }
        WriteOp::TouchApiKey { id, at } => {
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                .bind(micros(*at))
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
        }
        WriteOp::InsertProject(p) => {
            sqlx::query("INSERT INTO projects (id, tenant_id, name, slug, repo_url, description, tech_stack, mission, status, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(p.id).bind(p.tenant_id).bind(&p.name).bind(&p.slug).bind(&p.repo_url).bind(&p.description)
                .bind(&p.tech_stack).bind(&p.mission).bind(&p.status).bind(json(&p.metadata))
                .bind(micros(p.created_at)).bind(micros(p.updated_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateProject(p) => {
            let res = sqlx::query("UPDATE projects SET name = ?, repo_url = ?, description = ?, tech_stack = ?, mission = ?, status = ?, metadata = ?, updated_at = ? WHERE tenant_id = ? AND id = ?")
                .bind(&p.name).bind(&p.repo_url).bind(&p.description).bind(&p.tech_stack).bind(&p.mission)
                .bind(&p.status).bind(json(&p.metadata)).bind(micros(p.updated_at)).bind(p.tenant_id).bind(p.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "project")?;
        }
        WriteOp::InsertEpic(e) => {
            sqlx::query("INSERT INTO epics (id, tenant_id, project_id, number, title, description, phase, position, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(e.id).bind(e.tenant_id).bind(e.project_id).bind(e.number).bind(&e.title).bind(&e.description)
                .bind(&e.phase).bind(e.position).bind(json(&e.metadata)).bind(micros(e.created_at)).bind(micros(e.updated_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateEpic(e) => {
            let res = sqlx::query("UPDATE epics SET title = ?, description = ?, phase = ?, position = ?, metadata = ?, updated_at = ? WHERE tenant_id = ? AND id = ?")
                .bind(&e.title).bind(&e.description).bind(&e.phase).bind(e.position).bind(json(&e.metadata))
                .bind(micros(e.updated_at)).bind(e.tenant_id).bind(e.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "epic")?;
        }
        WriteOp::DeleteEpic { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM epics WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "epic")?;
        }
        WriteOp::InsertStory(s) => {
            let st = &s.state;
            sqlx::query("INSERT INTO stories (id, tenant_id, project_id, epic_id, number, sort_key, title, description, acceptance_criteria, estimated_hours, metadata, agent_status, verified_status, assigned_agent_id, reported_done_at, reported_by_agent_id, verified_at, lock_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(s.id).bind(s.tenant_id).bind(s.project_id).bind(s.epic_id).bind(&s.number).bind(s.sort_key)
                .bind(&s.title).bind(&s.description).bind(json(&s.acceptance_criteria)).bind(s.estimated_hours)
                .bind(json(&s.metadata)).bind(st.agent_status.as_str()).bind(st.verified_status.as_str())
                .bind(st.assigned_agent_id).bind(opt_micros(st.reported_done_at)).bind(st.reported_by_agent_id)
                .bind(opt_micros(st.verified_at)).bind(s.lock_version).bind(micros(s.created_at)).bind(micros(s.updated_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::UpdateStoryContent(s) => {
            let res = sqlx::query("UPDATE stories SET epic_id = ?, title = ?, description = ?, acceptance_criteria = ?, estimated_hours = ?, metadata = ?, updated_at = ?, lock_version = lock_version + 1 WHERE tenant_id = ? AND id = ?")
                .bind(s.epic_id).bind(&s.title).bind(&s.description).bind(json(&s.acceptance_criteria))
                .bind(s.estimated_hours).bind(json(&s.metadata)).bind(micros(s.updated_at)).bind(s.tenant_id).bind(s.id)
                .execute(conn).await.map_err(map_err)?;
            expect_row(res, "story")?;
        }
        WriteOp::DeleteStory { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM stories WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "story")?;
        }
        WriteOp::TransitionStory(t) => transition(conn, t).await?,
        evidence @ (WriteOp::InsertArtifact(_)
        | WriteOp::InsertTokenUsage(_)
        | WriteOp::InsertReview(_)
        | WriteOp::InsertVerification(_)
        | WriteOp::InsertCriterionRecord(_)) => {
            single(conn, |s| {
                statements::evidence(s, evidence);
            })
            .await?;
        }
        WriteOp::InsertStoryDependency(d) => {
            sqlx::query("INSERT INTO story_dependencies (id, tenant_id, project_id, story_id, depends_on_story_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(d.id).bind(d.tenant_id).bind(d.project_id).bind(d.from_id).bind(d.to_id).bind(micros(d.created_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::InsertEpicDependency(d) => {
            sqlx::query("INSERT INTO epic_dependencies (id, tenant_id, project_id, epic_id, depends_on_epic_id, created_at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(d.id).bind(d.tenant_id).bind(d.project_id).bind(d.from_id).bind(d.to_id).bind(micros(d.created_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::DeleteStoryDependency { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM story_dependencies WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "story dependency")?;
        }
        WriteOp::DeleteEpicDependency { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM epic_dependencies WHERE tenant_id = ? AND id = ?")
                .bind(tenant_id)
                .bind(id)
                .execute(conn)
                .await
                .map_err(map_err)?;
            expect_row(res, "epic dependency")?;
        }
        WriteOp::SaveOrchestratorState { record: r, expected_version } => {
            if *expected_version == 0 {
                sqlx::query("INSERT INTO orchestrator_states (id, tenant_id, project_id, state_key, state_data, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(r.id).bind(r.tenant_id).bind(r.project_id).bind(&r.state_key).bind(json(&r.state_data))
                    .bind(r.version).bind(micros(r.created_at)).bind(micros(r.updated_at))
                    .execute(conn).await
                    .map_err(|err| match map_err(err) {
                        StoreError::Duplicate { .. } => StoreError::VersionConflict { what: "orchestrator state".into() },
                        other => other,
                    })?;
            } else {
                let res = sqlx::query("UPDATE orchestrator_states SET state_data = ?, version = ?, updated_at = ? WHERE tenant_id = ? AND project_id = ? AND state_key = ? AND version = ?")
                    .bind(json(&r.state_data)).bind(r.version).bind(micros(r.updated_at))
                    .bind(r.tenant_id).bind(r.project_id).bind(&r.state_key).bind(expected_version)
                    .execute(conn).await.map_err(map_err)?;
                if res.rows_affected() == 0 {
                    return Err(StoreError::VersionConflict { what: "orchestrator state".into() });
                }
            }
        }
        WriteOp::AppendEvent(e) => {
            let res = single(conn, |s| statements::event(s, e)).await?;
            return Ok(Some(res.last_insert_rowid()));
        }
        WriteOp::InsertDispatch(d) => {
            let lineage = serde_json::to_string(&d.lineage_path).unwrap_or_else(|_| "[]".into());
            sqlx::query("INSERT INTO dispatches (id, tenant_id, parent_dispatch_id, dispatched_by_key_id, dispatched_by_agent_id, agent_id, api_key_id, story_id, role, lineage_path, expires_at, revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(d.id).bind(d.tenant_id).bind(d.parent_dispatch_id).bind(d.dispatched_by_key_id).bind(d.dispatched_by_agent_id)
                .bind(d.agent_id).bind(d.api_key_id).bind(d.story_id).bind(d.role.as_str()).bind(lineage)
                .bind(micros(d.expires_at)).bind(opt_micros(d.revoked_at)).bind(micros(d.created_at))
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::RevokeDispatch { tenant_id, id, at } => {
            let res = sqlx::query(
                "UPDATE dispatches SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND id = ?",
            )
            .bind(micros(*at))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
            expect_row(res, "dispatch")?;
            sqlx::query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND dispatch_id = ?",
            )
            .bind(micros(*at))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        }
        WriteOp::InsertVerificationRun(r) => {
            sqlx::query("INSERT INTO verification_runs (id, tenant_id, story_id, round, result, commit_sha, checks, recorded_by_agent_id, signature, created_at, signed_payload, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(r.id).bind(r.tenant_id).bind(r.story_id).bind(r.round).bind(&r.result).bind(&r.commit_sha)
                .bind(json(&r.checks)).bind(r.recorded_by_agent_id).bind(&r.signature).bind(micros(r.created_at))
                .bind(&r.signed_payload).bind(&r.key_id)
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::InsertSkillVersion(v) => {
            sqlx::query("INSERT INTO skill_versions (id, tenant_id, name, version, prompt_text, changelog, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(v.id).bind(v.tenant_id).bind(&v.name).bind(v.version).bind(&v.prompt_text).bind(&v.changelog)
                .bind(&v.created_by).bind(micros(v.created_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::InsertSkillResult(r) => {
            sqlx::query("INSERT INTO skill_results (id, tenant_id, name, version, story_id, result, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(r.id).bind(r.tenant_id).bind(&r.name).bind(r.version).bind(r.story_id).bind(&r.result)
                .bind(json(&r.metrics)).bind(micros(r.created_at))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::BeginIdempotentRequest { marker, stale_before } => {
            take_marker(conn, "", marker, *stale_before).await?;
        }
        WriteOp::SaveIdempotentResponse(r) => {
            sqlx::query("INSERT INTO idempotent_responses (scope, key, method, path, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (scope, key) DO UPDATE SET method = excluded.method, path = excluded.path, status = excluded.status, body = excluded.body, created_at = excluded.created_at \
                         WHERE idempotent_responses.status = ?")
                .bind(&r.scope).bind(&r.key).bind(&r.method).bind(&r.path).bind(i64::from(r.status)).bind(&r.body)
                .bind(micros(r.created_at)).bind(i64::from(IdempotentResponse::IN_FLIGHT))
                .execute(conn).await.map_err(map_err)?;
        }
        WriteOp::AbandonIdempotentRequest { scope, key } => {
            sqlx::query("DELETE FROM idempotent_responses WHERE scope = ? AND key = ? AND status = ?")
                .bind(scope)
                .bind(key)
                .bind(i64::from(IdempotentResponse::IN_FLIGHT))
                .execute(conn)
                .await
                .map_err(map_err)?;
        }
        WriteOp::InsertWebhook(w) => {
            sqlx::query("INSERT INTO webhooks (id, tenant_id, project_id, url, actions, enabled, disabled_reason, consecutive_failures, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(w.id).bind(w.tenant_id).bind(w.project_id).bind(&w.url).bind(w.actions_column())
                .bind(w.enabled).bind(&w.disabled_reason).bind(w.consecutive_failures).bind(&w.created_by).bind(micros(w.created_at))
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::DeleteWebhook { tenant_id, id } => {
            let res = sqlx::query("DELETE FROM webhooks WHERE tenant_id = ? AND id = ?")
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
            let res = sqlx::query("UPDATE webhook_deliveries SET leased_until = ? WHERE id = ? AND tenant_id = ? AND webhook_id = ? AND status = 'pending' AND (leased_until IS NULL OR leased_until <= ?)")
                .bind(micros(*until)).bind(delivery_id).bind(tenant_id).bind(id).bind(micros(*now))
                .execute(&mut *conn).await.map_err(map_err)?;
            if res.rows_affected() == 0 {
                return Err(StoreError::VersionConflict { what: "delivery".into() });
            }
        }
        WriteOp::RecordDeliveryAttempt(a) => {
            let status = if a.delivered { "delivered" } else { "pending" };
            let delivered_at = a.delivered.then_some(micros(a.at));
            sqlx::query("UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, last_status = ?, last_error = ?, last_latency_ms = ?, next_attempt_at = ?, delivered_at = ?, leased_until = NULL WHERE id = ? AND tenant_id = ?")
                .bind(status).bind(a.status).bind(&a.error).bind(a.latency_ms).bind(micros(a.next_attempt_at)).bind(delivered_at)
                .bind(a.delivery_id).bind(a.tenant_id)
                .execute(&mut *conn).await.map_err(map_err)?;
            sqlx::query("UPDATE webhooks SET consecutive_failures = ?, enabled = (enabled AND ?), disabled_reason = COALESCE(?, disabled_reason) WHERE id = ? AND tenant_id = ?")
                .bind(a.consecutive_failures).bind(a.disable.is_none()).bind(&a.disable).bind(a.webhook_id).bind(a.tenant_id)
                .execute(&mut *conn).await.map_err(map_err)?;
        }
        WriteOp::AppendAuditLinks(links) => {
            // SQLite's limit on bound values (32,766) over 8 columns.
            for chunk in links.chunks(1_000) {
                let mut insert = QueryBuilder::<Sqlite>::new(
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
                        .push_bind(seal.map(|s| micros(s.sealed_at)));
                });
                insert.build().execute(&mut *conn).await.map_err(map_err)?;
            }
        }
        WriteOp::PurgeIdempotentResponses { before } => {
            sqlx::query("DELETE FROM idempotent_responses WHERE created_at < ?")
                .bind(micros(*before))
                .execute(conn)
                .await
                .map_err(map_err)?;
        }
    }
    Ok(None)
}

async fn transition(conn: &mut SqliteConnection, t: &StoryTransition) -> Result<(), StoreError> {
    let res = single(conn, |s| statements::transition(s, t)).await?;
    if res.rows_affected() == 1 {
        return Ok(());
    }
    Err(missed(conn, t).await)
}

/// Why a compare-and-set touched no row: the story is gone, moved on, waits after all for a
/// dependency, or its project is at its in-flight limit.
pub(crate) async fn missed(conn: &mut SqliteConnection, t: &StoryTransition) -> StoreError {
    let StoryTransition { tenant_id, story_id, expected_version, guard, only_if_unblocked, .. } = *t;
    let row: Result<Option<(i64, bool)>, _> =
        sqlx::query_as(concat!("SELECT lock_version, ", waits!(), " FROM stories WHERE tenant_id = ? AND id = ?"))
            .bind(tenant_id)
            .bind(story_id)
            .fetch_optional(&mut *conn)
            .await;
    match (row, guard) {
        (Err(err), _) => map_err(err),
        (Ok(None), _) => StoreError::NotFound { what: "story".into() },
        // Still at the version read, but something it depends on is unverified after all.
        (Ok(Some((v, true))), _) if v == expected_version && only_if_unblocked => {
            StoreError::VersionConflict { what: "story".into() }
        }
        (Ok(Some((v, _))), Some(guard)) if v == expected_version => {
            let in_flight = sqlx::query_scalar(
                "SELECT number FROM stories WHERE project_id = ? AND agent_status IN ('assigned', 'implementing') ORDER BY sort_key",
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
