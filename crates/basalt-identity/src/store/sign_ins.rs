//! What a proven password writes: the failure count cleared, the refresh
//! token when the sign-in asked for one, and the audit record, in one
//! statement.
//!
//! One statement rather than three because each is a round trip: over the
//! network to PostgreSQL, and on SQLite a hop to the connection's thread and
//! back, which in a sign-in storm pre-empts a password hash on both CPUs
//! (`bench/notes/identity-signin.md`). This is the one write that differs
//! by backend: PostgreSQL runs it as data-modifying `WITH` clauses, one
//! atomic statement; SQLite has no such clauses but runs several statements
//! from one text with shared numbered parameters, each committed on its
//! own, in an order where stopping part-way leaves nothing wrong (the
//! failures are cleared first, because the password was right whatever
//! follows). Parameters: `$1`…`$8` the audit record ([`audit::insert_sql`],
//! whose `$4`, the user, and `$2`, the time, the other parts reuse), then
//! `$9`…`$12` the refresh token.

use basalt_platform::db::{Backend, Db};
use basalt_platform::with_conn;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::audit::{self, AuditEvent};
use basalt_platform::http::context::RequestContext;

macro_rules! clear_failures_sql {
    () => {
        "UPDATE identity_users SET failed_logins = 0, lock_level = 0, locked_until = NULL WHERE id = $4"
    };
}

macro_rules! insert_refresh_token_sql {
    () => {
        "INSERT INTO identity_refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at) \
         VALUES ($9, $10, $11, $4, $2, $12)"
    };
}

const SQLITE: &str = concat!(clear_failures_sql!(), "; ", audit::insert_sql!());

const SQLITE_WITH_TOKEN: &str = concat!(
    clear_failures_sql!(),
    "; ",
    insert_refresh_token_sql!(),
    "; ",
    audit::insert_sql!()
);

const POSTGRES: &str = concat!(
    "WITH cleared AS (",
    clear_failures_sql!(),
    ") ",
    audit::insert_sql!()
);

const POSTGRES_WITH_TOKEN: &str = concat!(
    "WITH cleared AS (",
    clear_failures_sql!(),
    "), token AS (",
    insert_refresh_token_sql!(),
    ") ",
    audit::insert_sql!()
);

/// The first refresh token of a new family, handed out by a token sign-in.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token (the token itself is never stored).
    pub token_hash: Vec<u8>,
    /// The family it starts.
    pub family_id: Uuid,
    /// End of the family's absolute lifetime.
    pub expires_at: DateTime<Utc>,
}

/// Records a successful password check for `user_id`: clears its failure
/// count and lockout, stores `refresh_token` if given, and appends the
/// `sign_in_succeeded` audit record with `details`. Unlike
/// [`audit::record`], a failure here fails the sign-in: the record is
/// written with the count it settles and the refresh token it grants (a
/// session sign-in opens its session next, through the session store, which
/// may be Redis).
pub async fn record_success(
    db: &Db,
    user_id: Uuid,
    refresh_token: Option<&NewRefreshToken>,
    ctx: &RequestContext,
    details: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let sql = match (db.backend(), refresh_token.is_some()) {
        (Backend::Sqlite, false) => SQLITE,
        (Backend::Sqlite, true) => SQLITE_WITH_TOKEN,
        (Backend::Postgres, false) => POSTGRES,
        (Backend::Postgres, true) => POSTGRES_WITH_TOKEN,
    };
    with_conn!(db, |conn| {
        let query = sqlx::query(sql)
            .bind(Uuid::now_v7())
            .bind(Utc::now())
            .bind(AuditEvent::SignInSucceeded.as_str())
            .bind(user_id)
            .bind(None::<Uuid>)
            .bind(&ctx.ip)
            .bind(&ctx.user_agent)
            .bind(Json(details));
        let query = match refresh_token {
            Some(token) => query
                .bind(Uuid::now_v7())
                .bind(&token.token_hash)
                .bind(token.family_id)
                .bind(token.expires_at),
            None => query,
        };
        query.execute(conn).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}
