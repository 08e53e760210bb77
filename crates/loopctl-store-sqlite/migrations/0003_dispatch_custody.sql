-- Dispatch: capability tokens scoped to one story and one capacity, with lineage; and the
-- verifier of a story recorded on the row, so the database itself refuses a self-verification.

ALTER TABLE api_keys ADD COLUMN scope_story_id BLOB;
ALTER TABLE api_keys ADD COLUMN scope_role TEXT CHECK (scope_role IS NULL OR scope_role IN ('implementer', 'reviewer'));
ALTER TABLE api_keys ADD COLUMN dispatch_id BLOB;

CREATE TABLE dispatches (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    parent_dispatch_id BLOB REFERENCES dispatches(id),
    dispatched_by_key_id BLOB NOT NULL,
    dispatched_by_agent_id BLOB,
    agent_id BLOB NOT NULL REFERENCES agents(id),
    api_key_id BLOB NOT NULL REFERENCES api_keys(id),
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('implementer', 'reviewer')),
    lineage_path TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX dispatches_story ON dispatches (tenant_id, story_id, created_at);

-- A reviewer dispatch never goes to the story's implementer.
CREATE TRIGGER dispatches_reviewer_not_implementer BEFORE INSERT ON dispatches
WHEN NEW.role = 'reviewer' AND EXISTS (
    SELECT 1 FROM stories s WHERE s.id = NEW.story_id AND s.assigned_agent_id = NEW.agent_id)
BEGIN
    SELECT RAISE(ABORT, 'custody: self_review_blocked');
END;

ALTER TABLE stories ADD COLUMN verified_by_agent_id BLOB;

-- The verifier of a story is never its implementer, whoever writes the row.
CREATE TRIGGER stories_not_verified_by_implementer BEFORE UPDATE ON stories
WHEN NEW.verified_by_agent_id IS NOT NULL AND NEW.verified_by_agent_id = NEW.assigned_agent_id
BEGIN
    SELECT RAISE(ABORT, 'custody: self_verify_blocked');
END;

-- Verified only from reported_done: a write that skips the report is refused.
CREATE TRIGGER stories_verified_after_report BEFORE UPDATE OF verified_status ON stories
WHEN NEW.verified_status = 'verified' AND OLD.verified_status <> 'verified'
    AND OLD.agent_status NOT IN ('reported_done') AND NOT (OLD.agent_status = 'pending' AND OLD.assigned_agent_id IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'custody: verified only from reported_done or by backfill');
END;
