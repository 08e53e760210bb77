-- The verify check of 0008 looked its event up by entity_id alone, which is not a prefix of
-- any index: every verify read the whole events_entity index, every tenant's events, so a
-- verify grew slower with every event the database ever kept. It now names the index's
-- prefix (tenant, entity type, story).
CREATE OR REPLACE FUNCTION stories_verified_with_its_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.verified_status = 'verified' AND OLD.verified_status <> 'verified' AND NOT EXISTS (
        SELECT 1 FROM events e WHERE e.tenant_id = NEW.tenant_id AND e.entity_type = 'story' AND e.entity_id = NEW.id
            AND e.action IN ('verified', 'backfilled')
            AND e.actor_type <> 'system' AND e.actor_key_id IS NOT NULL AND e.inserted_at >= OLD.updated_at) THEN
        RAISE EXCEPTION 'custody: verified only with the event that names its verifier';
    END IF;
    RETURN NULL;
END;
$$;
