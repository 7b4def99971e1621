//! Reading orders, the admins' transitions (fulfil, ship, deliver,
//! cancel) and refunds.

use basalt_platform::error::Failure;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Caller, Shop, conflict, events, invalid, mail, not_found, payment_failure, state};
use crate::model::{Address, HistoryEntry, Order, OrderLine, Payment};
use crate::money::{Currency, Money};
use crate::payments::{PaymentError, PaymentState, ProviderName};
use crate::store::orders::OrderRow;
use crate::store::{discounts, inventory, orders as store};

/// An admin's refund.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// Minor units of the order's currency, at most what is left to refund.
    pub amount: i64,
    /// Why (kept in the order's history).
    #[serde(default)]
    pub reason: Option<String>,
}

/// An admin's reason for a transition.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (kept in the order's history).
    pub reason: Option<String>,
}

pub(crate) fn provider_of(row: &OrderRow) -> Result<ProviderName, Failure> {
    match row.provider.as_str() {
        "stripe" => Ok(ProviderName::Stripe),
        "paypal" => Ok(ProviderName::Paypal),
        other => Err(Failure::internal(anyhow::anyhow!(
            "unknown provider {other}"
        ))),
    }
}

impl Shop {
    /// The order `id`, if the caller may see it: an admin, its signed-in
    /// buyer, or whoever holds the anonymous cart's token it came from.
    pub async fn order(&self, caller: &Caller, id: Uuid) -> Result<Order, Failure> {
        let row = self.order_row(caller, id).await?;
        self.render_order(row).await
    }

    /// The signed-in caller's orders, newest first.
    pub async fn my_orders(&self, user: Uuid) -> Result<Vec<Order>, Failure> {
        let rows = store::of_user(&self.db, user, 100).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.render_order(row).await?);
        }
        Ok(out)
    }

    pub(crate) async fn order_row(&self, caller: &Caller, id: Uuid) -> Result<OrderRow, Failure> {
        let row = store::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found("order"))?;
        if caller.admin || (row.user_id.is_some() && row.user_id == caller.user_id) {
            return Ok(row);
        }
        if row.user_id.is_none() && self.cart_row(caller, row.cart_id).await.is_ok() {
            return Ok(row);
        }
        Err(not_found("order"))
    }

    /// An admin moves a paid order along: `fulfilled`, `shipped` or
    /// `delivered`; or cancels an unpaid one. Illegal moves are a 409.
    pub async fn admin_transition(
        &self,
        admin: Uuid,
        id: Uuid,
        to: &'static str,
        reason: Option<String>,
    ) -> Result<Order, Failure> {
        let row = store::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found("order"))?;
        if !state::allowed(&row.status, to) {
            return Err(conflict(format!(
                "an order cannot go from {} to {to}",
                row.status
            )));
        }
        let by = admin.to_string();
        let reason = reason.unwrap_or_else(|| format!("marked {to} by an admin"));
        if to == state::CANCELLED {
            self.cancel_unpaid(&row, &by, &reason).await?;
        } else {
            self.transition(&row, &row.status, to, &by, &reason).await?;
        }
        self.render_order(self.reload(id).await?).await
    }

    /// Applies `from → to` if the order is still `from`, with its history,
    /// event and mail, in one transaction; a 409 if it changed meanwhile.
    pub(crate) async fn transition(
        &self,
        row: &OrderRow,
        from: &str,
        to: &str,
        by: &str,
        reason: &str,
    ) -> Result<(), Failure> {
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        if !store::transition(&mut tx, row.id, from, to, now).await? {
            return Err(conflict("the order changed meanwhile; reload it"));
        }
        store::record_history(&mut tx, row.id, Some(from), to, by, reason, now).await?;
        events::record(&mut tx, events::kind_for(to), row, to, row.refunded).await?;
        if to == state::SHIPPED {
            mail::queue(&self.jobs, &mut tx, row.id, to).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cancels an unpaid order: its payment at the provider first (if that
    /// is refused because the payment went through meanwhile, the order is
    /// completed as paid instead), then, in one transaction guarded by
    /// `pending_payment → cancelled`, its stock and discount use go back.
    /// Returns whether this call cancelled it.
    pub(crate) async fn cancel_unpaid(
        &self,
        row: &OrderRow,
        by: &str,
        reason: &str,
    ) -> Result<bool, Failure> {
        let provider = self
            .payments
            .get(provider_of(row)?)
            .map_err(payment_failure)?;
        if let Some(provider_id) = row.provider_id.as_deref() {
            match provider.cancel(provider_id).await {
                Ok(()) => {}
                Err(PaymentError::Refused(why)) => {
                    let key = format!("confirm-{}", row.id);
                    if let Ok(PaymentState::Succeeded { amount }) =
                        provider.confirm(provider_id, &key).await
                    {
                        self.payment_succeeded(provider.name(), provider_id, amount)
                            .await?;
                        return Err(conflict("the order was paid meanwhile"));
                    }
                    tracing::info!(order = %row.id, %why, "provider refused to cancel; cancelling the order anyway");
                }
                Err(other) => return Err(payment_failure(other)),
            }
        }
        let now = Utc::now();
        let mut tx = self.db.begin().await?;
        if !store::transition(
            &mut tx,
            row.id,
            state::PENDING_PAYMENT,
            state::CANCELLED,
            now,
        )
        .await?
        {
            return Ok(false);
        }
        for reservation in inventory::clear(&mut tx, row.id).await? {
            inventory::give_back(&mut tx, &reservation.sku, reservation.quantity).await?;
        }
        discounts::release(&mut tx, row.id).await?;
        store::record_history(
            &mut tx,
            row.id,
            Some(state::PENDING_PAYMENT),
            state::CANCELLED,
            by,
            reason,
            now,
        )
        .await?;
        events::record(&mut tx, events::ORDER_CANCELLED, row, state::CANCELLED, 0).await?;
        mail::queue(&self.jobs, &mut tx, row.id, state::CANCELLED).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Refunds part or all of a paid order through its provider. The
    /// amount is claimed first with a conditional increment (two refunds at
    /// once cannot exceed the total), given back if the provider refuses.
    pub async fn refund(&self, admin: Uuid, id: Uuid, refund: NewRefund) -> Result<Order, Failure> {
        if refund.amount <= 0 {
            return Err(invalid("amount", "must be more than 0"));
        }
        let row = store::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found("order"))?;
        let provider = self
            .payments
            .get(provider_of(&row)?)
            .map_err(payment_failure)?;
        let provider_id = row
            .provider_id
            .clone()
            .ok_or_else(|| conflict("the order has no payment"))?;
        let currency =
            Currency::parse(&row.currency).map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        let mut tx = self.db.begin().await?;
        if !store::claim_refund(&mut tx, id, refund.amount).await? {
            return Err(conflict(format!(
                "a {} order with {} left to refund cannot be refunded {}",
                row.status,
                Money::new(row.total - row.refunded, currency),
                Money::new(refund.amount, currency)
            )));
        }
        tx.commit().await?;
        let refund_id = Uuid::now_v7();
        let key = format!("refund-{refund_id}");
        let made = provider
            .refund(&provider_id, Money::new(refund.amount, currency), &key)
            .await;
        let provider_refund_id = match made {
            Ok(id) => id,
            Err(error) => {
                store::unclaim_refund(&self.db, id, refund.amount).await?;
                return Err(payment_failure(error));
            }
        };
        let now = Utc::now();
        let by = admin.to_string();
        let reason = refund
            .reason
            .unwrap_or_else(|| format!("refunded {}", Money::new(refund.amount, currency)));
        let mut tx = self.db.begin().await?;
        store::insert_refund(
            &mut tx,
            refund_id,
            id,
            refund.amount,
            &provider_refund_id,
            &by,
            now,
        )
        .await?;
        // The status follows the amount refunded, whatever it was before.
        let current = store::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found("order"))?;
        let to = if current.refunded >= current.total {
            state::REFUNDED
        } else {
            state::PARTIALLY_REFUNDED
        };
        if store::transition(&mut tx, id, &current.status, to, now).await? {
            store::record_history(&mut tx, id, Some(&current.status), to, &by, &reason, now)
                .await?;
            events::record(
                &mut tx,
                events::ORDER_REFUNDED,
                &current,
                to,
                current.refunded,
            )
            .await?;
        }
        tx.commit().await?;
        self.render_order(self.reload(id).await?).await
    }

    pub(crate) async fn reload(&self, id: Uuid) -> Result<OrderRow, Failure> {
        store::get(&self.db, id)
            .await?
            .ok_or_else(|| not_found("order"))
    }

    /// An order with its lines and history.
    pub(crate) async fn render_order(&self, row: OrderRow) -> Result<Order, Failure> {
        let currency =
            Currency::parse(&row.currency).map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        let money = |amount| Money::new(amount, currency);
        let lines = store::lines(&self.db, row.id).await?;
        let history = store::history(&self.db, row.id).await?;
        Ok(Order {
            id: row.id,
            number: row.number,
            status: row.status.clone(),
            subtotal: money(row.subtotal),
            discount: money(row.discount),
            shipping: money(row.shipping),
            tax: money(row.tax),
            total: money(row.total),
            refunded: money(row.refunded),
            email: row.email.clone(),
            shipping_address: serde_json::from_str::<Address>(&row.shipping_address)
                .map_err(|e| Failure::internal(anyhow::anyhow!(e)))?,
            user_id: row.user_id,
            lines: lines
                .into_iter()
                .map(|l| OrderLine {
                    sku: l.sku,
                    name: l.product_name,
                    options: serde_json::from_str(&l.options).unwrap_or_default(),
                    quantity: l.quantity,
                    unit_price: money(l.unit_amount),
                    line_total: money(l.line_amount),
                })
                .collect(),
            payment: Payment {
                provider: provider_of(&row)?,
                provider_id: row.provider_id.clone(),
                client_secret: None,
                approve_url: None,
            },
            history: history
                .into_iter()
                .map(|h| HistoryEntry {
                    from: h.from_status,
                    to: h.to_status,
                    at: h.at,
                    by: h.by_whom,
                    reason: h.reason,
                })
                .collect(),
            created_at: row.created_at,
        })
    }
}
