//! Caching behind a port: in-process now, Redis (shared, invalidated across
//! nodes) when the cluster adapter lands.
//!
//! Invalidation is by *generation*: a namespace has a counter that every
//! write bumps, and cached keys include it, so one increment makes all of a
//! namespace's entries unreachable at once. Coarse, but a reader can never
//! see data older than the last write made through this cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Where cached values live.
pub trait Cache: Send + Sync + 'static {
    /// The value for `key`, if cached and fresh.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` for `ttl`.
    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration);
    /// The current generation of `namespace`.
    fn generation(&self, namespace: &str) -> u64;
    /// Makes every entry of `namespace` stale.
    fn invalidate(&self, namespace: &str);
}

/// Labels of the cache metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub result: &'static str,
}

/// One node's cache, bounded in entries.
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
}

impl Cache for InProcessCache {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v.clone());
        let result = if found.is_some() { "hit" } else { "miss" };
        self.lookups.get_or_create(&CacheLabels { result }).inc();
        found
    }

    fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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

    fn generation(&self, namespace: &str) -> u64 {
        let generations = self
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        generations.get(namespace).copied().unwrap_or(0)
    }

    fn invalidate(&self, namespace: &str) {
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *generations.entry(namespace.to_owned()).or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max: usize) -> InProcessCache {
        InProcessCache::new(max, Family::default())
    }

    #[test]
    fn stores_expires_and_invalidates_by_generation() {
        let c = cache(10);
        let g = c.generation("blog");
        c.put(
            &format!("blog:{g}:tags"),
            b"[1]".to_vec(),
            Duration::from_secs(60),
        );
        assert_eq!(c.get(&format!("blog:{g}:tags")), Some(b"[1]".to_vec()));
        c.invalidate("blog");
        let g2 = c.generation("blog");
        assert_ne!(g, g2);
        assert_eq!(c.get(&format!("blog:{g2}:tags")), None);
        c.put("short", vec![1], Duration::ZERO);
        assert_eq!(c.get("short"), None, "expired at once");
        assert_eq!(c.generation("other"), 0, "namespaces are independent");
    }

    #[test]
    fn stays_within_its_bound() {
        let c = cache(3);
        for i in 0..10 {
            c.put(&i.to_string(), vec![0], Duration::from_secs(60));
        }
        assert!(c.entries.lock().expect("lock").len() <= 3);
        assert_eq!(c.get("9"), Some(vec![0]), "the newest entry is kept");
    }
}
