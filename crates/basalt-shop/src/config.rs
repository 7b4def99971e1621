//! The shop's configuration section: `[shop]`, `[shop.stripe]` and
//! `[shop.paypal]` in the TOML file, `BASALT_SHOP__*` in the environment.
//! Every API key and webhook secret is a [`Secret`], so it also has a
//! `*_FILE` form (`BASALT_SHOP__STRIPE__SECRET_KEY_FILE`) and prints
//! redacted.

use std::collections::BTreeMap;

use basalt_platform::config::Secret;
use serde::{Deserialize, Serialize};

/// Everything tunable about the shop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopConfig {
    /// How long a checkout holds its stock before an unpaid order's
    /// reservation is released (the order is cancelled).
    pub reservation_ttl_secs: u64,
    /// When the sweep releasing expired reservations runs (cron, UTC, with
    /// seconds: every 30 s by default); once across the cluster.
    pub reservation_sweep: String,
    /// The currency of a cart created without one (ISO 4217).
    pub default_currency: String,
    /// Tax (`[shop.tax]`).
    pub tax: TaxConfig,
    /// Shipping (`[shop.shipping]`).
    pub shipping: ShippingConfig,
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

/// Tax by the shipping address's country, in basis points (1900 is 19 %),
/// charged on top of the discounted subtotal plus shipping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaxConfig {
    /// Rate per ISO 3166 alpha-2 country code (`DE = 1900`); any case.
    pub rates: BTreeMap<String, i64>,
    /// The rate of a country not listed.
    pub default_rate: i64,
}

impl TaxConfig {
    /// The rate for `country`, in basis points.
    pub fn rate_for(&self, country: &str) -> i64 {
        self.rates
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(country))
            .map_or(self.default_rate, |(_, rate)| *rate)
    }
}

/// How shipping is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShippingKind {
    /// One amount per order (`flat_rates`).
    #[default]
    Flat,
    /// Per started kilogram of the order's weight (`per_kg_rates`).
    Weight,
}

/// Shipping rates per currency, in minor units. A currency without a rate
/// ships free.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShippingConfig {
    /// `flat` or `weight`.
    pub kind: ShippingKind,
    /// Per order, by currency (`EUR = 495`).
    pub flat_rates: BTreeMap<String, i64>,
    /// Per started kilogram, by currency.
    pub per_kg_rates: BTreeMap<String, i64>,
    /// Orders whose discounted subtotal reaches this, by currency, ship free.
    pub free_over: BTreeMap<String, i64>,
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
    /// The only hosts a webhook's `PAYPAL-CERT-URL` may name (default:
    /// PayPal's own). Certificate URLs must be https, except on a loopback
    /// address that is itself listed here (tests: `["127.0.0.1"]`), so a
    /// production configuration never fetches a certificate over plain
    /// http or from the machine itself.
    pub cert_url_hosts: Vec<String>,
}

impl Default for ShopConfig {
    fn default() -> Self {
        Self {
            reservation_ttl_secs: 900,
            reservation_sweep: "*/30 * * * * *".into(),
            default_currency: "EUR".into(),
            tax: TaxConfig::default(),
            shipping: ShippingConfig::default(),
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
        if !(1..=86_400).contains(&self.reservation_ttl_secs) {
            return Err("shop.reservation_ttl_secs must be between 1 and 86400".into());
        }
        if crate::money::Currency::parse(&self.default_currency).is_err() {
            return Err("shop.default_currency must be an ISO 4217 code such as EUR".into());
        }
        let tax = self.tax.rates.values().chain([&self.tax.default_rate]);
        if tax.into_iter().any(|r| !(0..=10_000).contains(r)) {
            return Err("shop.tax rates are basis points from 0 to 10000".into());
        }
        let shipping = &self.shipping;
        for (key, rates) in [
            ("flat_rates", &shipping.flat_rates),
            ("per_kg_rates", &shipping.per_kg_rates),
            ("free_over", &shipping.free_over),
        ] {
            for (currency, amount) in rates {
                if crate::money::Currency::parse(&currency.to_ascii_uppercase()).is_err()
                    || *amount < 0
                {
                    return Err(format!(
                        "shop.shipping.{key} maps ISO 4217 codes to amounts of at least 0"
                    ));
                }
            }
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
