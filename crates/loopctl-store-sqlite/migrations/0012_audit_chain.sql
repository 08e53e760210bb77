-- The audit chain: each event's hash, chained to the hash of the tenant's previous event,
-- written after the events commit, in feed order; the last link of each written run is
-- signed by the server (Ed25519, the key directory's current key). Editing an event, a
-- link, or a link's chain behind the server's back no longer matches what was signed.
-- No foreign key to events: a deleted event must show as a link without its event.
CREATE TABLE audit_links (
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    cursor INTEGER NOT NULL,
    event_id BLOB NOT NULL,
    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    seal_key_id TEXT,
    seal_signature TEXT,
    sealed_at INTEGER,
    PRIMARY KEY (tenant_id, cursor),
    CHECK ((seal_key_id IS NULL) = (seal_signature IS NULL) AND (seal_key_id IS NULL) = (sealed_at IS NULL))
) WITHOUT ROWID;

CREATE TRIGGER audit_links_append_only_update BEFORE UPDATE ON audit_links
BEGIN
    SELECT RAISE(ABORT, 'the audit chain is append-only');
END;
CREATE TRIGGER audit_links_append_only_delete BEFORE DELETE ON audit_links
WHEN EXISTS (SELECT 1 FROM tenants t WHERE t.id = OLD.tenant_id)
BEGIN
    SELECT RAISE(ABORT, 'the audit chain is append-only');
END;
