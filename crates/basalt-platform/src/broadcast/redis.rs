//! The distributed adapter: payloads through Redis pub/sub, one channel per
//! topic (`{key_prefix}:bc:{topic}`).
//!
//! - Publishing is a `PUBLISH` on the shared connection, within one
//!   command's timeout; when it fails the payload is dropped and counted.
//! - Each node has one dedicated pub/sub connection, owned by a supervised
//!   listener: it subscribes a channel when the topic gets its first local
//!   subscription and unsubscribes it with the last, and hands each message
//!   to the topic's local channel (so a node hears its own publishes the
//!   same way as the others').
//! - When that connection breaks (Redis restarted, network), the listener
//!   reconnects with backoff, subscribes every topic again, and sends every
//!   local subscriber a [`Delivery::Gap`]: what was published meanwhile is
//!   lost. It also pings Redis while idle, so a connection that went silent
//!   is noticed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::{Broadcast, BroadcastMetrics, Delivery, Subscription, Topics};
use crate::redis::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT, Redis};
use crate::supervisor::{BackgroundService, RunsOn, Stage};

/// How often an idle pub/sub connection is checked.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Backoff between attempts to reconnect.
const MIN_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Fan-out to every node through Redis pub/sub.
pub struct RedisBroadcast {
    redis: Redis,
    topics: Arc<Topics>,
    /// The listener's inbox of topics created or removed; taken when its
    /// background service is made.
    changes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl std::fmt::Debug for RedisBroadcast {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroadcast")
            .field("topics", &self.topics.len())
            .finish_non_exhaustive()
    }
}

impl RedisBroadcast {
    /// A broadcast over `redis`, whose subscribers may fall `capacity`
    /// payloads behind before they get a gap. Nothing is received until the
    /// listener, [`RedisBroadcast::background_services`], runs.
    pub fn new(redis: Redis, capacity: usize, metrics: BroadcastMetrics) -> Self {
        let (changes, inbox) = mpsc::unbounded_channel();
        Self {
            redis,
            topics: Topics::new(capacity, metrics, Some(changes)),
            changes: std::sync::Mutex::new(Some(inbox)),
        }
    }

    /// How many topics have subscribers on this node.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// The listener, on every node, stopped last at shutdown (when it
    /// stops, every subscription ends). Made once: a second call returns
    /// nothing.
    pub fn background_services(&self) -> Vec<BackgroundService> {
        let inbox = self
            .changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(inbox) = inbox else {
            return Vec::new();
        };
        let listener = Listener {
            redis: self.redis.clone(),
            topics: Arc::clone(&self.topics),
            channel_prefix: self.redis.key("bc:"),
        };
        vec![BackgroundService::new(
            "broadcast.listener",
            RunsOn::EveryNode,
            Stage::Support,
            move |stop| async move {
                let topics = Arc::clone(&listener.topics);
                stop.run_until_cancelled(listener.run(inbox)).await;
                topics.close();
            },
        )]
    }
}

impl Broadcast for RedisBroadcast {
    fn publish<'a>(&'a self, topic: &'a str, payload: Bytes) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.redis.connection();
            let channel = self.redis.key(&format!("bc:{topic}"));
            let sent = tokio::time::timeout(
                RESPONSE_TIMEOUT,
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(payload.as_ref())
                    .query_async::<i64>(&mut conn),
            )
            .await
            .unwrap_or_else(|_| Err(timed_out()));
            self.redis.observe(&sent);
            let metrics = self.topics.metrics();
            match sent {
                Ok(_) => metrics.published.inc(),
                Err(error) => {
                    tracing::debug!(%error, topic, "broadcast dropped: Redis unavailable");
                    metrics.dropped.inc()
                }
            };
        })
    }

    fn subscribe(&self, topic: &str) -> Subscription {
        self.topics.subscribe(topic)
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

/// Owner of the node's pub/sub connection.
struct Listener {
    redis: Redis,
    topics: Arc<Topics>,
    /// `{key_prefix}:bc:`, before every topic's channel name.
    channel_prefix: String,
}

/// Why a connection's session ended.
enum Ended {
    /// The connection broke or stopped answering: reconnect. With the
    /// topics that were subscribed upstream, whose subscribers may have
    /// lost messages.
    Broken(HashSet<String>),
    /// The port is gone.
    Closed,
}

impl Listener {
    fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.channel_prefix)
    }

    async fn run(self, mut inbox: mpsc::UnboundedReceiver<String>) {
        let mut delay = MIN_DELAY;
        // Topics subscribed upstream when the last connection broke.
        let mut interrupted = HashSet::new();
        let mut lost = false;
        loop {
            if let Some((sink, stream)) = self.connect().await {
                if lost {
                    tracing::info!("broadcast listener reconnected to Redis");
                }
                lost = true;
                delay = MIN_DELAY;
                match self
                    .session(sink, stream, &mut inbox, &mut interrupted)
                    .await
                {
                    Ended::Closed => return,
                    Ended::Broken(upstream) => interrupted.extend(upstream),
                }
                self.topics.set_none_live();
                tracing::warn!("broadcast listener lost Redis; reconnecting");
            }
            // Topics come and go meanwhile; the next session subscribes
            // whatever is there then, so the changes themselves are moot.
            let pause = tokio::time::sleep(delay);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    change = inbox.recv() => if change.is_none() { return },
                }
            }
            delay = (delay * 2).min(MAX_DELAY);
        }
    }

    async fn connect(&self) -> Option<(PubSubSink, PubSubStream)> {
        match tokio::time::timeout(CONNECT_TIMEOUT, self.redis.client().get_async_pubsub()).await {
            Ok(Ok(pubsub)) => Some(pubsub.split()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "broadcast listener: Redis unavailable");
                None
            }
            Err(_) => None,
        }
    }

    /// Subscribes every local topic, reports a gap to those that were
    /// subscribed when a connection broke (`interrupted`, then emptied: what
    /// was published meanwhile is lost to them), then follows messages and topic changes
    /// until the connection breaks.
    async fn session(
        &self,
        mut sink: PubSubSink,
        mut stream: PubSubStream,
        inbox: &mut mpsc::UnboundedReceiver<String>,
        interrupted: &mut HashSet<String>,
    ) -> Ended {
        let mut upstream: HashSet<String> = HashSet::new();
        let topics = self.topics.names();
        if !topics.is_empty() {
            let channels: Vec<String> = topics.iter().map(|t| self.channel(t)).collect();
            if !answered(sink.subscribe(channels)).await {
                return Ended::Broken(upstream);
            }
            for topic in topics {
                self.topics.set_live(&topic, true);
                if interrupted.contains(&topic) {
                    self.topics.deliver(&topic, Delivery::Gap);
                }
                upstream.insert(topic);
            }
        }
        interrupted.clear();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.reset();
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Ended::Broken(upstream) };
                    ping.reset();
                    let channel = message.get_channel_name();
                    if let Some(topic) = channel.strip_prefix(&self.channel_prefix) {
                        let payload = Bytes::copy_from_slice(message.get_payload_bytes());
                        self.topics.deliver(topic, Delivery::Message(payload));
                    }
                }
                change = inbox.recv() => {
                    let Some(topic) = change else { return Ended::Closed };
                    if !self.sync(&mut sink, &mut upstream, topic).await {
                        return Ended::Broken(upstream);
                    }
                }
                _ = ping.tick() => {
                    if !answered(sink.ping::<redis::Value>()).await {
                        return Ended::Broken(upstream);
                    }
                }
            }
        }
    }

    /// Makes the upstream subscription of `topic` match whether it has local
    /// subscribers now (changes may have cancelled each other out); false
    /// when Redis did not answer.
    async fn sync(
        &self,
        sink: &mut PubSubSink,
        upstream: &mut HashSet<String>,
        topic: String,
    ) -> bool {
        let wanted = self.topics.contains(&topic);
        if wanted == upstream.contains(&topic) {
            return true;
        }
        let channel = self.channel(&topic);
        if wanted {
            if !answered(sink.subscribe(channel)).await {
                return false;
            }
            self.topics.set_live(&topic, true);
            upstream.insert(topic);
        } else {
            if !answered(sink.unsubscribe(channel)).await {
                return false;
            }
            upstream.remove(&topic);
        }
        true
    }
}

/// Whether a pub/sub command succeeded within a command's timeout (a
/// subscription's reply may wait behind a burst of messages: some slack).
async fn answered<T>(command: impl Future<Output = redis::RedisResult<T>>) -> bool {
    matches!(
        tokio::time::timeout(RESPONSE_TIMEOUT * 4, command).await,
        Ok(Ok(_))
    )
}
