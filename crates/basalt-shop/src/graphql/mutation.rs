//! The shop's mutations: the buyer's (carts, checkout, confirmation) and
//! the admins' (catalog, order transitions, refunds, discounts).

use async_graphql::{Context, ID, Object};
use basalt_platform::error::Failure;

use super::types::{
    Cart, CheckoutInput, Discount, NewDiscountInput, NewProductInput, Order, Product, Variant,
    VariantChangeInput, parse_prices,
};
use super::types::{Delivery, WebhookEndpoint};
use super::{admin, caller, keyed, shop, uuid, webhooks};
use crate::payments::ProviderName;
use crate::service::cart::{NewCart, NewItem};
use crate::service::catalog::{NewProduct, NewVariant, VariantChange};
use crate::service::checkout::CheckoutRequest;
use crate::service::discounts::NewDiscount;
use crate::service::orders::NewRefund;
use crate::service::payment::Confirmation;
use crate::service::{invalid, state};

/// The shop's mutations.
#[derive(Debug, Default)]
pub struct ShopMutation;

/// An admin's transition of an order.
async fn move_to(
    ctx: &Context<'_>,
    id: &ID,
    to: &'static str,
    reason: Option<String>,
) -> Result<Order, Failure> {
    let by = admin(ctx)?;
    let id = uuid("id", id, "order")?;
    Ok(shop(ctx)?
        .admin_transition(by, id, to, reason)
        .await?
        .into())
}

#[Object]
impl ShopMutation {
    /// A new anonymous cart with its token; signed in, the caller's cart,
    /// into which the anonymous cart of `cartToken` (or `X-Cart-Token`) is
    /// merged.
    async fn create_cart(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The cart's currency (default `shop.default_currency`).")]
        currency: Option<String>,
        cart_token: Option<String>,
    ) -> Result<Cart, Failure> {
        let caller = caller(ctx, cart_token);
        Ok(shop(ctx)?
            .create_cart(&caller, NewCart { currency })
            .await?
            .into())
    }

    /// Adds `quantity` (1 to 1000) units of a SKU to the cart.
    async fn add_cart_item(
        &self,
        ctx: &Context<'_>,
        cart: ID,
        sku: String,
        quantity: i64,
        cart_token: Option<String>,
    ) -> Result<Cart, Failure> {
        let id = uuid("cart", &cart, "cart")?;
        let caller = caller(ctx, cart_token);
        Ok(shop(ctx)?
            .add_item(&caller, id, NewItem { sku, quantity })
            .await?
            .into())
    }

    /// Places the order: stock reserved, totals computed by the shop,
    /// payment created at the provider; out of stock is a `CONFLICT`.
    /// Requires an `Idempotency-Key` header (see the module's docs): a
    /// retry with the same key gets the same answer, never a second charge.
    async fn checkout(
        &self,
        ctx: &Context<'_>,
        cart: ID,
        input: CheckoutInput,
        cart_token: Option<String>,
    ) -> Result<Order, Failure> {
        keyed(ctx)?;
        let id = uuid("cart", &cart, "cart")?;
        let provider: ProviderName =
            serde_json::from_value(serde_json::Value::String(input.provider))
                .map_err(|_| invalid("input.provider", "must be stripe or paypal"))?;
        let request = CheckoutRequest {
            email: input.email,
            shipping_address: input.shipping_address.into(),
            provider,
            discount_code: input.discount_code,
        };
        let caller = caller(ctx, cart_token);
        Ok(shop(ctx)?.checkout(&caller, id, request).await?.into())
    }

    /// The buyer's client says the payment succeeded: checked with the
    /// provider, then the order is marked paid (idempotent).
    async fn confirm_payment(
        &self,
        ctx: &Context<'_>,
        order: ID,
        #[graphql(desc = "The payment's provider id, as in the checkout's answer.")]
        provider_id: String,
        cart_token: Option<String>,
    ) -> Result<Order, Failure> {
        let id = uuid("order", &order, "order")?;
        let caller = caller(ctx, cart_token);
        Ok(shop(ctx)?
            .confirm(&caller, id, Confirmation { provider_id })
            .await?
            .into())
    }

    /// Creates a product with its variants (admins).
    async fn create_product(
        &self,
        ctx: &Context<'_>,
        input: NewProductInput,
    ) -> Result<Product, Failure> {
        admin(ctx)?;
        let variants = input
            .variants
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                Ok(NewVariant {
                    prices: parse_prices(&format!("input.variants[{i}].prices"), v.prices)?,
                    sku: v.sku,
                    options: v.options.map(|o| o.0).unwrap_or_default(),
                    stock: v.stock,
                    weight_grams: v.weight_grams,
                })
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let new = NewProduct {
            slug: input.slug,
            name: input.name,
            description: input.description,
            images: input.images,
            published: input.published,
            variants,
        };
        Ok(shop(ctx)?.create_product(new).await?.into())
    }

    /// Changes a variant's prices or stock (admins).
    async fn update_variant(
        &self,
        ctx: &Context<'_>,
        sku: String,
        input: VariantChangeInput,
    ) -> Result<Variant, Failure> {
        admin(ctx)?;
        let change = VariantChange {
            prices: input
                .prices
                .map(|p| parse_prices("input.prices", p))
                .transpose()?,
            price: None,
            stock: input.stock,
        };
        Ok(shop(ctx)?.update_variant(&sku, change).await?.into())
    }

    /// Marks a paid order fulfilled (admins).
    async fn fulfil_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Order, Failure> {
        move_to(ctx, &id, state::FULFILLED, reason).await
    }

    /// Marks a fulfilled order shipped (admins); the buyer is mailed.
    async fn ship_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Order, Failure> {
        move_to(ctx, &id, state::SHIPPED, reason).await
    }

    /// Marks a shipped order delivered (admins).
    async fn deliver_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Order, Failure> {
        move_to(ctx, &id, state::DELIVERED, reason).await
    }

    /// Cancels an unpaid order (admins): payment cancelled, stock back.
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> Result<Order, Failure> {
        move_to(ctx, &id, state::CANCELLED, reason).await
    }

    /// Refunds `amount` minor units of a paid order through its provider
    /// (admins); never more than is left to refund. Requires an
    /// `Idempotency-Key` header.
    async fn refund_order(
        &self,
        ctx: &Context<'_>,
        id: ID,
        amount: i64,
        reason: Option<String>,
    ) -> Result<Order, Failure> {
        let by = admin(ctx)?;
        keyed(ctx)?;
        let id = uuid("id", &id, "order")?;
        Ok(shop(ctx)?
            .refund(by, id, NewRefund { amount, reason })
            .await?
            .into())
    }

    /// Creates a discount code (admins).
    async fn create_discount(
        &self,
        ctx: &Context<'_>,
        input: NewDiscountInput,
    ) -> Result<Discount, Failure> {
        admin(ctx)?;
        let new = NewDiscount {
            code: input.code,
            kind: input.kind,
            value: input.value,
            currency: input.currency,
            min_order: input.min_order,
            usage_limit: input.usage_limit,
            per_customer_limit: input.per_customer_limit,
            starts_at: input.starts_at.map(|t| t.0),
            ends_at: input.ends_at.map(|t| t.0),
        };
        Ok(shop(ctx)?.create_discount(new).await?.into())
    }

    /// Registers a webhook endpoint for order events (admins); the answer
    /// carries its signing secret, shown this once. Deliveries are signed
    /// with `Basalt-Signature: t=…,v1=…`.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Where deliveries are POSTed: an http(s) URL on a public address.")]
        url: String,
        #[graphql(desc = "The event kinds to receive (`shop.order.paid`, …).")] events: Vec<String>,
    ) -> Result<WebhookEndpoint, Failure> {
        let by = admin(ctx)?;
        Ok(webhooks(ctx)?
            .create_endpoint(by, &url, &events)
            .await?
            .into())
    }

    /// Sends a delivery again: the same body, signed anew, with a new round
    /// of attempts (admins).
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        endpoint: ID,
        delivery: ID,
    ) -> Result<Delivery, Failure> {
        admin(ctx)?;
        let endpoint = uuid("endpoint", &endpoint, "webhook endpoint")?;
        let delivery = uuid("delivery", &delivery, "webhook delivery")?;
        Ok(webhooks(ctx)?.redeliver(endpoint, delivery).await?.into())
    }
}
