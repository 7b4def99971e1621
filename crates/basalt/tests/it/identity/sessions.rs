//! Browser sessions: the cookie, CSRF, fixation, listing and revocation, timeouts.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn sign_in_sets_a_hardened_cookie_over_http() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    let c = browser.set_cookie.to_ascii_lowercase();
    assert!(
        browser.cookie.starts_with("basalt_session="),
        "{}",
        browser.set_cookie
    );
    for attribute in ["httponly", "samesite=lax", "path=/", "max-age="] {
        assert!(c.contains(attribute), "{attribute} missing: {c}");
    }
    assert!(!c.contains("secure") && !c.contains("domain="), "{c}");
    // The token is long and random.
    assert!(browser.cookie.len() > "basalt_session=".len() + 40);
    let me = app
        .client
        .get(app.url("/api/me"))
        .header(header::COOKIE, &browser.cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn over_https_the_cookie_is_host_prefixed_and_secure() {
    let app = identity_app().tls().spawn().await;
    let email = registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    assert!(
        browser.cookie.starts_with("__Host-basalt_session="),
        "{}",
        browser.set_cookie
    );
    let c = browser.set_cookie.to_ascii_lowercase();
    assert!(
        c.contains("; secure") && c.contains("path=/") && !c.contains("domain="),
        "{c}"
    );
}

#[tokio::test]
async fn behind_an_https_proxy_the_cookie_is_secure_too() {
    let app = identity_app()
        .configure(|c| c.public_url = Some("https://api.example.com".parse().expect("url")))
        .spawn()
        .await;
    let email = registered(&app).await;
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.starts_with("__Host-basalt_session=") && cookie.contains("; Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_token_and_an_allowed_origin() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    let patch = |headers: reqwest::header::HeaderMap| {
        app.client
            .patch(app.url("/api/me"))
            .headers(headers)
            .json(&json!({ "bio": "changed" }))
            .send()
    };

    // A cross-site form post: the browser attaches the cookie, nothing else.
    let mut forged = reqwest::header::HeaderMap::new();
    forged.insert(header::COOKIE, browser.cookie.parse().expect("header"));
    forged.insert(
        header::ORIGIN,
        "https://evil.example".parse().expect("header"),
    );
    let r = patch(forged).await.expect("answered");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.json::<Value>().await.expect("json")["detail"]
            .as_str()
            .expect("detail")
            .contains("CSRF")
    );

    // Right token, wrong origin.
    let mut wrong_origin = browser.write_headers();
    wrong_origin.insert(
        header::ORIGIN,
        "https://evil.example".parse().expect("header"),
    );
    assert_eq!(
        patch(wrong_origin).await.expect("answered").status(),
        StatusCode::FORBIDDEN
    );

    // Wrong token, right origin.
    let mut wrong_token = browser.write_headers();
    wrong_token.insert("x-csrf-token", "guessed".parse().expect("header"));
    assert_eq!(
        patch(wrong_token).await.expect("answered").status(),
        StatusCode::FORBIDDEN
    );

    // No Origin, but a same-origin Referer is accepted; neither is refused.
    let mut referer_only = browser.write_headers();
    referer_only.remove(header::ORIGIN);
    let mut no_origin = referer_only.clone();
    referer_only.insert(
        header::REFERER,
        format!("{}/settings", app.base_url)
            .parse()
            .expect("header"),
    );
    assert_eq!(
        patch(referer_only).await.expect("answered").status(),
        StatusCode::OK
    );
    assert_eq!(
        patch(no_origin.clone()).await.expect("answered").status(),
        StatusCode::FORBIDDEN
    );
    no_origin.insert(header::ORIGIN, "null".parse().expect("header"));
    assert_eq!(
        patch(no_origin).await.expect("answered").status(),
        StatusCode::FORBIDDEN
    );

    // The real page: cookie, token and origin.
    assert_eq!(
        patch(browser.write_headers())
            .await
            .expect("answered")
            .status(),
        StatusCode::OK
    );

    // Reads need no token.
    let read = app
        .client
        .get(app.url("/api/me"))
        .header(header::COOKIE, &browser.cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(read.status(), StatusCode::OK);
    // The token can be fetched again.
    let csrf: Value = get_json_with_cookie(&app, "/api/auth/csrf", &browser.cookie).await;
    assert_eq!(csrf["csrf_token"], browser.csrf);
}

#[tokio::test]
async fn bearer_requests_are_exempt_from_csrf() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let token = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let r = app
        .client
        .patch(app.url("/api/me"))
        .bearer_auth(&token)
        .header(header::ORIGIN, "https://other.example")
        .json(&json!({ "bio": "from a script" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn trusted_cors_origins_may_write_with_the_cookie() {
    let app = identity_app()
        .configure(|c| {
            c.cors_origins = vec![reqwest::header::HeaderValue::from_static(
                "https://app.example",
            )]
        })
        .spawn()
        .await;
    let email = registered(&app).await;
    let mut browser = sign_in(&app, &email, PASSWORD).await;
    browser.origin = "https://app.example".into();
    let r = app
        .client
        .patch(app.url("/api/me"))
        .headers(browser.write_headers())
        .json(&json!({ "bio": "x" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_from_another_site_is_refused() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let r = app
        .client
        .post(app.url("/api/auth/login"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
}

/// Session fixation: an id the attacker planted before sign-in (known or
/// made up) never becomes the signed-in session.
#[tokio::test]
async fn sign_in_always_issues_a_new_session_id() {
    let app = identity_app().spawn().await;
    let victim = registered(&app).await;
    let attacker = registered(&app).await;

    // The attacker's own valid session id, planted in the victim's browser.
    let planted = sign_in(&app, &attacker, PASSWORD).await;
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header(header::COOKIE, &planted.cookie)
        .json(&json!({ "email": victim, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    assert_ne!(fresh, planted.cookie);
    // The planted id is dead; it never authenticates as the victim.
    let with_planted: reqwest::Response = app
        .client
        .get(app.url("/api/me"))
        .header(header::COOKIE, &planted.cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(with_planted.status(), StatusCode::UNAUTHORIZED);
    let me: Value = get_json_with_cookie(&app, "/api/me", &fresh).await;
    assert_eq!(me["user"]["email"], victim);

    // A made-up id is simply ignored.
    let made_up = "basalt_session=attacker-chosen-value";
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header(header::COOKIE, made_up)
        .json(&json!({ "email": victim, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    let issued = response.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(!issued.contains("attacker-chosen-value"));
}

#[tokio::test]
async fn sessions_are_listed_and_revoked() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let first = sign_in(&app, &email, PASSWORD).await;
    let second = sign_in(&app, &email, PASSWORD).await;
    let list: Value = get_json_with_cookie(&app, "/api/auth/sessions", &first.cookie).await;
    let sessions = list["sessions"].as_array().expect("array");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Another user cannot revoke it.
    let stranger_email = registered(&app).await;
    let stranger = sign_in(&app, &stranger_email, PASSWORD).await;
    let r = app
        .client
        .delete(app.url(&format!("/api/auth/sessions/{other}")))
        .headers(stranger.write_headers())
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let r = app
        .client
        .delete(app.url(&format!("/api/auth/sessions/{other}")))
        .headers(first.write_headers())
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let me = |cookie: String| {
        app.client
            .get(app.url("/api/me"))
            .header(header::COOKIE, cookie)
            .send()
    };
    assert_eq!(
        me(second.cookie.clone()).await.expect("answered").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(first.cookie.clone()).await.expect("answered").status(),
        StatusCode::OK
    );

    // Sign out ends the session and clears the cookie.
    let r = app
        .client
        .post(app.url("/api/auth/logout"))
        .headers(first.write_headers())
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    assert_eq!(
        me(first.cookie.clone()).await.expect("answered").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_all_ends_every_session_and_refresh_token() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let a = sign_in(&app, &email, PASSWORD).await;
    let b = sign_in(&app, &email, PASSWORD).await;
    let pair = tokens(&app, &email, PASSWORD).await;
    let r = app
        .client
        .post(app.url("/api/auth/logout-all"))
        .headers(a.write_headers())
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for cookie in [a.cookie, b.cookie] {
        let r = app
            .client
            .get(app.url("/api/me"))
            .header(header::COOKIE, cookie)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn idle_sessions_expire() {
    let app = identity_app()
        .env("BASALT_IDENTITY__SESSION_IDLE_TIMEOUT_SECS", "1")
        .spawn()
        .await;
    let email = registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    let me = || {
        app.client
            .get(app.url("/api/me"))
            .header(header::COOKIE, &browser.cookie)
            .send()
    };
    assert_eq!(me().await.expect("answered").status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        me().await.expect("answered").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sessions_end_at_their_absolute_timeout_even_when_used() {
    let app = identity_app()
        .env("BASALT_IDENTITY__SESSION_ABSOLUTE_TIMEOUT_SECS", "2")
        .spawn()
        .await;
    let email = registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    let me = || {
        app.client
            .get(app.url("/api/me"))
            .header(header::COOKIE, &browser.cookie)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(me().await.expect("answered").status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        me().await.expect("answered").status(),
        StatusCode::UNAUTHORIZED
    );
}
