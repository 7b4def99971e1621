//! The `identity_email_tokens` table: links sent by mail.

use basalt_platform::db::{Db, Tx};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a mailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms an address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// Stores a token.
pub async fn insert(
    tx: &mut Tx,
    token_hash: &[u8],
    user_id: Uuid,
    purpose: Purpose,
    email: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO identity_email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(email)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Spends a live token of `purpose` in one statement, so a token works once
/// however many requests race; returns its user and address.
pub async fn consume(
    tx: &mut Tx,
    token_hash: &[u8],
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as(
            "UPDATE identity_email_tokens SET used_at = $3 \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING user_id, email",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(conn)
        .await
    })
}

/// Invalidates a user's unused tokens of `purpose` (a newer one was sent,
/// or the password was reset).
pub async fn invalidate_all(
    tx: &mut Tx,
    user_id: Uuid,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE identity_email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
            .bind(user_id)
            .bind(purpose.as_str())
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deletes expired tokens, used or not.
pub async fn prune(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM identity_email_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}
