-- loopctl schema for SQLite. Ids are 16-byte UUID blobs, times are INTEGER microseconds
-- since the Unix epoch (so they compare and index as numbers), JSON is TEXT.

CREATE TABLE tenants (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    email TEXT,
    settings TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE agents (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    agent_type TEXT NOT NULL CHECK (agent_type IN ('orchestrator', 'implementer')),
    status TEXT NOT NULL DEFAULT 'active',
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY,
    tenant_id BLOB REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superadmin', 'user', 'orchestrator', 'agent')),
    agent_id BLOB REFERENCES agents(id),
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    created_at INTEGER NOT NULL,
    CHECK (tenant_id IS NOT NULL OR role = 'superadmin')
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- A key's role never changes: a leaked agent key must not become an orchestrator key.
CREATE TRIGGER api_keys_role_immutable BEFORE UPDATE OF role ON api_keys
WHEN NEW.role <> OLD.role
BEGIN
    SELECT RAISE(ABORT, 'api key role is immutable');
END;

CREATE TABLE projects (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    repo_url TEXT,
    description TEXT,
    tech_stack TEXT,
    mission TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE epics (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    number INTEGER NOT NULL CHECK (number > 0),
    title TEXT NOT NULL,
    description TEXT,
    phase TEXT,
    position INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, number)
);

CREATE TABLE stories (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    epic_id BLOB NOT NULL REFERENCES epics(id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    sort_key INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    acceptance_criteria TEXT NOT NULL DEFAULT '[]',
    estimated_hours REAL,
    metadata TEXT NOT NULL DEFAULT '{}',
    agent_status TEXT NOT NULL DEFAULT 'pending'
        CHECK (agent_status IN ('pending', 'contracted', 'assigned', 'implementing', 'reported_done')),
    verified_status TEXT NOT NULL DEFAULT 'unverified'
        CHECK (verified_status IN ('unverified', 'verified', 'rejected')),
    assigned_agent_id BLOB,
    assigned_at INTEGER,
    reported_done_at INTEGER,
    reported_by_agent_id BLOB,
    verified_at INTEGER,
    rejected_at INTEGER,
    rejection_reason TEXT,
    claim_epoch INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    iteration_count INTEGER NOT NULL DEFAULT 0,
    rejections_since_clear INTEGER NOT NULL DEFAULT 0,
    escalated INTEGER NOT NULL DEFAULT 0,
    escalated_at INTEGER,
    escalation_locked INTEGER NOT NULL DEFAULT 0,
    review_requested_at INTEGER,
    last_review_at INTEGER,
    lock_version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, number),
    -- One assignee, and only while the story is claimed.
    CHECK ((agent_status IN ('assigned', 'implementing')) = (assigned_agent_id IS NOT NULL) OR agent_status = 'reported_done'),
    -- Verified only from reported_done (backfill also lands there).
    CHECK (verified_status <> 'verified' OR agent_status = 'reported_done')
);
CREATE INDEX stories_project_order ON stories (project_id, sort_key);
CREATE INDEX stories_project_status ON stories (project_id, agent_status);
CREATE INDEX stories_epic ON stories (epic_id, sort_key);

-- Iteration counts and claim epochs only rise.
CREATE TRIGGER stories_counters_only_rise BEFORE UPDATE ON stories
WHEN NEW.iteration_count < OLD.iteration_count OR NEW.claim_epoch < OLD.claim_epoch
BEGIN
    SELECT RAISE(ABORT, 'iteration_count and claim_epoch only rise');
END;

CREATE TABLE story_dependencies (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    depends_on_story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    UNIQUE (story_id, depends_on_story_id),
    CHECK (story_id <> depends_on_story_id)
);
CREATE INDEX story_dependencies_project ON story_dependencies (project_id);

CREATE TABLE epic_dependencies (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    epic_id BLOB NOT NULL REFERENCES epics(id) ON DELETE CASCADE,
    depends_on_epic_id BLOB NOT NULL REFERENCES epics(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    UNIQUE (epic_id, depends_on_epic_id),
    CHECK (epic_id <> depends_on_epic_id)
);
CREATE INDEX epic_dependencies_project ON epic_dependencies (project_id);

CREATE TABLE artifacts (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    reported_by TEXT NOT NULL,
    reporter_agent_id BLOB,
    artifact_type TEXT NOT NULL,
    path TEXT,
    "exists" INTEGER NOT NULL DEFAULT 1,
    details TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX artifacts_story ON artifacts (story_id, created_at);

CREATE TABLE reviews (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    reviewer_agent_id BLOB,
    review_type TEXT NOT NULL,
    findings_count INTEGER NOT NULL DEFAULT 0,
    fixes_count INTEGER NOT NULL DEFAULT 0,
    disproved_count INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    findings TEXT NOT NULL DEFAULT '{}',
    completed_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX reviews_story ON reviews (story_id, completed_at);

-- Custody in the database: the implementer never reviews its own story.
CREATE TRIGGER reviews_not_by_implementer BEFORE INSERT ON reviews
WHEN NEW.reviewer_agent_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM stories s WHERE s.id = NEW.story_id AND s.assigned_agent_id = NEW.reviewer_agent_id)
BEGIN
    SELECT RAISE(ABORT, 'custody: self_review_blocked');
END;

CREATE TABLE verifications (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    verifier_agent_id BLOB,
    result TEXT NOT NULL CHECK (result IN ('pass', 'fail', 'partial')),
    summary TEXT,
    findings TEXT NOT NULL DEFAULT '{}',
    review_type TEXT,
    iteration INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX verifications_story ON verifications (story_id, created_at);

-- Custody in the database: the implementer never verifies or rejects its own story.
CREATE TRIGGER verifications_not_by_implementer BEFORE INSERT ON verifications
WHEN NEW.verifier_agent_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM stories s WHERE s.id = NEW.story_id AND s.assigned_agent_id = NEW.verifier_agent_id)
BEGIN
    SELECT RAISE(ABORT, 'custody: self_verify_blocked');
END;

CREATE TABLE orchestrator_states (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    state_key TEXT NOT NULL,
    state_data TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (project_id, state_key)
);

-- The audit log and change feed in one append-only table; `cursor` is the feed position.
CREATE TABLE events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB,
    entity_type TEXT NOT NULL,
    entity_id BLOB NOT NULL,
    action TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_key_id BLOB,
    actor_agent_id BLOB,
    actor_role TEXT,
    actor_label TEXT NOT NULL,
    old_state TEXT NOT NULL DEFAULT '{}',
    new_state TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    inserted_at INTEGER NOT NULL
);
CREATE INDEX events_tenant_cursor ON events (tenant_id, cursor);
CREATE INDEX events_project_cursor ON events (project_id, cursor);
CREATE INDEX events_entity ON events (tenant_id, entity_type, entity_id, cursor);
CREATE INDEX events_tenant_time ON events (tenant_id, inserted_at);

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
WHEN EXISTS (SELECT 1 FROM tenants t WHERE t.id = OLD.tenant_id)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
