//! The merchant webhooks' tables (migration 5201): each query written once
//! for both backends.

use basalt_platform::db::{Db, Tx};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint};

type EndpointRow = (Uuid, String, String, bool, DateTime<Utc>);

fn endpoint(row: EndpointRow) -> WebhookEndpoint {
    let (id, url, events, enabled, created_at) = row;
    WebhookEndpoint {
        id,
        url,
        events: serde_json::from_str(&events).unwrap_or_default(),
        enabled,
        created_at,
    }
}

/// Inserts an endpoint.
pub async fn insert_endpoint(
    db: &Db,
    endpoint: &WebhookEndpoint,
    secret: &str,
    created_by: Uuid,
) -> Result<(), sqlx::Error> {
    let events = serde_json::to_string(&endpoint.events).unwrap_or_else(|_| "[]".into());
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO shop_webhook_endpoints \
             (id, url, events, secret, enabled, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(endpoint.id)
        .bind(&endpoint.url)
        .bind(events)
        .bind(secret)
        .bind(endpoint.enabled)
        .bind(created_by)
        .bind(endpoint.created_at)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// One endpoint.
pub async fn endpoint_by_id(db: &Db, id: Uuid) -> Result<Option<WebhookEndpoint>, sqlx::Error> {
    let row: Option<EndpointRow> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, url, events, enabled, created_at FROM shop_webhook_endpoints \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.map(endpoint))
}

/// Every enabled endpoint, inside `tx` (the fan-out's).
pub async fn enabled_endpoints(tx: &mut Tx) -> Result<Vec<WebhookEndpoint>, sqlx::Error> {
    let rows: Vec<EndpointRow> = with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT id, url, events, enabled, created_at FROM shop_webhook_endpoints \
             WHERE enabled = TRUE ORDER BY id",
        )
        .fetch_all(conn)
        .await
    })?;
    Ok(rows.into_iter().map(endpoint).collect())
}

/// A new delivery for `(endpoint, event)`; `false` when there is one
/// already (the event came again).
pub async fn insert_delivery(
    tx: &mut Tx,
    id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: &str,
    body: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_webhook_deliveries \
             (id, endpoint_id, event_id, event_type, body, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(id)
        .bind(endpoint_id)
        .bind(event_id)
        .bind(event_type)
        .bind(body)
        .bind(Utc::now())
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(inserted == 1)
}

/// What an attempt needs: the endpoint's URL and secret, the body.
pub struct ToSend {
    /// The delivery's event kind.
    pub event_type: String,
    /// The exact body.
    pub body: String,
    /// The endpoint's URL.
    pub url: String,
    /// The endpoint's signing secret.
    pub secret: String,
    /// Whether the endpoint is enabled.
    pub enabled: bool,
}

/// The delivery `id` and its endpoint, to send.
pub async fn to_send(db: &Db, id: Uuid) -> Result<Option<ToSend>, sqlx::Error> {
    let row: Option<(String, String, String, String, bool)> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT d.event_type, d.body, e.url, e.secret, e.enabled \
             FROM shop_webhook_deliveries d \
             JOIN shop_webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.map(|(event_type, body, url, secret, enabled)| ToSend {
        event_type,
        body,
        url,
        secret,
        enabled,
    }))
}

/// One attempt's outcome, to log.
pub struct Outcome<'a> {
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's status, if it answered.
    pub response_status: Option<i32>,
    /// Why it failed.
    pub error: Option<&'a str>,
    /// Whether it succeeded.
    pub succeeded: bool,
}

/// Logs an attempt and updates the delivery: succeeded, or retrying, or
/// failed when this was the round's last attempt (`max_attempts`). Returns
/// the delivery's new status.
pub async fn record_attempt(
    db: &Db,
    delivery_id: Uuid,
    outcome: &Outcome<'_>,
    max_attempts: i32,
) -> Result<DeliveryStatus, sqlx::Error> {
    let mut tx = db.begin().await?;
    // Takes the delivery's row first: attempts are numbered in order.
    let (count, round): (i32, i32) = with_tx!(&mut tx, |conn| {
        sqlx::query_as(
            "UPDATE shop_webhook_deliveries \
             SET attempt_count = attempt_count + 1, round_attempts = round_attempts + 1 \
             WHERE id = $1 RETURNING attempt_count, round_attempts",
        )
        .bind(delivery_id)
        .fetch_one(conn)
        .await
    })?;
    let status = if outcome.succeeded {
        DeliveryStatus::Succeeded
    } else if round >= max_attempts {
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Retrying
    };
    with_tx!(&mut tx, |conn| {
        sqlx::query("UPDATE shop_webhook_deliveries SET status = $2 WHERE id = $1")
            .bind(delivery_id)
            .bind(status.as_str())
            .execute(conn)
            .await
            .map(|_| ())
    })?;
    with_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_webhook_attempts \
             (id, delivery_id, attempt, started_at, duration_ms, response_status, error, \
              succeeded) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(delivery_id)
        .bind(count)
        .bind(outcome.started_at)
        .bind(outcome.duration_ms)
        .bind(outcome.response_status)
        .bind(outcome.error)
        .bind(outcome.succeeded)
        .execute(conn)
        .await
        .map(|_| ())
    })?;
    tx.commit().await?;
    Ok(status)
}

/// Starts a new round for a redelivery: pending, round count reset.
/// `false` when no such delivery belongs to `endpoint_id`.
pub async fn restart(tx: &mut Tx, endpoint_id: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE shop_webhook_deliveries SET status = 'pending', round_attempts = 0 \
             WHERE id = $1 AND endpoint_id = $2",
        )
        .bind(id)
        .bind(endpoint_id)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(updated == 1)
}

type DeliveryRow = (Uuid, Uuid, Uuid, String, String, i32, DateTime<Utc>);
type AttemptRow = (
    Uuid,
    i32,
    DateTime<Utc>,
    i64,
    Option<i32>,
    Option<String>,
    bool,
);

/// An endpoint's deliveries, newest first, at most `limit`, each with its
/// attempts; or just `only` among them.
pub async fn deliveries(
    db: &Db,
    endpoint_id: Uuid,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows: Vec<DeliveryRow> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, endpoint_id, event_id, event_type, status, attempt_count, created_at \
             FROM shop_webhook_deliveries \
             WHERE endpoint_id = $1 AND ($2 IS NULL OR id = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(endpoint_id)
        .bind(only)
        .bind(limit)
        .fetch_all(conn)
        .await
    })?;
    let attempts: Vec<AttemptRow> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.response_status, \
                    a.error, a.succeeded \
             FROM shop_webhook_attempts a \
             JOIN shop_webhook_deliveries d ON d.id = a.delivery_id \
             WHERE d.endpoint_id = $1 AND ($2 IS NULL OR d.id = $2) \
             ORDER BY a.attempt",
        )
        .bind(endpoint_id)
        .bind(only)
        .fetch_all(conn)
        .await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(id, endpoint_id, event_id, event_type, status, attempt_count, created_at)| Delivery {
                id,
                endpoint_id,
                event_id,
                event_type,
                status: DeliveryStatus::parse(&status),
                attempt_count,
                created_at,
                attempts: attempts
                    .iter()
                    .filter(|a| a.0 == id)
                    .map(|a| DeliveryAttempt {
                        attempt: a.1,
                        started_at: a.2,
                        duration_ms: a.3,
                        response_status: a.4,
                        error: a.5.clone(),
                        succeeded: a.6,
                    })
                    .collect(),
            },
        )
        .collect())
}
