//! Articles: the spec's details the official collection does not check,
//! paging, slugs, concurrency and safe Markdown.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn what_the_spec_requires_beyond_the_collection() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let tags = ["zeta", "alpha", "mid", "alpha"];
    let article = w.publish(&app, "Spec details", &tags).await;
    // tagList sorted (and de-duplicated).
    assert_eq!(article["tagList"], json!(["alpha", "mid", "zeta"]));
    // Timestamps: RFC 3339 with fractional seconds.
    let created = article["createdAt"].as_str().expect("createdAt");
    assert!(created.contains('.') && created.ends_with('Z'), "{created}");
    chrono::DateTime::parse_from_rfc3339(created).expect("RFC 3339");
    // Single article has a body; list items do not.
    assert!(article["body"].is_string());
    for _ in 0..3 {
        w.publish(&app, "More", &[]).await;
    }
    let list: Value = app
        .get("/api/articles?limit=2")
        .await
        .json()
        .await
        .expect("json");
    let items = list["articles"].as_array().expect("articles");
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|a| a.get("body").is_none() && a.get("bodyHtml").is_none()),
        "{list}"
    );
    // articlesCount is the total, not the page size.
    assert_eq!(list["articlesCount"], 4);
    // Empty JSON bodies are accepted where no body is needed.
    let slug = article["slug"].as_str().expect("slug");
    let r = w
        .req(
            &app,
            Method::POST,
            &format!("/api/articles/{slug}/favorite"),
        )
        .header("content-type", "application/json")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    // Deletes answer 204.
    let r = w
        .req(&app, Method::DELETE, &format!("/api/articles/{slug}"))
        .header("content-type", "application/json")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/articles/{slug}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn errors_use_the_realworld_shape_and_statuses() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let other = sign_up(&app).await;
    let slug = author.publish(&app, "Owned", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();

    let unauthenticated = app
        .client
        .post(app.url("/api/articles"))
        .json(&json!({ "article": {} }))
        .send()
        .await
        .expect("answered");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let forbidden = other
        .req(&app, Method::DELETE, &format!("/api/articles/{slug}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let body: Value = forbidden.json().await.expect("json");
    assert!(body["errors"]["body"].is_array(), "{body}");
    let missing = author
        .req(&app, Method::DELETE, "/api/articles/no-such-article")
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let invalid = author
        .req(&app, Method::POST, "/api/articles")
        .json(&json!({ "article": { "title": "", "description": "d", "body": "b" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        invalid.json::<Value>().await.expect("json")["errors"]["title"][0],
        "can't be blank"
    );
    let malformed = author
        .req(&app, Method::POST, "/api/articles")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .expect("answered");
    assert_eq!(malformed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(malformed.json::<Value>().await.expect("json")["errors"]["body"].is_array());

    let taken = app
        .client
        .post(app.url("/api/users"))
        .json(&json!({ "user": { "email": "x@example.com", "username": author.username, "password": crate::identity::PASSWORD } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        taken.json::<Value>().await.expect("json")["errors"]["username"][0],
        "has already been taken"
    );
    let bad_login = app
        .client
        .post(app.url("/api/users/login"))
        .json(&json!({ "user": { "email": "x@example.com", "password": "wrong wrong" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(bad_login.status(), StatusCode::UNAUTHORIZED);
    assert!(bad_login.json::<Value>().await.expect("json")["errors"].is_object());
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = identity_app()
        .configure(|c| c.http.body_limit_bytes = 2 * 1024 * 1024)
        .spawn()
        .await;
    let w = sign_up(&app).await;
    let too_big = "x ".repeat(basalt_markdown::MAX_MARKDOWN_BYTES / 2 + 1);
    let r = w
        .req(&app, Method::POST, "/api/articles")
        .json(&json!({ "article": { "title": "Big", "description": "d", "body": too_big } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json::<Value>().await.expect("json")["errors"]["body"].is_array());
}

#[tokio::test]
async fn bad_paging_is_a_422_and_limit_has_a_maximum() {
    let app = blog_app().await;
    for query in [
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=abc",
        "offset=-5",
        "offset=x",
        "limit=99999999999999999999",
        "limit=1.5",
    ] {
        let r = app.get(&format!("/api/articles?{query}")).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let body: Value = r.json().await.expect("json");
        assert!(body["errors"].is_object(), "{query}: {body}");
    }
    assert_eq!(
        app.get("/api/articles?limit=100&offset=0").await.status(),
        StatusCode::OK
    );
    let w = sign_up(&app).await;
    let r = w
        .req(&app, Method::GET, "/api/articles/feed?limit=0")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn filters_and_paging_agree_with_the_total() {
    let app = blog_app().await;
    let a = sign_up(&app).await;
    let b = sign_up(&app).await;
    for i in 0..5 {
        a.publish(&app, &format!("A {i}"), &["rust"]).await;
    }
    let favored = b.publish(&app, "B 0", &["go"]).await;
    let slug = favored["slug"].as_str().expect("slug");
    a.req(
        &app,
        Method::POST,
        &format!("/api/articles/{slug}/favorite"),
    )
    .send()
    .await
    .expect("answered");

    let get = |q: String| {
        let app = &app;
        async move {
            app.get(&format!("/api/articles?{q}"))
                .await
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    assert_eq!(
        get(format!("author={}", a.username)).await["articlesCount"],
        5
    );
    assert_eq!(get("tag=go".into()).await["articlesCount"], 1);
    assert_eq!(
        get(format!("favorited={}", a.username)).await["articles"][0]["slug"],
        slug
    );
    assert_eq!(
        get(format!("favorited={}", a.username)).await["articlesCount"],
        1
    );
    // Each single filter has its own statement; paging through one keeps
    // the newest-first order and the total.
    let rust_page = get("tag=rust&limit=2&offset=1".into()).await;
    assert_eq!(rust_page["articlesCount"], 5);
    assert_eq!(rust_page["articles"][0]["title"], "A 3");
    assert_eq!(rust_page["articles"][1]["title"], "A 2");
    let author_page = get(format!("author={}&limit=1&offset=4", a.username)).await;
    assert_eq!(author_page["articles"][0]["title"], "A 0");
    // Combined filters use the generic statement.
    assert_eq!(
        get(format!("author={}&tag=go", b.username)).await["articlesCount"],
        1
    );
    assert_eq!(
        get(format!("author={}&tag=go", a.username)).await["articlesCount"],
        0
    );
    assert_eq!(
        get("author=nobody-by-that-name".into()).await["articlesCount"],
        0
    );
    // Newest first, pages do not overlap.
    let page1 = get("limit=3&offset=0".into()).await;
    let page2 = get("limit=3&offset=3".into()).await;
    let slugs: Vec<Value> = page1["articles"]
        .as_array()
        .expect("a")
        .iter()
        .chain(page2["articles"].as_array().expect("b"))
        .map(|x| x["slug"].clone())
        .collect();
    assert_eq!(slugs.len(), 6);
    assert_eq!(slugs[0], slug, "the newest article comes first");
    let unique: std::collections::HashSet<String> = slugs.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique.len(), 6);
}

#[tokio::test]
async fn slugs_are_unique_readable_and_stable() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let first = w.publish(&app, "Same Title", &[]).await;
    let second = w.publish(&app, "Same Title", &[]).await;
    assert_eq!(first["slug"], "same-title");
    assert_ne!(first["slug"], second["slug"]);
    assert!(
        second["slug"]
            .as_str()
            .expect("slug")
            .starts_with("same-title-")
    );
    let unicode = w.publish(&app, "Ünïcödé — 日本語 🔥", &[]).await;
    let unicode_slug = unicode["slug"].as_str().expect("slug").to_owned();
    assert_eq!(unicode_slug, "ünïcödé-日本語");
    let encoded: String = url::form_urlencoded::byte_serialize(unicode_slug.as_bytes()).collect();
    assert_eq!(
        app.get(&format!("/api/articles/{encoded}")).await.status(),
        StatusCode::OK
    );

    // A title edit keeps the slug (links keep working) unless asked.
    let slug = first["slug"].as_str().expect("slug");
    let r: Value = w
        .json_of(
            &app,
            Method::PUT,
            &format!("/api/articles/{slug}"),
            Some(json!({ "article": { "title": "A New Title" } })),
        )
        .await;
    assert_eq!(r["article"]["slug"], slug);
    assert_eq!(r["article"]["title"], "A New Title");
    let r: Value = w
        .json_of(
            &app,
            Method::PUT,
            &format!("/api/articles/{slug}"),
            Some(json!({ "article": { "regenerateSlug": true } })),
        )
        .await;
    assert_eq!(r["article"]["slug"], "a-new-title");
}

#[tokio::test]
async fn fifty_parallel_favourites_count_once() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let fan = sign_up(&app).await;
    let slug = author.publish(&app, "Popular", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    let favourites = (0..50).map(|_| {
        fan.req(
            &app,
            Method::POST,
            &format!("/api/articles/{slug}/favorite"),
        )
        .send()
    });
    for r in futures_util::future::join_all(favourites).await {
        assert_eq!(r.expect("answered").status(), StatusCode::OK);
    }
    let a: Value = fan
        .json_of(&app, Method::GET, &format!("/api/articles/{slug}"), None)
        .await;
    assert_eq!(a["article"]["favoritesCount"], 1);
    assert_eq!(a["article"]["favorited"], true);
    let unfavourites = (0..50).map(|_| {
        fan.req(
            &app,
            Method::DELETE,
            &format!("/api/articles/{slug}/favorite"),
        )
        .send()
    });
    for r in futures_util::future::join_all(unfavourites).await {
        assert_eq!(r.expect("answered").status(), StatusCode::OK);
    }
    let a: Value = app
        .get(&format!("/api/articles/{slug}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(a["article"]["favoritesCount"], 0);
    assert_eq!(a["article"]["favorited"], false);
}

#[tokio::test]
async fn markdown_is_rendered_to_sanitised_html() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let r = w
        .req(&app, Method::POST, "/api/articles")
        .json(&json!({ "article": {
            "title": "XSS attempt",
            "description": "d",
            "body": "# Title\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)> **bold**"
        } }))
        .send()
        .await
        .expect("answered");
    let article: Value = r.json().await.expect("json");
    let html = article["article"]["bodyHtml"]
        .as_str()
        .expect("bodyHtml")
        .to_ascii_lowercase();
    assert!(
        html.contains("<h1>") && html.contains("<strong>bold</strong>"),
        "{html}"
    );
    for bad in ["<script", "javascript:", "onerror"] {
        assert!(!html.contains(bad), "{bad} survived: {html}");
    }
    // The Markdown source is returned as written.
    assert!(
        article["article"]["body"]
            .as_str()
            .expect("body")
            .contains("<script>")
    );
}

/// One trailing slash is the same route (RealWorld front ends send
/// `POST /api/articles/`), answered, not redirected; two are not.
#[tokio::test]
async fn one_trailing_slash_on_an_api_route_is_the_route() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let created = w
        .req(&app, reqwest::Method::POST, "/api/articles/")
        .json(&json!({ "article": { "title": "Slash", "description": "d", "body": "b", "tagList": ["slash"] } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), StatusCode::CREATED);
    let listed = app.get("/api/articles/?tag=slash").await;
    assert_eq!(listed.status(), StatusCode::OK);
    let page: Value = listed.json().await.expect("json");
    assert_eq!(page["articlesCount"], 1);
    let user = w
        .req(&app, reqwest::Method::GET, "/api/user/")
        .send()
        .await
        .expect("answered");
    assert_eq!(user.status(), StatusCode::OK);
    assert_eq!(app.get("/api/tags//").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/docs/").await.status(), StatusCode::OK);
}

/// A 404 or 405 that no blog handler answers, inside the RealWorld route
/// space, still comes in RealWorld's shape (front ends show
/// `errors.body`); outside it, as a problem.
#[tokio::test]
async fn fallbacks_inside_the_realworld_routes_use_its_shape() {
    let app = blog_app().await;
    for (method, path, status) in [
        (Method::GET, "/api/articles/some-slug/nothing-here", 404),
        (Method::GET, "/api/profiles/a/b/c", 404),
        (Method::DELETE, "/api/tags", 405),
        (Method::PATCH, "/api/user", 405),
    ] {
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/json"),
            "{method} {path}"
        );
        let body: Value = r.json().await.expect("json");
        assert!(
            body["errors"]["body"][0].is_string(),
            "{method} {path}: {body}"
        );
    }
    let outside = app.get("/api/nothing-here").await;
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        outside.headers()["content-type"],
        basalt_platform::error::PROBLEM_JSON
    );
}
