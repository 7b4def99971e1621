//! Idempotency keys over HTTP, on the database under test: the platform's
//! middleware with the shop's caller scope, on routes of a module of this
//! test's own (a counter, a failing route, a route held open until the test
//! lets it go) and on the shop's `POST /api/shop/webhook-endpoints`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use basalt_platform::http::idempotency::{self, Idempotency};
use basalt_platform::module::Wiring;
use basalt_platform::{Module, Platform, with_conn};
use basalt_testkit::{TestApp, TestAppBuilder};
use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};

use crate::identity::{admin_token, identity_app, registered, tokens};

/// What the test's routes share with the test.
struct Probe {
    /// Handler runs, all routes together.
    runs: AtomicUsize,
    /// The slow route says it has started…
    entered: Notify,
    /// …and waits for a permit from the test.
    release: Semaphore,
    /// Slow handlers dropped before they finished.
    dropped: AtomicUsize,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            runs: AtomicUsize::new(0),
            entered: Notify::new(),
            release: Semaphore::new(0),
            dropped: AtomicUsize::new(0),
        }
    }
}

/// A module of routes under `/api/test-idem`, behind the shop's
/// idempotency middleware, `/api/test-idem/required` requiring the key.
struct IdemModule(Arc<Probe>);

impl Module for IdemModule {
    fn name(&self) -> &'static str {
        "test-idem"
    }

    fn wire<'a>(
        &'a self,
        platform: &'a Platform,
        wiring: &'a mut Wiring,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let config = basalt_shop::shop_config(&platform.config)?;
            let layer = Idempotency::new(
                platform.db.clone(),
                basalt_shop::idempotency::ShopCallerScope,
                basalt_shop::idempotency::settings(&config.idempotency),
            )
            .require_on(&["/api/test-idem/required"]);
            let router = axum::Router::new()
                .route("/api/test-idem/echo", post(echo))
                .route("/api/test-idem/required", post(echo))
                .route("/api/test-idem/fail", post(fail))
                .route("/api/test-idem/slow", post(slow))
                .with_state(Arc::clone(&self.0));
            wiring.raw_routes(layer.wrap_router(router));
            Ok(())
        })
    }
}

/// 201 with the run number and the body, and a header of its own.
async fn echo(
    State(probe): State<Arc<Probe>>,
    body: String,
) -> (AxumStatus, [(&'static str, String); 2], String) {
    let run = probe.runs.fetch_add(1, Ordering::SeqCst) + 1;
    (
        AxumStatus::CREATED,
        [
            ("content-type", "application/json".into()),
            ("x-run", run.to_string()),
        ],
        json!({ "run": run, "echo": body }).to_string(),
    )
}

/// A 500 naming its run.
async fn fail(State(probe): State<Arc<Probe>>) -> (AxumStatus, String) {
    let run = probe.runs.fetch_add(1, Ordering::SeqCst) + 1;
    (
        AxumStatus::INTERNAL_SERVER_ERROR,
        json!({ "failed_run": run }).to_string(),
    )
}

/// Counts a drop that happens before the handler finished.
struct DropGuard(Arc<Probe>, bool);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Says it started, then waits until the test releases it.
async fn slow(State(probe): State<Arc<Probe>>) -> (AxumStatus, String) {
    let mut guard = DropGuard(Arc::clone(&probe), false);
    let run = probe.runs.fetch_add(1, Ordering::SeqCst) + 1;
    probe.entered.notify_one();
    probe
        .release
        .acquire()
        .await
        .expect("semaphore open")
        .forget();
    guard.1 = true;
    (AxumStatus::OK, json!({ "slow_run": run }).to_string())
}

fn builder(probe: &Arc<Probe>) -> TestAppBuilder {
    identity_app().module(IdemModule(Arc::clone(probe)))
}

async fn app() -> (TestApp, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    (builder(&probe).spawn().await, probe)
}

async fn post_keyed(
    app: &TestApp,
    path: &str,
    key: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).body(body.to_owned());
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("answered")
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn the_same_key_replays_the_first_response_byte_for_byte() {
    let (app, probe) = app().await;
    let key = new_key();
    let first = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":1}", &[]).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert_eq!(first.headers()["x-run"], "1");
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.expect("body");

    for _ in 0..2 {
        let again = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":1}", &[]).await;
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(again.headers()["x-run"], "1", "stored headers come back");
        assert_eq!(again.headers()["content-type"], "application/json");
        assert_eq!(again.bytes().await.expect("body"), first_body);
    }
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1, "the handler ran once");

    // Without a key, or with another, it runs again.
    let unkeyed = post_keyed(&app, "/api/test-idem/echo", None, "{\"a\":1}", &[]).await;
    assert_eq!(unkeyed.headers()["x-run"], "2");
    let other = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&new_key()),
        "{\"a\":1}",
        &[],
    )
    .await;
    assert_eq!(other.headers()["x-run"], "3");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_same_key_with_another_request_is_a_422() {
    let (app, probe) = app().await;
    let key = new_key();
    let first = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":1}", &[]).await;
    assert_eq!(first.status(), StatusCode::CREATED);

    let other_body = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":2}", &[]).await;
    assert_eq!(other_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = other_body.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("different request"),
        "{problem}"
    );
    let other_path = post_keyed(&app, "/api/test-idem/fail", Some(&key), "{\"a\":1}", &[]).await;
    assert_eq!(other_path.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);

    // The original request still replays.
    let again = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":1}", &[]).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_5xx_is_stored_and_replayed() {
    let (app, probe) = app().await;
    let key = new_key();
    let first = post_keyed(&app, "/api/test-idem/fail", Some(&key), "", &[]).await;
    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let first_body = first.text().await.expect("body");
    // (The platform answers every 5xx as a problem, replayed or not.)
    assert!(first_body.contains("\"status\":500"), "{first_body}");
    let again = post_keyed(&app, "/api/test-idem/fail", Some(&key), "", &[]).await;
    assert_eq!(again.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.expect("body"), first_body);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_concurrent_duplicate_is_a_409_and_the_first_answer_is_replayed_after() {
    let (app, probe) = app().await;
    let app = Arc::new(app);
    let key = new_key();
    let entered = probe.entered.notified();
    let first = {
        let (app, key) = (Arc::clone(&app), key.clone());
        tokio::spawn(
            async move { post_keyed(&app, "/api/test-idem/slow", Some(&key), "{}", &[]).await },
        )
    };
    entered.await;

    let duplicate = post_keyed(&app, "/api/test-idem/slow", Some(&key), "{}", &[]).await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    let problem: Value = duplicate.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("still being processed"),
        "{problem}"
    );
    // A different body with the key is refused as such even in flight.
    let mismatch = post_keyed(&app, "/api/test-idem/slow", Some(&key), "{\"x\":1}", &[]).await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);

    probe.release.add_permits(1);
    let first = first.await.expect("joined");
    assert_eq!(first.status(), StatusCode::OK);
    let first_body = first.text().await.expect("body");
    let replay = post_keyed(&app, "/api/test-idem/slow", Some(&key), "{}", &[]).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.text().await.expect("body"), first_body);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    Arc::into_inner(app)
        .expect("one owner")
        .stop()
        .await
        .expect("stops");
}

/// A request dropped while in flight (its client went away) leaves no key
/// stuck: its lease (1 s here) runs out, and the retry runs.
#[tokio::test]
async fn a_dropped_request_does_not_leave_its_key_in_flight() {
    let probe = Arc::new(Probe::default());
    let app = Arc::new(
        builder(&probe)
            .env("BASALT_SHOP__IDEMPOTENCY__LEASE_SECS", "1")
            .spawn()
            .await,
    );
    let key = new_key();
    let entered = probe.entered.notified();
    let first = {
        let (app, key) = (Arc::clone(&app), key.clone());
        tokio::spawn(
            async move { post_keyed(&app, "/api/test-idem/slow", Some(&key), "{}", &[]).await },
        )
    };
    entered.await;
    // The client goes away: its connection closes, the server drops the
    // request's future (and with it the lease's renewal).
    first.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while probe.dropped.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never dropped the request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Held until the lease runs out, then the same request runs again.
    let mut conflicts = 0;
    let retried = loop {
        probe.release.add_permits(1);
        let response = post_keyed(&app, "/api/test-idem/slow", Some(&key), "{}", &[]).await;
        if response.status() != StatusCode::CONFLICT {
            break response;
        }
        conflicts += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key stayed in flight"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(retried.status(), StatusCode::OK);
    assert!(retried.headers().get("idempotent-replayed").is_none());
    assert_eq!(
        retried.json::<Value>().await.expect("json")["slow_run"],
        2,
        "{conflicts} conflicts first"
    );
    Arc::into_inner(app)
        .expect("one owner")
        .stop()
        .await
        .expect("stops");
}

/// Two nodes on one database: a key in flight on one is a 409 on the
/// other, and stays so past its lease while the handler still runs (the
/// lease is renewed); once done, the other node replays its answer.
#[tokio::test]
async fn a_key_in_flight_on_one_node_is_held_on_every_node_and_renewed() {
    let probe = Arc::new(Probe::default());
    let one = Arc::new(
        builder(&probe)
            .env("BASALT_SHOP__IDEMPOTENCY__LEASE_SECS", "1")
            .spawn()
            .await,
    );
    let two = builder(&probe)
        .env("BASALT_SHOP__IDEMPOTENCY__LEASE_SECS", "1")
        .node_of(&one)
        .spawn()
        .await;
    let key = new_key();
    let entered = probe.entered.notified();
    let first = {
        let (one, key) = (Arc::clone(&one), key.clone());
        tokio::spawn(
            async move { post_keyed(&one, "/api/test-idem/slow", Some(&key), "{}", &[]).await },
        )
    };
    entered.await;
    let duplicate = post_keyed(&two, "/api/test-idem/slow", Some(&key), "{}", &[]).await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    // Past the 1 s lease, still running, still held: the lease was renewed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // (Were it not, this request would take the key over and wait in the
    // handler: the timeout turns that into a failure.)
    let later = tokio::time::timeout(
        Duration::from_secs(5),
        post_keyed(&two, "/api/test-idem/slow", Some(&key), "{}", &[]),
    )
    .await
    .expect("answered at once, not taken over");
    assert_eq!(later.status(), StatusCode::CONFLICT);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);

    probe.release.add_permits(1);
    let first = first.await.expect("joined");
    assert_eq!(first.status(), StatusCode::OK);
    let first_body = first.text().await.expect("body");
    let replay = post_keyed(&two, "/api/test-idem/slow", Some(&key), "{}", &[]).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.text().await.expect("body"), first_body);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    two.stop().await.expect("stops");
    Arc::into_inner(one)
        .expect("one owner")
        .stop()
        .await
        .expect("stops");
}

#[tokio::test]
async fn keys_expire_and_the_purge_job_deletes_them() {
    let probe = Arc::new(Probe::default());
    let app = builder(&probe)
        .env("BASALT_SHOP__IDEMPOTENCY__TTL_SECS", "1")
        .spawn()
        .await;
    let key = new_key();
    let first = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":1}", &[]).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let replay = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":1}", &[]).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    // Once expired, the key is new again: another body is not refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        let response = post_keyed(&app, "/api/test-idem/echo", Some(&key), "{\"a\":2}", &[]).await;
        if response.status() != StatusCode::UNPROCESSABLE_ENTITY {
            break response;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(fresh.status(), StatusCode::CREATED);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    assert_eq!(fresh.headers()["x-run"], "2");

    // The purge deletes expired rows only.
    let count = || async {
        with_conn!(&app.platform.db, |conn| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM platform_idempotency_keys")
                .fetch_one(conn)
                .await
        })
        .expect("count")
    };
    assert_eq!(count().await, 1);
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        idempotency::purge_expired(&app.platform.db, now - 60_000)
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        idempotency::purge_expired(&app.platform.db, now + 60_000)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(count().await, 0);
    // It runs as a recurring job, scheduled once for the cluster.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scheduled: i64 = with_conn!(&app.platform.db, |conn| {
            sqlx::query_scalar("SELECT COUNT(*) FROM job_schedules WHERE name = $1")
                .bind(idempotency::PURGE_JOB)
                .fetch_one(conn)
                .await
        })
        .expect("schedules");
        if scheduled == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never scheduled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_route_that_requires_the_key_refuses_a_request_without_it() {
    let (app, probe) = app().await;
    let missing = post_keyed(&app, "/api/test-idem/required", None, "{}", &[]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = missing.json().await.expect("problem");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("needs an Idempotency-Key header"),
        "{problem}"
    );
    let too_long = "k".repeat(256);
    let long = post_keyed(&app, "/api/test-idem/required", Some(&too_long), "{}", &[]).await;
    assert_eq!(long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(probe.runs.load(Ordering::SeqCst), 0);
    let longest = "k".repeat(255);
    let keyed = post_keyed(&app, "/api/test-idem/required", Some(&longest), "{}", &[]).await;
    assert_eq!(keyed.status(), StatusCode::CREATED);
    // The other routes take the key but do not need it.
    let optional = post_keyed(&app, "/api/test-idem/echo", None, "{}", &[]).await;
    assert_eq!(optional.status(), StatusCode::CREATED);
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn keys_are_scoped_per_caller() {
    let (app, probe) = app().await;
    let key = new_key();
    let alice =
        tokens(&app, &registered(&app).await, crate::identity::PASSWORD).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
    let bob =
        tokens(&app, &registered(&app).await, crate::identity::PASSWORD).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
    let as_user = |token: &str| format!("Bearer {token}");
    let run = |response: reqwest::Response| async move {
        (
            response.headers()["x-run"]
                .to_str()
                .expect("header")
                .to_owned(),
            response.headers().get("idempotent-replayed").is_some(),
        )
    };
    let (a, bearer_a, bearer_b) = ("{}", as_user(&alice), as_user(&bob));
    let alice_first = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &[("authorization", &bearer_a)],
    )
    .await;
    assert_eq!(run(alice_first).await, ("1".into(), false));
    // Bob's same key is his own: it runs, and never shows Alice's answer.
    let bob_first = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &[("authorization", &bearer_b)],
    )
    .await;
    assert_eq!(run(bob_first).await, ("2".into(), false));
    let alice_again = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &[("authorization", &bearer_a)],
    )
    .await;
    assert_eq!(run(alice_again).await, ("1".into(), true));
    let bob_again = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &[("authorization", &bearer_b)],
    )
    .await;
    assert_eq!(run(bob_again).await, ("2".into(), true));

    // Anonymous carts: each token its own scope, and not the users'.
    let cart = |token: &'static str| [("x-cart-token", token)];
    let one = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &cart("cart-one"),
    )
    .await;
    assert_eq!(run(one).await, ("3".into(), false));
    let two = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &cart("cart-two"),
    )
    .await;
    assert_eq!(run(two).await, ("4".into(), false));
    let one_again = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &cart("cart-one"),
    )
    .await;
    assert_eq!(run(one_again).await, ("3".into(), true));
    // Neither a user nor a cart: the client address.
    let anonymous = post_keyed(&app, "/api/test-idem/echo", Some(&key), a, &[]).await;
    assert_eq!(run(anonymous).await, ("5".into(), false));
    // Bad credentials name no caller: no idempotency, and the handler
    // decides (this one does not check credentials).
    let bad = post_keyed(
        &app,
        "/api/test-idem/echo",
        Some(&key),
        a,
        &[("authorization", "Bearer nonsense")],
    )
    .await;
    assert_eq!(run(bad).await, ("6".into(), false));
    assert_eq!(probe.runs.load(Ordering::SeqCst), 6);
    app.stop().await.expect("stops");
}

/// The shop's own routes are behind the middleware: registering a webhook
/// endpoint twice with one key makes one endpoint, and the secret shown is
/// the same.
#[tokio::test]
async fn creating_a_webhook_endpoint_with_a_key_is_done_once() {
    let (app, _probe) = app().await;
    let (_, admin) = admin_token(&app).await;
    let key = new_key();
    let create = |body: Value| {
        app.client
            .post(app.url("/api/shop/webhook-endpoints"))
            .bearer_auth(&admin)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
    };
    let body = json!({ "url": "https://hooks.example.com/basalt", "events": ["shop.order.paid"] });
    let first = create(body.clone()).await.expect("answered");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.expect("json");
    let again = create(body).await.expect("answered");
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.expect("json"), first);
    let endpoints: i64 = with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar("SELECT COUNT(*) FROM shop_webhook_endpoints")
            .fetch_one(conn)
            .await
    })
    .expect("count");
    assert_eq!(endpoints, 1);
    let other =
        create(json!({ "url": "https://other.example.com/", "events": ["shop.order.paid"] }))
            .await
            .expect("answered");
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await.expect("stops");
}
