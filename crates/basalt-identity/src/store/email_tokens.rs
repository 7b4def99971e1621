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

    fn parse(stored: &str) -> Option<Self> {
        match stored {
            "verify_email" => Some(Self::VerifyEmail),
            "reset_password" => Some(Self::ResetPassword),
            _ => None,
        }
    }
}

/// A token to store before its secret is known.
#[derive(Debug, Clone)]
pub struct PendingToken {
    /// What the mail job names it by.
    pub id: Uuid,
    /// The account.
    pub user_id: Uuid,
    /// What the link is for.
    pub purpose: Purpose,
    /// Where it goes.
    pub email: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Stores `token`, whose secret is not known yet: `placeholder_hash` is the
/// hash of a random value nobody keeps, so the row opens nothing until
/// [`arm`] gives it the hash of the secret that is mailed.
pub async fn insert(
    tx: &mut Tx,
    token: &PendingToken,
    placeholder_hash: &[u8],
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO identity_email_tokens (id, token_hash, user_id, purpose, email, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id)
        .bind(placeholder_hash)
        .bind(token.user_id)
        .bind(token.purpose.as_str())
        .bind(&token.email)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A token about to be mailed, as [`arm`] found it.
#[derive(Debug, Clone)]
pub struct Armed {
    /// What the link is for.
    pub purpose: Purpose,
    /// Where it goes.
    pub email: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Gives the live token `id` the hash of its secret, just minted by the mail
/// job (a retried job mints a new one: the previous mail's link, if it ever
/// arrived, stops working). `None` when the token was superseded, spent or
/// has expired: there is nothing to send.
pub async fn arm(
    db: &Db,
    id: Uuid,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Armed>, sqlx::Error> {
    let row: Option<(String, String, DateTime<Utc>)> = with_conn!(db, |conn| {
        sqlx::query_as(
            "UPDATE identity_email_tokens SET token_hash = $2 \
             WHERE id = $1 AND used_at IS NULL AND expires_at > $3 \
             RETURNING purpose, email, expires_at",
        )
        .bind(id)
        .bind(token_hash)
        .bind(now)
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.and_then(|(purpose, email, expires_at)| {
        Some(Armed {
            purpose: Purpose::parse(&purpose)?,
            email,
            expires_at,
        })
    }))
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
