-- The ready frontier is maintained, not recomputed: every story counts its unverified direct
-- dependencies (`waiting_on`), every epic counts its stories, its unverified stories and the
-- epics it depends on that still have some. Triggers keep the counts in the transaction of every
-- write that changes them (verdicts, imports, dependency edits, moves, deletes), whoever
-- writes, so `ready` reads one partial index in work order and stops at the page.
ALTER TABLE stories ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0 CHECK (waiting_on >= 0);
ALTER TABLE epics ADD COLUMN stories_total INTEGER NOT NULL DEFAULT 0 CHECK (stories_total >= 0);
ALTER TABLE epics ADD COLUMN unverified_stories INTEGER NOT NULL DEFAULT 0 CHECK (unverified_stories >= 0);
ALTER TABLE epics ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0 CHECK (waiting_on >= 0);

UPDATE stories SET waiting_on = (
    SELECT COUNT(*) FROM story_dependencies d JOIN stories t ON t.id = d.depends_on_story_id
    WHERE d.story_id = stories.id AND t.verified_status <> 'verified');
UPDATE epics SET stories_total = (SELECT COUNT(*) FROM stories s WHERE s.epic_id = epics.id);
UPDATE epics SET unverified_stories = (
    SELECT COUNT(*) FROM stories s WHERE s.epic_id = epics.id AND s.verified_status <> 'verified');
UPDATE epics SET waiting_on = (
    SELECT COUNT(*) FROM epic_dependencies d JOIN epics t ON t.id = d.depends_on_epic_id
    WHERE d.epic_id = epics.id AND t.unverified_stories > 0);

CREATE INDEX IF NOT EXISTS story_dependencies_depends_on ON story_dependencies (depends_on_story_id);
CREATE INDEX IF NOT EXISTS epic_dependencies_depends_on ON epic_dependencies (depends_on_epic_id);
CREATE INDEX epics_work_order ON epics (project_id, position, number);
-- Open stories (waiting for a claimer, nothing to wait for), in work order within their epic.
CREATE INDEX stories_open ON stories (epic_id, sort_key)
    WHERE agent_status IN ('pending', 'contracted') AND waiting_on = 0 AND escalation_locked = 0;
-- Stories not yet claimed that wait for something: the `blocked` list pages this.
CREATE INDEX stories_unclaimed ON stories (epic_id, sort_key, waiting_on) WHERE agent_status IN ('pending', 'contracted');
-- Lists filtered by status, read epic by epic in work order (no sort of the project's rows).
CREATE INDEX stories_epic_status ON stories (epic_id, agent_status, sort_key);
-- Everything progress and `status` count, so the per-epic counts read this index alone.
CREATE INDEX stories_stage_counts ON stories
    (project_id, epic_id, agent_status, verified_status, escalated, lease_expires_at, estimated_hours, tenant_id);
-- A project's claims by lease end: the stale ones of `ready`, `claim-next` and reclaiming.
CREATE INDEX stories_project_lease ON stories (project_id, lease_expires_at) WHERE agent_status IN ('assigned', 'implementing');

CREATE TRIGGER frontier_story_counted_in AFTER INSERT ON stories
BEGIN
    UPDATE epics SET stories_total = stories_total + 1 WHERE id = NEW.epic_id;
END;

CREATE TRIGGER frontier_story_counted_out AFTER DELETE ON stories
BEGIN
    UPDATE epics SET stories_total = stories_total - 1 WHERE id = OLD.epic_id;
END;

CREATE TRIGGER frontier_story_recounted AFTER UPDATE OF epic_id ON stories WHEN OLD.epic_id <> NEW.epic_id
BEGIN
    UPDATE epics SET stories_total = stories_total - 1 WHERE id = OLD.epic_id;
    UPDATE epics SET stories_total = stories_total + 1 WHERE id = NEW.epic_id;
END;

CREATE TRIGGER frontier_story_added AFTER INSERT ON stories WHEN NEW.verified_status <> 'verified'
BEGIN
    UPDATE epics SET unverified_stories = unverified_stories + 1 WHERE id = NEW.epic_id;
END;

CREATE TRIGGER frontier_story_removed AFTER DELETE ON stories WHEN OLD.verified_status <> 'verified'
BEGIN
    UPDATE epics SET unverified_stories = unverified_stories - 1 WHERE id = OLD.epic_id;
END;

CREATE TRIGGER frontier_story_moved AFTER UPDATE OF epic_id ON stories
WHEN OLD.epic_id <> NEW.epic_id AND NEW.verified_status <> 'verified'
BEGIN
    UPDATE epics SET unverified_stories = unverified_stories - 1 WHERE id = OLD.epic_id;
    UPDATE epics SET unverified_stories = unverified_stories + 1 WHERE id = NEW.epic_id;
END;

CREATE TRIGGER frontier_story_verdict AFTER UPDATE OF verified_status ON stories
WHEN (OLD.verified_status = 'verified') <> (NEW.verified_status = 'verified')
BEGIN
    UPDATE stories SET waiting_on = waiting_on + (CASE WHEN NEW.verified_status = 'verified' THEN -1 ELSE 1 END)
    WHERE id IN (SELECT story_id FROM story_dependencies WHERE depends_on_story_id = NEW.id);
    UPDATE epics SET unverified_stories = unverified_stories + (CASE WHEN NEW.verified_status = 'verified' THEN -1 ELSE 1 END)
    WHERE id = NEW.epic_id;
END;

-- An epic that gains its first unverified story, or loses its last, changes what every epic
-- depending on it waits for.
CREATE TRIGGER frontier_epic_settled AFTER UPDATE OF unverified_stories ON epics
WHEN (OLD.unverified_stories > 0) <> (NEW.unverified_stories > 0)
BEGIN
    UPDATE epics SET waiting_on = waiting_on + (CASE WHEN NEW.unverified_stories > 0 THEN 1 ELSE -1 END)
    WHERE id IN (SELECT epic_id FROM epic_dependencies WHERE depends_on_epic_id = NEW.id);
END;

CREATE TRIGGER frontier_story_dependency_added AFTER INSERT ON story_dependencies
BEGIN
    UPDATE stories SET waiting_on = waiting_on + 1 WHERE id = NEW.story_id
        AND EXISTS (SELECT 1 FROM stories t WHERE t.id = NEW.depends_on_story_id AND t.verified_status <> 'verified');
END;

-- Counted again rather than decremented: the edge may go because the story it named is being
-- deleted (a cascade), when that story's row may already be gone.
CREATE TRIGGER frontier_story_dependency_removed AFTER DELETE ON story_dependencies
BEGIN
    UPDATE stories SET waiting_on = (
        SELECT COUNT(*) FROM story_dependencies d JOIN stories t ON t.id = d.depends_on_story_id
        WHERE d.story_id = OLD.story_id AND t.verified_status <> 'verified')
    WHERE id = OLD.story_id;
END;

CREATE TRIGGER frontier_epic_dependency_added AFTER INSERT ON epic_dependencies
BEGIN
    UPDATE epics SET waiting_on = waiting_on + 1 WHERE id = NEW.epic_id
        AND EXISTS (SELECT 1 FROM epics t WHERE t.id = NEW.depends_on_epic_id AND t.unverified_stories > 0);
END;

CREATE TRIGGER frontier_epic_dependency_removed AFTER DELETE ON epic_dependencies
BEGIN
    UPDATE epics SET waiting_on = (
        SELECT COUNT(*) FROM epic_dependencies d JOIN epics t ON t.id = d.depends_on_epic_id
        WHERE d.epic_id = OLD.epic_id AND t.unverified_stories > 0)
    WHERE id = OLD.epic_id;
END;
