//! URLs that may hold a password: printed with the password replaced.

use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};
use url::Url;

use super::secret::redact_url_password;

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
            Self::Postgres(secret) => redact_url_password(secret.expose_secret()),
        }
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}
