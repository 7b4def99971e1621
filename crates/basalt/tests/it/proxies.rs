//! Behind reverse proxies: the client's address and scheme come from the
//! forwarding headers only when the TCP peer is a trusted proxy, and then
//! from the right of `X-Forwarded-For`, so a client cannot spoof them. Rate
//! limits and the audit log key on that address.

use std::path::Path;
use std::process::Command;

use basalt_testkit::{TestApp, TestAppBuilder};
use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use crate::identity::{PASSWORD, identity_app, new_identity, registered};

/// Sign-ins allowed per client address and minute in these tests.
const PER_IP: &str = "2";

fn limited_app() -> TestAppBuilder {
    identity_app().env(
        "BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE",
        PER_IP,
    )
}

/// A failed sign-in for a fresh unknown account (so only the per-address
/// limit can refuse it), sent with `headers`.
async fn sign_in_as(app: &TestApp, headers: &[(&str, &str)]) -> StatusCode {
    let (email, _) = new_identity();
    let mut request = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": "not the password" }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("answered").status()
}

/// An admin's access token, signed in without forwarding headers.
async fn admin_token(app: &TestApp) -> String {
    crate::identity::admin_token(app).await.1
}

/// `GET /api/admin/audit?query` as an admin: the records.
async fn audit(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let page: Value = app
        .client
        .get(app.url(&format!("/api/admin/audit?{query}")))
        .bearer_auth(admin)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    page["records"].as_array().expect("records").clone()
}

/// Registers through the API with `headers`; the new account's id.
async fn register_with(app: &TestApp, headers: &[(&str, &str)]) -> String {
    let (email, username) = new_identity();
    let mut request = app
        .client
        .post(app.url("/api/auth/register"))
        .json(&json!({ "email": email, "username": username, "password": PASSWORD }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("answered");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("json");
    body["user"]["id"].as_str().expect("id").to_owned()
}

/// The `ip` of the one record of `event` for `user_id`.
async fn audited_ip(app: &TestApp, admin: &str, event: &str, user_id: &str) -> String {
    let records = audit(app, admin, &format!("event={event}&user_id={user_id}")).await;
    assert_eq!(records.len(), 1, "{records:?}");
    records[0]["ip"].as_str().unwrap_or("<none>").to_owned()
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_headers_are_ignored() {
    // No trusted proxies (the default): the TCP peer is the client, whatever
    // the headers claim, so rotating X-Forwarded-For does not dodge the limit.
    let app = limited_app().spawn().await;
    let mut statuses = Vec::new();
    for fake in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        statuses.push(
            sign_in_as(
                &app,
                &[
                    ("x-forwarded-for", fake),
                    ("forwarded", &format!("for={fake}")),
                ],
            )
            .await,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );

    // Audit records name the peer, not the claim.
    let app = identity_app().spawn().await;
    let admin = admin_token(&app).await;
    let user = register_with(&app, &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(
        audited_ip(&app, &admin, "registered", &user).await,
        "127.0.0.1"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_rate_limit() {
    let app = limited_app()
        .env("BASALT_TRUSTED_PROXIES", "127.0.0.1/32")
        .spawn()
        .await;
    let a = [("x-forwarded-for", "203.0.113.10")];
    assert_eq!(sign_in_as(&app, &a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_as(&app, &a).await, StatusCode::UNAUTHORIZED);
    assert_eq!(sign_in_as(&app, &a).await, StatusCode::TOO_MANY_REQUESTS);

    // Another client behind the same proxy has its own bucket…
    let b = [("x-forwarded-for", "203.0.113.11")];
    assert_eq!(sign_in_as(&app, &b).await, StatusCode::UNAUTHORIZED);
    // … and so has the proxy itself, for requests it makes on its own.
    assert_eq!(sign_in_as(&app, &[]).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_spoofed_left_most_forwarded_for_entry_is_not_used() {
    let app = limited_app()
        .env("BASALT_TRUSTED_PROXIES", "127.0.0.1/32")
        .spawn()
        .await;
    // The client prepends a new address every time; the proxy appends the
    // one it really saw, which is where the walk from the right stops.
    let mut statuses = Vec::new();
    for fake in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        let chain = format!("{fake}, 203.0.113.20");
        statuses.push(sign_in_as(&app, &[("x-forwarded-for", &chain)]).await);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // That address's bucket is the one spent.
    assert_eq!(
        sign_in_as(&app, &[("x-forwarded-for", "203.0.113.20")]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_audit_log_records_the_forwarded_client_ip() {
    let app = identity_app()
        .env("BASALT_TRUSTED_PROXIES", "127.0.0.1/32,10.0.0.0/8")
        .spawn()
        .await;
    let admin = admin_token(&app).await;

    // One proxy.
    let user = register_with(&app, &[("x-forwarded-for", "203.0.113.30")]).await;
    assert_eq!(
        audited_ip(&app, &admin, "registered", &user).await,
        "203.0.113.30"
    );

    // A spoofed entry, the client, then a chain of trusted proxies.
    let user = register_with(
        &app,
        &[(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.31, 10.1.2.3, 10.0.0.1",
        )],
    )
    .await;
    assert_eq!(
        audited_ip(&app, &admin, "registered", &user).await,
        "203.0.113.31"
    );

    // The standard Forwarded header, from a proxy that sends no X-Forwarded-For.
    let user = register_with(
        &app,
        &[(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8::31]:4711";proto=https, for=10.0.0.2"#,
        )],
    )
    .await;
    assert_eq!(
        audited_ip(&app, &admin, "registered", &user).await,
        "2001:db8::31"
    );

    // Failed sign-ins too (what lockout investigations read).
    let email = registered(&app).await;
    let failed = app
        .client
        .post(app.url("/api/auth/token"))
        .header("x-forwarded-for", "203.0.113.32")
        .json(&json!({ "email": email, "password": "not the password" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let records = audit(&app, &admin, "event=sign_in_failed&limit=10").await;
    assert!(
        records.iter().any(|r| r["ip"] == "203.0.113.32"),
        "{records:?}"
    );
}

/// A sign-in from a page on `https://` (Basalt's host), through a proxy that
/// says the client used `proto`, or straight; the status.
async fn login_from_https_page(app: &TestApp, proto: Option<&str>) -> StatusCode {
    let mut request = app
        .client
        .post(app.url("/api/auth/login"))
        .header(header::ORIGIN, format!("https://{}", app.addr))
        .json(&json!({ "email": "nobody@example.com", "password": PASSWORD }));
    if let Some(proto) = proto {
        request = request
            .header("x-forwarded-for", "203.0.113.40")
            .header("x-forwarded-proto", proto);
    }
    request.send().await.expect("answered").status()
}

#[tokio::test]
async fn x_forwarded_proto_from_a_trusted_proxy_is_the_clients_scheme() {
    // With no public URL, Basalt's own origin is the scheme and host the
    // request came in with: a browser on https:// behind a TLS-terminating
    // proxy sends `Origin: https://…`, which must count as same-origin.
    let trusted = identity_app()
        .env("BASALT_TRUSTED_PROXIES", "127.0.0.1")
        .spawn()
        .await;
    // Past the origin check: the unknown account's 401.
    assert_eq!(
        login_from_https_page(&trusted, Some("https")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from_https_page(&trusted, Some("http")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        login_from_https_page(&trusted, None).await,
        StatusCode::FORBIDDEN
    );

    let untrusted = identity_app().spawn().await;
    assert_eq!(
        login_from_https_page(&untrusted, Some("https")).await,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn bad_trusted_proxies_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let basalt = |dir: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd
    };
    for value in [
        "proxy.internal",
        "10.0.0.0/33",
        "127.0.0.1, 10.0.0.1/8",
        "::1/200",
    ] {
        for command in [&["serve"][..], &["config", "print"]] {
            let out = basalt(dir.path())
                .args(command)
                .env("BASALT_TRUSTED_PROXIES", value)
                .output()
                .expect("runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{value} {command:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{err}");
            assert!(
                err.contains("invalid configuration: BASALT_TRUSTED_PROXIES"),
                "{err}"
            );
        }
    }
    // In a file, as a TOML array.
    std::fs::write(
        dir.path().join("basalt.toml"),
        "trusted_proxies = [\"10.0.0.0/8\", \"nope\"]\n",
    )
    .expect("write");
    let out = basalt(dir.path())
        .args(["--config", "basalt.toml", "config", "print"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("BASALT_TRUSTED_PROXIES"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.path().join("basalt.toml"),
        "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
    )
    .expect("write");
    let out = basalt(dir.path())
        .args(["--config", "basalt.toml", "config", "print"])
        .output()
        .expect("runs");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("trusted_proxies = [\n    \"10.0.0.0/8\",\n    \"::1/128\",\n]")
            || printed.contains("trusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]"),
        "{printed}"
    );
    assert!(!dir.path().join("data").exists());
}
