-- The verifier role (held by `loopctl runner`, minted only by a user): SQLite cannot widen a
-- CHECK in place, so api_keys is rebuilt with the same columns, rows, index and trigger.
CREATE TABLE api_keys_before_verifier AS SELECT * FROM api_keys;
PRAGMA defer_foreign_keys = ON;
DROP TABLE api_keys;
CREATE TABLE api_keys (
    id BLOB PRIMARY KEY,
    tenant_id BLOB REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('superadmin', 'user', 'orchestrator', 'agent', 'verifier')),
    agent_id BLOB REFERENCES agents(id),
    expires_at INTEGER,
    revoked_at INTEGER,
    last_used_at INTEGER,
    created_at INTEGER NOT NULL,
    scope_story_id BLOB,
    scope_role TEXT CHECK (scope_role IS NULL OR scope_role IN ('implementer', 'reviewer')),
    dispatch_id BLOB,
    CHECK (tenant_id IS NOT NULL OR role = 'superadmin')
);
INSERT INTO api_keys (id, tenant_id, name, key_hash, key_prefix, role, agent_id, expires_at, revoked_at,
                      last_used_at, created_at, scope_story_id, scope_role, dispatch_id)
    SELECT id, tenant_id, name, key_hash, key_prefix, role, agent_id, expires_at, revoked_at,
           last_used_at, created_at, scope_story_id, scope_role, dispatch_id
    FROM api_keys_before_verifier;
DROP TABLE api_keys_before_verifier;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
CREATE TRIGGER api_keys_role_immutable BEFORE UPDATE OF role ON api_keys
WHEN NEW.role <> OLD.role
BEGIN
    SELECT RAISE(ABORT, 'api key role is immutable');
END;

-- A run is signed over the exact bytes kept here (no JSON normalisation can break it), by
-- the key named in key_id; the secret itself lives in a file of the server, never here.
ALTER TABLE verification_runs ADD COLUMN signed_payload TEXT NOT NULL DEFAULT '';
ALTER TABLE verification_runs ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
DROP TABLE signing_keys;
