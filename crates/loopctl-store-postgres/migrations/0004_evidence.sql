-- Evidence per acceptance criterion (from the report), verdicts per criterion (from review
-- and verify), verification runs signed by the server, and the server's signing key.

CREATE TABLE criterion_records (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    ac_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('evidence', 'review', 'verify')),
    round bigint NOT NULL,
    verdict text CHECK (verdict IS NULL OR verdict IN ('pass', 'fail')),
    detail jsonb NOT NULL DEFAULT '{}',
    actor_agent_id uuid,
    created_at timestamptz NOT NULL
);
CREATE INDEX criterion_records_story ON criterion_records (story_id, round, created_at);

CREATE TABLE verification_runs (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    round bigint NOT NULL,
    result text NOT NULL CHECK (result IN ('pass', 'fail')),
    commit_sha text,
    checks jsonb NOT NULL DEFAULT '[]',
    recorded_by_agent_id uuid,
    signature text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX verification_runs_story ON verification_runs (story_id, created_at);

CREATE TABLE signing_keys (
    id integer PRIMARY KEY CHECK (id = 1),
    secret bytea NOT NULL,
    created_at timestamptz NOT NULL
);
