-- Merchant webhooks (src/merchant_webhooks/): endpoints, one delivery per
-- endpoint and event, and every attempt of it. Admins are identity accounts,
-- referenced by id only.
CREATE TABLE shop_webhook_endpoints (
    id UUID PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    -- JSON array of event kinds (`shop.order.paid`, …).
    events TEXT NOT NULL,
    -- The signing secret (`whsec_…`), kept as issued: signing needs it
    -- whole, as Stripe's scheme does (it is shown once, at creation).
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_by UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE shop_webhook_deliveries (
    id UUID PRIMARY KEY NOT NULL,
    endpoint_id UUID NOT NULL REFERENCES shop_webhook_endpoints (id) ON DELETE CASCADE,
    event_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    -- The exact JSON sent, every attempt and redelivery alike.
    body TEXT NOT NULL,
    -- pending | retrying | succeeded | failed
    status TEXT NOT NULL,
    -- Attempts in all, and since the last (re)delivery was asked for.
    attempt_count INTEGER NOT NULL DEFAULT 0,
    round_attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    -- One delivery per endpoint and event, however often the event arrives.
    CONSTRAINT shop_webhook_deliveries_event UNIQUE (endpoint_id, event_id)
);
CREATE INDEX shop_webhook_deliveries_endpoint_idx ON shop_webhook_deliveries (endpoint_id, created_at);

CREATE TABLE shop_webhook_attempts (
    id UUID PRIMARY KEY NOT NULL,
    delivery_id UUID NOT NULL REFERENCES shop_webhook_deliveries (id) ON DELETE CASCADE,
    -- 1, 2, 3… per delivery.
    attempt INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms BIGINT NOT NULL,
    -- The receiver's HTTP status, when it answered.
    response_status INTEGER,
    -- Why it failed: no answer, refused address, non-2xx.
    error TEXT,
    succeeded BOOLEAN NOT NULL
);
CREATE INDEX shop_webhook_attempts_delivery_idx ON shop_webhook_attempts (delivery_id, attempt);
