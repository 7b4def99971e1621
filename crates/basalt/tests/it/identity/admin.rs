//! Admin routes and roles.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn only_admins_read_the_audit_log_and_jobs() {
    let app = identity_app().spawn().await;
    let user_email = registered(&app).await;
    let user_token = tokens(&app, &user_email, PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (_, admin) = admin_token(&app).await;
    for path in ["/api/admin/audit", "/api/admin/jobs"] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&user_token)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let r = app
            .client
            .get(app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let page: Value = app
        .client
        .get(app.url("/api/admin/audit?event=registered&limit=10"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let records = page["records"].as_array().expect("records");
    assert!(
        records.len() >= 2 && records.iter().all(|r| r["event"] == "registered"),
        "{page}"
    );
    let failed = attempt_wrong(&app, &user_email).await;
    assert_eq!(failed, StatusCode::UNAUTHORIZED);
    let page: Value = app
        .client
        .get(app.url("/api/admin/audit?event=sign_in_failed"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let record = &page["records"][0];
    assert_eq!(record["ip"], "127.0.0.1");
    assert_eq!(record["details"]["reason"], "wrong_password");
}

async fn attempt_wrong(app: &basalt_testkit::TestApp, email: &str) -> StatusCode {
    app.client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": "definitely wrong" }))
        .send()
        .await
        .expect("answered")
        .status()
}

#[tokio::test]
async fn role_changes_are_audited_and_end_the_users_sessions() {
    let app = identity_app().spawn().await;
    let (admin_id, admin) = admin_token(&app).await;
    let email = registered(&app).await;
    let target = user_id(&app, &email).await;
    let browser = sign_in(&app, &email, PASSWORD).await;

    let r = app
        .client
        .put(app.url(&format!("/api/admin/users/{target}/role")))
        .bearer_auth(&admin)
        .json(&json!({ "role": "admin" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.expect("json")["user"]["role"],
        "admin"
    );
    let me = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", &browser.cookie)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        me.status(),
        StatusCode::UNAUTHORIZED,
        "privilege change ends existing sessions"
    );

    let events = audit_events(&app, Some(target)).await;
    let change = events
        .iter()
        .find(|e| e.event == "role_changed")
        .expect("audited");
    assert_eq!(change.actor_id, Some(admin_id));
    assert_eq!(change.details["to"], "admin");

    let r = app
        .client
        .put(app.url(&format!("/api/admin/users/{}/role", uuid::Uuid::new_v4())))
        .bearer_auth(&admin)
        .json(&json!({ "role": "user" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_cli_bootstraps_an_admin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt_url = match basalt_testkit::fresh_database(dir.path()).await {
        basalt_platform::config::DatabaseUrl::Sqlite(u) => u,
        basalt_platform::config::DatabaseUrl::Postgres(u) => {
            secrecy::ExposeSecret::expose_secret(&u).to_owned()
        }
    };
    let (email, username) = new_identity();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .current_dir(dir.path())
        .env_clear()
        .env("BASALT_DATABASE_URL", &rt_url)
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB", "1024")
        .args([
            "user",
            "create",
            "--admin",
            "--email",
            &email,
            "--username",
            &username,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{PASSWORD}").expect("write");
    }
    let out = child.wait_with_output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created admin"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A weak password is refused with the policy's reason.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
        .current_dir(dir.path())
        .env_clear()
        .env("BASALT_DATABASE_URL", &rt_url)
        .args([
            "user",
            "create",
            "--email",
            "weak@example.com",
            "--username",
            "weakling",
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    {
        use std::io::Write;
        writeln!(child.stdin.take().expect("stdin"), "password").expect("write");
    }
    let out = child.wait_with_output().expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The admin exists in that database with the admin role.
    let config = basalt_platform::Config::with_data_dir(dir.path());
    let db = basalt_platform::Db::connect(
        &basalt_platform::config::DatabaseUrl::parse(&rt_url).expect("url"),
        &config.database,
    )
    .await
    .expect("db");
    let role: String = basalt_platform::with_conn!(&db, |conn| {
        sqlx::query_scalar("SELECT role FROM identity_users WHERE email_normalized = $1")
            .bind(email.to_lowercase())
            .fetch_one(conn)
            .await
    })
    .expect("created");
    assert_eq!(role, "admin");
}
