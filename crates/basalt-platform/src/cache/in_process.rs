//! The embedded adapter: one node's memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::{Cache, CacheLabels};

/// Memory one node's cache may hold in values, by default.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// One node's cache, bounded in entries and in bytes. Also the local layer
/// of [`super::RedisCache`].
#[derive(Debug)]
pub struct InProcessCache {
    entries: Mutex<Entries>,
    generations: Mutex<HashMap<String, u64>>,
    max_entries: usize,
    max_bytes: usize,
    lookups: Family<CacheLabels, Counter>,
}

/// The values and the bytes they hold (keys and values).
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, (Vec<u8>, Instant)>,
    bytes: usize,
}

impl Entries {
    fn retain(&mut self, mut keep: impl FnMut(&String, &Instant) -> bool) {
        let mut bytes = self.bytes;
        self.map.retain(|key, (value, expires)| {
            let kept = keep(key, expires);
            if !kept {
                bytes -= key.len() + value.len();
            }
            kept
        });
        self.bytes = bytes;
    }
}

impl InProcessCache {
    /// A cache of at most `max_entries` values and `max_bytes` of keys and
    /// values, counting hits and misses in `lookups`.
    pub fn new(
        max_entries: usize,
        max_bytes: usize,
        lookups: Family<CacheLabels, Counter>,
    ) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            generations: Mutex::new(HashMap::new()),
            max_entries,
            max_bytes,
            lookups,
        }
    }

    /// The value for `key` if present and fresh; counts nothing.
    pub(super) fn lookup(&self, key: &str) -> Option<Vec<u8>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .map
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v.clone())
    }

    /// Stores `value` under `key` for `ttl`, evicting when full.
    pub(super) fn store(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let size = key.len() + value.len();
        if size > self.max_bytes {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((old, _)) = entries.map.remove(key) {
            entries.bytes -= key.len() + old.len();
        }
        let full = |e: &Entries| e.map.len() >= self.max_entries || e.bytes + size > self.max_bytes;
        if full(&entries) {
            let now = Instant::now();
            entries.retain(|_, expires| *expires > now);
            // Still full: start over rather than track recency; a cache may forget.
            if full(&entries) {
                *entries = Entries::default();
            }
        }
        entries.bytes += size;
        entries
            .map
            .insert(key.to_owned(), (value, Instant::now() + ttl));
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
        InProcessCache::new(max, DEFAULT_MAX_BYTES, Family::default())
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
        assert!(c.entries.lock().expect("lock").map.len() <= 3);
        assert_eq!(c.lookup("9"), Some(vec![0]), "the newest entry is kept");
    }

    #[test]
    fn stays_within_its_byte_budget() {
        let c = InProcessCache::new(1000, 100, Family::default());
        for i in 0..10 {
            c.store(&format!("k{i}"), vec![0; 30], Duration::from_secs(60));
            let entries = c.entries.lock().expect("lock");
            let counted: usize = entries
                .map
                .iter()
                .map(|(k, (v, _))| k.len() + v.len())
                .sum();
            assert_eq!(entries.bytes, counted, "the byte count is exact");
            assert!(entries.bytes <= 100);
        }
        assert_eq!(
            c.lookup("k9"),
            Some(vec![0; 30]),
            "the newest entry is kept"
        );
        c.store("k9", vec![1; 10], Duration::from_secs(60));
        assert_eq!(
            c.entries.lock().expect("lock").bytes,
            12,
            "a replaced value is not counted twice"
        );
        c.store("huge", vec![0; 200], Duration::from_secs(60));
        assert_eq!(
            c.lookup("huge"),
            None,
            "a value over the whole budget is not kept"
        );
        assert_eq!(c.lookup("k9"), Some(vec![1; 10]), "and evicts nothing");
        c.drop_namespace("k9");
        assert_eq!(
            c.entries.lock().expect("lock").bytes,
            12,
            "other namespaces stay"
        );
    }
}
