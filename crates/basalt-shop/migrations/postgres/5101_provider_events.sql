-- Payment providers' webhook events already received, by the provider's
-- event id: Stripe and PayPal deliver at least once (PayPal retries up to
-- 25 times), so a duplicate is answered 200 and ignored.
CREATE TABLE shop_provider_events (
    -- `stripe` or `paypal`.
    provider TEXT NOT NULL,
    -- The provider's event id (`evt_…`, `WH-…`).
    event_id TEXT NOT NULL,
    -- The event's type, for the record.
    event_type TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, event_id)
);

CREATE INDEX shop_provider_events_received ON shop_provider_events (received_at);
