//! Checkout against localstripe: server-side totals, 409 out of stock,
//! discount codes, and confirmation that asks Stripe and is idempotent.

use basalt_testkit::stripe::LocalStripe;
use reqwest::Method;
use serde_json::{Value, json};

use super::kit::{As, add, admin, anonymous_cart, call, checkout, product, shop_app, stock};

fn money(amount: i64) -> Value {
    json!({ "amount": amount, "currency": "EUR" })
}

#[tokio::test]
async fn checkout_prices_on_the_server_reserves_stock_and_confirmation_asks_stripe() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 3, 1999).await;

    let cart = anonymous_cart(&app).await;
    add(&app, &cart, "TEE", 2).await;
    let (status, body) = checkout(&app, &cart, None).await;
    assert_eq!(status, 201, "{body}");
    let order = &body["order"];
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["subtotal"], money(3998));
    assert_eq!(order["shipping"], money(500));
    assert_eq!(order["tax"], money(855), "19 % of 44.98, rounded");
    assert_eq!(order["total"], money(5353));
    assert_eq!(order["payment"]["provider"], "stripe");
    let intent = order["payment"]["provider_id"]
        .as_str()
        .expect("provider id")
        .to_owned();
    assert!(
        order["payment"]["client_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with(&intent)),
        "{order}"
    );
    assert_eq!(stock(&app, "tee").await, 1, "two units reserved");
    let charged = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(charged["amount"], 5353);

    // The same cart cannot be checked out twice.
    let (status, _) = checkout(&app, &cart, None).await;
    assert_eq!(status, 409);

    // Not paid yet: confirming is refused, nothing changes.
    let id = order["id"].as_str().expect("id").to_owned();
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let confirm = format!("/api/shop/orders/{id}/confirm");
    let (status, early) = call(
        &app,
        who,
        Method::POST,
        &confirm,
        Some(json!({ "provider_id": intent })),
    )
    .await;
    assert_eq!(status, 409, "{early}");
    let (status, _) = call(
        &app,
        who,
        Method::POST,
        &confirm,
        Some(json!({ "provider_id": "pi_other" })),
    )
    .await;
    assert_eq!(status, 422);

    stripe.pay(&intent, "pm_card_visa").await;
    for _ in 0..2 {
        let (status, paid) = call(
            &app,
            who,
            Method::POST,
            &confirm,
            Some(json!({ "provider_id": intent })),
        )
        .await;
        assert_eq!(status, 200, "{paid}");
        assert_eq!(paid["order"]["status"], "paid");
    }
    let (_, seen) = call(
        &app,
        who,
        Method::GET,
        &format!("/api/shop/orders/{id}"),
        None,
    )
    .await;
    let history: Vec<(Value, Value, Value)> = seen["order"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone(), h["by"].clone()))
        .collect();
    assert_eq!(
        history,
        [
            (Value::Null, json!("pending_payment"), json!("anonymous")),
            (
                json!("pending_payment"),
                json!("paid"),
                json!("provider:stripe")
            ),
        ],
        "paid once, however often confirmed"
    );
    assert_eq!(stock(&app, "tee").await, 1, "the reservation became a sale");

    // Out of stock: one unit left, two asked.
    let late = anonymous_cart(&app).await;
    add(&app, &late, "TEE", 2).await;
    let (status, problem) = checkout(&app, &late, None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("out of stock")),
        "{problem}"
    );
    assert_eq!(stock(&app, "tee").await, 1);
}

#[tokio::test]
async fn discount_codes_apply_within_their_rules() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    product(&app, &admin, "tee", "TEE", 100, 1999).await;
    let (status, created) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/discounts",
        Some(json!({
            "code": "ten", "kind": "percentage", "value": 10, "min_order": 3000,
            "usage_limit": 5, "per_customer_limit": 1, "starts_at": null, "ends_at": null
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["discount"]["code"], "TEN");
    let (status, _) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/discounts",
        Some(json!({ "code": "bad", "kind": "percentage", "value": 150 })),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = call(
        &app,
        As::default(),
        Method::POST,
        "/api/shop/discounts",
        Some(json!({ "code": "FREE", "kind": "fixed", "value": 100 })),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/discounts",
        Some(json!({
        "code": "LATER", "kind": "fixed", "value": 100, "starts_at": "2999-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, 201);

    let small = anonymous_cart(&app).await;
    add(&app, &small, "TEE", 1).await;
    let (status, problem) = checkout(&app, &small, Some("TEN")).await;
    assert_eq!(status, 422, "below the minimum: {problem}");
    let (status, _) = checkout(&app, &small, Some("LATER")).await;
    assert_eq!(status, 422, "not valid yet");
    let (status, _) = checkout(&app, &small, Some("NOSUCH")).await;
    assert_eq!(status, 422);

    let cart = anonymous_cart(&app).await;
    add(&app, &cart, "TEE", 2).await;
    let (status, body) = checkout(&app, &cart, Some("ten")).await;
    assert_eq!(status, 201, "{body}");
    let order = &body["order"];
    assert_eq!(order["subtotal"], money(3998));
    assert_eq!(order["discount"], money(400));
    assert_eq!(order["tax"], money(779), "19 % of 35.98 + 5.00");
    assert_eq!(order["total"], money(4877));

    // The same customer (e-mail) again: their one use is spent.
    let again = anonymous_cart(&app).await;
    add(&app, &again, "TEE", 2).await;
    let (status, problem) = checkout(&app, &again, Some("TEN")).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        stock(&app, "tee").await,
        98,
        "the refused checkout took nothing"
    );
}
