-- Browser sessions. The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE identity_sessions (
    id UUID PRIMARY KEY,
    token_hash BYTEA NOT NULL,
    user_id UUID NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    ip TEXT,
    user_agent TEXT,
    CONSTRAINT identity_sessions_token_key UNIQUE (token_hash)
);
CREATE INDEX identity_sessions_user_idx ON identity_sessions (user_id);
