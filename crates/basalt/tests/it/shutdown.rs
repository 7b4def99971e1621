//! Graceful shutdown: in-flight requests finish, new ones are refused, and
//! no background task outlives it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use basalt_testkit::TestApp;
use basalt_testkit::redis::RedisServer;
use reqwest::StatusCode;

use crate::blog::sign_up;
use crate::fixture;
use crate::identity::identity_app;
use crate::jobs::{DEADLINE, eventually};

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

/// Every background loop of a full node (Redis configured, so the cache's
/// listeners run too) is a supervised task, and all have ended when the
/// server's `serve` returns: each on its own cancellation, well within the
/// grace (none had to be aborted).
#[tokio::test]
async fn no_background_task_outlives_shutdown() {
    let redis = RedisServer::start();
    let mut app = identity_app()
        .env("BASALT_REDIS_URL", &redis.url())
        .module(fixture::NotesModule)
        .spawn()
        .await;
    let supervisor = app.platform.supervisor.clone();
    let expected: BTreeSet<String> = [
        "jobs.workers",
        "events.relay",
        "events.fanout",
        "identity.signing_key_refresh",
        "cache.invalidation_listener",
        "cache.invalidation_retry",
        "broadcast.listener",
        "chat.sockets",
        "chat.heads_sweep",
        "chat.presence_sweep",
        "test-notes.ticker",
    ]
    .map(String::from)
    .into();
    // `serve` starts them on the server's task, just after spawning.
    let live = eventually("the background services to start", DEADLINE, || async {
        let live: BTreeSet<String> = supervisor.live().into_iter().map(|t| t.name).collect();
        (live == expected).then_some(live)
    })
    .await;
    assert_eq!(live, expected);
    // Some work for them: a sign-up queues a mail job and records an event;
    // an article invalidates the cache.
    let writer = sign_up(&app).await;
    writer.publish(&app, "Before shutdown", &[]).await;

    let started = Instant::now();
    app.shut_down().await.expect("server ends cleanly");
    assert!(
        supervisor.live().is_empty(),
        "tasks outlived shutdown: {:?}",
        supervisor.live()
    );
    // The test grace is 5 s: a task ignoring its cancellation would have
    // held shutdown past it before being aborted.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
