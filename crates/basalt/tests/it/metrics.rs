//! The Prometheus endpoint.

use basalt_testkit::TestApp;
use reqwest::StatusCode;

use crate::spawn_app;

fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn counts_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4();
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/api/test-notes/{id}")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    app.get("/nothing/here").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.expect("text");

    let counter =
        r#"basalt_http_requests_total{method="GET",route="/api/test-notes/{id}",status="404"}"#;
    assert_eq!(sample(&text, counter), Some(3.0), "{text}");
    assert!(
        !text.contains(&id.to_string()),
        "raw paths must not become labels"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#));
    assert!(text.contains(r#"basalt_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/test-notes/{id}",status="404"} 3"#));
    // The scrape itself is in flight while it renders.
    assert_eq!(sample(&text, "basalt_http_requests_in_flight"), Some(1.0));
    assert!(sample(&text, "basalt_db_pool_connections").expect("pool size") >= 1.0);
    assert!(sample(&text, "basalt_db_pool_idle").is_some());
    assert!(sample(&text, "basalt_db_pool_waiting").is_some());
    assert_eq!(sample(&text, "basalt_db_pool_max"), Some(10.0));
    let backend = basalt_testkit::backend_name();
    assert!(
        text.contains(&format!(
            r#"basalt_build_info{{version="{}",database="{backend}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

#[tokio::test]
async fn token_protects_metrics_when_configured() {
    let token = "s3cret-scrape-token-0123456789";
    let app = TestApp::builder()
        .configure(move |c| c.metrics_token = Some(basalt_platform::config::Secret::new(token)))
        .spawn()
        .await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("s3cret-scrape-token-0123456780")
        .send()
        .await
        .expect("answered");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered");
    assert_eq!(right.status(), StatusCode::OK);
}

/// With the pool's only connection taken, the next caller waits, and the
/// gauge shows it; once the connection is back, nobody waits.
#[tokio::test]
async fn pool_waiting_counts_callers_blocked_on_a_full_pool() {
    let app = TestApp::builder()
        .configure(|c| {
            c.database.max_connections = 1;
            // No background work (job workers, outbox relay) using the one
            // connection.
            c.role = basalt_platform::Role::Api;
        })
        .spawn()
        .await;
    let waiting = || async {
        sample(
            &app.get("/metrics").await.text().await.expect("text"),
            "basalt_db_pool_waiting",
        )
    };
    let held = app
        .platform
        .db
        .acquire()
        .await
        .expect("the only connection");
    let db = app.platform.db.clone();
    let blocked = tokio::spawn(async move { db.acquire().await.map(drop) });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while waiting().await != Some(1.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the blocked caller never showed up as waiting"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(held);
    blocked
        .await
        .expect("joins")
        .expect("gets the connection once it is free");
    assert_eq!(waiting().await, Some(0.0));
}
