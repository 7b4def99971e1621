//! Graceful shutdown: in-flight requests finish, new ones are refused.

use std::time::{Duration, Instant};

use basalt_testkit::TestApp;
use reqwest::StatusCode;

use crate::fixture;

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let mut app = TestApp::builder()
        .module(fixture::NotesModule)
        .spawn()
        .await;
    let client = app.client.clone();
    let url = app.url("/api/test-slow?ms=1500");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are no longer accepted.
    let fresh = reqwest::Client::new().get(app.url("/healthz")).send().await;
    assert!(
        fresh.is_err(),
        "a new connection was served during shutdown"
    );

    let response = in_flight
        .await
        .expect("joins")
        .expect("in-flight request completed");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "done");
    app.stop().await.expect("server ends cleanly");
}

#[tokio::test]
async fn the_grace_period_bounds_shutdown() {
    let mut app = TestApp::builder()
        .module(fixture::NotesModule)
        .configure(|c| c.http.shutdown_grace_secs = 1)
        .spawn()
        .await;
    let client = app.client.clone();
    let url = app.url("/api/test-slow?ms=20000");
    let stuck = tokio::spawn(async move { client.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    app.begin_shutdown();
    app.stop().await.expect("server ends");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stuck.await.expect("joins").is_err(),
        "the stuck request was cut off"
    );
}
