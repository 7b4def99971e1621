//! The RabbitMQ adapter (`BASALT_AMQP_URL`).
//!
//! Topology, declared by every node (publishers too, so that no event is
//! published before its queues exist): a durable topic exchange
//! `{prefix}.events`; per consumer, a durable queue `{prefix}.{consumer}`
//! bound to each kind it wants. Messages are persistent and published with
//! publisher confirms, and with the `mandatory` flag when a consumer wants
//! their kind: the relay marks an event published only when the broker has
//! confirmed it and, if it is wanted, routed it to a queue.
//!
//! Next to each event goes a non-persistent, non-mandatory copy to a second
//! durable topic exchange, `{prefix}.live`, which only the nodes' live
//! fan-out queues are bound to ([`super::fanout`]): on its own exchange, a
//! fan-out queue can never make an event count as routed to a consumer.
//!
//! Every node consumes every consumer's queue; RabbitMQ gives each message to
//! one of them (competing consumers), which acknowledges it after the effect
//! has committed. A node that dies before acknowledging leaves the message to
//! be redelivered to another, and the inbox skips what was already done.
//! Connections that drop are re-made with back-off; meanwhile events wait in
//! the outbox (nothing is lost, `basalt_outbox_lag_seconds` grows).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use prometheus_client::metrics::gauge::Gauge;
use secrecy::ExposeSecret as _;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::bus::Bus;
use super::{Consumer, Delivered, Event, deliver, log_consumer_failure};
use crate::config::AmqpUrl;
use crate::db::Db;

/// Longest wait for a confirm or a connection before the batch is retried.
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);
/// Unacknowledged messages a node takes per consumer queue at once.
const PREFETCH: u16 = 16;

/// The RabbitMQ bus: publishing side, plus the consumer tasks it spawns.
pub(super) struct RabbitBus {
    shared: Arc<Shared>,
    /// The publishing channel, made on first use and after a failure.
    publisher: Mutex<Option<(Connection, Channel)>>,
}

struct Shared {
    url: AmqpUrl,
    prefix: String,
    consumers: Vec<Arc<Consumer>>,
    db: Db,
    broker_up: Gauge,
}

impl RabbitBus {
    pub(super) fn new(
        url: AmqpUrl,
        prefix: String,
        consumers: Vec<Arc<Consumer>>,
        db: Db,
        broker_up: Gauge,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                url,
                prefix,
                consumers,
                db,
                broker_up,
            }),
            publisher: Mutex::new(None),
        }
    }

    /// One task per consumer, each with its own connection, reconnecting
    /// until `stopped`.
    pub(super) fn spawn_consumers(&self, tasks: &mut JoinSet<()>, stopped: watch::Receiver<bool>) {
        for consumer in &self.shared.consumers {
            tasks.spawn(consume_forever(
                Arc::clone(&self.shared),
                Arc::clone(consumer),
                stopped.clone(),
            ));
        }
    }

    async fn publish_batch(&self, batch: &[Event]) -> anyhow::Result<HashSet<Uuid>> {
        let mut publisher = self.publisher.lock().await;
        if publisher
            .as_ref()
            .is_none_or(|(conn, _)| !conn.status().connected())
        {
            *publisher = None;
            let conn = self.shared.connect().await?;
            let channel = conn.create_channel().await?;
            self.shared.declare_topology(&channel).await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            *publisher = Some((conn, channel));
        }
        let Some((_, channel)) = publisher.as_ref() else {
            anyhow::bail!("no publishing channel");
        };
        let exchange = self.shared.exchange();
        let live = live_exchange(&self.shared.prefix);
        let mut confirms = Vec::with_capacity(batch.len());
        let mut live_confirms = Vec::with_capacity(batch.len());
        for event in batch {
            // `mandatory` (return it if no queue takes it) only for kinds a
            // consumer of ours wants: others legitimately go nowhere.
            let wanted = self.shared.consumers.iter().any(|c| c.wants(&event.kind));
            let body = serde_json::to_vec(event)?;
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2) // persistent
                .with_content_type("application/json".into())
                .with_message_id(event.id.to_string().into())
                .with_type(event.kind.clone().into());
            // The trace the event was recorded in goes as a header, where
            // tracing-aware tools look for it, and never into the body.
            if let Some(traceparent) = &event.traceparent {
                let mut headers = FieldTable::default();
                headers.insert(
                    TRACEPARENT_HEADER.into(),
                    AMQPValue::LongString(traceparent.as_str().into()),
                );
                properties = properties.with_headers(headers);
            }
            let confirm = channel
                .basic_publish(
                    exchange.clone().into(),
                    event.kind.clone().into(),
                    BasicPublishOptions {
                        mandatory: wanted,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    properties,
                )
                .await?;
            confirms.push((event.id, confirm));
            // The copy for live listeners goes through its own exchange, so
            // that the fan-out queues never count as routing an event to a
            // consumer. Not persistent, not mandatory: best effort.
            let copy = channel
                .basic_publish(
                    live.clone().into(),
                    event.kind.clone().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default()
                        .with_content_type("application/json".into())
                        .with_message_id(event.id.to_string().into())
                        .with_type(event.kind.clone().into()),
                )
                .await?;
            live_confirms.push(copy);
        }
        let mut published = HashSet::new();
        for (id, confirm) in confirms {
            let confirmation = tokio::time::timeout(BROKER_TIMEOUT, confirm).await??;
            // Acknowledged, and not returned as unroutable.
            if confirmation.is_ack() && confirmation.take_message().is_none() {
                published.insert(id);
            }
        }
        // Awaited only so that lapin does not keep them; their outcome does
        // not decide whether the event is published.
        for confirm in live_confirms {
            let _ = tokio::time::timeout(BROKER_TIMEOUT, confirm).await;
        }
        Ok(published)
    }
}

impl Bus for RabbitBus {
    fn publish<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, HashSet<Uuid>> {
        Box::pin(async move {
            match self.publish_batch(batch).await {
                Ok(published) => {
                    self.shared.broker_up.set(1);
                    published
                }
                Err(error) => {
                    if self.shared.broker_up.get() != 0 {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "RabbitMQ unavailable: events wait in the outbox"
                        );
                    }
                    self.shared.broker_up.set(0);
                    *self.publisher.lock().await = None;
                    HashSet::new()
                }
            }
        })
    }
}

impl Shared {
    fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    fn queue(&self, consumer: &Consumer) -> String {
        format!("{}.{}", self.prefix, consumer.name)
    }

    async fn connect(&self) -> anyhow::Result<Connection> {
        connect(&self.url).await
    }

    /// Declares the exchanges, and every consumer's queue and bindings.
    async fn declare_topology(&self, channel: &Channel) -> anyhow::Result<()> {
        declare_topic_exchange(channel, self.exchange()).await?;
        declare_topic_exchange(channel, live_exchange(&self.prefix)).await?;
        for consumer in &self.consumers {
            let queue = self.queue(consumer);
            channel
                .queue_declare(
                    queue.clone().into(),
                    QueueDeclareOptions::durable(),
                    FieldTable::default(),
                )
                .await?;
            for kind in &consumer.kinds {
                channel
                    .queue_bind(
                        queue.clone().into(),
                        self.exchange().into(),
                        kind.clone().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

/// The AMQP header carrying an event's W3C trace context.
const TRACEPARENT_HEADER: &str = "traceparent";

/// The `traceparent` header of a delivered message, if it has one.
fn traceparent_of(properties: &BasicProperties) -> Option<String> {
    let value = properties
        .headers()
        .as_ref()?
        .inner()
        .get(TRACEPARENT_HEADER)?;
    match value {
        AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes()).ok().map(str::to_owned),
        _ => None,
    }
}

/// Connects to the broker, or fails within [`BROKER_TIMEOUT`].
pub(super) async fn connect(url: &AmqpUrl) -> anyhow::Result<Connection> {
    let connect = Connection::connect(url.0.expose_secret(), ConnectionProperties::default());
    Ok(tokio::time::timeout(BROKER_TIMEOUT, connect).await??)
}

/// The exchange live copies of events go to, for every node's fan-out.
pub(super) fn live_exchange(prefix: &str) -> String {
    format!("{prefix}.live")
}

/// Declares a durable topic exchange. Durable, and never auto-deleted, even
/// the live one: publishing to a missing exchange would close the channel.
pub(super) async fn declare_topic_exchange(channel: &Channel, name: String) -> anyhow::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

async fn consume_forever(
    shared: Arc<Shared>,
    consumer: Arc<Consumer>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut delay = Duration::from_millis(200);
    while !*stopped.borrow() {
        let outcome = tokio::select! {
            outcome = consume(&shared, &consumer) => outcome,
            _ = stopped.changed() => return,
        };
        if let Err(error) = outcome {
            tracing::debug!(
                consumer = consumer.name,
                error = format!("{error:#}"),
                "event consumer reconnecting"
            );
        } else {
            delay = Duration::from_millis(200);
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stopped.changed() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Consumes until the connection fails.
async fn consume(shared: &Shared, consumer: &Consumer) -> anyhow::Result<()> {
    let conn = shared.connect().await?;
    let channel = conn.create_channel().await?;
    shared.declare_topology(&channel).await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            shared.queue(consumer).into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let mut event: Event = match serde_json::from_slice(&delivery.data) {
            Ok(event) => event,
            Err(error) => {
                // Not ours or corrupt: requeueing would loop forever.
                tracing::error!(consumer = consumer.name, %error, "dropping a message that is not an event");
                delivery.nack(BasicNackOptions::default()).await?;
                continue;
            }
        };
        event.traceparent = traceparent_of(&delivery.properties);
        match deliver(&shared.db, consumer, &event).await {
            Ok(Delivered::Processed | Delivered::Duplicate) => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(error) => {
                log_consumer_failure(consumer, &event, &error);
                // A short pause so that a persistent failure does not spin.
                tokio::time::sleep(Duration::from_millis(500)).await;
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await?;
            }
        }
    }
    anyhow::bail!("the consumer was cancelled")
}
