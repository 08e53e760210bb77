-- A contracted story remembers who contracted it and when (it stays ready until claimed,
-- and its contractor may give it back); a claim whose lease ran out is announced once
-- (stale_since) and stays with its holder until someone takes it over; the holder before
-- a takeover is remembered so its late writes are told `stale_claim`.
ALTER TABLE stories ADD COLUMN contracted_by_agent_id uuid;
ALTER TABLE stories ADD COLUMN contracted_at timestamptz;
ALTER TABLE stories ADD COLUMN stale_since timestamptz;
ALTER TABLE stories ADD COLUMN previous_assignee_agent_id uuid;

-- The sweeper and reclaim read expired leases in lease order.
CREATE INDEX stories_claim_lease ON stories (lease_expires_at) WHERE agent_status IN ('assigned', 'implementing');
