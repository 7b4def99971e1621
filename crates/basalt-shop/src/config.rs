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
    /// Idempotency keys (`[shop.idempotency]`).
    pub idempotency: IdempotencyConfig,
    /// Merchant webhooks, the shop's outgoing calls (`[shop.webhooks]`).
    pub webhooks: WebhooksConfig,
}

/// How long idempotency keys live and are held.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdempotencyConfig {
    /// How long a key lives after its first use (Stripe: 24 h).
    pub ttl_secs: u64,
    /// How long a request in flight holds its key without renewing it: a
    /// dropped request's key is free again after this.
    pub lease_secs: u64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 86_400,
            lease_secs: 60,
        }
    }
}

/// Deliveries to merchants' webhook endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Lets endpoints be on loopback, private, link-local and other
    /// non-public addresses. Off in production (a merchant's URL must not
    /// reach the server's own network: SSRF); tests turn it on.
    pub allow_private_addresses: bool,
    /// The longest one delivery attempt may take, connecting included.
    pub timeout_secs: u64,
    /// Attempts per delivery before it is given up (retried with the job
    /// queue's exponential back-off in between).
    pub max_attempts: u32,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            timeout_secs: 10,
            max_attempts: 8,
        }
    }
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
            idempotency: IdempotencyConfig::default(),
            webhooks: WebhooksConfig::default(),
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
        if !(1..=7 * 86_400).contains(&self.idempotency.ttl_secs) {
            return Err("shop.idempotency.ttl_secs must be between 1 and 604800".into());
        }
        if !(1..=3_600).contains(&self.idempotency.lease_secs) {
            return Err("shop.idempotency.lease_secs must be between 1 and 3600".into());
        }
        if !(1..=60).contains(&self.webhooks.timeout_secs) {
            return Err("shop.webhooks.timeout_secs must be between 1 and 60".into());
        }
        if !(1..=50).contains(&self.webhooks.max_attempts) {
            return Err("shop.webhooks.max_attempts must be between 1 and 50".into());
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
