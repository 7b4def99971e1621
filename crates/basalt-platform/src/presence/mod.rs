//! Who is present, cluster-wide: keys with a status and a time to live,
//! behind a port with two adapters chosen by configuration:
//! [`InProcessPresence`] (one node; the default) and [`RedisPresence`]
//! (shared by every node).
//!
//! A key is *present* from a [`Presence::heartbeat`] until its TTL runs out
//! or it is [`Presence::remove`]d. A key whose TTL ran out is no longer
//! reported by [`Presence::statuses`], but stays in the store until exactly
//! one caller takes it, through [`Presence::claim_expired`] or
//! [`Presence::remove`]: that caller, and only it, announces it gone. So
//! announcements alternate, per key, across the cluster: a heartbeat that
//! answers `None` (announce present), then one claim or removal that
//! answers it (announce gone), and so on.

mod in_process;
mod redis;

use std::time::Duration;

use futures_util::future::BoxFuture;

pub use in_process::InProcessPresence;
pub use redis::RedisPresence;

/// The most keys one [`Presence::claim_expired`] call returns (the rest
/// wait for the next call).
pub const CLAIM_BATCH: usize = 1000;

/// Where presence lives.
pub trait Presence: Send + Sync + 'static {
    /// Marks `key` present with `status` for `ttl` from now; returns its
    /// status before: `None` when it was absent (never marked, removed, or
    /// expired *and claimed*). A key expired but not claimed yet still
    /// answers its old status, since nobody has announced it gone: this
    /// heartbeat takes it back, and no one will claim it.
    fn heartbeat<'a>(
        &'a self,
        key: &'a str,
        status: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Option<String>, PresenceError>>;
    /// The current statuses of `keys`, in order (`None`: absent or expired).
    fn statuses<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, PresenceError>>;
    /// Removes `key` now; returns whether it was there (expired and not yet
    /// claimed included: this call claims it).
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, PresenceError>>;
    /// The keys whose TTL has run out (at most [`CLAIM_BATCH`]), each
    /// returned by exactly one call across the cluster (so exactly one node
    /// announces it gone); they are removed.
    fn claim_expired<'a>(&'a self) -> BoxFuture<'a, Result<Vec<String>, PresenceError>>;
}

/// Why presence could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The store (Redis) did not answer in time, or refused.
    #[error("presence store unavailable: {0}")]
    Unavailable(#[from] ::redis::RedisError),
}

impl From<PresenceError> for crate::error::Failure {
    fn from(error: PresenceError) -> Self {
        tracing::warn!(%error, "presence unavailable");
        Self::unavailable("redis")
    }
}
