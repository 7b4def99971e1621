//! The `identity_refresh_tokens` table: single-use tokens in families.

use basalt_platform::db::Db;
use basalt_platform::with_conn;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A stored refresh token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    /// Id.
    pub id: Uuid,
    /// The sign-in this token descends from.
    pub family_id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// End of the family's absolute lifetime.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged (spent).
    pub used_at: Option<DateTime<Utc>>,
    /// When its family was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a new token of `family_id`, issued in exchange for `parent_id`.
/// One statement, so no transaction of its own: each `BEGIN` and `COMMIT`
/// is a round trip to the database.
pub async fn insert(
    db: &Db,
    token_hash: &[u8],
    family_id: Uuid,
    parent_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::now_v7();
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO identity_refresh_tokens (id, token_hash, family_id, parent_id, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(token_hash)
        .bind(family_id)
        .bind(parent_id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(id)
}

/// By the hash of the presented token.
pub async fn find(db: &Db, token_hash: &[u8]) -> Result<Option<RefreshRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, RefreshRow>(
            "SELECT id, family_id, user_id, expires_at, used_at, revoked_at FROM identity_refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(conn)
        .await
    })
}

/// Spends a token: true for exactly one caller, however many race (one
/// atomic statement).
pub async fn spend(db: &Db, id: Uuid, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = with_conn!(db, |conn| {
        sqlx::query("UPDATE identity_refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Whether the token issued in exchange for `token_id` has been spent:
/// then `token_id` is no longer the newest spent token of its family, and
/// presenting it again cannot be a client retrying a lost response.
pub async fn successor_spent(db: &Db, token_id: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<i32> = with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT 1 FROM identity_refresh_tokens WHERE parent_id = $1 AND used_at IS NOT NULL LIMIT 1",
        )
        .bind(token_id)
        .fetch_optional(conn)
        .await
    })?;
    Ok(found.is_some())
}

/// Revokes every token of a family.
pub async fn revoke_family(
    db: &Db,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("UPDATE identity_refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
            .bind(family_id)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Revokes every token of a user (password reset, sign out everywhere).
pub async fn revoke_all_for_user(
    db: &Db,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("UPDATE identity_refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}

/// Deletes the tokens of families past their absolute end: refused anyway,
/// and a spent one can no longer reveal a theft (its family has ended).
pub async fn prune(db: &Db, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM identity_refresh_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}
