-- Domain events (src/events/). Times are unix epoch milliseconds, as in the
-- jobs table: they are compared and ordered by, identically on both backends.

-- The transactional outbox: an event is inserted in the same transaction as
-- the change it describes, and relayed to the consumers afterwards.
CREATE TABLE platform_outbox (
    id              BLOB PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    created_at_ms   INTEGER NOT NULL,
    -- A relay holds a batch until then; a crashed relay's batch is taken over.
    claimed_until_ms INTEGER,
    published_at_ms INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX platform_outbox_pending_idx ON platform_outbox (created_at_ms)
    WHERE published_at_ms IS NULL;
CREATE INDEX platform_outbox_published_idx ON platform_outbox (published_at_ms)
    WHERE published_at_ms IS NOT NULL;

-- The inbox: which consumer has processed which event. Inserted in the same
-- transaction as the consumer's effect, so a redelivered event is skipped.
CREATE TABLE platform_inbox (
    consumer        TEXT NOT NULL,
    event_id        BLOB NOT NULL,
    processed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX platform_inbox_processed_idx ON platform_inbox (processed_at_ms);
