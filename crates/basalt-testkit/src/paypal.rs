//! A fake PayPal for tests, on loopback, following PayPal's published REST
//! contract for what Basalt uses:
//! - `POST /v1/oauth2/token` (client credentials, HTTP Basic), tokens that
//!   the test can expire ([`FakePaypal::expire_tokens`]);
//! - Orders v2: `POST /v2/checkout/orders` (intent `CAPTURE`, amounts as
//!   decimal strings with the currency's decimals, an `approve` link),
//!   `GET /v2/checkout/orders/{id}`, `POST /v2/checkout/orders/{id}/capture`
//!   (`ORDER_NOT_APPROVED` before the buyer approved,
//!   `ORDER_ALREADY_CAPTURED` after);
//! - `POST /v2/payments/captures/{id}/refund` (`REFUND_AMOUNT_EXCEEDED`);
//! - `PayPal-Request-Id`: a repeated id on the same path gets the first
//!   answer again, as PayPal does;
//! - webhooks signed the way PayPal's self-verification scheme expects:
//!   RSA-SHA256 over `transmission_id|transmission_time|webhook_id|crc32`,
//!   with a certificate (generated with rcgen for a test key shipped here)
//!   served at [`FakePaypal::cert_url`].
//!
//! The buyer's approval on PayPal's site is [`FakePaypal::approve`].
//!
//! `paypal/key.pem` and `paypal/other-key.pem` are RSA keys made for these
//! tests only (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`):
//! ring, the process's crypto backend, cannot generate RSA keys.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

/// The REST app's client id the fake accepts.
pub const CLIENT_ID: &str = "basalt-test-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "basalt-test-secret";
/// The webhook id to configure (and to sign deliveries for).
pub const WEBHOOK_ID: &str = "WH-BASALT-TEST";

const KEY_PEM: &str = include_str!("paypal/key.pem");
const OTHER_KEY_PEM: &str = include_str!("paypal/other-key.pem");
const CERT_PATH: &str = "/v1/notifications/certs/CERT-basalt-test";

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// `POST`, `GET`.
    pub method: String,
    /// The path.
    pub path: String,
    /// Its `PayPal-Request-Id`, if any.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone)]
struct FakeOrder {
    currency: String,
    /// Minor units.
    amount: i64,
    status: &'static str,
    custom_id: Option<String>,
    capture: Option<FakeCapture>,
}

#[derive(Debug, Clone)]
struct FakeCapture {
    id: String,
    refunded: i64,
}

#[derive(Default)]
struct Inner {
    orders: HashMap<String, FakeOrder>,
    /// Capture id → order id.
    captures: HashMap<String, String>,
    tokens: HashSet<String>,
    token_requests: usize,
    /// (path, PayPal-Request-Id) → the first answer.
    replays: HashMap<(String, String), (StatusCode, Value)>,
    log: Vec<Recorded>,
    /// `expires_in` of the tokens issued.
    token_lifetime: u64,
    /// Orders that someone else captures just before Basalt's capture call.
    raced: HashSet<String>,
}

type Shared = Arc<Mutex<Inner>>;

/// A running fake PayPal on `127.0.0.1`; stops when dropped.
pub struct FakePaypal {
    addr: SocketAddr,
    inner: Shared,
    key: Arc<ring::signature::RsaKeyPair>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakePaypal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePaypal")
            .field("addr", &self.addr)
            .finish()
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("test key is PEM")
}

/// Decimals PayPal wants for `currency` (JPY, HUF and TWD take none).
fn decimals(currency: &str) -> usize {
    match currency {
        "JPY" | "HUF" | "TWD" => 0,
        _ => 2,
    }
}

fn value_of(amount: i64, currency: &str) -> String {
    let digits = decimals(currency);
    if digits == 0 {
        return amount.to_string();
    }
    let scale = 10_i64.pow(digits as u32);
    format!("{}.{:02}", amount / scale, amount % scale)
}

/// Minor units of a PayPal amount, or `None` where PayPal answers
/// `DECIMAL_PRECISION` / `INVALID_PARAMETER_SYNTAX`.
fn minor_units(value: &str, currency: &str) -> Option<i64> {
    let digits = decimals(currency);
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && fraction.len() <= digits
        && !(value.contains('.') && fraction.is_empty());
    if !ok {
        return None;
    }
    format!("{whole}{fraction:0<digits$}").parse().ok()
}

fn issue(status: StatusCode, name: &str, issue: &str) -> (StatusCode, Value) {
    (
        status,
        json!({
            "name": name,
            "message": "The requested action could not be performed.",
            "debug_id": "fake",
            "details": [{"issue": issue, "description": issue}],
        }),
    )
}

fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_ascii_uppercase();
    format!("{prefix}{}", &hex[..17 - prefix.len()])
}

impl FakeOrder {
    fn json(&self, id: &str, base: &str) -> Value {
        let mut unit = json!({
            "reference_id": "default",
            "amount": {"currency_code": self.currency, "value": value_of(self.amount, &self.currency)},
        });
        if let Some(custom) = &self.custom_id {
            unit["custom_id"] = json!(custom);
        }
        if let Some(capture) = &self.capture {
            unit["payments"] = json!({"captures": [capture.json(self, id)]});
        }
        json!({
            "id": id,
            "intent": "CAPTURE",
            "status": self.status,
            "purchase_units": [unit],
            "links": [
                {"href": format!("{base}/v2/checkout/orders/{id}"), "rel": "self", "method": "GET"},
                {"href": format!("https://www.sandbox.paypal.com/checkoutnow?token={id}"), "rel": "approve", "method": "GET"},
                {"href": format!("{base}/v2/checkout/orders/{id}/capture"), "rel": "capture", "method": "POST"},
            ],
        })
    }
}

impl FakeCapture {
    fn status(&self, order: &FakeOrder) -> &'static str {
        match self.refunded {
            0 => "COMPLETED",
            r if r >= order.amount => "REFUNDED",
            _ => "PARTIALLY_REFUNDED",
        }
    }

    fn json(&self, order: &FakeOrder, order_id: &str) -> Value {
        json!({
            "id": self.id,
            "status": self.status(order),
            "amount": {"currency_code": order.currency, "value": value_of(order.amount, &order.currency)},
            "final_capture": true,
            "custom_id": order.custom_id,
            "supplementary_data": {"related_ids": {"order_id": order_id}},
        })
    }
}

#[derive(Clone)]
struct App {
    inner: Shared,
    cert_pem: Arc<String>,
    base: Arc<String>,
}

fn record(inner: &Shared, method: &str, path: &str, headers: &HeaderMap) -> Option<String> {
    let request_id = headers
        .get("paypal-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    inner.lock().expect("lock").log.push(Recorded {
        method: method.into(),
        path: path.into(),
        request_id: request_id.clone(),
    });
    request_id
}

fn authorised(inner: &Shared, headers: &HeaderMap) -> bool {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| inner.lock().expect("lock").tokens.contains(t))
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_token", "error_description": "Token signature verification failed"})),
    )
        .into_response()
}

/// Answers a POST once per `PayPal-Request-Id`, replaying the first answer.
fn idempotent(
    inner: &Shared,
    path: &str,
    request_id: Option<String>,
    act: impl FnOnce(&mut Inner) -> (StatusCode, Value),
) -> Response {
    let mut guard = inner.lock().expect("lock");
    if let Some(id) = &request_id
        && let Some((status, body)) = guard.replays.get(&(path.to_owned(), id.clone()))
    {
        return (*status, Json(body.clone())).into_response();
    }
    let (status, body) = act(&mut guard);
    if let Some(id) = request_id {
        guard
            .replays
            .insert((path.to_owned(), id), (status, body.clone()));
    }
    (status, Json(body)).into_response()
}

async fn token(State(app): State<App>, headers: HeaderMap, body: String) -> Response {
    record(&app.inner, "POST", "/v1/oauth2/token", &headers);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let credentials_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !credentials_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client Authentication failed"})),
        )
            .into_response();
    }
    if body.trim() != "grant_type=client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let mut inner = app.inner.lock().expect("lock");
    inner.token_requests += 1;
    let access_token = format!("A21AA{}", uuid::Uuid::new_v4().simple());
    inner.tokens.insert(access_token.clone());
    let expires_in = inner.token_lifetime;
    Json(json!({
        "scope": "https://uri.paypal.com/services/payments/payment",
        "access_token": access_token,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": expires_in,
        "nonce": "fake",
    }))
    .into_response()
}

async fn create_order(
    State(app): State<App>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = "/v2/checkout/orders";
    let request_id = record(&app.inner, "POST", path, &headers);
    if !authorised(&app.inner, &headers) {
        return unauthorised();
    }
    let base = app.base.clone();
    idempotent(&app.inner, path, request_id, |inner| {
        if body["intent"] != "CAPTURE" {
            return issue(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "INVALID_PARAMETER_VALUE",
            );
        }
        let unit = &body["purchase_units"][0];
        let currency = unit["amount"]["currency_code"].as_str().unwrap_or_default();
        let value = unit["amount"]["value"].as_str().unwrap_or_default();
        let Some(amount) = minor_units(value, currency).filter(|_| currency.len() == 3) else {
            return issue(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "DECIMAL_PRECISION",
            );
        };
        let id = new_id("5O");
        let order = FakeOrder {
            currency: currency.to_owned(),
            amount,
            status: "CREATED",
            custom_id: unit["custom_id"].as_str().map(str::to_owned),
            capture: None,
        };
        let json = order.json(&id, &base);
        inner.orders.insert(id, order);
        (StatusCode::CREATED, json)
    })
}

async fn show_order(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    record(
        &app.inner,
        "GET",
        &format!("/v2/checkout/orders/{id}"),
        &headers,
    );
    if !authorised(&app.inner, &headers) {
        return unauthorised();
    }
    let inner = app.inner.lock().expect("lock");
    match inner.orders.get(&id) {
        Some(order) => Json(order.json(&id, &app.base)).into_response(),
        None => {
            let (status, body) = issue(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
            );
            (status, Json(body)).into_response()
        }
    }
}

async fn capture_order(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v2/checkout/orders/{id}/capture");
    let request_id = record(&app.inner, "POST", &path, &headers);
    if !authorised(&app.inner, &headers) {
        return unauthorised();
    }
    let base = app.base.clone();
    idempotent(&app.inner, &path, request_id, |inner| {
        let Some(order) = inner.orders.get_mut(&id) else {
            return issue(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
            );
        };
        match order.status {
            "APPROVED" => {
                let capture_id = new_id("3C");
                order.status = "COMPLETED";
                order.capture = Some(FakeCapture {
                    id: capture_id.clone(),
                    refunded: 0,
                });
                let json = order.json(&id, &base);
                inner.captures.insert(capture_id, id.clone());
                (StatusCode::CREATED, json)
            }
            "COMPLETED" => issue(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "ORDER_ALREADY_CAPTURED",
            ),
            _ => issue(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "ORDER_NOT_APPROVED",
            ),
        }
    })
}

fn capture_now(inner: &mut Inner, id: &str) -> String {
    let order = inner.orders.get_mut(id).expect("an order of this fake");
    assert_eq!(
        order.status, "APPROVED",
        "only an approved order is captured"
    );
    let capture_id = new_id("3C");
    order.status = "COMPLETED";
    order.capture = Some(FakeCapture {
        id: capture_id.clone(),
        refunded: 0,
    });
    inner.captures.insert(capture_id.clone(), id.to_owned());
    capture_id
}

async fn refund_capture(
    State(app): State<App>,
    Path(capture_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let path = format!("/v2/payments/captures/{capture_id}/refund");
    let request_id = record(&app.inner, "POST", &path, &headers);
    if !authorised(&app.inner, &headers) {
        return unauthorised();
    }
    idempotent(&app.inner, &path, request_id, |inner| {
        let Some(order_id) = inner.captures.get(&capture_id).cloned() else {
            return issue(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
            );
        };
        let order = inner.orders.get_mut(&order_id).expect("captured order");
        let capture = order.capture.as_mut().expect("capture");
        let remaining = order.amount - capture.refunded;
        let amount = match body.get("amount") {
            None => remaining,
            Some(amount) => {
                if amount["currency_code"] != order.currency.as_str() {
                    return issue(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "UNPROCESSABLE_ENTITY",
                        "CURRENCY_MISMATCH",
                    );
                }
                match minor_units(
                    amount["value"].as_str().unwrap_or_default(),
                    &order.currency,
                ) {
                    Some(a) => a,
                    None => {
                        return issue(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "UNPROCESSABLE_ENTITY",
                            "DECIMAL_PRECISION",
                        );
                    }
                }
            }
        };
        if amount <= 0 || amount > remaining {
            return issue(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY",
                "REFUND_AMOUNT_EXCEEDED",
            );
        }
        capture.refunded += amount;
        (
            StatusCode::CREATED,
            json!({
                "id": new_id("1R"),
                "status": "COMPLETED",
                "amount": {"currency_code": order.currency, "value": value_of(amount, &order.currency)},
            }),
        )
    })
}

async fn cert(State(app): State<App>, headers: HeaderMap) -> Response {
    record(&app.inner, "GET", CERT_PATH, &headers);
    (
        [("content-type", "application/x-pem-file")],
        app.cert_pem.as_str().to_owned(),
    )
        .into_response()
}

impl FakePaypal {
    /// Starts the fake on a free loopback port, signing with the test key.
    pub async fn start() -> Self {
        Self::start_with_key(KEY_PEM).await
    }

    /// The same fake with another key (and certificate): its signatures do
    /// not verify with [`FakePaypal::start`]'s certificate.
    pub async fn start_with_other_key() -> Self {
        Self::start_with_key(OTHER_KEY_PEM).await
    }

    async fn start_with_key(pem: &str) -> Self {
        basalt_platform::server::install_crypto_provider();
        let key = ring::signature::RsaKeyPair::from_pkcs8(&pem_to_der(pem)).expect("RSA test key");
        let cert_key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(pem, &rcgen::PKCS_RSA_SHA256)
            .expect("rcgen takes the RSA key");
        let mut params =
            rcgen::CertificateParams::new(vec!["messageverificationcerts.paypal.com".into()])
                .expect("certificate parameters");
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "messageverificationcerts.paypal.com",
        );
        let cert_pem = params.self_signed(&cert_key).expect("certificate").pem();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner: Shared = Arc::new(Mutex::new(Inner {
            token_lifetime: 32_400,
            ..Inner::default()
        }));
        let app = App {
            inner: inner.clone(),
            cert_pem: Arc::new(cert_pem),
            base: Arc::new(format!("http://{addr}")),
        };
        let router = axum::Router::new()
            .route("/v1/oauth2/token", post(token))
            .route("/v2/checkout/orders", post(create_order))
            .route("/v2/checkout/orders/{id}", get(show_order))
            .route("/v2/checkout/orders/{id}/capture", post(capture_order))
            .route("/v2/payments/captures/{id}/refund", post(refund_capture))
            .route(CERT_PATH, get(cert))
            .with_state(app);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            addr,
            inner,
            key: Arc::new(key),
            task,
        }
    }

    /// `http://127.0.0.1:PORT`, for `shop.paypal.api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where its certificate is, for `PAYPAL-CERT-URL`.
    pub fn cert_url(&self) -> String {
        format!("http://{}{CERT_PATH}", self.addr)
    }

    /// The buyer approves order `id` on PayPal's site.
    pub fn approve(&self, id: &str) {
        let mut inner = self.inner.lock().expect("lock");
        let order = inner.orders.get_mut(id).expect("an order of this fake");
        assert_eq!(order.status, "CREATED", "only a created order is approved");
        order.status = "APPROVED";
    }

    /// Captures order `id` as if another party did (PayPal's own flow, the
    /// webhook's side), without Basalt asking: returns the capture id.
    pub fn capture_behind_basalts_back(&self, id: &str) -> String {
        capture_now(&mut self.inner.lock().expect("lock"), id)
    }

    /// Someone else captures order `id` between Basalt's read of it and
    /// Basalt's capture call, which then gets `ORDER_ALREADY_CAPTURED`.
    pub fn race_next_capture(&self, id: &str) {
        self.inner.lock().expect("lock").raced.insert(id.to_owned());
    }

    /// The order as `GET /v2/checkout/orders/{id}` shows it.
    pub fn order(&self, id: &str) -> Option<Value> {
        let inner = self.inner.lock().expect("lock");
        inner.orders.get(id).map(|o| o.json(id, &self.api_base()))
    }

    /// How many tokens were issued.
    pub fn token_requests(&self) -> usize {
        self.inner.lock().expect("lock").token_requests
    }

    /// Revokes every token issued so far: the next call with one is a 401.
    pub fn expire_tokens(&self) {
        self.inner.lock().expect("lock").tokens.clear();
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().expect("lock").log.clone()
    }

    /// A `PAYMENT.CAPTURE.COMPLETED` event for captured order `order_id`,
    /// as PayPal sends it.
    pub fn capture_completed_event(&self, order_id: &str) -> Value {
        let inner = self.inner.lock().expect("lock");
        let order = inner.orders.get(order_id).expect("an order of this fake");
        let capture = order.capture.as_ref().expect("a captured order");
        json!({
            "id": format!("WH-{}", uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase()),
            "event_version": "1.0",
            "create_time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "resource_type": "capture",
            "resource_version": "2.0",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "summary": format!("Payment completed for {} {}", value_of(order.amount, &order.currency), order.currency),
            "resource": capture.json(order, order_id),
        })
    }

    /// The headers PayPal sends with a delivery of `body` for `webhook_id`.
    pub fn sign(&self, webhook_id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        let transmission_id = uuid::Uuid::new_v4().to_string();
        let transmission_time =
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let message = format!(
            "{transmission_id}|{transmission_time}|{webhook_id}|{}",
            crc32fast::hash(body)
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .expect("RSA signs");
        vec![
            ("PAYPAL-TRANSMISSION-ID", transmission_id),
            ("PAYPAL-TRANSMISSION-TIME", transmission_time),
            (
                "PAYPAL-TRANSMISSION-SIG",
                base64::engine::general_purpose::STANDARD.encode(signature),
            ),
            ("PAYPAL-CERT-URL", self.cert_url()),
            ("PAYPAL-AUTH-ALGO", "SHA256withRSA".into()),
        ]
    }

    /// Delivers `body`, signed for `webhook_id`, to `url` as PayPal would
    /// (a JSON POST); returns the answer's status.
    pub async fn deliver(&self, url: &str, webhook_id: &str, body: &[u8]) -> u16 {
        let mut request = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_vec());
        for (name, value) in self.sign(webhook_id, body) {
            request = request.header(name, value);
        }
        request.send().await.expect("delivered").status().as_u16()
    }
}

impl Drop for FakePaypal {
    fn drop(&mut self) {
        self.task.abort();
    }
}
