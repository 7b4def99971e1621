//! What the shop's API shows: products, carts, orders and discounts, in
//! snake_case JSON, money always as [`Money`] (integer minor units).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Money;
use crate::payments::ProviderName;

/// A product with its variants.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    /// Id.
    pub id: Uuid,
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
    pub created_at: DateTime<Utc>,
}

/// One buyable variant of a product.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Variant {
    /// Stock-keeping unit, unique across the shop.
    pub sku: String,
    /// Option values (`{"size": "M"}`).
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Weight in grams (weight-based shipping).
    pub weight_grams: i64,
    /// Units available (not reserved by a checkout).
    pub stock: i64,
    /// One price per currency.
    pub prices: Vec<Money>,
}

/// `{"product": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductBody {
    /// The product.
    pub product: Product,
}

/// A page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductsBody {
    /// The page, newest first.
    pub products: Vec<Product>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// `{"variant": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantBody {
    /// The variant.
    pub variant: Variant,
}

/// A cart.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cart {
    /// Id.
    pub id: Uuid,
    /// An anonymous cart's secret, shown only when it is created: send it
    /// as `X-Cart-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The signed-in owner, if any.
    pub user_id: Option<Uuid>,
    /// Every price of the cart is in this currency.
    #[schema(value_type = String, example = "EUR")]
    pub currency: crate::money::Currency,
    /// `open`, `checked_out` or `merged`.
    pub status: String,
    /// Its lines.
    pub items: Vec<CartItem>,
    /// Sum of the lines.
    pub subtotal: Money,
}

/// A line of a cart, priced now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartItem {
    /// The variant.
    pub sku: String,
    /// Its product's slug.
    pub product_slug: String,
    /// Its product's name.
    pub name: String,
    /// The variant's options.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// How many.
    pub quantity: i64,
    /// Price of one.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// `{"cart": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartBody {
    /// The cart.
    pub cart: Cart,
}

/// Where an order ships.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// More.
    #[serde(default)]
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166 alpha-2 (`DE`); decides the tax rate.
    pub country: String,
}

/// An order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    /// Id.
    pub id: Uuid,
    /// Gapless, from 1.
    pub number: i64,
    /// Where it is in its life (see `docs/concepts.md`).
    pub status: String,
    /// Sum of the lines.
    pub subtotal: Money,
    /// Taken off by the discount code.
    pub discount: Money,
    /// Shipping.
    pub shipping: Money,
    /// Tax on the discounted subtotal plus shipping.
    pub tax: Money,
    /// What is charged.
    pub total: Money,
    /// Refunded so far.
    pub refunded: Money,
    /// Where the receipts go.
    pub email: String,
    /// Where it ships.
    pub shipping_address: Address,
    /// The buyer, if signed in.
    pub user_id: Option<Uuid>,
    /// Its lines, with the prices paid.
    pub lines: Vec<OrderLine>,
    /// The payment.
    pub payment: Payment,
    /// Every transition, oldest first.
    pub history: Vec<HistoryEntry>,
    /// Placed at.
    pub created_at: DateTime<Utc>,
}

/// A line of an order: a snapshot of the price when it was placed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLine {
    /// The variant.
    pub sku: String,
    /// The product's name then.
    pub name: String,
    /// The variant's options then.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// How many.
    pub quantity: i64,
    /// Price of one.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

/// An order's payment at its provider.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    /// `stripe` or `paypal`.
    pub provider: ProviderName,
    /// The provider's id (PaymentIntent, PayPal order).
    pub provider_id: Option<String>,
    /// Stripe: for Stripe.js, only in the checkout's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// PayPal: where the buyer approves, only in the checkout's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
}

/// One transition of an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// The status before (none for the order's creation).
    pub from: Option<String>,
    /// The status after.
    pub to: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: a user id, `system` or `provider:<name>`.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// `{"order": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    /// The order.
    pub order: Order,
}

/// `{"orders": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersBody {
    /// Newest first.
    pub orders: Vec<Order>,
}

/// A discount code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Discount {
    /// Id.
    pub id: Uuid,
    /// The code, in capitals (matched in any case).
    pub code: String,
    /// `percentage` or `fixed`.
    pub kind: String,
    /// Whole percent (1–100), or minor units of `currency`.
    pub value: i64,
    /// The currency of carts it applies to (and of `value` and `min_order`).
    #[schema(value_type = String, example = "EUR")]
    pub currency: crate::money::Currency,
    /// Smallest subtotal it applies to, in minor units.
    pub min_order: i64,
    /// Uses in all, if limited.
    pub usage_limit: Option<i64>,
    /// Uses per customer (by e-mail), if limited.
    pub per_customer_limit: Option<i64>,
    /// Uses so far (orders not cancelled).
    pub used: i64,
    /// Valid from.
    pub starts_at: Option<DateTime<Utc>>,
    /// Valid until.
    pub ends_at: Option<DateTime<Utc>>,
}

/// `{"discount": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscountBody {
    /// The discount.
    pub discount: Discount,
}
