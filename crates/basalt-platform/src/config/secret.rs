//! Secrets in configuration: the [`Secret`] type any section can use.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// What a secret is printed as.
pub const REDACTED: &str = "[redacted]";

/// A secret configuration value (an API key, a client secret, a token),
/// usable in the platform's keys and in any module's section. It comes from
/// the file or the environment like any value, or from `BASALT_<KEY>_FILE`;
/// it is printed as `[redacted]` by `basalt config print`, `Debug` and
/// logs, and read only through [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value itself: for the one place that uses it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Secrets may look like numbers or booleans (`BASALT_METRICS_TOKEN=1234…`):
/// they are taken as text.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::new(scalar_text(d)?))
    }
}

/// A scalar of any type as its text.
pub(super) fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Signed(i64),
        Unsigned(u64),
        Float(f64),
        Bool(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::Text(s) => s,
        Scalar::Signed(n) => n.to_string(),
        Scalar::Unsigned(n) => n.to_string(),
        Scalar::Float(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
    })
}

/// `raw` with the password of its URL replaced, safe to print.
pub(super) fn redact_url_password(raw: &str) -> String {
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
