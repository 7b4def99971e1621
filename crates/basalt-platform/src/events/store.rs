//! The outbox and inbox tables. Each query is written once for both backends,
//! except the claim, which takes row locks on PostgreSQL.

use sqlx::types::Json;
use uuid::Uuid;

use super::Event;
use crate::db::{Backend, Db, Tx};
use crate::{with_conn, with_tx};

/// Inserts `event` inside the caller's transaction, with the current trace
/// context (its consumers' spans continue it).
pub(super) async fn insert(tx: &mut Tx, event: &Event) -> Result<(), sqlx::Error> {
    let traceparent = crate::telemetry::traceparent();
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO platform_outbox (id, kind, payload, created_at_ms, traceparent) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(event.id)
        .bind(&event.kind)
        .bind(Json(&event.payload))
        .bind(event.occurred_at_ms)
        .bind(traceparent.as_deref())
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// The oldest unpublished events no live relay holds, now claimed until
/// `claim_until_ms`.
const CLAIM_POSTGRES: &str = "UPDATE platform_outbox SET claimed_until_ms = $1, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM platform_outbox \
         WHERE published_at_ms IS NULL AND (claimed_until_ms IS NULL OR claimed_until_ms <= $2) \
         ORDER BY created_at_ms, id LIMIT $3 \
         FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, created_at_ms, traceparent";

/// SQLite: the claim runs inside `BEGIN IMMEDIATE`, which already excludes
/// every other claimer.
const CLAIM_SQLITE: &str = "UPDATE platform_outbox SET claimed_until_ms = $1, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM platform_outbox \
         WHERE published_at_ms IS NULL AND (claimed_until_ms IS NULL OR claimed_until_ms <= $2) \
         ORDER BY created_at_ms, id LIMIT $3) \
     RETURNING id, kind, payload, created_at_ms, traceparent";

/// Claims up to `limit` events for this relay, oldest first.
pub(super) async fn claim(
    db: &Db,
    now_ms: i64,
    claim_until_ms: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let sql = match db.backend() {
        Backend::Postgres => CLAIM_POSTGRES,
        Backend::Sqlite => CLAIM_SQLITE,
    };
    let mut tx = db.begin().await?;
    type Row = (Uuid, String, Json<serde_json::Value>, i64, Option<String>);
    let rows: Vec<Row> = with_tx!(&mut tx, |conn| {
        sqlx::query_as(sql)
            .bind(claim_until_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(conn)
            .await
    })?;
    tx.commit().await?;
    let mut events: Vec<Event> = rows
        .into_iter()
        .map(|(id, kind, payload, occurred_at_ms, traceparent)| Event {
            id,
            kind,
            payload: payload.0,
            occurred_at_ms,
            traceparent,
        })
        .collect();
    // RETURNING does not keep the subquery's order.
    events.sort_by_key(|e| (e.occurred_at_ms, e.id));
    Ok(events)
}

/// Marks events published (delivered to the bus) and releases their claim.
pub(super) async fn mark_published(db: &Db, ids: &[Uuid], now_ms: i64) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    for id in ids {
        with_tx!(&mut tx, |conn| {
            sqlx::query(
                "UPDATE platform_outbox SET published_at_ms = $1, claimed_until_ms = NULL WHERE id = $2",
            )
            .bind(now_ms)
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
        })?;
    }
    tx.commit().await
}

/// Releases events that could not be published, for the next attempt.
pub(super) async fn release(db: &Db, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for id in ids {
        with_tx!(&mut tx, |conn| {
            sqlx::query("UPDATE platform_outbox SET claimed_until_ms = NULL WHERE id = $1")
                .bind(id)
                .execute(conn)
                .await
                .map(|_| ())
        })?;
    }
    tx.commit().await
}

/// Unpublished events and the creation time of the oldest, for the lag metrics.
pub(super) async fn backlog(db: &Db) -> Result<(i64, Option<i64>), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT CAST(count(*) AS BIGINT), min(created_at_ms) FROM platform_outbox \
             WHERE published_at_ms IS NULL",
        )
        .fetch_one(conn)
        .await
    })
}

/// Records that `consumer` processed `event`, inside the transaction of its
/// effect; `false` if it already had (a redelivery: skip the effect).
pub(super) async fn remember(
    tx: &mut Tx,
    consumer: &str,
    event: Uuid,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let inserted: u64 = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO platform_inbox (consumer, event_id, processed_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (consumer, event_id) DO NOTHING",
        )
        .bind(consumer)
        .bind(event)
        .bind(now_ms)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(inserted == 1)
}

/// Deletes published events and inbox entries older than `before_ms`.
pub(super) async fn prune(db: &Db, before_ms: i64) -> Result<u64, sqlx::Error> {
    let outbox: u64 = with_conn!(db, |conn| {
        sqlx::query("DELETE FROM platform_outbox WHERE published_at_ms < $1")
            .bind(before_ms)
            .execute(conn)
            .await
            .map(|done| done.rows_affected())
    })?;
    let inbox: u64 = with_conn!(db, |conn| {
        sqlx::query("DELETE FROM platform_inbox WHERE processed_at_ms < $1")
            .bind(before_ms)
            .execute(conn)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(outbox + inbox)
}
