//! Rights end when the account's standing changes, whatever a still
//! correctly signed access token claims: after a demotion, a deletion,
//! "sign out everywhere" and a password reset, the old token gets 401 on an
//! admin route and on a normal one, at once, on every node.

use basalt_testkit::TestApp;
use basalt_testkit::redis::RedisServer;
use basalt_testkit::smtp::SmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const ADMIN_ROUTE: &str = "/api/admin/audit";
const NORMAL_ROUTE: &str = "/api/me";

async fn status_with(app: &TestApp, path: &str, token: &str) -> StatusCode {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered")
        .status()
}

/// The statuses of the admin route and the normal route with `token`.
async fn both_routes(app: &TestApp, token: &str) -> (StatusCode, StatusCode) {
    (
        status_with(app, ADMIN_ROUTE, token).await,
        status_with(app, NORMAL_ROUTE, token).await,
    )
}

const REFUSED: (StatusCode, StatusCode) = (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED);
const ADMIN: (StatusCode, StatusCode) = (StatusCode::OK, StatusCode::OK);

async fn post_with(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("answered")
}

async fn set_role(app: &TestApp, by: &str, target: uuid::Uuid, role: &str) -> StatusCode {
    app.client
        .put(app.url(&format!("/api/admin/users/{target}/role")))
        .bearer_auth(by)
        .json(&json!({ "role": role }))
        .send()
        .await
        .expect("answered")
        .status()
}

/// The email of the account with `id`.
async fn email_of(app: &TestApp, id: uuid::Uuid) -> String {
    identity(app).user(id).await.expect("user").email
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = identity_app().spawn().await;
    let (demoted_id, demoted) = admin_token(&app).await;
    let (_, other_admin) = admin_token(&app).await;
    // Used before the change, so that a cached standing must be forgotten.
    assert_eq!(both_routes(&app, &demoted).await, ADMIN);

    assert_eq!(
        set_role(&app, &other_admin, demoted_id, "user").await,
        StatusCode::OK
    );
    assert_eq!(both_routes(&app, &demoted).await, REFUSED);
    // Signed in again, the account has the rights of its new role.
    let email = email_of(&app, demoted_id).await;
    let fresh = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        both_routes(&app, &fresh).await,
        (StatusCode::FORBIDDEN, StatusCode::OK)
    );
    // And a promotion counts at once for a token issued after it.
    assert_eq!(
        set_role(&app, &other_admin, demoted_id, "admin").await,
        StatusCode::OK
    );
    assert_eq!(both_routes(&app, &fresh).await, REFUSED);
    let promoted = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(both_routes(&app, &promoted).await, ADMIN);
}

#[tokio::test]
async fn a_deleted_accounts_tokens_are_refused() {
    let app = identity_app().spawn().await;
    let (_, admin) = admin_token(&app).await;
    assert_eq!(both_routes(&app, &admin).await, ADMIN);
    let deleted = app
        .client
        .delete(app.url("/api/me"))
        .bearer_auth(&admin)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(both_routes(&app, &admin).await, REFUSED);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_access_token() {
    let app = identity_app().spawn().await;
    let (id, admin) = admin_token(&app).await;
    let email = email_of(&app, id).await;
    let second = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(both_routes(&app, &admin).await, ADMIN);
    assert_eq!(both_routes(&app, &second).await, ADMIN);

    let out = post_with(&app, "/api/auth/logout-all", &second, json!({})).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(both_routes(&app, &admin).await, REFUSED);
    assert_eq!(both_routes(&app, &second).await, REFUSED);
    // A sign-in right after (same second) is of the new generation.
    let after = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(both_routes(&app, &after).await, ADMIN);
}

#[tokio::test]
async fn a_password_reset_ends_every_access_token() {
    let smtp = SmtpServer::start().await;
    let app = identity_app()
        .env("BASALT_SMTP_URL", &smtp.url())
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .spawn()
        .await;
    let (id, admin) = admin_token(&app).await;
    let email = email_of(&app, id).await;
    assert_eq!(both_routes(&app, &admin).await, ADMIN);

    assert_eq!(forgot_password(&app, &email).await, StatusCode::ACCEPTED);
    let token = super::recovery::reset_token(&smtp, &email).await;
    let reset = app
        .client
        .post(app.url("/api/auth/password/reset"))
        .json(&json!({ "token": token, "new_password": "a new and better passphrase" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(both_routes(&app, &admin).await, REFUSED);
}

/// Two nodes sharing the database and Redis: a change made through one is
/// seen by the other at once, although the other had the standing cached.
#[tokio::test]
async fn a_change_through_one_node_counts_at_once_on_the_other() {
    let redis = RedisServer::start();
    let a = identity_app()
        .env("BASALT_REDIS_URL", &redis.url())
        .spawn()
        .await;
    let b = identity_app().node_of(&a).spawn().await;
    let (demoted_id, demoted) = admin_token(&a).await;
    let (signed_out_id, signed_out) = admin_token(&a).await;
    let (_, other_admin) = admin_token(&a).await;
    for token in [&demoted, &signed_out] {
        // Twice, so that node b serves the second from its cache.
        assert_eq!(both_routes(&b, token).await, ADMIN);
        assert_eq!(both_routes(&b, token).await, ADMIN);
    }

    assert_eq!(
        set_role(&a, &other_admin, demoted_id, "user").await,
        StatusCode::OK
    );
    assert_eq!(both_routes(&b, &demoted).await, REFUSED);

    let out = post_with(&a, "/api/auth/logout-all", &signed_out, json!({})).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(both_routes(&b, &signed_out).await, REFUSED);
    let email = email_of(&a, signed_out_id).await;
    let fresh = tokens(&a, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(both_routes(&b, &fresh).await, ADMIN);
}
