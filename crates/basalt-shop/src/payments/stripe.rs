//! Stripe, through PaymentIntents: one PaymentIntent per order, confirmed
//! by the buyer's Stripe.js with its `client_secret`; the server reads it
//! back (capturing it when it was authorised only) before it marks anything
//! paid, and refunds through `/v1/refunds`.
//!
//! Requests are form-encoded, as Stripe's API wants, authenticated with the
//! secret key as a Bearer token, and every POST carries an
//! `Idempotency-Key`: a retry after a lost answer gets Stripe's first
//! answer again instead of a second PaymentIntent, capture or refund.
//!
//! Webhooks are verified with [`crate::signature::verify`] (the
//! `Stripe-Signature` header, the `whsec_…` secret, 300 s of tolerance).

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use basalt_platform::config::Secret;
use serde::Deserialize;

use super::{
    CreatedPayment, PaymentError, PaymentProvider, PaymentRequest, PaymentState, ProviderName,
    WebhookEvent, WebhookKind,
};
use crate::config::StripeConfig;
use crate::money::{Currency, Money};
use crate::signature;

/// How long one request to Stripe may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Stripe adapter.
pub struct StripeProvider {
    client: reqwest::Client,
    /// `shop.stripe.api_base`, without a trailing slash.
    api_base: String,
    secret_key: Secret,
    webhook_secret: Option<Secret>,
}

impl std::fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeProvider")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// A PaymentIntent, as far as Basalt reads it.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    amount: i64,
    /// Absent from localstripe's objects; Stripe always sends it.
    amount_received: Option<i64>,
    currency: String,
    client_secret: Option<String>,
}

impl PaymentIntent {
    /// What was received: `amount_received`, or (where a fake omits it) the
    /// whole amount of a succeeded intent, which Basalt always captures in
    /// full.
    fn received(&self) -> Result<Money, PaymentError> {
        let amount = self.amount_received.unwrap_or(self.amount);
        Ok(Money::new(amount, stripe_currency(&self.currency)?))
    }

    /// Where the payment stands. `requires_payment_method` after a declined
    /// card is still pending: Stripe.js lets the buyer try another card on
    /// the same intent.
    fn state(&self) -> Result<PaymentState, PaymentError> {
        Ok(match self.status.as_str() {
            "succeeded" => PaymentState::Succeeded {
                amount: self.received()?,
            },
            "canceled" => PaymentState::Failed,
            _ => PaymentState::Pending,
        })
    }
}

/// A refund, as far as Basalt reads it.
#[derive(Debug, Deserialize)]
struct Refund {
    id: String,
    status: Option<String>,
}

/// Stripe's error body: `{"error": {"type", "code", "message"}}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    code: Option<String>,
    message: Option<String>,
}

/// A webhook event, as far as Basalt reads it.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// Stripe writes currencies in lowercase; Basalt's are ISO 4217 capitals.
fn stripe_currency(code: &str) -> Result<Currency, PaymentError> {
    Currency::parse(&code.to_ascii_uppercase())
        .map_err(|_| PaymentError::Unavailable(format!("Stripe answered a currency {code:?}")))
}

/// Ids go into URL paths: only Stripe's own alphabet is let through.
fn checked_id<'a>(id: &'a str, prefix: &str) -> Result<&'a str, PaymentError> {
    let well_formed = id.starts_with(prefix)
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if well_formed {
        Ok(id)
    } else {
        Err(PaymentError::Refused(format!("not a Stripe {prefix}… id")))
    }
}

impl StripeProvider {
    /// The adapter for `config`, or `None` when `shop.stripe.secret_key` is
    /// not set (Stripe is then not offered).
    pub fn from_config(config: &StripeConfig) -> anyhow::Result<Option<Self>> {
        let Some(secret_key) = config.secret_key.clone() else {
            return Ok(None);
        };
        basalt_platform::server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Self {
            client,
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            secret_key,
            webhook_secret: config.webhook_secret.clone(),
        }))
    }

    /// `POST path` with a form body and an idempotency key.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<T, PaymentError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(self.secret_key.expose())
            .header("Idempotency-Key", idempotency_key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// `GET path`.
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, PaymentError> {
        let request = self
            .client
            .get(format!("{}{path}", self.api_base))
            .bearer_auth(self.secret_key.expose());
        self.send(request).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, PaymentError> {
        let response = request
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("Stripe: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("Stripe: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                PaymentError::Unavailable(format!("Stripe answered what Basalt cannot read: {e}"))
            });
        }
        let error = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .map(|b| b.error);
        let message = error
            .as_ref()
            .and_then(|e| e.message.clone())
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(match status.as_u16() {
            // Basalt's own key or request is wrong: not the buyer's to see.
            401 | 403 => {
                tracing::error!(%status, %message, "Stripe refused Basalt's API key");
                PaymentError::Unavailable("Stripe refused the API key".into())
            }
            429 => PaymentError::Unavailable("Stripe is rate limiting".into()),
            400..=499 => {
                let code = error.and_then(|e| e.code).unwrap_or_default();
                tracing::info!(%status, %code, %message, "Stripe refused a request");
                PaymentError::Refused(message)
            }
            _ => PaymentError::Unavailable(format!("Stripe answered {status}")),
        })
    }

    async fn retrieve(&self, id: &str) -> Result<PaymentIntent, PaymentError> {
        let id = checked_id(id, "pi_")?;
        self.get(&format!("/v1/payment_intents/{id}")).await
    }
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Stripe
    }

    async fn create(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError> {
        if request.amount.amount <= 0 {
            return Err(PaymentError::Refused("nothing to pay".into()));
        }
        let form = [
            ("amount", request.amount.amount.to_string()),
            (
                "currency",
                request.amount.currency.as_str().to_ascii_lowercase(),
            ),
            ("metadata[order_id]", request.order_id.to_string()),
            ("metadata[order_number]", request.order_number.to_string()),
        ];
        let intent: PaymentIntent = self
            .post("/v1/payment_intents", &form, &request.idempotency_key)
            .await?;
        Ok(CreatedPayment {
            provider_id: intent.id,
            client_secret: intent.client_secret,
            approve_url: None,
        })
    }

    async fn confirm(
        &self,
        provider_id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentState, PaymentError> {
        let intent = self.retrieve(provider_id).await?;
        if intent.status != "requires_capture" {
            return intent.state();
        }
        // Authorised only (capture_method manual): capture all of it. The
        // key makes a repeated capture Stripe's first answer again.
        let id = checked_id(provider_id, "pi_")?;
        let captured: PaymentIntent = self
            .post(
                &format!("/v1/payment_intents/{id}/capture"),
                &[],
                idempotency_key,
            )
            .await?;
        captured.state()
    }

    async fn cancel(&self, provider_id: &str) -> Result<(), PaymentError> {
        let id = checked_id(provider_id, "pi_")?;
        let cancelled = self
            .post::<PaymentIntent>(
                &format!("/v1/payment_intents/{id}/cancel"),
                &[],
                &format!("basalt-cancel-{id}"),
            )
            .await;
        match cancelled {
            Ok(_) => Ok(()),
            // Cancelling twice is done; cancelling a paid intent is refused.
            Err(PaymentError::Refused(message)) => match self.retrieve(id).await?.status.as_str() {
                "canceled" => Ok(()),
                _ => Err(PaymentError::Refused(message)),
            },
            Err(other) => Err(other),
        }
    }

    async fn refund(
        &self,
        provider_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        let id = checked_id(provider_id, "pi_")?;
        if amount.amount <= 0 {
            return Err(PaymentError::Refused(
                "a refund is of a positive amount".into(),
            ));
        }
        let form = [
            ("payment_intent", id.to_owned()),
            ("amount", amount.amount.to_string()),
        ];
        let refund: Refund = self.post("/v1/refunds", &form, idempotency_key).await?;
        match refund.status.as_deref() {
            Some("failed" | "canceled") => Err(PaymentError::Refused(format!(
                "Stripe did not refund ({})",
                refund.id
            ))),
            _ => Ok(refund.id),
        }
    }

    async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, PaymentError> {
        let Some(secret) = &self.webhook_secret else {
            tracing::warn!("a Stripe webhook arrived, but shop.stripe.webhook_secret is not set");
            return Err(PaymentError::Unverified(
                "no webhook secret is configured".into(),
            ));
        };
        let header = headers
            .get("stripe-signature")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PaymentError::Unverified("no Stripe-Signature header".into()))?;
        signature::verify(
            header,
            body,
            secret.expose().as_bytes(),
            chrono::Utc::now().timestamp(),
            signature::TOLERANCE_SECS,
        )
        .map_err(|e| PaymentError::Unverified(e.to_string()))?;
        let event: Event = serde_json::from_slice(body)
            .map_err(|e| PaymentError::Unverified(format!("not a Stripe event: {e}")))?;
        let intent = || {
            serde_json::from_value::<PaymentIntent>(event.data.object.clone()).map_err(|e| {
                PaymentError::Unverified(format!("{} without a PaymentIntent: {e}", event.kind))
            })
        };
        let kind = match event.kind.as_str() {
            "payment_intent.succeeded" => {
                let intent = intent()?;
                WebhookKind::PaymentSucceeded {
                    amount: intent.received()?,
                    provider_id: intent.id,
                }
            }
            "payment_intent.payment_failed" | "payment_intent.canceled" => {
                WebhookKind::PaymentFailed {
                    provider_id: intent()?.id,
                }
            }
            other => WebhookKind::Other(other.to_owned()),
        };
        Ok(WebhookEvent {
            event_id: event.id,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_are_stripe_ids_only() {
        assert!(checked_id("pi_3Abc_def", "pi_").is_ok());
        for bad in ["", "ch_1", "pi_1/../../v1/refunds", "pi_1?x=1", "pi_é"] {
            assert!(checked_id(bad, "pi_").is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies_are_read_in_capitals() {
        assert_eq!(
            stripe_currency("eur").map(|c| c.to_string()).ok(),
            Some("EUR".into())
        );
        assert!(stripe_currency("euro").is_err());
    }

    #[test]
    fn a_succeeded_intent_reports_what_was_received() {
        let intent: PaymentIntent = serde_json::from_value(serde_json::json!({
            "id": "pi_1", "status": "succeeded", "amount": 2000,
            "amount_received": 1500, "currency": "eur", "client_secret": null
        }))
        .expect("intent");
        let eur = Currency::parse("EUR").expect("EUR");
        assert_eq!(
            intent.state().ok(),
            Some(PaymentState::Succeeded {
                amount: Money::new(1500, eur)
            })
        );
        for (status, state) in [
            ("requires_payment_method", PaymentState::Pending),
            ("processing", PaymentState::Pending),
            ("canceled", PaymentState::Failed),
        ] {
            let intent = PaymentIntent {
                status: status.into(),
                ..intent_like(&intent)
            };
            assert_eq!(intent.state().ok(), Some(state), "{status}");
        }
    }

    fn intent_like(other: &PaymentIntent) -> PaymentIntent {
        PaymentIntent {
            id: other.id.clone(),
            status: other.status.clone(),
            amount: other.amount,
            amount_received: other.amount_received,
            currency: other.currency.clone(),
            client_secret: None,
        }
    }
}
