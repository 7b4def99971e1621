//! The bus port, and its in-process adapter.

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::live::LiveHub;
use super::{Consumer, Event, deliver, log_consumer_failure};
use crate::db::Db;

/// Where the relay hands events over.
pub trait Bus: Send + Sync + 'static {
    /// Publishes `batch` (oldest first); returns the ids it has taken
    /// responsibility for. The others stay in the outbox and are retried.
    fn publish<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, HashSet<Uuid>>;
}

/// The embedded bus: the relay runs every interested consumer itself, so an
/// event counts as published once each of them has processed it; it then
/// goes to the node's live listeners.
pub(super) struct InProcessBus {
    db: Db,
    consumers: Vec<Arc<Consumer>>,
    live: LiveHub,
}

impl InProcessBus {
    pub(super) fn new(db: Db, consumers: Vec<Arc<Consumer>>, live: LiveHub) -> Self {
        Self {
            db,
            consumers,
            live,
        }
    }
}

impl Bus for InProcessBus {
    fn publish<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, HashSet<Uuid>> {
        Box::pin(async move {
            let mut published = HashSet::new();
            for event in batch {
                let mut ok = true;
                for consumer in self.consumers.iter().filter(|c| c.wants(&event.kind)) {
                    if let Err(error) = deliver(&self.db, consumer, event).await {
                        log_consumer_failure(consumer, event, &error);
                        ok = false;
                    }
                }
                if ok {
                    published.insert(event.id);
                    self.live.send(event);
                }
            }
            published
        })
    }
}
