-- A story becomes verified only together with the event that says who verified it (a key,
-- never the system): a row written around the server, or a verify that skips its audit, is
-- refused. Checked at commit, so the order of a batch's writes does not matter.
CREATE FUNCTION stories_verified_with_its_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.verified_status = 'verified' AND OLD.verified_status <> 'verified' AND NOT EXISTS (
        SELECT 1 FROM events e WHERE e.entity_id = NEW.id AND e.action IN ('verified', 'backfilled')
            AND e.actor_type <> 'system' AND e.actor_key_id IS NOT NULL AND e.inserted_at >= OLD.updated_at) THEN
        RAISE EXCEPTION 'custody: verified only with the event that names its verifier';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER stories_verified_with_its_event AFTER UPDATE OF verified_status ON stories
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION stories_verified_with_its_event();
