//! Payment providers: one trait, [`PaymentProvider`], and its two adapters,
//! Stripe (PaymentIntents) and PayPal (Orders v2), chosen per checkout by
//! the buyer among those configured.
//!
//! The shop's services talk to a provider only through this trait, so the
//! order rules (checkout, confirmation racing the webhook, refunds) are
//! written once. Every request a provider receives from Basalt carries an
//! idempotency key derived from what it is for (Stripe's
//! `Idempotency-Key`, PayPal's `PayPal-Request-Id`): a retry after a lost
//! answer never charges twice.

pub mod paypal;
pub mod stripe;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::ShopConfig;
use crate::money::Money;

/// Which provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    /// Stripe PaymentIntents.
    Stripe,
    /// PayPal Orders v2.
    Paypal,
}

impl ProviderName {
    /// `stripe` or `paypal`, as stored and in the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Paypal => "paypal",
        }
    }
}

/// What a payment is asked for.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    /// The order being paid.
    pub order_id: Uuid,
    /// Its gapless number, shown to the buyer by the provider.
    pub order_number: i64,
    /// The total to charge.
    pub amount: Money,
    /// Sent as the provider's idempotency key: the same order always
    /// yields the same key, so a retried create returns the same payment.
    pub idempotency_key: String,
}

/// A payment the provider has created, for the buyer's client to complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedPayment {
    /// The provider's id (a PaymentIntent `pi_…`, a PayPal order id).
    pub provider_id: String,
    /// Stripe: what Stripe.js confirms the PaymentIntent with.
    pub client_secret: Option<String>,
    /// PayPal: where the buyer approves the payment.
    pub approve_url: Option<String>,
}

/// Where a payment stands, as the provider says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    /// Not paid yet (awaiting the buyer, processing).
    Pending,
    /// Paid: this much was captured.
    Succeeded {
        /// What the provider captured; compared with the order's total.
        amount: Money,
    },
    /// Failed or cancelled; it will not succeed.
    Failed,
}

/// What a verified provider webhook says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The provider's event id: webhooks are deduplicated on it.
    pub event_id: String,
    /// What happened.
    pub kind: WebhookKind,
}

/// The events the shop acts on; every other type is acknowledged and
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKind {
    /// A payment succeeded (Stripe `payment_intent.succeeded`, PayPal
    /// `PAYMENT.CAPTURE.COMPLETED`).
    PaymentSucceeded {
        /// The payment's provider id (as in [`CreatedPayment`]).
        provider_id: String,
        /// What was captured.
        amount: Money,
    },
    /// The buyer approved the payment, and the server's part (PayPal's
    /// capture) is still to do (PayPal `CHECKOUT.ORDER.APPROVED`): the shop
    /// completes it with [`PaymentProvider::confirm`], so an order whose
    /// buyer closed the tab after approving is still paid.
    PaymentApproved {
        /// The payment's provider id.
        provider_id: String,
    },
    /// A payment failed or was cancelled.
    PaymentFailed {
        /// The payment's provider id.
        provider_id: String,
    },
    /// Anything else, by its type name.
    Other(String),
}

/// What can go wrong talking to a provider.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// This provider is not configured here.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// The provider refused the request (a declined card, an unknown id,
    /// an amount it does not accept); the message is safe to show.
    #[error("payment refused: {0}")]
    Refused(String),
    /// A webhook whose signature, certificate or timestamp does not check.
    #[error("webhook not verified: {0}")]
    Unverified(String),
    /// The provider could not be reached or answered 5xx: try again later.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

/// One payment provider.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Which one this is.
    fn name(&self) -> ProviderName;

    /// Creates the payment for an order (Stripe: a PaymentIntent; PayPal:
    /// an order with intent CAPTURE).
    async fn create(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError>;

    /// Completes the payment as far as the server's part goes, and says
    /// where it stands: Stripe reads the PaymentIntent (capturing it if it
    /// awaits capture); PayPal captures the approved order. Safe to call
    /// again: a completed payment reports `Succeeded` without charging
    /// twice.
    async fn confirm(
        &self,
        provider_id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentState, PaymentError>;

    /// Cancels a payment that has not succeeded (the order was cancelled or
    /// its reservation expired).
    async fn cancel(&self, provider_id: &str) -> Result<(), PaymentError>;

    /// Refunds `amount` of a succeeded payment; returns the provider's
    /// refund id.
    async fn refund(
        &self,
        provider_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<String, PaymentError>;

    /// Verifies a webhook delivery (headers and the raw body, byte for
    /// byte) and reads the event it carries.
    async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, PaymentError>;
}

/// The providers configured on this node.
#[derive(Clone, Default)]
pub struct Payments {
    providers: Vec<Arc<dyn PaymentProvider>>,
}

impl Payments {
    /// These providers.
    pub fn new(providers: Vec<Arc<dyn PaymentProvider>>) -> Self {
        Self { providers }
    }

    /// The providers `config` sets up: Stripe when `shop.stripe.secret_key`
    /// is set, PayPal when `shop.paypal.client_id` and `client_secret` are.
    pub fn from_config(config: &ShopConfig) -> anyhow::Result<Self> {
        let mut providers: Vec<Arc<dyn PaymentProvider>> = Vec::new();
        if let Some(stripe) = stripe::StripeProvider::from_config(&config.stripe)? {
            providers.push(Arc::new(stripe));
        }
        if let Some(paypal) = paypal::PaypalProvider::from_config(&config.paypal)? {
            providers.push(Arc::new(paypal));
        }
        Ok(Self::new(providers))
    }

    /// Which providers are configured, in the order they were set up.
    pub fn names(&self) -> Vec<ProviderName> {
        self.providers.iter().map(|p| p.name()).collect()
    }

    /// The provider named `name`, if configured.
    pub fn get(&self, name: ProviderName) -> Result<&Arc<dyn PaymentProvider>, PaymentError> {
        self.providers
            .iter()
            .find(|p| p.name() == name)
            .ok_or(PaymentError::NotConfigured(name.as_str()))
    }
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.name()))
            .finish()
    }
}
