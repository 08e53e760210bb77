-- loopctl schema for PostgreSQL. The same tables, columns, constraints and triggers as the
-- SQLite schema, with native types: uuid ids, timestamptz times (microseconds, like the
-- SQLite integers), jsonb documents, boolean flags. Columns that hold a Rust i32
-- (iteration_count, rejections_since_clear) are integer so they decode without a cast.

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    email text,
    settings jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE agents (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name text NOT NULL,
    agent_type text NOT NULL CHECK (agent_type IN ('orchestrator', 'implementer')),
    status text NOT NULL DEFAULT 'active',
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
    name text NOT NULL,
    key_hash bytea NOT NULL UNIQUE,
    key_prefix text NOT NULL,
    role text NOT NULL CHECK (role IN ('superadmin', 'user', 'orchestrator', 'agent')),
    agent_id uuid REFERENCES agents(id),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    created_at timestamptz NOT NULL,
    CHECK (tenant_id IS NOT NULL OR role = 'superadmin')
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- A key's role never changes: a leaked agent key must not become an orchestrator key.
CREATE FUNCTION api_keys_role_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'api key role is immutable';
END;
$$;
CREATE TRIGGER api_keys_role_immutable BEFORE UPDATE OF role ON api_keys
FOR EACH ROW WHEN (NEW.role IS DISTINCT FROM OLD.role)
EXECUTE FUNCTION api_keys_role_immutable();

CREATE TABLE projects (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name text NOT NULL,
    slug text NOT NULL,
    repo_url text,
    description text,
    tech_stack text,
    mission text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, slug)
);

CREATE TABLE epics (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    number bigint NOT NULL CHECK (number > 0),
    title text NOT NULL,
    description text,
    phase text,
    position bigint NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (project_id, number)
);

CREATE TABLE stories (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    epic_id uuid NOT NULL REFERENCES epics(id) ON DELETE CASCADE,
    number text NOT NULL,
    sort_key bigint NOT NULL,
    title text NOT NULL,
    description text,
    acceptance_criteria jsonb NOT NULL DEFAULT '[]',
    estimated_hours double precision,
    metadata jsonb NOT NULL DEFAULT '{}',
    agent_status text NOT NULL DEFAULT 'pending'
        CHECK (agent_status IN ('pending', 'contracted', 'assigned', 'implementing', 'reported_done')),
    verified_status text NOT NULL DEFAULT 'unverified'
        CHECK (verified_status IN ('unverified', 'verified', 'rejected')),
    assigned_agent_id uuid,
    assigned_at timestamptz,
    reported_done_at timestamptz,
    reported_by_agent_id uuid,
    verified_at timestamptz,
    rejected_at timestamptz,
    rejection_reason text,
    claim_epoch bigint NOT NULL DEFAULT 0,
    lease_expires_at timestamptz,
    iteration_count integer NOT NULL DEFAULT 0,
    rejections_since_clear integer NOT NULL DEFAULT 0,
    escalated boolean NOT NULL DEFAULT false,
    escalated_at timestamptz,
    escalation_locked boolean NOT NULL DEFAULT false,
    review_requested_at timestamptz,
    last_review_at timestamptz,
    lock_version bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
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
CREATE FUNCTION stories_counters_only_rise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'iteration_count and claim_epoch only rise';
END;
$$;
CREATE TRIGGER stories_counters_only_rise BEFORE UPDATE ON stories
FOR EACH ROW WHEN (NEW.iteration_count < OLD.iteration_count OR NEW.claim_epoch < OLD.claim_epoch)
EXECUTE FUNCTION stories_counters_only_rise();

CREATE TABLE story_dependencies (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    depends_on_story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    UNIQUE (story_id, depends_on_story_id),
    CHECK (story_id <> depends_on_story_id)
);
CREATE INDEX story_dependencies_project ON story_dependencies (project_id);
-- PostgreSQL does not index the referencing side of a foreign key; without these, deleting
-- a story scans the whole table for dependencies to cascade.
CREATE INDEX story_dependencies_depends_on ON story_dependencies (depends_on_story_id);

CREATE TABLE epic_dependencies (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    epic_id uuid NOT NULL REFERENCES epics(id) ON DELETE CASCADE,
    depends_on_epic_id uuid NOT NULL REFERENCES epics(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    UNIQUE (epic_id, depends_on_epic_id),
    CHECK (epic_id <> depends_on_epic_id)
);
CREATE INDEX epic_dependencies_project ON epic_dependencies (project_id);
CREATE INDEX epic_dependencies_depends_on ON epic_dependencies (depends_on_epic_id);

CREATE TABLE artifacts (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    reported_by text NOT NULL,
    reporter_agent_id uuid,
    artifact_type text NOT NULL,
    path text,
    "exists" boolean NOT NULL DEFAULT true,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE INDEX artifacts_story ON artifacts (story_id, created_at);

CREATE TABLE reviews (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    reviewer_agent_id uuid,
    review_type text NOT NULL,
    findings_count bigint NOT NULL DEFAULT 0,
    fixes_count bigint NOT NULL DEFAULT 0,
    disproved_count bigint NOT NULL DEFAULT 0,
    summary text,
    findings jsonb NOT NULL DEFAULT '{}',
    completed_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX reviews_story ON reviews (story_id, completed_at);

-- Custody in the database: the implementer never reviews its own story.
CREATE FUNCTION reviews_not_by_implementer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM stories s
               WHERE s.id = NEW.story_id AND s.assigned_agent_id = NEW.reviewer_agent_id) THEN
        RAISE EXCEPTION 'custody: self_review_blocked';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER reviews_not_by_implementer BEFORE INSERT ON reviews
FOR EACH ROW WHEN (NEW.reviewer_agent_id IS NOT NULL)
EXECUTE FUNCTION reviews_not_by_implementer();

CREATE TABLE verifications (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    verifier_agent_id uuid,
    result text NOT NULL CHECK (result IN ('pass', 'fail', 'partial')),
    summary text,
    findings jsonb NOT NULL DEFAULT '{}',
    review_type text,
    iteration bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX verifications_story ON verifications (story_id, created_at);

-- Custody in the database: the implementer never verifies or rejects its own story.
CREATE FUNCTION verifications_not_by_implementer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM stories s
               WHERE s.id = NEW.story_id AND s.assigned_agent_id = NEW.verifier_agent_id) THEN
        RAISE EXCEPTION 'custody: self_verify_blocked';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER verifications_not_by_implementer BEFORE INSERT ON verifications
FOR EACH ROW WHEN (NEW.verifier_agent_id IS NOT NULL)
EXECUTE FUNCTION verifications_not_by_implementer();

CREATE TABLE orchestrator_states (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    state_key text NOT NULL,
    state_data jsonb NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (project_id, state_key)
);

-- The audit log and change feed in one append-only table; `cursor` is the feed position.
-- Cursors come from a sequence, so they rise in insertion order but not in commit order;
-- the store serialises the event-writing transactions of a tenant (an advisory lock, see
-- src/apply.rs) so that within a tenant they also become visible in cursor order.
CREATE TABLE events (
    cursor BIGSERIAL PRIMARY KEY,
    id uuid NOT NULL UNIQUE,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid,
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    action text NOT NULL,
    actor_type text NOT NULL,
    actor_key_id uuid,
    actor_agent_id uuid,
    actor_role text,
    actor_label text NOT NULL,
    old_state jsonb NOT NULL DEFAULT '{}',
    new_state jsonb NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}',
    inserted_at timestamptz NOT NULL
);
CREATE INDEX events_tenant_cursor ON events (tenant_id, cursor);
CREATE INDEX events_project_cursor ON events (project_id, cursor);
CREATE INDEX events_entity ON events (tenant_id, entity_type, entity_id, cursor);
CREATE INDEX events_tenant_time ON events (tenant_id, inserted_at);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
FOR EACH ROW EXECUTE FUNCTION events_append_only();
CREATE TRIGGER events_append_only_truncate BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();

-- Deleting events is refused unless their tenant is gone: the cascade from a deleted
-- tenant runs after the tenant row is deleted, so it passes.
CREATE FUNCTION events_append_only_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tenants t WHERE t.id = OLD.tenant_id) THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
FOR EACH ROW EXECUTE FUNCTION events_append_only_delete();
