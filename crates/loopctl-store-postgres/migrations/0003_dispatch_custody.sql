-- Dispatch: capability tokens scoped to one story and one capacity, with lineage; and the
-- verifier of a story recorded on the row, so the database itself refuses a self-verification.

ALTER TABLE api_keys ADD COLUMN scope_story_id uuid;
ALTER TABLE api_keys ADD COLUMN scope_role text CHECK (scope_role IS NULL OR scope_role IN ('implementer', 'reviewer'));
ALTER TABLE api_keys ADD COLUMN dispatch_id uuid;

CREATE TABLE dispatches (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    parent_dispatch_id uuid REFERENCES dispatches(id),
    dispatched_by_key_id uuid NOT NULL,
    dispatched_by_agent_id uuid,
    agent_id uuid NOT NULL REFERENCES agents(id),
    api_key_id uuid NOT NULL REFERENCES api_keys(id),
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('implementer', 'reviewer')),
    lineage_path jsonb NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX dispatches_story ON dispatches (tenant_id, story_id, created_at);

CREATE FUNCTION loopctl_dispatch_reviewer_not_implementer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role = 'reviewer' AND EXISTS (
        SELECT 1 FROM stories s WHERE s.id = NEW.story_id AND s.assigned_agent_id = NEW.agent_id) THEN
        RAISE EXCEPTION 'custody: self_review_blocked';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER dispatches_reviewer_not_implementer BEFORE INSERT ON dispatches
    FOR EACH ROW EXECUTE FUNCTION loopctl_dispatch_reviewer_not_implementer();

ALTER TABLE stories ADD COLUMN verified_by_agent_id uuid;

CREATE FUNCTION loopctl_story_custody() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The verifier of a story is never its implementer, whoever writes the row.
    IF NEW.verified_by_agent_id IS NOT NULL AND NEW.verified_by_agent_id = NEW.assigned_agent_id THEN
        RAISE EXCEPTION 'custody: self_verify_blocked';
    END IF;
    -- Verified only from reported_done (or by backfill of an untouched story).
    IF NEW.verified_status = 'verified' AND OLD.verified_status <> 'verified'
        AND OLD.agent_status <> 'reported_done'
        AND NOT (OLD.agent_status = 'pending' AND OLD.assigned_agent_id IS NULL) THEN
        RAISE EXCEPTION 'custody: verified only from reported_done or by backfill';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER stories_custody BEFORE UPDATE ON stories
    FOR EACH ROW EXECUTE FUNCTION loopctl_story_custody();
