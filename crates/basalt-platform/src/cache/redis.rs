//! The distributed adapter: entries and generations shared through Redis,
//! with this node's memory as a first layer.
//!
//! - The generation of a namespace is a random token in Redis, read on every
//!   lookup (one round trip) so that a write through any node is seen at once
//!   by every node. Random rather than a counter: a Redis that restarts empty
//!   can never hand out a generation that old entries were cached under.
//! - An entry's key includes its generation, so an entry never changes and the
//!   local layer may keep a copy without any invalidation protocol.
//! - An invalidation replaces the token and is published on a channel, so
//!   other nodes free the dead entries from memory promptly.
//! - Redis unreachable: lookups bypass the cache (reads go to the database)
//!   and invalidations are retried every second until Redis answers, before
//!   this node trusts a generation again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use redis::AsyncCommands as _;

use super::{Cache, CacheLabels, InProcessCache};
use crate::redis::Redis;
use crate::supervisor::{BackgroundService, RunsOn, Stage};

const GENERATION_PREFIX: &str = "cache:gen:";
const ENTRY_PREFIX: &str = "cache:entry:";
const INVALIDATIONS_CHANNEL: &str = "cache:invalidations";
/// How long this node keeps its own copy of a shared entry. Entries never
/// change, so this only bounds memory and lets Redis's expiry take effect.
const LOCAL_TTL: Duration = Duration::from_secs(30);
/// How often failed invalidations are retried.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Reads the generation, creating it when Redis has none (first use, or a
/// Redis that restarted empty), in one atomic step.
const GENERATION_SCRIPT: &str = r"
local g = redis.call('GET', KEYS[1])
if not g then
  redis.call('SET', KEYS[1], ARGV[1])
  g = ARGV[1]
end
return g
";

/// The cache shared by every node through Redis.
pub struct RedisCache {
    shared: Arc<Shared>,
}

struct Shared {
    redis: Redis,
    local: InProcessCache,
    /// Namespaces whose invalidation has not reached Redis yet.
    pending: Mutex<HashSet<String>>,
    generation_script: redis::Script,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").finish_non_exhaustive()
    }
}

impl RedisCache {
    /// A cache over `redis` with a local layer of at most `max_local_entries`.
    /// Its invalidation listener and retry loop run as the supervised
    /// services [`RedisCache::background_services`] returns.
    pub fn new(
        redis: Redis,
        max_local_entries: usize,
        lookups: Family<CacheLabels, Counter>,
    ) -> Self {
        let shared = Arc::new(Shared {
            redis,
            local: InProcessCache::new(max_local_entries, super::DEFAULT_MAX_BYTES, lookups),
            pending: Mutex::new(HashSet::new()),
            generation_script: redis::Script::new(GENERATION_SCRIPT),
        });
        Self { shared }
    }

    /// The cache's loops, on every node (each node has its own local layer
    /// and its own unsent invalidations), stopped last at shutdown: the
    /// listener that frees entries other nodes invalidated, and the retry
    /// of invalidations that could not reach Redis.
    pub fn background_services(&self) -> Vec<BackgroundService> {
        let (listener, retry) = (Arc::clone(&self.shared), Arc::clone(&self.shared));
        vec![
            BackgroundService::new(
                "cache.invalidation_listener",
                RunsOn::EveryNode,
                Stage::Support,
                move |stop| async move {
                    stop.run_until_cancelled(listen_for_invalidations(listener))
                        .await;
                },
            ),
            BackgroundService::new(
                "cache.invalidation_retry",
                RunsOn::EveryNode,
                Stage::Support,
                move |stop| async move {
                    stop.run_until_cancelled(retry_pending_invalidations(Arc::clone(&retry)))
                        .await;
                    // A last try, so that an invalidation made just before
                    // shutdown is not lost with this node's memory.
                    if retry.has_pending() {
                        let _ = tokio::time::timeout(RETRY_EVERY, retry.flush_pending()).await;
                    }
                },
            ),
        ]
    }
}

impl Shared {
    /// Replaces the generation of each namespace and tells the other nodes.
    async fn publish_invalidation(&self, namespace: &str) -> redis::RedisResult<()> {
        let mut conn = self.redis.connection();
        let token = random_token();
        let result = redis::pipe()
            .atomic()
            .set(
                self.redis.key(&format!("{GENERATION_PREFIX}{namespace}")),
                token,
            )
            .ignore()
            .publish(self.redis.key(INVALIDATIONS_CHANNEL), namespace)
            .ignore()
            .query_async::<()>(&mut conn)
            .await;
        self.redis.observe(&result);
        result
    }

    /// Sends every pending invalidation; true when none is left.
    async fn flush_pending(&self) -> bool {
        let namespaces: Vec<String> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        for namespace in namespaces {
            if self.publish_invalidation(&namespace).await.is_err() {
                return false;
            }
            tracing::info!(
                namespace,
                "cache invalidation delivered after Redis came back"
            );
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&namespace);
        }
        true
    }

    fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

impl Cache for RedisCache {
    fn generation<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move {
            let shared = &self.shared;
            // Our own unsent invalidation would make Redis's generation a lie.
            if shared.has_pending() && !shared.flush_pending().await {
                shared.local.count("bypass", "");
                return None;
            }
            let mut conn = shared.redis.connection();
            let result = shared
                .generation_script
                .key(shared.redis.key(&format!("{GENERATION_PREFIX}{namespace}")))
                .arg(random_token())
                .invoke_async::<u64>(&mut conn)
                .await;
            shared.redis.observe(&result);
            match result {
                Ok(generation) => Some(generation),
                Err(error) => {
                    tracing::debug!(%error, "cache bypassed: Redis unavailable");
                    shared.local.count("bypass", "");
                    None
                }
            }
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let shared = &self.shared;
            if let Some(hit) = shared.local.lookup(key) {
                shared.local.count("hit", "local");
                return Some(hit);
            }
            let mut conn = shared.redis.connection();
            let result = conn
                .get::<_, Option<Vec<u8>>>(shared.redis.key(&format!("{ENTRY_PREFIX}{key}")))
                .await;
            shared.redis.observe(&result);
            match result {
                Ok(Some(value)) => {
                    shared.local.count("hit", "shared");
                    shared.local.store(key, value.clone(), LOCAL_TTL);
                    Some(value)
                }
                Ok(None) | Err(_) => {
                    shared.local.count("miss", "");
                    None
                }
            }
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let shared = &self.shared;
            shared.local.store(key, value.clone(), ttl.min(LOCAL_TTL));
            let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut conn = shared.redis.connection();
            let result = conn
                .pset_ex::<_, _, ()>(
                    shared.redis.key(&format!("{ENTRY_PREFIX}{key}")),
                    value,
                    millis,
                )
                .await;
            shared.redis.observe(&result);
        })
    }

    fn invalidate<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let shared = &self.shared;
            shared.local.drop_namespace(namespace);
            if let Err(error) = shared.publish_invalidation(namespace).await {
                tracing::warn!(
                    namespace,
                    %error,
                    "cache invalidation could not reach Redis; retrying every second"
                );
                shared
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(namespace.to_owned());
            }
        })
    }
}

/// Frees local entries of namespaces invalidated on other nodes. Correctness
/// does not depend on it (generations do that); memory does.
async fn listen_for_invalidations(shared: Arc<Shared>) {
    let mut delay = Duration::from_millis(100);
    loop {
        match shared.redis.client().get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub
                    .subscribe(shared.redis.key(INVALIDATIONS_CHANNEL))
                    .await
                    .is_ok()
                {
                    delay = Duration::from_millis(100);
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(namespace) = message.get_payload::<String>() {
                            shared.local.drop_namespace(&namespace);
                        }
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "cache invalidation listener: Redis unavailable"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn retry_pending_invalidations(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(RETRY_EVERY).await;
        if shared.has_pending() {
            shared.flush_pending().await;
        }
    }
}

/// A generation token no earlier token equals: random, mixed with the clock
/// in case the OS's generator ever fails (it does not on supported systems).
fn random_token() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    u64::from_le_bytes(bytes) ^ nanos
}
