-- The ready frontier is maintained, not recomputed: every story counts its unverified direct
-- dependencies (`waiting_on`), every epic counts its stories, its unverified stories and the
-- epics it depends on that still have some. Triggers keep the counts in the transaction of every
-- write that changes them (verdicts, imports, dependency edits, moves, deletes), whoever
-- writes, so `ready` reads one partial index in work order and stops at the page.
ALTER TABLE stories ADD COLUMN waiting_on bigint NOT NULL DEFAULT 0 CHECK (waiting_on >= 0);
ALTER TABLE epics ADD COLUMN stories_total bigint NOT NULL DEFAULT 0 CHECK (stories_total >= 0);
ALTER TABLE epics ADD COLUMN unverified_stories bigint NOT NULL DEFAULT 0 CHECK (unverified_stories >= 0);
ALTER TABLE epics ADD COLUMN waiting_on bigint NOT NULL DEFAULT 0 CHECK (waiting_on >= 0);

UPDATE stories SET waiting_on = (
    SELECT COUNT(*) FROM story_dependencies d JOIN stories t ON t.id = d.depends_on_story_id
    WHERE d.story_id = stories.id AND t.verified_status <> 'verified');
UPDATE epics SET stories_total = (SELECT COUNT(*) FROM stories s WHERE s.epic_id = epics.id);
UPDATE epics SET unverified_stories = (
    SELECT COUNT(*) FROM stories s WHERE s.epic_id = epics.id AND s.verified_status <> 'verified');
UPDATE epics SET waiting_on = (
    SELECT COUNT(*) FROM epic_dependencies d JOIN epics t ON t.id = d.depends_on_epic_id
    WHERE d.epic_id = epics.id AND t.unverified_stories > 0);

CREATE INDEX epics_work_order ON epics (project_id, position, number);
-- Open stories (waiting for a claimer, nothing to wait for), in work order within their epic.
CREATE INDEX stories_open ON stories (epic_id, sort_key)
    WHERE agent_status IN ('pending', 'contracted') AND waiting_on = 0 AND NOT escalation_locked;
-- Stories not yet claimed that wait for something: the `blocked` list pages this.
CREATE INDEX stories_unclaimed ON stories (epic_id, sort_key, waiting_on) WHERE agent_status IN ('pending', 'contracted');
-- Lists filtered by status, read epic by epic in work order (no sort of the project's rows).
CREATE INDEX stories_epic_status ON stories (epic_id, agent_status, sort_key);
-- Everything progress and `status` count, so the per-epic counts read this index alone.
CREATE INDEX stories_stage_counts ON stories
    (project_id, epic_id, agent_status, verified_status, escalated, lease_expires_at, estimated_hours, tenant_id);
-- A project's claims by lease end: the stale ones of `ready`, `claim-next` and reclaiming.
CREATE INDEX stories_project_lease ON stories (project_id, lease_expires_at) WHERE agent_status IN ('assigned', 'implementing');

CREATE FUNCTION frontier_story_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_open boolean := TG_OP <> 'INSERT' AND OLD.verified_status <> 'verified';
    is_open boolean := TG_OP <> 'DELETE' AND NEW.verified_status <> 'verified';
BEGIN
    IF TG_OP = 'UPDATE' AND was_open <> is_open THEN
        UPDATE stories SET waiting_on = waiting_on + (CASE WHEN is_open THEN 1 ELSE -1 END)
        WHERE id IN (SELECT story_id FROM story_dependencies WHERE depends_on_story_id = NEW.id);
    END IF;
    IF TG_OP = 'INSERT' THEN
        UPDATE epics SET stories_total = stories_total + 1 WHERE id = NEW.epic_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE epics SET stories_total = stories_total - 1 WHERE id = OLD.epic_id;
    ELSIF OLD.epic_id <> NEW.epic_id THEN
        UPDATE epics SET stories_total = stories_total - 1 WHERE id = OLD.epic_id;
        UPDATE epics SET stories_total = stories_total + 1 WHERE id = NEW.epic_id;
    END IF;
    IF was_open AND (NOT is_open OR OLD.epic_id <> NEW.epic_id) THEN
        UPDATE epics SET unverified_stories = unverified_stories - 1 WHERE id = OLD.epic_id;
    END IF;
    IF is_open AND (NOT was_open OR OLD.epic_id <> NEW.epic_id) THEN
        UPDATE epics SET unverified_stories = unverified_stories + 1 WHERE id = NEW.epic_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER frontier_story_changed AFTER INSERT OR DELETE OR UPDATE OF verified_status, epic_id ON stories
FOR EACH ROW EXECUTE FUNCTION frontier_story_changed();

-- An epic that gains its first unverified story, or loses its last, changes what every epic
-- depending on it waits for.
CREATE FUNCTION frontier_epic_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE epics SET waiting_on = waiting_on + (CASE WHEN NEW.unverified_stories > 0 THEN 1 ELSE -1 END)
    WHERE id IN (SELECT epic_id FROM epic_dependencies WHERE depends_on_epic_id = NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER frontier_epic_settled AFTER UPDATE OF unverified_stories ON epics
FOR EACH ROW WHEN ((OLD.unverified_stories > 0) <> (NEW.unverified_stories > 0))
EXECUTE FUNCTION frontier_epic_settled();

-- An added edge counts when its target is unverified; a removed one is counted again rather
-- than decremented, since the edge may go because its target is being deleted (a cascade).
CREATE FUNCTION frontier_story_dependency_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE stories SET waiting_on = waiting_on + 1 WHERE id = NEW.story_id
            AND EXISTS (SELECT 1 FROM stories t WHERE t.id = NEW.depends_on_story_id AND t.verified_status <> 'verified');
    ELSE
        UPDATE stories SET waiting_on = (
            SELECT COUNT(*) FROM story_dependencies d JOIN stories t ON t.id = d.depends_on_story_id
            WHERE d.story_id = OLD.story_id AND t.verified_status <> 'verified')
        WHERE id = OLD.story_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER frontier_story_dependency_changed AFTER INSERT OR DELETE ON story_dependencies
FOR EACH ROW EXECUTE FUNCTION frontier_story_dependency_changed();

CREATE FUNCTION frontier_epic_dependency_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE epics SET waiting_on = waiting_on + 1 WHERE id = NEW.epic_id
            AND EXISTS (SELECT 1 FROM epics t WHERE t.id = NEW.depends_on_epic_id AND t.unverified_stories > 0);
    ELSE
        UPDATE epics SET waiting_on = (
            SELECT COUNT(*) FROM epic_dependencies d JOIN epics t ON t.id = d.depends_on_epic_id
            WHERE d.epic_id = OLD.epic_id AND t.unverified_stories > 0)
        WHERE id = OLD.epic_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER frontier_epic_dependency_changed AFTER INSERT OR DELETE ON epic_dependencies
FOR EACH ROW EXECUTE FUNCTION frontier_epic_dependency_changed();
