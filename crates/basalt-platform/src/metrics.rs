//! Prometheus metrics: one registry per process, rendered at `/metrics`.

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::db::PoolStats;

/// Labels of the per-request metrics. `route` is the route template
/// (`/api/articles/{slug}`), never the raw path, so cardinality stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// HTTP method.
    pub method: String,
    /// Matched route template, or `unmatched`.
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Why the server closed a connection before the client did.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ConnectionClose {
    /// The request head (or, fresh, the first byte) was too slow to arrive.
    HeaderTimeout,
    /// Idle between requests for longer than the keep-alive timeout.
    IdleTimeout,
    /// Accepted while the node already held `http.max_connections`.
    OverCapacity,
    /// The TLS handshake did not finish in time.
    TlsHandshakeTimeout,
}

impl ConnectionClose {
    /// The label value, as exported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::OverCapacity => "over_capacity",
            Self::TlsHandshakeTimeout => "tls_handshake_timeout",
        }
    }
}

impl EncodeLabelValue for ConnectionClose {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(self.as_str())
    }
}

/// Labels of [`Metrics::http_connections_closed`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionCloseLabels {
    /// Why the connection was closed.
    pub reason: ConnectionClose,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// Every metric the platform exports, and the modules' own (registered
/// through [`crate::module::Wiring::metrics`] while the app is built).
pub struct Metrics {
    registry: Registry,
    /// The modules' metrics, set once when the modules are wired.
    modules: std::sync::OnceLock<Registry>,
    /// Requests served.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Request latency in seconds.
    pub http_duration: HistogramFamily,
    /// Requests being served right now.
    pub http_in_flight: Gauge,
    /// Connections the server closed for slowness or over capacity.
    pub http_connections_closed: Family<ConnectionCloseLabels, Counter>,
    /// Client connections open right now (TLS handshakes included).
    pub http_connections_open: Gauge,
    /// 1 while the node is ready, 0 after `/readyz` answered 503: set by
    /// each readiness check, and 1 from start-up (which reached the
    /// database), so that a node nobody probes does not alert.
    pub ready: Gauge,
    db_connections: Gauge,
    db_idle: Gauge,
    db_waiting: Gauge,
    db_max: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// A fresh registry with the platform's metrics, prefixed `basalt_`.
    pub fn new(database_backend: &str) -> Self {
        let mut registry = Registry::with_prefix("basalt");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            HistogramFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let http_in_flight = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            http_in_flight.clone(),
        );

        let http_connections_closed = Family::<ConnectionCloseLabels, Counter>::default();
        let http_connections_open = Gauge::default();
        registry.register(
            "http_connections_closed",
            "Connections closed by the server: too slow, or over capacity",
            http_connections_closed.clone(),
        );
        registry.register(
            "http_connections_open",
            "Client connections open",
            http_connections_open.clone(),
        );

        let ready = Gauge::default();
        ready.set(1);
        registry.register(
            "ready",
            "Whether the last readiness check passed (1) or answered 503 (0)",
            ready.clone(),
        );

        let db_connections = Gauge::default();
        let db_idle = Gauge::default();
        let db_waiting = Gauge::default();
        let db_max = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open database connections",
            db_connections.clone(),
        );
        registry.register("db_pool_idle", "Idle database connections", db_idle.clone());
        registry.register(
            "db_pool_waiting",
            "Callers waiting for a database connection",
            db_waiting.clone(),
        );
        registry.register(
            "db_pool_max",
            "Maximum database connections",
            db_max.clone(),
        );

        registry.register(
            "build",
            "Build information",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("database", database_backend.to_owned()),
            ]),
        );
        Self {
            registry,
            modules: std::sync::OnceLock::new(),
            http_requests,
            http_duration,
            http_in_flight,
            http_connections_closed,
            http_connections_open,
            ready,
            db_connections,
            db_idle,
            db_waiting,
            db_max,
        }
    }

    /// The registry, for the platform's own metrics while the app is built
    /// (modules register theirs through [`crate::module::Wiring::metrics`]).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Exports the modules' metrics along with the platform's. Set once,
    /// after the modules are wired; a second call is ignored.
    pub fn add_module_metrics(&self, registry: Registry) {
        if self.modules.set(registry).is_err() {
            tracing::error!("module metrics registered twice; keeping the first");
        }
    }

    /// Records one finished request.
    pub fn observe_request(&self, labels: HttpLabels, seconds: f64) {
        self.http_requests.get_or_create(&labels).inc();
        self.http_duration.get_or_create(&labels).observe(seconds);
    }

    /// Counts one connection closed by the server.
    pub fn connection_closed(&self, reason: ConnectionClose) {
        self.http_connections_closed
            .get_or_create(&ConnectionCloseLabels { reason })
            .inc();
    }

    /// Renders the OpenMetrics text exposition, with pool gauges read now.
    pub fn render(&self, pool: PoolStats) -> String {
        self.db_connections.set(i64::from(pool.size));
        self.db_idle.set(i64::from(pool.idle));
        self.db_waiting.set(pool.waiting);
        self.db_max.set(i64::from(pool.max));
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| match self.modules.get() {
                Some(modules) => encode_registry(&mut out, modules),
                None => Ok(()),
            })
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
