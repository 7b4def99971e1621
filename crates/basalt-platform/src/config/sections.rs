//! The platform's own sections: `[http]`, `[database]`, `[jobs]`,
//! `[redis]` and `[events]`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// HTTP limits and timing (`[http]`, `BASALT_HTTP__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body; larger requests get 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace_secs: u64,
    /// Longest a client may take to send a request's head (request line and
    /// headers), counted from the connection's start or, on a kept-alive
    /// connection, from the first byte of the next request. Also bounds the
    /// TLS handshake. Slower connections are closed.
    pub header_read_timeout_secs: u64,
    /// How long a connection may sit idle between requests before it is
    /// closed. Longer than the usual 60 s of load balancers and proxies, so
    /// that they close first: a proxy reusing a connection the server has
    /// just closed turns a request into a 502.
    pub keepalive_idle_timeout_secs: u64,
    /// Most connections this node holds open at once (TLS handshakes
    /// included); further ones are closed as soon as they are accepted.
    /// 0: no cap. Keep it below the process's file-descriptor limit.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
            header_read_timeout_secs: 10,
            keepalive_idle_timeout_secs: 75,
            max_connections: 10_000,
        }
    }
}

impl HttpConfig {
    /// The request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The shutdown grace period as a [`Duration`].
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The header read timeout as a [`Duration`].
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// The keep-alive idle timeout as a [`Duration`].
    pub fn keepalive_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.keepalive_idle_timeout_secs)
    }

    /// The cap on open connections; `None` when uncapped.
    pub fn connection_cap(&self) -> Option<usize> {
        (self.max_connections > 0).then_some(self.max_connections)
    }
}

/// Database pool settings (`[database]`, `BASALT_DATABASE__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout_secs: u64,
    /// Apply pending migrations when `basalt serve` starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

/// Background job workers (`[jobs]`, `BASALT_JOBS__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Concurrent job workers in this process (0 runs none). Whether the
    /// node relays events is the role's business ([`crate::Role`]), not this.
    pub workers: u32,
    /// The longest an idle worker sleeps before looking for due jobs. Only a
    /// safety net: new jobs wake idle workers at once (LISTEN/NOTIFY on
    /// PostgreSQL, in-process on SQLite), and idle workers wake by
    /// themselves when the next scheduled job or expiring lease is due; the
    /// poll catches wake-ups that were missed (a listener reconnecting, a
    /// second process on one SQLite file) and other nodes' changes.
    pub poll_interval_ms: u64,
    /// Attempts before a job is moved to the dead-letter state.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter.
    pub backoff_base_secs: u64,
    /// Longest retry delay.
    pub backoff_max_secs: u64,
    /// How long a claimed job stays claimed; a crashed worker's job is
    /// retried after this.
    pub lease_secs: u64,
    /// Succeeded jobs are deleted this long after their run (0 keeps them).
    pub succeeded_retention_hours: u64,
    /// Dead jobs, kept for inspection, are deleted this long after their
    /// last attempt (0 keeps them).
    pub dead_retention_hours: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            poll_interval_ms: 5000,
            max_attempts: 5,
            backoff_base_secs: 5,
            backoff_max_secs: 3600,
            lease_secs: 300,
            succeeded_retention_hours: 7 * 24,
            dead_retention_hours: 30 * 24,
        }
    }
}

/// The Redis adapters' settings (`[redis]`, `BASALT_REDIS__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// What rate limits do while Redis is unreachable: `local` (each node
    /// limits on its own), `open` (allow) or `closed` (refuse).
    pub rate_limit_fail_mode: crate::ratelimit::RateLimitFailMode,
    /// Entries each node keeps in memory in front of the shared cache.
    pub local_cache_entries: usize,
    /// Prefix of every key and channel Basalt uses, so that several
    /// deployments (or test runs) can share one Redis.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            rate_limit_fail_mode: crate::ratelimit::RateLimitFailMode::default(),
            local_cache_entries: 10_000,
            key_prefix: "basalt".into(),
        }
    }
}

/// Domain events (`[events]`, `BASALT_EVENTS__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// How often an idle relay looks for new events (writes through this
    /// node wake it at once).
    pub relay_interval_ms: u64,
    /// Events relayed per batch.
    pub batch_size: i64,
    /// Prefix of the RabbitMQ exchange and queues, so that several
    /// deployments (or test runs) can share one broker.
    pub amqp_prefix: String,
    /// How long published events and processed-event records are kept.
    pub retention_hours: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            relay_interval_ms: 250,
            batch_size: 100,
            amqp_prefix: "basalt".into(),
            retention_hours: 168,
        }
    }
}
