-- Durable background jobs (src/jobs/).
-- run_at and locked_until are unix epoch milliseconds, not timestamps: they
-- are the columns the claim query compares, and sqlx writes DateTime<Utc> to
-- SQLite as RFC 3339 text with a variable number of fractional digits, which
-- does not compare reliably as text. created_at and updated_at are only
-- displayed, so they stay readable timestamps.
CREATE TABLE jobs (
    id           BLOB PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'dead')),
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at       INTEGER NOT NULL,
    locked_until INTEGER,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    last_error   TEXT
);

-- Claiming: due queued jobs, and running jobs whose lease expired.
CREATE INDEX jobs_claim_idx ON jobs (state, run_at);
CREATE INDEX jobs_lease_idx ON jobs (state, locked_until);
