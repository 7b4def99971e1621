//! The PayPal adapter (Orders v2) against the fake PayPal of
//! `basalt_testkit::paypal`, on loopback: token caching, create, capture,
//! refunds, `PayPal-Request-Id`, and webhook self-verification with the
//! fake's own key and certificate.

use axum::http::HeaderMap;
use basalt_platform::config::Secret;
use basalt_shop::config::PaypalConfig;
use basalt_shop::money::{Currency, Money};
use basalt_shop::payments::paypal::PaypalProvider;
use basalt_shop::payments::{
    PaymentError, PaymentProvider, PaymentRequest, PaymentState, WebhookKind,
};
use basalt_testkit::paypal::{self, FakePaypal};
use uuid::Uuid;

fn money(amount: i64, code: &str) -> Money {
    Money::new(amount, Currency::parse(code).expect("currency"))
}

fn config(fake: &FakePaypal) -> PaypalConfig {
    PaypalConfig {
        client_id: Some(paypal::CLIENT_ID.into()),
        client_secret: Some(Secret::new(paypal::CLIENT_SECRET)),
        webhook_id: Some(paypal::WEBHOOK_ID.into()),
        api_base: fake.api_base(),
        cert_url_hosts: vec!["127.0.0.1".into()],
    }
}

fn provider(config: &PaypalConfig) -> PaypalProvider {
    PaypalProvider::from_config(config)
        .expect("client builds")
        .expect("configured")
}

fn order(amount: Money) -> PaymentRequest {
    let order_id = Uuid::new_v4();
    PaymentRequest {
        order_id,
        order_number: 7,
        amount,
        idempotency_key: format!("order-{order_id}"),
    }
}

fn headers(pairs: Vec<(&'static str, String)>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(name, value.parse().expect("header value"));
    }
    headers
}

#[tokio::test]
async fn paypal_creates_an_order_to_capture_with_the_amount_in_decimals_and_an_approve_link() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(1999, "EUR")))
        .await
        .expect("created");
    assert!(
        created
            .approve_url
            .as_deref()
            .is_some_and(|u| u.contains(&created.provider_id)),
        "{created:?}"
    );
    assert_eq!(created.client_secret, None);
    let shown = fake.order(&created.provider_id).expect("order exists");
    assert_eq!(shown["intent"], "CAPTURE");
    assert_eq!(shown["status"], "CREATED");
    assert_eq!(
        shown["purchase_units"][0]["amount"],
        serde_json::json!({"currency_code": "EUR", "value": "19.99"})
    );
    // A currency without decimals is written without any.
    let yen = paypal
        .create(&order(money(500, "JPY")))
        .await
        .expect("created");
    let shown = fake.order(&yen.provider_id).expect("order exists");
    assert_eq!(shown["purchase_units"][0]["amount"]["value"], "500");
    // Forints: two decimals in ISO 4217, none at PayPal; read back in minor units.
    let forints = paypal
        .create(&order(money(150_000, "HUF")))
        .await
        .expect("created");
    let shown = fake.order(&forints.provider_id).expect("order exists");
    assert_eq!(shown["purchase_units"][0]["amount"]["value"], "1500");
    fake.approve(&forints.provider_id);
    assert_eq!(
        paypal
            .confirm(&forints.provider_id, "huf")
            .await
            .expect("captured"),
        PaymentState::Succeeded {
            amount: money(150_000, "HUF")
        }
    );
    assert!(matches!(
        paypal.create(&order(money(150_050, "HUF"))).await,
        Err(PaymentError::Refused(_))
    ));
}

#[tokio::test]
async fn paypal_captures_once_the_buyer_approved_and_never_twice() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(2500, "EUR")))
        .await
        .expect("created");
    // Not approved yet: nothing to capture.
    assert_eq!(
        paypal
            .confirm(&created.provider_id, "confirm-1")
            .await
            .expect("read"),
        PaymentState::Pending
    );
    fake.approve(&created.provider_id);
    let paid = PaymentState::Succeeded {
        amount: money(2500, "EUR"),
    };
    assert_eq!(
        paypal
            .confirm(&created.provider_id, "confirm-2")
            .await
            .expect("captured"),
        paid
    );
    assert_eq!(
        fake.order(&created.provider_id).expect("order")["status"],
        "COMPLETED"
    );
    // Again, from a retry or the other racer: the capture is read, not repeated.
    assert_eq!(
        paypal
            .confirm(&created.provider_id, "confirm-3")
            .await
            .expect("read"),
        paid
    );
    let captures = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/capture"))
        .collect::<Vec<_>>();
    assert_eq!(captures.len(), 1, "{captures:?}");
    assert_eq!(captures[0].request_id.as_deref(), Some("confirm-2"));
}

#[tokio::test]
async fn paypal_reports_an_order_captured_elsewhere_as_succeeded() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(1000, "USD")))
        .await
        .expect("created");
    fake.approve(&created.provider_id);
    fake.capture_behind_basalts_back(&created.provider_id);
    assert_eq!(
        paypal
            .confirm(&created.provider_id, "confirm")
            .await
            .expect("read"),
        PaymentState::Succeeded {
            amount: money(1000, "USD")
        }
    );
}

#[tokio::test]
async fn paypal_reads_the_capture_when_another_capture_won_the_race() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(800, "EUR")))
        .await
        .expect("created");
    fake.approve(&created.provider_id);
    fake.race_next_capture(&created.provider_id);
    assert_eq!(
        paypal
            .confirm(&created.provider_id, "confirm")
            .await
            .expect("read"),
        PaymentState::Succeeded {
            amount: money(800, "EUR")
        }
    );
    let captures = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/capture"))
        .count();
    assert_eq!(
        captures, 1,
        "Basalt's capture was refused, then the order read"
    );
}

#[tokio::test]
async fn paypal_refunds_the_orders_capture_up_to_what_was_captured() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(3000, "EUR")))
        .await
        .expect("created");
    // Nothing captured yet: nothing to refund.
    assert!(matches!(
        paypal
            .refund(&created.provider_id, money(100, "EUR"), "r-0")
            .await,
        Err(PaymentError::Refused(_))
    ));
    fake.approve(&created.provider_id);
    paypal
        .confirm(&created.provider_id, "c")
        .await
        .expect("captured");
    let first = paypal
        .refund(&created.provider_id, money(1050, "EUR"), "r-1")
        .await
        .expect("refunded");
    // The same request id is the same refund, not a second one.
    let replayed = paypal
        .refund(&created.provider_id, money(1050, "EUR"), "r-1")
        .await
        .expect("replayed");
    assert_eq!(first, replayed);
    let capture = &fake.order(&created.provider_id).expect("order")["purchase_units"][0]["payments"]
        ["captures"][0];
    assert_eq!(capture["status"], "PARTIALLY_REFUNDED");
    // 19.50 are left: 20.00 is refused.
    assert!(matches!(
        paypal.refund(&created.provider_id, money(2000, "EUR"), "r-2").await,
        Err(PaymentError::Refused(issue)) if issue == "REFUND_AMOUNT_EXCEEDED"
    ));
    paypal
        .refund(&created.provider_id, money(1950, "EUR"), "r-3")
        .await
        .expect("the rest");
    let capture = &fake.order(&created.provider_id).expect("order")["purchase_units"][0]["payments"]
        ["captures"][0];
    assert_eq!(capture["status"], "REFUNDED");
}

#[tokio::test]
async fn paypal_cancel_leaves_an_uncaptured_order_alone_and_refuses_a_captured_one() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(500, "EUR")))
        .await
        .expect("created");
    let posts_before = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    paypal
        .cancel(&created.provider_id)
        .await
        .expect("cancelled");
    let posts_after = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        posts_before, posts_after,
        "cancel asks PayPal nothing to change"
    );

    fake.approve(&created.provider_id);
    paypal
        .confirm(&created.provider_id, "c")
        .await
        .expect("captured");
    assert!(matches!(
        paypal.cancel(&created.provider_id).await,
        Err(PaymentError::Refused(_))
    ));
    assert!(matches!(
        paypal.cancel("NO-SUCH-ORDER").await,
        Err(PaymentError::Refused(_))
    ));
    assert!(matches!(
        paypal.confirm("../v1/oauth2/token", "k").await,
        Err(PaymentError::Refused(_))
    ));
}

#[tokio::test]
async fn paypal_caches_its_token_and_fetches_a_new_one_when_it_is_refused() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    for _ in 0..3 {
        paypal
            .create(&order(money(100, "EUR")))
            .await
            .expect("created");
    }
    assert_eq!(fake.token_requests(), 1);
    fake.expire_tokens();
    paypal
        .create(&order(money(100, "EUR")))
        .await
        .expect("created with a new token");
    assert_eq!(fake.token_requests(), 2);

    // Wrong credentials: unavailable, not the buyer's fault.
    let wrong = provider(&PaypalConfig {
        client_secret: Some(Secret::new("wrong")),
        ..config(&fake)
    });
    assert!(matches!(
        wrong.create(&order(money(100, "EUR"))).await,
        Err(PaymentError::Unavailable(_))
    ));
}

#[tokio::test]
async fn every_post_to_paypal_carries_a_request_id_and_a_repeated_create_is_one_order() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let request = order(money(1234, "EUR"));
    let first = paypal.create(&request).await.expect("created");
    let again = paypal.create(&request).await.expect("replayed");
    assert_eq!(first.provider_id, again.provider_id);
    fake.approve(&first.provider_id);
    paypal
        .confirm(&first.provider_id, "confirm-key")
        .await
        .expect("captured");
    paypal
        .refund(&first.provider_id, money(1, "EUR"), "refund-key")
        .await
        .expect("refunded");
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(posts.iter().all(|r| r.request_id.is_some()), "{posts:?}");
    let ids: Vec<(&str, &str)> = posts
        .iter()
        .filter(|r| r.path != "/v1/oauth2/token")
        .map(|r| (r.path.as_str(), r.request_id.as_deref().unwrap_or_default()))
        .collect();
    let capture = format!("/v2/checkout/orders/{}/capture", first.provider_id);
    assert_eq!(
        ids[..3],
        [
            ("/v2/checkout/orders", request.idempotency_key.as_str()),
            ("/v2/checkout/orders", request.idempotency_key.as_str()),
            (capture.as_str(), "confirm-key"),
        ]
    );
    assert!(ids[3].0.starts_with("/v2/payments/captures/") && ids[3].1 == "refund-key");
}

#[tokio::test]
async fn paypal_webhooks_verify_with_the_certificates_key_and_nothing_else() {
    let fake = FakePaypal::start().await;
    let paypal = provider(&config(&fake));
    let created = paypal
        .create(&order(money(4200, "EUR")))
        .await
        .expect("created");
    fake.approve(&created.provider_id);
    fake.capture_behind_basalts_back(&created.provider_id);
    let event = fake.capture_completed_event(&created.provider_id);
    let body = serde_json::to_vec(&event).expect("json");

    let verified = paypal
        .verify_webhook(&headers(fake.sign(paypal::WEBHOOK_ID, &body)), &body)
        .await
        .expect("verified");
    assert_eq!(verified.event_id, event["id"].as_str().expect("id"));
    assert_eq!(
        verified.kind,
        WebhookKind::PaymentSucceeded {
            provider_id: created.provider_id.clone(),
            amount: money(4200, "EUR")
        }
    );
    // Again: the certificate comes from the cache.
    paypal
        .verify_webhook(&headers(fake.sign(paypal::WEBHOOK_ID, &body)), &body)
        .await
        .expect("verified");
    let fetched = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/certs/"))
        .count();
    assert_eq!(fetched, 1);

    let unverified =
        |result: Result<_, PaymentError>| matches!(result, Err(PaymentError::Unverified(_)));
    // Another body, another webhook id.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let signed = fake.sign(paypal::WEBHOOK_ID, &body);
    assert!(unverified(
        paypal.verify_webhook(&headers(signed), &tampered).await
    ));
    let signed = fake.sign("WH-SOMEONE-ELSE", &body);
    assert!(unverified(
        paypal.verify_webhook(&headers(signed), &body).await
    ));
    // Another key, claiming this certificate.
    let other = FakePaypal::start_with_other_key().await;
    let forged: Vec<_> = other
        .sign(paypal::WEBHOOK_ID, &body)
        .into_iter()
        .map(|(name, value)| {
            if name == "PAYPAL-CERT-URL" {
                (name, fake.cert_url())
            } else {
                (name, value)
            }
        })
        .collect();
    assert!(unverified(
        paypal.verify_webhook(&headers(forged), &body).await
    ));
    // A certificate from a host that is not listed; an unknown algorithm;
    // a missing header.
    let elsewhere: Vec<_> = fake
        .sign(paypal::WEBHOOK_ID, &body)
        .into_iter()
        .map(|(name, value)| {
            if name == "PAYPAL-CERT-URL" {
                (name, value.replace("127.0.0.1", "localhost"))
            } else {
                (name, value)
            }
        })
        .collect();
    assert!(unverified(
        paypal.verify_webhook(&headers(elsewhere), &body).await
    ));
    let sha1: Vec<_> = fake
        .sign(paypal::WEBHOOK_ID, &body)
        .into_iter()
        .map(|(name, value)| {
            if name == "PAYPAL-AUTH-ALGO" {
                (name, "SHA1withRSA".to_owned())
            } else {
                (name, value)
            }
        })
        .collect();
    assert!(unverified(
        paypal.verify_webhook(&headers(sha1), &body).await
    ));
    let mut missing = fake.sign(paypal::WEBHOOK_ID, &body);
    missing.retain(|(name, _)| *name != "PAYPAL-TRANSMISSION-SIG");
    assert!(unverified(
        paypal.verify_webhook(&headers(missing), &body).await
    ));

    // With PayPal's own hosts only (the default), a loopback URL is refused.
    let production = provider(&PaypalConfig {
        cert_url_hosts: PaypalConfig::default().cert_url_hosts,
        ..config(&fake)
    });
    let signed = fake.sign(paypal::WEBHOOK_ID, &body);
    assert!(unverified(
        production.verify_webhook(&headers(signed), &body).await
    ));
}
