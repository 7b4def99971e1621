//! The Redis connection behind the distributed adapters (cache, rate limits,
//! broadcast, presence, sessions), configured by `BASALT_REDIS_URL`.
//!
//! Redis is an accelerator and a coordinator, never the only copy of data:
//! every adapter keeps working, degraded, while Redis is away. So the
//! connection is made lazily and repaired in the background: a node starts,
//! and keeps serving, with Redis down, and picks it up again without a
//! restart. Every command has a short timeout, so a hung Redis costs a
//! request milliseconds, not seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret as _;

use crate::config::RedisUrl;

/// Longest wait for one Redis command. Loopback and LAN answers take well
/// under a millisecond; past this, the caller falls back instead of waiting.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);
/// Longest wait for a new connection.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A shared, self-healing connection to Redis. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    state: Arc<State>,
    prefix: Arc<str>,
}

/// Whether Redis answered the last command: for the gauge, and to log each
/// change once instead of once per failed command.
struct State {
    up: Gauge,
    last: AtomicU8,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("Redis").finish_non_exhaustive()
    }
}

impl Redis {
    /// Prepares the connection without making it: the first command (or
    /// [`Redis::ping`]) connects. `state` is set to 1 while Redis answers.
    pub fn connect_lazily(url: &RedisUrl, key_prefix: &str, state: Gauge) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.0.expose_secret())
            .map_err(|e| anyhow::anyhow!("BASALT_REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // Reconnect quickly; the adapters fall back while it fails.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| anyhow::anyhow!("Redis connection: {e}"))?;
        Ok(Self {
            client,
            manager,
            state: Arc::new(State {
                up: state,
                last: AtomicU8::new(UNKNOWN),
            }),
            prefix: Arc::from(key_prefix),
        })
    }

    /// The name of a key or channel: `"{key_prefix}:{name}"`.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// A handle for commands; clones share one multiplexed connection.
    pub fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// The client, for connections of their own (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Records the outcome of a command, for the `basalt_redis_up` gauge.
    pub fn observe<T>(&self, result: &redis::RedisResult<T>) {
        let now = if result.is_ok() { UP } else { DOWN };
        self.state.up.set(i64::from(now == UP));
        let before = self.state.last.swap(now, Ordering::Relaxed);
        match (before, result) {
            (UNKNOWN | UP, Err(error)) => tracing::warn!(
                %error,
                "Redis is unavailable: cache bypassed, rate limits in their fail mode"
            ),
            (DOWN, Ok(_)) => tracing::info!("Redis is available again"),
            _ => {}
        }
    }

    /// Whether the last command succeeded (false before any command).
    pub fn is_up(&self) -> bool {
        self.state.last.load(Ordering::Relaxed) == UP
    }

    /// Whether Redis answers a `PING` within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let mut conn = self.connection();
        let answer =
            tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut conn))
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )))
                });
        self.observe(&answer);
        answer.is_ok()
    }
}
