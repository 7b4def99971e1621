//! The shop's configuration section: `[shop]`, `[shop.stripe]` and
//! `[shop.paypal]` in the TOML file, `BASALT_SHOP__*` in the environment.
//! Every API key and webhook secret is a [`Secret`], so it also has a
//! `*_FILE` form (`BASALT_SHOP__STRIPE__SECRET_KEY_FILE`) and prints
//! redacted.

use basalt_platform::config::Secret;
use serde::{Deserialize, Serialize};

/// Everything tunable about the shop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    /// How long a checkout holds its stock before an unpaid order's
    /// reservation is released (the order is cancelled).
    pub reservation_ttl_secs: u64,
    /// Stripe (`[shop.stripe]`); unset keys mean Stripe is not offered.
    pub stripe: StripeConfig,
    /// PayPal (`[shop.paypal]`); unset keys mean PayPal is not offered.
    pub paypal: PaypalConfig,
}

/// Stripe's API key, webhook secret and API base.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeConfig {
    /// The secret API key (`sk_…`).
    pub secret_key: Option<Secret>,
    /// The webhook endpoint's signing secret (`whsec_…`), used whole as the
    /// HMAC key.
    pub webhook_secret: Option<Secret>,
    /// Where Stripe's API is; a local fake (localstripe) in tests.
    pub api_base: String,
}

/// PayPal's REST credentials, webhook id and API base.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaypalConfig {
    /// The REST app's client id.
    pub client_id: Option<String>,
    /// The REST app's secret.
    pub client_secret: Option<Secret>,
    /// The id PayPal gave the webhook, part of every signed message.
    pub webhook_id: Option<String>,
    /// Where PayPal's API is (sandbox: `https://api-m.sandbox.paypal.com`).
    pub api_base: String,
    /// The only hosts a webhook's `PAYPAL-CERT-URL` may name. Certificate
    /// URLs must be https, except on a loopback address (tests).
    pub cert_url_hosts: Vec<String>,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            reservation_ttl_secs: 900,
            stripe: StripeConfig::default(),
            paypal: PaypalConfig::default(),
        }
    }
}

impl Default for StripeConfig {
    fn default() -> Self {
        Self {
            secret_key: None,
            webhook_secret: None,
            api_base: "https://api.stripe.com".into(),
        }
    }
}

impl Default for PaypalConfig {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            webhook_id: None,
            api_base: "https://api-m.paypal.com".into(),
            cert_url_hosts: vec!["api.paypal.com".into(), "api.sandbox.paypal.com".into()],
        }
    }
}

impl ShopConfig {
    /// Checks values that would make the shop misbehave.
    pub fn validate(&self) -> Result<(), String> {
        if !(60..=86_400).contains(&self.reservation_ttl_secs) {
            return Err("shop.reservation_ttl_secs must be between 60 and 86400".into());
        }
        for (key, base) in [
            ("shop.stripe.api_base", &self.stripe.api_base),
            ("shop.paypal.api_base", &self.paypal.api_base),
        ] {
            if !(base.starts_with("https://") || base.starts_with("http://")) {
                return Err(format!("{key} must be an http(s) URL"));
            }
        }
        Ok(())
    }
}
