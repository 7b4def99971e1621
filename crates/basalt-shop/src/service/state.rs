//! The order state machine.
//!
//! ```text
//! pending_payment ──paid──▶ paid ──▶ fulfilled ──▶ shipped ──▶ delivered
//!        │                   │           │            │           │
//!        ▼                   └───────────┴─────┬──────┴───────────┘
//!    cancelled                                 ▼
//!                           partially_refunded ──▶ refunded
//! ```
//!
//! Only an unpaid order can be cancelled (its stock goes back, its payment
//! is cancelled at the provider); a paid one is refunded instead. A partly
//! refunded order can still be refunded further, and nothing else. Every
//! transition is one conditional `UPDATE … WHERE status = <from>`, so two
//! at once cannot both apply, and is recorded in the order's history.

/// Every status, in life order.
pub const STATUSES: [&str; 8] = [
    PENDING_PAYMENT,
    PAID,
    FULFILLED,
    SHIPPED,
    DELIVERED,
    CANCELLED,
    PARTIALLY_REFUNDED,
    REFUNDED,
];

/// Placed, stock reserved, awaiting payment.
pub const PENDING_PAYMENT: &str = "pending_payment";
/// Paid.
pub const PAID: &str = "paid";
/// Packed.
pub const FULFILLED: &str = "fulfilled";
/// Handed to the carrier.
pub const SHIPPED: &str = "shipped";
/// Arrived.
pub const DELIVERED: &str = "delivered";
/// Cancelled before payment.
pub const CANCELLED: &str = "cancelled";
/// Part of the total refunded.
pub const PARTIALLY_REFUNDED: &str = "partially_refunded";
/// All of the total refunded.
pub const REFUNDED: &str = "refunded";

/// Whether an order may go from `from` to `to`.
pub fn allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        (PENDING_PAYMENT, PAID | CANCELLED)
            | (PAID, FULFILLED)
            | (FULFILLED, SHIPPED)
            | (SHIPPED, DELIVERED)
            | (
                PAID | FULFILLED | SHIPPED | DELIVERED | PARTIALLY_REFUNDED,
                PARTIALLY_REFUNDED | REFUNDED
            )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_allowed_and_nothing_skips_or_goes_back() {
        for pair in [PENDING_PAYMENT, PAID, FULFILLED, SHIPPED, DELIVERED].windows(2) {
            assert!(allowed(pair[0], pair[1]), "{pair:?}");
            assert!(!allowed(pair[1], pair[0]), "{pair:?}");
        }
        assert!(!allowed(PENDING_PAYMENT, SHIPPED));
        assert!(!allowed(PAID, CANCELLED));
        assert!(!allowed(PENDING_PAYMENT, REFUNDED));
        for to in STATUSES {
            assert!(!allowed(CANCELLED, to), "{to}");
            assert!(!allowed(REFUNDED, to), "{to}");
        }
        assert!(allowed(PARTIALLY_REFUNDED, REFUNDED));
        assert!(!allowed(PARTIALLY_REFUNDED, SHIPPED));
    }
}
