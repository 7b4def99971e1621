//! Configuration: one typed struct, loaded once at start-up.
//!
//! Layers, lowest precedence first:
//! 1. built-in defaults (a zero-config start on SQLite in `./data/`);
//! 2. an optional TOML file (`--config FILE` or `BASALT_CONFIG`);
//! 3. environment variables `BASALT_<KEY>`, nested keys joined with `__`
//!    (`BASALT_HTTP__BODY_LIMIT_BYTES`);
//! 4. `BASALT_<KEY>_FILE` naming a file that holds the value of any key,
//!    nested ones too (`BASALT_SHOP__STRIPE__SECRET_KEY_FILE`): how Docker and
//!    Kubernetes secrets arrive.
//!
//! Values are parsed into their real types here ("parse, don't validate"), so
//! the rest of the program never sees an unchecked string. A bad value is a
//! [`ConfigError`] that names the key and the problem. Secrets, in the
//! platform's keys and in any module's section, are [`Secret`]s (or URL types
//! that redact their password): redacted when printed by `basalt config
//! print`, in `Debug` output and in logs.
//!
//! Where things are: this file holds [`Config`] and its loading; `sections.rs`
//! the platform's own sections (`[http]`, `[database]`, …); `secret.rs` the
//! [`Secret`] type; `urls.rs` the URL types; `layers.rs` how the layers are
//! merged and checked.

mod env_names;
mod layers;
mod secret;
mod sections;
#[cfg(test)]
mod tests;
mod urls;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::HeaderValue;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

use crate::http::client_addr::TrustedProxies;
use crate::role::Role;

pub use secret::Secret;
pub use sections::{DatabaseConfig, EventsConfig, HttpConfig, JobsConfig, RedisConfig};
pub use urls::{AmqpUrl, DatabaseUrl, RedisUrl, SmtpUrl};

use env_names::EnvName;
use layers::{
    EnvVar, PLATFORM_KEYS, RawConfig, figment_error, read_secret_files, reject_unknown_keys,
};

/// Prefix of every environment variable Basalt reads.
pub const ENV_PREFIX: &str = "BASALT_";

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
    pub metrics_token: Option<Secret>,
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
    pub(crate) layers: Figment,
    /// `BASALT_*` variables that are not configuration (`BASALT_BIN`), left
    /// out; [`Config::warn_ignored_env`] logs them once logging is up.
    #[serde(skip)]
    pub ignored_env: Vec<String>,
}

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
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
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

        let known: Vec<&str> = PLATFORM_KEYS
            .iter()
            .copied()
            .chain(sources.sections.iter().map(String::as_str))
            .chain(["config"])
            .collect();
        let mut env: Vec<(String, String)> = Vec::new();
        let mut ignored_env = Vec::new();
        for (name, value) in sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        {
            match env_names::classify(name, value, &known) {
                EnvName::Key => env.push((name.clone(), value.clone())),
                EnvName::ServiceLink => {}
                EnvName::Stray => ignored_env.push(name.clone()),
                EnvName::Misspelt { meant } => {
                    let hint = meant
                        .map(|m| format!("; did you mean {m}?"))
                        .unwrap_or_default();
                    return Err(ConfigError::new(
                        name,
                        format!("not a configuration key{hint}"),
                    ));
                }
            }
        }
        ignored_env.sort();
        for (name, value) in &env {
            let key = &name[ENV_PREFIX.len()..];
            // BASALT_CONFIG names the file; *_FILE variables are read below.
            if key == "CONFIG" || key.ends_with("_FILE") || key.is_empty() {
                continue;
            }
            figment = figment.merge(EnvVar::new(name, value));
        }
        for file in read_secret_files(&env)? {
            figment = figment.merge(file);
        }

        reject_unknown_keys(&figment, &sources.sections)?;
        let raw: RawConfig = figment.extract().map_err(figment_error)?;
        let mut config = raw.validate()?;
        config.layers = figment;
        config.ignored_env = ignored_env;
        Ok(config)
    }

    /// Logs, once per variable, the `BASALT_*` variables that were left out
    /// as not configuration: a warning, not a refusal, because the
    /// environment is shared (a shell's `BASALT_BIN`).
    pub fn warn_ignored_env(&self) {
        for name in &self.ignored_env {
            tracing::warn!(
                variable = %name,
                "environment variable ignored: not a Basalt configuration key"
            );
        }
    }

    /// A module's checked section as [`crate::Module::config`] returns it,
    /// for `basalt config print`: the values as resolved, under `name`.
    pub fn printable<T: serde::Serialize>(
        name: &str,
        section: &T,
    ) -> Result<Option<toml::Value>, ConfigError> {
        toml::Value::try_from(section)
            .map(Some)
            .map_err(|e| ConfigError {
                key: name.into(),
                problem: e.to_string(),
            })
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
            ignored_env: Vec::new(),
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
