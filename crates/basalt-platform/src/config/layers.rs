//! How the layers are merged and checked: the raw shape of the platform's
//! keys, their validation into [`Config`], unknown keys, `*_FILE` variables
//! and error messages that name the key.

use std::path::PathBuf;

use axum::http::HeaderValue;
use figment::Figment;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use super::secret::scalar_text;
use super::{
    AmqpUrl, Config, ConfigError, DatabaseConfig, DatabaseUrl, ENV_PREFIX, EventsConfig,
    HttpConfig, JobsConfig, LogFormat, RedisConfig, RedisUrl, Secret, SmtpUrl, TlsFiles,
};
use crate::http::client_addr::TrustedProxies;
use crate::role::Role;

/// The configuration as it arrives from the layers, before validation.
/// Top-level keys of the platform itself; anything else must be a module's section.
pub(super) const PLATFORM_KEYS: &[&str] = &[
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
pub(super) struct RawConfig {
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

impl RawConfig {
    pub(super) fn validate(self) -> Result<Config, ConfigError> {
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
            Some(t) => Some(Secret::new(t.trim())),
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
pub(super) fn reject_unknown_keys(
    figment: &Figment,
    sections: &[String],
) -> Result<(), ConfigError> {
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

/// The values of `BASALT_<KEY>_FILE` variables: for any key, nested ones
/// too, the contents of the named file, as providers that name the variable
/// in errors. Values are taken as text, whatever they look like.
pub(super) fn read_secret_files(env: &[(String, String)]) -> Result<Vec<EnvVar>, ConfigError> {
    let mut found = Vec::new();
    for (file_var, path) in env {
        let Some(direct) = file_var.strip_suffix("_FILE") else {
            continue;
        };
        if direct.len() <= ENV_PREFIX.len() {
            continue;
        }
        if env.iter().any(|(k, _)| k == direct) {
            return Err(ConfigError::new(
                file_var,
                format!("set together with {direct}; set only one"),
            ));
        }
        let value = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(file_var, format!("cannot read `{path}`: {e}")))?;
        let value = value.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(ConfigError::new(file_var, format!("`{path}` is empty")));
        }
        found.push(EnvVar::from_file(file_var, direct, value));
    }
    Ok(found)
}

/// One `BASALT_*` variable as a figment provider, so that errors name it.
pub(super) struct EnvVar {
    name: String,
    key: String,
    value: String,
    /// Whether the value is read as figment reads variables (numbers,
    /// booleans, `[lists]`) or kept as text (the contents of a `*_FILE`).
    parse: bool,
}

impl EnvVar {
    /// `BASALT_HTTP__BODY_LIMIT_BYTES=…` as the value of `http.body_limit_bytes`.
    pub(super) fn new(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            key: key_of(name),
            value: value.to_owned(),
            parse: true,
        }
    }

    /// The contents of the file `file_var` names, as the value of the key
    /// `direct` (the variable without `_FILE`) names.
    fn from_file(file_var: &str, direct: &str, value: &str) -> Self {
        Self {
            name: file_var.to_owned(),
            key: key_of(direct),
            value: value.to_owned(),
            parse: false,
        }
    }
}

/// The dotted key of a variable: `BASALT_HTTP__BODY_LIMIT_BYTES` is
/// `http.body_limit_bytes`.
fn key_of(name: &str) -> String {
    name[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
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
        let value: figment::value::Value = if self.parse {
            self.value
                .parse()
                .unwrap_or_else(|_| self.value.clone().into())
        } else {
            self.value.clone().into()
        };
        let nested = figment::util::nest(&self.key, value);
        let dict = nested.into_dict().unwrap_or_default();
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Turns figment's error into one line naming the variable or file key.
pub(super) fn figment_error(error: figment::Error) -> ConfigError {
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
    struct Text(#[serde(deserialize_with = "scalar_text")] String);
    Ok(Option::<Text>::deserialize(d)?.map(|Text(s)| s))
}
