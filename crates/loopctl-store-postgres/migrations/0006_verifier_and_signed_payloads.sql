-- The verifier role (held by `loopctl runner`, minted only by a user).
ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('superadmin', 'user', 'orchestrator', 'agent', 'verifier'));

-- A run is signed over the exact bytes kept here (jsonb normalisation cannot break it), by
-- the key named in key_id; the secret itself lives in a file of the server, never here.
ALTER TABLE verification_runs ADD COLUMN signed_payload text NOT NULL DEFAULT '';
ALTER TABLE verification_runs ADD COLUMN key_id text NOT NULL DEFAULT '';
DROP TABLE signing_keys;
