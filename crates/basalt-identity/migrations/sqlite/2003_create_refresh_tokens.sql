-- Refresh tokens, single-use and rotated; a family is one sign-in's chain.
CREATE TABLE identity_refresh_tokens (
    id BLOB PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL,
    family_id BLOB NOT NULL,
    user_id BLOB NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    revoked_at TEXT,
    CONSTRAINT identity_refresh_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX identity_refresh_tokens_family_idx ON identity_refresh_tokens (family_id);
CREATE INDEX identity_refresh_tokens_user_idx ON identity_refresh_tokens (user_id);
