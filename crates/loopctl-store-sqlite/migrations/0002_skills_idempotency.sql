-- Skill versions published by a tenant (built-in skills are version 1 and live in the binary),
-- their recorded results, and stored answers for Idempotency-Key replays.

CREATE TABLE skill_versions (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version > 0),
    prompt_text TEXT NOT NULL,
    changelog TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name, version)
);

CREATE TABLE skill_results (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    story_id BLOB REFERENCES stories(id) ON DELETE SET NULL,
    result TEXT NOT NULL CHECK (result IN ('pass', 'fail')),
    metrics TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX skill_results_name ON skill_results (tenant_id, name, version);

CREATE TABLE idempotent_responses (
    scope BLOB NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotent_responses_age ON idempotent_responses (created_at);
