-- Refresh tokens, single-use and rotated; a family is one sign-in's chain.
CREATE TABLE identity_refresh_tokens (
    id UUID PRIMARY KEY,
    token_hash BYTEA NOT NULL,
    family_id UUID NOT NULL,
    user_id UUID NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    CONSTRAINT identity_refresh_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX identity_refresh_tokens_family_idx ON identity_refresh_tokens (family_id);
CREATE INDEX identity_refresh_tokens_user_idx ON identity_refresh_tokens (user_id);
