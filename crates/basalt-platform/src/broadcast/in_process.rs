//! The embedded adapter: one node's topics, in memory.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{Broadcast, BroadcastMetrics, Delivery, Subscription, Topics};

/// Fan-out within this process: right for a single node (with several
/// nodes, each would hear only its own publishers).
pub struct InProcessBroadcast {
    topics: Arc<Topics>,
}

impl std::fmt::Debug for InProcessBroadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessBroadcast")
            .field("topics", &self.topics.len())
            .finish()
    }
}

impl InProcessBroadcast {
    /// A broadcast whose subscribers may fall `capacity` payloads behind
    /// (see [`super::DEFAULT_CAPACITY`]) before they get a gap.
    pub fn new(capacity: usize, metrics: BroadcastMetrics) -> Self {
        Self {
            topics: Topics::new(capacity, metrics, None),
        }
    }

    /// How many topics have subscribers.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }
}

impl Broadcast for InProcessBroadcast {
    fn publish<'a>(&'a self, topic: &'a str, payload: Bytes) -> BoxFuture<'a, ()> {
        self.topics.metrics().published.inc();
        self.topics.deliver(topic, Delivery::Message(payload));
        Box::pin(async {})
    }

    fn subscribe(&self, topic: &str) -> Subscription {
        self.topics.subscribe(topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &'static str) -> Option<Delivery> {
        Some(Delivery::Message(Bytes::from_static(text.as_bytes())))
    }

    #[tokio::test]
    async fn every_subscriber_of_a_topic_gets_its_payloads_and_only_those() {
        let port = InProcessBroadcast::new(16, BroadcastMetrics::default());
        let (mut a, mut b, mut other) = (
            port.subscribe("room"),
            port.subscribe("room"),
            port.subscribe("elsewhere"),
        );
        a.ready().await;
        port.publish("room", Bytes::from_static(b"hello")).await;
        port.publish("elsewhere", Bytes::from_static(b"there"))
            .await;
        assert_eq!(a.recv().await, message("hello"));
        assert_eq!(b.recv().await, message("hello"));
        assert_eq!(other.recv().await, message("there"));
        assert_eq!(port.topic_count(), 2);
        drop((a, b));
        assert_eq!(port.topic_count(), 1, "an unused topic is removed");
    }

    #[tokio::test]
    async fn a_subscriber_that_lags_gets_a_gap_then_the_latest_payloads() {
        let metrics = BroadcastMetrics::default();
        let port = InProcessBroadcast::new(2, metrics.clone());
        let mut slow = port.subscribe("room");
        for text in ["1", "2", "3", "4"] {
            port.publish("room", Bytes::from_static(text.as_bytes()))
                .await;
        }
        assert_eq!(slow.recv().await, Some(Delivery::Gap));
        assert_eq!(slow.recv().await, message("3"));
        assert_eq!(slow.recv().await, message("4"));
        assert_eq!(metrics.gaps.get(), 1);
        assert_eq!(metrics.delivered.get(), 2);
        assert_eq!(metrics.published.get(), 4);
    }

    #[tokio::test]
    async fn a_payload_published_to_a_topic_nobody_follows_is_gone() {
        let port = InProcessBroadcast::new(4, BroadcastMetrics::default());
        port.publish("room", Bytes::from_static(b"early")).await;
        let mut late = port.subscribe("room");
        port.publish("room", Bytes::from_static(b"late")).await;
        assert_eq!(late.recv().await, message("late"));
    }
}
