//! Merchant webhooks: admins register endpoints, and the shop's order events
//! are delivered to them, signed like Stripe's, retried with back-off, every
//! attempt logged, any delivery sent again on request.
//!
//! How an event gets there:
//! 1. the order service records a `shop.order.*` domain event in its
//!    transaction (the platform's outbox, [`basalt_platform::events`]);
//! 2. the consumer [`CONSUMER`] (the platform's inbox: once per event, on
//!    one node) writes one delivery per subscribed endpoint and enqueues a
//!    [`DELIVER_JOB`] for each, in the inbox's transaction;
//! 3. the job ([`delivery`]) POSTs the delivery's body to the endpoint,
//!    signed, and logs the attempt; a failure is retried by the job queue
//!    with its exponential back-off (`[jobs] backoff_base_secs`, …), up to
//!    `shop.webhooks.max_attempts` attempts;
//! 4. `POST …/deliveries/{id}/redeliver` enqueues the same body again.
//!
//! **What the merchant receives.** A `POST` of
//! `{"id", "type", "created", "data": {"object": …}}` (Stripe's event
//! shape: `id` is the event's id, stable across retries and redeliveries,
//! for the receiver to deduplicate; `type` its kind; `created` Unix
//! seconds) with `Content-Type: application/json` and
//! `Basalt-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, Stripe's
//! scheme ([`crate::signature`]) keyed with the endpoint's whole
//! `whsec_…` secret, so Stripe's own libraries verify it given the header
//! (`stripe.Webhook.construct_event(body, header, secret)`). Also
//! `Basalt-Event-Type` and `Basalt-Delivery-Id`. A 2xx answer is success;
//! anything else, no answer within `shop.webhooks.timeout_secs`, or a
//! redirect (never followed) is a failed attempt.
//!
//! **Outgoing calls and SSRF.** A merchant's URL must not reach Basalt's own
//! network: unless `shop.webhooks.allow_private_addresses` is set, a URL
//! whose host is, or resolves to, a loopback, private, link-local, shared,
//! unique-local, multicast or otherwise non-public address is refused, at
//! creation (literal addresses, `localhost`) and at every attempt (the
//! connection is made only to the addresses that passed the check, so a
//! name cannot be re-pointed between check and connect).
//!
//! **Secrets.** Each endpoint's secret is 256 random bits (`whsec_` and 43
//! URL-safe characters), shown once in the creation's answer. It is stored
//! as issued, not hashed: signing needs it, as Stripe's scheme does. Whoever
//! reads the database can sign as Basalt; encrypting it at rest with a key
//! from the configuration is a later step.

pub mod delivery;
pub mod routes;
pub mod service;
mod store;

use basalt_platform::error::{ErrorKind, Failure, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use service::MerchantWebhooks;

/// The shop's order events a merchant can subscribe to, as the order
/// service records them.
pub const ORDER_EVENTS: &[&str] = &[
    "shop.order.created",
    "shop.order.paid",
    "shop.order.fulfilled",
    "shop.order.shipped",
    "shop.order.delivered",
    "shop.order.cancelled",
    "shop.order.refunded",
    "shop.order.partially_refunded",
];

/// The event consumer that fans events out to endpoints (its inbox name:
/// never rename it).
pub const CONSUMER: &str = "shop.merchant_webhooks";
/// The job that makes one delivery attempt.
pub const DELIVER_JOB: &str = "shop.deliver_webhook";
/// The signature header on every delivery.
pub const SIGNATURE_HEADER: &str = "basalt-signature";

/// A registered endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    /// Id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event kinds it receives.
    pub events: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// A new endpoint, with its secret (shown this once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret, `whsec_…`: keep it, it is not shown again.
    pub secret: String,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt (or a redelivery's).
    Pending,
    /// Failed, to be tried again.
    Retrying,
    /// The receiver answered 2xx.
    Succeeded,
    /// Failed its last attempt: given up until redelivered.
    Failed,
}

impl DeliveryStatus {
    /// As stored and in the API (`pending`, `retrying`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "retrying" => Self::Retrying,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    /// 1, 2, 3…
    pub attempt: i32,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// The receiver's status code, when it answered.
    pub response_status: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether it succeeded (a 2xx answer).
    pub succeeded: bool,
}

/// An event's delivery to one endpoint, with its attempts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// Id.
    pub id: Uuid,
    /// The endpoint.
    pub endpoint_id: Uuid,
    /// The event's id (the body's `id`).
    pub event_id: Uuid,
    /// The event's kind (the body's `type`).
    pub event_type: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made in all.
    pub attempt_count: i32,
    /// When the event was fanned out to the endpoint.
    pub created_at: DateTime<Utc>,
    /// Every attempt, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// The merchant webhooks' failures.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Invalid fields.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// No such endpoint or delivery.
    #[error("not found")]
    NotFound,
    /// The database or something else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for WebhookError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<WebhookError> for Failure {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Invalid(fields) => Failure::invalid(fields),
            WebhookError::NotFound => Failure::new(ErrorKind::NotFound),
            WebhookError::Internal(cause) => Failure::internal(cause),
        }
    }
}
