-- Single-use, expiring tokens sent by mail (email verification, password reset).
CREATE TABLE identity_email_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL REFERENCES identity_users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    email TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX identity_email_tokens_user_idx ON identity_email_tokens (user_id);
