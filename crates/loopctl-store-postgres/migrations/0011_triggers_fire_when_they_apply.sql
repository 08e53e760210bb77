-- The story triggers fired on every UPDATE of a story (the service's UPDATE sets every
-- column, so `UPDATE OF verified_status` matched every transition), and each firing is a
-- PL/pgSQL call: a fifth of the database's work in the seed loop, for checks that apply to
-- one transition in five. Each trigger now says when its function can act, in the terms
-- of the function's own first test; the functions are unchanged.

DROP TRIGGER stories_custody ON stories;
CREATE TRIGGER stories_custody BEFORE UPDATE ON stories FOR EACH ROW
    WHEN (NEW.verified_by_agent_id IS NOT NULL OR NEW.verified_status = 'verified')
    EXECUTE FUNCTION loopctl_story_custody();

DROP TRIGGER stories_verified_with_its_event ON stories;
CREATE CONSTRAINT TRIGGER stories_verified_with_its_event AFTER UPDATE OF verified_status ON stories
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.verified_status = 'verified' AND OLD.verified_status <> 'verified')
    EXECUTE FUNCTION stories_verified_with_its_event();

-- An insert or delete always changes the epic's counts; an update only when the story
-- opens, closes or moves to another epic.
DROP TRIGGER frontier_story_changed ON stories;
CREATE TRIGGER frontier_story_counted AFTER INSERT OR DELETE ON stories
    FOR EACH ROW EXECUTE FUNCTION frontier_story_changed();
CREATE TRIGGER frontier_story_changed AFTER UPDATE OF verified_status, epic_id ON stories FOR EACH ROW
    WHEN ((OLD.verified_status <> 'verified') <> (NEW.verified_status <> 'verified') OR OLD.epic_id <> NEW.epic_id)
    EXECUTE FUNCTION frontier_story_changed();
