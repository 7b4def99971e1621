//! The shop over GraphQL: the same answers as REST for the catalog, carts,
//! checkout against localstripe, orders and an admin transition, through
//! the same service; admins' mutations refused to others with the
//! platform's codes; bad input a `BAD_USER_INPUT`, never an internal error.

use basalt_testkit::TestApp;
use basalt_testkit::stripe::LocalStripe;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::code;
use crate::shop::kit::{ANONYMOUS, As, admin, call, checkout_body, shop_app};

const MONEY: &str = "{ amount currency }";

fn product_fields() -> String {
    format!(
        "id slug name description descriptionHtml images published createdAt \
         variants {{ sku options weightGrams stock prices {MONEY} }}"
    )
}

fn cart_fields() -> String {
    format!(
        "id token userId currency status subtotal {MONEY} \
         items {{ sku productSlug name options quantity unitPrice {MONEY} lineTotal {MONEY} }}"
    )
}

fn order_fields() -> String {
    format!(
        "id number status subtotal {MONEY} discount {MONEY} shipping {MONEY} tax {MONEY} \
         total {MONEY} refunded {MONEY} email \
         shippingAddress {{ name line1 line2 city postalCode country }} userId \
         lines {{ sku name options quantity unitPrice {MONEY} lineTotal {MONEY} }} \
         payment {{ provider providerId clientSecret approveUrl }} \
         history {{ from to at by reason }} createdAt"
    )
}

/// `POST /graphql` as `who` (its `Authorization` and `X-Cart-Token`
/// headers) with `key` as its `Idempotency-Key`: status, whether the answer
/// was replayed, and the body.
async fn send(
    app: &TestApp,
    who: As<'_>,
    key: Option<&str>,
    query: &str,
    variables: &Value,
) -> (StatusCode, bool, String) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(auth) = who.auth {
        request = request.header("authorization", auth);
    }
    if let Some(token) = who.cart_token {
        request = request.header("x-cart-token", token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("answered");
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    (status, replayed, response.text().await.expect("body"))
}

/// `POST /graphql` as `who`: the whole answer, which is always a 200.
/// Checkouts and refunds, which require an `Idempotency-Key`, get a new
/// one each.
async fn gql(app: &TestApp, who: As<'_>, query: &str, variables: Value) -> Value {
    let key = (query.contains("checkout(") || query.contains("refundOrder("))
        .then(|| uuid::Uuid::new_v4().to_string());
    let (status, _, body) = send(app, who, key.as_deref(), query, &variables).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// The `data` of an operation that must succeed.
async fn ok(app: &TestApp, who: As<'_>, query: &str, variables: Value) -> Value {
    let body = gql(app, who, query, variables).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// The code of the first error of an operation that must fail (its data
/// field is null).
async fn refused(app: &TestApp, who: As<'_>, query: &str, variables: Value) -> String {
    let body = gql(app, who, query, variables).await;
    code(&body).to_owned()
}

fn camel(key: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A REST or GraphQL answer in one shape: keys in camelCase, null fields
/// left out (REST omits some), times to the second (REST writes more
/// digits). Option values are data, left as they are.
fn normal(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = camel(k);
                let value = match (key.as_str(), v) {
                    ("createdAt" | "at" | "startsAt" | "endsAt", Value::String(t)) => {
                        json!(t[..19])
                    }
                    ("options", v) => v.clone(),
                    (_, v) => normal(v),
                };
                if !value.is_null() {
                    out.insert(key, value);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normal).collect()),
        other => other.clone(),
    }
}

fn new_product(slug: &str, sku: &str, stock: i64, amount: i64) -> Value {
    json!({
        "slug": slug, "name": format!("Product {slug}"), "description": "A *fine* thing.",
        "variants": [{ "sku": sku, "options": { "size": "M" },
            "prices": [{ "amount": amount, "currency": "EUR" }], "stock": stock }]
    })
}

fn create_product() -> String {
    format!(
        "mutation($input: ShopNewProductInput!) {{ createProduct(input: $input) {{ {} }} }}",
        product_fields()
    )
}

async fn signed_up(app: &TestApp) -> String {
    let email = crate::identity::registered(app).await;
    let tokens = crate::identity::tokens(app, &email, crate::identity::PASSWORD).await;
    format!("Bearer {}", tokens["access_token"].as_str().expect("token"))
}

#[tokio::test]
async fn catalog_and_carts_answer_as_rest_and_refuse_bad_input_and_non_admins() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    let buyer = signed_up(&app).await;
    let as_buyer = As {
        auth: Some(&buyer),
        cart_token: None,
    };

    // Only admins create products: anonymous is UNAUTHENTICATED, a buyer
    // FORBIDDEN, and nothing is created.
    let tee = new_product("tee", "TEE", 3, 1999);
    let vars = json!({ "input": tee });
    assert_eq!(
        refused(&app, ANONYMOUS, &create_product(), vars.clone()).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        refused(&app, as_buyer, &create_product(), vars.clone()).await,
        "FORBIDDEN"
    );
    let (status, _) = call(&app, ANONYMOUS, Method::GET, "/api/shop/products/tee", None).await;
    assert_eq!(status, 404, "refused mutations created nothing");

    let created = ok(&app, as_admin, &create_product(), vars).await["createProduct"].clone();
    for (slug, sku, amount) in [("mug", "MUG", 900), ("cap", "CAP", 1500)] {
        ok(
            &app,
            as_admin,
            &create_product(),
            json!({ "input": new_product(slug, sku, 5, amount) }),
        )
        .await;
    }

    // product(slug) is REST's product.
    let (status, rest) = call(&app, ANONYMOUS, Method::GET, "/api/shop/products/tee", None).await;
    assert_eq!(status, 200);
    assert_eq!(normal(&created), normal(&rest["product"]));
    let query = format!(
        "query($slug: String!) {{ product(slug: $slug) {{ {} }} }}",
        product_fields()
    );
    let product = ok(&app, ANONYMOUS, &query, json!({ "slug": "tee" })).await;
    assert_eq!(normal(&product["product"]), normal(&rest["product"]));
    assert_eq!(
        product["product"]["variants"][0]["prices"][0],
        json!({ "amount": 1999, "currency": "EUR" })
    );
    assert_eq!(
        refused(&app, ANONYMOUS, &query, json!({ "slug": "nothing" })).await,
        "NOT_FOUND"
    );

    // products: REST's pages, filters and cursors.
    let products = format!(
        "query($q: String, $maxPrice: Int, $currency: String, $first: Int, $after: String) {{
           products(q: $q, maxPrice: $maxPrice, currency: $currency, first: $first, after: $after) {{
             edges {{ cursor node {{ {} }} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        product_fields()
    );
    let mut after: Option<String> = None;
    let mut rest_after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let page = ok(
            &app,
            ANONYMOUS,
            &products,
            json!({ "first": 2, "after": after }),
        )
        .await;
        let path = match &rest_after {
            Some(c) => format!("/api/shop/products?limit=2&after={c}"),
            None => "/api/shop/products?limit=2".to_owned(),
        };
        let (_, rest) = call(&app, ANONYMOUS, Method::GET, &path, None).await;
        let edges = page["products"]["edges"].as_array().expect("edges");
        let nodes: Vec<Value> = edges.iter().map(|e| normal(&e["node"])).collect();
        assert_eq!(Value::Array(nodes), normal(&rest["products"]));
        let info = &page["products"]["pageInfo"];
        assert_eq!(info["endCursor"], rest["next_cursor"]);
        if let Some(end) = info["endCursor"].as_str() {
            assert_eq!(edges.last().expect("an edge")["cursor"], json!(end));
        }
        seen.extend(edges.iter().map(|e| e["node"]["slug"].clone()));
        if info["hasNextPage"] == json!(false) {
            break;
        }
        after = info["endCursor"].as_str().map(str::to_owned);
        rest_after = after.clone();
        assert!(seen.len() < 10, "the pages end");
    }
    assert_eq!(
        seen,
        [json!("cap"), json!("mug"), json!("tee")],
        "newest first, each once"
    );
    let cheap = ok(
        &app,
        ANONYMOUS,
        &products,
        json!({ "maxPrice": 1000, "currency": "EUR" }),
    )
    .await;
    let (_, rest) = call(
        &app,
        ANONYMOUS,
        Method::GET,
        "/api/shop/products?max_price=1000&currency=EUR",
        None,
    )
    .await;
    let nodes: Vec<Value> = cheap["products"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| normal(&e["node"]))
        .collect();
    assert_eq!(Value::Array(nodes), normal(&rest["products"]));
    assert_eq!(rest["products"].as_array().map(Vec::len), Some(1));
    let words = ok(&app, ANONYMOUS, &products, json!({ "q": "product mug" })).await;
    assert_eq!(words["products"]["edges"][0]["node"]["slug"], "mug");

    // Bad input is BAD_USER_INPUT, never internal.
    for vars in [
        json!({ "first": 0 }),
        json!({ "first": 101 }),
        json!({ "after": "not a cursor" }),
        json!({ "maxPrice": 1000 }),
    ] {
        assert_eq!(
            refused(&app, ANONYMOUS, &products, vars.clone()).await,
            "BAD_USER_INPUT",
            "{vars}"
        );
    }
    let mut bad = new_product("bad", "BAD", 1, 100);
    bad["variants"][0]["prices"][0]["currency"] = json!("euro");
    assert_eq!(
        refused(&app, as_admin, &create_product(), json!({ "input": bad })).await,
        "BAD_USER_INPUT"
    );
    let bad = new_product("Not A Slug", "BAD", 1, 100);
    assert_eq!(
        refused(&app, as_admin, &create_product(), json!({ "input": bad })).await,
        "BAD_USER_INPUT"
    );

    // Carts: an anonymous one, addressed by the cartToken argument or the
    // X-Cart-Token header, is REST's cart.
    let create = format!(
        "mutation($currency: String) {{ createCart(currency: $currency) {{ {} }} }}",
        cart_fields()
    );
    let cart = ok(&app, ANONYMOUS, &create, json!({})).await["createCart"].clone();
    let id = cart["id"].as_str().expect("id").to_owned();
    let token = cart["token"].as_str().expect("a token, once").to_owned();
    assert_eq!(cart["subtotal"], json!({ "amount": 0, "currency": "EUR" }));
    let add = format!(
        "mutation($cart: ID!, $sku: String!, $quantity: Int!, $token: String) {{
           addCartItem(cart: $cart, sku: $sku, quantity: $quantity, cartToken: $token) {{ {} }} }}",
        cart_fields()
    );
    let added = ok(
        &app,
        ANONYMOUS,
        &add,
        json!({ "cart": id, "sku": "TEE", "quantity": 2, "token": token }),
    )
    .await;
    assert_eq!(
        added["addCartItem"]["subtotal"],
        json!({ "amount": 3998, "currency": "EUR" })
    );
    let by_header = As {
        auth: None,
        cart_token: Some(&token),
    };
    let read = format!(
        "query($id: ID!, $token: String) {{ cart(id: $id, cartToken: $token) {{ {} }} }}",
        cart_fields()
    );
    let graphql = ok(&app, by_header, &read, json!({ "id": id })).await;
    let (status, rest) = call(
        &app,
        by_header,
        Method::GET,
        &format!("/api/shop/carts/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(normal(&graphql["cart"]), normal(&rest["cart"]));
    assert_eq!(normal(&added["addCartItem"]), normal(&rest["cart"]));
    let by_argument = ok(&app, ANONYMOUS, &read, json!({ "id": id, "token": token })).await;
    assert_eq!(by_argument, graphql);

    // Without the token the cart is not found, as over REST; bad ids and
    // quantities are BAD_USER_INPUT.
    assert_eq!(
        refused(&app, ANONYMOUS, &read, json!({ "id": id })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(&app, ANONYMOUS, &read, json!({ "id": "nope" })).await,
        "BAD_USER_INPUT"
    );
    for quantity in [0, 1001] {
        assert_eq!(
            refused(
                &app,
                by_header,
                &add,
                json!({ "cart": id, "sku": "TEE", "quantity": quantity })
            )
            .await,
            "BAD_USER_INPUT"
        );
    }
    assert_eq!(
        refused(&app, ANONYMOUS, &create, json!({ "currency": "euros" })).await,
        "BAD_USER_INPUT"
    );

    // A price change by an admin is REST's variant; a buyer is refused.
    let update = format!(
        "mutation($sku: String!, $input: ShopVariantChangeInput!) {{
           updateVariant(sku: $sku, input: $input) {{ sku options weightGrams stock prices {MONEY} }} }}"
    );
    let change = json!({ "sku": "MUG", "input": { "prices": [{ "amount": 950, "currency": "EUR" }], "stock": 7 } });
    assert_eq!(
        refused(&app, as_buyer, &update, change.clone()).await,
        "FORBIDDEN"
    );
    let variant = ok(&app, as_admin, &update, change).await["updateVariant"].clone();
    assert_eq!(variant["stock"], 7);
    let (_, rest) = call(&app, ANONYMOUS, Method::GET, "/api/shop/products/mug", None).await;
    assert_eq!(normal(&variant), normal(&rest["product"]["variants"][0]));
    assert_eq!(
        refused(
            &app,
            as_admin,
            &update,
            json!({ "sku": "NOPE", "input": { "stock": 1 } })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        refused(
            &app,
            as_admin,
            &update,
            json!({ "sku": "MUG", "input": { "prices": [{ "amount": -1, "currency": "EUR" }] } })
        )
        .await,
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn checkout_confirmation_orders_and_admin_transitions_answer_as_rest() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    crate::shop::kit::product(&app, &admin, "tee", "TEE", 3, 1999).await;
    let buyer = signed_up(&app).await;
    let as_buyer = As {
        auth: Some(&buyer),
        cart_token: None,
    };

    // A discount code, created over GraphQL by an admin only.
    let discount = "mutation($input: ShopNewDiscountInput!) { createDiscount(input: $input) {
        id code kind value currency minOrder usageLimit perCustomerLimit used startsAt endsAt } }";
    let ten = json!({ "input": { "code": "ten-off", "kind": "percentage", "value": 10 } });
    assert_eq!(
        refused(&app, as_buyer, discount, ten.clone()).await,
        "FORBIDDEN"
    );
    let code_made = ok(&app, as_admin, discount, ten).await["createDiscount"].clone();
    assert_eq!(code_made["code"], "TEN-OFF");
    assert_eq!(code_made["used"], 0);
    assert_eq!(
        refused(
            &app,
            as_admin,
            discount,
            json!({ "input": { "code": "x", "kind": "percentage", "value": 10 } })
        )
        .await,
        "BAD_USER_INPUT"
    );

    // The signed-in buyer's cart and checkout.
    let cart = ok(
        &app,
        as_buyer,
        "mutation { createCart { id userId token } }",
        json!({}),
    )
    .await["createCart"]
        .clone();
    let cart_id = cart["id"].as_str().expect("id").to_owned();
    assert!(cart["token"].is_null(), "a signed-in cart has no token");
    ok(
        &app,
        as_buyer,
        "mutation($cart: ID!) { addCartItem(cart: $cart, sku: \"TEE\", quantity: 2) { id } }",
        json!({ "cart": cart_id }),
    )
    .await;
    let checkout = format!(
        "mutation($cart: ID!, $input: ShopCheckoutInput!) {{ checkout(cart: $cart, input: $input) {{ {} }} }}",
        order_fields()
    );
    let mut input = checkout_body(Some("ten-off"));
    input["shippingAddress"] = input["shipping_address"].take();
    input["shippingAddress"]["postalCode"] = input["shippingAddress"]["postal_code"].take();
    input["discountCode"] = input["discount_code"].take();
    let input = normal(&input);

    let mut bad = input.clone();
    bad["provider"] = json!("bitcoin");
    assert_eq!(
        refused(
            &app,
            as_buyer,
            &checkout,
            json!({ "cart": cart_id, "input": bad })
        )
        .await,
        "BAD_USER_INPUT"
    );
    let mut bad = input.clone();
    bad["email"] = json!("not an address");
    assert_eq!(
        refused(
            &app,
            as_buyer,
            &checkout,
            json!({ "cart": cart_id, "input": bad })
        )
        .await,
        "BAD_USER_INPUT"
    );

    let placed = ok(
        &app,
        as_buyer,
        &checkout,
        json!({ "cart": cart_id, "input": input }),
    )
    .await["checkout"]
        .clone();
    let money = |amount: i64| json!({ "amount": amount, "currency": "EUR" });
    assert_eq!(placed["status"], "pending_payment");
    assert_eq!(placed["subtotal"], money(3998));
    assert_eq!(placed["discount"], money(400));
    assert_eq!(placed["shipping"], money(500));
    let total = placed["total"]["amount"].as_i64().expect("total");
    let intent = placed["payment"]["providerId"]
        .as_str()
        .expect("intent")
        .to_owned();
    assert!(
        placed["payment"]["clientSecret"]
            .as_str()
            .is_some_and(|s| s.starts_with(&intent))
    );
    let charged = stripe.get(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(
        charged["amount"], total,
        "Stripe charges the total the shop computed"
    );

    // Checked out once: another checkout of the cart is refused.
    assert_eq!(
        refused(
            &app,
            as_buyer,
            &checkout,
            json!({ "cart": cart_id, "input": input })
        )
        .await,
        "CONFLICT"
    );

    // Confirmation asks Stripe: not paid yet is a conflict; paid, the order
    // is paid, however often confirmed.
    let order_id = placed["id"].as_str().expect("id").to_owned();
    let confirm = format!(
        "mutation($order: ID!, $intent: String!) {{ confirmPayment(order: $order, providerId: $intent) {{ {} }} }}",
        order_fields()
    );
    let vars = json!({ "order": order_id, "intent": intent });
    assert_eq!(
        refused(&app, as_buyer, &confirm, vars.clone()).await,
        "CONFLICT"
    );
    stripe.pay(&intent, "pm_card_visa").await;
    for _ in 0..2 {
        let paid = ok(&app, as_buyer, &confirm, vars.clone()).await;
        assert_eq!(paid["confirmPayment"]["status"], "paid");
    }

    // order(id) and myOrders are REST's, history included.
    let one = format!(
        "query($id: ID!) {{ order(id: $id) {{ {} }} }}",
        order_fields()
    );
    let graphql = ok(&app, as_buyer, &one, json!({ "id": order_id })).await;
    let (status, rest) = call(
        &app,
        as_buyer,
        Method::GET,
        &format!("/api/shop/orders/{order_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(normal(&graphql["order"]), normal(&rest["order"]));
    let history: Vec<&Value> = graphql["order"]["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| &h["to"])
        .collect();
    assert_eq!(history, [&json!("pending_payment"), &json!("paid")]);
    let mine = format!("{{ myOrders {{ {} }} }}", order_fields());
    let graphql = ok(&app, as_buyer, &mine, json!({})).await;
    let (_, rest) = call(&app, as_buyer, Method::GET, "/api/shop/orders", None).await;
    assert_eq!(normal(&graphql["myOrders"]), normal(&rest["orders"]));
    assert_eq!(rest["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        refused(&app, ANONYMOUS, &mine, json!({})).await,
        "UNAUTHENTICATED"
    );
    let stranger = signed_up(&app).await;
    let as_stranger = As {
        auth: Some(&stranger),
        cart_token: None,
    };
    assert_eq!(
        refused(&app, as_stranger, &one, json!({ "id": order_id })).await,
        "NOT_FOUND"
    );

    // Admin transitions: a buyer is FORBIDDEN and nothing moves; the
    // admin's fulfilment is what REST then shows.
    let fulfil = format!(
        "mutation($id: ID!, $reason: String) {{ fulfilOrder(id: $id, reason: $reason) {{ {} }} }}",
        order_fields()
    );
    let vars = json!({ "id": order_id, "reason": "packed" });
    assert_eq!(
        refused(&app, as_buyer, &fulfil, vars.clone()).await,
        "FORBIDDEN"
    );
    assert_eq!(
        refused(&app, ANONYMOUS, &fulfil, vars.clone()).await,
        "UNAUTHENTICATED"
    );
    let fulfilled = ok(&app, as_admin, &fulfil, vars).await["fulfilOrder"].clone();
    assert_eq!(fulfilled["status"], "fulfilled");
    let last = fulfilled["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("history")
        .clone();
    assert_eq!(
        (&last["from"], &last["to"], &last["reason"]),
        (&json!("paid"), &json!("fulfilled"), &json!("packed"))
    );
    let (_, rest) = call(
        &app,
        as_admin,
        Method::GET,
        &format!("/api/shop/orders/{order_id}"),
        None,
    )
    .await;
    assert_eq!(normal(&fulfilled), normal(&rest["order"]));

    // The wrong transition is a conflict; a bad id BAD_USER_INPUT.
    let deliver = "mutation($id: ID!) { deliverOrder(id: $id) { status } }";
    assert_eq!(
        refused(&app, as_admin, deliver, json!({ "id": order_id })).await,
        "CONFLICT"
    );
    assert_eq!(
        refused(&app, as_admin, deliver, json!({ "id": "nope" })).await,
        "BAD_USER_INPUT"
    );
    let cancel = "mutation($id: ID!) { cancelOrder(id: $id) { status } }";
    assert_eq!(
        refused(&app, as_admin, cancel, json!({ "id": order_id })).await,
        "CONFLICT",
        "a paid order is refunded, not cancelled"
    );
    let ship = "mutation($id: ID!) { shipOrder(id: $id) { status } }";
    assert_eq!(
        ok(&app, as_admin, ship, json!({ "id": order_id })).await["shipOrder"]["status"],
        "shipped"
    );
    assert_eq!(
        ok(&app, as_admin, deliver, json!({ "id": order_id })).await["deliverOrder"]["status"],
        "delivered"
    );

    // Refunds: admins only, never more than was paid, recorded at Stripe.
    let refund = "mutation($id: ID!, $amount: Int!) { refundOrder(id: $id, amount: $amount, reason: \"damaged\") { status refunded { amount currency } } }";
    assert_eq!(
        refused(
            &app,
            as_buyer,
            refund,
            json!({ "id": order_id, "amount": 100 })
        )
        .await,
        "FORBIDDEN"
    );
    assert_eq!(
        refused(
            &app,
            as_admin,
            refund,
            json!({ "id": order_id, "amount": 0 })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        refused(
            &app,
            as_admin,
            refund,
            json!({ "id": order_id, "amount": total + 1 })
        )
        .await,
        "CONFLICT",
        "more than was paid"
    );
    let refunded = ok(
        &app,
        as_admin,
        refund,
        json!({ "id": order_id, "amount": 100 }),
    )
    .await;
    assert_eq!(refunded["refundOrder"]["refunded"], money(100));
    let (_, rest) = call(
        &app,
        as_admin,
        Method::GET,
        &format!("/api/shop/orders/{order_id}"),
        None,
    )
    .await;
    assert_eq!(rest["order"]["refunded"], money(100));
    assert_eq!(rest["order"]["status"], "partially_refunded");
    assert_eq!(refunded["refundOrder"]["status"], "partially_refunded");
}

#[tokio::test]
async fn checkout_and_refunds_need_an_idempotency_key_and_a_retry_is_replayed_not_charged() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    crate::shop::kit::product(&app, &admin, "tee", "TEE", 3, 1999).await;
    let cart = crate::shop::kit::anonymous_cart(&app).await;
    crate::shop::kit::add(&app, &cart, "TEE", 1).await;
    let who = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let checkout = "mutation($cart: ID!, $input: ShopCheckoutInput!) {
        checkout(cart: $cart, input: $input) { id number status total { amount currency } payment { providerId } } }";
    let input = json!({
        "email": "buyer@example.com", "provider": "stripe",
        "shippingAddress": { "name": "Ada Buyer", "line1": "Hauptstr. 1", "city": "Berlin", "postalCode": "10115", "country": "DE" },
    });
    let vars = json!({ "cart": cart.0, "input": input });

    // Without a key: BAD_USER_INPUT, and nothing is placed.
    let (status, _, body) = send(&app, who, None, checkout, &vars).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(
        crate::shop::kit::stock(&app, "tee").await,
        3,
        "nothing reserved"
    );

    // With one: placed once; the retry is the same answer, replayed.
    let key = uuid::Uuid::new_v4().to_string();
    let (status, replayed, first) = send(&app, who, Some(&key), checkout, &vars).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!replayed);
    let placed: Value = serde_json::from_str(&first).expect("json");
    assert!(placed.get("errors").is_none(), "{placed}");
    assert_eq!(placed["data"]["checkout"]["status"], "pending_payment");
    let (status, replayed, again) = send(&app, who, Some(&key), checkout, &vars).await;
    assert_eq!(status, StatusCode::OK);
    assert!(replayed, "the retry is a replay");
    assert_eq!(again, first, "byte for byte");
    assert_eq!(
        crate::shop::kit::stock(&app, "tee").await,
        2,
        "one unit reserved, once"
    );

    // The same key with another operation is refused, as over REST.
    let (status, _, _) = send(
        &app,
        who,
        Some(&key),
        checkout,
        &json!({ "cart": cart.0, "input": { "email": "other@example.com", "provider": "stripe",
        "shippingAddress": input["shippingAddress"] } }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Pay, then refund: without a key refused; with one, refunded once
    // however often retried.
    let order = placed["data"]["checkout"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let intent = placed["data"]["checkout"]["payment"]["providerId"]
        .as_str()
        .expect("intent")
        .to_owned();
    stripe.pay(&intent, "pm_card_visa").await;
    ok(
        &app,
        who,
        "mutation($order: ID!, $intent: String!) { confirmPayment(order: $order, providerId: $intent) { status } }",
        json!({ "order": order, "intent": intent }),
    )
    .await;
    let refund = "mutation($id: ID!) { refundOrder(id: $id, amount: 300) { status refunded { amount currency } } }";
    let vars = json!({ "id": order });
    let (_, _, body) = send(&app, as_admin, None, refund, &vars).await;
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let key = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        let (status, _, body) = send(&app, as_admin, Some(&key), refund, &vars).await;
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            body["data"]["refundOrder"]["refunded"],
            json!({ "amount": 300, "currency": "EUR" }),
            "{body}"
        );
    }
    let (_, rest) = call(
        &app,
        as_admin,
        Method::GET,
        &format!("/api/shop/orders/{order}"),
        None,
    )
    .await;
    assert_eq!(rest["order"]["refunded"]["amount"], 300, "refunded once");
}

#[tokio::test]
async fn admins_register_webhook_endpoints_and_see_and_redeliver_deliveries_as_over_rest() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe)
        .env("BASALT_SHOP__WEBHOOKS__ALLOW_PRIVATE_ADDRESSES", "true")
        .spawn()
        .await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    let buyer = signed_up(&app).await;
    let as_buyer = As {
        auth: Some(&buyer),
        cart_token: None,
    };
    let create = "mutation($url: String!, $events: [String!]!) {
        createWebhookEndpoint(url: $url, events: $events) { id url events enabled createdAt secret } }";
    // Nothing listens on port 9 of loopback: deliveries fail and are retried.
    let vars = json!({ "url": "http://127.0.0.1:9/hooks", "events": ["shop.order.created"] });
    assert_eq!(
        refused(&app, as_buyer, create, vars.clone()).await,
        "FORBIDDEN"
    );
    assert_eq!(
        refused(
            &app,
            as_admin,
            create,
            json!({ "url": "not a url", "events": ["shop.order.created"] })
        )
        .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        refused(
            &app,
            as_admin,
            create,
            json!({ "url": "http://127.0.0.1:9/hooks", "events": ["shop.nothing"] })
        )
        .await,
        "BAD_USER_INPUT"
    );
    let endpoint = ok(&app, as_admin, create, vars).await["createWebhookEndpoint"].clone();
    assert!(
        endpoint["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{endpoint}"
    );
    assert_eq!(endpoint["enabled"], true);
    let id = endpoint["id"].as_str().expect("id").to_owned();

    // An order placed over REST is fanned out to it.
    crate::shop::kit::product(&app, &admin, "tee", "TEE", 3, 1999).await;
    let cart = crate::shop::kit::anonymous_cart(&app).await;
    crate::shop::kit::add(&app, &cart, "TEE", 1).await;
    let (status, _) = crate::shop::kit::checkout(&app, &cart, None).await;
    assert_eq!(status, 201);
    let path = format!("/api/shop/webhook-endpoints/{id}/deliveries");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let rest = loop {
        let (status, rest) = call(&app, as_admin, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{rest}");
        if rest["deliveries"].as_array().is_some_and(|d| !d.is_empty()) {
            break rest;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery was fanned out"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // webhookDeliveries is REST's list (attempts go on meanwhile, so the
    // fields that do not move are compared).
    let list = "query($endpoint: ID!) { webhookDeliveries(endpoint: $endpoint) {
        id endpointId eventId eventType status attemptCount createdAt
        attempts { attempt startedAt durationMs responseStatus error succeeded } } }";
    let graphql = ok(&app, as_admin, list, json!({ "endpoint": id })).await;
    let stable = |d: &Value| {
        let d = normal(d);
        json!([
            d["id"],
            d["endpointId"],
            d["eventId"],
            d["eventType"],
            d["createdAt"]
        ])
    };
    let ours: Vec<Value> = graphql["webhookDeliveries"]
        .as_array()
        .expect("list")
        .iter()
        .map(stable)
        .collect();
    let theirs: Vec<Value> = rest["deliveries"]
        .as_array()
        .expect("list")
        .iter()
        .map(stable)
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours[0][3], "shop.order.created");
    assert_eq!(
        refused(&app, as_buyer, list, json!({ "endpoint": id })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        refused(&app, as_admin, list, json!({ "endpoint": "nope" })).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        refused(
            &app,
            as_admin,
            list,
            json!({ "endpoint": uuid::Uuid::new_v4().to_string() })
        )
        .await,
        "NOT_FOUND"
    );

    // Redelivery: the same delivery, a new round.
    let redeliver = "mutation($endpoint: ID!, $delivery: ID!) {
        redeliverWebhook(endpoint: $endpoint, delivery: $delivery) { id eventId status } }";
    let delivery = graphql["webhookDeliveries"][0]["id"].clone();
    let vars = json!({ "endpoint": id, "delivery": delivery });
    assert_eq!(
        refused(&app, as_buyer, redeliver, vars.clone()).await,
        "FORBIDDEN"
    );
    let again = ok(&app, as_admin, redeliver, vars).await["redeliverWebhook"].clone();
    assert_eq!(again["id"], delivery);
    assert_eq!(again["eventId"], graphql["webhookDeliveries"][0]["eventId"]);
    assert_eq!(
        refused(
            &app,
            as_admin,
            redeliver,
            json!({ "endpoint": id, "delivery": uuid::Uuid::new_v4().to_string() })
        )
        .await,
        "NOT_FOUND"
    );
}
