//! The shop under concurrency, on both databases: no oversell, and
//! discount limits that hold.

use std::sync::Arc;

use basalt_testkit::stripe::LocalStripe;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use super::kit::{As, add, admin, anonymous_cart, call, checkout, product, shop_app, stock};

#[tokio::test]
async fn two_hundred_buyers_for_the_last_ten_units_make_exactly_ten_orders() {
    let stripe = LocalStripe::start().await;
    let app = Arc::new(shop_app(&stripe).spawn().await);
    let admin = admin(&app).await;
    product(&app, &admin, "hot", "HOT", 10, 2500).await;
    let mut carts = Vec::new();
    for _ in 0..200 {
        let cart = anonymous_cart(&app).await;
        add(&app, &cart, "HOT", 1).await;
        carts.push(cart);
    }
    let results = join_all(carts.iter().map(|cart| {
        let app = Arc::clone(&app);
        async move { checkout(&app, cart, None).await }
    }))
    .await;
    let created: Vec<i64> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b["order"]["number"].as_i64().expect("number"))
        .collect();
    let refused = results
        .iter()
        .filter(|(s, b)| {
            *s == 409
                && b["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("out of stock"))
        })
        .count();
    assert_eq!(
        created.len(),
        10,
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert_eq!(refused, 190);
    let mut numbers = created.clone();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=10).collect::<Vec<_>>());
    assert_eq!(stock(&app, "hot").await, 0);
    let reserved: i64 = basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM shop_reservations WHERE sku = 'HOT'",
        )
        .fetch_one(conn)
        .await
    })
    .expect("sum");
    assert_eq!(reserved, 10);
}

#[tokio::test]
async fn a_hundred_uses_of_a_code_limited_to_ten_give_exactly_ten_discounts() {
    let stripe = LocalStripe::start().await;
    let app = Arc::new(shop_app(&stripe).spawn().await);
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 1000, 2000).await;
    let (status, body) = call(
        &app,
        As {
            auth: Some(&admin),
            cart_token: None,
        },
        Method::POST,
        "/api/shop/discounts",
        Some(json!({ "code": "FLASH", "kind": "fixed", "value": 500, "usage_limit": 10 })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut carts = Vec::new();
    for _ in 0..100 {
        let cart = anonymous_cart(&app).await;
        add(&app, &cart, "TEE", 1).await;
        carts.push(cart);
    }
    let results = join_all(carts.iter().map(|cart| {
        let app = Arc::clone(&app);
        async move { checkout(&app, cart, Some("FLASH")).await }
    }))
    .await;
    let discounted = results
        .iter()
        .filter(|(s, b)| *s == 201 && b["order"]["discount"]["amount"] == 500)
        .count();
    let used_up = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["detail"].as_str().is_some_and(|d| d.contains("used up")))
        .count();
    assert_eq!(
        discounted,
        10,
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert_eq!(used_up, 90);
    let (used, redemptions): (i64, i64) = basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query_as("SELECT (SELECT used FROM shop_discounts WHERE code = 'FLASH'), (SELECT COUNT(*) FROM shop_discount_redemptions)")
            .fetch_one(conn)
            .await
    })
    .expect("counts");
    assert_eq!((used, redemptions), (10, 10));
    assert_eq!(stock(&app, "tee").await, 990);
}

#[tokio::test]
async fn a_per_customer_limit_holds_when_one_customer_checks_out_twenty_carts_at_once() {
    let stripe = LocalStripe::start().await;
    let app = Arc::new(shop_app(&stripe).spawn().await);
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 1000, 2000).await;
    let (status, body) = call(
        &app,
        As {
            auth: Some(&admin),
            cart_token: None,
        },
        Method::POST,
        "/api/shop/discounts",
        Some(
            json!({ "code": "TWICE", "kind": "percentage", "value": 50, "per_customer_limit": 2 }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut carts = Vec::new();
    for _ in 0..20 {
        let cart = anonymous_cart(&app).await;
        add(&app, &cart, "TEE", 1).await;
        carts.push(cart);
    }
    // Every cart checks out as buyer@example.com.
    let results = join_all(carts.iter().map(|cart| {
        let app = Arc::clone(&app);
        async move { checkout(&app, cart, Some("twice")).await }
    }))
    .await;
    let discounted = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results
        .iter()
        .filter(|(s, b)| {
            *s == 409
                && b["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("by this customer"))
        })
        .count();
    assert_eq!(
        (discounted, refused),
        (2, 18),
        "{:?}",
        results.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
}
