//! Decoding rows into records, and database errors into `StoreError`.

use chrono::{DateTime, Utc};
use loopctl_core::{AgentStatus, DispatchRole, Role, StoryState, VerifiedStatus};
use loopctl_store::*;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgDatabaseError, PgRow};

/// Story columns in the order `story` decodes them.
macro_rules! story_columns {
    () => {
        "id, tenant_id, project_id, epic_id, number, sort_key, title, description, acceptance_criteria, \
         estimated_hours, metadata, agent_status, verified_status, assigned_agent_id, assigned_at, \
         reported_done_at, reported_by_agent_id, verified_at, rejected_at, rejection_reason, claim_epoch, \
         lease_expires_at, iteration_count, rejections_since_clear, escalated, escalated_at, \
         escalation_locked, review_requested_at, last_review_at, verified_by_agent_id, contracted_by_agent_id, \
         contracted_at, stale_since, previous_assignee_agent_id, lock_version, created_at, updated_at"
    };
}
pub(crate) use story_columns;

/// The aggregate columns of `Store::stage_counts` (`now` is the third parameter).
macro_rules! stage_count_columns {
    () => {
        concat!(
            "COUNT(*)::bigint AS total, ",
            "COALESCE(SUM(CASE WHEN agent_status = 'pending' THEN 1 ELSE 0 END), 0)::bigint AS pending, ",
            "COALESCE(SUM(CASE WHEN agent_status = 'contracted' THEN 1 ELSE 0 END), 0)::bigint AS contracted, ",
            "COALESCE(SUM(CASE WHEN agent_status = 'assigned' THEN 1 ELSE 0 END), 0)::bigint AS assigned, ",
            "COALESCE(SUM(CASE WHEN agent_status = 'implementing' THEN 1 ELSE 0 END), 0)::bigint AS implementing, ",
            "COALESCE(SUM(CASE WHEN agent_status IN ('assigned', 'implementing') AND lease_expires_at <= $3 THEN 1 ELSE 0 END), 0)::bigint AS stale, ",
            "COALESCE(SUM(CASE WHEN agent_status = 'reported_done' AND verified_status <> 'verified' THEN 1 ELSE 0 END), 0)::bigint AS reported, ",
            "COALESCE(SUM(CASE WHEN verified_status = 'verified' THEN 1 ELSE 0 END), 0)::bigint AS verified, ",
            "COALESCE(SUM(CASE WHEN verified_status = 'rejected' THEN 1 ELSE 0 END), 0)::bigint AS rejected, ",
            "COALESCE(SUM(CASE WHEN escalated THEN 1 ELSE 0 END), 0)::bigint AS escalated, ",
            "COALESCE(SUM(estimated_hours), 0.0)::float8 AS hours_total, ",
            "COALESCE(SUM(CASE WHEN verified_status = 'verified' THEN estimated_hours END), 0.0)::float8 AS hours_verified"
        )
    };
}
pub(crate) use stage_count_columns;

/// A JSON document as a `jsonb` parameter.
pub(crate) fn json(value: &Value) -> sqlx::types::Json<&Value> {
    sqlx::types::Json(value)
}

pub(crate) fn backend(err: sqlx::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// Maps a database error to what it means for the caller, by SQLSTATE.
pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::RowNotFound => StoreError::NotFound { what: "row".into() },
        sqlx::Error::Database(db) => {
            let message = db.message().to_string();
            let pg = db.try_downcast_ref::<PgDatabaseError>();
            match db.code().as_deref() {
                Some("23505") => StoreError::Duplicate { what: pg.map_or_else(|| "row".into(), unique_subject) },
                Some("23503") => StoreError::NotFound { what: "a referenced row".into() },
                Some("23514" | "23502") => StoreError::Invariant(message),
                // RAISE EXCEPTION in our triggers (raise_exception); the message says which.
                Some("P0001") => trigger_refusal(message),
                Some("40001" | "40P01") => StoreError::Retryable(message),
                // `loopctl_batch_applied` (migration 15) undoing a one-trip batch.
                Some("LC001") => StoreError::Duplicate { what: "idempotency key".into() },
                Some("LC002") => StoreError::VersionConflict { what: "story".into() },
                // The server is going away or cannot take the session: class 08 (connection
                // exception), 57P01–57P03 (shutdown, crash, not accepting connections), 53300
                // (too many connections).
                Some(code) if code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300") => {
                    StoreError::Retryable(message)
                }
                _ => StoreError::Backend(message),
            }
        }
        // The database cannot be reached, or the connection broke mid-call: the same call may
        // succeed once it is back (a 503, not a 500).
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => StoreError::Retryable(err.to_string()),
        _ => StoreError::Backend(err.to_string()),
    }
}

/// The custody triggers of `migrations/` (0001, 0003, 0008), by the message each raises.
const CUSTODY_TRIGGERS: [(&str, CustodyRefusal); 4] = [
    ("custody: self_review_blocked", CustodyRefusal::SelfReview),
    ("custody: self_verify_blocked", CustodyRefusal::SelfVerify),
    ("custody: verified only from reported_done or by backfill", CustodyRefusal::VerifiedBeforeReport),
    ("custody: verified only with the event that names its verifier", CustodyRefusal::VerifiedWithoutEvent),
];

/// A trigger's refusal: typed when it is a custody rule, in the trigger's words otherwise
/// (key roles are immutable, counters only rise, the audit log is append-only).
fn trigger_refusal(message: String) -> StoreError {
    match CUSTODY_TRIGGERS.iter().find(|(raised, _)| *raised == message) {
        Some(&(_, refusal)) => StoreError::Custody(refusal),
        None => StoreError::Invariant(message),
    }
}

/// `Key (project_id, number)=(…) already exists.` on `epics` → `epics.number`, the same
/// subject the SQLite store reports.
fn unique_subject(pg: &PgDatabaseError) -> String {
    let column = pg
        .detail()
        .and_then(|detail| detail.strip_prefix("Key ("))
        .and_then(|rest| rest.split_once(")=("))
        .and_then(|(cols, _)| cols.split(", ").last())
        .map(str::to_string);
    match (pg.table(), column) {
        (Some(table), Some(column)) => format!("{table}.{column}"),
        _ => pg.constraint().unwrap_or("row").to_string(),
    }
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col).map_err(backend)
}

fn parsed<T: std::str::FromStr<Err = String>>(row: &PgRow, col: &str) -> Result<T, StoreError> {
    let text: String = get(row, col)?;
    text.parse().map_err(StoreError::Backend)
}

fn ts(row: &PgRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    get(row, col)
}

fn opt_ts(row: &PgRow, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    get(row, col)
}

fn json_col(row: &PgRow, col: &str) -> Result<Value, StoreError> {
    get(row, col)
}

pub(crate) fn tenant(row: &PgRow) -> Result<TenantRecord, StoreError> {
    Ok(TenantRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        slug: get(row, "slug")?,
        email: get(row, "email")?,
        settings: json_col(row, "settings")?,
        status: get(row, "status")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn agent(row: &PgRow) -> Result<AgentRecord, StoreError> {
    Ok(AgentRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        agent_type: get(row, "agent_type")?,
        status: get(row, "status")?,
        metadata: json_col(row, "metadata")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn api_key(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        key_hash: get(row, "key_hash")?,
        key_prefix: get(row, "key_prefix")?,
        role: parsed::<Role>(row, "role")?,
        agent_id: get(row, "agent_id")?,
        expires_at: opt_ts(row, "expires_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
        created_at: ts(row, "created_at")?,
        scope: key_scope(row)?,
    })
}

fn key_scope(row: &PgRow) -> Result<Option<KeyScope>, StoreError> {
    let story_id: Option<uuid::Uuid> = get(row, "scope_story_id")?;
    let role: Option<String> = get(row, "scope_role")?;
    let dispatch_id: Option<uuid::Uuid> = get(row, "dispatch_id")?;
    Ok(match (story_id, role.as_deref().and_then(DispatchRole::parse), dispatch_id) {
        (Some(story_id), Some(role), Some(dispatch_id)) => Some(KeyScope { dispatch_id, story_id, role }),
        _ => None,
    })
}

pub(crate) fn dispatch(row: &PgRow) -> Result<DispatchRecord, StoreError> {
    let role: String = get(row, "role")?;
    let lineage: sqlx::types::Json<Vec<uuid::Uuid>> = get(row, "lineage_path")?;
    Ok(DispatchRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        parent_dispatch_id: get(row, "parent_dispatch_id")?,
        dispatched_by_key_id: get(row, "dispatched_by_key_id")?,
        dispatched_by_agent_id: get(row, "dispatched_by_agent_id")?,
        agent_id: get(row, "agent_id")?,
        api_key_id: get(row, "api_key_id")?,
        story_id: get(row, "story_id")?,
        role: DispatchRole::parse(&role).ok_or_else(|| StoreError::Backend(format!("bad dispatch role {role}")))?,
        lineage_path: lineage.0,
        expires_at: ts(row, "expires_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn project(row: &PgRow) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        slug: get(row, "slug")?,
        repo_url: get(row, "repo_url")?,
        description: get(row, "description")?,
        tech_stack: get(row, "tech_stack")?,
        mission: get(row, "mission")?,
        status: get(row, "status")?,
        metadata: json_col(row, "metadata")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn epic(row: &PgRow) -> Result<EpicRecord, StoreError> {
    Ok(EpicRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        project_id: get(row, "project_id")?,
        number: get(row, "number")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        phase: get(row, "phase")?,
        position: get(row, "position")?,
        metadata: json_col(row, "metadata")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn numbered_edge(row: &PgRow) -> Result<NumberedEdge, StoreError> {
    Ok(NumberedEdge { id: get(row, "id")?, from: get(row, "from_number")?, to: get(row, "to_number")? })
}

pub(crate) fn blocker(row: &PgRow) -> Result<BlockerRecord, StoreError> {
    Ok(BlockerRecord {
        blocked_id: get(row, "blocked_id")?,
        id: get(row, "id")?,
        number: get(row, "number")?,
        title: get(row, "title")?,
        agent_status: parsed::<AgentStatus>(row, "agent_status")?,
        verified_status: parsed::<VerifiedStatus>(row, "verified_status")?,
    })
}

pub(crate) fn story(row: &PgRow) -> Result<StoryRecord, StoreError> {
    let state = StoryState {
        agent_status: parsed::<AgentStatus>(row, "agent_status")?,
        verified_status: parsed::<VerifiedStatus>(row, "verified_status")?,
        assigned_agent_id: get(row, "assigned_agent_id")?,
        assigned_at: opt_ts(row, "assigned_at")?,
        reported_done_at: opt_ts(row, "reported_done_at")?,
        reported_by_agent_id: get(row, "reported_by_agent_id")?,
        verified_at: opt_ts(row, "verified_at")?,
        rejected_at: opt_ts(row, "rejected_at")?,
        rejection_reason: get(row, "rejection_reason")?,
        claim_epoch: get(row, "claim_epoch")?,
        lease_expires_at: opt_ts(row, "lease_expires_at")?,
        iteration_count: get(row, "iteration_count")?,
        rejections_since_clear: get(row, "rejections_since_clear")?,
        escalated: get(row, "escalated")?,
        escalated_at: opt_ts(row, "escalated_at")?,
        escalation_locked: get(row, "escalation_locked")?,
        review_requested_at: opt_ts(row, "review_requested_at")?,
        last_review_at: opt_ts(row, "last_review_at")?,
        verified_by_agent_id: get(row, "verified_by_agent_id")?,
        contracted_by_agent_id: get(row, "contracted_by_agent_id")?,
        contracted_at: opt_ts(row, "contracted_at")?,
        stale_since: opt_ts(row, "stale_since")?,
        previous_assignee_agent_id: get(row, "previous_assignee_agent_id")?,
    };
    Ok(StoryRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        project_id: get(row, "project_id")?,
        epic_id: get(row, "epic_id")?,
        number: get(row, "number")?,
        sort_key: get(row, "sort_key")?,
        title: get(row, "title")?,
        description: get(row, "description")?,
        acceptance_criteria: json_col(row, "acceptance_criteria")?,
        estimated_hours: get(row, "estimated_hours")?,
        metadata: json_col(row, "metadata")?,
        state,
        lock_version: get(row, "lock_version")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn epic_counts(row: &PgRow) -> Result<EpicCounts, StoreError> {
    Ok(EpicCounts {
        epic_id: get(row, "epic_id")?,
        total: get(row, "total")?,
        pending: get(row, "pending")?,
        contracted: get(row, "contracted")?,
        assigned: get(row, "assigned")?,
        implementing: get(row, "implementing")?,
        stale: get(row, "stale")?,
        reported: get(row, "reported")?,
        verified: get(row, "verified")?,
        rejected: get(row, "rejected")?,
        escalated: get(row, "escalated")?,
        hours_total: get(row, "hours_total")?,
        hours_verified: get(row, "hours_verified")?,
    })
}

pub(crate) fn dependency(row: &PgRow) -> Result<DependencyRecord, StoreError> {
    Ok(DependencyRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        project_id: get(row, "project_id")?,
        from_id: get(row, "from_id")?,
        to_id: get(row, "to_id")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn artifact(row: &PgRow) -> Result<ArtifactRecord, StoreError> {
    Ok(ArtifactRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        story_id: get(row, "story_id")?,
        reported_by: get(row, "reported_by")?,
        reporter_agent_id: get(row, "reporter_agent_id")?,
        artifact_type: get(row, "artifact_type")?,
        path: get(row, "path")?,
        exists: get(row, "exists")?,
        details: json_col(row, "details")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn webhook(row: &PgRow) -> Result<WebhookRecord, StoreError> {
    let actions: String = get(row, "actions")?;
    let actions = WebhookRecord::actions_from_column(&actions);
    Ok(WebhookRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        project_id: get(row, "project_id")?,
        url: get(row, "url")?,
        actions,
        enabled: get(row, "enabled")?,
        disabled_reason: get(row, "disabled_reason")?,
        consecutive_failures: get(row, "consecutive_failures")?,
        created_by: get(row, "created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn delivery(row: &PgRow) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        webhook_id: get(row, "webhook_id")?,
        event_cursor: get(row, "event_cursor")?,
        status: get(row, "status")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: ts(row, "next_attempt_at")?,
        leased_until: opt_ts(row, "leased_until")?,
        last_status: get(row, "last_status")?,
        last_error: get(row, "last_error")?,
        last_latency_ms: get(row, "last_latency_ms")?,
        delivered_at: opt_ts(row, "delivered_at")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn audit_link(row: &PgRow) -> Result<AuditLink, StoreError> {
    let key_id: Option<String> = get(row, "seal_key_id")?;
    let signature: Option<String> = get(row, "seal_signature")?;
    let sealed_at = opt_ts(row, "sealed_at")?;
    let seal = match (key_id, signature, sealed_at) {
        (Some(key_id), Some(signature), Some(sealed_at)) => Some(AuditSeal { key_id, signature, sealed_at }),
        _ => None,
    };
    Ok(AuditLink {
        tenant_id: get(row, "tenant_id")?,
        cursor: get(row, "cursor")?,
        event_id: get(row, "event_id")?,
        prev_hash: get(row, "prev_hash")?,
        hash: get(row, "hash")?,
        seal,
    })
}

pub(crate) fn token_usage(row: &PgRow) -> Result<TokenUsageRecord, StoreError> {
    Ok(TokenUsageRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        project_id: get(row, "project_id")?,
        story_id: get(row, "story_id")?,
        agent_id: get(row, "agent_id")?,
        phase: get(row, "phase")?,
        input_tokens: get(row, "input_tokens")?,
        output_tokens: get(row, "output_tokens")?,
        cost_millicents: get(row, "cost_millicents")?,
        model_name: get(row, "model_name")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn review(row: &PgRow) -> Result<ReviewRecord, StoreError> {
    Ok(ReviewRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        story_id: get(row, "story_id")?,
        reviewer_agent_id: get(row, "reviewer_agent_id")?,
        review_type: get(row, "review_type")?,
        findings_count: get(row, "findings_count")?,
        fixes_count: get(row, "fixes_count")?,
        disproved_count: get(row, "disproved_count")?,
        summary: get(row, "summary")?,
        findings: json_col(row, "findings")?,
        completed_at: ts(row, "completed_at")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn verification(row: &PgRow) -> Result<VerificationRecord, StoreError> {
    Ok(VerificationRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        story_id: get(row, "story_id")?,
        verifier_agent_id: get(row, "verifier_agent_id")?,
        result: get(row, "result")?,
        summary: get(row, "summary")?,
        findings: json_col(row, "findings")?,
        review_type: get(row, "review_type")?,
        iteration: get(row, "iteration")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn orchestrator_state(row: &PgRow) -> Result<OrchestratorStateRecord, StoreError> {
    Ok(OrchestratorStateRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        project_id: get(row, "project_id")?,
        state_key: get(row, "state_key")?,
        state_data: json_col(row, "state_data")?,
        version: get(row, "version")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn event(row: &PgRow) -> Result<EventRecord, StoreError> {
    let role: Option<String> = get(row, "actor_role")?;
    Ok(EventRecord {
        cursor: get(row, "cursor")?,
        event: NewEvent {
            id: get(row, "id")?,
            tenant_id: get(row, "tenant_id")?,
            project_id: get(row, "project_id")?,
            entity_type: get(row, "entity_type")?,
            entity_id: get(row, "entity_id")?,
            action: get(row, "action")?,
            actor: ActorStamp {
                actor_type: get(row, "actor_type")?,
                key_id: get(row, "actor_key_id")?,
                agent_id: get(row, "actor_agent_id")?,
                role: role.map(|r| r.parse()).transpose().map_err(StoreError::Backend)?,
                label: get(row, "actor_label")?,
            },
            old_state: json_col(row, "old_state")?,
            new_state: json_col(row, "new_state")?,
            metadata: json_col(row, "metadata")?,
            inserted_at: ts(row, "inserted_at")?,
        },
    })
}

pub(crate) fn skill_version(row: &PgRow) -> Result<SkillVersionRecord, StoreError> {
    Ok(SkillVersionRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        version: get(row, "version")?,
        prompt_text: get(row, "prompt_text")?,
        changelog: get(row, "changelog")?,
        created_by: get(row, "created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn skill_result(row: &PgRow) -> Result<SkillResultRecord, StoreError> {
    Ok(SkillResultRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        name: get(row, "name")?,
        version: get(row, "version")?,
        story_id: get(row, "story_id")?,
        result: get(row, "result")?,
        metrics: json_col(row, "metrics")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn idempotent_response(row: &PgRow) -> Result<IdempotentResponse, StoreError> {
    let status: i32 = get(row, "status")?;
    Ok(IdempotentResponse {
        scope: get(row, "scope")?,
        key: get(row, "key")?,
        method: get(row, "method")?,
        path: get(row, "path")?,
        status: u16::try_from(status).unwrap_or(500),
        body: get(row, "body")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn criterion_record(row: &PgRow) -> Result<CriterionRecord, StoreError> {
    Ok(CriterionRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        story_id: get(row, "story_id")?,
        ac_id: get(row, "ac_id")?,
        kind: get(row, "kind")?,
        round: get(row, "round")?,
        verdict: get(row, "verdict")?,
        detail: json_col(row, "detail")?,
        actor_agent_id: get(row, "actor_agent_id")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) fn verification_run(row: &PgRow) -> Result<VerificationRunRecord, StoreError> {
    Ok(VerificationRunRecord {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        story_id: get(row, "story_id")?,
        round: get(row, "round")?,
        result: get(row, "result")?,
        commit_sha: get(row, "commit_sha")?,
        checks: json_col(row, "checks")?,
        recorded_by_agent_id: get(row, "recorded_by_agent_id")?,
        signature: get(row, "signature")?,
        created_at: ts(row, "created_at")?,
        signed_payload: get(row, "signed_payload")?,
        key_id: get(row, "key_id")?,
    })
}
