//! Registration, profile, password change and deletion.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

async fn post(app: &basalt_testkit::TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn registration_creates_an_account_without_its_password() {
    let app = identity_app().spawn().await;
    let (email, username) = new_identity();
    let user = register(&app, &email, &username).await;
    assert_eq!(user["email"], email);
    assert_eq!(user["username"], username);
    assert_eq!(user["role"], "user");
    assert_eq!(user["email_verified"], false);
    assert!(user.get("password_hash").is_none() && !user.to_string().contains("argon2"));
}

#[tokio::test]
async fn email_and_username_are_unique_regardless_of_case() {
    let app = identity_app().spawn().await;
    let (email, username) = new_identity();
    register(&app, &email, &username).await;

    let (other_email, other_name) = new_identity();
    let dup_email = post(
        &app,
        "/api/auth/register",
        json!({ "email": email.to_uppercase(), "username": other_name, "password": PASSWORD }),
    )
    .await;
    assert_eq!(dup_email.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = dup_email.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "email", "{body}");

    let dup_name = post(
        &app,
        "/api/auth/register",
        json!({ "email": other_email, "username": username.to_uppercase(), "password": PASSWORD }),
    )
    .await;
    assert_eq!(dup_name.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = dup_name.json().await.expect("json");
    assert_eq!(body["errors"][0]["field"], "username", "{body}");
}

#[tokio::test]
async fn invalid_registrations_name_every_bad_field() {
    let app = identity_app().spawn().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "username": "ok_name", "password": PASSWORD }),
            vec!["email"],
        ),
        (
            json!({ "email": "a@b.co", "username": "x", "password": PASSWORD }),
            vec!["username"],
        ),
        (
            json!({ "email": "a@b.co", "username": "ok_name", "password": "short" }),
            vec!["password"],
        ),
        (
            json!({ "email": "a@b.co", "username": "ok_name", "password": "password1" }),
            vec!["password"],
        ),
        (
            json!({ "email": "a@b.co", "username": "ok_name", "password": "x".repeat(129) }),
            vec!["password"],
        ),
        (
            json!({ "email": "bad", "username": "<b>", "password": "123" }),
            vec!["email", "username", "password"],
        ),
    ];
    for (body, fields) in cases {
        let response = post(&app, "/api/auth/register", body.clone()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let problem: Value = response.json().await.expect("json");
        let got: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].as_str().expect("field"))
            .collect();
        assert_eq!(got, fields, "{body}");
    }
    // A 64-character passphrase is fine.
    let (email, username) = new_identity();
    let long = "a long passphrase that nobody would ever guess, made of many words";
    let response = post(
        &app,
        "/api/auth/register",
        json!({ "email": email, "username": username, "password": long }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn profile_can_be_read_and_updated() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let token = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    let me: Value = app
        .client
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"]["email"], email);

    let (_, new_name) = new_identity();
    let updated = app
        .client
        .patch(app.url("/api/me"))
        .bearer_auth(&token)
        .json(
            &json!({ "username": new_name, "bio": "hello", "image": "https://img.example/a.png" }),
        )
        .send()
        .await
        .expect("answered");
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.expect("json");
    assert_eq!(updated["user"]["username"], new_name);
    assert_eq!(updated["user"]["bio"], "hello");

    let bad = app
        .client
        .patch(app.url("/api/me"))
        .bearer_auth(&token)
        .json(&json!({ "image": "javascript:alert(1)" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.client
            .get(app.url("/api/me"))
            .send()
            .await
            .expect("answered")
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn password_change_requires_the_current_password_and_ends_other_sessions() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let here = sign_in(&app, &email, PASSWORD).await;
    let elsewhere = sign_in(&app, &email, PASSWORD).await;
    let pair = tokens(&app, &email, PASSWORD).await;

    let wrong = app
        .client
        .post(app.url("/api/me/password"))
        .headers(here.write_headers())
        .json(&json!({ "current_password": "not it at all", "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let changed = app
        .client
        .post(app.url("/api/me/password"))
        .headers(here.write_headers())
        .json(&json!({ "current_password": PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(changed.status(), StatusCode::OK);
    // Privilege change: the session gets a new id.
    let new_cookie = changed.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    assert_ne!(new_cookie, here.cookie);
    let get_with = |cookie: String| {
        app.client
            .get(app.url("/api/me"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        get_with(new_cookie).await.expect("answered").status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(here.cookie.clone())
            .await
            .expect("answered")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(elsewhere.cookie.clone())
            .await
            .expect("answered")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Refresh tokens are revoked too.
    let refresh = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .expect("answered");
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    // The old password no longer works, the new one does.
    let old = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    tokens(&app, &email, "a brand new passphrase").await;
}

#[tokio::test]
async fn an_account_can_be_deleted_with_its_password() {
    let app = identity_app().spawn().await;
    let email = registered(&app).await;
    let token = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let refused = app
        .client
        .delete(app.url("/api/me"))
        .bearer_auth(&token)
        .json(&json!({ "password": "wrong one here" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let deleted = app
        .client
        .delete(app.url("/api/me"))
        .bearer_auth(&token)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let again = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    // A signed token of an account that no longer exists is no credential.
    assert_eq!(me_with_token(&app, &token).await, StatusCode::UNAUTHORIZED);
}
