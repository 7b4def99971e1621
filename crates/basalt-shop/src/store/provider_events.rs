//! Payment providers' webhook events already received (migration 5101):
//! the deduplication of deliveries on the provider's event id.

use basalt_platform::db::Db;
use basalt_platform::with_conn;
use chrono::{DateTime, Utc};

/// Records event `event_id` of `provider`; `false` if it was recorded
/// before (a duplicate delivery). One conditional insert: of two
/// concurrent deliveries, exactly one gets `true`.
pub async fn record(
    db: &Db,
    provider: &str,
    event_id: &str,
    event_type: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO shop_provider_events (provider, event_id, event_type, received_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(event_id)
        .bind(event_type)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// Forgets event `event_id`, whose handling failed, so that the provider's
/// next delivery of it is handled again.
pub async fn forget(db: &Db, provider: &str, event_id: &str) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM shop_provider_events WHERE provider = $1 AND event_id = $2")
            .bind(provider)
            .bind(event_id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Removes events received before `before`; how many.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM shop_provider_events WHERE received_at < $1")
            .bind(before)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
}
