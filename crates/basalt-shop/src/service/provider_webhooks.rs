//! The payment providers' webhooks (`POST /api/shop/webhooks/{stripe,paypal}`):
//! verified by the provider's adapter, deduplicated on the provider's event
//! id (migration 5101), then handed to the order rules through one
//! dispatch, [`Shop::act_on_payment_event`], which completes orders only
//! through [`Shop::payment_succeeded`], the path the client's confirmation
//! takes too. Whichever of the two arrives first marks the order paid.
//!
//! What the provider is answered:
//! - 400 for a delivery that does not verify (signature, certificate,
//!   timestamp, body): never a 500;
//! - 200 for a verified event, handled or ignored, and for a duplicate;
//! - 503 when handling it failed for a reason that may pass (a provider or
//!   the database down): the event is forgotten again, so the provider's
//!   retry is handled as new.
//!
//! Event ids are kept [`EVENT_RETENTION_DAYS`] days, far past the
//! providers' retry windows (Stripe and PayPal retry for about three days),
//! then pruned by a daily recurring job ([`PRUNE_JOB`], once across the
//! cluster).

use std::sync::Arc;

use axum::http::HeaderMap;
use basalt_platform::error::{ErrorKind, Failure};
use basalt_platform::jobs::{JobError, JobQueue, ScheduleError};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Shop, not_found};
use crate::model::Order;
use crate::payments::{PaymentError, PaymentProvider, PaymentState, ProviderName, WebhookKind};
use crate::store::provider_events;

/// The job (and schedule) that prunes old event ids.
pub const PRUNE_JOB: &str = "shop.prune_provider_events";

/// How long an event id is remembered.
pub const EVENT_RETENTION_DAYS: i64 = 30;

/// When the prune runs: daily, at 03:17.
const PRUNE_SCHEDULE: &str = "17 3 * * *";

/// What Basalt answers a verified delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Always `true`: the event was verified and need not be sent again.
    pub received: bool,
    /// The event had been received before; this delivery was ignored.
    pub duplicate: bool,
}

fn type_name(kind: &WebhookKind) -> &str {
    match kind {
        WebhookKind::PaymentSucceeded { .. } => "payment_succeeded",
        WebhookKind::PaymentApproved { .. } => "payment_approved",
        WebhookKind::PaymentFailed { .. } => "payment_failed",
        WebhookKind::Other(name) => name,
    }
}

/// An order that cannot be completed (not this shop's payment, an amount
/// that does not match, a cancelled order: `payment_succeeded` logs why)
/// will not complete on a retry either: the delivery is done.
fn settled(provider: ProviderName, result: Result<Order, Failure>) -> Result<(), Failure> {
    match result {
        Ok(_) => Ok(()),
        Err(failure) if matches!(failure.kind, ErrorKind::NotFound | ErrorKind::Conflict) => {
            tracing::info!(
                provider = provider.as_str(),
                detail = failure.detail.as_deref().unwrap_or_default(),
                "provider event not applied to an order"
            );
            Ok(())
        }
        Err(failure) => Err(failure),
    }
}

impl Shop {
    /// Verifies, deduplicates and acts on one webhook delivery of
    /// `provider`: its headers and raw body, byte for byte.
    pub async fn provider_webhook(
        &self,
        provider: ProviderName,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookReceipt, Failure> {
        // A delivery without the provider's signature headers is malformed
        // whether or not the provider is configured here.
        let signed_by: &[&str] = match provider {
            ProviderName::Stripe => &["stripe-signature"],
            ProviderName::Paypal => &[
                "paypal-transmission-id",
                "paypal-transmission-time",
                "paypal-transmission-sig",
                "paypal-cert-url",
                "paypal-auth-algo",
            ],
        };
        if let Some(missing) = signed_by.iter().find(|h| !headers.contains_key(**h)) {
            return Err(Failure::bad_request(format!(
                "the {missing} header is missing"
            )));
        }
        let adapter = self
            .payments
            .get(provider)
            .map_err(|_| not_found(&format!("{} webhook endpoint", provider.as_str())))?;
        let event = adapter
            .verify_webhook(headers, body)
            .await
            .map_err(|error| match error {
                // A certificate that could not be fetched may be there on
                // the retry.
                PaymentError::Unavailable(_) => {
                    tracing::warn!(provider = provider.as_str(), %error, "webhook not verified yet");
                    Failure::unavailable("the payment provider")
                }
                other => {
                    tracing::warn!(provider = provider.as_str(), error = %other, "webhook refused");
                    Failure::bad_request(other.to_string())
                }
            })?;
        let fresh = provider_events::record(
            &self.db,
            provider.as_str(),
            &event.event_id,
            type_name(&event.kind),
            Utc::now(),
        )
        .await?;
        if !fresh {
            return Ok(WebhookReceipt {
                received: true,
                duplicate: true,
            });
        }
        if let Err(failure) = self
            .act_on_payment_event(provider, adapter.clone(), event.kind)
            .await
        {
            if let Err(e) =
                provider_events::forget(&self.db, provider.as_str(), &event.event_id).await
            {
                tracing::error!(error = %e, event = %event.event_id, "cannot forget a failed provider event");
            }
            return Err(failure);
        }
        Ok(WebhookReceipt {
            received: true,
            duplicate: false,
        })
    }

    /// The one dispatch from a verified provider event to the order rules.
    pub async fn act_on_payment_event(
        &self,
        provider: ProviderName,
        adapter: Arc<dyn PaymentProvider>,
        kind: WebhookKind,
    ) -> Result<(), Failure> {
        match kind {
            WebhookKind::PaymentSucceeded {
                provider_id,
                amount,
            } => settled(
                provider,
                self.payment_succeeded(provider, &provider_id, amount).await,
            ),
            WebhookKind::PaymentApproved { provider_id } => {
                let key = format!("capture-{provider_id}");
                match adapter.confirm(&provider_id, &key).await {
                    Ok(PaymentState::Succeeded { amount }) => settled(
                        provider,
                        self.payment_succeeded(provider, &provider_id, amount).await,
                    ),
                    Ok(_) => Ok(()),
                    Err(PaymentError::Unavailable(why)) => {
                        tracing::warn!(provider = provider.as_str(), %why, "capture after approval failed");
                        Err(Failure::unavailable("the payment provider"))
                    }
                    Err(error) => {
                        tracing::info!(provider = provider.as_str(), %error, "approved payment not captured");
                        Ok(())
                    }
                }
            }
            // The order stays pending: the buyer may pay another way, or
            // its reservation expires.
            WebhookKind::PaymentFailed { provider_id } => {
                tracing::info!(provider = provider.as_str(), %provider_id, "payment failed");
                Ok(())
            }
            WebhookKind::Other(name) => {
                tracing::debug!(provider = provider.as_str(), event = %name, "provider event ignored");
                Ok(())
            }
        }
    }
}

impl Shop {
    /// Forgets provider events older than [`EVENT_RETENTION_DAYS`]; how many.
    pub async fn prune_provider_events(&self) -> Result<u64, Failure> {
        let before = Utc::now() - chrono::Duration::days(EVENT_RETENTION_DAYS);
        Ok(provider_events::prune(&self.db, before).await?)
    }

    /// Registers the daily prune ([`PRUNE_JOB`]).
    pub fn register_provider_event_prune(&self, jobs: &JobQueue) -> Result<(), ScheduleError> {
        let shop = self.clone();
        jobs.register(PRUNE_JOB, move |_| {
            let shop = shop.clone();
            async move {
                let pruned = shop
                    .prune_provider_events()
                    .await
                    .map_err(|f| JobError::Retry(format!("{f:?}")))?;
                tracing::debug!(pruned, "pruned provider webhook events");
                Ok(())
            }
        });
        jobs.recurring(PRUNE_JOB, PRUNE_SCHEDULE, PRUNE_JOB, &())
    }
}
