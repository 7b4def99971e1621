//! The same credentials as REST: a bearer token or the session cookie, and
//! for a cookie-authenticated mutation the CSRF token and an allowed Origin.

use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use super::{code, data, post};
use crate::blog::{blog_app, sign_up};
use crate::identity::{PASSWORD, sign_in};

const VIEWER: &str = "{ viewer { username email role } }";
const FOLLOW: &str = "mutation($u: String!) { followProfile(username: $u) { username following } }";

#[tokio::test]
async fn the_viewer_is_whoever_the_token_names_and_a_bad_token_is_refused() {
    let app = blog_app().await;
    let writer = sign_up(&app).await;
    assert_eq!(
        data(&app, None, VIEWER, json!({})).await["viewer"],
        Value::Null
    );
    let viewer = data(&app, Some(&writer.token), VIEWER, json!({})).await;
    assert_eq!(viewer["viewer"]["username"], writer.username.as_str());
    assert_eq!(viewer["viewer"]["email"], writer.email.as_str());

    let (status, body) = post(&app, Some("not-a-token"), VIEWER, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // A mutation without credentials runs, and says why it did nothing.
    let (status, body) = post(&app, None, FOLLOW, json!({ "u": writer.username })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!(body["data"], Value::Null);
}

async fn post_with(
    app: &basalt_testkit::TestApp,
    headers: reqwest::header::HeaderMap,
    query: &str,
    variables: Value,
) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url("/graphql"))
        .headers(headers)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("answered");
    (r.status(), r.json().await.expect("json"))
}

#[tokio::test]
async fn a_cookie_reads_freely_but_writes_only_with_the_csrf_token_from_an_allowed_origin() {
    let app = blog_app().await;
    let author = sign_up(&app).await;
    let reader = sign_up(&app).await;
    let browser = sign_in(&app, &reader.email, PASSWORD).await;

    let mut cookie_only = header::HeaderMap::new();
    cookie_only.insert(header::COOKIE, browser.cookie.parse().expect("header"));
    let (status, body) = post_with(&app, cookie_only.clone(), VIEWER, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["viewer"]["username"], reader.username.as_str());

    let (status, body) =
        post_with(&app, cookie_only, FOLLOW, json!({ "u": author.username })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code(&body), "FORBIDDEN");

    let mut foreign = browser.write_headers();
    foreign.insert(
        header::ORIGIN,
        "https://evil.example".parse().expect("header"),
    );
    let (status, body) = post_with(&app, foreign, FOLLOW, json!({ "u": author.username })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = post_with(
        &app,
        browser.write_headers(),
        FOLLOW,
        json!({ "u": author.username }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["followProfile"]["following"], true, "{body}");
}
