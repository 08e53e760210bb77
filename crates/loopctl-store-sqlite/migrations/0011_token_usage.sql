-- Tokens agents report spending on a story (with `report` or `review-complete`), summed
-- per story and per project for `status` and the project's budget.
CREATE TABLE token_usage (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    story_id BLOB NOT NULL REFERENCES stories(id) ON DELETE CASCADE,
    agent_id BLOB,
    phase TEXT NOT NULL CHECK (phase IN ('implementing', 'reviewing')),
    input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),
    cost_millicents INTEGER NOT NULL CHECK (cost_millicents >= 0),
    model_name TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX token_usage_story ON token_usage (story_id, created_at);
-- Covers the project's sums: the budget check reads this index only.
CREATE INDEX token_usage_project ON token_usage (project_id, tenant_id, input_tokens, output_tokens, cost_millicents);
