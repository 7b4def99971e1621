//! PayPal, through Orders v2: one PayPal order (intent `CAPTURE`) per shop
//! order, approved by the buyer on PayPal (the `approve` link), then
//! captured by the server, which is where the money moves; refunds go to
//! the capture.
//!
//! - **Authentication**: an OAuth2 client-credentials token from
//!   `/v1/oauth2/token`, cached until shortly before it expires (and fetched
//!   again once if PayPal answers 401 anyway).
//! - **Idempotency**: every POST carries `PayPal-Request-Id`; PayPal answers
//!   a repeated id with its first answer, so a retried capture or refund
//!   never moves money twice.
//! - **Amounts** are decimal strings in PayPal's API (`"19.99"`), written
//!   from and read back into minor units with [`Currency::minor_digits`]:
//!   no float on the way.
//! - **Cancel**: a PayPal order that Basalt has not captured moves no money
//!   (intent `CAPTURE` means only the merchant's capture charges the buyer),
//!   and PayPal has no call to void an unapproved one: it expires by itself.
//!   So `cancel` only checks that the order was not captured (a captured one
//!   must be refunded instead) and does nothing on PayPal's side.
//! - **Webhooks** are verified with PayPal's self-verification scheme: the
//!   RSA-SHA256 (PKCS#1 v1.5) signature in `PAYPAL-TRANSMISSION-SIG`, over
//!   `transmission_id|transmission_time|webhook_id|crc32(raw body)`, checked
//!   with the public key of the certificate at `PAYPAL-CERT-URL`. That URL
//!   must name one of `shop.paypal.cert_url_hosts` and use https; plain http
//!   is accepted only for a loopback address that is itself listed there
//!   (tests), never by default. Certificates are cached by URL.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::HeaderMap;
use basalt_platform::config::Secret;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::{
    CreatedPayment, PaymentError, PaymentProvider, PaymentRequest, PaymentState, ProviderName,
    WebhookEvent, WebhookKind,
};
use crate::config::PaypalConfig;
use crate::money::{Currency, Money};

/// How long one request to PayPal may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A token is fetched again this long before PayPal says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The largest certificate file Basalt reads.
const MAX_CERT_BYTES: usize = 64 * 1024;

/// Certificates kept (PayPal signs with few; the bound only stops a flood
/// of made-up URLs on allowed hosts from growing the cache).
const MAX_CACHED_CERTS: usize = 16;

/// The PayPal adapter.
pub struct PaypalProvider {
    client: reqwest::Client,
    /// `shop.paypal.api_base`, without a trailing slash.
    api_base: String,
    client_id: String,
    client_secret: Secret,
    webhook_id: Option<String>,
    cert_url_hosts: Vec<String>,
    token: Mutex<Option<CachedToken>>,
    /// Public keys (PKCS#1 `RSAPublicKey` DER) by certificate URL.
    certs: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl std::fmt::Debug for PaypalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaypalProvider")
            .field("api_base", &self.api_base)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

struct CachedToken {
    access_token: String,
    renew_at: Instant,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// A PayPal order, as far as Basalt reads it.
#[derive(Debug, Deserialize)]
struct Order {
    id: String,
    status: String,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    purchase_units: Vec<PurchaseUnit>,
}

#[derive(Debug, Deserialize)]
struct Link {
    href: String,
    rel: String,
}

#[derive(Debug, Deserialize)]
struct PurchaseUnit {
    payments: Option<UnitPayments>,
}

#[derive(Debug, Deserialize)]
struct UnitPayments {
    #[serde(default)]
    captures: Vec<Capture>,
}

#[derive(Debug, Deserialize)]
struct Capture {
    id: String,
    status: String,
    amount: Amount,
}

#[derive(Debug, Deserialize)]
struct Amount {
    currency_code: String,
    value: String,
}

#[derive(Debug, Deserialize)]
struct Refund {
    id: String,
    status: String,
}

/// PayPal's error body: `{"name", "message", "details": [{"issue"}]}`.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    name: Option<String>,
    message: Option<String>,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    issue: Option<String>,
}

/// An answer PayPal refused, kept whole so callers can read the issue.
#[derive(Debug)]
struct Refusal {
    status: u16,
    body: ErrorBody,
}

impl Refusal {
    fn has_issue(&self, issue: &str) -> bool {
        self.body
            .details
            .iter()
            .any(|d| d.issue.as_deref() == Some(issue))
    }

    fn into_error(self) -> PaymentError {
        let message = self
            .body
            .details
            .iter()
            .find_map(|d| d.issue.clone())
            .or(self.body.message)
            .or(self.body.name)
            .unwrap_or_else(|| format!("HTTP {}", self.status));
        PaymentError::Refused(message)
    }
}

enum Failure {
    /// 4xx other than authentication: the request was refused.
    Refused(Refusal),
    /// Anything that says "try later".
    Error(PaymentError),
}

impl From<PaymentError> for Failure {
    fn from(e: PaymentError) -> Self {
        Self::Error(e)
    }
}

impl Failure {
    fn into_error(self) -> PaymentError {
        match self {
            Self::Refused(refusal) => refusal.into_error(),
            Self::Error(e) => e,
        }
    }
}

/// A webhook event, as far as Basalt reads it.
#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    event_type: String,
    #[serde(default)]
    resource: serde_json::Value,
}

/// Decimals PayPal takes for `currency`: ISO 4217's, except HUF and TWD,
/// which PayPal takes in whole units only (its currency codes page).
fn paypal_digits(currency: Currency) -> u32 {
    match currency.as_str() {
        "HUF" | "TWD" => 0,
        _ => currency.minor_digits(),
    }
}

/// `amount` as PayPal writes it: `"19.99"`, `"500"` for JPY, `"1500"` for
/// 150000 HUF minor units (an amount with fillér is refused: PayPal takes
/// none).
pub fn decimal(amount: Money) -> Result<String, PaymentError> {
    if amount.amount < 0 {
        return Err(PaymentError::Refused(
            "PayPal takes no negative amount".into(),
        ));
    }
    let units = amount.amount.unsigned_abs();
    let dropped = amount.currency.minor_digits() - paypal_digits(amount.currency);
    let dropped_scale = 10_u64.pow(dropped);
    if !units.is_multiple_of(dropped_scale) {
        return Err(PaymentError::Refused(format!(
            "PayPal takes {} in whole units only",
            amount.currency
        )));
    }
    let units = units / dropped_scale;
    let digits = paypal_digits(amount.currency);
    if digits == 0 {
        return Ok(units.to_string());
    }
    let scale = 10_u64.pow(digits);
    Ok(format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = digits as usize
    ))
}

/// Reads PayPal's decimal string back into minor units: digits, and at most
/// the decimals PayPal uses for the currency (`"19.9"` is 1990 cents).
pub fn parse_decimal(value: &str, currency_code: &str) -> Result<Money, PaymentError> {
    let bad = || PaymentError::Unavailable(format!("PayPal answered an amount {value:?}"));
    let currency = Currency::parse(currency_code).map_err(|_| bad())?;
    let digits = paypal_digits(currency) as usize;
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > digits {
        return Err(bad());
    }
    if value.contains('.') && fraction.is_empty() {
        return Err(bad());
    }
    let padded = format!("{whole}{fraction:0<digits$}");
    let amount = padded
        .parse::<i64>()
        .ok()
        .and_then(|a| a.checked_mul(10_i64.pow(currency.minor_digits() - digits as u32)))
        .ok_or_else(bad)?;
    Ok(Money::new(amount, currency))
}

/// Ids go into URL paths: only PayPal's alphabet (capitals and digits,
/// letters and digits for captures) is let through.
fn checked_id(id: &str) -> Result<&str, PaymentError> {
    let well_formed = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if well_formed {
        Ok(id)
    } else {
        Err(PaymentError::Refused("not a PayPal id".into()))
    }
}

impl Order {
    /// The order's first completed (or pending) capture.
    fn capture(&self) -> Option<&Capture> {
        self.purchase_units
            .iter()
            .filter_map(|u| u.payments.as_ref())
            .flat_map(|p| &p.captures)
            .next()
    }

    /// Where the payment stands.
    fn state(&self) -> Result<PaymentState, PaymentError> {
        match self.status.as_str() {
            "COMPLETED" => match self.capture() {
                Some(capture) => capture.state(),
                None => Err(PaymentError::Unavailable(format!(
                    "PayPal order {} is completed without a capture",
                    self.id
                ))),
            },
            "VOIDED" => Ok(PaymentState::Failed),
            // CREATED, SAVED, APPROVED, PAYER_ACTION_REQUIRED.
            _ => Ok(PaymentState::Pending),
        }
    }
}

impl Capture {
    fn state(&self) -> Result<PaymentState, PaymentError> {
        Ok(match self.status.as_str() {
            // Captured (and maybe refunded since: that is the shop's record).
            "COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED" => PaymentState::Succeeded {
                amount: parse_decimal(&self.amount.value, &self.amount.currency_code)?,
            },
            "DECLINED" | "FAILED" => PaymentState::Failed,
            // PENDING: an eCheck, a review; PayPal's webhook says when done.
            _ => PaymentState::Pending,
        })
    }
}

/// Whether `url` may be fetched for a certificate: https on one of `hosts`,
/// or http(s) on a loopback address that is itself one of `hosts`.
fn cert_url_allowed(url: &url::Url, hosts: &[String]) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return false;
    }
    let loopback = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => true,
        "http" => loopback,
        _ => false,
    }
}

/// The RSA public key (PKCS#1 DER) of the first certificate in `pem`, if
/// it is an RSA certificate valid now.
fn rsa_key_of(pem: &[u8]) -> Result<Vec<u8>, PaymentError> {
    let refused = |why: &str| PaymentError::Unverified(format!("PayPal certificate: {why}"));
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| refused("not PEM"))?;
    let cert = pem.parse_x509().map_err(|_| refused("not X.509"))?;
    if !cert.validity().is_valid() {
        return Err(refused("expired or not yet valid"));
    }
    let key = cert.public_key();
    if key.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Err(refused("not an RSA key"));
    }
    Ok(key.subject_public_key.data.to_vec())
}

impl PaypalProvider {
    /// The adapter for `config`, or `None` unless both `shop.paypal.client_id`
    /// and `client_secret` are set (PayPal is then not offered).
    pub fn from_config(config: &PaypalConfig) -> anyhow::Result<Option<Self>> {
        let (Some(client_id), Some(client_secret)) =
            (config.client_id.clone(), config.client_secret.clone())
        else {
            return Ok(None);
        };
        basalt_platform::server::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Self {
            client,
            api_base: config.api_base.trim_end_matches('/').to_owned(),
            client_id,
            client_secret,
            webhook_id: config.webhook_id.clone(),
            cert_url_hosts: config.cert_url_hosts.clone(),
            token: Mutex::new(None),
            certs: Mutex::new(HashMap::new()),
        }))
    }

    /// A valid access token, from the cache or fresh from PayPal.
    async fn token(&self, renew: bool) -> Result<String, PaymentError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && !renew
            && Instant::now() < token.renew_at
        {
            return Ok(token.access_token.clone());
        }
        let response = self
            .client
            .post(format!("{}/v1/oauth2/token", self.api_base))
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header("PayPal-Request-Id", uuid::Uuid::new_v4().to_string())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("PayPal: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            tracing::error!(%status, "PayPal refused Basalt's client credentials");
            return Err(PaymentError::Unavailable(
                "PayPal refused the client credentials".into(),
            ));
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("PayPal's token: {e}")))?;
        let lifetime = Duration::from_secs(token.expires_in).saturating_sub(TOKEN_MARGIN);
        *cached = Some(CachedToken {
            access_token: token.access_token.clone(),
            renew_at: Instant::now() + lifetime,
        });
        Ok(token.access_token)
    }

    /// One authenticated call (a POST with a JSON body and a
    /// `PayPal-Request-Id` when `body` is given), fetching a new token once
    /// if PayPal no longer takes the cached one.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<(&serde_json::Value, &str)>,
    ) -> Result<T, Failure> {
        let mut renew = false;
        loop {
            let token = self.token(renew).await?;
            let url = format!("{}{path}", self.api_base);
            let request = match body {
                Some((json, request_id)) => self
                    .client
                    .post(url)
                    .header("PayPal-Request-Id", request_id)
                    .json(json),
                None => self.client.get(url),
            };
            let response = request
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| PaymentError::Unavailable(format!("PayPal: {e}")))?;
            let status = response.status();
            let bytes = response
                .bytes()
                .await
                .map_err(|e| PaymentError::Unavailable(format!("PayPal: {e}")))?;
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::Error(PaymentError::Unavailable(format!(
                        "PayPal answered what Basalt cannot read: {e}"
                    )))
                });
            }
            match status.as_u16() {
                401 if !renew => renew = true,
                401 | 403 => {
                    tracing::error!(%status, "PayPal refused Basalt's access token");
                    return Err(PaymentError::Unavailable("PayPal refused the token".into()).into());
                }
                429 => {
                    return Err(PaymentError::Unavailable("PayPal is rate limiting".into()).into());
                }
                400..=499 => {
                    let body = serde_json::from_slice(&bytes).unwrap_or_default();
                    let refusal = Refusal {
                        status: status.as_u16(),
                        body,
                    };
                    tracing::info!(%status, error = ?refusal.body, "PayPal refused a request");
                    return Err(Failure::Refused(refusal));
                }
                _ => {
                    return Err(
                        PaymentError::Unavailable(format!("PayPal answered {status}")).into(),
                    );
                }
            }
        }
    }

    async fn order(&self, id: &str) -> Result<Order, PaymentError> {
        let id = checked_id(id)?;
        self.call(&format!("/v2/checkout/orders/{id}"), None)
            .await
            .map_err(Failure::into_error)
    }

    /// The public key of the certificate at `url`, from the cache or
    /// fetched (the URL checked first).
    async fn cert_key(&self, url: &str) -> Result<Arc<Vec<u8>>, PaymentError> {
        if let Some(key) = self.certs.lock().await.get(url) {
            return Ok(key.clone());
        }
        let parsed = url::Url::parse(url)
            .map_err(|_| PaymentError::Unverified("PAYPAL-CERT-URL is not a URL".into()))?;
        if !cert_url_allowed(&parsed, &self.cert_url_hosts) {
            return Err(PaymentError::Unverified(format!(
                "certificate URL not allowed: {}",
                parsed.host_str().unwrap_or("no host")
            )));
        }
        let response = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("PayPal certificate: {e}")))?;
        if !response.status().is_success() {
            return Err(PaymentError::Unavailable(format!(
                "PayPal certificate: HTTP {}",
                response.status()
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CERT_BYTES as u64)
        {
            return Err(PaymentError::Unverified("certificate too large".into()));
        }
        let pem = response
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("PayPal certificate: {e}")))?;
        if pem.len() > MAX_CERT_BYTES {
            return Err(PaymentError::Unverified("certificate too large".into()));
        }
        let key = Arc::new(rsa_key_of(&pem)?);
        let mut certs = self.certs.lock().await;
        if certs.len() >= MAX_CACHED_CERTS {
            certs.clear();
        }
        certs.insert(url.to_owned(), key.clone());
        Ok(key)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, PaymentError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PaymentError::Unverified(format!("no {name} header")))
}

/// The message PayPal signs for a delivery.
pub fn signed_message(
    transmission_id: &str,
    transmission_time: &str,
    webhook_id: &str,
    body: &[u8],
) -> String {
    format!(
        "{transmission_id}|{transmission_time}|{webhook_id}|{}",
        crc32fast::hash(body)
    )
}

#[async_trait]
impl PaymentProvider for PaypalProvider {
    fn name(&self) -> ProviderName {
        ProviderName::Paypal
    }

    async fn create(&self, request: &PaymentRequest) -> Result<CreatedPayment, PaymentError> {
        if request.amount.amount <= 0 {
            return Err(PaymentError::Refused("nothing to pay".into()));
        }
        let body = json!({
            "intent": "CAPTURE",
            "purchase_units": [{
                "reference_id": request.order_id.to_string(),
                "custom_id": request.order_id.to_string(),
                "description": format!("Order {}", request.order_number),
                "amount": {
                    "currency_code": request.amount.currency.as_str(),
                    "value": decimal(request.amount)?,
                },
            }],
        });
        let order: Order = self
            .call(
                "/v2/checkout/orders",
                Some((&body, &request.idempotency_key)),
            )
            .await
            .map_err(Failure::into_error)?;
        let approve_url = order
            .links
            .iter()
            .find(|l| l.rel == "approve" || l.rel == "payer-action")
            .map(|l| l.href.clone());
        if approve_url.is_none() {
            return Err(PaymentError::Unavailable(
                "PayPal gave no approve link".into(),
            ));
        }
        Ok(CreatedPayment {
            provider_id: order.id,
            client_secret: None,
            approve_url,
        })
    }

    async fn confirm(
        &self,
        provider_id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentState, PaymentError> {
        let order = self.order(provider_id).await?;
        if order.status != "APPROVED" {
            return order.state();
        }
        let id = checked_id(provider_id)?;
        let captured = self
            .call::<Order>(
                &format!("/v2/checkout/orders/{id}/capture"),
                Some((&json!({}), idempotency_key)),
            )
            .await;
        match captured {
            Ok(order) => order.state(),
            // Captured in the meantime (the webhook's path, another node):
            // read what was captured.
            Err(Failure::Refused(refusal)) if refusal.has_issue("ORDER_ALREADY_CAPTURED") => {
                self.order(provider_id).await?.state()
            }
            // The buyer's funding failed; PayPal lets them choose another.
            Err(Failure::Refused(refusal))
                if refusal.has_issue("INSTRUMENT_DECLINED")
                    || refusal.has_issue("ORDER_NOT_APPROVED") =>
            {
                Ok(PaymentState::Pending)
            }
            Err(other) => Err(other.into_error()),
        }
    }

    async fn cancel(&self, provider_id: &str) -> Result<(), PaymentError> {
        // Nothing to call: an order Basalt did not capture charges nobody
        // and expires on PayPal's side. A captured one is refunded instead.
        match self.order(provider_id).await?.status.as_str() {
            "COMPLETED" => Err(PaymentError::Refused(
                "the PayPal order was captured: refund it instead".into(),
            )),
            _ => Ok(()),
        }
    }

    async fn refund(
        &self,
        provider_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<String, PaymentError> {
        if amount.amount <= 0 {
            return Err(PaymentError::Refused(
                "a refund is of a positive amount".into(),
            ));
        }
        // The shop knows the PayPal order; refunds go to its capture.
        let order = self.order(provider_id).await?;
        let capture = order
            .capture()
            .ok_or_else(|| PaymentError::Refused("the PayPal order was not captured".into()))?;
        let capture_id = checked_id(&capture.id)?;
        let body = json!({
            "amount": {
                "currency_code": amount.currency.as_str(),
                "value": decimal(amount)?,
            },
        });
        let refund: Refund = self
            .call(
                &format!("/v2/payments/captures/{capture_id}/refund"),
                Some((&body, idempotency_key)),
            )
            .await
            .map_err(Failure::into_error)?;
        match refund.status.as_str() {
            "CANCELLED" | "FAILED" => Err(PaymentError::Refused(format!(
                "PayPal did not refund ({})",
                refund.id
            ))),
            _ => Ok(refund.id),
        }
    }

    async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, PaymentError> {
        let Some(webhook_id) = &self.webhook_id else {
            tracing::warn!("a PayPal webhook arrived, but shop.paypal.webhook_id is not set");
            return Err(PaymentError::Unverified(
                "no webhook id is configured".into(),
            ));
        };
        let transmission_id = header(headers, "paypal-transmission-id")?;
        let transmission_time = header(headers, "paypal-transmission-time")?;
        let signature = header(headers, "paypal-transmission-sig")?;
        let cert_url = header(headers, "paypal-cert-url")?;
        let algorithm = header(headers, "paypal-auth-algo")?;
        if algorithm != "SHA256withRSA" {
            return Err(PaymentError::Unverified(format!(
                "unsupported PAYPAL-AUTH-ALGO {algorithm:?}"
            )));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature)
            .map_err(|_| {
                PaymentError::Unverified("PAYPAL-TRANSMISSION-SIG is not base64".into())
            })?;
        let key = self.cert_key(cert_url).await?;
        let message = signed_message(transmission_id, transmission_time, webhook_id, body);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.as_slice(),
        )
        .verify(message.as_bytes(), &signature)
        .map_err(|_| PaymentError::Unverified("the signature does not match".into()))?;

        let event: Event = serde_json::from_slice(body)
            .map_err(|e| PaymentError::Unverified(format!("not a PayPal event: {e}")))?;
        let order_id = || {
            event
                .resource
                .pointer("/supplementary_data/related_ids/order_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let kind = match (event.event_type.as_str(), order_id()) {
            ("PAYMENT.CAPTURE.COMPLETED", Some(provider_id)) => {
                let capture: Capture = serde_json::from_value(event.resource.clone())
                    .map_err(|e| PaymentError::Unverified(format!("not a capture: {e}")))?;
                WebhookKind::PaymentSucceeded {
                    provider_id,
                    amount: parse_decimal(&capture.amount.value, &capture.amount.currency_code)?,
                }
            }
            ("PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED", Some(provider_id)) => {
                WebhookKind::PaymentFailed { provider_id }
            }
            // The resource is the order itself.
            ("CHECKOUT.ORDER.APPROVED", _) => {
                match event.resource.get("id").and_then(|v| v.as_str()) {
                    Some(id) => WebhookKind::PaymentApproved {
                        provider_id: id.to_owned(),
                    },
                    None => WebhookKind::Other(event.event_type.clone()),
                }
            }
            (other, _) => WebhookKind::Other(other.to_owned()),
        };
        Ok(WebhookEvent {
            event_id: event.id,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(amount: i64, code: &str) -> Money {
        Money::new(amount, Currency::parse(code).expect("currency"))
    }

    #[test]
    fn amounts_are_written_with_the_currencys_decimals() {
        assert_eq!(decimal(money(1999, "EUR")).ok().as_deref(), Some("19.99"));
        assert_eq!(decimal(money(5, "USD")).ok().as_deref(), Some("0.05"));
        assert_eq!(decimal(money(500, "JPY")).ok().as_deref(), Some("500"));
        assert_eq!(decimal(money(1234, "KWD")).ok().as_deref(), Some("1.234"));
        assert!(decimal(money(-1, "EUR")).is_err());
        // PayPal takes forints and Taiwan dollars in whole units.
        assert_eq!(decimal(money(150_000, "HUF")).ok().as_deref(), Some("1500"));
        assert!(decimal(money(150_050, "HUF")).is_err());
        assert_eq!(decimal(money(9_900, "TWD")).ok().as_deref(), Some("99"));
    }

    #[test]
    fn amounts_are_read_back_exactly() {
        assert_eq!(parse_decimal("19.99", "EUR").ok(), Some(money(1999, "EUR")));
        assert_eq!(parse_decimal("19.9", "EUR").ok(), Some(money(1990, "EUR")));
        assert_eq!(parse_decimal("20", "EUR").ok(), Some(money(2000, "EUR")));
        assert_eq!(parse_decimal("500", "JPY").ok(), Some(money(500, "JPY")));
        for bad in ["", ".5", "19.", "19.999", "-1.00", "1e3", "1,00", "19.99 "] {
            assert!(parse_decimal(bad, "EUR").is_err(), "{bad:?}");
        }
        assert!(parse_decimal("5.0", "JPY").is_err());
        assert_eq!(
            parse_decimal("1500", "HUF").ok(),
            Some(money(150_000, "HUF"))
        );
        assert!(parse_decimal("1500.50", "HUF").is_err());
        assert!(parse_decimal("5", "eur").is_err());
    }

    #[test]
    fn certificate_urls_are_https_on_the_listed_hosts_or_loopback_when_listed() {
        let hosts = vec!["api.paypal.com".to_owned(), "127.0.0.1".to_owned()];
        let allowed = |url: &str| cert_url_allowed(&url::Url::parse(url).expect("url"), &hosts);
        assert!(allowed(
            "https://api.paypal.com/v1/notifications/certs/CERT-1"
        ));
        assert!(allowed("https://API.PAYPAL.COM/cert"));
        assert!(allowed("http://127.0.0.1:8080/cert"));
        assert!(!allowed("http://api.paypal.com/cert"), "plain http");
        assert!(!allowed("https://api.paypal.com.evil.example/cert"));
        assert!(!allowed("https://evil.example/cert"));
        assert!(
            !allowed("http://127.0.0.2/cert"),
            "loopback, but not listed"
        );
        assert!(!allowed("ftp://api.paypal.com/cert"));
        // PayPal's own hosts only, by default: no loopback in production.
        let defaults = PaypalConfig::default().cert_url_hosts;
        assert!(!cert_url_allowed(
            &url::Url::parse("http://127.0.0.1/cert").expect("url"),
            &defaults
        ));
    }

    #[test]
    fn the_signed_message_ends_with_the_unsigned_crc32_of_the_body() {
        // crc32("123456789") is 0xCBF43926, the CRC-32 check value.
        assert_eq!(
            signed_message("id-1", "2026-01-01T00:00:00Z", "WH-1", b"123456789"),
            "id-1|2026-01-01T00:00:00Z|WH-1|3421780262"
        );
    }
}
