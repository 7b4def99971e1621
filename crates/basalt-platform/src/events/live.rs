//! The node's live-event hub: one broadcast channel that every
//! [`LiveEvents`] listener of the node reads, fed by the in-process bus or by
//! the RabbitMQ fan-out (see the [module docs](super)).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::Stream;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Event;

pub use tokio::sync::broadcast::error::RecvError;

/// Events a listener may fall behind by before it loses the oldest.
pub const LIVE_CAPACITY: usize = 1024;
/// Event ids the hub remembers to drop a redelivered event (the outbox
/// relays at least once; live listeners hear at most once).
const REMEMBERED: usize = 4096;

/// The sending side, shared by the event service and whatever feeds it.
#[derive(Clone)]
pub(super) struct LiveHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    sender: broadcast::Sender<Arc<Event>>,
    recent: Mutex<RecentIds>,
    ended: CancellationToken,
    hearing: watch::Sender<bool>,
}

impl LiveHub {
    /// A hub; `hearing` says whether it already hears the cluster's events
    /// (in-process: yes; with RabbitMQ: once the fan-out consumes).
    pub(super) fn new(hearing: bool) -> Self {
        Self {
            inner: Arc::new(HubInner {
                sender: broadcast::channel(LIVE_CAPACITY).0,
                recent: Mutex::new(RecentIds::default()),
                ended: CancellationToken::new(),
                hearing: watch::Sender::new(hearing),
            }),
        }
    }

    /// Hands `event` to every listener, unless none listens or it was
    /// already handed over.
    pub(super) fn send(&self, event: &Event) {
        if self.inner.sender.receiver_count() == 0 {
            return;
        }
        let mut recent = self
            .inner
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if recent.first_time(event.id) {
            // Fails only when the last listener just went: nobody to tell.
            let _ = self.inner.sender.send(Arc::new(event.clone()));
        }
    }

    pub(super) fn listen(&self, kinds: &[&str]) -> LiveEvents {
        LiveEvents {
            receiver: self.inner.sender.subscribe(),
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            ended: self.inner.ended.clone(),
        }
    }

    /// Ends every listener's stream, present and future (node shutdown).
    pub(super) fn end(&self) {
        self.inner.ended.cancel();
    }

    pub(super) fn set_hearing(&self, hearing: bool) {
        self.inner.hearing.send_replace(hearing);
    }

    /// Resolves once the hub hears the cluster's events.
    pub(super) async fn hearing(&self) {
        let mut hearing = self.inner.hearing.subscribe();
        // The sender lives as long as the hub, which `self` holds.
        let _ = hearing.wait_for(|h| *h).await;
    }
}

/// The last [`REMEMBERED`] event ids, oldest first.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<Uuid>,
    seen: HashSet<Uuid>,
}

impl RecentIds {
    /// Remembers `id`; `false` if it was remembered already.
    fn first_time(&mut self, id: Uuid) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }
}

/// A subscription to live events of some kinds, from
/// [`Events::listen`](super::Events::listen): read it with
/// [`recv`](Self::recv), or turn it into a [`Stream`] with
/// [`into_stream`](Self::into_stream). It hears events published after it
/// was made, each at most once, until the node shuts down.
pub struct LiveEvents {
    receiver: broadcast::Receiver<Arc<Event>>,
    kinds: Vec<String>,
    ended: CancellationToken,
}

impl std::fmt::Debug for LiveEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveEvents")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl LiveEvents {
    /// The next event of the kinds listened for (shared, not copied, between
    /// listeners). `Err(RecvError::Lagged(n))`: this listener fell more than
    /// [`LIVE_CAPACITY`] events behind and lost the `n` oldest; the next call
    /// goes on with what is left. `Err(RecvError::Closed)`: the node is
    /// shutting down, and nothing more will come.
    pub async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        loop {
            let event = tokio::select! {
                biased;
                () = self.ended.cancelled() => return Err(RecvError::Closed),
                received = self.receiver.recv() => received?,
            };
            if self.kinds.iter().any(|k| *k == event.kind) {
                return Ok(event);
            }
        }
    }

    /// The events as a stream that ends when the node shuts down. Events
    /// lost by lagging behind are skipped (and logged at debug level): use
    /// [`recv`](Self::recv) to notice them.
    pub fn into_stream(self) -> impl Stream<Item = Arc<Event>> + Send + 'static {
        futures_util::stream::unfold(self, |mut live| async move {
            loop {
                match live.recv().await {
                    Ok(event) => return Some((event, live)),
                    Err(RecvError::Lagged(lost)) => {
                        tracing::debug!(lost, kinds = ?live.kinds, "a live-event listener fell behind");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest_beyond_their_capacity() {
        let mut recent = RecentIds::default();
        let first = Uuid::now_v7();
        assert!(recent.first_time(first));
        assert!(!recent.first_time(first));
        for _ in 0..REMEMBERED {
            assert!(recent.first_time(Uuid::now_v7()));
        }
        assert_eq!(recent.order.len(), REMEMBERED);
        assert_eq!(recent.seen.len(), REMEMBERED);
        assert!(recent.first_time(first), "forgotten, so new again");
    }

    #[tokio::test]
    async fn listeners_get_their_kinds_once_and_end_with_the_hub() {
        let hub = LiveHub::new(true);
        let mut articles = hub.listen(&["blog.article_published"]);
        let mut both = hub.listen(&["blog.article_published", "blog.comment_added"]);
        let article = Event::new("blog.article_published", &1);
        let comment = Event::new("blog.comment_added", &2);
        hub.send(&article);
        hub.send(&article); // redelivered by the outbox: heard once
        hub.send(&comment);
        assert_eq!(articles.recv().await.expect("event").id, article.id);
        assert_eq!(both.recv().await.expect("event").id, article.id);
        assert_eq!(both.recv().await.expect("event").id, comment.id);
        hub.end();
        assert_eq!(articles.recv().await, Err(RecvError::Closed));
        assert_eq!(
            hub.listen(&["blog.comment_added"]).recv().await,
            Err(RecvError::Closed)
        );
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_is_told_and_keeps_the_newest() {
        let hub = LiveHub::new(true);
        let mut slow = hub.listen(&["k"]);
        let events: Vec<Event> = (0..LIVE_CAPACITY + 3)
            .map(|i| Event::new("k", &i))
            .collect();
        for event in &events {
            hub.send(event);
        }
        assert_eq!(slow.recv().await, Err(RecvError::Lagged(3)));
        assert_eq!(slow.recv().await.expect("event").id, events[3].id);
    }
}
