//! [`MerchantWebhooks`]: registering endpoints, listing and redelivering
//! deliveries, and fanning events out to endpoints.

use std::sync::Arc;

use basalt_platform::db::{Db, Tx};
use basalt_platform::error::FieldError;
use basalt_platform::events::{Event, EventHandler};
use basalt_platform::jobs::{JobQueue, NewJob};
use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::json;
use uuid::Uuid;

use super::delivery::{DeliverJob, check_url};
use super::{
    CreatedEndpoint, DELIVER_JOB, Delivery, ORDER_EVENTS, WebhookEndpoint, WebhookError, store,
};
use crate::config::WebhooksConfig;

/// The most deliveries one listing shows (newest first).
pub const DELIVERIES_LISTED: i64 = 100;

/// The merchant webhooks' service. Cheap to clone.
#[derive(Clone)]
pub struct MerchantWebhooks {
    db: Db,
    jobs: JobQueue,
    config: Arc<WebhooksConfig>,
}

impl std::fmt::Debug for MerchantWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantWebhooks")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl MerchantWebhooks {
    /// The service over `db`, enqueueing deliveries on `jobs`.
    pub fn new(db: Db, jobs: JobQueue, config: WebhooksConfig) -> Self {
        Self {
            db,
            jobs,
            config: Arc::new(config),
        }
    }

    /// Registers an endpoint for `events` (each one of [`ORDER_EVENTS`]),
    /// with a new secret, shown this once.
    pub async fn create_endpoint(
        &self,
        admin: Uuid,
        url: &str,
        events: &[String],
    ) -> Result<CreatedEndpoint, WebhookError> {
        let mut fields = Vec::new();
        let url = match check_url(url.trim(), self.config.allow_private_addresses) {
            Ok(url) => url.to_string(),
            Err(message) => {
                fields.push(FieldError::new("url", message));
                String::new()
            }
        };
        let mut kinds: Vec<String> = Vec::new();
        if events.is_empty() {
            fields.push(FieldError::new("events", "must name at least one event"));
        }
        for kind in events {
            if !ORDER_EVENTS.contains(&kind.as_str()) {
                fields.push(FieldError::new(
                    "events",
                    format!("unknown event {kind:?}: one of {}", ORDER_EVENTS.join(", ")),
                ));
            } else if !kinds.contains(kind) {
                kinds.push(kind.clone());
            }
        }
        if !fields.is_empty() {
            return Err(WebhookError::Invalid(fields));
        }
        let (token, _) = basalt_identity::crypto::new_token()?;
        let secret = format!("whsec_{token}");
        let endpoint = WebhookEndpoint {
            id: Uuid::now_v7(),
            url,
            events: kinds,
            enabled: true,
            created_at: Utc::now(),
        };
        store::insert_endpoint(&self.db, &endpoint, &secret, admin).await?;
        Ok(CreatedEndpoint { endpoint, secret })
    }

    /// The endpoint's deliveries, newest first (at most
    /// [`DELIVERIES_LISTED`]), each with its attempts.
    pub async fn deliveries(&self, endpoint_id: Uuid) -> Result<Vec<Delivery>, WebhookError> {
        store::endpoint_by_id(&self.db, endpoint_id)
            .await?
            .ok_or(WebhookError::NotFound)?;
        Ok(store::deliveries(&self.db, endpoint_id, None, DELIVERIES_LISTED).await?)
    }

    /// Sends a delivery again, now: its same body, a new signature, a new
    /// round of attempts (with back-off) logged after the earlier ones.
    pub async fn redeliver(
        &self,
        endpoint_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Delivery, WebhookError> {
        let mut tx = self.db.begin().await?;
        if !store::restart(&mut tx, endpoint_id, delivery_id).await? {
            return Err(WebhookError::NotFound);
        }
        self.enqueue(&mut tx, delivery_id).await?;
        tx.commit().await?;
        store::deliveries(&self.db, endpoint_id, Some(delivery_id), 1)
            .await?
            .pop()
            .ok_or(WebhookError::NotFound)
    }

    /// Writes one delivery of `event` per enabled endpoint subscribed to its
    /// kind, and enqueues their first attempts, inside `tx` (the event
    /// consumer's, which also records the event as processed).
    pub async fn fan_out(&self, event: &Event, tx: &mut Tx) -> anyhow::Result<usize> {
        let body = serde_json::to_string(&json!({
            "id": event.id,
            "type": event.kind,
            "created": event.occurred_at_ms.div_euclid(1000),
            "data": { "object": event.payload },
        }))?;
        let mut delivered = 0;
        for endpoint in store::enabled_endpoints(tx).await? {
            if !endpoint.events.contains(&event.kind) {
                continue;
            }
            let id = Uuid::now_v7();
            if store::insert_delivery(tx, id, endpoint.id, event.id, &event.kind, &body).await? {
                self.enqueue(tx, id).await?;
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    async fn enqueue(&self, tx: &mut Tx, delivery_id: Uuid) -> Result<(), sqlx::Error> {
        self.jobs
            .enqueue_in(
                tx,
                NewJob::new(DELIVER_JOB, &DeliverJob { delivery_id })
                    .max_attempts(self.config.max_attempts),
            )
            .await
            .map(|_| ())
    }
}

/// The event consumer: [`MerchantWebhooks::fan_out`] for every order event.
#[derive(Clone, Debug)]
pub struct FanOut(pub MerchantWebhooks);

impl EventHandler for FanOut {
    fn handle<'a>(&'a self, event: &'a Event, tx: &'a mut Tx) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let delivered = self.0.fan_out(event, tx).await?;
            tracing::debug!(event = %event.id, kind = event.kind, delivered, "merchant webhooks");
            Ok(())
        })
    }
}
