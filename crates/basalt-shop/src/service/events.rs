//! The order events, recorded in the platform's outbox inside the
//! transaction that makes the change: published if, and only if, it
//! commits. Other modules (merchant webhooks) subscribe to these kinds.

use basalt_platform::db::Tx;
use basalt_platform::events::{self, Event};
use serde::Serialize;
use uuid::Uuid;

use crate::money::{Currency, Money};
use crate::store::orders::OrderRow;

/// An order was placed (stock reserved, awaiting payment).
pub const ORDER_CREATED: &str = "shop.order.created";
/// An order was paid.
pub const ORDER_PAID: &str = "shop.order.paid";
/// An order was packed.
pub const ORDER_FULFILLED: &str = "shop.order.fulfilled";
/// An order was shipped.
pub const ORDER_SHIPPED: &str = "shop.order.shipped";
/// An order was delivered.
pub const ORDER_DELIVERED: &str = "shop.order.delivered";
/// An order was cancelled (by an admin, or its reservation expired).
pub const ORDER_CANCELLED: &str = "shop.order.cancelled";
/// Part or all of an order was refunded.
pub const ORDER_REFUNDED: &str = "shop.order.refunded";

/// Every order event kind.
pub const ORDER_EVENTS: [&str; 7] = [
    ORDER_CREATED,
    ORDER_PAID,
    ORDER_FULFILLED,
    ORDER_SHIPPED,
    ORDER_DELIVERED,
    ORDER_CANCELLED,
    ORDER_REFUNDED,
];

/// An order event's payload.
#[derive(Debug, Clone, Serialize)]
pub struct OrderEvent {
    /// The order.
    pub order_id: Uuid,
    /// Its number.
    pub number: i64,
    /// Its status after the change.
    pub status: String,
    /// Its total.
    pub total: Option<Money>,
    /// Refunded so far.
    pub refunded: Option<Money>,
    /// The buyer, if signed in.
    pub user_id: Option<Uuid>,
}

/// The event kind of a transition to `status`.
pub fn kind_for(status: &str) -> &'static str {
    match status {
        super::state::PAID => ORDER_PAID,
        super::state::FULFILLED => ORDER_FULFILLED,
        super::state::SHIPPED => ORDER_SHIPPED,
        super::state::DELIVERED => ORDER_DELIVERED,
        super::state::CANCELLED => ORDER_CANCELLED,
        super::state::REFUNDED | super::state::PARTIALLY_REFUNDED => ORDER_REFUNDED,
        _ => ORDER_CREATED,
    }
}

/// Records `kind` about `order`, now at `status`, in `tx`.
pub async fn record(
    tx: &mut Tx,
    kind: &str,
    order: &OrderRow,
    status: &str,
    refunded: i64,
) -> Result<(), sqlx::Error> {
    let currency = Currency::parse(&order.currency).ok();
    let payload = OrderEvent {
        order_id: order.id,
        number: order.number,
        status: status.to_owned(),
        total: currency.map(|c| Money::new(order.total, c)),
        refunded: currency.map(|c| Money::new(refunded, c)),
        user_id: order.user_id,
    };
    events::record_in(tx, &Event::new(kind, &payload)).await
}
