-- A story becomes verified only together with the event that says who verified it (a key,
-- never the system): a row written around the server, or a verify that skips its audit, is
-- refused. The writer applies a batch's events before its story updates.
CREATE TRIGGER stories_verified_with_its_event BEFORE UPDATE OF verified_status ON stories
WHEN NEW.verified_status = 'verified' AND OLD.verified_status <> 'verified'
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.entity_id = NEW.id AND e.action IN ('verified', 'backfilled')
                    AND e.actor_type <> 'system' AND e.actor_key_id IS NOT NULL AND e.inserted_at >= OLD.updated_at)
BEGIN
    SELECT RAISE(ABORT, 'custody: verified only with the event that names its verifier');
END;
