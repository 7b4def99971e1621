//! The payment providers' webhooks: the raw body goes to the service
//! untouched (signatures are over its exact bytes).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::Json;

use crate::payments::ProviderName;
use crate::service::Shop;
use crate::service::provider_webhooks::WebhookReceipt;

/// Stripe's webhook: verified with the `Stripe-Signature` header and
/// `shop.stripe.webhook_secret`; a duplicate event is answered 200 and
/// ignored.
#[utoipa::path(post, path = "/api/shop/webhooks/stripe", tag = "shop",
    params(("Stripe-Signature" = String, Header, description = "t=…,v1=…")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a Stripe event, as Stripe sent it"),
    responses((status = 200, body = WebhookReceipt), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem)))]
pub async fn stripe_webhook(
    State(shop): State<Shop>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, Failure> {
    Ok(Json(
        shop.provider_webhook(ProviderName::Stripe, &headers, &body)
            .await?,
    ))
}

/// PayPal's webhook: verified by PayPal's self-verification scheme (the
/// `PAYPAL-*` headers, `shop.paypal.webhook_id`, the certificate at
/// `PAYPAL-CERT-URL`); a duplicate event is answered 200 and ignored.
#[utoipa::path(post, path = "/api/shop/webhooks/paypal", tag = "shop",
    params(
        ("PAYPAL-TRANSMISSION-ID" = String, Header), ("PAYPAL-TRANSMISSION-TIME" = String, Header),
        ("PAYPAL-TRANSMISSION-SIG" = String, Header), ("PAYPAL-CERT-URL" = String, Header),
        ("PAYPAL-AUTH-ALGO" = String, Header)),
    request_body(content = serde_json::Value, content_type = "application/json", description = "a PayPal event, as PayPal sent it"),
    responses((status = 200, body = WebhookReceipt), (status = 400, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem)))]
pub async fn paypal_webhook(
    State(shop): State<Shop>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceipt>, Failure> {
    Ok(Json(
        shop.provider_webhook(ProviderName::Paypal, &headers, &body)
            .await?,
    ))
}
