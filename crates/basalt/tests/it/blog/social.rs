//! Profiles, following, the feed and comments.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn following_drives_profiles_and_the_feed() {
    let app = blog_app().await;
    let reader = sign_up(&app).await;
    let star = sign_up(&app).await;
    let stranger = sign_up(&app).await;
    star.publish(&app, "Star post", &[]).await;
    stranger.publish(&app, "Stranger post", &[]).await;

    let feed = |w: &Writer| w.req(&app, Method::GET, "/api/articles/feed").send();
    let empty: Value = feed(&reader)
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(empty["articlesCount"], 0);

    let r: Value = reader
        .req(
            &app,
            Method::POST,
            &format!("/api/profiles/{}/follow", star.username),
        )
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(r["profile"]["following"], true);
    let feed_now: Value = feed(&reader)
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(feed_now["articlesCount"], 1);
    assert_eq!(feed_now["articles"][0]["author"]["username"], star.username);
    assert_eq!(feed_now["articles"][0]["author"]["following"], true);

    // Per-viewer flags: the same list seen by someone else, or anonymously.
    let anon: Value = app
        .get(&format!("/api/profiles/{}", star.username))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(anon["profile"]["following"], false);
    let as_reader: Value = reader
        .req(
            &app,
            Method::GET,
            &format!("/api/profiles/{}", star.username),
        )
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(as_reader["profile"]["following"], true);

    let r: Value = reader
        .req(
            &app,
            Method::DELETE,
            &format!("/api/profiles/{}/follow", star.username),
        )
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(r["profile"]["following"], false);
    assert_eq!(
        feed(&reader)
            .await
            .expect("answered")
            .json::<Value>()
            .await
            .expect("json")["articlesCount"],
        0
    );

    assert_eq!(
        app.get("/api/profiles/nobody-here-at-all").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/articles/feed").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let own = reader
        .req(
            &app,
            Method::POST,
            &format!("/api/profiles/{}/follow", reader.username),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(own.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn parallel_follows_count_once() {
    let app = blog_app().await;
    let reader = sign_up(&app).await;
    let star = sign_up(&app).await;
    star.publish(&app, "Once", &[]).await;
    let follows = (0..30).map(|_| {
        reader
            .req(
                &app,
                Method::POST,
                &format!("/api/profiles/{}/follow", star.username),
            )
            .send()
    });
    for r in futures_util::future::join_all(follows).await {
        assert_eq!(r.expect("answered").status(), StatusCode::OK);
    }
    let feed: Value = reader
        .json_of(&app, Method::GET, "/api/articles/feed", None)
        .await;
    assert_eq!(
        feed["articlesCount"], 1,
        "one follow row, so the article appears once"
    );
}

#[tokio::test]
async fn comments_are_listed_and_only_their_author_deletes_them() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let commenter = sign_up(&app).await;
    let slug = author.publish(&app, "Discuss", &[]).await["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    let path = format!("/api/articles/{slug}/comments");
    let r = commenter
        .req(&app, Method::POST, &path)
        .json(&json!({ "comment": { "body": "First!" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    let comment: Value = r.json().await.expect("json");
    let id = comment["comment"]["id"].as_i64().expect("integer id");
    assert_eq!(comment["comment"]["author"]["username"], commenter.username);
    let blank = commenter
        .req(&app, Method::POST, &path)
        .json(&json!({ "comment": { "body": "  " } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let list: Value = app.get(&path).await.json().await.expect("json");
    assert_eq!(list["comments"].as_array().expect("comments").len(), 1);
    let forbidden = author
        .req(&app, Method::DELETE, &format!("{path}/{id}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let gone = commenter
        .req(&app, Method::DELETE, &format!("{path}/{id}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let again = commenter
        .req(&app, Method::DELETE, &format!("{path}/{id}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/api/articles/missing/comments").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn tags_lists_every_tag_in_use() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    w.publish(&app, "One", &["rust", "web"]).await;
    w.publish(&app, "Two", &["rust", "db"]).await;
    let tags: Value = app.get("/api/tags").await.json().await.expect("json");
    assert_eq!(tags["tags"], json!(["db", "rust", "web"]));
}

#[tokio::test]
async fn realworld_users_are_identity_accounts() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    // The RealWorld token works on Basalt's own routes and vice versa.
    let me = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", format!("Bearer {}", w.token))
        .send()
        .await
        .expect("answered");
    assert_eq!(me.status(), StatusCode::OK);
    let email = me.json::<Value>().await.expect("json")["user"]["email"]
        .as_str()
        .expect("email")
        .to_owned();
    let pair = crate::identity::tokens(&app, &email, crate::identity::PASSWORD).await;
    let user: Value = app
        .client
        .get(app.url("/api/user"))
        .header(
            "authorization",
            format!("Token {}", pair["access_token"].as_str().expect("t")),
        )
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(user["user"]["username"], w.username);
    // The password policy applies to RealWorld sign-ups too.
    let weak = app.client.post(app.url("/api/users")).json(&json!({ "user": { "email": "weak@example.com", "username": "weakling", "password": "password" } })).send().await.expect("answered");
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Updating through RealWorld updates the account.
    let r: Value = w
        .json_of(
            &app,
            Method::PUT,
            "/api/user",
            Some(json!({ "user": { "bio": "I write" } })),
        )
        .await;
    assert_eq!(r["user"]["bio"], "I write");
}

/// The claims of a compact JWT, unverified (the server has verified it).
fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json claims")
}

/// RealWorld clients have no refresh step: their token lives
/// `realworld_token_ttl_secs` (60 days by default), not the 15 minutes of an
/// API access token, and still ends with "sign out everywhere" and with a
/// password change, whose answer carries the token that replaces it.
#[tokio::test]
async fn realworld_tokens_live_long_and_end_with_the_accounts_sign_out() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let c = claims(&w.token);
    let lifetime = c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 60 * 24 * 3600);
    let login: Value = app
        .client
        .post(app.url("/api/users/login"))
        .json(&json!({ "user": { "email": w.email, "password": PASSWORD } }))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let logged_in = login["user"]["token"].as_str().expect("token").to_owned();
    let c = claims(&logged_in);
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        60 * 24 * 3600
    );
    let status = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/user"))
                .header("authorization", format!("Token {token}"))
                .send()
                .await
                .expect("answered")
                .status()
        }
    };
    assert_eq!(status(w.token.clone()).await, StatusCode::OK);

    // A password change through RealWorld hands back a token that works;
    // the ones from before are refused.
    let changed: Value = w
        .json_of(
            &app,
            Method::PUT,
            "/api/user",
            Some(json!({ "user": { "password": "an entirely new passphrase" } })),
        )
        .await;
    let fresh = changed["user"]["token"].as_str().expect("token").to_owned();
    assert_eq!(status(w.token.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(logged_in).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(fresh.clone()).await, StatusCode::OK);

    // Signing out everywhere ends it too.
    let out = app
        .client
        .post(app.url("/api/auth/logout-all"))
        .bearer_auth(&fresh)
        .send()
        .await
        .expect("answered");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(status(fresh).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_realworld_token_lifetime_is_configurable() {
    let app = identity_app()
        .env("BASALT_IDENTITY__REALWORLD_TOKEN_TTL_SECS", "3600")
        .spawn()
        .await;
    let w = sign_up(&app).await;
    let c = claims(&w.token);
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        3600
    );
}

/// What popular RealWorld front ends send and show: every form field (an
/// empty password means "unchanged"), `field + " " + message` (fragments,
/// not sentences), and both fields when both are taken.
#[tokio::test]
async fn what_realworld_front_ends_send_and_show_works() {
    let app = blog_app().await;
    let w = sign_up(&app).await;
    let r = w
        .req(&app, Method::PUT, "/api/user")
        .json(&json!({ "user": { "bio": "Settings saved", "password": "" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let login = app
        .client
        .post(app.url("/api/users/login"))
        .json(&json!({ "user": { "email": w.email, "password": PASSWORD } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(login.status(), StatusCode::OK, "the password is unchanged");

    let short = w
        .req(&app, Method::PUT, "/api/user")
        .json(&json!({ "user": { "password": "short" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = short.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "errors": { "password": ["is too short (use at least 8 characters)"] } })
    );

    let both = app
        .client
        .post(app.url("/api/users"))
        .json(
            &json!({ "user": { "email": w.email, "username": w.username, "password": PASSWORD } }),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(both.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = both.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "errors": {
            "email": ["has already been taken"],
            "username": ["has already been taken"],
        } })
    );
}
