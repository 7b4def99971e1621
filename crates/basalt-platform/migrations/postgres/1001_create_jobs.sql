-- Durable background jobs (src/jobs/).
-- run_at and locked_until are unix epoch milliseconds, not timestamps, in
-- both dialects: they are the columns the claim query compares, and on
-- SQLite a timestamp is variable-width text that does not compare reliably.
-- One representation keeps the queries identical. created_at and updated_at
-- are only displayed, so they stay timestamps.
CREATE TABLE jobs (
    id           UUID PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at       BIGINT NOT NULL,
    locked_until BIGINT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    last_error   TEXT
);

-- Claiming: due queued jobs, and running jobs whose lease expired.
CREATE INDEX jobs_claim_idx ON jobs (state, run_at);
CREATE INDEX jobs_lease_idx ON jobs (state, locked_until);
