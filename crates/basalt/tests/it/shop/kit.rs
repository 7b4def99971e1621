//! Helpers of the shop's tests: an app with localstripe, admins, products,
//! carts and checkouts over HTTP.

use basalt_testkit::stripe::LocalStripe;
use basalt_testkit::{TestApp, TestAppBuilder};
use reqwest::Method;
use serde_json::{Value, json};

/// The binary's modules with Stripe pointed at `stripe`, a 19 % tax in
/// Germany and 5.00 EUR flat shipping.
pub fn shop_app(stripe: &LocalStripe) -> TestAppBuilder {
    crate::identity::identity_app()
        .env("BASALT_SHOP__STRIPE__SECRET_KEY", LocalStripe::SECRET_KEY)
        .env("BASALT_SHOP__STRIPE__API_BASE", &stripe.api_base())
        .env("BASALT_SHOP__TAX__RATES__DE", "1900")
        .env("BASALT_SHOP__SHIPPING__FLAT_RATES__EUR", "500")
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct As<'a> {
    /// `Authorization` value.
    pub auth: Option<&'a str>,
    /// `X-Cart-Token`.
    pub cart_token: Option<&'a str>,
}

/// Nobody in particular.
pub const ANONYMOUS: As<'static> = As {
    auth: None,
    cart_token: None,
};

/// `method path` as `who`: status and JSON.
pub async fn call(
    app: &TestApp,
    who: As<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(auth) = who.auth {
        request = request.header("authorization", auth);
    }
    if let Some(token) = who.cart_token {
        request = request.header("x-cart-token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("answered");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An admin's `Authorization` header value.
pub async fn admin(app: &TestApp) -> String {
    let (_, token) = crate::identity::admin_token(app).await;
    format!("Bearer {token}")
}

/// Creates a published product of one variant priced `amount` EUR cents.
pub async fn product(
    app: &TestApp,
    admin: &str,
    slug: &str,
    sku: &str,
    stock: i64,
    amount: i64,
) -> Value {
    let body = json!({ "product": {
        "slug": slug, "name": format!("Product {slug}"), "description": "A *fine* thing.",
        "variants": [{ "sku": sku, "options": { "size": "M" }, "prices": [{ "amount": amount, "currency": "EUR" }], "stock": stock }]
    }});
    let as_admin = As {
        auth: Some(admin),
        cart_token: None,
    };
    let (status, body) = call(
        app,
        as_admin,
        Method::POST,
        "/api/shop/products",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["product"].clone()
}

/// A new anonymous cart: `(id, token)`.
pub async fn anonymous_cart(app: &TestApp) -> (String, String) {
    let (status, body) = call(app, ANONYMOUS, Method::POST, "/api/shop/carts", None).await;
    assert_eq!(status, 201, "{body}");
    (
        body["cart"]["id"].as_str().expect("id").to_owned(),
        body["cart"]["token"].as_str().expect("token").to_owned(),
    )
}

/// Adds `quantity` of `sku` to an anonymous cart.
pub async fn add(app: &TestApp, cart: &(String, String), sku: &str, quantity: i64) -> Value {
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let path = format!("/api/shop/carts/{}/items", cart.0);
    let (status, body) = call(
        app,
        who,
        Method::POST,
        &path,
        Some(json!({ "sku": sku, "quantity": quantity })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["cart"].clone()
}

/// A checkout request to Germany with Stripe.
pub fn checkout_body(discount_code: Option<&str>) -> Value {
    let mut body = json!({
        "email": "buyer@example.com",
        "shipping_address": { "name": "Ada Buyer", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE" },
        "provider": "stripe",
    });
    if let Some(code) = discount_code {
        body["discount_code"] = json!(code);
    }
    body
}

/// Checks out an anonymous cart: status and JSON.
pub async fn checkout(
    app: &TestApp,
    cart: &(String, String),
    discount_code: Option<&str>,
) -> (u16, Value) {
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let path = format!("/api/shop/carts/{}/checkout", cart.0);
    call(
        app,
        who,
        Method::POST,
        &path,
        Some(checkout_body(discount_code)),
    )
    .await
}

/// A variant's stock, as the catalog shows it.
pub async fn stock(app: &TestApp, slug: &str) -> i64 {
    let (status, body) = call(
        app,
        ANONYMOUS,
        Method::GET,
        &format!("/api/shop/products/{slug}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["product"]["variants"][0]["stock"]
        .as_i64()
        .expect("stock")
}
