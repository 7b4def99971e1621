//! Merchant webhooks over HTTP, on the database under test: an admin
//! registers an endpoint on a receiver of this test's own (on loopback, so
//! the apps here allow private addresses), order events are published
//! through the platform's outbox as the order service will publish them,
//! and the receiver gets signed deliveries, retried with back-off, logged,
//! and sent again on request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use basalt_platform::events::{Event, record_in};
use basalt_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::identity::{admin_token, identity_app, registered, tokens};

/// A request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    event_type: String,
    body: String,
}

/// A merchant's server on loopback: answers `fail_first` requests with a
/// 500, then 200, and keeps every request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let seen = Arc::clone(&seen);
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut seen = seen.lock().expect("lock");
                seen.push(Received {
                    signature: header("basalt-signature"),
                    event_type: header("basalt-event-type"),
                    body,
                });
                if seen.len() <= fail_first {
                    AxumStatus::INTERNAL_SERVER_ERROR
                } else {
                    AxumStatus::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
    }
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits until `n` requests have come.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} deliveries arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The shop with loopback endpoints allowed, fast job polling, and a
/// one-second back-off base.
async fn app() -> TestApp {
    identity_app()
        .env("BASALT_SHOP__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "true")
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .env("BASALT_JOBS__BACKOFF_BASE_SECS", "1")
        .env("BASALT_JOBS__BACKOFF_MAX_SECS", "4")
        .spawn()
        .await
}

async fn create_endpoint(app: &TestApp, token: &str, url: &str, events: &[&str]) -> Value {
    let response = app
        .client
        .post(app.url("/api/shop/webhook-endpoints"))
        .bearer_auth(token)
        .json(&json!({ "url": url, "events": events }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.expect("json")["webhook_endpoint"].clone()
}

/// Publishes order events as the order service does: recorded in the
/// outbox in a transaction, relayed after the commit.
async fn publish(app: &TestApp, events: &[Event]) {
    let mut tx = app.platform.db.begin().await.expect("begin");
    for event in events {
        record_in(&mut tx, event).await.expect("record");
    }
    tx.commit().await.expect("commit");
    app.platform.events.waker().wake();
}

fn order_event(kind: &str) -> Event {
    Event::new(
        kind,
        &json!({ "order": { "id": Uuid::now_v7(), "number": 1,
            "total": { "amount": 1999, "currency": "EUR" } } }),
    )
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url(&format!(
            "/api/shop/webhook-endpoints/{endpoint}/deliveries"
        )))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.expect("json")["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

/// Waits until the endpoint's only delivery has `status` and `attempts`.
async fn wait_for_delivery(
    app: &TestApp,
    token: &str,
    endpoint: &str,
    status: &str,
    attempts: usize,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(app, token, endpoint).await;
        if let [one] = list.as_slice()
            && one["status"] == status
            && one["attempts"].as_array().map(Vec::len) == Some(attempts)
        {
            return one.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn verifies(received: &Received, secret: &str) {
    basalt_shop::signature::verify(
        &received.signature,
        received.body.as_bytes(),
        secret.as_bytes(),
        chrono::Utc::now().timestamp(),
        basalt_shop::signature::TOLERANCE_SECS,
    )
    .expect("the delivery's signature verifies with the endpoint's secret");
}

#[tokio::test]
async fn a_subscribed_endpoint_gets_a_signed_delivery_of_an_order_event() {
    let app = app().await;
    let (_, admin) = admin_token(&app).await;
    let hook = receiver(0).await;
    let endpoint = create_endpoint(&app, &admin, &hook.url, &["shop.order.paid"]).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 43,
        "{secret}"
    );
    assert_eq!(endpoint["events"], json!(["shop.order.paid"]));
    assert_eq!(endpoint["url"], hook.url);
    let id = endpoint["id"].as_str().expect("id").to_owned();

    // An event it did not subscribe to, then one it did, in one commit.
    let shipped = order_event("shop.order.shipped");
    let paid = order_event("shop.order.paid");
    publish(&app, &[shipped, paid.clone()]).await;
    let got = hook.wait_for(1).await;
    verifies(&got[0], &secret);
    assert_eq!(got[0].event_type, "shop.order.paid");
    let body: Value = serde_json::from_str(&got[0].body).expect("json body");
    assert_eq!(body["id"], paid.id.to_string());
    assert_eq!(body["type"], "shop.order.paid");
    assert_eq!(body["created"], paid.occurred_at_ms / 1000);
    assert_eq!(body["data"]["object"], paid.payload);
    // A wrong secret does not verify.
    assert!(
        basalt_shop::signature::verify(
            &got[0].signature,
            got[0].body.as_bytes(),
            b"whsec_wrong",
            chrono::Utc::now().timestamp(),
            300
        )
        .is_err()
    );

    let delivery = wait_for_delivery(&app, &admin, &id, "succeeded", 1).await;
    assert_eq!(delivery["event_id"], paid.id.to_string());
    assert_eq!(delivery["event_type"], "shop.order.paid");
    assert_eq!(delivery["attempt_count"], 1);
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["attempt"], 1);
    assert_eq!(attempt["response_status"], 200);
    assert_eq!(attempt["succeeded"], true);
    assert!(attempt["error"].is_null());
    assert!(attempt["duration_ms"].as_i64().is_some_and(|d| d >= 0));
    assert_eq!(hook.received().len(), 1, "the shipped event was not sent");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_back_off_and_every_attempt_is_logged() {
    let app = app().await;
    let (_, admin) = admin_token(&app).await;
    let hook = receiver(2).await;
    let endpoint = create_endpoint(&app, &admin, &hook.url, &["shop.order.created"]).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    let id = endpoint["id"].as_str().expect("id").to_owned();
    publish(&app, &[order_event("shop.order.created")]).await;

    let delivery = wait_for_delivery(&app, &admin, &id, "succeeded", 3).await;
    let got = hook.received();
    assert_eq!(got.len(), 3);
    for received in &got {
        verifies(received, &secret);
        assert_eq!(received.body, got[0].body, "the same body every attempt");
    }
    let attempts = delivery["attempts"].as_array().expect("attempts");
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["attempt"], n + 1);
    }
    for failed in &attempts[..2] {
        assert_eq!(failed["response_status"], 500);
        assert_eq!(failed["succeeded"], false);
        assert_eq!(failed["error"], "the endpoint answered 500");
    }
    assert_eq!(attempts[2]["response_status"], 200);
    assert_eq!(attempts[2]["succeeded"], true);
    // Back-off: 1 s base (±25 %), doubling.
    let at = |n: usize| {
        chrono::DateTime::parse_from_rfc3339(attempts[n]["started_at"].as_str().expect("time"))
            .expect("rfc 3339")
    };
    let first_gap = (at(1) - at(0)).num_milliseconds();
    let second_gap = (at(2) - at(1)).num_milliseconds();
    assert!(first_gap >= 700, "{first_gap} ms");
    assert!(second_gap >= 1400, "{second_gap} ms");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_is_given_up_and_can_be_redelivered() {
    let app = identity_app()
        .env("BASALT_SHOP__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "true")
        .env("BASALT_SHOP__WEBHOOKS__MAX_ATTEMPTS", "2")
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .env("BASALT_JOBS__BACKOFF_BASE_SECS", "0")
        .spawn()
        .await;
    let (_, admin) = admin_token(&app).await;
    // Fails twice (the whole first round), then answers.
    let hook = receiver(2).await;
    let endpoint = create_endpoint(&app, &admin, &hook.url, &["shop.order.refunded"]).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_owned();
    let id = endpoint["id"].as_str().expect("id").to_owned();
    publish(&app, &[order_event("shop.order.refunded")]).await;
    let failed = wait_for_delivery(&app, &admin, &id, "failed", 2).await;
    assert_eq!(failed["attempt_count"], 2);
    let delivery_id = failed["id"].as_str().expect("id").to_owned();

    let redeliver = |endpoint: String, delivery: String, token: String| {
        app.client
            .post(app.url(&format!(
                "/api/shop/webhook-endpoints/{endpoint}/deliveries/{delivery}/redeliver"
            )))
            .bearer_auth(token)
            .send()
    };
    let response = redeliver(id.clone(), delivery_id.clone(), admin.clone())
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["delivery"]["id"], delivery_id.as_str());
    let done = wait_for_delivery(&app, &admin, &id, "succeeded", 3).await;
    assert_eq!(done["attempt_count"], 3);
    let got = hook.received();
    assert_eq!(got.len(), 3);
    verifies(&got[2], &secret);
    assert_eq!(got[2].body, got[0].body, "a redelivery sends the same body");

    // A redelivery of a delivery that succeeded is sent again too.
    let again = redeliver(id.clone(), delivery_id.clone(), admin.clone())
        .await
        .expect("answered");
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    hook.wait_for(4).await;
    wait_for_delivery(&app, &admin, &id, "succeeded", 4).await;

    // Unknown ids, or a delivery of another endpoint, are 404s.
    let other = create_endpoint(&app, &admin, &hook.url, &["shop.order.paid"]).await;
    let other_id = other["id"].as_str().expect("id").to_owned();
    let crossed = redeliver(other_id, delivery_id.clone(), admin.clone())
        .await
        .expect("answered");
    assert_eq!(crossed.status(), StatusCode::NOT_FOUND);
    let unknown = redeliver(id.clone(), Uuid::now_v7().to_string(), admin.clone())
        .await
        .expect("answered");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let missing = app
        .client
        .get(app.url(&format!(
            "/api/shop/webhook-endpoints/{}/deliveries",
            Uuid::now_v7()
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn only_admins_manage_webhooks() {
    let app = app().await;
    let (_, admin) = admin_token(&app).await;
    let user =
        tokens(&app, &registered(&app).await, crate::identity::PASSWORD).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
    let hook = receiver(0).await;
    let endpoint = create_endpoint(&app, &admin, &hook.url, &["shop.order.paid"]).await;
    let id = endpoint["id"].as_str().expect("id");
    let delivery = Uuid::now_v7();
    for token in [Some(user.as_str()), None] {
        let expected = if token.is_some() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        let with = |request: reqwest::RequestBuilder| match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let create = with(app.client.post(app.url("/api/shop/webhook-endpoints")))
            .json(&json!({ "url": hook.url, "events": ["shop.order.paid"] }))
            .send()
            .await
            .expect("answered");
        assert_eq!(create.status(), expected);
        let list = with(
            app.client
                .get(app.url(&format!("/api/shop/webhook-endpoints/{id}/deliveries"))),
        )
        .send()
        .await
        .expect("answered");
        assert_eq!(list.status(), expected);
        let redeliver = with(app.client.post(app.url(&format!(
            "/api/shop/webhook-endpoints/{id}/deliveries/{delivery}/redeliver"
        ))))
        .send()
        .await
        .expect("answered");
        assert_eq!(redeliver.status(), expected);
    }
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn endpoints_are_validated_and_private_addresses_refused_unless_allowed() {
    let app = identity_app().spawn().await;
    let (_, admin) = admin_token(&app).await;
    let create = |body: Value| {
        app.client
            .post(app.url("/api/shop/webhook-endpoints"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "ftp://hooks.example.com/",
        "not a url",
    ] {
        let response = create(json!({ "url": url, "events": ["shop.order.paid"] }))
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let problem: Value = response.json().await.expect("problem");
        assert!(problem.to_string().contains("url"), "{problem}");
    }
    for events in [json!([]), json!(["shop.order.exploded"])] {
        let response = create(json!({ "url": "https://hooks.example.com/", "events": events }))
            .await
            .expect("answered");
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{events}"
        );
    }
    let public = create(json!({ "url": "https://hooks.example.com/",
        "events": ["shop.order.paid", "shop.order.paid", "shop.order.shipped"] }))
    .await
    .expect("answered");
    assert_eq!(public.status(), StatusCode::CREATED);
    let body: Value = public.json().await.expect("json");
    assert_eq!(
        body["webhook_endpoint"]["events"],
        json!(["shop.order.paid", "shop.order.shipped"])
    );
    app.stop().await.expect("stops");
}

/// The address is checked again at every attempt: an endpoint that points
/// at loopback (registered while private addresses were allowed, say) gets
/// no request once they are not, and the refusal is logged.
#[tokio::test]
async fn a_delivery_to_a_private_address_is_refused_at_the_attempt() {
    let app = identity_app()
        .env("BASALT_SHOP__WEBHOOKS__MAX_ATTEMPTS", "1")
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .spawn()
        .await;
    let (admin_id, admin) = admin_token(&app).await;
    let hook = receiver(0).await;
    let id = Uuid::now_v7();
    basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query(
            "INSERT INTO shop_webhook_endpoints \
             (id, url, events, secret, enabled, created_by, created_at) \
             VALUES ($1, $2, '[\"shop.order.paid\"]', 'whsec_test', TRUE, $3, $4)",
        )
        .bind(id)
        .bind(&hook.url)
        .bind(admin_id)
        .bind(chrono::Utc::now())
        .execute(conn)
        .await
        .map(|_| ())
    })
    .expect("endpoint");
    publish(&app, &[order_event("shop.order.paid")]).await;
    let delivery = wait_for_delivery(&app, &admin, &id.to_string(), "failed", 1).await;
    let attempt = &delivery["attempts"][0];
    assert!(attempt["response_status"].is_null());
    assert!(
        attempt["error"]
            .as_str()
            .unwrap_or_default()
            .contains("public address"),
        "{attempt}"
    );
    assert!(hook.received().is_empty(), "no request reached loopback");
    app.stop().await.expect("stops");
}
