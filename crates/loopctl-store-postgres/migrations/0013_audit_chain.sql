-- The audit chain: each event's hash, chained to the hash of the tenant's previous event,
-- written after the events commit, in feed order (up to the settled cursor, so a cursor
-- still being committed is never stepped over); the last link of each written run is
-- signed by the server (Ed25519, the key directory's current key). Editing an event, a
-- link, or a link's chain behind the server's back no longer matches what was signed.
-- No foreign key to events: a deleted event must show as a link without its event.
CREATE TABLE audit_links (
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    cursor bigint NOT NULL,
    event_id uuid NOT NULL,
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    seal_key_id text,
    seal_signature text,
    sealed_at timestamptz,
    PRIMARY KEY (tenant_id, cursor),
    CHECK ((seal_key_id IS NULL) = (seal_signature IS NULL) AND (seal_key_id IS NULL) = (sealed_at IS NULL))
);

CREATE FUNCTION audit_links_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit chain is append-only';
END;
$$;
CREATE TRIGGER audit_links_append_only_update BEFORE UPDATE ON audit_links
FOR EACH ROW EXECUTE FUNCTION audit_links_append_only();
CREATE TRIGGER audit_links_append_only_truncate BEFORE TRUNCATE ON audit_links
FOR EACH STATEMENT EXECUTE FUNCTION audit_links_append_only();
CREATE FUNCTION audit_links_append_only_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tenants t WHERE t.id = OLD.tenant_id) THEN
        RAISE EXCEPTION 'the audit chain is append-only';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER audit_links_append_only_delete BEFORE DELETE ON audit_links
FOR EACH ROW EXECUTE FUNCTION audit_links_append_only_delete();
