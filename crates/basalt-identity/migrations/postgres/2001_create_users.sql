-- Accounts. Email and username are unique case-insensitively through their
-- normalised (lower-case) copies; the displayed values keep the user's case.
CREATE TABLE identity_users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL,
    username TEXT NOT NULL,
    username_normalized TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    bio TEXT,
    image TEXT,
    email_verified_at TIMESTAMPTZ,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    lock_level INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT identity_users_email_key UNIQUE (email_normalized),
    CONSTRAINT identity_users_username_key UNIQUE (username_normalized)
);
