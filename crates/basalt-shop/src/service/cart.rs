//! Carts. An anonymous cart is addressed by its id and an unguessable
//! token (`X-Cart-Token`, 256 random bits; only its SHA-256 is stored and
//! compared in constant time); a signed-in user's cart by their
//! credentials.
//!
//! **Merge on sign-in.** Signing in is the identity module's business, and
//! it knows nothing of carts, so the merge is the client's next call: a
//! signed-in `POST /api/shop/carts` that also sends the anonymous cart's
//! `X-Cart-Token` moves that cart's items into the user's open cart
//! (quantities summed; created if they had none) and marks the anonymous
//! cart `merged`, after which its token opens nothing. Both in one
//! transaction, guarded by the anonymous cart's `open → merged` transition,
//! so two merges at once cannot add the items twice.

use std::collections::HashMap;

use basalt_platform::error::Failure;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Caller, Shop, conflict, invalid, not_found};
use crate::model::{Cart, CartItem};
use crate::money::{Currency, Money};
use crate::store::carts::{self as store, CartRow};
use crate::store::catalog;

/// The most units of one SKU in a cart.
pub const MAX_QUANTITY: i64 = 1000;

/// A new cart's options.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCart {
    /// The cart's currency (default `shop.default_currency`).
    pub currency: Option<String>,
}

/// Units of a SKU to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// The variant.
    pub sku: String,
    /// 1 to 1000, added to what the cart holds.
    pub quantity: i64,
}

fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> Result<String, Failure> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::internal(anyhow::anyhow!("no system randomness: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

impl Shop {
    /// A new anonymous cart (with its token), or for a signed-in caller
    /// their open cart, into which the anonymous cart named by their
    /// `X-Cart-Token` is merged first (see the module docs).
    pub async fn create_cart(&self, caller: &Caller, new: NewCart) -> Result<Cart, Failure> {
        let currency = match new.currency.as_deref() {
            Some(code) => {
                Currency::parse(code).map_err(|_| invalid("currency", "is not an ISO 4217 code"))?
            }
            None => Currency::parse(&self.config.default_currency)
                .map_err(|_| invalid("currency", "no default currency"))?,
        };
        let now = Utc::now();
        let Some(user) = caller.user_id else {
            let token = new_token()?;
            let row = CartRow {
                id: Uuid::now_v7(),
                token_hash: Some(hash_token(&token)),
                user_id: None,
                currency: currency.as_str().to_owned(),
                status: "open".into(),
                created_at: now,
            };
            store::insert(&self.db, &row).await?;
            let mut cart = self.render_cart(row).await?;
            cart.token = Some(token);
            return Ok(cart);
        };
        let mine = match store::open_of_user(&self.db, user).await? {
            Some(cart) => cart,
            None => {
                let row = CartRow {
                    id: Uuid::now_v7(),
                    token_hash: None,
                    user_id: Some(user),
                    currency: currency.as_str().to_owned(),
                    status: "open".into(),
                    created_at: now,
                };
                store::insert(&self.db, &row).await?;
                row
            }
        };
        if let Some(token) = caller.cart_token.as_deref() {
            self.merge(token, mine.id).await?;
        }
        self.render_cart(mine).await
    }

    /// Moves the anonymous cart of `token` into the cart `into`.
    async fn merge(&self, token: &str, into: Uuid) -> Result<(), Failure> {
        let Some(anonymous) = store::open_by_token(&self.db, &hash_token(token)).await? else {
            // Already merged, checked out, or not a token: nothing to do.
            return Ok(());
        };
        let mut tx = self.db.begin().await?;
        if store::transition(&mut tx, anonymous.id, "open", "merged", Utc::now()).await? {
            store::copy_items(&mut tx, anonymous.id, into).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// The cart `id`, if the caller may use it.
    pub async fn cart(&self, caller: &Caller, id: Uuid) -> Result<Cart, Failure> {
        let row = self.cart_row(caller, id).await?;
        self.render_cart(row).await
    }

    /// Adds units of a SKU to the caller's open cart.
    pub async fn add_item(
        &self,
        caller: &Caller,
        id: Uuid,
        item: NewItem,
    ) -> Result<Cart, Failure> {
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            return Err(invalid("quantity", "must be from 1 to 1000"));
        }
        let row = self.cart_row(caller, id).await?;
        let variant = catalog::priced(&self.db, std::slice::from_ref(&item.sku), &row.currency)
            .await?
            .into_iter()
            .find(|v| v.published)
            .ok_or_else(|| invalid("sku", "is not in the catalog"))?;
        if variant.amount.is_none() {
            return Err(invalid("sku", "has no price in the cart's currency"));
        }
        let mut tx = self.db.begin().await?;
        if !store::add_item(&mut tx, row.id, &item.sku, item.quantity, Utc::now()).await? {
            return Err(conflict("the cart is no longer open"));
        }
        tx.commit().await?;
        self.render_cart(row).await
    }

    /// The cart's row, if `caller` may use it: its owner by their
    /// credentials, an anonymous cart by its token. Anything else is a 404,
    /// telling nothing of carts that exist.
    pub(crate) async fn cart_row(&self, caller: &Caller, id: Uuid) -> Result<CartRow, Failure> {
        let row = store::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found("cart"))?;
        let allowed = match (row.user_id, &row.token_hash) {
            (Some(owner), _) => caller.user_id == Some(owner),
            (None, Some(hash)) => caller
                .cart_token
                .as_deref()
                .is_some_and(|t| bool::from(hash_token(t).ct_eq(hash))),
            (None, None) => false,
        };
        if allowed {
            Ok(row)
        } else {
            Err(not_found("cart"))
        }
    }

    /// A cart with its lines priced now.
    pub(crate) async fn render_cart(&self, row: CartRow) -> Result<Cart, Failure> {
        let currency =
            Currency::parse(&row.currency).map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        let items = store::items(&self.db, row.id).await?;
        let skus: Vec<String> = items.iter().map(|i| i.sku.clone()).collect();
        let priced: HashMap<String, catalog::PricedVariant> =
            catalog::priced(&self.db, &skus, &row.currency)
                .await?
                .into_iter()
                .map(|v| (v.sku.clone(), v))
                .collect();
        let mut lines = Vec::with_capacity(items.len());
        let mut subtotal = Money::zero(currency);
        for item in items {
            let Some(v) = priced.get(&item.sku) else {
                continue;
            };
            let unit = Money::new(v.amount.unwrap_or(0), currency);
            let line_total = unit
                .checked_mul(item.quantity)
                .map_err(|e| invalid("items", &e.to_string()))?;
            subtotal = subtotal
                .checked_add(line_total)
                .map_err(|e| invalid("items", &e.to_string()))?;
            lines.push(CartItem {
                sku: item.sku,
                product_slug: v.product_slug.clone(),
                name: v.product_name.clone(),
                options: serde_json::from_str(&v.options).unwrap_or_default(),
                quantity: item.quantity,
                unit_price: unit,
                line_total,
            });
        }
        Ok(Cart {
            id: row.id,
            token: None,
            user_id: row.user_id,
            currency,
            status: row.status,
            items: lines,
            subtotal,
        })
    }
}
