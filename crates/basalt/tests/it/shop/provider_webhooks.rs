//! `POST /api/shop/webhooks/stripe` and `/paypal` over HTTP: localstripe's
//! own signed deliveries and the fake PayPal's complete orders; duplicates
//! are answered 200 and ignored; a delivery that does not verify is a 400.

use basalt_testkit::TestApp;
use basalt_testkit::paypal::{self, FakePaypal};
use basalt_testkit::stripe::LocalStripe;
use reqwest::Method;
use serde_json::{Value, json};

use super::kit::{self, As};

const WEBHOOK_SECRET: &str = "whsec_basalt_webhook_test";

async fn stripe_app(stripe: &LocalStripe) -> TestApp {
    kit::shop_app(stripe)
        .env("BASALT_SHOP__STRIPE__WEBHOOK_SECRET", WEBHOOK_SECRET)
        .spawn()
        .await
}

async fn paypal_app(stripe: &LocalStripe, fake: &FakePaypal) -> TestApp {
    kit::shop_app(stripe)
        .env("BASALT_SHOP__PAYPAL__CLIENT_ID", paypal::CLIENT_ID)
        .env("BASALT_SHOP__PAYPAL__CLIENT_SECRET", paypal::CLIENT_SECRET)
        .env("BASALT_SHOP__PAYPAL__WEBHOOK_ID", paypal::WEBHOOK_ID)
        .env("BASALT_SHOP__PAYPAL__API_BASE", &fake.api_base())
        .env("BASALT_SHOP__PAYPAL__CERT_URL_HOSTS", "[\"127.0.0.1\"]")
        .spawn()
        .await
}

/// Checks out `cart` with `provider`, with an `Idempotency-Key` (checkout
/// requires one): status and JSON.
async fn checkout(app: &TestApp, cart: &(String, String), provider: &str) -> (u16, Value) {
    let mut body = kit::checkout_body(None);
    body["provider"] = json!(provider);
    let response = app
        .client
        .post(app.url(&format!("/api/shop/carts/{}/checkout", cart.0)))
        .header("x-cart-token", &cart.1)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A product and a checkout of it with `provider`: (the order, the cart).
async fn placed_order(app: &TestApp, provider: &str) -> (Value, (String, String)) {
    let admin = kit::admin(app).await;
    kit::product(app, &admin, "lamp", "LAMP-1", 5, 2000).await;
    let cart = kit::anonymous_cart(app).await;
    kit::add(app, &cart, "LAMP-1", 1).await;
    let (status, order) = checkout(app, &cart, provider).await;
    assert_eq!(status, 201, "{order}");
    (order["order"].clone(), cart)
}

async fn order_now(app: &TestApp, cart: &(String, String), id: &str) -> Value {
    let (status, body) = kit::call(
        app,
        As {
            auth: None,
            cart_token: Some(&cart.1),
        },
        Method::GET,
        &format!("/api/shop/orders/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["order"].clone()
}

/// Polls until the order is `status` (a webhook arrives asynchronously).
async fn wait_for_status(app: &TestApp, cart: &(String, String), id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let order = order_now(app, cart, id).await;
        if order["status"] == status {
            return order;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "order still {} instead of {status}",
            order["status"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn paid_transitions(order: &Value) -> usize {
    order["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["to"] == "paid")
        .count()
}

#[tokio::test]
async fn localstripes_signed_webhook_marks_the_order_paid() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    stripe
        .register_webhook(
            "basalt",
            &app.url("/api/shop/webhooks/stripe"),
            WEBHOOK_SECRET,
        )
        .await;
    let (order, cart) = placed_order(&app, "stripe").await;
    let id = order["id"].as_str().expect("id");
    let intent = order["payment"]["provider_id"].as_str().expect("intent");
    // The buyer pays; nobody calls /confirm: the webhook alone completes it.
    stripe.pay(intent, "pm_card_visa").await;
    let paid = wait_for_status(&app, &cart, id, "paid").await;
    let last = paid["history"].as_array().expect("history").last().cloned();
    assert_eq!(
        last.as_ref().map(|h| &h["by"]),
        Some(&json!("provider:stripe")),
        "{paid}"
    );
}

#[tokio::test]
async fn a_stripe_event_is_handled_once_however_often_it_is_delivered() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    let (order, cart) = placed_order(&app, "stripe").await;
    let id = order["id"].as_str().expect("id");
    let intent = order["payment"]["provider_id"].as_str().expect("intent");
    let total = order["total"]["amount"].as_i64().expect("total");
    stripe.pay(intent, "pm_card_visa").await;
    let body = serde_json::to_vec(&json!({
        "id": "evt_basalt_dup", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "object": "payment_intent", "status": "succeeded",
            "amount": total, "amount_received": total, "currency": "eur"}}
    }))
    .expect("json");
    let now = chrono::Utc::now().timestamp();
    let header = basalt_shop::signature::sign(WEBHOOK_SECRET.as_bytes(), now, &body);
    let headers = [("stripe-signature", header)];

    // Ten deliveries at once: one handles it, nine are duplicates.
    let answers = futures_util::future::join_all(
        (0..10).map(|_| post_raw(&app, "/api/shop/webhooks/stripe", &headers, &body)),
    )
    .await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let fresh = answers
        .iter()
        .filter(|(_, body)| body["duplicate"] == false)
        .count();
    assert_eq!(fresh, 1, "{answers:?}");
    let paid = order_now(&app, &cart, id).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid_transitions(&paid), 1);
    // Later again: still a duplicate.
    let (status, again) = post_raw(&app, "/api/shop/webhooks/stripe", &headers, &body).await;
    assert_eq!(
        (status, &again["duplicate"]),
        (200, &json!(true)),
        "{again}"
    );
}

#[tokio::test]
async fn a_stripe_delivery_that_does_not_verify_is_a_400_and_changes_nothing() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    let (order, cart) = placed_order(&app, "stripe").await;
    let id = order["id"].as_str().expect("id");
    let intent = order["payment"]["provider_id"].as_str().expect("intent");
    let total = order["total"]["amount"].as_i64().expect("total");
    let body = serde_json::to_vec(&json!({
        "id": "evt_forged", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "status": "succeeded", "amount": total, "currency": "eur"}}
    }))
    .expect("json");
    let now = chrono::Utc::now().timestamp();
    for headers in [
        vec![(
            "stripe-signature",
            basalt_shop::signature::sign(b"whsec_wrong", now, &body),
        )],
        vec![(
            "stripe-signature",
            basalt_shop::signature::sign(WEBHOOK_SECRET.as_bytes(), now - 3600, &body),
        )],
        vec![("stripe-signature", "t=abc,v1=zz".to_owned())],
        vec![],
    ] {
        let (status, problem) = post_raw(&app, "/api/shop/webhooks/stripe", &headers, &body).await;
        assert_eq!(status, 400, "{headers:?}: {problem}");
    }
    // Signed, but not JSON: still a 400, not a 500.
    let junk = b"not json";
    let headers = [(
        "stripe-signature",
        basalt_shop::signature::sign(WEBHOOK_SECRET.as_bytes(), now, junk),
    )];
    let (status, _) = post_raw(&app, "/api/shop/webhooks/stripe", &headers, junk).await;
    assert_eq!(status, 400);
    assert_eq!(
        order_now(&app, &cart, id).await["status"],
        "pending_payment"
    );
    // Unsigned is malformed whatever is configured; signed for PayPal,
    // which is not configured here, is a 404.
    let (status, _) = post_raw(&app, "/api/shop/webhooks/paypal", &[], b"{}").await;
    assert_eq!(status, 400);
    let paypal_headers: Vec<(&str, String)> = [
        "paypal-transmission-id",
        "paypal-transmission-time",
        "paypal-transmission-sig",
        "paypal-cert-url",
        "paypal-auth-algo",
    ]
    .into_iter()
    .map(|h| (h, "x".to_owned()))
    .collect();
    let (status, _) = post_raw(&app, "/api/shop/webhooks/paypal", &paypal_headers, b"{}").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_paypal_capture_webhook_marks_the_order_paid_once() {
    let stripe = LocalStripe::start().await;
    let fake = FakePaypal::start().await;
    let app = paypal_app(&stripe, &fake).await;
    let (order, cart) = placed_order(&app, "paypal").await;
    let id = order["id"].as_str().expect("id");
    let paypal_order = order["payment"]["provider_id"].as_str().expect("order id");
    assert!(
        order["payment"]["approve_url"].as_str().is_some(),
        "{order}"
    );
    fake.approve(paypal_order);
    fake.capture_behind_basalts_back(paypal_order);
    let event = serde_json::to_vec(&fake.capture_completed_event(paypal_order)).expect("json");
    let url = app.url("/api/shop/webhooks/paypal");
    // PayPal retries: the same event, each delivery signed anew.
    for _ in 0..3 {
        assert_eq!(fake.deliver(&url, paypal::WEBHOOK_ID, &event).await, 200);
    }
    let paid = order_now(&app, &cart, id).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(paid_transitions(&paid), 1);

    // Not signed by the certificate's key: 400.
    let other = FakePaypal::start_with_other_key().await;
    let forged: Vec<(&str, String)> = other
        .sign(paypal::WEBHOOK_ID, &event)
        .into_iter()
        .map(|(name, value)| match name {
            "PAYPAL-CERT-URL" => (name, fake.cert_url()),
            _ => (name, value),
        })
        .collect();
    let (status, problem) = post_raw(&app, "/api/shop/webhooks/paypal", &forged, &event).await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn a_paypal_approval_webhook_captures_an_order_whose_buyer_never_came_back() {
    let stripe = LocalStripe::start().await;
    let fake = FakePaypal::start().await;
    let app = paypal_app(&stripe, &fake).await;
    let (order, cart) = placed_order(&app, "paypal").await;
    let id = order["id"].as_str().expect("id");
    let paypal_order = order["payment"]["provider_id"].as_str().expect("order id");
    fake.approve(paypal_order);
    let event = serde_json::to_vec(&json!({
        "id": "WH-APPROVED-1", "event_version": "1.0", "resource_type": "checkout-order",
        "event_type": "CHECKOUT.ORDER.APPROVED",
        "resource": {"id": paypal_order, "status": "APPROVED", "intent": "CAPTURE"}
    }))
    .expect("json");
    let url = app.url("/api/shop/webhooks/paypal");
    assert_eq!(fake.deliver(&url, paypal::WEBHOOK_ID, &event).await, 200);
    let paid = order_now(&app, &cart, id).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(
        fake.order(paypal_order).expect("order")["status"],
        "COMPLETED"
    );
    // The buyer's client confirms late: same order, no second capture.
    let (status, confirmed) = kit::call(
        &app,
        As {
            auth: None,
            cart_token: Some(&cart.1),
        },
        Method::POST,
        &format!("/api/shop/orders/{id}/confirm"),
        Some(json!({ "provider_id": paypal_order })),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(paid_transitions(&confirmed["order"]), 1);
    let captures = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/capture"))
        .count();
    assert_eq!(captures, 1);
}

#[tokio::test]
async fn the_webhook_and_the_clients_confirmation_race_fifty_times_and_each_order_is_paid_once() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    let admin = kit::admin(&app).await;
    kit::product(&app, &admin, "race", "RACE-1", 50, 1500).await;
    for round in 0..50 {
        let cart = kit::anonymous_cart(&app).await;
        kit::add(&app, &cart, "RACE-1", 1).await;
        let (status, placed) = checkout(&app, &cart, "stripe").await;
        assert_eq!(status, 201, "{placed}");
        let order = &placed["order"];
        let id = order["id"].as_str().expect("id");
        let intent = order["payment"]["provider_id"].as_str().expect("intent");
        let total = order["total"]["amount"].as_i64().expect("total");
        stripe.pay(intent, "pm_card_visa").await;
        let body = serde_json::to_vec(&json!({
            "id": format!("evt_race_{round}"), "object": "event", "type": "payment_intent.succeeded",
            "data": {"object": {"id": intent, "object": "payment_intent", "status": "succeeded",
                "amount": total, "amount_received": total, "currency": "eur"}}
        }))
        .expect("json");
        let now = chrono::Utc::now().timestamp();
        let headers = [(
            "stripe-signature",
            basalt_shop::signature::sign(WEBHOOK_SECRET.as_bytes(), now, &body),
        )];
        let who = As {
            auth: None,
            cart_token: Some(&cart.1),
        };
        let confirm_path = format!("/api/shop/orders/{id}/confirm");
        let ((hook, hook_body), (confirmed, confirm_body)) = tokio::join!(
            post_raw(&app, "/api/shop/webhooks/stripe", &headers, &body),
            kit::call(
                &app,
                who,
                Method::POST,
                &confirm_path,
                Some(json!({ "provider_id": intent })),
            ),
        );
        assert_eq!(hook, 200, "round {round}: {hook_body}");
        assert_eq!(confirmed, 200, "round {round}: {confirm_body}");
        let paid = order_now(&app, &cart, id).await;
        assert_eq!(paid["status"], "paid", "round {round}");
        assert_eq!(paid_transitions(&paid), 1, "round {round}: {paid}");
    }
}

#[tokio::test]
async fn event_ids_are_forgotten_after_the_retention_period_only() {
    let stripe = LocalStripe::start().await;
    let app = stripe_app(&stripe).await;
    let deliver = |id: &'static str| {
        let body = serde_json::to_vec(&json!({
            "id": id, "object": "event", "type": "customer.created", "data": {"object": {}}
        }))
        .expect("json");
        let now = chrono::Utc::now().timestamp();
        let header = basalt_shop::signature::sign(WEBHOOK_SECRET.as_bytes(), now, &body);
        let app = &app;
        async move {
            let (status, receipt) = post_raw(
                app,
                "/api/shop/webhooks/stripe",
                &[("stripe-signature", header)],
                &body,
            )
            .await;
            assert_eq!(status, 200, "{receipt}");
            receipt["duplicate"] == true
        }
    };
    assert!(!deliver("evt_old").await);
    assert!(!deliver("evt_recent").await);
    let long_ago = chrono::Utc::now() - chrono::Duration::days(31);
    basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query("UPDATE shop_provider_events SET received_at = $1 WHERE event_id = 'evt_old'")
            .bind(long_ago)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .expect("backdated");
    let shop = app
        .platform
        .services
        .require::<basalt_shop::service::Shop>()
        .expect("the shop service");
    assert_eq!(shop.prune_provider_events().await.expect("pruned"), 1);
    assert!(!deliver("evt_old").await, "forgotten, so handled as new");
    assert!(deliver("evt_recent").await, "still remembered");
}
