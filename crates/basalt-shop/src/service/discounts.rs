//! Discount codes: percentage or fixed, a minimum order, limits in all and
//! per customer, and a validity window. Checkout counts a use with
//! conditional increments in its own transaction (`store::discounts`), so
//! the limits hold however many buyers use a code at once; a use by an
//! order cancelled before payment is given back.

use basalt_platform::db::unique_violation;
use basalt_platform::error::{Failure, FieldError};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Shop, invalid};
use crate::model::Discount;
use crate::money::{Currency, Money};
use crate::store::discounts::{self as store, DiscountRow};

/// A new discount code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDiscount {
    /// 3 to 40 letters, digits, `-` or `_`; matched in any case.
    pub code: String,
    /// `percentage` or `fixed`.
    pub kind: String,
    /// Whole percent (1–100), or minor units (fixed).
    pub value: i64,
    /// Carts it applies to, and the unit of `value` and `min_order`
    /// (default `shop.default_currency`).
    pub currency: Option<String>,
    /// Smallest subtotal, in minor units (default 0).
    #[serde(default)]
    pub min_order: i64,
    /// Uses in all (none: unlimited).
    pub usage_limit: Option<i64>,
    /// Uses per customer e-mail (none: unlimited).
    pub per_customer_limit: Option<i64>,
    /// Valid from (none: now).
    pub starts_at: Option<DateTime<Utc>>,
    /// Valid until (none: forever).
    pub ends_at: Option<DateTime<Utc>>,
}

impl Shop {
    /// Creates a discount code (an admin's call).
    pub async fn create_discount(&self, new: NewDiscount) -> Result<Discount, Failure> {
        let mut errors = Vec::new();
        let code = new.code.trim().to_ascii_uppercase();
        if !(3..=40).contains(&code.len())
            || !code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            errors.push(FieldError::new(
                "code",
                "is 3 to 40 letters, digits, '-' or '_'",
            ));
        }
        match new.kind.as_str() {
            "percentage" if !(1..=100).contains(&new.value) => {
                errors.push(FieldError::new("value", "is a whole percent from 1 to 100"));
            }
            "fixed" if new.value < 1 => errors.push(FieldError::new("value", "is at least 1")),
            "percentage" | "fixed" => {}
            _ => errors.push(FieldError::new("kind", "is percentage or fixed")),
        }
        let currency = new
            .currency
            .as_deref()
            .unwrap_or(&self.config.default_currency);
        let currency = Currency::parse(currency);
        if currency.is_err() {
            errors.push(FieldError::new("currency", "is not an ISO 4217 code"));
        }
        if new.min_order < 0 {
            errors.push(FieldError::new("min_order", "is at least 0"));
        }
        for (field, limit) in [
            ("usage_limit", new.usage_limit),
            ("per_customer_limit", new.per_customer_limit),
        ] {
            if limit.is_some_and(|l| l < 1) {
                errors.push(FieldError::new(field, "is at least 1"));
            }
        }
        if let (Some(s), Some(e)) = (new.starts_at, new.ends_at)
            && e <= s
        {
            errors.push(FieldError::new("ends_at", "is after starts_at"));
        }
        let Ok(currency) = currency else {
            return Err(Failure::invalid(errors));
        };
        if !errors.is_empty() {
            return Err(Failure::invalid(errors));
        }
        let row = DiscountRow {
            id: Uuid::now_v7(),
            code,
            kind: new.kind,
            value: new.value,
            currency: currency.as_str().to_owned(),
            min_order: new.min_order,
            usage_limit: new.usage_limit,
            per_customer_limit: new.per_customer_limit,
            used: 0,
            starts_at: new.starts_at,
            ends_at: new.ends_at,
            created_at: Utc::now(),
        };
        if let Err(e) = store::insert(&self.db, &row).await {
            return Err(match unique_violation(&e) {
                Some(_) => invalid("code", "is taken"),
                None => e.into(),
            });
        }
        Ok(render(row, currency))
    }

    /// The discount of `code` if it applies to a cart of `subtotal` now; a
    /// 422 on `discount_code` saying why not. Its limits are checked by
    /// checkout's transaction, not here.
    pub(crate) async fn applicable_discount(
        &self,
        code: &str,
        subtotal: Money,
    ) -> Result<DiscountRow, Failure> {
        let refuse = |why: &str| invalid("discount_code", why);
        let code = code.trim().to_ascii_uppercase();
        let row = store::by_code(&self.db, &code)
            .await?
            .ok_or_else(|| refuse("is not a valid code"))?;
        let now = Utc::now();
        if row.starts_at.is_some_and(|s| now < s) || row.ends_at.is_some_and(|e| now >= e) {
            return Err(refuse("is not valid now"));
        }
        if row.currency != subtotal.currency.as_str() {
            return Err(refuse("does not apply to this cart's currency"));
        }
        if subtotal.amount < row.min_order {
            return Err(refuse("needs a larger order"));
        }
        Ok(row)
    }
}

fn render(row: DiscountRow, currency: Currency) -> Discount {
    Discount {
        id: row.id,
        code: row.code,
        kind: row.kind,
        value: row.value,
        currency,
        min_order: row.min_order,
        usage_limit: row.usage_limit,
        per_customer_limit: row.per_customer_limit,
        used: row.used,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
    }
}
