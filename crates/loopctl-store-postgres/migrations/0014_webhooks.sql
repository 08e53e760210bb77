-- Webhooks: subscriptions per tenant (and optionally one project) with an action filter, and
-- their outbox. A delivery row is written by a trigger on events, so it is in the same
-- transaction as its event: an event that committed has its deliveries, one that rolled back
-- has none, and a restart loses nothing. The signing secret is not here: it is derived from
-- the server's key directory.
CREATE TABLE webhooks (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    project_id uuid REFERENCES projects(id) ON DELETE CASCADE,
    url text NOT NULL,
    -- '*' for every action, else ',verified,rejected,' (commas around each).
    actions text NOT NULL,
    enabled boolean NOT NULL DEFAULT true,
    disabled_reason text,
    consecutive_failures bigint NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, enabled);

CREATE TABLE webhook_deliveries (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    webhook_id uuid NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_cursor bigint NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
    attempts bigint NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    leased_until timestamptz,
    last_status bigint,
    last_error text,
    last_latency_ms bigint,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL
);
-- The head of each webhook's queue (deliveries go out in order, one at a time per webhook).
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, id);

CREATE FUNCTION events_fill_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (tenant_id, webhook_id, event_cursor, next_attempt_at, created_at)
    SELECT NEW.tenant_id, w.id, NEW.cursor, NEW.inserted_at, NEW.inserted_at FROM webhooks w
    WHERE w.tenant_id = NEW.tenant_id AND w.enabled
      AND (w.project_id IS NULL OR w.project_id = NEW.project_id)
      AND (w.actions = '*' OR position(',' || NEW.action || ',' IN w.actions) > 0)
    ORDER BY w.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_fill_webhook_outbox AFTER INSERT ON events
FOR EACH ROW EXECUTE FUNCTION events_fill_webhook_outbox();
