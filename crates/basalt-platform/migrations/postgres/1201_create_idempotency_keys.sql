-- Idempotency keys (src/http/idempotency.rs): the first response to a
-- request with an `Idempotency-Key`, replayed for the same key. Times are
-- unix epoch milliseconds, compared identically on both backends.
CREATE TABLE platform_idempotency_keys (
    -- Whose key: `user:<id>`, `cart:<sha-256 of the token>`, `client:<ip>`
    -- (the module's choice); one caller never sees another's responses.
    scope           TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- SHA-256 (hex) of method, path and body: the same key with another
    -- request is refused.
    fingerprint     TEXT NOT NULL,
    -- in_flight | done
    state           TEXT NOT NULL,
    -- The request holding the key while in flight, and until when: a
    -- dropped request stops renewing, and its key is taken over after it.
    lease_token     TEXT NOT NULL,
    lease_until_ms  BIGINT NOT NULL,
    -- The stored response, once done.
    status          INTEGER,
    headers         TEXT,
    body            BYTEA,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX platform_idempotency_keys_expires_idx ON platform_idempotency_keys (expires_at_ms);
