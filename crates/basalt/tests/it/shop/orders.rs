//! The order state machine with its history, refunds through Stripe,
//! gapless numbers, and expired reservations released by the job.

use std::time::{Duration, Instant};

use basalt_testkit::TestApp;
use basalt_testkit::stripe::LocalStripe;
use reqwest::Method;
use serde_json::{Value, json};

use super::kit::{As, add, admin, anonymous_cart, call, checkout, product, shop_app, stock};

/// Checks out one unit of `sku` and pays for it; the order.
async fn paid_order(app: &TestApp, stripe: &LocalStripe, sku: &str) -> Value {
    let cart = anonymous_cart(app).await;
    add(app, &cart, sku, 1).await;
    let (status, body) = checkout(app, &cart, None).await;
    assert_eq!(status, 201, "{body}");
    let order = &body["order"];
    let intent = order["payment"]["provider_id"].as_str().expect("intent");
    stripe.pay(intent, "pm_card_visa").await;
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let path = format!(
        "/api/shop/orders/{}/confirm",
        order["id"].as_str().expect("id")
    );
    let (status, paid) = call(
        app,
        who,
        Method::POST,
        &path,
        Some(json!({ "provider_id": intent })),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    paid["order"].clone()
}

#[tokio::test]
async fn orders_move_only_along_the_state_machine_and_record_who_and_why() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    product(&app, &admin, "tee", "TEE", 10, 1000).await;

    // Unpaid: cannot be fulfilled; can be cancelled, which gives the stock back.
    let cart = anonymous_cart(&app).await;
    add(&app, &cart, "TEE", 2).await;
    let (_, unpaid) = checkout(&app, &cart, None).await;
    let unpaid_id = unpaid["order"]["id"].as_str().expect("id").to_owned();
    let (status, _) = call(
        &app,
        as_admin,
        Method::POST,
        &format!("/api/shop/orders/{unpaid_id}/fulfil"),
        None,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(stock(&app, "tee").await, 8);
    let (status, cancelled) = call(
        &app,
        as_admin,
        Method::POST,
        &format!("/api/shop/orders/{unpaid_id}/cancel"),
        Some(json!({ "reason": "customer called" })),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["order"]["status"], "cancelled");
    assert_eq!(
        cancelled["order"]["history"][1]["reason"],
        "customer called"
    );
    assert_eq!(stock(&app, "tee").await, 10);
    let intent = unpaid["order"]["payment"]["provider_id"]
        .as_str()
        .expect("intent");
    assert_eq!(
        stripe.get(&format!("/v1/payment_intents/{intent}")).await["status"],
        "canceled"
    );
    let (status, _) = call(
        &app,
        as_admin,
        Method::POST,
        &format!("/api/shop/orders/{unpaid_id}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 409, "cancelled is final");

    let order = paid_order(&app, &stripe, "TEE").await;
    let id = order["id"].as_str().expect("id").to_owned();
    let at = |what: &str| format!("/api/shop/orders/{id}/{what}");
    let (status, _) = call(&app, As::default(), Method::POST, &at("fulfil"), None).await;
    assert_eq!(status, 401);
    for illegal in ["ship", "deliver", "cancel"] {
        let (status, problem) = call(&app, as_admin, Method::POST, &at(illegal), None).await;
        assert_eq!(status, 409, "{illegal} from paid: {problem}");
    }
    for (step, to) in [
        ("fulfil", "fulfilled"),
        ("ship", "shipped"),
        ("deliver", "delivered"),
    ] {
        let (status, moved) = call(&app, as_admin, Method::POST, &at(step), None).await;
        assert_eq!(status, 200, "{moved}");
        assert_eq!(moved["order"]["status"], to);
    }
    let (status, _) = call(&app, as_admin, Method::POST, &at("ship"), None).await;
    assert_eq!(status, 409, "no going back");

    // Refunds through Stripe: part, then the rest; never more than paid.
    let (status, part) = call(
        &app,
        as_admin,
        Method::POST,
        &at("refunds"),
        Some(json!({ "amount": 500 })),
    )
    .await;
    assert_eq!(status, 200, "{part}");
    assert_eq!(part["order"]["status"], "partially_refunded");
    let total = order["total"]["amount"].as_i64().expect("total");
    let (status, _) = call(
        &app,
        as_admin,
        Method::POST,
        &at("refunds"),
        Some(json!({ "amount": total })),
    )
    .await;
    assert_eq!(status, 409, "more than is left");
    let (status, rest) = call(
        &app,
        as_admin,
        Method::POST,
        &at("refunds"),
        Some(json!({ "amount": total - 500 })),
    )
    .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["order"]["status"], "refunded");
    assert_eq!(rest["order"]["refunded"]["amount"], total);

    let history: Vec<(Value, Value)> = rest["order"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone()))
        .collect();
    let expected: Vec<(Value, Value)> = [
        (None, "pending_payment"),
        (Some("pending_payment"), "paid"),
        (Some("paid"), "fulfilled"),
        (Some("fulfilled"), "shipped"),
        (Some("shipped"), "delivered"),
        (Some("delivered"), "partially_refunded"),
        (Some("partially_refunded"), "refunded"),
    ]
    .into_iter()
    .map(|(f, t)| (json!(f), json!(t)))
    .collect();
    assert_eq!(history, expected);
    let admin_moves = &rest["order"]["history"][2];
    assert!(
        admin_moves["by"].as_str().is_some_and(|b| b.len() == 36),
        "an admin's id: {admin_moves}"
    );
    assert!(admin_moves["at"].is_string() && admin_moves["reason"].is_string());
}

#[tokio::test]
async fn order_numbers_have_no_gaps_even_when_checkouts_fail() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 3, 1000).await;
    let mut numbers = Vec::new();
    for round in 0..5 {
        let cart = anonymous_cart(&app).await;
        add(&app, &cart, "TEE", 1).await;
        let (status, body) = checkout(&app, &cart, None).await;
        if round < 3 {
            assert_eq!(status, 201, "{body}");
            numbers.push(body["order"]["number"].as_i64().expect("number"));
        } else {
            assert_eq!(status, 409, "{body}");
        }
    }
    let (status, _) = call(
        &app,
        As {
            auth: Some(&admin),
            cart_token: None,
        },
        Method::PATCH,
        "/api/shop/variants/TEE",
        Some(json!({ "stock": 1 })),
    )
    .await;
    assert_eq!(status, 200);
    let cart = anonymous_cart(&app).await;
    add(&app, &cart, "TEE", 1).await;
    let (_, body) = checkout(&app, &cart, None).await;
    numbers.push(body["order"]["number"].as_i64().expect("number"));
    assert_eq!(numbers, [1, 2, 3, 4]);
}

#[tokio::test]
async fn an_expired_reservation_is_released_by_the_recurring_job() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe)
        .env("BASALT_SHOP__RESERVATION_TTL_SECS", "1")
        .env("BASALT_SHOP__RESERVATION_SWEEP", "* * * * * *")
        .spawn()
        .await;
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 5, 1000).await;
    let cart = anonymous_cart(&app).await;
    add(&app, &cart, "TEE", 5).await;
    let (status, body) = checkout(&app, &cart, None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(stock(&app, "tee").await, 0);
    let id = body["order"]["id"].as_str().expect("id");
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let order = loop {
        let (_, seen) = call(
            &app,
            who,
            Method::GET,
            &format!("/api/shop/orders/{id}"),
            None,
        )
        .await;
        if seen["order"]["status"] == "cancelled" {
            break seen["order"].clone();
        }
        assert!(Instant::now() < deadline, "not released: {seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stock(&app, "tee").await, 5);
    let last = &order["history"][1];
    assert_eq!(
        (last["by"].as_str(), last["reason"].as_str()),
        (Some("system"), Some("reservation expired"))
    );
    let intent = body["order"]["payment"]["provider_id"]
        .as_str()
        .expect("intent");
    assert_eq!(
        stripe.get(&format!("/v1/payment_intents/{intent}")).await["status"],
        "canceled"
    );
}

#[tokio::test]
async fn a_payment_that_arrives_after_cancellation_is_refunded_not_kept() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 5, 1000).await;
    let cart = anonymous_cart(&app).await;
    add(&app, &cart, "TEE", 1).await;
    let (status, body) = checkout(&app, &cart, None).await;
    assert_eq!(status, 201, "{body}");
    let order = &body["order"];
    let id: uuid::Uuid = order["id"].as_str().expect("id").parse().expect("uuid");
    let intent = order["payment"]["provider_id"].as_str().expect("intent");
    // As if the order had been cancelled while the provider still let the
    // buyer pay (a PayPal approval after the reservation expired).
    basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query("UPDATE shop_orders SET status = 'cancelled' WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })
    .expect("cancelled");
    stripe.pay(intent, "pm_card_visa").await;
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let confirm = format!("/api/shop/orders/{id}/confirm");
    for _ in 0..2 {
        let (status, problem) = call(
            &app,
            who,
            Method::POST,
            &confirm,
            Some(json!({ "provider_id": intent })),
        )
        .await;
        assert_eq!(status, 409, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("refunded")),
            "{problem}"
        );
    }
    let refunds: Vec<String> = basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar("SELECT provider_refund_id FROM shop_refunds WHERE order_id = $1")
            .bind(id)
            .fetch_all(conn)
            .await
    })
    .expect("refunds");
    assert_eq!(refunds.len(), 1, "reported twice, refunded once");
    let refund = stripe.get(&format!("/v1/refunds/{}", refunds[0])).await;
    assert_eq!(refund["amount"], order["total"]["amount"]);
    assert_eq!(refund["payment_intent"], intent);
    let (_, seen) = call(
        &app,
        who,
        Method::GET,
        &format!("/api/shop/orders/{id}"),
        None,
    )
    .await;
    assert_eq!(seen["order"]["status"], "cancelled");
    assert!(
        seen["order"]["history"]
            .as_array()
            .expect("history")
            .iter()
            .any(|h| h["reason"]
                .as_str()
                .is_some_and(|r| r.contains("after cancellation"))),
        "{seen}"
    );
}
