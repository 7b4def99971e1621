//! The catalog and carts: admins' products, search, filters and cursors;
//! anonymous carts by token, and their merge into the user's cart.

use basalt_testkit::stripe::LocalStripe;
use reqwest::Method;
use serde_json::json;

use super::kit::{ANONYMOUS, As, add, admin, anonymous_cart, call, product, shop_app};

#[tokio::test]
async fn admins_build_the_catalog_and_buyers_see_the_published_part() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    let as_admin = As {
        auth: Some(&admin),
        cart_token: None,
    };
    let body = json!({ "product": {
        "slug": "tee", "name": "Tee", "description": "Soft **cotton** <script>alert(1)</script>",
        "images": ["https://img.example.com/tee.png"],
        "variants": [
            { "sku": "TEE-M", "options": { "size": "M" }, "prices": [{ "amount": 1999, "currency": "EUR" }, { "amount": 2199, "currency": "USD" }], "stock": 5 },
            { "sku": "TEE-L", "options": { "size": "L" }, "prices": [{ "amount": 2499, "currency": "EUR" }], "stock": 0 }
        ]
    }});
    let (status, anonymous) = call(
        &app,
        ANONYMOUS,
        Method::POST,
        "/api/shop/products",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 401, "{anonymous}");
    let (status, created) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/products",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let html = created["product"]["description_html"]
        .as_str()
        .expect("html");
    assert!(
        html.contains("<strong>cotton</strong>") && !html.contains("<script"),
        "{html}"
    );
    assert_eq!(
        created["product"]["variants"][0]["prices"][1],
        json!({ "amount": 2199, "currency": "USD" })
    );
    let (status, again) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/products",
        Some(body),
    )
    .await;
    assert_eq!(status, 422, "{again}");

    let mut hidden = json!({ "product": { "slug": "secret", "name": "Secret", "published": false,
        "variants": [{ "sku": "SECRET", "prices": [{ "amount": 100, "currency": "EUR" }], "stock": 1 }] } });
    let (status, _) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/products",
        Some(hidden.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &app,
        ANONYMOUS,
        Method::GET,
        "/api/shop/products/secret",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        as_admin,
        Method::GET,
        "/api/shop/products/secret",
        None,
    )
    .await;
    assert_eq!(status, 200);
    hidden["product"]["variants"][0]["prices"][0]["amount"] = json!(-1);
    hidden["product"]["slug"] = json!("Bad Slug");
    let (status, bad) = call(
        &app,
        as_admin,
        Method::POST,
        "/api/shop/products",
        Some(hidden),
    )
    .await;
    assert_eq!(status, 422, "{bad}");

    let (_, list) = call(&app, ANONYMOUS, Method::GET, "/api/shop/products", None).await;
    let slugs: Vec<&str> = list["products"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["tee"]);
    let (_, admin_list) = call(&app, as_admin, Method::GET, "/api/shop/products", None).await;
    assert_eq!(admin_list["products"].as_array().expect("list").len(), 2);

    for (query, expected) in [
        ("q=COTTON", 1),
        ("q=linen", 0),
        ("currency=USD&max_price=2199", 1),
        ("currency=USD&max_price=2198", 0),
        ("currency=EUR&min_price=2400", 1),
        ("option=size:L", 1),
        ("option=size:XL", 0),
    ] {
        let (status, found) = call(
            &app,
            ANONYMOUS,
            Method::GET,
            &format!("/api/shop/products?{query}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{query}: {found}");
        assert_eq!(
            found["products"].as_array().expect("list").len(),
            expected,
            "{query}: {found}"
        );
    }
    let (status, bad) = call(
        &app,
        ANONYMOUS,
        Method::GET,
        "/api/shop/products?min_price=1",
        None,
    )
    .await;
    assert_eq!(status, 422, "{bad}");

    let (status, changed) = call(
        &app,
        as_admin,
        Method::PATCH,
        "/api/shop/variants/TEE-L",
        Some(json!({ "price": { "amount": 2299, "currency": "EUR" }, "stock": 7 })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["variant"]["stock"], 7);
    assert_eq!(
        changed["variant"]["prices"],
        json!([{ "amount": 2299, "currency": "EUR" }])
    );
    let (status, _) = call(
        &app,
        ANONYMOUS,
        Method::PATCH,
        "/api/shop/variants/TEE-L",
        Some(json!({ "stock": 1 })),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_catalog_pages_by_cursor_without_repeats_or_gaps() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    for n in 0..5 {
        product(&app, &admin, &format!("p{n}"), &format!("P{n}"), 1, 100).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/shop/products?limit=2".to_owned();
    loop {
        let (status, page) = call(&app, ANONYMOUS, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        for p in page["products"].as_array().expect("list") {
            seen.push(p["slug"].as_str().expect("slug").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/shop/products?limit=2&after={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["p4", "p3", "p2", "p1", "p0"]);
    let (status, _) = call(
        &app,
        ANONYMOUS,
        Method::GET,
        "/api/shop/products?after=nonsense",
        None,
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn an_anonymous_cart_is_its_token_and_merges_into_the_users_cart_on_sign_in() {
    let stripe = LocalStripe::start().await;
    let app = shop_app(&stripe).spawn().await;
    let admin = admin(&app).await;
    product(&app, &admin, "mug", "MUG", 10, 1200).await;
    product(&app, &admin, "cap", "CAP", 10, 800).await;

    let cart = anonymous_cart(&app).await;
    let body = add(&app, &cart, "MUG", 2).await;
    assert_eq!(
        body["subtotal"],
        json!({ "amount": 2400, "currency": "EUR" })
    );
    let path = format!("/api/shop/carts/{}", cart.0);
    let (status, _) = call(&app, ANONYMOUS, Method::GET, &path, None).await;
    assert_eq!(status, 404, "no token, no cart");
    let wrong = As {
        auth: None,
        cart_token: Some("not-the-token"),
    };
    let (status, _) = call(&app, wrong, Method::GET, &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        ANONYMOUS,
        Method::POST,
        &format!("{path}/items"),
        Some(json!({ "sku": "MUG", "quantity": 1 })),
    )
    .await;
    assert_eq!(status, 404);
    let with_token = As {
        auth: None,
        cart_token: Some(&cart.1),
    };
    let (status, bad) = call(
        &app,
        with_token,
        Method::POST,
        &format!("{path}/items"),
        Some(json!({ "sku": "NOPE", "quantity": 1 })),
    )
    .await;
    assert_eq!(status, 422, "{bad}");

    // The user already has a cart with a cap and a mug.
    let user = crate::blog::sign_up(&app).await;
    let auth = format!("Token {}", user.token);
    let as_user = As {
        auth: Some(&auth),
        cart_token: None,
    };
    let (status, mine) = call(&app, as_user, Method::POST, "/api/shop/carts", None).await;
    assert_eq!(status, 201, "{mine}");
    let mine_id = mine["cart"]["id"].as_str().expect("id").to_owned();
    assert!(mine["cart"].get("token").is_none(), "{mine}");
    for sku in ["CAP", "MUG"] {
        let (status, _) = call(
            &app,
            as_user,
            Method::POST,
            &format!("/api/shop/carts/{mine_id}/items"),
            Some(json!({ "sku": sku, "quantity": 1 })),
        )
        .await;
        assert_eq!(status, 200);
    }

    // Signed in, the client sends the anonymous cart's token once.
    let merging = As {
        auth: Some(&auth),
        cart_token: Some(&cart.1),
    };
    let (status, merged) = call(&app, merging, Method::POST, "/api/shop/carts", None).await;
    assert_eq!(status, 201, "{merged}");
    assert_eq!(merged["cart"]["id"], mine_id);
    let quantities: Vec<(String, i64)> = merged["cart"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().expect("sku").to_owned(),
                i["quantity"].as_i64().expect("qty"),
            )
        })
        .collect();
    assert_eq!(quantities, [("CAP".to_owned(), 1), ("MUG".to_owned(), 3)]);
    // Merging again adds nothing; the anonymous cart is closed.
    let (_, again) = call(&app, merging, Method::POST, "/api/shop/carts", None).await;
    assert_eq!(again["cart"]["items"][1]["quantity"], 3);
    let (_, old) = call(&app, with_token, Method::GET, &path, None).await;
    assert_eq!(old["cart"]["status"], "merged");
    let (status, _) = call(
        &app,
        with_token,
        Method::POST,
        &format!("{path}/items"),
        Some(json!({ "sku": "MUG", "quantity": 1 })),
    )
    .await;
    assert_eq!(status, 409);
    // Another user cannot read it.
    let other = crate::blog::sign_up(&app).await;
    let other_auth = format!("Token {}", other.token);
    let (status, _) = call(
        &app,
        As {
            auth: Some(&other_auth),
            cart_token: None,
        },
        Method::GET,
        &format!("/api/shop/carts/{mine_id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
