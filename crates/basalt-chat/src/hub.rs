//! This node's share of the fan-out: which connections listen to which
//! topics, one broadcast subscription per topic however many connections
//! share it, and the hand-over of each published frame to every such
//! connection's bounded queue ([`Outbox`]).
//!
//! The hub never blocks on a connection: it `try_send`s, and a full queue
//! marks the connection overflowed ([`Outbox::push`]); the connection
//! decides what that means ([`crate::ws`]). A topic whose broadcast reports
//! a possible loss ([`Delivery::Gap`]), and a room whose newest offset in
//! the database is ahead of what the hub has seen ([`Hub::sweep_heads`]:
//! a publish lost when a node died between commit and publish), make every
//! listening connection catch up from the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use basalt_platform::broadcast::Delivery;
use bytes::Bytes;
use futures_util::FutureExt as _;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::live::{Envelope, Live, room_topic, user_topic};

/// The longest a new topic waits for its upstream subscription before its
/// listeners catch up anyway (the heads sweep covers what is left).
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a connection's writer is handed.
#[derive(Debug)]
pub enum Outgoing {
    /// A frame to write as it is (answers, events).
    Frame(Bytes),
    /// A room's frame: a message at `offset`, or an event.
    Room {
        /// The room.
        room: Uuid,
        /// The message's offset, for `message` frames.
        offset: Option<i64>,
        /// The frame.
        frame: Bytes,
    },
    /// The user lost the room (kicked or banned): end its subscription.
    Removed {
        /// The room.
        room: Uuid,
        /// The `removed` frame.
        frame: Bytes,
    },
    /// Messages of the room may have been lost on the way: catch up from
    /// the database.
    Resync {
        /// The room.
        room: Uuid,
    },
}

/// State a connection shares with the hub.
#[derive(Debug, Default)]
pub struct ConnectionSignals {
    /// Set when the hub could not queue a frame for the connection.
    pub overflowed: AtomicBool,
    /// Woken when `overflowed` is set.
    pub overflow: Notify,
}

/// A connection's bounded queue, as the hub holds it.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// The queue.
    pub queue: mpsc::Sender<Outgoing>,
    /// Overflow signalling.
    pub signals: Arc<ConnectionSignals>,
}

impl Outbox {
    /// Queues `item` without waiting; a full queue marks the connection
    /// overflowed and drops the item (the database still has every message).
    pub fn push(&self, item: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.queue.try_send(item) {
            self.signals.overflowed.store(true, Ordering::Release);
            self.signals.overflow.notify_one();
        }
    }
}

/// What a topic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A room's messages and events.
    Room(Uuid),
    /// A user's own events.
    User(Uuid),
}

impl Topic {
    fn name(self) -> String {
        match self {
            Self::Room(room) => room_topic(room),
            Self::User(user) => user_topic(user),
        }
    }
}

struct TopicState {
    listeners: RwLock<HashMap<u64, Outbox>>,
    /// The newest offset the hub has seen published (rooms).
    seen: AtomicI64,
    stop: CancellationToken,
}

/// The node's hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    live: Live,
    topics: Mutex<HashMap<Topic, Arc<TopicState>>>,
    next_id: AtomicU64,
    closing: CancellationToken,
    connections: AtomicI64,
    gone: Notify,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// A connection counted by the hub until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    hub: Hub,
    /// The connection's id.
    pub id: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.hub.inner.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.hub.inner.gone.notify_waiters();
        }
    }
}

impl Hub {
    /// A hub subscribing through `live`'s broadcast port.
    pub fn new(live: Live) -> Self {
        Self {
            inner: Arc::new(HubInner {
                live,
                topics: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                closing: CancellationToken::new(),
                connections: AtomicI64::new(0),
                gone: Notify::new(),
            }),
        }
    }

    /// Counts a new connection; its id names it in [`Hub::listen`].
    pub fn connect(&self) -> ConnectionGuard {
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard {
            hub: self.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Open connections on this node.
    pub fn connections(&self) -> i64 {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// Cancelled when the node shuts down: connections close with 1012.
    pub fn closing(&self) -> &CancellationToken {
        &self.inner.closing
    }

    /// Closes every connection ("reconnect elsewhere") and waits, at most
    /// `grace`, until they are gone.
    pub async fn close_all(&self, grace: std::time::Duration) {
        self.inner.closing.cancel();
        let wait = async {
            loop {
                let gone = self.inner.gone.notified();
                if self.connections() <= 0 {
                    return;
                }
                gone.await;
            }
        };
        if tokio::time::timeout(grace, wait).await.is_err() {
            tracing::warn!(
                open = self.connections(),
                "chat connections still open after the shutdown grace"
            );
        }
    }

    /// Hands `topic`'s frames to `outbox` (connection `id`) from now on.
    /// For a room, `head` is its newest offset as the caller read it.
    pub fn listen(&self, topic: Topic, id: u64, outbox: Outbox, head: i64) {
        let mut topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Under the map's lock, so that the topic's last listener leaving
        // at the same time cannot end the subscription this one joins.
        let state = topics
            .entry(topic)
            .or_insert_with(|| self.start_topic(topic));
        state.seen.fetch_max(head, Ordering::AcqRel);
        state
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, outbox);
    }

    /// Stops handing `topic`'s frames to connection `id`; the topic's
    /// subscription ends with its last listener.
    pub fn unlisten(&self, topic: Topic, id: u64) {
        let mut topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(state) = topics.get(&topic) else {
            return;
        };
        let mut listeners = state
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.remove(&id);
        if listeners.is_empty() {
            drop(listeners);
            if let Some(state) = topics.remove(&topic) {
                state.stop.cancel();
            }
        }
    }

    fn start_topic(&self, topic: Topic) -> Arc<TopicState> {
        let state = Arc::new(TopicState {
            listeners: RwLock::new(HashMap::new()),
            seen: AtomicI64::new(0),
            stop: self.inner.closing.child_token(),
        });
        let mut subscription = self.inner.live.broadcast().subscribe(&topic.name());
        let task_state = state.clone();
        // One task per topic with listeners on this node; it ends with its
        // last listener or at shutdown (its token is the hub's child).
        tokio::spawn(async move {
            let state = task_state;
            // Until the upstream subscription is in place (Redis confirms
            // it), a publish can miss this node: listeners that joined
            // meanwhile catch up once it is, reading the database after it.
            let immediate = subscription.ready().now_or_never().is_some();
            if !immediate {
                tokio::select! {
                    () = state.stop.cancelled() => return,
                    _ = tokio::time::timeout(READY_WAIT, subscription.ready()) => {}
                }
                if let Topic::Room(room) = topic {
                    fan_out(&state, || Outgoing::Resync { room });
                }
            }
            loop {
                let delivery = tokio::select! {
                    () = state.stop.cancelled() => return,
                    delivery = subscription.recv() => delivery,
                };
                match delivery {
                    Some(Delivery::Message(bytes)) => {
                        if let Some(envelope) = Envelope::decode(&bytes) {
                            deliver(&state, topic, envelope);
                        }
                    }
                    Some(Delivery::Gap) => {
                        if let Topic::Room(room) = topic {
                            fan_out(&state, || Outgoing::Resync { room });
                        }
                    }
                    None => return,
                }
            }
        });
        state
    }

    /// Compares each room's newest offset in the database with what the hub
    /// has seen published, and makes the listeners of a room that is ahead
    /// catch up: the one path by which a message whose publish was lost
    /// reaches a connection with no newer message after it.
    pub async fn sweep_heads(&self, chat: &crate::service::Chat) {
        let rooms: Vec<(Uuid, Arc<TopicState>)> = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(topic, state)| match topic {
                Topic::Room(room) => Some((*room, state.clone())),
                Topic::User(_) => None,
            })
            .collect();
        if rooms.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = rooms.iter().map(|(id, _)| *id).collect();
        let heads = match chat.heads(&ids).await {
            Ok(heads) => heads,
            Err(_) => return,
        };
        for (room, state) in rooms {
            let Some(&head) = heads.get(&room) else {
                continue;
            };
            if state.seen.fetch_max(head, Ordering::AcqRel) < head {
                fan_out(&state, || Outgoing::Resync { room });
            }
        }
    }
}

fn deliver(state: &TopicState, topic: Topic, envelope: Envelope) {
    match (topic, envelope.removed_from) {
        (_, Some(room)) => fan_out(state, || Outgoing::Removed {
            room,
            frame: envelope.frame.clone(),
        }),
        (Topic::Room(room), None) => {
            if let Some(offset) = envelope.offset {
                state.seen.fetch_max(offset, Ordering::AcqRel);
            }
            fan_out(state, || Outgoing::Room {
                room,
                offset: envelope.offset,
                frame: envelope.frame.clone(),
            });
        }
        (Topic::User(_), None) => fan_out(state, || Outgoing::Frame(envelope.frame.clone())),
    }
}

fn fan_out(state: &TopicState, item: impl Fn() -> Outgoing) {
    for outbox in state
        .listeners
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
    {
        outbox.push(item());
    }
}
