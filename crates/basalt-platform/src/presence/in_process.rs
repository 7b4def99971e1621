//! The embedded adapter: one node's presence, in memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::{CLAIM_BATCH, Presence, PresenceError};

/// Presence within this process: right for a single node.
#[derive(Debug, Default)]
pub struct InProcessPresence {
    /// Each key's status and deadline.
    entries: Mutex<HashMap<String, (String, Instant)>>,
}

impl InProcessPresence {
    /// No one present.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T) -> T {
        f(&mut self.entries.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// [`Presence::heartbeat`] at `now` (tests drive the clock).
    pub fn heartbeat_at(
        &self,
        key: &str,
        status: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<String> {
        self.with_entries(|entries| {
            entries
                .insert(key.to_owned(), (status.to_owned(), now + ttl))
                .map(|(before, _)| before)
        })
    }

    /// [`Presence::statuses`] at `now`.
    pub fn statuses_at(&self, keys: &[String], now: Instant) -> Vec<Option<String>> {
        self.with_entries(|entries| {
            keys.iter()
                .map(|key| {
                    entries
                        .get(key)
                        .filter(|(_, deadline)| *deadline > now)
                        .map(|(status, _)| status.clone())
                })
                .collect()
        })
    }

    /// [`Presence::claim_expired`] at `now`.
    pub fn claim_expired_at(&self, now: Instant) -> Vec<String> {
        self.with_entries(|entries| {
            let expired: Vec<String> = entries
                .iter()
                .filter(|(_, (_, deadline))| *deadline <= now)
                .map(|(key, _)| key.clone())
                .take(CLAIM_BATCH)
                .collect();
            for key in &expired {
                entries.remove(key);
            }
            expired
        })
    }
}

impl Presence for InProcessPresence {
    fn heartbeat<'a>(
        &'a self,
        key: &'a str,
        status: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<String>, PresenceError>> {
        let before = self.heartbeat_at(key, status, ttl, Instant::now());
        Box::pin(async move { Ok(before) })
    }

    fn statuses<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, PresenceError>> {
        let statuses = self.statuses_at(keys, Instant::now());
        Box::pin(async move { Ok(statuses) })
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, PresenceError>> {
        let removed = self.with_entries(|entries| entries.remove(key).is_some());
        Box::pin(async move { Ok(removed) })
    }

    fn claim_expired<'a>(&'a self) -> BoxFuture<'a, Result<Vec<String>, PresenceError>> {
        let expired = self.claim_expired_at(Instant::now());
        Box::pin(async move { Ok(expired) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn a_heartbeat_answers_the_status_before_and_statuses_follow_it() {
        let presence = InProcessPresence::new();
        let now = Instant::now();
        assert_eq!(presence.heartbeat_at("ann", "online", TTL, now), None);
        assert_eq!(
            presence.heartbeat_at("ann", "away", TTL, now).as_deref(),
            Some("online")
        );
        assert_eq!(
            presence.statuses_at(&keys(&["ann", "bob"]), now),
            [Some("away".to_owned()), None]
        );
    }

    #[test]
    fn an_expired_key_is_absent_and_claimed_once() {
        let presence = InProcessPresence::new();
        let now = Instant::now();
        presence.heartbeat_at("ann", "online", TTL, now);
        presence.heartbeat_at("bob", "online", TTL * 2, now);
        let later = now + TTL;
        assert_eq!(
            presence.statuses_at(&keys(&["ann", "bob"]), later),
            [None, Some("online".to_owned())]
        );
        assert_eq!(presence.claim_expired_at(later), ["ann"]);
        assert!(presence.claim_expired_at(later).is_empty(), "claimed once");
        assert_eq!(presence.heartbeat_at("ann", "online", TTL, later), None);
    }

    #[test]
    fn an_expired_key_not_yet_claimed_is_taken_back_by_a_heartbeat() {
        let presence = InProcessPresence::new();
        let now = Instant::now();
        presence.heartbeat_at("ann", "online", TTL, now);
        let later = now + TTL * 2;
        assert_eq!(
            presence
                .heartbeat_at("ann", "online", TTL, later)
                .as_deref(),
            Some("online")
        );
        assert!(presence.claim_expired_at(later).is_empty());
    }

    #[tokio::test]
    async fn removing_answers_whether_the_key_was_there() {
        let presence = InProcessPresence::new();
        presence.heartbeat("ann", "online", TTL).await.expect("ok");
        assert!(presence.remove("ann").await.expect("ok"));
        assert!(!presence.remove("ann").await.expect("ok"));
        assert_eq!(
            presence.statuses(&keys(&["ann"])).await.expect("ok"),
            [None]
        );
    }
}
