//! The payment adapters against fakes that follow the providers' published
//! contracts: the Stripe adapter against PyPI localstripe (a separate
//! process, see `basalt_testkit::stripe`).

use basalt_platform::config::Secret;
use basalt_shop::config::StripeConfig;
use basalt_shop::money::{Currency, Money};
use basalt_shop::payments::stripe::StripeProvider;
use basalt_shop::payments::{PaymentError, PaymentProvider, PaymentRequest, PaymentState};
use basalt_testkit::stripe::LocalStripe;
use uuid::Uuid;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::parse("EUR").expect("EUR"))
}

fn stripe_provider(localstripe: &LocalStripe) -> StripeProvider {
    let config = StripeConfig {
        secret_key: Some(Secret::new(LocalStripe::SECRET_KEY)),
        webhook_secret: Some(Secret::new("whsec_test_basalt")),
        api_base: localstripe.api_base(),
    };
    StripeProvider::from_config(&config)
        .expect("client builds")
        .expect("configured")
}

fn order(amount: Money) -> PaymentRequest {
    let order_id = Uuid::new_v4();
    PaymentRequest {
        order_id,
        order_number: 42,
        amount,
        idempotency_key: format!("order-{order_id}"),
    }
}

#[tokio::test]
async fn stripe_creates_a_payment_intent_in_lowercase_currency_with_the_order_in_metadata() {
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    let request = order(eur(1999));
    let created = stripe.create(&request).await.expect("created");
    assert!(created.provider_id.starts_with("pi_"), "{created:?}");
    assert!(
        created
            .client_secret
            .as_deref()
            .is_some_and(|s| s.starts_with(&format!("{}_secret_", created.provider_id))),
        "{created:?}"
    );
    assert_eq!(created.approve_url, None);

    let intent = localstripe
        .get(&format!("/v1/payment_intents/{}", created.provider_id))
        .await;
    assert_eq!(intent["amount"], 1999);
    assert_eq!(intent["currency"], "eur");
    assert_eq!(intent["metadata"]["order_id"], request.order_id.to_string());
    assert_eq!(intent["metadata"]["order_number"], "42");
    // Not paid yet: the buyer's Stripe.js has not confirmed it.
    assert_eq!(
        stripe
            .confirm(&created.provider_id, "confirm-1")
            .await
            .expect("read"),
        PaymentState::Pending
    );
}

#[tokio::test]
async fn stripe_confirms_a_paid_intent_then_refunds_it() {
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    let created = stripe.create(&order(eur(2500))).await.expect("created");
    let paid = localstripe.pay(&created.provider_id, "pm_card_visa").await;
    assert_eq!(paid["status"], "succeeded", "{paid}");

    let key = format!("confirm-{}", created.provider_id);
    let state = stripe
        .confirm(&created.provider_id, &key)
        .await
        .expect("read");
    assert_eq!(state, PaymentState::Succeeded { amount: eur(2500) });
    // Asking again changes nothing.
    assert_eq!(
        stripe
            .confirm(&created.provider_id, &key)
            .await
            .expect("read"),
        state
    );

    let refund_id = stripe
        .refund(&created.provider_id, eur(1000), "refund-1")
        .await
        .expect("refunded");
    assert!(refund_id.starts_with("re_"), "{refund_id}");
    let refund = localstripe.get(&format!("/v1/refunds/{refund_id}")).await;
    assert_eq!(refund["amount"], 1000);
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["payment_intent"], created.provider_id.as_str());
}

#[tokio::test]
async fn stripe_captures_an_intent_that_was_only_authorised() {
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    // An intent with manual capture, as a merchant's dashboard may create.
    let intent = localstripe
        .post(
            "/v1/payment_intents",
            &[
                ("amount", "700"),
                ("currency", "eur"),
                ("capture_method", "manual"),
            ],
        )
        .await;
    let id = intent["id"].as_str().expect("id");
    let authorised = localstripe.pay(id, "pm_card_visa").await;
    assert_eq!(authorised["status"], "requires_capture", "{authorised}");

    let state = stripe.confirm(id, "capture-1").await.expect("captured");
    assert_eq!(state, PaymentState::Succeeded { amount: eur(700) });
    let after = localstripe.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(after["status"], "succeeded");
}

#[tokio::test]
async fn stripe_reports_a_declined_card_as_pending_and_a_cancelled_intent_as_failed() {
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    let created = stripe.create(&order(eur(900))).await.expect("created");
    let declined = localstripe
        .pay(&created.provider_id, "pm_card_chargeCustomerFail")
        .await;
    assert_eq!(declined["status"], "requires_payment_method", "{declined}");
    // The buyer may still try another card on the same intent.
    assert_eq!(
        stripe
            .confirm(&created.provider_id, "c-1")
            .await
            .expect("read"),
        PaymentState::Pending
    );

    stripe
        .cancel(&created.provider_id)
        .await
        .expect("cancelled");
    // Twice is fine.
    stripe
        .cancel(&created.provider_id)
        .await
        .expect("still cancelled");
    assert_eq!(
        stripe
            .confirm(&created.provider_id, "c-2")
            .await
            .expect("read"),
        PaymentState::Failed
    );
    let intent = localstripe
        .get(&format!("/v1/payment_intents/{}", created.provider_id))
        .await;
    assert_eq!(intent["status"], "canceled");
}

#[tokio::test]
async fn stripe_refuses_to_cancel_a_paid_intent_or_refund_an_unknown_one() {
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    let created = stripe.create(&order(eur(300))).await.expect("created");
    localstripe.pay(&created.provider_id, "pm_card_visa").await;
    assert!(
        matches!(
            stripe.cancel(&created.provider_id).await,
            Err(PaymentError::Refused(_))
        ),
        "a paid intent cannot be cancelled"
    );
    assert!(matches!(
        stripe.refund("pi_doesnotexist", eur(1), "r-1").await,
        Err(PaymentError::Refused(_))
    ));
    // Ids that are not Stripe's never reach a URL.
    assert!(matches!(
        stripe.confirm("pi_1/../../v1/refunds", "k").await,
        Err(PaymentError::Refused(_))
    ));
}

#[tokio::test]
async fn stripe_requests_carry_the_secret_key_and_an_unreachable_stripe_is_unavailable() {
    let localstripe = LocalStripe::start().await;
    let mut config = StripeConfig {
        secret_key: Some(Secret::new("not_a_secret_key")),
        webhook_secret: None,
        api_base: localstripe.api_base(),
    };
    let wrong_key = StripeProvider::from_config(&config)
        .expect("client")
        .expect("configured");
    assert!(matches!(
        wrong_key.create(&order(eur(100))).await,
        Err(PaymentError::Unavailable(_))
    ));
    drop(localstripe);
    config.secret_key = Some(Secret::new(LocalStripe::SECRET_KEY));
    let gone = StripeProvider::from_config(&config)
        .expect("client")
        .expect("configured");
    assert!(matches!(
        gone.create(&order(eur(100))).await,
        Err(PaymentError::Unavailable(_))
    ));
}

/// A stand-in for Stripe that records what it was sent and answers with a
/// fixed PaymentIntent: localstripe ignores `Idempotency-Key`, so what
/// Basalt sends is checked here.
async fn recording_stripe() -> (String, Arc<Mutex<Vec<(String, HeaderMap, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .expect("lock")
                    .push((format!("{method} {uri}"), headers, body));
                axum::Json(serde_json::json!({
                    "id": "pi_recorded", "object": "payment_intent", "status": "requires_capture",
                    "amount": 100, "currency": "eur", "client_secret": "pi_recorded_secret_x"
                }))
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

#[tokio::test]
async fn every_post_to_stripe_carries_the_callers_idempotency_key_and_a_form_body() {
    let (api_base, seen) = recording_stripe().await;
    let stripe = StripeProvider::from_config(&StripeConfig {
        secret_key: Some(Secret::new("sk_test_recorded")),
        webhook_secret: None,
        api_base,
    })
    .expect("client")
    .expect("configured");
    let request = order(eur(100));
    stripe.create(&request).await.expect("created");
    // requires_capture: confirm captures, with the confirmation's key.
    stripe
        .confirm("pi_recorded", "capture-key")
        .await
        .expect("read");
    stripe
        .refund("pi_recorded", eur(50), "refund-key")
        .await
        .expect("refund");
    stripe.cancel("pi_recorded").await.expect("cancel");

    let seen = seen.lock().expect("lock").clone();
    let posts: Vec<_> = seen
        .iter()
        .filter(|(line, ..)| line.starts_with("POST"))
        .collect();
    let keys: Vec<(&str, &str)> = posts
        .iter()
        .map(|(line, headers, _)| {
            (
                line.as_str(),
                headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("MISSING"),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("POST /v1/payment_intents", request.idempotency_key.as_str()),
            (
                "POST /v1/payment_intents/pi_recorded/capture",
                "capture-key"
            ),
            ("POST /v1/refunds", "refund-key"),
            (
                "POST /v1/payment_intents/pi_recorded/cancel",
                "basalt-cancel-pi_recorded"
            ),
        ]
    );
    for (line, headers, _) in &seen {
        assert_eq!(
            headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer sk_test_recorded"),
            "{line}"
        );
    }
    let (_, headers, body) = posts[0];
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert!(form.contains(&("amount".into(), "100".into())), "{form:?}");
    assert!(
        form.contains(&("currency".into(), "eur".into())),
        "{form:?}"
    );
    assert!(
        form.contains(&("metadata[order_id]".into(), request.order_id.to_string())),
        "{form:?}"
    );
    let (_, _, refund) = posts[2];
    assert_eq!(refund, "payment_intent=pi_recorded&amount=50");
}

fn signed_headers(secret: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = basalt_shop::signature::sign(secret.as_bytes(), timestamp, body);
    headers.insert("stripe-signature", value.parse().expect("header value"));
    headers
}

#[tokio::test]
async fn stripe_webhooks_are_verified_then_read_into_what_the_shop_acts_on() {
    use basalt_shop::payments::WebhookKind;
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    let now = chrono::Utc::now().timestamp();
    let event = |kind: &str| {
        serde_json::to_vec(&serde_json::json!({
            "id": "evt_1", "object": "event", "type": kind,
            "data": {"object": {
                "id": "pi_1", "object": "payment_intent", "status": "succeeded",
                "amount": 2000, "amount_received": 2000, "currency": "eur"
            }}
        }))
        .expect("json")
    };
    let body = event("payment_intent.succeeded");
    let verified = stripe
        .verify_webhook(&signed_headers("whsec_test_basalt", now, &body), &body)
        .await
        .expect("verified");
    assert_eq!(verified.event_id, "evt_1");
    assert_eq!(
        verified.kind,
        WebhookKind::PaymentSucceeded {
            provider_id: "pi_1".into(),
            amount: eur(2000)
        }
    );
    for kind in ["payment_intent.payment_failed", "payment_intent.canceled"] {
        let body = event(kind);
        let verified = stripe
            .verify_webhook(&signed_headers("whsec_test_basalt", now, &body), &body)
            .await
            .expect("verified");
        assert_eq!(
            verified.kind,
            WebhookKind::PaymentFailed {
                provider_id: "pi_1".into()
            },
            "{kind}"
        );
    }
    let body = event("charge.refunded");
    let other = stripe
        .verify_webhook(&signed_headers("whsec_test_basalt", now, &body), &body)
        .await
        .expect("verified");
    assert_eq!(other.kind, WebhookKind::Other("charge.refunded".into()));

    // Another secret, a stale timestamp, a changed body, no header at all.
    let body = event("payment_intent.succeeded");
    for (headers, body) in [
        (signed_headers("whsec_other", now, &body), body.clone()),
        (
            signed_headers("whsec_test_basalt", now - 301, &body),
            body.clone(),
        ),
        (
            signed_headers("whsec_test_basalt", now, &body),
            event("payment_intent.canceled"),
        ),
        (HeaderMap::new(), body.clone()),
    ] {
        assert!(matches!(
            stripe.verify_webhook(&headers, &body).await,
            Err(PaymentError::Unverified(_))
        ));
    }
}

/// Runs `stripe_signatures.py` (PyPI stripe) with `args`, `payload` on stdin.
fn official_stripe(args: &[&str], payload: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(basalt_testkit::stripe::python())
        .arg("-c")
        .arg(include_str!("stripe_signatures.py"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(payload)
        .expect("payload written");
    let out = child.wait_with_output().expect("python ends");
    assert!(
        out.status.success(),
        "stripe_signatures.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn official_verifies(secret: &str, header: &str, payload: &[u8]) -> serde_json::Value {
    serde_json::from_str(&official_stripe(&["verify", secret, header], payload)).expect("json")
}

const PAYLOAD: &str = r#"{"id":"evt_interop","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_interop","object":"payment_intent","status":"succeeded","amount":1999,"amount_received":1999,"currency":"eur","description":"Café – 19,99 €"}}}"#;

#[tokio::test]
async fn signatures_of_the_official_stripe_library_verify_in_basalt() {
    let secret = "whsec_interop_secret";
    let now = chrono::Utc::now().timestamp();
    let header = official_stripe(&["sign", secret, &now.to_string()], PAYLOAD.as_bytes());
    assert!(header.starts_with(&format!("t={now},v1=")), "{header}");
    let verify = |header: &str, body: &str, secret: &str| {
        basalt_shop::signature::verify(header, body.as_bytes(), secret.as_bytes(), now, 300)
    };
    assert_eq!(verify(&header, PAYLOAD, secret), Ok(()));
    assert!(verify(&header, PAYLOAD, "whsec_other").is_err());
    assert!(verify(&header, &PAYLOAD.replace("1999", "1"), secret).is_err());

    // And through the adapter, as a webhook delivery.
    let stripe = StripeProvider::from_config(&StripeConfig {
        secret_key: Some(Secret::new("sk_test_unused")),
        webhook_secret: Some(Secret::new(secret)),
        api_base: "http://127.0.0.1:9".into(),
    })
    .expect("client")
    .expect("configured");
    let mut headers = HeaderMap::new();
    headers.insert("stripe-signature", header.parse().expect("header"));
    let event = stripe
        .verify_webhook(&headers, PAYLOAD.as_bytes())
        .await
        .expect("verified");
    assert_eq!(event.event_id, "evt_interop");
    assert_eq!(
        event.kind,
        basalt_shop::payments::WebhookKind::PaymentSucceeded {
            provider_id: "pi_interop".into(),
            amount: eur(1999)
        }
    );
}

#[test]
fn basalts_signatures_verify_with_the_official_stripe_library() {
    let secret = "whsec_interop_secret";
    let now = chrono::Utc::now().timestamp();
    let body = PAYLOAD.as_bytes();
    let header = basalt_shop::signature::sign(secret.as_bytes(), now, body);
    let verified = official_verifies(secret, &header, body);
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["id"], "evt_interop");

    // The library refuses what Basalt must refuse too.
    let refused = official_verifies("whsec_other", &header, body);
    assert_eq!(refused["verified"], false, "{refused}");
    let stale = basalt_shop::signature::sign(secret.as_bytes(), now - 400, body);
    let refused = official_verifies(secret, &stale, body);
    assert_eq!(refused["verified"], false, "{refused}");

    // During a secret roll, a header with both signatures verifies with
    // either secret.
    let old = basalt_shop::signature::sign(b"whsec_old_secret", now, body);
    let rolled = format!("{header},{}", &old[old.find("v1=").expect("v1")..]);
    for secret in [secret, "whsec_old_secret"] {
        let verified = official_verifies(secret, &rolled, body);
        assert_eq!(verified["verified"], true, "{secret}: {verified}");
    }
}

/// A loopback receiver for localstripe's webhook deliveries.
async fn webhook_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(HeaderMap, Vec<u8>)>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn localstripes_own_signed_webhook_verifies_in_the_stripe_adapter() {
    let localstripe = LocalStripe::start().await;
    let stripe = stripe_provider(&localstripe);
    let (url, mut deliveries) = webhook_receiver().await;
    localstripe
        .register_webhook("basalt", &url, "whsec_test_basalt")
        .await;
    let created = stripe.create(&order(eur(4200))).await.expect("created");
    localstripe.pay(&created.provider_id, "pm_card_visa").await;

    // localstripe delivers about a second later; events of other types
    // (payment_method.attached, …) may come first.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (headers, body) = tokio::time::timeout_at(deadline, deliveries.recv())
            .await
            .unwrap_or_else(|_| panic!("no payment_intent.succeeded:\n{}", localstripe.log()))
            .expect("receiver open");
        let event = stripe
            .verify_webhook(&headers, &body)
            .await
            .expect("localstripe's signature verifies");
        if let basalt_shop::payments::WebhookKind::PaymentSucceeded {
            provider_id,
            amount,
        } = event.kind
        {
            assert!(event.event_id.starts_with("evt_"), "{}", event.event_id);
            assert_eq!(provider_id, created.provider_id);
            assert_eq!(amount, eur(4200));
            break;
        }
    }
}
