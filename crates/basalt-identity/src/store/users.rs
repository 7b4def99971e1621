//! The `identity_users` table.

use basalt_platform::db::{Db, Tx, in_list};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{Role, User};

/// A stored account, including what never leaves this module.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Email as entered.
    pub email: String,
    /// Username as entered.
    pub username: String,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    /// Biography.
    pub bio: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
    /// When the address was confirmed.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Access tokens issued under an older generation are refused.
    pub token_generation: i64,
}

impl UserRow {
    /// The public view.
    pub fn to_user(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            username: self.username.clone(),
            role: Role::parse(&self.role),
            bio: self.bio.clone(),
            image: self.image.clone(),
            email_verified: self.email_verified_at.is_some(),
            created_at: self.created_at,
        }
    }
}

/// Inserts a new account.
pub async fn insert(tx: &mut Tx, user: &UserRow, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO identity_users (id, email, email_normalized, username, username_normalized, password_hash, role, \
             bio, image, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(crate::model::normalize(&user.email))
        .bind(&user.username)
        .bind(crate::model::normalize(&user.username))
        .bind(&user.password_hash)
        .bind(&user.role)
        .bind(&user.bio)
        .bind(&user.image)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

macro_rules! select_user {
    ($where:literal) => {
        concat!(
            "SELECT id, email, username, password_hash, role, bio, image, email_verified_at, created_at, ",
            "CAST(token_generation AS BIGINT) AS token_generation ",
            "FROM identity_users WHERE ",
            $where
        )
    };
}

/// By id.
pub async fn find_by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, UserRow>(select_user!("id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await
    })
}

/// Several accounts by id, in one round trip where the SQL allows it.
pub async fn find_by_ids(db: &Db, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = in_list::expand(select_user!("id IN ({list})"), 1, &[ids.len()]);
    with_conn!(db, |conn| {
        let mut query = sqlx::query_as::<_, UserRow>(sql);
        for id in in_list::padded(ids) {
            query = query.bind(id);
        }
        query.fetch_all(conn).await
    })
}

/// By email, case-insensitively.
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, UserRow>(select_user!("email_normalized = $1"))
            .bind(crate::model::normalize(email))
            .fetch_optional(conn)
            .await
    })
}

/// By username, case-insensitively.
pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, UserRow>(select_user!("username_normalized = $1"))
            .bind(crate::model::normalize(username))
            .fetch_optional(conn)
            .await
    })
}

/// Changes the profile fields; `None` leaves a field as it is (for `bio`
/// and `image`, `Some(None)` clears it). A changed email is unverified
/// again. One statement: every right-hand side sees the row as it was, so
/// the verification is kept only when the address really stays the same.
pub async fn update_profile(
    db: &Db,
    id: Uuid,
    email: Option<&str>,
    username: Option<&str>,
    bio: Option<Option<&str>>,
    image: Option<Option<&str>>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let email_normalized = email.map(crate::model::normalize);
    let username_normalized = username.map(crate::model::normalize);
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE identity_users SET \
             email = COALESCE($2, email), \
             email_verified_at = CASE WHEN $3 IS NULL OR email_normalized = $3 THEN email_verified_at ELSE NULL END, \
             email_normalized = COALESCE($3, email_normalized), \
             username = COALESCE($4, username), \
             username_normalized = COALESCE($5, username_normalized), \
             bio = CASE WHEN $6 THEN $7 ELSE bio END, \
             image = CASE WHEN $8 THEN $9 ELSE image END, \
             updated_at = $10 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(email)
        .bind(&email_normalized)
        .bind(username)
        .bind(&username_normalized)
        .bind(bio.is_some())
        .bind(bio.flatten())
        .bind(image.is_some())
        .bind(image.flatten())
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Replaces the password hash.
pub async fn set_password(
    tx: &mut Tx,
    id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE identity_users SET password_hash = $2, failed_logins = 0, lock_level = 0, locked_until = NULL, \
             updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Upgrades a hash after a successful sign-in, unless the password changed meanwhile.
pub async fn upgrade_password_hash(
    db: &Db,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE identity_users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        )
        .bind(id)
        .bind(old)
        .bind(new)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Sets the role.
pub async fn set_role(
    db: &Db,
    id: Uuid,
    role: Role,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = with_conn!(db, |conn| {
        sqlx::query("UPDATE identity_users SET role = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(role.as_str())
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// The role and token generation of an account; `None` once it is deleted.
pub async fn standing(db: &Db, id: Uuid) -> Result<Option<(Role, i64)>, sqlx::Error> {
    let row: Option<(String, i64)> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT role, CAST(token_generation AS BIGINT) FROM identity_users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.map(|(role, generation)| (Role::parse(&role), generation)))
}

/// Moves the account to a new token generation, so that every access token
/// issued before is refused.
pub async fn bump_token_generation(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let changed = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE identity_users SET token_generation = token_generation + 1 WHERE id = $1",
        )
        .bind(id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Marks the address as confirmed, if it is still the address the token was sent to.
pub async fn mark_email_verified(
    tx: &mut Tx,
    id: Uuid,
    email: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE identity_users SET email_verified_at = $3, updated_at = $3 WHERE id = $1 AND email_normalized = $2",
        )
        .bind(id)
        .bind(crate::model::normalize(email))
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}

/// Deletes an account (sessions and tokens go with it, by cascade).
pub async fn delete(tx: &mut Tx, id: Uuid) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query("DELETE FROM identity_users WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The state of the lockout counters after reserving an attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// Failures counted so far, this attempt included.
    pub failures: i64,
    /// Lockouts so far.
    pub lock_level: i64,
}

/// The account a sign-in names, and its attempt.
#[derive(Debug, Clone)]
pub struct SignInAttempt {
    /// The account.
    pub user: UserRow,
    /// The reserved attempt; `None` while the account is locked (nothing
    /// was counted).
    pub attempt: Option<Attempt>,
}

#[derive(sqlx::FromRow)]
struct SignInAttemptRow {
    #[sqlx(flatten)]
    user: UserRow,
    failures: i64,
    lock_level: i64,
    locked: bool,
}

/// Finds the account by email (case-insensitively) and, unless it is locked,
/// counts this sign-in attempt as a failure *before* the password is
/// checked, in one atomic statement. Counting first is what keeps 100
/// parallel guesses from all being checked: each gets a distinct count, and
/// only counts within the budget may verify. One statement on every path
/// (unknown, locked, open account), and one round trip where a sign-in used
/// to spend two.
pub async fn begin_attempt(
    db: &Db,
    email: &str,
    now: DateTime<Utc>,
) -> Result<Option<SignInAttempt>, sqlx::Error> {
    let row: Option<SignInAttemptRow> = with_conn!(db, |conn| {
        sqlx::query_as(
            "UPDATE identity_users SET failed_logins = failed_logins + \
             CASE WHEN locked_until IS NULL OR locked_until <= $2 THEN 1 ELSE 0 END \
             WHERE email_normalized = $1 \
             RETURNING id, email, username, password_hash, role, bio, image, email_verified_at, \
             created_at, CAST(token_generation AS BIGINT) AS token_generation, \
             CAST(failed_logins AS BIGINT) AS failures, \
             CAST(lock_level AS BIGINT) AS lock_level, \
             (locked_until IS NOT NULL AND locked_until > $2) AS locked",
        )
        .bind(crate::model::normalize(email))
        .bind(now)
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.map(|row| SignInAttempt {
        attempt: (!row.locked).then_some(Attempt {
            failures: row.failures,
            lock_level: row.lock_level,
        }),
        user: row.user,
    }))
}

/// Locks the account until `until`, once per lock level (concurrent
/// failures at the same level lock it once). The failure count is set to
/// `failures_after`: one below the next budget, so that when the lock ends
/// exactly one more attempt is checked, whatever racing requests counted.
pub async fn lock(
    db: &Db,
    id: Uuid,
    seen_level: i64,
    until: DateTime<Utc>,
    failures_after: i64,
) -> Result<bool, sqlx::Error> {
    let changed = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE identity_users SET locked_until = $3, lock_level = lock_level + 1, failed_logins = $4 \
             WHERE id = $1 AND lock_level = $2",
        )
            .bind(id)
            .bind(seen_level)
            .bind(until)
            .bind(failures_after)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(changed == 1)
}
