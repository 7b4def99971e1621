//! Email verification and password reset, with the mail delivered over real
//! SMTP (aiosmtpd on loopback) by the durable job queue.

use std::time::Duration;

use basalt_testkit::smtp::SmtpServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const MAIL_WAIT: Duration = Duration::from_secs(20);

async fn app_with_mail(smtp: &SmtpServer) -> basalt_testkit::TestApp {
    identity_app()
        .env("BASALT_SMTP_URL", &smtp.url())
        .env("BASALT_PUBLIC_URL", "https://app.example.com")
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .spawn()
        .await
}

/// The token of the reset mail sent to `email` (the verification mail of
/// the account may come first), waiting for it.
pub(crate) async fn reset_token(smtp: &SmtpServer, email: &str) -> String {
    let deadline = std::time::Instant::now() + MAIL_WAIT;
    loop {
        if let Some(m) = smtp
            .messages()
            .into_iter()
            .find(|m| m.is_for(email) && m.subject.contains("Reset"))
        {
            break token_in(&m.body);
        }
        assert!(std::time::Instant::now() < deadline, "no reset mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The token after `token=` in a mailed link.
fn token_in(body: &str) -> String {
    let start = body.find("token=").expect("a link with a token") + "token=".len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn registration_mails_a_single_use_verification_link() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let (email, username) = new_identity();
    let user = register(&app, &email, &username).await;
    assert_eq!(user["email_verified"], false);

    let mail = smtp.wait_for_message(&email, MAIL_WAIT).await;
    assert!(mail.subject.contains("Confirm"), "{}", mail.subject);
    assert!(
        mail.body
            .contains("https://app.example.com/verify-email?token="),
        "{}",
        mail.body
    );
    let token = token_in(&mail.body);
    assert_eq!(token.len(), 43);

    let verify = |t: String| {
        app.client
            .post(app.url("/api/auth/verify-email"))
            .json(&json!({ "token": t }))
            .send()
    };
    let r = verify(token.clone()).await.expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.expect("json")["user"]["email_verified"],
        true
    );
    // Single use.
    assert_eq!(
        verify(token).await.expect("answered").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        verify("made-up".into()).await.expect("answered").status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn password_reset_by_mail_ends_every_session_and_token() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let email = registered(&app).await;
    let browser = sign_in(&app, &email, PASSWORD).await;
    let pair = tokens(&app, &email, PASSWORD).await;

    // Same answer for an unknown address, and no mail for it.
    for target in [email.as_str(), "nobody-at-all@example.com"] {
        let r = app
            .client
            .post(app.url("/api/auth/password/forgot"))
            .json(&json!({ "email": target }))
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let token = reset_token(&smtp, &email).await;
    let reset = |t: &str, p: &str| {
        app.client
            .post(app.url("/api/auth/password/reset"))
            .json(&json!({ "token": t, "new_password": p }))
            .send()
    };

    // A weak password is refused and does not burn the token.
    assert_eq!(
        reset(&token, "password").await.expect("answered").status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        reset(&token, "a new and better passphrase")
            .await
            .expect("answered")
            .status(),
        StatusCode::NO_CONTENT
    );
    // Reuse of the reset token.
    assert_eq!(
        reset(&token, "yet another passphrase here")
            .await
            .expect("answered")
            .status(),
        StatusCode::BAD_REQUEST
    );

    // Everything that was signed in before is signed out.
    let me = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", &browser.cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .post(app.url("/api/auth/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let old = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    tokens(&app, &email, "a new and better passphrase").await;

    // No mail went to the unknown address.
    assert!(
        smtp.messages()
            .iter()
            .all(|m| !m.is_for("nobody-at-all@example.com"))
    );
}

#[tokio::test]
async fn reset_tokens_expire() {
    let smtp = SmtpServer::start().await;
    let app = identity_app()
        .env("BASALT_SMTP_URL", &smtp.url())
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .env("BASALT_IDENTITY__PASSWORD_RESET_TTL_SECS", "1")
        .spawn()
        .await;
    let email = registered(&app).await;
    app.client
        .post(app.url("/api/auth/password/forgot"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .expect("answered");
    let deadline = std::time::Instant::now() + MAIL_WAIT;
    let mail = loop {
        if let Some(m) = smtp
            .messages()
            .into_iter()
            .find(|m| m.is_for(&email) && m.subject.contains("Reset"))
        {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no reset mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = app.client.post(app.url("/api/auth/password/reset")).json(&json!({ "token": token_in(&mail.body), "new_password": "a new and better passphrase" })).send().await.expect("answered");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_changed_email_must_be_confirmed_again() {
    let smtp = SmtpServer::start().await;
    let app = app_with_mail(&smtp).await;
    let email = registered(&app).await;
    let first = smtp.wait_for_message(&email, MAIL_WAIT).await;
    let token = tokens(&app, &email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (new_email, _) = new_identity();
    let r = app
        .client
        .patch(app.url("/api/me"))
        .bearer_auth(&token)
        .json(&json!({ "email": new_email }))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        r.json::<Value>().await.expect("json")["user"]["email_verified"],
        false
    );
    let second = smtp.wait_for_message(&new_email, MAIL_WAIT).await;
    // The link sent to the old address does not confirm the new one.
    let r = app
        .client
        .post(app.url("/api/auth/verify-email"))
        .json(&json!({ "token": token_in(&first.body) }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .client
        .post(app.url("/api/auth/verify-email"))
        .json(&json!({ "token": token_in(&second.body) }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
}
