-- Security events. No foreign key on user_id: the trail outlives the account.
CREATE TABLE identity_audit_log (
    id UUID PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL,
    event TEXT NOT NULL,
    user_id UUID,
    actor_id UUID,
    ip TEXT,
    user_agent TEXT,
    details JSONB NOT NULL
);
CREATE INDEX identity_audit_log_user_idx ON identity_audit_log (user_id, occurred_at);
CREATE INDEX identity_audit_log_time_idx ON identity_audit_log (occurred_at);
