//! Orders, their lines, history and refunds, and the order-number counter.

use basalt_platform::db::{Db, Tx};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An order as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    /// Id.
    pub id: Uuid,
    /// Gapless number.
    pub number: i64,
    /// Status (see `service::state`).
    pub status: String,
    /// ISO 4217.
    pub currency: String,
    /// Minor units, like the four below.
    pub subtotal: i64,
    /// Discount.
    pub discount: i64,
    /// Shipping.
    pub shipping: i64,
    /// Tax.
    pub tax: i64,
    /// Total charged.
    pub total: i64,
    /// Refunded so far.
    pub refunded: i64,
    /// Buyer's e-mail.
    pub email: String,
    /// JSON object.
    pub shipping_address: String,
    /// `stripe` or `paypal`.
    pub provider: String,
    /// The provider's payment id, once created.
    pub provider_id: Option<String>,
    /// Signed-in buyer.
    pub user_id: Option<Uuid>,
    /// The cart it came from.
    pub cart_id: Uuid,
    /// The discount used.
    pub discount_id: Option<Uuid>,
    /// Placed at.
    pub created_at: DateTime<Utc>,
}

/// A line as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LineRow {
    /// 0, 1, …
    pub position: i64,
    /// SKU.
    pub sku: String,
    /// Product name then.
    pub product_name: String,
    /// JSON options then.
    pub options: String,
    /// Price of one then.
    pub unit_amount: i64,
    /// How many.
    pub quantity: i64,
    /// `unit_amount × quantity`.
    pub line_amount: i64,
}

/// A history entry as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    /// Before.
    pub from_status: Option<String>,
    /// After.
    pub to_status: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by_whom: String,
    /// Why.
    pub reason: String,
}

macro_rules! order_columns {
    () => {
        "SELECT id, number, status, currency, subtotal, discount, shipping, tax, total, refunded, \
         email, shipping_address, provider, provider_id, user_id, cart_id, discount_id, created_at \
         FROM shop_orders "
    };
}

/// Bumps the order counter and returns the new number. Call last before
/// the order's insert, in its transaction: the counter's row stays locked
/// until the commit, so numbers are handed out in commit order, and a
/// rolled-back checkout gives its number back.
pub async fn next_number(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "UPDATE shop_order_counter SET last_number = last_number + 1 WHERE id = 1 RETURNING last_number",
        )
        .fetch_one(conn)
        .await
    })
}

/// Inserts an order with its lines.
pub async fn insert(tx: &mut Tx, order: &OrderRow, lines: &[LineRow]) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_orders (id, number, status, currency, subtotal, discount, shipping, tax, total, \
             refunded, email, shipping_address, provider, provider_id, user_id, cart_id, discount_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
        )
        .bind(order.id)
        .bind(order.number)
        .bind(&order.status)
        .bind(&order.currency)
        .bind(order.subtotal)
        .bind(order.discount)
        .bind(order.shipping)
        .bind(order.tax)
        .bind(order.total)
        .bind(&order.email)
        .bind(&order.shipping_address)
        .bind(&order.provider)
        .bind(order.provider_id.as_deref())
        .bind(order.user_id)
        .bind(order.cart_id)
        .bind(order.discount_id)
        .bind(order.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    for line in lines {
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO shop_order_lines (order_id, position, sku, product_name, options, unit_amount, quantity, line_amount) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(order.id)
            .bind(line.position)
            .bind(&line.sku)
            .bind(&line.product_name)
            .bind(&line.options)
            .bind(line.unit_amount)
            .bind(line.quantity)
            .bind(line.line_amount)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Records a transition.
pub async fn record_history(
    tx: &mut Tx,
    order: Uuid,
    from: Option<&str>,
    to: &str,
    by: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_order_history (order_id, from_status, to_status, at, by_whom, reason) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(order)
        .bind(from)
        .bind(to)
        .bind(at)
        .bind(by)
        .bind(reason)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Moves the order from `from` to `to` if it is still `from`: the one
/// statement that makes concurrent transitions (a webhook and the client's
/// confirmation, expiry and payment) safe. False when it was not `from`.
pub async fn transition(
    tx: &mut Tx,
    order: Uuid,
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE shop_orders SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(to)
        .bind(now)
        .bind(order)
        .bind(from)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Stores the provider's payment id once created.
pub async fn set_provider_id(db: &Db, order: Uuid, provider_id: &str) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("UPDATE shop_orders SET provider_id = $1 WHERE id = $2")
            .bind(provider_id)
            .bind(order)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// An order by id.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(concat!(order_columns!(), "WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await
    })
}

/// An order by its payment.
pub async fn by_payment(
    db: &Db,
    provider: &str,
    provider_id: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(concat!(
            order_columns!(),
            "WHERE provider = $1 AND provider_id = $2"
        ))
        .bind(provider)
        .bind(provider_id)
        .fetch_optional(conn)
        .await
    })
}

/// A user's orders, newest first.
pub async fn of_user(db: &Db, user: Uuid, limit: i64) -> Result<Vec<OrderRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(concat!(
            order_columns!(),
            "WHERE user_id = $1 ORDER BY number DESC LIMIT $2"
        ))
        .bind(user)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}

/// An order's lines.
pub async fn lines(db: &Db, order: Uuid) -> Result<Vec<LineRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT position, sku, product_name, options, unit_amount, quantity, line_amount \
             FROM shop_order_lines WHERE order_id = $1 ORDER BY position",
        )
        .bind(order)
        .fetch_all(conn)
        .await
    })
}

/// An order's history, oldest first.
pub async fn history(db: &Db, order: Uuid) -> Result<Vec<HistoryRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT from_status, to_status, at, by_whom, reason FROM shop_order_history \
             WHERE order_id = $1 ORDER BY id",
        )
        .bind(order)
        .fetch_all(conn)
        .await
    })
}

/// Claims `amount` more of the order's total for a refund, if that much
/// is left and the order is in one of the refundable states; false if not.
pub async fn claim_refund(tx: &mut Tx, order: Uuid, amount: i64) -> Result<bool, sqlx::Error> {
    let n = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE shop_orders SET refunded = refunded + $1 WHERE id = $2 AND refunded + $1 <= total \
             AND status IN ('paid', 'fulfilled', 'shipped', 'delivered', 'partially_refunded')",
        )
        .bind(amount)
        .bind(order)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Gives back a refund claim whose provider call failed.
pub async fn unclaim_refund(db: &Db, order: Uuid, amount: i64) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("UPDATE shop_orders SET refunded = refunded - $1 WHERE id = $2")
            .bind(amount)
            .bind(order)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Records a refund made at the provider.
pub async fn insert_refund(
    tx: &mut Tx,
    id: Uuid,
    order: Uuid,
    amount: i64,
    provider_refund_id: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_refunds (id, order_id, amount, provider_refund_id, by_whom, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(order)
        .bind(amount)
        .bind(provider_refund_id)
        .bind(by)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Whether the order has any refund recorded.
pub async fn has_refund(db: &Db, order: Uuid) -> Result<bool, sqlx::Error> {
    let n: i64 = with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM shop_refunds WHERE order_id = $1")
            .bind(order)
            .fetch_one(conn)
            .await
    })?;
    Ok(n > 0)
}
