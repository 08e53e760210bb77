-- Webhooks: subscriptions per tenant (and optionally one project) with an action filter, and
-- their outbox. A delivery row is written by a trigger on events, so it is in the same
-- transaction as its event: an event that committed has its deliveries, one that rolled back
-- has none, and a restart loses nothing. The signing secret is not here: it is derived from
-- the server's key directory.
CREATE TABLE webhooks (
    id BLOB PRIMARY KEY,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id BLOB REFERENCES projects(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- '*' for every action, else ',verified,rejected,' (commas around each).
    actions TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, enabled);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    webhook_id BLOB NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_cursor INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    leased_until INTEGER,
    last_status INTEGER,
    last_error TEXT,
    last_latency_ms INTEGER,
    delivered_at INTEGER,
    created_at INTEGER NOT NULL
);
-- The head of each webhook's queue (deliveries go out in order, one at a time per webhook).
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);

CREATE TRIGGER events_fill_webhook_outbox AFTER INSERT ON events
WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.tenant_id = NEW.tenant_id AND w.enabled = 1)
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_cursor, next_attempt_at, created_at)
    SELECT NEW.tenant_id, w.id, NEW.cursor, NEW.inserted_at, NEW.inserted_at FROM webhooks w
    WHERE w.tenant_id = NEW.tenant_id AND w.enabled = 1
      AND (w.project_id IS NULL OR w.project_id = NEW.project_id)
      AND (w.actions = '*' OR instr(w.actions, ',' || NEW.action || ',') > 0)
    ORDER BY w.id;
END;
