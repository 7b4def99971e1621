-- The token a refresh token was exchanged for (NULL for a family's first):
-- presenting a spent token whose successor has been spent too cannot be a
-- retry of a lost response, so it revokes the family.
ALTER TABLE identity_refresh_tokens ADD COLUMN parent_id UUID;
CREATE INDEX identity_refresh_tokens_parent_idx ON identity_refresh_tokens (parent_id);
