//! Node-to-node fan-out of ephemeral payloads by topic, behind a port with
//! two adapters chosen by configuration: [`InProcessBroadcast`] (one node;
//! the default) and [`RedisBroadcast`] (every node, through Redis pub/sub).
//!
//! Delivery is *at most once*: a payload may be lost (a subscriber too slow
//! to keep up, Redis away), never duplicated, and every possible loss is
//! reported to the subscribers it may have hit as a [`Delivery::Gap`]. A
//! consumer that needs every message keeps correctness elsewhere (the chat:
//! offsets in the database) and catches up on a gap.
//!
//! Both adapters share the local half (`Topics`): one
//! `tokio::sync::broadcast` channel per topic that has subscribers on this
//! node, created by the first subscription and removed with the last.

mod in_process;
mod redis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, watch};

pub use in_process::InProcessBroadcast;
pub use redis::RedisBroadcast;

/// Payloads a subscriber may fall behind by before it gets a
/// [`Delivery::Gap`] instead of the oldest ones.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Fan-out of payloads to every node's subscribers of a topic.
pub trait Broadcast: Send + Sync + 'static {
    /// Sends `payload` to every subscriber of `topic` on every node, this one
    /// included. Best effort: never waits longer than one Redis command's
    /// timeout, and a payload that cannot be sent is dropped (and counted).
    fn publish<'a>(&'a self, topic: &'a str, payload: Bytes) -> BoxFuture<'a, ()>;
    /// This node's subscription to `topic`: cheap, since the local
    /// subscriptions to one topic share one upstream subscription. Dropping
    /// it unsubscribes (upstream too, with the topic's last subscription).
    fn subscribe(&self, topic: &str) -> Subscription;
}

/// What a [`Subscription`] receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A published payload.
    Message(Bytes),
    /// Messages of this topic may have been lost since the last delivery
    /// (the receiver lagged, or the connection to Redis broke and came
    /// back): catch up from the source of truth.
    Gap,
}

/// The counters of the broadcast port, exported as
/// `basalt_broadcast_published_total` (payloads handed to the transport),
/// `basalt_broadcast_dropped_total` (payloads lost on publishing: Redis
/// away or too slow), `basalt_broadcast_delivered_total` (payloads received
/// by local subscribers, one per subscriber),
/// `basalt_broadcast_gaps_total` (gaps reported to local subscribers) and
/// the gauge `basalt_broadcast_topics` (topics with local subscribers).
#[derive(Debug, Clone, Default)]
pub struct BroadcastMetrics {
    /// Payloads published.
    pub published: Counter,
    /// Payloads that could not be published.
    pub dropped: Counter,
    /// Payloads received by subscribers.
    pub delivered: Counter,
    /// Gaps received by subscribers.
    pub gaps: Counter,
    /// Topics with subscribers on this node.
    pub topics: Gauge,
}

impl BroadcastMetrics {
    /// Registers the counters in `registry` (prefix `basalt_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "broadcast_published",
            "Broadcast payloads published",
            self.published.clone(),
        );
        registry.register(
            "broadcast_dropped",
            "Broadcast payloads lost on publishing (Redis away or too slow)",
            self.dropped.clone(),
        );
        registry.register(
            "broadcast_delivered",
            "Broadcast payloads received by this node's subscribers",
            self.delivered.clone(),
        );
        registry.register(
            "broadcast_gaps",
            "Possible losses reported to this node's subscribers",
            self.gaps.clone(),
        );
        registry.register(
            "broadcast_topics",
            "Topics with subscribers on this node",
            self.topics.clone(),
        );
    }
}

/// One node's subscription to a topic. Dropping it unsubscribes.
pub struct Subscription {
    receiver: broadcast::Receiver<Delivery>,
    /// Whether the topic's upstream subscription is in place.
    live: watch::Receiver<bool>,
    metrics: BroadcastMetrics,
    _guard: Option<TopicGuard>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next delivery; `None` only once the port has shut down.
    pub async fn recv(&mut self) -> Option<Delivery> {
        match self.receiver.recv().await {
            Ok(Delivery::Message(payload)) => {
                self.metrics.delivered.inc();
                Some(Delivery::Message(payload))
            }
            Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {
                self.metrics.gaps.inc();
                Some(Delivery::Gap)
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Waits until payloads published from now on reach this subscription:
    /// at once in-process; with Redis, once this node's upstream
    /// subscription to the topic is confirmed (for as long as Redis is
    /// away: bound the wait with a timeout). Whoever reads the source of
    /// truth and then follows the topic reads it after this, so that
    /// nothing falls between the two.
    pub async fn ready(&mut self) {
        let _ = self.live.wait_for(|live| *live).await;
    }
}

/// Removes the subscription's share of its topic when dropped.
struct TopicGuard {
    topics: Weak<Topics>,
    topic: String,
}

impl Drop for TopicGuard {
    fn drop(&mut self) {
        if let Some(topics) = self.topics.upgrade() {
            topics.unsubscribe(&self.topic);
        }
    }
}

/// This node's topics with subscribers, each a local channel: the half both
/// adapters share.
pub(crate) struct Topics {
    state: Mutex<State>,
    capacity: usize,
    metrics: BroadcastMetrics,
    /// Told the name of each topic created or removed (the Redis adapter's
    /// listener, which subscribes and unsubscribes upstream).
    changes: Option<mpsc::UnboundedSender<String>>,
    /// Whether a new topic is live at once (in-process) or once subscribed
    /// upstream (Redis).
    live_at_once: bool,
}

#[derive(Default)]
struct State {
    topics: HashMap<String, Topic>,
    closed: bool,
}

struct Topic {
    sender: broadcast::Sender<Delivery>,
    live: watch::Sender<bool>,
    subscriptions: usize,
}

impl Topics {
    pub(crate) fn new(
        capacity: usize,
        metrics: BroadcastMetrics,
        changes: Option<mpsc::UnboundedSender<String>>,
    ) -> Arc<Self> {
        let live_at_once = changes.is_none();
        Arc::new(Self {
            state: Mutex::default(),
            capacity: capacity.max(1),
            metrics,
            changes,
            live_at_once,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn metrics(&self) -> &BroadcastMetrics {
        &self.metrics
    }

    pub(crate) fn subscribe(self: &Arc<Self>, topic: &str) -> Subscription {
        let mut state = self.lock();
        if state.closed {
            // Both ends of a fresh channel dropped but the receiver: `recv`
            // answers `None` at once.
            let (_, receiver) = broadcast::channel(1);
            let (_, live) = watch::channel(false);
            return Subscription {
                receiver,
                live,
                metrics: self.metrics.clone(),
                _guard: None,
            };
        }
        let entry = state.topics.entry(topic.to_owned()).or_insert_with(|| {
            if let Some(changes) = &self.changes {
                let _ = changes.send(topic.to_owned());
            }
            Topic {
                sender: broadcast::channel(self.capacity).0,
                live: watch::channel(self.live_at_once).0,
                subscriptions: 0,
            }
        });
        entry.subscriptions += 1;
        let (receiver, live) = (entry.sender.subscribe(), entry.live.subscribe());
        self.metrics.topics.set(state.topics.len() as i64);
        Subscription {
            receiver,
            live,
            metrics: self.metrics.clone(),
            _guard: Some(TopicGuard {
                topics: Arc::downgrade(self),
                topic: topic.to_owned(),
            }),
        }
    }

    fn unsubscribe(&self, topic: &str) {
        let mut state = self.lock();
        let Some(entry) = state.topics.get_mut(topic) else {
            return;
        };
        entry.subscriptions -= 1;
        if entry.subscriptions == 0 {
            state.topics.remove(topic);
            self.metrics.topics.set(state.topics.len() as i64);
            if let Some(changes) = &self.changes {
                let _ = changes.send(topic.to_owned());
            }
        }
    }

    /// Hands `delivery` to this node's subscribers of `topic`, if any.
    pub(crate) fn deliver(&self, topic: &str, delivery: Delivery) {
        if let Some(entry) = self.lock().topics.get(topic) {
            let _ = entry.sender.send(delivery);
        }
    }

    /// Whether `topic` has subscribers on this node.
    pub(crate) fn contains(&self, topic: &str) -> bool {
        self.lock().topics.contains_key(topic)
    }

    /// The topics with subscribers on this node.
    pub(crate) fn names(&self) -> Vec<String> {
        self.lock().topics.keys().cloned().collect()
    }

    /// How many topics have subscribers on this node.
    pub(crate) fn len(&self) -> usize {
        self.lock().topics.len()
    }

    /// Marks `topic` subscribed upstream (or not).
    pub(crate) fn set_live(&self, topic: &str, live: bool) {
        if let Some(entry) = self.lock().topics.get(topic) {
            entry.live.send_replace(live);
        }
    }

    /// Marks every topic not subscribed upstream (the connection broke).
    pub(crate) fn set_none_live(&self) {
        for entry in self.lock().topics.values() {
            entry.live.send_replace(false);
        }
    }

    /// Ends every subscription (`recv` answers `None`) and refuses new ones.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.topics.clear();
        self.metrics.topics.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_last_subscription_dropped_removes_its_topic_and_tells_the_listener() {
        let (changes, mut told) = mpsc::unbounded_channel();
        let topics = Topics::new(4, BroadcastMetrics::default(), Some(changes));
        let first = topics.subscribe("t");
        let second = topics.subscribe("t");
        assert_eq!(told.try_recv().ok().as_deref(), Some("t"), "created once");
        assert!(told.try_recv().is_err());
        drop(first);
        assert!(topics.contains("t"), "one subscription left");
        drop(second);
        assert!(!topics.contains("t"));
        assert_eq!(told.try_recv().ok().as_deref(), Some("t"), "removed");
    }

    #[tokio::test]
    async fn closing_ends_subscriptions_and_refuses_new_ones() {
        let topics = Topics::new(4, BroadcastMetrics::default(), None);
        let mut before = topics.subscribe("t");
        topics.close();
        assert_eq!(before.recv().await, None);
        assert_eq!(topics.subscribe("t").recv().await, None);
        assert_eq!(topics.len(), 0);
    }
}
