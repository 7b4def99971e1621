//! The identity module over HTTP: accounts, sessions with CSRF, tokens,
//! abuse protection, recovery by mail and admin routes.

mod abuse;
mod accounts;
mod admin;
mod housekeeping;
pub(crate) mod recovery;
mod revocation;
mod sessions;
mod tokens;

use basalt_testkit::{TestApp, TestAppBuilder};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

/// A password the policy accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// The binary's modules with cheap password hashing (tests measure
/// behaviour, not cost; the benchmark uses the real parameters).
pub fn identity_app() -> TestAppBuilder {
    TestApp::builder()
        .modules(basalt::modules())
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB", "1024")
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_ITERATIONS", "1")
}

/// A unique, valid email/username pair.
pub fn new_identity() -> (String, String) {
    let n = uuid::Uuid::new_v4().simple().to_string();
    (
        format!("user-{}@example.com", &n[..12]),
        format!("user_{}", &n[..12]),
    )
}

/// Registers an account and returns its JSON.
pub async fn register(app: &TestApp, email: &str, username: &str) -> Value {
    let response = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({ "email": email, "username": username, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap_or_default()
    );
    response.json::<Value>().await.expect("json")["user"].clone()
}

/// A registered account's email.
pub async fn registered(app: &TestApp) -> String {
    let (email, username) = new_identity();
    register(app, &email, &username).await;
    email
}

/// The identity service of `app`, as other modules find it.
pub fn identity(app: &TestApp) -> basalt_identity::service::IdentityService {
    app.platform
        .services
        .get::<basalt_identity::service::IdentityService>()
        .expect("the identity module is installed")
}

/// The id of the account registered as `email`.
pub async fn user_id(app: &TestApp, email: &str) -> uuid::Uuid {
    identity(app)
        .user_by_email(email)
        .await
        .expect("db")
        .expect("user")
        .id
}

/// Makes the account an admin in the database, as `basalt user create
/// --admin` leaves it; call before anything reads the account's standing
/// (no cache is told).
pub async fn promote(app: &TestApp, id: uuid::Uuid) {
    basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query("UPDATE identity_users SET role = 'admin' WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .expect("promote");
}

/// Registers an account, promotes it ([`promote`]) and signs it in for a
/// token: `(id, access token)`.
pub async fn admin_token(app: &TestApp) -> (uuid::Uuid, String) {
    let email = registered(app).await;
    let id = user_id(app, &email).await;
    promote(app, id).await;
    let token = tokens(app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    (id, token)
}

/// A browser's view of a signed-in session.
#[derive(Debug, Clone)]
pub struct Browser {
    /// `name=value` for the Cookie header.
    pub cookie: String,
    /// The full Set-Cookie line received.
    pub set_cookie: String,
    /// The CSRF token.
    pub csrf: String,
    /// The origin the browser is on.
    pub origin: String,
}

/// The origin of pages served with Basalt: its public URL's, or its own.
pub fn page_origin(app: &TestApp) -> String {
    app.platform.config.public_url.as_ref().map_or_else(
        || app.base_url.clone(),
        |u| u.origin().ascii_serialization(),
    )
}

/// Signs in with a session, as a same-origin browser would.
pub async fn sign_in(app: &TestApp, email: &str, password: &str) -> Browser {
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header(header::ORIGIN, page_origin(app))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap_or_default()
    );
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = response.json().await.expect("json");
    Browser {
        cookie: set_cookie.split(';').next().expect("name=value").to_owned(),
        set_cookie,
        csrf: body["csrf_token"].as_str().expect("csrf token").to_owned(),
        origin: page_origin(app),
    }
}

impl Browser {
    /// The headers a same-origin page sends with a write.
    pub fn write_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, self.cookie.parse().expect("header"));
        h.insert("x-csrf-token", self.csrf.parse().expect("header"));
        h.insert(header::ORIGIN, self.origin.parse().expect("header"));
        h
    }
}

/// `GET path` as a browser holding `cookie` (a `name=value` pair); the JSON
/// body, whatever the status.
pub async fn get_json_with_cookie(app: &TestApp, path: &str, cookie: &str) -> Value {
    app.client
        .get(app.url(path))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json")
}

/// Signs in for tokens.
pub async fn tokens(app: &TestApp, email: &str, password: &str) -> Value {
    let response = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap_or_default()
    );
    response.json().await.expect("json")
}

/// `POST /api/auth/refresh` with `token` (a JSON value, so that tests can
/// send what they received as it is).
pub async fn refresh(app: &TestApp, token: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .expect("answered")
}

/// `POST /api/auth/password/forgot` for `email`; the status.
pub async fn forgot_password(app: &TestApp, email: &str) -> StatusCode {
    app.client
        .post(app.url("/api/auth/password/forgot"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("answered")
        .status()
}

/// `GET /api/me` with a bearer token; the status.
pub async fn me_with_token(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered")
        .status()
}

/// The audit records, through the service.
pub async fn audit_events(
    app: &TestApp,
    user_id: Option<uuid::Uuid>,
) -> Vec<basalt_identity::model::AuditRecord> {
    let query = basalt_identity::model::AuditQuery {
        user_id,
        limit: Some(500),
        ..Default::default()
    };
    identity(app).audit_log(&query).await.expect("audit")
}
