//! The audit log of security events, readable by admins.

use basalt_platform::db::Db;
use basalt_platform::http::context::RequestContext;
use basalt_platform::with_conn;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Security events worth a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// An account was created.
    Registered,
    /// A sign-in succeeded.
    SignInSucceeded,
    /// A sign-in failed.
    SignInFailed,
    /// Repeated failures locked an account.
    AccountLocked,
    /// A session ended by sign-out.
    SignedOut,
    /// A user changed their password.
    PasswordChanged,
    /// A reset link was requested.
    PasswordResetRequested,
    /// A password was reset through a link.
    PasswordReset,
    /// An address was confirmed.
    EmailVerified,
    /// A session was revoked.
    SessionRevoked,
    /// All sessions and tokens of a user were revoked.
    AllSessionsRevoked,
    /// A refresh token was revoked.
    TokenRevoked,
    /// A spent refresh token was presented again: its family was revoked.
    RefreshTokenReuse,
    /// An admin changed a role.
    RoleChanged,
    /// An account was deleted.
    AccountDeleted,
}

impl AuditEvent {
    pub(crate) fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// One record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Id (time-ordered).
    pub id: Uuid,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// What.
    pub event: String,
    /// The account concerned.
    pub user_id: Option<Uuid>,
    /// Who acted, when not the account itself (an admin).
    pub actor_id: Option<Uuid>,
    /// Client address.
    pub ip: Option<String>,
    /// Client software.
    pub user_agent: Option<String>,
    /// Event-specific facts.
    pub details: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    event: String,
    user_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    details: Json<serde_json::Value>,
}

/// Which records to read.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this account's records.
    pub user_id: Option<Uuid>,
    /// Only this event (snake_case name).
    pub event: Option<String>,
    /// At most this many (default 50, max 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// The insert of one record: id, time, event, user, actor, ip, user agent,
/// details as `$1`…`$8`. A macro, so that the sign-in's combined write
/// ([`super::sign_ins`]) is put together from the same text at compile time.
macro_rules! insert_sql {
    () => {
        "INSERT INTO identity_audit_log (id, occurred_at, event, user_id, actor_id, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
}
pub(crate) use insert_sql;

/// Appends a record. Failing to audit is logged, never hidden, but does not
/// fail the user's request.
pub async fn record(
    db: &Db,
    event: AuditEvent,
    user_id: Option<Uuid>,
    actor_id: Option<Uuid>,
    ctx: &RequestContext,
    details: serde_json::Value,
) {
    let result: Result<u64, sqlx::Error> = with_conn!(db, |conn| {
        sqlx::query(insert_sql!())
            .bind(Uuid::now_v7())
            .bind(Utc::now())
            .bind(event.as_str())
            .bind(user_id)
            .bind(actor_id)
            .bind(&ctx.ip)
            .bind(&ctx.user_agent)
            .bind(Json(&details))
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    });
    if let Err(error) = result {
        tracing::error!(error = %error, event = event.as_str(), "cannot write audit record");
    }
}

/// Newest first.
pub async fn list(db: &Db, q: &AuditQuery) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let limit = i64::from(q.limit.unwrap_or(50).clamp(1, 500));
    let offset = i64::from(q.offset.unwrap_or(0));
    // Optional filters as "parameter is null or matches", so the text stays static.
    let rows: Vec<AuditRow> = with_conn!(db, |conn| {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, occurred_at, event, user_id, actor_id, ip, user_agent, details FROM identity_audit_log \
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR event = $2) \
             ORDER BY occurred_at DESC, id DESC LIMIT $3 OFFSET $4",
        )
        .bind(q.user_id)
        .bind(&q.event)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(|r| AuditRecord {
            id: r.id,
            occurred_at: r.occurred_at,
            event: r.event,
            user_id: r.user_id,
            actor_id: r.actor_id,
            ip: r.ip,
            user_agent: r.user_agent,
            details: r.details.0,
        })
        .collect())
}
