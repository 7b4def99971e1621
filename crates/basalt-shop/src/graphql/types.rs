//! The shop's GraphQL types: the REST API's objects in camelCase, money
//! always as `ShopMoney { amount currency }` with an integer amount of
//! minor units.

use async_graphql::{ID, InputObject, Json, SimpleObject};
use basalt_platform::error::{Failure, FieldError};
use basalt_platform::graphql::scalars::DateTime;

use crate::model;
use crate::money::{Currency, Money};

/// An amount of money.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopMoney")]
pub struct ShopMoney {
    /// Minor units (1999 is 19.99 EUR).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<Money> for ShopMoney {
    fn from(m: Money) -> Self {
        Self {
            amount: m.amount,
            currency: m.currency.as_str().to_owned(),
        }
    }
}

/// An amount of money, as input.
#[derive(Debug, Clone, InputObject)]
#[graphql(name = "ShopMoneyInput")]
pub struct MoneyInput {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code (`EUR`).
    pub currency: String,
}

impl MoneyInput {
    /// The money, or `BAD_USER_INPUT` naming `field` if the currency is not
    /// a code.
    pub fn parse(self, field: &str) -> Result<Money, Failure> {
        let currency = Currency::parse(&self.currency).map_err(|e| {
            Failure::invalid(vec![FieldError::new(
                format!("{field}.currency"),
                e.to_string(),
            )])
        })?;
        Ok(Money::new(self.amount, currency))
    }
}

/// Parses a list of money inputs, naming each by its index.
pub fn parse_prices(field: &str, prices: Vec<MoneyInput>) -> Result<Vec<Money>, Failure> {
    prices
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.parse(&format!("{field}[{i}]")))
        .collect()
}

fn money(list: Vec<Money>) -> Vec<ShopMoney> {
    list.into_iter().map(Into::into).collect()
}

/// A product with its variants.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopProduct")]
pub struct Product {
    /// Id.
    pub id: ID,
    /// Unique, URL-safe.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Markdown, as written.
    pub description: String,
    /// The description rendered to sanitised HTML.
    pub description_html: String,
    /// Image URLs.
    pub images: Vec<String>,
    /// Visible to everyone (unpublished products only to admins).
    pub published: bool,
    /// Its variants, in the order they were given.
    pub variants: Vec<Variant>,
    /// Creation time.
    pub created_at: DateTime,
}

impl From<model::Product> for Product {
    fn from(p: model::Product) -> Self {
        Self {
            id: ID(p.id.to_string()),
            slug: p.slug,
            name: p.name,
            description: p.description,
            description_html: p.description_html,
            images: p.images,
            published: p.published,
            variants: p.variants.into_iter().map(Into::into).collect(),
            created_at: p.created_at.into(),
        }
    }
}

/// One buyable variant of a product.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopVariant")]
pub struct Variant {
    /// Stock-keeping unit, unique across the shop.
    pub sku: String,
    /// Option values (`{"size": "M"}`).
    pub options: Json<serde_json::Value>,
    /// Weight in grams.
    pub weight_grams: i64,
    /// Units available (not reserved by a checkout).
    pub stock: i64,
    /// One price per currency.
    pub prices: Vec<ShopMoney>,
}

impl From<model::Variant> for Variant {
    fn from(v: model::Variant) -> Self {
        Self {
            sku: v.sku,
            options: Json(v.options),
            weight_grams: v.weight_grams,
            stock: v.stock,
            prices: money(v.prices),
        }
    }
}

/// The complexity of a page of products: what each node selects, times
/// the products asked for (20 when `first` is absent; an out-of-range
/// `first` is refused by the service, so it counts as the largest page).
pub fn page_cost(first: Option<i64>, child: usize) -> usize {
    let nodes = first.map_or(20, |n| n.clamp(1, crate::service::catalog::MAX_PAGE));
    usize::try_from(nodes)
        .unwrap_or(1)
        .saturating_mul(child.max(1))
}

/// Where a page of products is.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopPageInfo")]
pub struct PageInfo {
    /// Whether more products may follow (the page was full).
    pub has_next_page: bool,
    /// Pass as `after` for the next page (the REST `next_cursor`).
    pub end_cursor: Option<String>,
}

/// A page of products, newest first.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopProductConnection")]
pub struct ProductConnection {
    /// The products with their cursors.
    pub edges: Vec<ProductEdge>,
    /// Where this page is.
    pub page_info: PageInfo,
}

/// A product and its cursor.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopProductEdge")]
pub struct ProductEdge {
    /// Opaque: pass it as `after` for the products that follow.
    pub cursor: String,
    /// The product.
    pub node: Product,
}

impl ProductConnection {
    /// The connection of a page the service answered.
    pub fn new(products: Vec<model::Product>, next_cursor: Option<String>) -> Self {
        Self {
            edges: products
                .into_iter()
                .map(|p| ProductEdge {
                    cursor: crate::service::catalog::product_cursor(&p.id),
                    node: p.into(),
                })
                .collect(),
            page_info: PageInfo {
                has_next_page: next_cursor.is_some(),
                end_cursor: next_cursor,
            },
        }
    }
}

/// A cart.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopCart")]
pub struct Cart {
    /// Id.
    pub id: ID,
    /// An anonymous cart's secret, shown only when it is created: send it
    /// as `cartToken` (or the `X-Cart-Token` header).
    pub token: Option<String>,
    /// The signed-in owner, if any.
    pub user_id: Option<ID>,
    /// Every price of the cart is in this currency.
    pub currency: String,
    /// `open`, `checked_out` or `merged`.
    pub status: String,
    /// Its lines.
    pub items: Vec<CartItem>,
    /// Sum of the lines.
    pub subtotal: ShopMoney,
}

impl From<model::Cart> for Cart {
    fn from(c: model::Cart) -> Self {
        Self {
            id: ID(c.id.to_string()),
            token: c.token,
            user_id: c.user_id.map(|u| ID(u.to_string())),
            currency: c.currency.as_str().to_owned(),
            status: c.status,
            items: c
                .items
                .into_iter()
                .map(|i| CartItem {
                    sku: i.sku,
                    product_slug: i.product_slug,
                    name: i.name,
                    options: Json(i.options),
                    quantity: i.quantity,
                    unit_price: i.unit_price.into(),
                    line_total: i.line_total.into(),
                })
                .collect(),
            subtotal: c.subtotal.into(),
        }
    }
}

/// A line of a cart, priced now.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopCartItem")]
pub struct CartItem {
    /// The variant.
    pub sku: String,
    /// Its product's slug.
    pub product_slug: String,
    /// Its product's name.
    pub name: String,
    /// The variant's options.
    pub options: Json<serde_json::Value>,
    /// How many.
    pub quantity: i64,
    /// Price of one.
    pub unit_price: ShopMoney,
    /// `unitPrice × quantity`.
    pub line_total: ShopMoney,
}

/// Where an order ships.
#[derive(Debug, Clone, SimpleObject, InputObject)]
#[graphql(name = "ShopAddress", input_name = "ShopAddressInput")]
pub struct Address {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// More.
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166 alpha-2 (`DE`); decides the tax rate.
    pub country: String,
}

impl From<model::Address> for Address {
    fn from(a: model::Address) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

impl From<Address> for model::Address {
    fn from(a: Address) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// An order.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopOrder")]
pub struct Order {
    /// Id.
    pub id: ID,
    /// Gapless, from 1.
    pub number: i64,
    /// Where it is in its life (see `docs/concepts.md`).
    pub status: String,
    /// Sum of the lines.
    pub subtotal: ShopMoney,
    /// Taken off by the discount code.
    pub discount: ShopMoney,
    /// Shipping.
    pub shipping: ShopMoney,
    /// Tax on the discounted subtotal plus shipping.
    pub tax: ShopMoney,
    /// What is charged.
    pub total: ShopMoney,
    /// Refunded so far.
    pub refunded: ShopMoney,
    /// Where the receipts go.
    pub email: String,
    /// Where it ships.
    pub shipping_address: Address,
    /// The buyer, if signed in.
    pub user_id: Option<ID>,
    /// Its lines, with the prices paid.
    pub lines: Vec<OrderLine>,
    /// The payment.
    pub payment: Payment,
    /// Every transition, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Placed at.
    pub created_at: DateTime,
}

impl From<model::Order> for Order {
    fn from(o: model::Order) -> Self {
        Self {
            id: ID(o.id.to_string()),
            number: o.number,
            status: o.status,
            subtotal: o.subtotal.into(),
            discount: o.discount.into(),
            shipping: o.shipping.into(),
            tax: o.tax.into(),
            total: o.total.into(),
            refunded: o.refunded.into(),
            email: o.email,
            shipping_address: o.shipping_address.into(),
            user_id: o.user_id.map(|u| ID(u.to_string())),
            lines: o
                .lines
                .into_iter()
                .map(|l| OrderLine {
                    sku: l.sku,
                    name: l.name,
                    options: Json(l.options),
                    quantity: l.quantity,
                    unit_price: l.unit_price.into(),
                    line_total: l.line_total.into(),
                })
                .collect(),
            payment: Payment {
                provider: o.payment.provider.as_str().to_owned(),
                provider_id: o.payment.provider_id,
                client_secret: o.payment.client_secret,
                approve_url: o.payment.approve_url,
            },
            history: o
                .history
                .into_iter()
                .map(|h| HistoryEntry {
                    from: h.from,
                    to: h.to,
                    at: h.at.into(),
                    by: h.by,
                    reason: h.reason,
                })
                .collect(),
            created_at: o.created_at.into(),
        }
    }
}

/// A line of an order: the price when it was placed.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopOrderLine")]
pub struct OrderLine {
    /// The variant.
    pub sku: String,
    /// The product's name then.
    pub name: String,
    /// The variant's options then.
    pub options: Json<serde_json::Value>,
    /// How many.
    pub quantity: i64,
    /// Price of one.
    pub unit_price: ShopMoney,
    /// `unitPrice × quantity`.
    pub line_total: ShopMoney,
}

/// An order's payment at its provider.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopPayment")]
pub struct Payment {
    /// `stripe` or `paypal`.
    pub provider: String,
    /// The provider's id (PaymentIntent, PayPal order).
    pub provider_id: Option<String>,
    /// Stripe: for Stripe.js, only in the checkout's answer.
    pub client_secret: Option<String>,
    /// PayPal: where the buyer approves, only in the checkout's answer.
    pub approve_url: Option<String>,
}

/// One transition of an order.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopHistoryEntry")]
pub struct HistoryEntry {
    /// The status before (none for the order's creation).
    pub from: Option<String>,
    /// The status after.
    pub to: String,
    /// When.
    pub at: DateTime,
    /// Who: a user id, `system` or `provider:<name>`.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// A discount code.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopDiscount")]
pub struct Discount {
    /// Id.
    pub id: ID,
    /// The code, in capitals (matched in any case).
    pub code: String,
    /// `percentage` or `fixed`.
    pub kind: String,
    /// Whole percent (1–100), or minor units of `currency`.
    pub value: i64,
    /// The currency of carts it applies to.
    pub currency: String,
    /// Smallest subtotal it applies to, in minor units.
    pub min_order: i64,
    /// Uses in all, if limited.
    pub usage_limit: Option<i64>,
    /// Uses per customer (by e-mail), if limited.
    pub per_customer_limit: Option<i64>,
    /// Uses so far.
    pub used: i64,
    /// Valid from.
    pub starts_at: Option<DateTime>,
    /// Valid until.
    pub ends_at: Option<DateTime>,
}

impl From<model::Discount> for Discount {
    fn from(d: model::Discount) -> Self {
        Self {
            id: ID(d.id.to_string()),
            code: d.code,
            kind: d.kind,
            value: d.value,
            currency: d.currency.as_str().to_owned(),
            min_order: d.min_order,
            usage_limit: d.usage_limit,
            per_customer_limit: d.per_customer_limit,
            used: d.used,
            starts_at: d.starts_at.map(Into::into),
            ends_at: d.ends_at.map(Into::into),
        }
    }
}

/// A new variant.
#[derive(Debug, InputObject)]
#[graphql(name = "ShopNewVariantInput")]
pub struct NewVariantInput {
    /// Unique across the shop: letters, digits, `-`, `_`, `.`, 1 to 64.
    pub sku: String,
    /// Option values (`{"size": "M"}`): strings only.
    pub options: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    /// One price per currency, each at least 0.
    pub prices: Vec<MoneyInput>,
    /// Units on hand.
    pub stock: i64,
    /// Grams (weight-based shipping).
    #[graphql(default)]
    pub weight_grams: i64,
}

/// A new product.
#[derive(Debug, InputObject)]
#[graphql(name = "ShopNewProductInput")]
pub struct NewProductInput {
    /// Lower-case letters, digits and dashes, 1 to 100 characters.
    pub slug: String,
    /// 1 to 200 characters.
    pub name: String,
    /// Markdown.
    #[graphql(default)]
    pub description: String,
    /// Image URLs (http or https).
    #[graphql(default)]
    pub images: Vec<String>,
    /// Visible to buyers.
    #[graphql(default = true)]
    pub published: bool,
    /// At least one.
    pub variants: Vec<NewVariantInput>,
}

/// A new discount code.
#[derive(Debug, InputObject)]
#[graphql(name = "ShopNewDiscountInput")]
pub struct NewDiscountInput {
    /// 3 to 40 letters, digits, `-` or `_`; matched in any case.
    pub code: String,
    /// `percentage` or `fixed`.
    pub kind: String,
    /// Whole percent (1–100), or minor units (fixed).
    pub value: i64,
    /// Carts it applies to (default `shop.default_currency`).
    pub currency: Option<String>,
    /// Smallest subtotal, in minor units.
    #[graphql(default)]
    pub min_order: i64,
    /// Uses in all (none: unlimited).
    pub usage_limit: Option<i64>,
    /// Uses per customer e-mail (none: unlimited).
    pub per_customer_limit: Option<i64>,
    /// Valid from (none: now).
    pub starts_at: Option<DateTime>,
    /// Valid until (none: forever).
    pub ends_at: Option<DateTime>,
}

/// What to check out.
#[derive(Debug, InputObject)]
#[graphql(name = "ShopCheckoutInput")]
pub struct CheckoutInput {
    /// Where receipts go.
    pub email: String,
    /// Where it ships (its country decides the tax).
    pub shipping_address: Address,
    /// `stripe` or `paypal` (one that is configured).
    pub provider: String,
    /// A discount code.
    pub discount_code: Option<String>,
}

/// A change to a variant; absent fields stay.
#[derive(Debug, InputObject)]
#[graphql(name = "ShopVariantChangeInput")]
pub struct VariantChangeInput {
    /// Prices to set (other currencies stay).
    pub prices: Option<Vec<MoneyInput>>,
    /// The units on hand, counted.
    pub stock: Option<i64>,
}

/// A merchant's webhook endpoint.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopWebhookEndpoint")]
pub struct WebhookEndpoint {
    /// Id.
    pub id: ID,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event kinds it receives.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: DateTime,
    /// The signing secret, `whsec_…`: shown only when it is created.
    pub secret: Option<String>,
}

impl From<crate::merchant_webhooks::CreatedEndpoint> for WebhookEndpoint {
    fn from(c: crate::merchant_webhooks::CreatedEndpoint) -> Self {
        Self {
            id: ID(c.endpoint.id.to_string()),
            url: c.endpoint.url,
            events: c.endpoint.events,
            enabled: c.endpoint.enabled,
            created_at: c.endpoint.created_at.into(),
            secret: Some(c.secret),
        }
    }
}

/// An event's delivery to one endpoint, with its attempts.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopWebhookDelivery")]
pub struct Delivery {
    /// Id.
    pub id: ID,
    /// The endpoint.
    pub endpoint_id: ID,
    /// The event's id (the body's `id`).
    pub event_id: ID,
    /// The event's kind (the body's `type`).
    pub event_type: String,
    /// `pending`, `retrying`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made in all.
    pub attempt_count: i32,
    /// When the event was fanned out to the endpoint.
    pub created_at: DateTime,
    /// Every attempt, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ShopWebhookDeliveryAttempt")]
pub struct DeliveryAttempt {
    /// 1, 2, 3…
    pub attempt: i32,
    /// When it started.
    pub started_at: DateTime,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The receiver's status code, when it answered.
    pub response_status: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether it succeeded (a 2xx answer).
    pub succeeded: bool,
}

impl From<crate::merchant_webhooks::Delivery> for Delivery {
    fn from(d: crate::merchant_webhooks::Delivery) -> Self {
        Self {
            id: ID(d.id.to_string()),
            endpoint_id: ID(d.endpoint_id.to_string()),
            event_id: ID(d.event_id.to_string()),
            event_type: d.event_type,
            status: d.status.as_str().to_owned(),
            attempt_count: d.attempt_count,
            created_at: d.created_at.into(),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| DeliveryAttempt {
                    attempt: a.attempt,
                    started_at: a.started_at.into(),
                    duration_ms: a.duration_ms,
                    response_status: a.response_status,
                    error: a.error,
                    succeeded: a.succeeded,
                })
                .collect(),
        }
    }
}
