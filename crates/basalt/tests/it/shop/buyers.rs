//! A signed-in buyer's order from cart to mailbox: their orders list, who
//! else may read an order, the order events in the outbox, the paid mail
//! through the job queue, and confirmations racing each other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_testkit::TestApp;
use basalt_testkit::smtp::SmtpServer;
use basalt_testkit::stripe::LocalStripe;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;

use super::kit::{As, admin, call, checkout_body, product, shop_app};

/// The outbox's events of `kind` about order `id`.
async fn events_about(app: &TestApp, kind: &'static str, id: &str) -> i64 {
    let pattern = format!("%{id}%");
    basalt_platform::with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM platform_outbox WHERE kind = $1 AND CAST(payload AS TEXT) LIKE $2",
        )
        .bind(kind)
        .bind(&pattern)
        .fetch_one(conn)
        .await
    })
    .expect("count")
}

#[tokio::test]
async fn a_signed_in_buyer_pays_once_however_many_confirmations_race_and_is_mailed() {
    let stripe = LocalStripe::start().await;
    let smtp = SmtpServer::start().await;
    let app = Arc::new(
        shop_app(&stripe)
            .env("BASALT_SMTP_URL", &smtp.url())
            .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
            .spawn()
            .await,
    );
    let admin = admin(&app).await;
    product(&app, &admin, "tee", "TEE", 5, 1000).await;
    let buyer = crate::blog::sign_up(&app).await;
    let auth = format!("Token {}", buyer.token);
    let me = As {
        auth: Some(&auth),
        cart_token: None,
    };
    let (_, cart) = call(&app, me, Method::POST, "/api/shop/carts", None).await;
    let cart_id = cart["cart"]["id"].as_str().expect("id").to_owned();
    let (status, _) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/shop/carts/{cart_id}/items"),
        Some(json!({ "sku": "TEE", "quantity": 1 })),
    )
    .await;
    assert_eq!(status, 200);
    let mut body = checkout_body(None);
    body["email"] = json!(buyer.email);
    let (status, placed) = call(
        &app,
        me,
        Method::POST,
        &format!("/api/shop/carts/{cart_id}/checkout"),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["order"]["id"].as_str().expect("id").to_owned();
    let intent = placed["order"]["payment"]["provider_id"]
        .as_str()
        .expect("intent")
        .to_owned();
    assert_eq!(events_about(&app, "shop.order.created", &id).await, 1);

    // Only the buyer and admins see it.
    let (_, mine) = call(&app, me, Method::GET, "/api/shop/orders", None).await;
    assert_eq!(mine["orders"][0]["id"], id.as_str());
    let other = crate::blog::sign_up(&app).await;
    let other_auth = format!("Token {}", other.token);
    let them = As {
        auth: Some(&other_auth),
        cart_token: None,
    };
    let (status, _) = call(
        &app,
        them,
        Method::GET,
        &format!("/api/shop/orders/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, theirs) = call(&app, them, Method::GET, "/api/shop/orders", None).await;
    assert_eq!(theirs["orders"], json!([]));
    let (status, _) = call(
        &app,
        As {
            auth: Some(&admin),
            cart_token: None,
        },
        Method::GET,
        &format!("/api/shop/orders/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &app,
        them,
        Method::POST,
        &format!("/api/shop/orders/{id}/confirm"),
        Some(json!({ "provider_id": intent })),
    )
    .await;
    assert_eq!(status, 404, "a stranger cannot confirm");

    stripe.pay(&intent, "pm_card_visa").await;
    let confirmations = join_all((0..20).map(|_| {
        let (app, auth, intent, id) = (Arc::clone(&app), auth.clone(), intent.clone(), id.clone());
        async move {
            let me = As {
                auth: Some(&auth),
                cart_token: None,
            };
            call(
                &app,
                me,
                Method::POST,
                &format!("/api/shop/orders/{id}/confirm"),
                Some(json!({ "provider_id": intent })),
            )
            .await
        }
    }))
    .await;
    for (status, body) in &confirmations {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["order"]["status"], "paid");
    }
    let (_, seen) = call(
        &app,
        me,
        Method::GET,
        &format!("/api/shop/orders/{id}"),
        None,
    )
    .await;
    let paid = seen["order"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["to"] == "paid")
        .count();
    assert_eq!(paid, 1, "{seen}");
    assert_eq!(events_about(&app, "shop.order.paid", &id).await, 1);

    // The paid mail (after the sign-up's verification mail).
    let number = seen["order"]["number"].as_i64().expect("number");
    let subject = format!("Order #{number}: thank you");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let found = smtp
            .messages()
            .into_iter()
            .find(|m| m.is_for(&buyer.email) && m.subject == subject);
        if let Some(mail) = found {
            break mail;
        }
        assert!(
            Instant::now() < deadline,
            "no paid mail: {:?}",
            smtp.messages()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // 10.00 + 5.00 shipping + 19 % tax.
    assert!(mail.body.contains("17.85 EUR"), "{}", mail.body);
}
