//! The embedded adapter: one node's memory.

use std::collections::{HashMap, VecDeque};
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

/// The values, the order they were stored in, and the bytes they hold
/// (keys and values).
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    /// Keys oldest first, each with the number of the store that put it
    /// there; a key stored again or removed since leaves a stale item here,
    /// skipped on eviction.
    order: VecDeque<(u64, String)>,
    stores: u64,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Instant,
    store: u64,
}

impl Entries {
    fn insert(&mut self, key: &str, value: Vec<u8>, expires: Instant) {
        self.remove(key);
        self.stores += 1;
        self.bytes += key.len() + value.len();
        self.order.push_back((self.stores, key.to_owned()));
        let store = self.stores;
        self.map.insert(
            key.to_owned(),
            Entry {
                value,
                expires,
                store,
            },
        );
        if self.order.len() > 2 * self.map.len() + 1024 {
            self.drop_stale_order();
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= key.len() + old.value.len();
        }
    }

    /// Evicts the entry stored longest ago; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((store, key)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.store == store) {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    fn retain(&mut self, mut keep: impl FnMut(&String, &Instant) -> bool) {
        let mut bytes = self.bytes;
        self.map.retain(|key, entry| {
            let kept = keep(key, &entry.expires);
            if !kept {
                bytes -= key.len() + entry.value.len();
            }
            kept
        });
        self.bytes = bytes;
        self.drop_stale_order();
    }

    fn drop_stale_order(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(store, key)| map.get(key).is_some_and(|e| e.store == *store));
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
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.value.clone())
    }

    /// Stores `value` under `key` for `ttl`. When full, expired entries go
    /// first, then the entries stored longest ago, one by one: emptying the
    /// whole cache instead made every page miss at once, and the misses of
    /// the expensive ones (tags, counts) pile up (seen in `bench/blog.sh`:
    /// p99 of 340 ms on cached tags after single articles had filled it).
    pub(super) fn store(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let size = key.len() + value.len();
        if size > self.max_bytes {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(key);
        let full = |e: &Entries| e.map.len() >= self.max_entries || e.bytes + size > self.max_bytes;
        if full(&entries) {
            let now = Instant::now();
            entries.retain(|_, expires| *expires > now);
        }
        while full(&entries) && entries.evict_oldest() {}
        entries.insert(key, value, Instant::now() + ttl);
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
        let kept: Vec<bool> = (0..10)
            .map(|i| c.lookup(&i.to_string()).is_some())
            .collect();
        assert_eq!(
            kept.iter().filter(|k| **k).count(),
            3,
            "the oldest went, one by one"
        );
        assert!(kept[7] && kept[8], "{kept:?}");
        // Storing a key again makes it the newest.
        c.store("7", vec![1], Duration::from_secs(60));
        c.store("new", vec![1], Duration::from_secs(60));
        assert!(c.lookup("7").is_some() && c.lookup("8").is_none());
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
                .map(|(k, e)| k.len() + e.value.len())
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
            32 + 32 + 12,
            "k7 and k8 kept, and a replaced value is not counted twice"
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
            32 + 32 + 12,
            "other namespaces stay"
        );
    }
}
