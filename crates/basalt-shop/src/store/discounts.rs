//! Discount codes and their uses. Limits hold under concurrency because
//! every use is a conditional increment in the checkout's transaction:
//! `used = used + 1 WHERE used < usage_limit`, and likewise per customer.

use basalt_platform::db::{Db, Tx};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A discount as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DiscountRow {
    /// Id.
    pub id: Uuid,
    /// Capitals.
    pub code: String,
    /// `percentage` or `fixed`.
    pub kind: String,
    /// Percent or minor units.
    pub value: i64,
    /// ISO 4217.
    pub currency: String,
    /// Minor units.
    pub min_order: i64,
    /// Uses in all.
    pub usage_limit: Option<i64>,
    /// Uses per customer.
    pub per_customer_limit: Option<i64>,
    /// Uses so far.
    pub used: i64,
    /// Valid from.
    pub starts_at: Option<DateTime<Utc>>,
    /// Valid until.
    pub ends_at: Option<DateTime<Utc>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

/// Inserts a discount.
pub async fn insert(db: &Db, d: &DiscountRow) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO shop_discounts (id, code, kind, value, currency, min_order, usage_limit, \
             per_customer_limit, used, starts_at, ends_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11)",
        )
        .bind(d.id)
        .bind(&d.code)
        .bind(&d.kind)
        .bind(d.value)
        .bind(&d.currency)
        .bind(d.min_order)
        .bind(d.usage_limit)
        .bind(d.per_customer_limit)
        .bind(d.starts_at)
        .bind(d.ends_at)
        .bind(d.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A discount by code (capitals).
pub async fn by_code(db: &Db, code: &str) -> Result<Option<DiscountRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, code, kind, value, currency, min_order, usage_limit, per_customer_limit, used, \
             starts_at, ends_at, created_at FROM shop_discounts WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(conn)
        .await
    })
}

/// Counts one use, if the code's limit allows it; false if used up.
pub async fn take_use(tx: &mut Tx, discount: Uuid) -> Result<bool, sqlx::Error> {
    let n = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE shop_discounts SET used = used + 1 \
             WHERE id = $1 AND (usage_limit IS NULL OR used < usage_limit)",
        )
        .bind(discount)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Counts one use by `customer`, if their limit allows it; false if not.
pub async fn take_customer_use(
    tx: &mut Tx,
    discount: Uuid,
    customer: &str,
    limit: i64,
) -> Result<bool, sqlx::Error> {
    let n = with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_discount_customers (discount_id, customer, uses) VALUES ($1, $2, 1) \
             ON CONFLICT (discount_id, customer) DO UPDATE SET uses = shop_discount_customers.uses + 1 \
             WHERE shop_discount_customers.uses < $3",
        )
        .bind(discount)
        .bind(customer)
        .bind(limit)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1 && limit >= 1)
}

/// Records the redemption by an order.
pub async fn redeem(
    tx: &mut Tx,
    discount: Uuid,
    order: Uuid,
    customer: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_discount_redemptions (discount_id, order_id, customer, amount, at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(discount)
        .bind(order)
        .bind(customer)
        .bind(amount)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Gives back the use an order made (it was cancelled before payment).
pub async fn release(tx: &mut Tx, order: Uuid) -> Result<(), sqlx::Error> {
    let redeemed: Option<(Uuid, String)> = with_tx!(tx, |conn| {
        sqlx::query_as(
            "DELETE FROM shop_discount_redemptions WHERE order_id = $1 RETURNING discount_id, customer",
        )
        .bind(order)
        .fetch_optional(conn)
        .await
    })?;
    let Some((discount, customer)) = redeemed else {
        return Ok(());
    };
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE shop_discounts SET used = used - 1 WHERE id = $1 AND used > 0")
            .bind(discount)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE shop_discount_customers SET uses = uses - 1 \
             WHERE discount_id = $1 AND customer = $2 AND uses > 0",
        )
        .bind(discount)
        .bind(customer)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}
