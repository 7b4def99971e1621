//! Liveness and readiness probes.

use reqwest::StatusCode;
use serde_json::Value;

use crate::spawn_app;

#[tokio::test]
async fn liveness_is_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readiness_reports_the_database() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["status"], "up");
}

/// `basalt_ready`, as /metrics shows it now.
async fn ready_gauge(app: &basalt_testkit::TestApp) -> String {
    let metrics = app.get("/metrics").await.text().await.expect("text");
    metrics
        .lines()
        .find(|l| l.starts_with("basalt_ready "))
        .unwrap_or_else(|| panic!("no basalt_ready in {metrics}"))
        .to_owned()
}

#[tokio::test]
async fn readiness_is_503_naming_the_database_when_it_is_gone() {
    let app = spawn_app().await;
    // Ready from start-up, before any probe, and after a passing one.
    assert_eq!(ready_gauge(&app).await, "basalt_ready 1");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    assert_eq!(ready_gauge(&app).await, "basalt_ready 1");
    app.platform.db.close().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["status"], "down");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("database")
    );
    // The gauge the readiness alert watches follows the answer.
    assert_eq!(ready_gauge(&app).await, "basalt_ready 0");
    // Liveness does no I/O, so it stays up.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}
