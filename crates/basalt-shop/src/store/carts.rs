//! Carts and their items.

use basalt_platform::db::{Db, Tx};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A cart as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CartRow {
    /// Id.
    pub id: Uuid,
    /// SHA-256 of an anonymous cart's token.
    pub token_hash: Option<Vec<u8>>,
    /// A signed-in owner.
    pub user_id: Option<Uuid>,
    /// ISO 4217.
    pub currency: String,
    /// `open`, `checked_out` or `merged`.
    pub status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An item as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ItemRow {
    /// The variant.
    pub sku: String,
    /// How many.
    pub quantity: i64,
}

/// Inserts a cart.
pub async fn insert(db: &Db, cart: &CartRow) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO shop_carts (id, token_hash, user_id, currency, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(cart.id)
        .bind(cart.token_hash.as_deref())
        .bind(cart.user_id)
        .bind(&cart.currency)
        .bind(&cart.status)
        .bind(cart.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// A cart by id.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<CartRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, token_hash, user_id, currency, status, created_at FROM shop_carts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(conn)
        .await
    })
}

/// The user's open cart, if any (the oldest, should there be two).
pub async fn open_of_user(db: &Db, user: Uuid) -> Result<Option<CartRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, token_hash, user_id, currency, status, created_at FROM shop_carts \
             WHERE user_id = $1 AND status = 'open' ORDER BY created_at LIMIT 1",
        )
        .bind(user)
        .fetch_optional(conn)
        .await
    })
}

/// The anonymous open cart whose token hashes to `hash`.
pub async fn open_by_token(db: &Db, hash: &[u8]) -> Result<Option<CartRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, token_hash, user_id, currency, status, created_at FROM shop_carts \
             WHERE token_hash = $1 AND status = 'open' AND user_id IS NULL",
        )
        .bind(hash)
        .fetch_optional(conn)
        .await
    })
}

/// A cart's items, oldest first.
pub async fn items(db: &Db, cart: Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT sku, quantity FROM shop_cart_items WHERE cart_id = $1 ORDER BY added_at, sku",
        )
        .bind(cart)
        .fetch_all(conn)
        .await
    })
}

/// A cart's items inside `tx`, SKUs in order.
pub async fn items_in(tx: &mut Tx, cart: Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query_as("SELECT sku, quantity FROM shop_cart_items WHERE cart_id = $1 ORDER BY sku")
            .bind(cart)
            .fetch_all(conn)
            .await
    })
}

/// Adds `quantity` of `sku` (summed with what is there) to an open cart;
/// false when the cart is no longer open.
pub async fn add_item(
    tx: &mut Tx,
    cart: Uuid,
    sku: &str,
    quantity: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let touched = with_tx!(tx, |conn| {
        sqlx::query("UPDATE shop_carts SET updated_at = $1 WHERE id = $2 AND status = 'open'")
            .bind(now)
            .bind(cart)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    if touched == 0 {
        return Ok(false);
    }
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_cart_items (cart_id, sku, quantity, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = shop_cart_items.quantity + excluded.quantity",
        )
        .bind(cart)
        .bind(sku)
        .bind(quantity)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(true)
}

/// Moves an open cart from `from` to `to` (`checked_out`, `merged`); false
/// when it was not `from` (someone else got there first).
pub async fn transition(
    tx: &mut Tx,
    cart: Uuid,
    from: &str,
    to: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE shop_carts SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(to)
        .bind(now)
        .bind(cart)
        .bind(from)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Copies `from`'s items into `into`, summing quantities.
pub async fn copy_items(tx: &mut Tx, from: Uuid, into: Uuid) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO shop_cart_items (cart_id, sku, quantity, added_at) \
             SELECT $1, sku, quantity, added_at FROM shop_cart_items WHERE cart_id = $2 AND TRUE \
             ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = shop_cart_items.quantity + excluded.quantity",
        )
        .bind(into)
        .bind(from)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}
