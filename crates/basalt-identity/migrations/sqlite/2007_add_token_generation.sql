-- Every access token carries the account's token generation at issue; a
-- token of an older generation is refused. Bumping it (sign out everywhere,
-- a password change or reset) ends every stateless token of the account at
-- once, without a deny list.
ALTER TABLE identity_users ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
