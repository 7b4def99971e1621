//! The embedded adapter: one node's memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::{Cache, CacheLabels};

/// One node's cache, bounded in entries. Also the local layer of
/// [`super::RedisCache`].
#[derive(Debug)]
pub struct InProcessCache {
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    generations: Mutex<HashMap<String, u64>>,
    max_entries: usize,
    lookups: Family<CacheLabels, Counter>,
}

impl InProcessCache {
    /// A cache of at most `max_entries` values, counting hits and misses in `lookups`.
    pub fn new(max_entries: usize, lookups: Family<CacheLabels, Counter>) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generations: Mutex::new(HashMap::new()),
            max_entries,
            lookups,
        }
    }

    /// The value for `key` if present and fresh; counts nothing.
    pub(super) fn lookup(&self, key: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` under `key` for `ttl`, evicting when full.
    pub(super) fn store(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.max_entries {
            let now = Instant::now();
            entries.retain(|_, (_, expires)| *expires > now);
            // Still full: start over rather than track recency; a cache may forget.
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (value, Instant::now() + ttl));
    }

    /// Drops the entries of `namespace` (keys `"{namespace}:…"`), to free
    /// memory once they can no longer be reached.
    pub(super) fn drop_namespace(&self, namespace: &str) {
        let prefix = format!("{namespace}:");
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|key, _| !key.starts_with(&prefix));
    }

    /// Counts a lookup in `basalt_cache_lookups`.
    pub(super) fn count(&self, result: &'static str, layer: &'static str) {
        self.lookups
            .get_or_create(&CacheLabels { result, layer })
            .inc();
    }
}

impl Cache for InProcessCache {
    fn generation<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Option<u64>> {
        let generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = generations.get(namespace).copied().unwrap_or(0);
        Box::pin(async move { Some(generation) })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Vec<u8>>> {
        let found = self.lookup(key);
        match found {
            Some(_) => self.count("hit", "local"),
            None => self.count("miss", ""),
        }
        Box::pin(async move { found })
    }

    fn put<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Duration) -> BoxFuture<'a, ()> {
        self.store(key, value, ttl);
        Box::pin(async {})
    }

    fn invalidate<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, ()> {
        {
            let mut generations = self
                .generations
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *generations.entry(namespace.to_owned()).or_insert(0) += 1;
        }
        self.drop_namespace(namespace);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max: usize) -> InProcessCache {
        InProcessCache::new(max, Family::default())
    }

    #[tokio::test]
    async fn stores_expires_and_invalidates_by_generation() {
        let c = cache(10);
        let g = c.generation("blog").await.expect("always known");
        let key = format!("blog:{g}:tags");
        c.put(&key, b"[1]".to_vec(), Duration::from_secs(60)).await;
        assert_eq!(c.get(&key).await, Some(b"[1]".to_vec()));
        c.invalidate("blog").await;
        let g2 = c.generation("blog").await.expect("always known");
        assert_ne!(g, g2);
        assert_eq!(c.get(&format!("blog:{g2}:tags")).await, None);
        assert_eq!(
            c.lookup(&key),
            None,
            "the old generation's entries are freed"
        );
        c.put("short", vec![1], Duration::ZERO).await;
        assert_eq!(c.get("short").await, None, "expired at once");
        assert_eq!(
            c.generation("other").await,
            Some(0),
            "namespaces are independent"
        );
    }

    #[test]
    fn stays_within_its_bound() {
        let c = cache(3);
        for i in 0..10 {
            c.store(&i.to_string(), vec![0], Duration::from_secs(60));
        }
        assert!(c.entries.lock().expect("lock").len() <= 3);
        assert_eq!(c.lookup("9"), Some(vec![0]), "the newest entry is kept");
    }
}
