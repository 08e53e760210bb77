-- Skill versions published by a tenant (built-in skills are version 1 and live in the binary),
-- their recorded results, and stored answers for Idempotency-Key replays.

CREATE TABLE skill_versions (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name text NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    prompt_text text NOT NULL,
    changelog text,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (tenant_id, name, version)
);

CREATE TABLE skill_results (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name text NOT NULL,
    version bigint NOT NULL,
    story_id uuid REFERENCES stories(id) ON DELETE SET NULL,
    result text NOT NULL CHECK (result IN ('pass', 'fail')),
    metrics jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL
);
CREATE INDEX skill_results_name ON skill_results (tenant_id, name, version);

CREATE TABLE idempotent_responses (
    scope bytea NOT NULL,
    key text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    status integer NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotent_responses_age ON idempotent_responses (created_at);
