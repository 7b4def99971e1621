//! Idempotency keys with Stripe's semantics, as one middleware any module
//! applies to its router ([`Idempotency::wrap`]).
//!
//! A `POST` carrying `Idempotency-Key: <1–255 visible ASCII characters>`:
//!
//! - the first time, runs as usual, and its response (status, the headers
//!   that matter, body; a 5xx included) is stored;
//! - again with the same key and the same request (method, path and query,
//!   body: a SHA-256 fingerprint), gets the stored response back, byte for
//!   byte, with `Idempotent-Replayed: true`; the handler does not run;
//! - with the same key and another request: 422;
//! - while the first is still running: 409 (retry later);
//! - keys expire [`IdempotencySettings::ttl`] after their first use (24 h):
//!   after that the key is new again. The rows are deleted by the recurring
//!   job [`PURGE_JOB`], once across the cluster.
//!
//! Routes listed with [`Idempotency::require_on`] refuse a `POST` without the
//! header (400). Requests other than `POST`, and `POST`s without the header
//! elsewhere, pass through untouched.
//!
//! **Scope.** Keys belong to a caller, named by the module's [`CallerScope`]
//! (the shop: the signed-in user, else the cart token, else the client
//! address): one caller's key never replays another's response, and two
//! callers may use the same key.
//!
//! **Across nodes and cancellation.** The keys are rows of
//! `platform_idempotency_keys` (migration 1201), claimed with one
//! `INSERT … ON CONFLICT DO NOTHING`, so two nodes racing for a key have one
//! winner. The winner holds a lease ([`IdempotencySettings::lease`]) and
//! renews it while its handler runs; a request that is dropped (client gone,
//! timeout, node dead) stops renewing, and once its lease has run out the
//! same request may take the key over and run again. A takeover is fenced by
//! a fresh lease token, so a late first run cannot overwrite the response
//! of the one that took over. Stored responses are written only by the
//! lease holder.
//!
//! What is not stored: a request whose caller cannot be named (invalid
//! credentials: the handler refuses it anyway) passes through; a handler
//! that panics leaves its key in flight until the lease expires.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::db::{Db, MigrationFile};
use crate::error::{ErrorKind, Failure};
use crate::jobs::JobQueue;
use crate::with_conn;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header on a replayed response (`true`), as Stripe's.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;
/// The recurring job that deletes expired keys, every ten minutes.
pub const PURGE_JOB: &str = "platform.purge_idempotency_keys";
const PURGE_SCHEDULE: &str = "*/10 * * * *";

/// The table of keys (platform migration 1201).
pub static MIGRATIONS: &[MigrationFile] = &[MigrationFile {
    version: 1201,
    description: "create_idempotency_keys",
    sqlite: include_str!("../../migrations/sqlite/1201_create_idempotency_keys.sql"),
    postgres: include_str!("../../migrations/postgres/1201_create_idempotency_keys.sql"),
}];

/// Response headers never stored: they describe one transmission (length,
/// date, request id, trace) or must not be replayed (cookies).
const NOT_STORED: &[&str] = &[
    "connection",
    "content-length",
    "date",
    "keep-alive",
    "set-cookie",
    "traceparent",
    "transfer-encoding",
    "x-request-id",
];

/// Tunables of one [`Idempotency`] layer.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencySettings {
    /// How long a key lives after its first use (Stripe: 24 h).
    pub ttl: Duration,
    /// How long a request holds its key without renewing it; renewed every
    /// third of it while the handler runs.
    pub lease: Duration,
    /// The largest request body fingerprinted (a larger one is refused: 413),
    /// and the largest response body stored.
    pub max_body_bytes: usize,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(60),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Names the caller a key belongs to. `None` when the request names no
/// caller that can be trusted (bad credentials): then the request passes
/// through without idempotency, and the handler refuses it.
pub trait CallerScope: Send + Sync + 'static {
    /// The caller's scope, e.g. `user:<id>`; never empty.
    fn scope<'a>(&'a self, parts: &'a Parts) -> BoxFuture<'a, Option<String>>;
}

/// The middleware's state: the database, the caller's scope, the settings
/// and the routes that require a key. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    scope: Arc<dyn CallerScope>,
    settings: IdempotencySettings,
    required: Vec<String>,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idempotency")
            .field("settings", &self.inner.settings)
            .field("required", &self.inner.required)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    /// Keys in `db`, scoped by `scope`.
    pub fn new(db: Db, scope: impl CallerScope, settings: IdempotencySettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                scope: Arc::new(scope),
                settings,
                required: Vec::new(),
            }),
        }
    }

    /// Makes the key required on these routes, written as they are routed
    /// (`/api/shop/carts/{id}/checkout`): a `POST` without it is a 400.
    #[must_use]
    pub fn require_on(self, routes: &[&str]) -> Self {
        let inner = &self.inner;
        let mut required = inner.required.clone();
        required.extend(routes.iter().map(|r| (*r).to_owned()));
        Self {
            inner: Arc::new(Inner {
                db: inner.db.clone(),
                scope: Arc::clone(&inner.scope),
                settings: inner.settings,
                required,
            }),
        }
    }

    /// Applies the middleware to every route of `router` added so far.
    /// The operations that document the `Idempotency-Key` header also
    /// document the middleware's own answers.
    pub fn wrap<S>(&self, router: OpenApiRouter<S>) -> OpenApiRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let mut router = router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            middleware,
        ));
        crate::http::docs::document_header_responses(
            router.get_openapi_mut(),
            HEADER,
            &[
                (
                    400,
                    "A missing (where required) or malformed Idempotency-Key",
                ),
                (
                    409,
                    "A request with this Idempotency-Key is still in progress",
                ),
                (422, "This Idempotency-Key was used for a different request"),
            ],
        );
        router
    }

    /// Applies the middleware to every route of a plain `router`.
    pub fn wrap_router<S>(&self, router: axum::Router<S>) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            middleware,
        ))
    }
}

/// Registers [`PURGE_JOB`]: every ten minutes, once across the cluster,
/// deletes the keys that expired.
pub fn register_purge(jobs: &JobQueue, db: Db) {
    jobs.register(PURGE_JOB, move |_| {
        let db = db.clone();
        async move {
            let deleted = purge_expired(&db, Utc::now().timestamp_millis())
                .await
                .map_err(anyhow::Error::from)?;
            tracing::debug!(deleted, "deleted expired idempotency keys");
            Ok(())
        }
    });
    if let Err(error) = jobs.recurring(PURGE_JOB, PURGE_SCHEDULE, PURGE_JOB, &()) {
        tracing::error!(%error, "cannot schedule the purge of idempotency keys");
    }
}

/// Deletes the keys expired at `now_ms`; returns how many.
pub async fn purge_expired(db: &Db, now_ms: i64) -> Result<u64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM platform_idempotency_keys WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(conn)
            .await
            .map(|done| done.rows_affected())
    })
}

/// The middleware (see the module docs).
async fn middleware(State(idem): State<Idempotency>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let key = match request.headers().get(HEADER) {
        None if idem.inner.required.contains(&route) => {
            return Failure::bad_request(
                "this request needs an Idempotency-Key header (a unique value of at most \
                 255 characters, e.g. a UUID): retrying with the same key never repeats it",
            )
            .into_response();
        }
        None => return next.run(request).await,
        Some(value) => match valid_key(value) {
            Some(key) => key,
            None => {
                return Failure::bad_request(
                    "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
                )
                .into_response();
            }
        },
    };
    let (parts, body) = request.into_parts();
    let Some(scope) = idem.inner.scope.scope(&parts).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let body = match axum::body::to_bytes(body, idem.inner.settings.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Failure::bad_request("the request body is too large"),
            )
                .into_response();
        }
    };
    let fingerprint = fingerprint(&parts, &body);
    match run_keyed(&idem, &scope, &key, &fingerprint, parts, body, next).await {
        Ok(response) => response,
        Err(error) => Failure::internal(error).into_response(),
    }
}

fn valid_key(value: &HeaderValue) -> Option<String> {
    let key = value.to_str().ok()?;
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    ok.then(|| key.to_owned())
}

/// SHA-256 over method, path and query, and body, hex.
fn fingerprint(parts: &Parts, body: &Bytes) -> String {
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(
        parts
            .uri
            .path_and_query()
            .map_or("", |p| p.as_str())
            .as_bytes(),
    );
    hash.update(b"\n");
    hash.update(body);
    hex::encode(hash.finalize())
}

/// What the table says about a key this request did not get.
enum Taken {
    /// Another request holds it now.
    InFlight,
    /// Used for another request.
    Mismatch,
    /// Done: the stored response.
    Done(Response),
}

async fn run_keyed(
    idem: &Idempotency,
    scope: &str,
    key: &str,
    fingerprint: &str,
    parts: Parts,
    body: Bytes,
    next: Next,
) -> anyhow::Result<Response> {
    let db = &idem.inner.db;
    let settings = idem.inner.settings;
    let lease_token = Uuid::now_v7().to_string();
    if !claim(db, &settings, scope, key, fingerprint, &lease_token).await? {
        return Ok(match taken(db, scope, key, fingerprint).await? {
            // Gone between the claim and the look: it expired; retrying is safe.
            None | Some(Taken::InFlight) => Failure::new(ErrorKind::Conflict)
                .with_detail(
                    "a request with this Idempotency-Key is still being processed; \
                     retry later",
                )
                .into_response(),
            Some(Taken::Mismatch) => Failure::new(ErrorKind::InvalidInput)
                .with_detail(
                    "this Idempotency-Key was used for a different request (method, path \
                     or body); use a new key for a new request",
                )
                .into_response(),
            Some(Taken::Done(response)) => response,
        });
    }

    // Ours: run the handler, renewing the lease while it runs. If this
    // future is dropped, renewing stops and the lease runs out.
    let run = next.run(Request::from_parts(parts, Body::from(body)));
    tokio::pin!(run);
    let every = (settings.lease / 3).max(Duration::from_millis(100));
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let response = loop {
        tokio::select! {
            response = &mut run => break response,
            _ = renew.tick() => {
                if let Err(error) = renew_lease(db, &settings, scope, key, &lease_token).await {
                    tracing::warn!(%error, "cannot renew an idempotency key's lease");
                }
            }
        }
    };

    let (mut head, body) = response.into_parts();
    let body = match axum::body::to_bytes(body, settings.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => {
            release(db, scope, key, &lease_token).await?;
            return Err(anyhow::anyhow!(
                "a response too large to store for an idempotency key: {error}"
            ));
        }
    };
    let headers = stored_headers(&head.headers);
    store_response(
        db,
        scope,
        key,
        &lease_token,
        head.status.as_u16(),
        &headers,
        &body,
    )
    .await?;
    head.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(head, Body::from(body)))
}

/// Takes the key: a new row, or an expired key, or the same request's key
/// whose holder's lease ran out. `true` when this request holds it now.
async fn claim(
    db: &Db,
    settings: &IdempotencySettings,
    scope: &str,
    key: &str,
    fingerprint: &str,
    lease_token: &str,
) -> Result<bool, sqlx::Error> {
    let now = Utc::now().timestamp_millis();
    let lease_until = now.saturating_add(millis(settings.lease));
    let expires_at = now.saturating_add(millis(settings.ttl));
    let inserted = with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO platform_idempotency_keys \
             (scope, idempotency_key, fingerprint, state, lease_token, lease_until_ms, \
              created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7) \
             ON CONFLICT (scope, idempotency_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(lease_token)
        .bind(lease_until)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    if inserted == 1 {
        return Ok(true);
    }
    // An expired key starts over; an abandoned one (its holder stopped
    // renewing) is taken over by the same request only.
    let taken_over = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE platform_idempotency_keys \
             SET fingerprint = $3, state = 'in_flight', lease_token = $4, lease_until_ms = $5, \
                 status = NULL, headers = NULL, body = NULL, \
                 created_at_ms = CASE WHEN expires_at_ms <= $6 THEN $6 ELSE created_at_ms END, \
                 expires_at_ms = CASE WHEN expires_at_ms <= $6 THEN $7 ELSE expires_at_ms END \
             WHERE scope = $1 AND idempotency_key = $2 \
               AND (expires_at_ms <= $6 \
                    OR (state = 'in_flight' AND lease_until_ms <= $6 AND fingerprint = $3))",
        )
        .bind(scope)
        .bind(key)
        .bind(fingerprint)
        .bind(lease_token)
        .bind(lease_until)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(taken_over == 1)
}

type Row = (String, String, Option<i32>, Option<String>, Option<Vec<u8>>);

async fn taken(
    db: &Db,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> anyhow::Result<Option<Taken>> {
    let row: Option<Row> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT fingerprint, state, status, headers, body FROM platform_idempotency_keys \
             WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(conn)
        .await
    })?;
    let Some((stored_fingerprint, state, status, headers, body)) = row else {
        return Ok(None);
    };
    if stored_fingerprint != fingerprint {
        return Ok(Some(Taken::Mismatch));
    }
    if state != "done" {
        return Ok(Some(Taken::InFlight));
    }
    let status = status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| anyhow::anyhow!("a stored idempotent response has no valid status"))?;
    let headers: Vec<(String, String)> = serde_json::from_str(headers.as_deref().unwrap_or("[]"))?;
    let mut response = Response::new(Body::from(body.unwrap_or_default()));
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            map.append(name, value);
        }
    }
    map.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(Some(Taken::Done(response)))
}

fn stored_headers(headers: &HeaderMap) -> String {
    let kept: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| !NOT_STORED.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    serde_json::to_string(&kept).unwrap_or_else(|_| "[]".into())
}

async fn renew_lease(
    db: &Db,
    settings: &IdempotencySettings,
    scope: &str,
    key: &str,
    lease_token: &str,
) -> Result<(), sqlx::Error> {
    let until = Utc::now()
        .timestamp_millis()
        .saturating_add(millis(settings.lease));
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE platform_idempotency_keys SET lease_until_ms = $4 \
             WHERE scope = $1 AND idempotency_key = $2 AND lease_token = $3 \
               AND state = 'in_flight'",
        )
        .bind(scope)
        .bind(key)
        .bind(lease_token)
        .bind(until)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

async fn store_response(
    db: &Db,
    scope: &str,
    key: &str,
    lease_token: &str,
    status: u16,
    headers: &str,
    body: &[u8],
) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE platform_idempotency_keys \
             SET state = 'done', status = $4, headers = $5, body = $6 \
             WHERE scope = $1 AND idempotency_key = $2 AND lease_token = $3 \
               AND state = 'in_flight'",
        )
        .bind(scope)
        .bind(key)
        .bind(lease_token)
        .bind(i32::from(status))
        .bind(headers)
        .bind(body)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// Gives the key up (its response could not be stored): the next request
/// with it runs anew.
async fn release(db: &Db, scope: &str, key: &str, lease_token: &str) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "DELETE FROM platform_idempotency_keys \
             WHERE scope = $1 AND idempotency_key = $2 AND lease_token = $3",
        )
        .bind(scope)
        .bind(key)
        .bind(lease_token)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert_eq!(
            valid_key(&HeaderValue::from_static("abc-123")),
            Some("abc-123".into())
        );
        assert_eq!(valid_key(&HeaderValue::from_static("")), None);
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            valid_key(&HeaderValue::try_from(long).expect("value")),
            None
        );
        let max = "k".repeat(MAX_KEY_LEN);
        assert!(valid_key(&HeaderValue::try_from(max).expect("value")).is_some());
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let parts = |method: Method, uri: &str| {
            Request::builder()
                .method(method)
                .uri(uri)
                .body(())
                .expect("request")
                .into_parts()
                .0
        };
        let a = fingerprint(&parts(Method::POST, "/a"), &Bytes::from_static(b"{}"));
        assert_eq!(
            a,
            fingerprint(&parts(Method::POST, "/a"), &Bytes::from_static(b"{}"))
        );
        assert_ne!(
            a,
            fingerprint(&parts(Method::POST, "/b"), &Bytes::from_static(b"{}"))
        );
        assert_ne!(
            a,
            fingerprint(&parts(Method::PUT, "/a"), &Bytes::from_static(b"{}"))
        );
        assert_ne!(
            a,
            fingerprint(&parts(Method::POST, "/a"), &Bytes::from_static(b"{ }"))
        );
        assert_eq!(a.len(), 64);
    }
}
