//! Configuration: one typed struct, loaded once at start-up.
//!
//! Layers, lowest precedence first:
//! 1. built-in defaults (a zero-config start on SQLite in `./data/`);
//! 2. an optional TOML file (`--config FILE` or `BASALT_CONFIG`);
//! 3. environment variables `BASALT_<KEY>`, nested keys joined with `__`
//!    (`BASALT_HTTP__BODY_LIMIT_BYTES`);
//! 4. for secrets only, `BASALT_<KEY>_FILE` naming a file that holds the value
//!    (Docker and Kubernetes secrets).
//!
//! Values are parsed into their real types here ("parse, don't validate"), so
//! the rest of the program never sees an unchecked string. A bad value is a
//! [`ConfigError`] that names the key and the problem.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::HeaderValue;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::http::client_addr::TrustedProxies;
use crate::role::Role;

/// Prefix of every environment variable Basalt reads.
pub const ENV_PREFIX: &str = "BASALT_";

/// Keys whose values are secrets: redacted when printed, and accepted from a
/// file through `BASALT_<KEY>_FILE`.
pub const SECRET_KEYS: &[&str] = &[
    "database_url",
    "metrics_token",
    "smtp_url",
    "redis_url",
    "amqp_url",
];

/// The complete, validated configuration of a Basalt process.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Address the HTTP(S) listener binds to.
    pub listen: SocketAddr,
    /// Folder for local state: the SQLite database and, later, keys.
    pub data_dir: PathBuf,
    /// Where the database lives: SQLite (default) or PostgreSQL.
    pub database_url: DatabaseUrl,
    /// The URL clients reach Basalt at (used for links and to decide on
    /// secure cookies). Defaults to the listen address.
    pub public_url: Option<Url>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    pub log_level: String,
    /// Origins allowed to make cross-origin requests; empty allows none.
    #[serde(serialize_with = "serialize_origins")]
    pub cors_origins: Vec<HeaderValue>,
    /// Reverse proxies whose `X-Forwarded-For`/`-Proto` (or `Forwarded`)
    /// headers are believed; empty: the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
    /// What this node does: API, background workers, or both.
    pub role: Role,
    /// TLS certificate chain and private key (PEM); both or neither.
    pub tls: Option<TlsFiles>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub metrics_token: Option<SecretString>,
    /// SMTP server for outgoing mail (`smtp://host:port`, `smtps://user:pass@host`);
    /// unset, mail is written to the log instead.
    pub smtp_url: Option<SmtpUrl>,
    /// Sender of outgoing mail.
    pub mail_from: String,
    /// HTTP limits and timing.
    pub http: HttpConfig,
    /// Database pool and migration behaviour.
    pub database: DatabaseConfig,
    /// Background job workers.
    pub jobs: JobsConfig,
    /// Redis (`redis://host:port/db`, `rediss://…` for TLS): when set, the
    /// cache and rate limits are shared by every node through it; unset,
    /// they live in this process.
    pub redis_url: Option<RedisUrl>,
    /// How the Redis adapters behave.
    pub redis: RedisConfig,
    /// RabbitMQ (`amqp://user:pass@host:port/vhost`): when set, domain events
    /// travel from the outbox through it; unset, they are relayed in-process.
    pub amqp_url: Option<AmqpUrl>,
    /// Domain events: the outbox relay.
    pub events: EventsConfig,
    /// The merged layers, from which modules read their own sections
    /// (`[identity]`, `BASALT_IDENTITY__*`) with [`Config::section`].
    #[serde(skip)]
    layers: Figment,
}

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

/// Defines a newtype for a URL that may hold a password: printed and
/// serialised (`config print`) with the password replaced.
macro_rules! secret_url {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(pub SecretString);

        impl $name {
            /// The URL with any password replaced, safe to print.
            pub fn redacted(&self) -> String {
                redact_url_password(self.0.expose_secret())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.redacted())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.redacted())
            }
        }
    };
}

secret_url!(
    /// A RabbitMQ URL; secret because it holds a password.
    AmqpUrl
);
secret_url!(
    /// A Redis URL; secret because it may hold a password.
    RedisUrl
);
secret_url!(
    /// An SMTP server URL; secret because it may hold a password.
    SmtpUrl
);

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Paths of the PEM certificate chain and private key Basalt serves HTTPS with.
#[derive(Debug, Clone, Serialize)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// Which database backend to use, with its connection URL.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// An SQLite file (or `sqlite::memory:`), e.g. `sqlite://data/basalt.db`.
    Sqlite(String),
    /// A PostgreSQL server; the URL may hold a password, so it is secret.
    Postgres(SecretString),
}

impl DatabaseUrl {
    /// Parses a URL, accepting only the schemes Basalt supports.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
            Ok(Self::Postgres(SecretString::from(url.to_owned())))
        } else {
            Err("must start with `sqlite:` or `postgres://`".into())
        }
    }

    /// The default: an SQLite file inside the data folder.
    pub fn default_sqlite(data_dir: &Path) -> Self {
        Self::Sqlite(format!("sqlite://{}", data_dir.join("basalt.db").display()))
    }

    /// Short backend name for logs and metrics.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// The URL with any password replaced, safe to print.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(url) => url.clone(),
            Self::Postgres(secret) => match Url::parse(secret.expose_secret()) {
                Ok(mut url) => {
                    // `set_password` would percent-encode the brackets of the marker.
                    if url.password().is_some() && url.set_password(Some("REDACTED")).is_ok() {
                        return url
                            .to_string()
                            .replacen(":REDACTED@", &format!(":{REDACTED}@"), 1);
                    }
                    url.to_string()
                }
                Err(_) => REDACTED.into(),
            },
        }
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

const REDACTED: &str = "[redacted]";

fn redact_url_password(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            // `set_password` would percent-encode the brackets of the marker.
            if url.password().is_some() && url.set_password(Some("REDACTED")).is_ok() {
                return url
                    .to_string()
                    .replacen(":REDACTED@", &format!(":{REDACTED}@"), 1);
            }
            url.to_string()
        }
        Err(_) => REDACTED.into(),
    }
}

fn serialize_redacted_opt<S: Serializer>(
    v: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

fn serialize_origins<S: Serializer>(v: &[HeaderValue], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|o| o.to_str().unwrap_or_default()))
}

/// A configuration problem: which key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}")]
pub struct ConfigError {
    /// The key as the user wrote it (environment variable or file key).
    pub key: String,
    /// What is wrong, in one line.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The configuration as it arrives from the layers, before validation.
/// Top-level keys of the platform itself; anything else must be a module's section.
const PLATFORM_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "public_url",
    "log_format",
    "log_level",
    "cors_origins",
    "trusted_proxies",
    "role",
    "tls_cert",
    "tls_key",
    "metrics_token",
    "smtp_url",
    "mail_from",
    "http",
    "database",
    "jobs",
    "redis_url",
    "redis",
    "amqp_url",
    "events",
];

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    #[serde(deserialize_with = "scalar_as_string")]
    database_url: Option<String>,
    public_url: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    #[serde(deserialize_with = "string_or_list")]
    cors_origins: Vec<String>,
    #[serde(deserialize_with = "string_or_list")]
    trusted_proxies: Vec<String>,
    role: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(deserialize_with = "scalar_as_string")]
    metrics_token: Option<String>,
    #[serde(deserialize_with = "scalar_as_string")]
    smtp_url: Option<String>,
    mail_from: Option<String>,
    http: HttpConfig,
    database: DatabaseConfig,
    jobs: JobsConfig,
    #[serde(deserialize_with = "scalar_as_string")]
    redis_url: Option<String>,
    redis: RedisConfig,
    #[serde(deserialize_with = "scalar_as_string")]
    amqp_url: Option<String>,
    events: EventsConfig,
}

/// Where configuration is read from; [`ConfigSources::from_process`] is what
/// the binary uses, tests pass their own environment.
#[derive(Debug, Default, Clone)]
pub struct ConfigSources {
    /// The TOML file, if any.
    pub file: Option<PathBuf>,
    /// The environment, as `(name, value)` pairs.
    pub env: Vec<(String, String)>,
    /// Names of the module sections this build accepts (`identity`, …).
    pub sections: Vec<String>,
}

impl ConfigSources {
    /// This process's environment plus an optional file path.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
            sections: Vec::new(),
        }
    }
}

impl Config {
    /// Loads and validates the configuration from the given layers.
    pub fn load(sources: &ConfigSources) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(file) = &sources.file {
            if !file.is_file() {
                return Err(ConfigError::new(
                    "BASALT_CONFIG",
                    format!("no such file: {}", file.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }

        let env: Vec<(String, String)> = sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .cloned()
            .collect();
        for (name, value) in &env {
            let key = &name[ENV_PREFIX.len()..];
            // BASALT_CONFIG names the file; *_FILE variables are read below.
            if key == "CONFIG" || key.ends_with("_FILE") || key.is_empty() {
                continue;
            }
            figment = figment.merge(EnvVar::new(name, value));
        }
        for (key, value) in read_secret_files(&env)? {
            figment = figment.merge(Serialized::default(&key, value));
        }

        reject_unknown_keys(&figment, &sources.sections)?;
        let raw: RawConfig = figment.extract().map_err(figment_error)?;
        let mut config = raw.validate()?;
        config.layers = figment;
        Ok(config)
    }

    /// A module's own section, e.g. `section::<IdentityConfig>("identity")`:
    /// defaults where unset; a bad value names its key like any other.
    pub fn section<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ConfigError> {
        if !self.layers.contains(name) {
            return Ok(T::default());
        }
        self.layers.extract_inner(name).map_err(figment_error)
    }

    /// The configuration a zero-config start uses, with its data in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DatabaseUrl::default_sqlite(&data_dir),
            data_dir,
            public_url: None,
            log_format: LogFormat::Text,
            // sqlx logs every PostgreSQL NOTICE at info; only its warnings matter.
            log_level: "info,sqlx=warn".into(),
            cors_origins: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            role: Role::default(),
            tls: None,
            metrics_token: None,
            smtp_url: None,
            mail_from: "Basalt <no-reply@localhost>".into(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            jobs: JobsConfig::default(),
            redis_url: None,
            redis: RedisConfig::default(),
            amqp_url: None,
            events: EventsConfig::default(),
            layers: Figment::new(),
        }
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Whether clients reach Basalt over HTTPS (its own TLS, or a proxy in
    /// front whose public URL is `https://`).
    pub fn is_https(&self) -> bool {
        self.tls.is_some()
            || self
                .public_url
                .as_ref()
                .is_some_and(|u| u.scheme() == "https")
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let mut config =
            Config::with_data_dir(self.data_dir.unwrap_or_else(|| PathBuf::from("data")));

        if let Some(listen) = self.listen {
            config.listen = listen.trim().parse().map_err(|_| {
                ConfigError::new(
                    "BASALT_LISTEN",
                    format!("`{listen}` is not an address like 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(url) = self.database_url {
            config.database_url =
                DatabaseUrl::parse(&url).map_err(|p| ConfigError::new("BASALT_DATABASE_URL", p))?;
        }
        if let Some(url) = self.public_url {
            let parsed = Url::parse(url.trim()).map_err(|e| {
                ConfigError::new("BASALT_PUBLIC_URL", format!("`{url}` is not a URL: {e}"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::new(
                    "BASALT_PUBLIC_URL",
                    "must be an http:// or https:// URL with a host",
                ));
            }
            config.public_url = Some(parsed);
        }
        if let Some(format) = self.log_format {
            config.log_format = match format.trim().to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError::new(
                        "BASALT_LOG_FORMAT",
                        format!("`{format}` is neither `text` nor `json`"),
                    ));
                }
            };
        }
        if let Some(level) = self.log_level {
            tracing_subscriber::EnvFilter::try_new(&level)
                .map_err(|e| ConfigError::new("BASALT_LOG_LEVEL", format!("`{level}`: {e}")))?;
            config.log_level = level;
        }
        config.cors_origins = self
            .cors_origins
            .iter()
            .map(|o| parse_origin(o).map_err(|p| ConfigError::new("BASALT_CORS_ORIGINS", p)))
            .collect::<Result<_, _>>()?;
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => {
                for (name, path) in [("BASALT_TLS_CERT", &cert), ("BASALT_TLS_KEY", &key)] {
                    if !path.is_file() {
                        return Err(ConfigError::new(
                            name,
                            format!("no such file: {}", path.display()),
                        ));
                    }
                }
                Some(TlsFiles { cert, key })
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "BASALT_TLS_KEY",
                    "must be set when BASALT_TLS_CERT is",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "BASALT_TLS_CERT",
                    "must be set when BASALT_TLS_KEY is",
                ));
            }
        };
        config.metrics_token = match self.metrics_token {
            Some(t) if t.trim().len() < 16 => {
                return Err(ConfigError::new(
                    "BASALT_METRICS_TOKEN",
                    "must be at least 16 characters",
                ));
            }
            Some(t) => Some(SecretString::from(t.trim().to_owned())),
            None => None,
        };
        if self.http.body_limit_bytes == 0 {
            return Err(ConfigError::new(
                "BASALT_HTTP__BODY_LIMIT_BYTES",
                "must be greater than 0",
            ));
        }
        if self.http.request_timeout_secs == 0 {
            return Err(ConfigError::new(
                "BASALT_HTTP__REQUEST_TIMEOUT_SECS",
                "must be greater than 0",
            ));
        }
        if self.http.header_read_timeout_secs == 0 {
            return Err(ConfigError::new(
                "BASALT_HTTP__HEADER_READ_TIMEOUT_SECS",
                "must be greater than 0",
            ));
        }
        if self.http.keepalive_idle_timeout_secs == 0 {
            return Err(ConfigError::new(
                "BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS",
                "must be greater than 0",
            ));
        }
        if self.http.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "BASALT_HTTP__MAX_CONNECTIONS",
                format!(
                    "must be at most {} (0: no cap)",
                    tokio::sync::Semaphore::MAX_PERMITS
                ),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "BASALT_DATABASE__MAX_CONNECTIONS",
                "must be greater than 0",
            ));
        }
        if let Some(url) = self.smtp_url {
            let parsed = Url::parse(url.trim())
                .map_err(|e| ConfigError::new("BASALT_SMTP_URL", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host().is_none() {
                return Err(ConfigError::new(
                    "BASALT_SMTP_URL",
                    "must be smtp://host:port or smtps://host:port",
                ));
            }
            config.smtp_url = Some(SmtpUrl(SecretString::from(url.trim().to_owned())));
        }
        if let Some(url) = self.redis_url {
            let parsed = Url::parse(url.trim())
                .map_err(|e| ConfigError::new("BASALT_REDIS_URL", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "redis" | "rediss") || parsed.host().is_none() {
                return Err(ConfigError::new(
                    "BASALT_REDIS_URL",
                    "must be redis://host:port or rediss://host:port (TLS)",
                ));
            }
            config.redis_url = Some(RedisUrl(SecretString::from(url.trim().to_owned())));
        }
        config.redis = self.redis;
        if let Some(url) = self.amqp_url {
            let parsed = Url::parse(url.trim())
                .map_err(|e| ConfigError::new("BASALT_AMQP_URL", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "amqp" | "amqps") || parsed.host().is_none() {
                return Err(ConfigError::new(
                    "BASALT_AMQP_URL",
                    "must be amqp://user:password@host:port/vhost",
                ));
            }
            config.amqp_url = Some(AmqpUrl(SecretString::from(url.trim().to_owned())));
        }
        if self.events.batch_size < 1 || self.events.relay_interval_ms == 0 {
            return Err(ConfigError::new(
                "BASALT_EVENTS",
                "batch_size and relay_interval_ms must be at least 1",
            ));
        }
        config.events = self.events;
        if let Some(from) = self.mail_from {
            // Parsed as the mailer will parse it, so a bad sender is a
            // configuration error now, not a failure at start-up.
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(ConfigError::new(
                    "BASALT_MAIL_FROM",
                    format!("`{from}` is not an address like `Basalt <no-reply@example.com>`"),
                ));
            }
            config.mail_from = from;
        }
        if self.jobs.max_attempts == 0 {
            return Err(ConfigError::new(
                "BASALT_JOBS__MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        if self.jobs.lease_secs == 0 || self.jobs.poll_interval_ms == 0 {
            return Err(ConfigError::new(
                "BASALT_JOBS",
                "lease_secs and poll_interval_ms must be greater than 0",
            ));
        }
        config.http = self.http;
        config.database = self.database;
        config.trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|p| ConfigError::new("BASALT_TRUSTED_PROXIES", p))?;
        if let Some(role) = self.role {
            config.role = role
                .parse()
                .map_err(|p| ConfigError::new("BASALT_ROLE", p))?;
        }
        if config.role == Role::Worker && self.jobs.workers == 0 {
            return Err(ConfigError::new(
                "BASALT_JOBS__WORKERS",
                "must be at least 1 on a node whose role is `worker`",
            ));
        }
        config.jobs = self.jobs;
        Ok(config)
    }
}

/// Every top-level key must be the platform's or a module section's: a typo
/// (`BASALT_LISTN`) is an error, not silently ignored.
fn reject_unknown_keys(figment: &Figment, sections: &[String]) -> Result<(), ConfigError> {
    let dict: figment::value::Dict = figment.extract().map_err(figment_error)?;
    for key in dict.keys() {
        if !PLATFORM_KEYS.contains(&key.as_str()) && !sections.iter().any(|s| s == key) {
            let source = figment.find_metadata(key).map_or_else(
                || key.clone(),
                |m| m.interpolate(&figment::Profile::Default, &[key.as_str()]),
            );
            let name = if source.starts_with(ENV_PREFIX) {
                source
            } else {
                key.clone()
            };
            return Err(ConfigError::new(name, format!("unknown key `{key}`")));
        }
    }
    Ok(())
}

/// A CORS origin is exactly `scheme://host[:port]`: no path, no wildcard.
fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let origin = origin.trim().trim_end_matches('/');
    let url = Url::parse(origin).map_err(|e| format!("`{origin}` is not an origin: {e}"))?;
    let is_bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.username().is_empty();
    if !is_bare || origin.contains('*') {
        return Err(format!(
            "`{origin}` must look like https://app.example.com (no path, no wildcard)"
        ));
    }
    HeaderValue::from_str(origin).map_err(|_| format!("`{origin}` is not a valid header value"))
}

/// For each secret key, the contents of `BASALT_<KEY>_FILE` when set.
fn read_secret_files(env: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut found = Vec::new();
    for key in SECRET_KEYS {
        let direct = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase());
        let file_var = format!("{direct}_FILE");
        let Some((_, path)) = env.iter().find(|(k, _)| *k == file_var) else {
            continue;
        };
        if env.iter().any(|(k, _)| *k == direct) {
            return Err(ConfigError::new(
                file_var,
                format!("set together with {direct}; set only one"),
            ));
        }
        let value = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file_var, format!("cannot read `{path}`: {e}")))?;
        let value = value.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(ConfigError::new(file_var, format!("`{path}` is empty")));
        }
        found.push(((*key).to_owned(), value));
    }
    Ok(found)
}

/// One `BASALT_*` variable as a figment provider, so that errors name it.
struct EnvVar {
    name: String,
    key: String,
    value: String,
}

impl EnvVar {
    fn new(name: &str, value: &str) -> Self {
        let key = name[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        Self {
            name: name.to_owned(),
            key,
            value: value.to_owned(),
        }
    }
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        let name = self.name.clone();
        figment::Metadata::named(format!("{} environment variable", self.name))
            .interpolater(move |_, _| name.clone())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        // Same value syntax as figment's own Env provider: numbers, booleans, [lists].
        let value: figment::value::Value = self
            .value
            .parse()
            .unwrap_or_else(|_| self.value.clone().into());
        let nested = figment::util::nest(&self.key, value);
        let dict = nested.into_dict().unwrap_or_default();
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Turns figment's error into one line naming the variable or file key.
fn figment_error(error: figment::Error) -> ConfigError {
    let key = match (&error.metadata, error.path.is_empty()) {
        (Some(meta), false) => {
            let interpolated =
                meta.interpolate(&error.profile.clone().unwrap_or_default(), &error.path);
            if meta.name.ends_with("environment variable") {
                interpolated
            } else {
                format!("{} (in {})", error.path.join("."), meta.name)
            }
        }
        (Some(meta), true) => meta.name.to_string(),
        (None, _) => error.path.join("."),
    };
    let problem = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        kind => kind.to_string(),
    };
    ConfigError::new(
        if key.is_empty() {
            "configuration".into()
        } else {
            key
        },
        problem,
    )
}

/// Accepts a comma-separated string or a list.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

/// Secrets may look like numbers (`BASALT_METRICS_TOKEN=1234…`); keep them as text.
fn scalar_as_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Signed(i64),
        Unsigned(u64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|v| match v {
        Scalar::Text(s) => s,
        Scalar::Signed(n) => n.to_string(),
        Scalar::Unsigned(n) => n.to_string(),
        Scalar::Float(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&ConfigSources {
            env: env
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..ConfigSources::default()
        })
    }

    #[test]
    fn defaults_are_the_zero_config_start() {
        let c = load(&[]).expect("defaults load");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(
            matches!(&c.database_url, DatabaseUrl::Sqlite(u) if u == "sqlite://data/basalt.db")
        );
        assert_eq!(c.http.body_limit_bytes, 1024 * 1024);
        assert_eq!(c.http.header_read_timeout_secs, 10);
        assert_eq!(c.http.keepalive_idle_timeout_secs, 75);
        assert_eq!(c.http.connection_cap(), Some(10_000));
        assert!(c.cors_origins.is_empty());
        assert!(c.tls.is_none());
    }

    #[test]
    fn environment_overrides_including_nested_keys() {
        let c = load(&[
            ("BASALT_LISTEN", "0.0.0.0:9000"),
            ("BASALT_DATA_DIR", "/var/lib/basalt"),
            ("BASALT_HTTP__BODY_LIMIT_BYTES", "2048"),
            ("BASALT_HTTP__HEADER_READ_TIMEOUT_SECS", "3"),
            ("BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS", "20"),
            ("BASALT_HTTP__MAX_CONNECTIONS", "0"),
            ("BASALT_DATABASE__MAX_CONNECTIONS", "3"),
            (
                "BASALT_CORS_ORIGINS",
                "https://a.example, http://localhost:3000",
            ),
            ("BASALT_LOG_FORMAT", "json"),
        ])
        .expect("loads");
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert!(
            matches!(&c.database_url, DatabaseUrl::Sqlite(u) if u == "sqlite:///var/lib/basalt/basalt.db")
        );
        assert_eq!(c.http.body_limit_bytes, 2048);
        assert_eq!(c.http.header_read_timeout(), Duration::from_secs(3));
        assert_eq!(c.http.keepalive_idle_timeout(), Duration::from_secs(20));
        assert_eq!(c.http.connection_cap(), None, "0 means no cap");
        assert_eq!(c.database.max_connections, 3);
        assert_eq!(
            c.cors_origins,
            vec!["https://a.example", "http://localhost:3000"]
        );
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn file_is_overridden_by_environment() {
        let dir = std::env::temp_dir().join(format!("basalt-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("basalt.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:7000\"\nlog_level = \"debug\"\n[http]\nrequest_timeout_secs = 5\n")
            .expect("write");
        let c = Config::load(&ConfigSources {
            file: Some(file),
            env: vec![("BASALT_LISTEN".into(), "127.0.0.1:7001".into())],
            ..ConfigSources::default()
        })
        .expect("loads");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7001");
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.http.request_timeout_secs, 5);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("BASALT_LISTEN", "nope")], "BASALT_LISTEN"),
            (
                &[("BASALT_DATABASE_URL", "mysql://x")],
                "BASALT_DATABASE_URL",
            ),
            (&[("BASALT_LOG_FORMAT", "xml")], "BASALT_LOG_FORMAT"),
            (
                &[("BASALT_CORS_ORIGINS", "https://a.example/path")],
                "BASALT_CORS_ORIGINS",
            ),
            (&[("BASALT_CORS_ORIGINS", "*")], "BASALT_CORS_ORIGINS"),
            (&[("BASALT_TLS_CERT", "/etc/hostname")], "BASALT_TLS_KEY"),
            (
                &[("BASALT_HTTP__BODY_LIMIT_BYTES", "lots")],
                "BASALT_HTTP__BODY_LIMIT_BYTES",
            ),
            (
                &[("BASALT_HTTP__HEADER_READ_TIMEOUT_SECS", "0")],
                "BASALT_HTTP__HEADER_READ_TIMEOUT_SECS",
            ),
            (
                &[("BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS", "0")],
                "BASALT_HTTP__KEEPALIVE_IDLE_TIMEOUT_SECS",
            ),
            (
                &[("BASALT_HTTP__MAX_CONNECTIONS", "-1")],
                "BASALT_HTTP__MAX_CONNECTIONS",
            ),
            (&[("BASALT_LISTN", "127.0.0.1:1")], "BASALT_LISTN"),
            (&[("BASALT_PUBLIC_URL", "ftp://x")], "BASALT_PUBLIC_URL"),
            (
                &[("BASALT_MAIL_FROM", "Basalt <no-reply@>")],
                "BASALT_MAIL_FROM",
            ),
            (
                &[("BASALT_SMTP_URL", "http://mail.example")],
                "BASALT_SMTP_URL",
            ),
            (
                &[("BASALT_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/33")],
                "BASALT_TRUSTED_PROXIES",
            ),
            (
                &[("BASALT_TRUSTED_PROXIES", "proxy.internal")],
                "BASALT_TRUSTED_PROXIES",
            ),
            (&[("BASALT_ROLE", "both")], "BASALT_ROLE"),
            (
                &[("BASALT_ROLE", "worker"), ("BASALT_JOBS__WORKERS", "0")],
                "BASALT_JOBS__WORKERS",
            ),
        ];
        for (env, key) in cases {
            let err = load(env).expect_err("must be rejected");
            assert_eq!(err.key, *key, "{err}");
            assert!(!err.to_string().contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn secrets_come_from_files_and_are_redacted() {
        let dir = std::env::temp_dir().join(format!("basalt-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("db_url");
        std::fs::write(
            &file,
            "postgres://basalt:hunter2hunter2@db.internal/basalt\n",
        )
        .expect("write");
        let c =
            load(&[("BASALT_DATABASE_URL_FILE", file.to_str().expect("utf-8"))]).expect("loads");
        match &c.database_url {
            DatabaseUrl::Postgres(s) => {
                assert_eq!(
                    s.expose_secret(),
                    "postgres://basalt:hunter2hunter2@db.internal/basalt"
                )
            }
            other => panic!("expected postgres, got {other:?}"),
        }
        let printed = c.to_redacted_toml();
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");

        let both = load(&[
            ("BASALT_DATABASE_URL_FILE", file.to_str().expect("utf-8")),
            ("BASALT_DATABASE_URL", "sqlite::memory:"),
        ]);
        assert_eq!(both.expect_err("ambiguous").key, "BASALT_DATABASE_URL_FILE");
        std::fs::remove_dir_all(dir).ok();
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct DemoSection {
        rounds: u32,
        name: String,
    }

    #[test]
    fn modules_read_their_own_sections() {
        let sources = ConfigSources {
            env: vec![("BASALT_DEMO__ROUNDS".into(), "7".into())],
            sections: vec!["demo".into()],
            ..ConfigSources::default()
        };
        let c = Config::load(&sources).expect("demo is a declared section");
        assert_eq!(c.section::<DemoSection>("demo").expect("valid").rounds, 7);
        assert_eq!(
            c.section::<DemoSection>("absent").expect("defaults"),
            DemoSection::default()
        );

        let undeclared = ConfigSources {
            sections: Vec::new(),
            ..sources.clone()
        };
        assert_eq!(
            Config::load(&undeclared).expect_err("unknown").key,
            "BASALT_DEMO__ROUNDS"
        );

        let bad = ConfigSources {
            env: vec![("BASALT_DEMO__ROUNDS".into(), "many".into())],
            ..sources
        };
        let err = Config::load(&bad)
            .expect("loads")
            .section::<DemoSection>("demo")
            .expect_err("bad");
        assert_eq!(err.key, "BASALT_DEMO__ROUNDS", "{err}");
    }

    #[test]
    fn trusted_proxies_and_role_from_environment_or_file() {
        let c = load(&[]).expect("defaults");
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.role, Role::All);

        let c = load(&[
            ("BASALT_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8,::1"),
            ("BASALT_ROLE", "api"),
        ])
        .expect("loads");
        assert_eq!(c.role, Role::Api);
        let ranges: Vec<String> = c
            .trusted_proxies
            .ranges()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ranges, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        let printed = c.to_redacted_toml();
        assert!(printed.contains("role = \"api\""), "{printed}");
        assert!(printed.contains("\"10.0.0.0/8\""), "{printed}");

        let dir = std::env::temp_dir().join(format!("basalt-proxies-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("basalt.toml");
        std::fs::write(
            &file,
            "role = \"worker\"\ntrusted_proxies = [\"192.168.0.0/16\", \"fd00::/8\"]\n",
        )
        .expect("write");
        let c = Config::load(&ConfigSources {
            file: Some(file.clone()),
            ..ConfigSources::default()
        })
        .expect("loads");
        assert_eq!(c.role, Role::Worker);
        assert_eq!(c.trusted_proxies.ranges().len(), 2);
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.1/8\"]\n").expect("write");
        let err = Config::load(&ConfigSources {
            file: Some(file),
            ..ConfigSources::default()
        })
        .expect_err("host bits set");
        assert_eq!(err.key, "BASALT_TRUSTED_PROXIES", "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn numeric_looking_secret_stays_text() {
        let c = load(&[("BASALT_METRICS_TOKEN", "12345678901234567890")]).expect("loads");
        assert_eq!(
            c.metrics_token.expect("set").expose_secret(),
            "12345678901234567890"
        );
    }
}
