-- Mail jobs name their token by this id, never by its secret: the job mints
-- the secret when it sends the mail and stores only its hash here, so no
-- job payload, listing or log line holds a live token.
ALTER TABLE identity_email_tokens ADD COLUMN id BLOB;
CREATE UNIQUE INDEX identity_email_tokens_id_key ON identity_email_tokens (id);
