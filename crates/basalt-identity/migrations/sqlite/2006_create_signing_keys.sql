-- Ed25519 keys that sign access tokens. Life cycle: `next` (published in the
-- JWKS before it ever signs, so that caches have it when it takes over) →
-- `active` (signs) → `retired` (still verifies tokens it signed until they
-- expire; its private key is erased on retirement). The partial unique
-- indexes keep at most one `active` and one `next` key even when several
-- nodes start on a fresh database at once.
CREATE TABLE identity_signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    -- PKCS#8 DER; secret. NULL once the key is retired.
    private_key BLOB,
    -- Raw 32-byte Ed25519 public key.
    public_key BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired')),
    created_at TEXT NOT NULL,
    activated_at TEXT,
    retired_at TEXT,
    CHECK (state = 'retired' OR private_key IS NOT NULL)
);
CREATE UNIQUE INDEX identity_signing_keys_one_active ON identity_signing_keys (state) WHERE state = 'active';
CREATE UNIQUE INDEX identity_signing_keys_one_next ON identity_signing_keys (state) WHERE state = 'next';
