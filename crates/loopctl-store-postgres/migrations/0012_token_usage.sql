-- Tokens agents report spending on a story (with `report` or `review-complete`), summed
-- per story and per project for `status` and the project's budget.
CREATE TABLE token_usage (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    story_id uuid NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    agent_id uuid,
    phase text NOT NULL CHECK (phase IN ('implementing', 'reviewing')),
    input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
    cost_millicents bigint NOT NULL CHECK (cost_millicents >= 0),
    model_name text,
    created_at timestamptz NOT NULL
);
CREATE INDEX token_usage_story ON token_usage (story_id, created_at);
-- Covers the project's sums: the budget check reads this index only.
CREATE INDEX token_usage_project ON token_usage (project_id, tenant_id) INCLUDE (input_tokens, output_tokens, cost_millicents);
