//! Server-side browser sessions, behind a port: stored in the database now,
//! in Redis when the cluster adapter lands.

use basalt_platform::db::Db;
use basalt_platform::with_conn;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A stored session. The cookie's token is not here, only its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    /// Public id, for listing and revoking.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The synchroniser token state-changing requests must echo.
    pub csrf_token: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last request (updated at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client software at sign-in.
    pub user_agent: Option<String>,
}

/// What a user sees of their sessions.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Id, for `DELETE /api/auth/sessions/{id}`.
    pub id: Uuid,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last activity.
    pub last_seen_at: DateTime<Utc>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// Client software at sign-in.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// A new session to store.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Public id.
    pub id: Uuid,
    /// SHA-256 of the cookie token.
    pub token_hash: Vec<u8>,
    /// Owner.
    pub user_id: Uuid,
    /// CSRF token.
    pub csrf_token: String,
    /// Now.
    pub created_at: DateTime<Utc>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// Client address.
    pub ip: Option<String>,
    /// Client software.
    pub user_agent: Option<String>,
}

type Result<T> = std::result::Result<T, sqlx::Error>;

/// Where sessions live.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session.
    fn create<'a>(&'a self, session: &'a NewSession) -> BoxFuture<'a, Result<()>>;
    /// The live session for a cookie token hash: not past its absolute end,
    /// and used within `idle_since`.
    fn find_live<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<SessionRow>>>;
    /// Records activity.
    fn touch(&self, id: Uuid, now: DateTime<Utc>) -> BoxFuture<'_, Result<()>>;
    /// Ends one session of a user; false when it is not theirs or gone.
    fn delete(&self, user_id: Uuid, id: Uuid) -> BoxFuture<'_, Result<bool>>;
    /// Ends a session by its token hash (sign-out, fixation defence).
    fn delete_by_token<'a>(&'a self, token_hash: &'a [u8]) -> BoxFuture<'a, Result<()>>;
    /// Ends every session of a user, except `keep`.
    fn delete_all(&self, user_id: Uuid, keep: Option<Uuid>) -> BoxFuture<'_, Result<u64>>;
    /// Deletes sessions that have ended (past their absolute end, or last
    /// used before `idle_since`); returns how many. Housekeeping only: ended
    /// sessions are refused whether or not they are still stored.
    fn prune(&self, now: DateTime<Utc>, idle_since: DateTime<Utc>) -> BoxFuture<'_, Result<u64>>;
    /// A user's live sessions, newest first.
    fn list(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<SessionRow>>>;
}

/// Sessions in the `identity_sessions` table.
#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    /// A store over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl SessionStore for DbSessionStore {
    fn create<'a>(&'a self, s: &'a NewSession) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            with_conn!(&self.db, |conn| {
                sqlx::query(
                    "INSERT INTO identity_sessions (id, token_hash, user_id, csrf_token, created_at, last_seen_at, \
                     expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
                )
                .bind(s.id)
                .bind(&s.token_hash)
                .bind(s.user_id)
                .bind(&s.csrf_token)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(&s.ip)
                .bind(&s.user_agent)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
            })?;
            Ok(())
        })
    }

    fn find_live<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        Box::pin(async move {
            with_conn!(&self.db, |conn| {
                sqlx::query_as::<_, SessionRow>(
                    "SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent \
                     FROM identity_sessions WHERE token_hash = $1 AND expires_at > $2 AND last_seen_at > $3",
                )
                .bind(token_hash)
                .bind(now)
                .bind(idle_since)
                .fetch_optional(conn)
                .await
            })
        })
    }

    fn prune(&self, now: DateTime<Utc>, idle_since: DateTime<Utc>) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            with_conn!(&self.db, |conn| {
                sqlx::query(
                    "DELETE FROM identity_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                )
                .bind(now)
                .bind(idle_since)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
            })
        })
    }

    fn touch(&self, id: Uuid, now: DateTime<Utc>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            with_conn!(&self.db, |conn| {
                sqlx::query("UPDATE identity_sessions SET last_seen_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            Ok(())
        })
    }

    fn delete(&self, user_id: Uuid, id: Uuid) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let n = with_conn!(&self.db, |conn| {
                sqlx::query("DELETE FROM identity_sessions WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            Ok(n == 1)
        })
    }

    fn delete_by_token<'a>(&'a self, token_hash: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            with_conn!(&self.db, |conn| {
                sqlx::query("DELETE FROM identity_sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            Ok(())
        })
    }

    fn delete_all(&self, user_id: Uuid, keep: Option<Uuid>) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            // A nil uuid never matches a session, so `keep = None` deletes all.
            let keep = keep.unwrap_or(Uuid::nil());
            with_conn!(&self.db, |conn| {
                sqlx::query("DELETE FROM identity_sessions WHERE user_id = $1 AND id <> $2")
                    .bind(user_id)
                    .bind(keep)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })
        })
    }

    fn list(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Vec<SessionRow>>> {
        Box::pin(async move {
            with_conn!(&self.db, |conn| {
                sqlx::query_as::<_, SessionRow>(
                    "SELECT id, user_id, csrf_token, created_at, last_seen_at, expires_at, ip, user_agent \
                     FROM identity_sessions WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3 \
                     ORDER BY created_at DESC",
                )
                .bind(user_id)
                .bind(now)
                .bind(idle_since)
                .fetch_all(conn)
                .await
            })
        })
    }
}
