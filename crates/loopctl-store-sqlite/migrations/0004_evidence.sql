-- Evidence per acceptance criterion (from the report), verdicts per criterion (from review
-- and verify), verification runs signed by the server, and the server's signing key.

CREATE TABLE criterion_records (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    ac_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('evidence', 'review', 'verify')),
    round INTEGER NOT NULL,
    verdict TEXT CHECK (verdict IS NULL OR verdict IN ('pass', 'fail')),
    detail TEXT NOT NULL DEFAULT '{}',
    actor_agent_id BLOB,
    created_at INTEGER NOT NULL
);
CREATE INDEX criterion_records_story ON criterion_records (story_id, round, created_at);

CREATE TABLE verification_runs (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    round INTEGER NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('pass', 'fail')),
    commit_sha TEXT,
    checks TEXT NOT NULL DEFAULT '[]',
    recorded_by_agent_id BLOB,
    signature TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX verification_runs_story ON verification_runs (story_id, created_at);

CREATE TABLE signing_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
