//! Caching behind a port, with two adapters chosen by configuration:
//! [`InProcessCache`] (one node; the default) and [`RedisCache`] (shared by
//! every node, with a small in-process layer in front).
//!
//! Invalidation is by *generation*: each namespace has a generation token
//! that every write replaces, and cached keys include it, so one write makes
//! all of a namespace's entries unreachable at once. Coarse, but simple to get
//! right: an entry's key names the generation it was computed under, so an
//! entry never changes, and a reader that has the current generation can never
//! see data older than the last write made through any node's cache. Use
//! [`cached`] rather than the raw port.

mod in_process;
mod redis;

use std::future::Future;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use in_process::{DEFAULT_MAX_BYTES, InProcessCache};
pub use redis::RedisCache;

/// Where cached values live.
pub trait Cache: Send + Sync + 'static {
    /// The current generation of `namespace`, or `None` when the cache cannot
    /// tell right now (its store is unreachable): the caller must then bypass
    /// the cache, since it cannot know which entries are fresh.
    fn generation<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Option<u64>>;
    /// The value for `key`, if cached and not expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Vec<u8>>>;
    /// Stores `value` for `ttl` (best effort).
    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()>;
    /// Makes every entry of `namespace` unreachable, on every node.
    fn invalidate<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, ()>;
}

/// Labels of the `basalt_cache_lookups` counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit`, `miss`, or `bypass` (the cache could not be consulted).
    pub result: &'static str,
    /// Which layer answered a hit: `local` (this node's memory) or `shared`
    /// (Redis); empty otherwise.
    pub layer: &'static str,
}

/// The cached bytes of `key` in `namespace`, or `compute`'s, which are then
/// cached for `ttl`. When the cache is unavailable, `compute` runs and its
/// result is served uncached.
pub async fn cached<E, F>(
    cache: &dyn Cache,
    namespace: &str,
    key: &str,
    ttl: Duration,
    compute: F,
) -> Result<Vec<u8>, E>
where
    F: Future<Output = Result<Vec<u8>, E>>,
{
    let Some(generation) = cache.generation(namespace).await else {
        return compute.await;
    };
    let key = format!("{namespace}:{generation}:{key}");
    if let Some(hit) = cache.get(&key).await {
        return Ok(hit);
    }
    let bytes = compute.await?;
    cache.put(&key, bytes.clone(), ttl).await;
    Ok(bytes)
}
