//! The oversell guard: stock is taken with one atomic conditional
//! decrement per line, inside the checkout's transaction, and given back
//! with one increment when a reservation is released.
//!
//! `UPDATE shop_variants SET stock = stock - $1 WHERE sku = $2 AND stock >= $1`
//! either takes the units or changes nothing (0 rows affected): there is no
//! read-then-write window in which two buyers both see the last unit. On
//! PostgreSQL the row stays locked by the winner until its transaction ends
//! (a second buyer's `UPDATE` waits, then re-checks `stock >= $1` on the
//! committed row); on SQLite the transaction holds the single write lock.
//! The table's `CHECK (stock >= 0)` is the last line of defence.

use basalt_platform::db::Tx;
use basalt_platform::with_tx;
use uuid::Uuid;

/// A reservation as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationRow {
    /// The variant.
    pub sku: String,
    /// How many.
    pub quantity: i64,
}

/// Takes `quantity` units of `sku` if there are that many; false (nothing
/// changed) if not.
#[cfg(not(feature = "bench-naive-checkout"))]
pub async fn take(tx: &mut Tx, sku: &str, quantity: i64) -> Result<bool, sqlx::Error> {
    let n = with_tx!(tx, |conn| {
        sqlx::query("UPDATE shop_variants SET stock = stock - $1 WHERE sku = $2 AND stock >= $1")
            .bind(quantity)
            .bind(sku)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// **Benchmark baseline only** (cargo feature `bench-naive-checkout`, off by
/// default; never in a production build): the naive guard that
/// `bench/shop.sh` measures the real one against. It locks the variant's
/// row (`SELECT … FOR UPDATE` on PostgreSQL; the transaction's write lock
/// on SQLite), checks the stock in Rust, then writes it back: one row lock
/// per checkout, held across a second round trip, as Vendure did before
/// its PR #4930. Correct (no oversell), only slower.
#[cfg(feature = "bench-naive-checkout")]
pub async fn take(tx: &mut Tx, sku: &str, quantity: i64) -> Result<bool, sqlx::Error> {
    let select = if matches!(tx, Tx::Postgres(_)) {
        "SELECT stock FROM shop_variants WHERE sku = $1 FOR UPDATE"
    } else {
        "SELECT stock FROM shop_variants WHERE sku = $1"
    };
    let stock: Option<i64> = with_tx!(tx, |conn| {
        sqlx::query_scalar(select)
            .bind(sku)
            .fetch_optional(conn)
            .await
    })?;
    let Some(stock) = stock.filter(|s| *s >= quantity) else {
        return Ok(false);
    };
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE shop_variants SET stock = $1 WHERE sku = $2")
            .bind(stock - quantity)
            .bind(sku)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(true)
}

/// Gives `quantity` units of `sku` back.
pub async fn give_back(tx: &mut Tx, sku: &str, quantity: i64) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE shop_variants SET stock = stock + $1 WHERE sku = $2")
            .bind(quantity)
            .bind(sku)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Records that `order` holds `quantity` of `sku` until `expires_at_ms`.
pub async fn reserve(
    tx: &mut Tx,
    order: Uuid,
    sku: &str,
    quantity: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_reservations (order_id, sku, quantity, expires_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(order)
        .bind(sku)
        .bind(quantity)
        .bind(expires_at_ms)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Deletes and returns `order`'s reservations: once paid, its units are
/// sold; once cancelled, the caller gives them back.
pub async fn clear(tx: &mut Tx, order: Uuid) -> Result<Vec<ReservationRow>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as("DELETE FROM shop_reservations WHERE order_id = $1 RETURNING sku, quantity")
            .bind(order)
            .fetch_all(conn)
            .await
    })
}

/// Orders with a reservation expired at `now_ms`, at most `limit`.
pub async fn expired_orders(
    db: &basalt_platform::Db,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    basalt_platform::with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT DISTINCT order_id FROM shop_reservations WHERE expires_at_ms <= $1 LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}
