//! Checkout: a cart becomes an order with its stock reserved, in one
//! transaction, then the payment is created at the provider.
//!
//! The transaction, in a fixed lock order (so two checkouts never
//! deadlock): the cart `open → checked_out` (a cart is checked out once,
//! and its lines must still be those priced);
//! the discount's uses (conditional increments); each line's stock, SKUs
//! in order, by the oversell guard's conditional decrement
//! (`store::inventory::take`: 0 rows affected is a 409 and a rollback);
//! the order counter (gapless numbers); then the order, its lines,
//! reservations (TTL `shop.reservation_ttl_secs`), history and
//! `shop.order.created` event. Prices come from the catalog, never from
//! the client ([`super::pricing`]).
//!
//! The provider is called after the commit, never while rows are locked:
//! if creating the payment fails, the order is cancelled again (stock
//! back) and the buyer gets the provider's error.

use std::collections::HashMap;

use basalt_platform::error::{Failure, FieldError};
use basalt_platform::http::input::has_control;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::pricing::{self, PricedLine};
use super::{Caller, Shop, conflict, events, invalid, payment_failure, state};
use crate::model::{Address, Order};
use crate::money::{Currency, Money};
use crate::payments::{PaymentRequest, ProviderName};
use crate::store::orders::{LineRow, OrderRow};
use crate::store::{carts, catalog, discounts, inventory, orders};

/// What the buyer sends at checkout: never a price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Where receipts go.
    pub email: String,
    /// Where it ships (its country decides the tax).
    pub shipping_address: Address,
    /// `stripe` or `paypal` (one that is configured).
    pub provider: ProviderName,
    /// A discount code.
    #[serde(default)]
    pub discount_code: Option<String>,
}

impl Shop {
    /// Places the order for cart `id` and creates its payment.
    pub async fn checkout(
        &self,
        caller: &Caller,
        id: Uuid,
        request: CheckoutRequest,
    ) -> Result<Order, Failure> {
        check_request(&request)?;
        let provider = self
            .payments
            .get(request.provider)
            .map_err(payment_failure)?
            .clone();
        let cart = self.cart_row(caller, id).await?;
        if cart.status != "open" {
            return Err(conflict("the cart was already checked out"));
        }
        let currency =
            Currency::parse(&cart.currency).map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        let mut items = carts::items(&self.db, cart.id).await?;
        if items.is_empty() {
            return Err(invalid("cart", "is empty"));
        }
        // The lock order: SKUs sorted.
        items.sort_by(|a, b| a.sku.cmp(&b.sku));
        let skus: Vec<String> = items.iter().map(|i| i.sku.clone()).collect();
        let variants: HashMap<String, catalog::PricedVariant> =
            catalog::priced(&self.db, &skus, &cart.currency)
                .await?
                .into_iter()
                .map(|v| (v.sku.clone(), v))
                .collect();
        let mut priced = Vec::with_capacity(items.len());
        let mut lines = Vec::with_capacity(items.len());
        for (position, item) in items.iter().enumerate() {
            let variant = variants
                .get(&item.sku)
                .filter(|v| v.published)
                .ok_or_else(|| conflict(format!("{} is no longer sold", item.sku)))?;
            // Sold out already: refused without a transaction (a flash
            // sale's late buyers never queue for the write lock). Only an
            // early answer: the conditional decrement below is the guard.
            // (The naive benchmark baseline, feature `bench-naive-checkout`,
            // leaves it out: every one of its checkouts takes the row lock.)
            if !cfg!(feature = "bench-naive-checkout") && variant.stock < item.quantity {
                return Err(conflict(format!("{} is out of stock", item.sku)));
            }
            let unit = variant
                .amount
                .ok_or_else(|| conflict(format!("{} has no price in {currency}", item.sku)))?;
            priced.push(PricedLine {
                unit: Money::new(unit, currency),
                quantity: item.quantity,
                weight_grams: variant.weight_grams,
            });
            lines.push(LineRow {
                position: i64::try_from(position).unwrap_or(i64::MAX),
                sku: item.sku.clone(),
                product_name: variant.product_name.clone(),
                options: variant.options.clone(),
                unit_amount: unit,
                quantity: item.quantity,
                line_amount: unit.saturating_mul(item.quantity),
            });
        }
        let subtotal = pricing::totals(&self.config, currency, &priced, None, "")
            .map_err(|e| invalid("cart", &e.to_string()))?
            .subtotal;
        let discount = match request
            .discount_code
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            Some(code) => Some(self.applicable_discount(code, subtotal).await?),
            None => None,
        };
        let country = request.shipping_address.country.to_ascii_uppercase();
        let totals = pricing::totals(&self.config, currency, &priced, discount.as_ref(), &country)
            .map_err(|e| invalid("cart", &e.to_string()))?;
        if totals.total.amount <= 0 {
            return Err(invalid("cart", "has nothing to pay"));
        }
        let customer = request.email.trim().to_lowercase();
        let mut address = request.shipping_address.clone();
        address.country = country;
        let now = Utc::now();
        let mut order = OrderRow {
            id: Uuid::now_v7(),
            number: 0,
            status: state::PENDING_PAYMENT.into(),
            currency: currency.as_str().to_owned(),
            subtotal: totals.subtotal.amount,
            discount: totals.discount.amount,
            shipping: totals.shipping.amount,
            tax: totals.tax.amount,
            total: totals.total.amount,
            refunded: 0,
            email: request.email.trim().to_owned(),
            shipping_address: serde_json::to_string(&address)
                .map_err(|e| Failure::internal(anyhow::anyhow!(e)))?,
            provider: request.provider.as_str().to_owned(),
            provider_id: None,
            user_id: caller.user_id,
            cart_id: cart.id,
            discount_id: discount.as_ref().map(|d| d.id),
            created_at: now,
        };
        let ttl = i64::try_from(self.config.reservation_ttl_secs).unwrap_or(900);
        let expires_at_ms = now.timestamp_millis() + ttl * 1000;

        let mut tx = self.db.begin().await?;
        if !carts::transition(&mut tx, cart.id, "open", "checked_out", now).await? {
            return Err(conflict("the cart was already checked out"));
        }
        // The cart is ours now (its row is locked, or the write lock held):
        // the lines priced above must still be what it holds.
        let mut held = carts::items_in(&mut tx, cart.id).await?;
        held.sort_by(|a, b| a.sku.cmp(&b.sku));
        if held != items {
            return Err(conflict("the cart changed during checkout; try again"));
        }
        if let Some(d) = &discount {
            if !discounts::take_use(&mut tx, d.id).await? {
                return Err(conflict("the discount code has been used up"));
            }
            if let Some(limit) = d.per_customer_limit
                && !discounts::take_customer_use(&mut tx, d.id, &customer, limit).await?
            {
                return Err(conflict(
                    "the discount code has been used as often as it may by this customer",
                ));
            }
        }
        for line in &lines {
            if !inventory::take(&mut tx, &line.sku, line.quantity).await? {
                return Err(conflict(format!("{} is out of stock", line.sku)));
            }
        }
        order.number = orders::next_number(&mut tx).await?;
        orders::insert(&mut tx, &order, &lines).await?;
        for line in &lines {
            inventory::reserve(&mut tx, order.id, &line.sku, line.quantity, expires_at_ms).await?;
        }
        if let Some(d) = &discount {
            discounts::redeem(
                &mut tx,
                d.id,
                order.id,
                &customer,
                totals.discount.amount,
                now,
            )
            .await?;
        }
        orders::record_history(
            &mut tx,
            order.id,
            None,
            state::PENDING_PAYMENT,
            &caller.by(),
            "checkout",
            now,
        )
        .await?;
        events::record(
            &mut tx,
            events::ORDER_CREATED,
            &order,
            state::PENDING_PAYMENT,
            0,
        )
        .await?;
        tx.commit().await?;

        let request = PaymentRequest {
            order_id: order.id,
            order_number: order.number,
            amount: totals.total,
            idempotency_key: format!("order-{}", order.id),
        };
        let created = match provider.create(&request).await {
            Ok(created) => created,
            Err(error) => {
                let why = format!("the payment could not be created: {error}");
                if let Err(failure) = self.cancel_unpaid(&order, "system", &why).await {
                    tracing::error!(order = %order.id, ?failure, "could not cancel an order whose payment failed");
                }
                return Err(payment_failure(error));
            }
        };
        orders::set_provider_id(&self.db, order.id, &created.provider_id).await?;
        order.provider_id = Some(created.provider_id.clone());
        let mut rendered = self.render_order(order).await?;
        rendered.payment.client_secret = created.client_secret;
        rendered.payment.approve_url = created.approve_url;
        Ok(rendered)
    }
}

fn check_request(request: &CheckoutRequest) -> Result<(), Failure> {
    let mut errors = Vec::new();
    let email = request.email.trim();
    let email_ok = email.len() <= 254
        && !has_control(email)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
        });
    if !email_ok {
        errors.push(FieldError::new("email", "is not an e-mail address"));
    }
    let a = &request.shipping_address;
    for (field, value, max) in [
        ("shipping_address.name", &a.name, 200),
        ("shipping_address.line1", &a.line1, 200),
        ("shipping_address.city", &a.city, 100),
        ("shipping_address.postal_code", &a.postal_code, 20),
    ] {
        if value.trim().is_empty() || value.chars().count() > max || has_control(value) {
            errors.push(FieldError::new(field, format!("is 1 to {max} characters")));
        }
    }
    if a.line2
        .as_ref()
        .is_some_and(|l| l.chars().count() > 200 || has_control(l))
    {
        errors.push(FieldError::new(
            "shipping_address.line2",
            "is at most 200 characters",
        ));
    }
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_alphabetic()) {
        errors.push(FieldError::new(
            "shipping_address.country",
            "is an ISO 3166 alpha-2 code such as DE",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::invalid(errors))
    }
}
