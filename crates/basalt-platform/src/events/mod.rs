//! Domain events through a transactional outbox.
//!
//! A module records an event with [`record_in`] inside the transaction of the
//! change it describes, so the event exists exactly when the change does. A
//! relay on every worker node then claims unpublished events, oldest first,
//! and hands them to the bus; only once the bus has them (RabbitMQ's
//! publisher confirm, or every in-process consumer done) are they marked
//! published. A relay that dies mid-batch leaves its claim to expire, and
//! another relay publishes the batch again: delivery is at least once.
//!
//! Consumers make that exactly-once in effect: [`Events::subscribe`]d
//! handlers run inside a transaction that also records the event id in an
//! inbox, so a redelivered event is recognised and skipped, and an effect
//! that fails rolls back with its inbox entry, to be retried.
//!
//! The bus is a port with two adapters chosen by configuration: in-process
//! (the default: the relay calls the consumers itself) and RabbitMQ
//! (`BASALT_AMQP_URL`: a durable topic exchange, one durable queue per
//! consumer shared by every node, so each event is processed by one node).
//!
//! # Live events
//!
//! Consumers compete; live views need the opposite: an article published
//! through node A must reach a subscriber connected to node B.
//! [`Events::listen`] gives a [`LiveEvents`] stream of every event of some
//! kinds published from then on, on any node. All listeners of a node read
//! one `tokio::sync::broadcast` channel of [`LIVE_CAPACITY`] events (each
//! filters by kind), fed by the bus:
//!
//! - in-process: the relay, once the bus has taken an event (every consumer
//!   done), sends it to the channel. Only the node whose relay published an
//!   event hears it, so this is the single-node setup; nodes that share a
//!   database but no broker (or an `api` node, which runs no relay) hear
//!   only their own relay's events, or none: a cluster that serves
//!   subscriptions needs RabbitMQ.
//! - RabbitMQ: the relay publishes, next to each event, a non-persistent copy
//!   to a second topic exchange, `{prefix}.live`; every node that serves the
//!   API runs the `events.fanout` service, which binds a queue of its own
//!   (server-named, exclusive, auto-deleted, capped) to it with `#` and
//!   consumes it without acknowledgements into the channel, reconnecting with
//!   back-off (a `worker` node runs none, and its listeners hear nothing).
//!   The relay does not feed the channel itself, so the publishing node
//!   hears each event once, through the broker, like every other. The
//!   copies have their own exchange so that `mandatory` keeps its meaning:
//!   a fan-out queue bound to the events exchange would take every event,
//!   and an event whose consumer queue is missing would then count as routed.
//!
//! Delivery is at most once and best effort: the channel drops what a slow
//! listener has not read ([`RecvError::Lagged`]); an event the relay
//! publishes again is recognised by its id (the last few thousand are
//! remembered) and not heard twice; what is published while the fan-out is
//! reconnecting is not heard at all ([`Events::live_ready`] tells when a node
//! hears). Latency is the relay's: it is woken after the commit, and an event
//! reaches listeners once published. When the node shuts down (the
//! `events.fanout` service is cancelled with the events stage), every
//! listener's stream ends.

mod bus;
mod fanout;
mod live;
mod rabbitmq;
mod store;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::config::{AmqpUrl, EventsConfig};
use crate::db::{Db, Tx};

pub use bus::Bus;
pub use live::{LIVE_CAPACITY, LiveEvents, RecvError};

/// The outbox and inbox tables.
pub static MIGRATIONS: &[crate::db::MigrationFile] = &[
    crate::db::MigrationFile {
        version: 1101,
        description: "create_outbox_and_inbox",
        sqlite: include_str!("../../migrations/sqlite/1101_create_outbox_and_inbox.sql"),
        postgres: include_str!("../../migrations/postgres/1101_create_outbox_and_inbox.sql"),
    },
    crate::db::MigrationFile {
        version: 1102,
        description: "outbox_traceparent",
        sqlite: include_str!("../../migrations/sqlite/1102_outbox_traceparent.sql"),
        postgres: include_str!("../../migrations/postgres/1102_outbox_traceparent.sql"),
    },
];

/// A fact a module tells others about: `kind` names it (`blog.article_published`),
/// `payload` carries its data as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id (UUID v7): consumers deduplicate by it.
    pub id: Uuid,
    /// `module.what_happened`, also the RabbitMQ routing key.
    pub kind: String,
    /// The event's data.
    pub payload: serde_json::Value,
    /// When it happened (unix milliseconds).
    pub occurred_at_ms: i64,
    /// The W3C trace context of the transaction that recorded it, when
    /// traces are on: stored in the outbox row, sent as the AMQP header
    /// `traceparent` (not in the body), and continued by the consumer's span.
    /// Set by the relay and the broker adapter, not by [`Event::new`].
    #[serde(skip)]
    pub traceparent: Option<String>,
}

impl Event {
    /// A new event of `kind`, now.
    pub fn new(kind: &str, payload: &impl Serialize) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: kind.to_owned(),
            // Serialising our own payload structs cannot fail; `Null` would
            // only reach a consumer that then refuses it.
            payload: serde_json::to_value(payload).unwrap_or_default(),
            occurred_at_ms: Utc::now().timestamp_millis(),
            traceparent: None,
        }
    }
}

/// Records `event` in the outbox inside the caller's transaction: it is
/// published if, and only if, the transaction commits.
pub async fn record_in(tx: &mut Tx, event: &Event) -> Result<(), sqlx::Error> {
    store::insert(tx, event).await
}

/// What a consumer does with an event. It runs inside `tx`, which also
/// records the event as processed: write the effect through `tx` (e.g.
/// [`crate::jobs::JobQueue::enqueue_in`]) and it happens exactly once.
pub trait EventHandler: Send + Sync + 'static {
    /// Handles one event; an error rolls the effect back, and the event is
    /// delivered again later.
    fn handle<'a>(&'a self, event: &'a Event, tx: &'a mut Tx) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// A named consumer and the event kinds it wants.
pub(crate) struct Consumer {
    name: String,
    kinds: Vec<String>,
    handler: Arc<dyn EventHandler>,
}

impl Consumer {
    fn wants(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

/// Logs a consumer's failure; the event will be delivered again.
pub(crate) fn log_consumer_failure(consumer: &Consumer, event: &Event, error: &anyhow::Error) {
    tracing::warn!(
        consumer = consumer.name,
        event = %event.id,
        kind = event.kind,
        error = format!("{error:#}"),
        "event consumer failed; the event will be delivered again"
    );
}

/// What processing an event for one consumer came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The effect happened now.
    Processed,
    /// Already processed earlier: nothing done.
    Duplicate,
}

/// Runs `consumer` on `event` exactly once in effect (see the module docs).
/// With traces on, inside a span of its own that continues the trace the
/// event was recorded in, whichever bus brought it.
pub(crate) async fn deliver(
    db: &Db,
    consumer: &Consumer,
    event: &Event,
) -> anyhow::Result<Delivered> {
    if !crate::telemetry::tracing_enabled() {
        return deliver_once(db, consumer, event).await;
    }
    let span = tracing::info_span!(
        "event",
        consumer = consumer.name,
        event = %event.id,
        kind = event.kind,
        otel.name = format!("{} {}", consumer.name, event.kind),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, event.traceparent.as_deref());
    let delivered = deliver_once(db, consumer, event)
        .instrument(span.clone())
        .await;
    if delivered.is_err() {
        span.record("otel.status_code", "error");
    }
    delivered
}

async fn deliver_once(db: &Db, consumer: &Consumer, event: &Event) -> anyhow::Result<Delivered> {
    let mut tx = db.begin().await?;
    if !store::remember(
        &mut tx,
        &consumer.name,
        event.id,
        Utc::now().timestamp_millis(),
    )
    .await?
    {
        return Ok(Delivered::Duplicate);
    }
    consumer.handler.handle(event, &mut tx).await?;
    tx.commit().await?;
    Ok(Delivered::Processed)
}

/// The event service: consumers register with it at build time; worker
/// nodes run its relay (and, with RabbitMQ, its consumers).
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    config: EventsConfig,
    amqp_url: Option<AmqpUrl>,
    consumers: RwLock<Vec<Arc<Consumer>>>,
    wake: Arc<Notify>,
    metrics: EventMetrics,
    live: live::LiveHub,
}

/// Wakes this node's relay after a commit that recorded events. Holding one
/// does not keep the event service alive: consumers hold services that hold
/// wakers, and a strong reference would be a cycle.
#[derive(Clone, Debug, Default)]
pub struct EventWaker(Arc<Notify>);

impl EventWaker {
    /// Tells the relay that events were just committed, so that it publishes
    /// them now rather than at its next poll.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// The gauges the relay keeps current.
#[derive(Clone, Default)]
pub struct EventMetrics {
    /// Events recorded and not yet published.
    pub outbox_pending: Gauge,
    /// Age of the oldest unpublished event, in seconds (0 when none).
    pub outbox_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Whether the broker connection is up (1) or down (0); 1 in-process.
    pub broker_up: Gauge,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("broker", &self.inner.amqp_url.as_ref().map(|_| "rabbitmq"))
            .finish_non_exhaustive()
    }
}

impl Events {
    /// The service over `db`; with `amqp_url`, events travel through RabbitMQ.
    pub fn new(
        db: Db,
        config: EventsConfig,
        amqp_url: Option<AmqpUrl>,
        metrics: EventMetrics,
    ) -> Self {
        let live = live::LiveHub::new(amqp_url.is_none());
        Self {
            inner: Arc::new(Inner {
                db,
                config,
                amqp_url,
                consumers: RwLock::new(Vec::new()),
                wake: Arc::new(Notify::new()),
                metrics,
                live,
            }),
        }
    }

    /// Registers a consumer of `kinds`. `name` identifies it durably (its
    /// inbox entries and its RabbitMQ queue): never rename a live consumer.
    pub fn subscribe(&self, name: &str, kinds: &[&str], handler: impl EventHandler) {
        if let Ok(mut consumers) = self.inner.consumers.write() {
            consumers.push(Arc::new(Consumer {
                name: name.to_owned(),
                kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
                handler: Arc::new(handler),
            }));
        }
    }

    /// Every event of `kinds` published from now on, on any node, as it is
    /// published: for live views (GraphQL subscriptions, and the chat's hub
    /// later). At most once and best effort: a listener that falls behind by
    /// more than [`LIVE_CAPACITY`] events loses the oldest (it is told, see
    /// [`LiveEvents::recv`]); nothing here is durable, durable work belongs
    /// in [`subscribe`](Self::subscribe)d consumers. The stream ends when the
    /// node shuts down. See the [module docs](self) for how events get here.
    pub fn listen(&self, kinds: &[&str]) -> LiveEvents {
        self.inner.live.listen(kinds)
    }

    /// Resolves once this node hears the whole cluster's live events: at once
    /// in-process; with RabbitMQ, once the fan-out consumes its queue (at
    /// start-up, and again after a lost connection). A listener made before
    /// may miss what is published until then; tests wait for it.
    pub async fn live_ready(&self) {
        self.inner.live.hearing().await;
    }

    /// The `events.fanout` service (see the module docs): with RabbitMQ,
    /// feeds this node's live listeners until `stop`; in-process, the relay
    /// feeds them and this only waits. Either way their streams end then.
    pub(crate) async fn fan_out(self, stop: CancellationToken) {
        match &self.inner.amqp_url {
            Some(url) => {
                let prefix = self.inner.config.amqp_prefix.clone();
                fanout::fan_out(url.clone(), prefix, self.inner.live.clone(), stop).await;
            }
            None => {
                stop.cancelled().await;
                self.inner.live.end();
            }
        }
    }

    /// A handle that wakes the relay (see [`EventWaker`]).
    pub fn waker(&self) -> EventWaker {
        EventWaker(Arc::clone(&self.inner.wake))
    }

    fn consumers(&self) -> Vec<Arc<Consumer>> {
        self.inner
            .consumers
            .read()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Starts the relay (and the broker's consumers) on this node.
    pub fn start(&self) -> EventRunner {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let consumers = self.consumers();
        let bus: Arc<dyn Bus> = match &self.inner.amqp_url {
            None => {
                self.inner.metrics.broker_up.set(1);
                Arc::new(bus::InProcessBus::new(
                    self.inner.db.clone(),
                    consumers,
                    self.inner.live.clone(),
                ))
            }
            Some(url) => {
                let broker = rabbitmq::RabbitBus::new(
                    url.clone(),
                    self.inner.config.amqp_prefix.clone(),
                    consumers,
                    self.inner.db.clone(),
                    self.inner.metrics.broker_up.clone(),
                );
                broker.spawn_consumers(&mut tasks, stopped.clone());
                Arc::new(broker)
            }
        };
        tasks.spawn(relay(self.clone(), bus, stopped));
        EventRunner { tasks, stop }
    }
}

/// The running relay and consumers; see [`Events::start`].
#[must_use = "dropping the runner stops the relay at once"]
pub struct EventRunner {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl EventRunner {
    /// Stops after the batch in flight (at most `grace`).
    pub async fn shutdown(mut self, grace: Duration) {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

/// With traces on, an event's hop from the outbox to the bus is a producer
/// span (`publish <kind>`), a child of the transaction that recorded it; the
/// event then carries the span's context, so that its consumers are the
/// span's children. `None` for an event recorded outside any trace.
fn publish_span(event: &mut Event) -> Option<(Uuid, tracing::Span)> {
    let recorded_in = event.traceparent.as_deref()?;
    let span = tracing::info_span!(
        "publish",
        event = %event.id,
        kind = event.kind,
        otel.name = format!("publish {}", event.kind),
        otel.kind = "producer",
        otel.status_code = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, Some(recorded_in));
    event.traceparent = crate::telemetry::traceparent_of(&span).or(event.traceparent.take());
    Some((event.id, span))
}

/// How long a relay holds a claimed batch before others may take it over.
const CLAIM_FOR: Duration = Duration::from_secs(30);
/// How often published events and inbox entries are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

async fn relay(events: Events, bus: Arc<dyn Bus>, mut stopped: watch::Receiver<bool>) {
    let inner = &events.inner;
    let idle = Duration::from_millis(inner.config.relay_interval_ms);
    let mut last_prune = tokio::time::Instant::now();
    let mut failures: u32 = 0;
    while !*stopped.borrow() {
        let now = Utc::now().timestamp_millis();
        let claim_until = now + i64::try_from(CLAIM_FOR.as_millis()).unwrap_or(30_000);
        // A read first: the claim is a write, and on SQLite an idle relay
        // would otherwise take the database's write lock four times a second.
        let pending = update_backlog_metrics(&events).await.unwrap_or(1);
        let mut batch = if pending == 0 {
            Vec::new()
        } else {
            match store::claim(&inner.db, now, claim_until, inner.config.batch_size).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay: cannot claim events");
                    Vec::new()
                }
            }
        };
        let full = i64::try_from(batch.len()).unwrap_or(i64::MAX) >= inner.config.batch_size;
        if !batch.is_empty() {
            let spans: Vec<(Uuid, tracing::Span)> =
                batch.iter_mut().filter_map(publish_span).collect();
            let published = bus.publish(&batch).await;
            for (id, span) in spans {
                if !published.contains(&id) {
                    span.record("otel.status_code", "error");
                }
            }
            let (done, failed): (Vec<&Event>, Vec<&Event>) =
                batch.iter().partition(|e| published.contains(&e.id));
            let done: Vec<Uuid> = done.iter().map(|e| e.id).collect();
            let failed: Vec<Uuid> = failed.iter().map(|e| e.id).collect();
            if let Err(error) =
                store::mark_published(&inner.db, &done, Utc::now().timestamp_millis()).await
            {
                tracing::warn!(%error, "outbox relay: cannot mark events published; they will be sent again");
            }
            if !failed.is_empty() {
                failures = failures.saturating_add(1);
                let _ = store::release(&inner.db, &failed).await;
            } else {
                failures = 0;
            }
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            let keep = i64::try_from(inner.config.retention_hours).unwrap_or(168) * 3_600_000;
            if let Err(error) = store::prune(&inner.db, Utc::now().timestamp_millis() - keep).await
            {
                tracing::warn!(%error, "outbox relay: cannot prune old events");
            }
        }
        if full && failures == 0 {
            continue;
        }
        if !batch.is_empty() {
            update_backlog_metrics(&events).await;
        }
        // Back off while the bus refuses; otherwise wait for work.
        let pause = if failures > 0 {
            (idle * 2u32.saturating_pow(failures.min(5))).min(Duration::from_secs(5))
        } else {
            idle
        };
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Refreshes the backlog gauges; returns the number of unpublished events.
async fn update_backlog_metrics(events: &Events) -> Option<i64> {
    let (pending, oldest) = store::backlog(&events.inner.db).await.ok()?;
    let metrics = &events.inner.metrics;
    metrics.outbox_pending.set(pending);
    let lag_ms = oldest.map_or(0, |t| (Utc::now().timestamp_millis() - t).max(0));
    #[allow(clippy::cast_precision_loss)]
    metrics.outbox_lag_seconds.set(lag_ms as f64 / 1000.0);
    Some(pending)
}
