-- A transition's batch is sent as one statement (the store's `one_trip`): its Idempotency-Key
-- marker, evidence rows, compare-and-set and event, each a data-modifying CTE, so the batch is
-- its own transaction in one round trip.

-- Two outcomes those statements report by touching no row (a marker whose pair is taken, a
-- compare-and-set that lost the race) must undo the rest: the statement ends by passing both
-- counts here, and this raises when either is 0.
CREATE FUNCTION loopctl_batch_applied(marker_rows bigint, story_rows bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF marker_rows = 0 THEN
        RAISE EXCEPTION 'the Idempotency-Key is held by another request' USING ERRCODE = 'LC001';
    END IF;
    IF story_rows = 0 THEN
        RAISE EXCEPTION 'the story is not at the version the transition read' USING ERRCODE = 'LC002';
    END IF;
    RETURN true;
END;
$$;

-- Whether a claim of `story` leaves its project within `lim` stories in flight: the condition
-- of a claim's compare-and-set under an in-flight limit, so the claim too is one statement.
--
-- Under READ COMMITTED two claims of different stories would each count the other's story as
-- not yet in flight and both pass, so a claim counts only once it knows which claims may still
-- be running unseen. A VOLATILE function's statements each take a new snapshot, so the count
-- below sees every claim committed before the locks taken above it were granted.
--
-- Far below the limit, a claim holds the project's in-flight lock shared and one of
-- K = min(lim, 8) slot locks: at most K - 1 other claims run unseen, so it passes when the
-- others committed in flight are at most lim - K. Claims so commit side by side (with the lock
-- exclusive they took turns, one fsync each). Near the limit that check fails; the claim gives
-- its locks back (the block's subtransaction rolls back, and its locks with it), takes the
-- lock exclusively, which waits out every slot holder, and counts exactly. Locks are taken
-- lock first, then slot, so the waits never form a cycle. The classes are the store's
-- (`apply`): 0x6c630002 the project's in-flight lock, 0x6c630004 its slots.
CREATE FUNCTION loopctl_in_flight_room(project uuid, project_key integer, story uuid, lim integer)
RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    slots integer := least(lim, 8);
    slot integer;
    others bigint;
BEGIN
    IF slots > 1 THEN
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(1818427394, project_key);
            SELECT s INTO slot FROM generate_series(0, slots - 1) s
                WHERE pg_try_advisory_xact_lock(1818427396, project_key # s) LIMIT 1;
            IF slot IS NULL THEN
                PERFORM pg_advisory_xact_lock(1818427396, project_key # (random() * (slots - 1))::integer);
            END IF;
            SELECT count(*) INTO others FROM stories o
                WHERE o.project_id = project AND o.id <> story AND o.agent_status IN ('assigned', 'implementing');
            IF others < lim - slots + 1 THEN
                RETURN true;
            END IF;
            RAISE EXCEPTION 'near the in-flight limit' USING ERRCODE = 'LC003';
        EXCEPTION WHEN SQLSTATE 'LC003' THEN
            NULL;
        END;
    END IF;
    PERFORM pg_advisory_xact_lock(1818427394, project_key);
    SELECT count(*) INTO others FROM stories o
        WHERE o.project_id = project AND o.id <> story AND o.agent_status IN ('assigned', 'implementing');
    RETURN others < lim;
END;
$$;
