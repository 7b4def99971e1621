//! Completing a payment: [`Shop::payment_succeeded`] is the one path by
//! which an order becomes paid, called by the client's confirmation (after
//! asking the provider) and by the providers' verified webhooks. It is
//! idempotent and races safely: the order moves with
//! `UPDATE … WHERE id = $1 AND status = 'pending_payment'`, so whichever
//! arrives first marks it paid and the other finds it paid already.

use basalt_platform::error::Failure;
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::orders::provider_of;
use super::{Caller, Shop, conflict, events, invalid, mail, not_found, payment_failure, state};
use crate::model::Order;
use crate::money::{Currency, Money};
use crate::payments::{PaymentState, ProviderName};
use crate::store::orders::OrderRow;
use crate::store::{inventory, orders as store};

/// The client's word that the provider's own client completed the payment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// The payment's provider id, as in the checkout's answer.
    pub provider_id: String,
}

impl Shop {
    /// The buyer's client says the payment succeeded: Basalt asks the
    /// provider ([`crate::payments::PaymentProvider::confirm`]) and only
    /// then completes the order.
    pub async fn confirm(
        &self,
        caller: &Caller,
        id: Uuid,
        confirmation: Confirmation,
    ) -> Result<Order, Failure> {
        let row = self.order_row(caller, id).await?;
        if row.provider_id.as_deref() != Some(confirmation.provider_id.as_str()) {
            return Err(invalid("provider_id", "is not this order's payment"));
        }
        let provider = self
            .payments
            .get(provider_of(&row)?)
            .map_err(payment_failure)?;
        let key = format!("confirm-{id}");
        match provider
            .confirm(&confirmation.provider_id, &key)
            .await
            .map_err(payment_failure)?
        {
            PaymentState::Succeeded { amount } => {
                self.payment_succeeded(provider.name(), &confirmation.provider_id, amount)
                    .await
            }
            PaymentState::Pending => Err(conflict("the payment has not succeeded yet")),
            PaymentState::Failed => Err(conflict("the payment failed")),
        }
    }

    /// The provider says `amount` was captured for `provider_id`: marks the
    /// order paid (once, whoever calls first), its reservation becomes a
    /// sale, and the paid event and mail are queued, in one transaction.
    /// A captured amount other than the order's total is refused (and
    /// logged) rather than marked paid.
    pub async fn payment_succeeded(
        &self,
        provider: ProviderName,
        provider_id: &str,
        amount: Money,
    ) -> Result<Order, Failure> {
        let row = store::by_payment(&self.db, provider.as_str(), provider_id)
            .await?
            .ok_or_else(|| not_found("order"))?;
        let currency =
            Currency::parse(&row.currency).map_err(|e| Failure::internal(anyhow::anyhow!(e)))?;
        let total = Money::new(row.total, currency);
        if amount != total {
            tracing::error!(order = %row.id, %amount, %total, "captured amount differs from the order's total");
            return Err(conflict(format!(
                "the payment of {amount} does not match the total {total}"
            )));
        }
        let now = Utc::now();
        let by = format!("provider:{}", provider.as_str());
        let mut tx = self.db.begin().await?;
        if store::transition(&mut tx, row.id, state::PENDING_PAYMENT, state::PAID, now).await? {
            inventory::clear(&mut tx, row.id).await?;
            store::record_history(
                &mut tx,
                row.id,
                Some(state::PENDING_PAYMENT),
                state::PAID,
                &by,
                "payment succeeded",
                now,
            )
            .await?;
            events::record(&mut tx, events::ORDER_PAID, &row, state::PAID, 0).await?;
            mail::queue(&self.jobs, &mut tx, row.id, state::PAID).await?;
            tx.commit().await?;
        } else {
            drop(tx);
            let now_row = self.reload(row.id).await?;
            if now_row.status == state::CANCELLED {
                return Err(self
                    .refund_late_payment(&now_row, provider, provider_id, amount)
                    .await);
            }
        }
        self.render_order(self.reload(row.id).await?).await
    }

    /// A payment that succeeded for an order already cancelled (its stock
    /// is back on sale): the money goes back at once, in full, with a key
    /// of its own so a second report refunds nothing more.
    async fn refund_late_payment(
        &self,
        row: &OrderRow,
        provider: ProviderName,
        provider_id: &str,
        amount: Money,
    ) -> Failure {
        let refunded = async {
            let adapter = self.payments.get(provider).map_err(payment_failure)?;
            let key = format!("late-payment-{}", row.id);
            let refund_id = adapter
                .refund(provider_id, amount, &key)
                .await
                .map_err(payment_failure)?;
            if store::has_refund(&self.db, row.id).await? {
                // Reported again: the provider's key made it the same refund.
                return Ok(());
            }
            let now = Utc::now();
            let mut tx = self.db.begin().await?;
            let reason =
                format!("a payment of {amount} arrived after cancellation and was refunded");
            store::insert_refund(
                &mut tx,
                Uuid::now_v7(),
                row.id,
                amount.amount,
                &refund_id,
                "system",
                now,
            )
            .await?;
            store::record_history(
                &mut tx,
                row.id,
                Some(state::CANCELLED),
                state::CANCELLED,
                "system",
                &reason,
                now,
            )
            .await?;
            tx.commit().await?;
            Ok::<_, Failure>(())
        };
        match refunded.await {
            Ok(()) => {
                tracing::warn!(order = %row.id, %amount, "payment after cancellation refunded");
                conflict(
                    "the order was cancelled before the payment arrived; the payment was refunded",
                )
            }
            Err(failure) => {
                tracing::error!(order = %row.id, %amount, ?failure, "payment after cancellation NOT refunded: refund it by hand");
                failure
            }
        }
    }
}
