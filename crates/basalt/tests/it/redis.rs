//! The Redis adapters: several nodes sharing one cache and one set of rate
//! limits, and what a node does while Redis is away. Each test starts its own
//! `redis-server`, so that it can stop and restart it.

use std::time::{Duration, Instant};

use basalt_testkit::TestApp;
use basalt_testkit::redis::RedisServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::blog::caching::cache_count;
use crate::blog::sign_up;
use crate::identity::{PASSWORD, identity_app, registered};

async fn first_node(redis: &RedisServer, env: &[(&str, &str)]) -> TestApp {
    let mut builder = identity_app().env("BASALT_REDIS_URL", &redis.url());
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

async fn another_node(of: &TestApp, env: &[(&str, &str)]) -> TestApp {
    let mut builder = identity_app().node_of(of);
    for (name, value) in env {
        builder = builder.env(name, value);
    }
    builder.spawn().await
}

async fn titles(app: &TestApp) -> Vec<String> {
    let page: Value = app.get("/api/articles").await.json().await.expect("json");
    page["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| a["title"].as_str().expect("title").to_owned())
        .collect()
}

async fn sign_in(app: &TestApp, email: &str) -> StatusCode {
    app.client
        .post(app.url("/api/auth/token"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("answered")
        .status()
}

async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let r = app.get("/readyz").await;
    (r.status(), r.json().await.expect("json"))
}

#[tokio::test]
async fn a_write_through_one_node_is_read_fresh_through_the_others() {
    let redis = RedisServer::start();
    let a = first_node(&redis, &[]).await;
    let b = another_node(&a, &[]).await;
    let writer = sign_up(&a).await;
    let article = writer.publish(&a, "First title", &["shared"]).await;
    let slug = article["slug"].as_str().expect("slug");

    // Node b caches the page (and its tag list)...
    assert_eq!(titles(&b).await, ["First title"]);
    let before = b.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(titles(&b).await, ["First title"]);
    let after = b.get("/metrics").await.text().await.expect("metrics");
    assert!(
        cache_count(&after, "hit") > cache_count(&before, "hit"),
        "{after}"
    );
    let tags: Value = b.get("/api/tags").await.json().await.expect("json");
    assert_eq!(tags["tags"], json!(["shared"]));

    // ...and sees writes made through node a at once.
    let r = writer
        .req(&a, Method::PUT, &format!("/api/articles/{slug}"))
        .json(&json!({ "article": { "title": "Second title" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(titles(&b).await, ["Second title"]);
    writer.publish(&a, "Another", &["fresh"]).await;
    let tags: Value = b.get("/api/tags").await.json().await.expect("json");
    assert_eq!(tags["tags"], json!(["fresh", "shared"]));

    // A profile change (the identity module's hook) reaches b's pages too.
    let r = writer
        .req(&a, Method::PUT, "/api/user")
        .json(&json!({ "user": { "bio": "now with a bio" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = b.get("/api/articles").await.json().await.expect("json");
    assert_eq!(page["articles"][0]["author"]["bio"], "now with a bio");
}

#[tokio::test]
async fn a_rate_limit_holds_across_nodes_together() {
    let redis = RedisServer::start();
    let limit = [("BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE", "4")];
    let a = first_node(&redis, &limit).await;
    let b = another_node(&a, &limit).await;
    let email = registered(&a).await;
    for node in [&a, &b, &a, &b] {
        assert_eq!(sign_in(node, &email).await, StatusCode::OK);
    }
    // Each node has seen only two: an in-process limit would let both pass.
    assert_eq!(sign_in(&a, &email).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sign_in(&b, &email).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_redis_a_node_serves_from_the_database_and_recovers_by_itself() {
    let mut redis = RedisServer::start();
    let app = first_node(
        &redis,
        &[
            ("BASALT_REDIS__RATE_LIMIT_FAIL_MODE", "closed"),
            (
                "BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE",
                "1000",
            ),
        ],
    )
    .await;
    let writer = sign_up(&app).await;
    let email = registered(&app).await;
    writer.publish(&app, "Before the outage", &[]).await;
    assert_eq!(titles(&app).await, ["Before the outage"]);
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["checks"][1],
        json!({ "name": "redis", "status": "up" })
    );

    redis.stop();
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "a node without Redis still serves");
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"][1],
        json!({ "name": "redis", "status": "down" })
    );
    // Reads and writes go on, and reads stay fresh (straight from the database).
    writer.publish(&app, "During the outage", &[]).await;
    assert_eq!(
        titles(&app).await,
        ["During the outage", "Before the outage"]
    );
    // Rate-limited routes follow the configured fail mode.
    assert_eq!(sign_in(&app, &email).await, StatusCode::TOO_MANY_REQUESTS);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while readiness(&app).await.1["status"] != "ready" {
        assert!(
            Instant::now() < deadline,
            "the node did not see Redis come back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sign_in(&app, &email).await, StatusCode::OK);
    assert_eq!(
        titles(&app).await,
        ["During the outage", "Before the outage"]
    );
    let before = app.get("/metrics").await.text().await.expect("metrics");
    assert_eq!(
        titles(&app).await,
        ["During the outage", "Before the outage"]
    );
    let after = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        cache_count(&after, "hit") > cache_count(&before, "hit"),
        "cache in use again"
    );
    assert!(after.contains("basalt_redis_up 1"), "{after}");
}

#[tokio::test]
async fn in_the_local_fail_mode_each_node_keeps_limiting_on_its_own() {
    let mut redis = RedisServer::start();
    let app = first_node(
        &redis,
        &[("BASALT_IDENTITY__RATE_LIMITS__LOGIN_PER_IP_PER_MINUTE", "2")],
    )
    .await;
    let email = registered(&app).await;
    redis.stop();
    assert_eq!(sign_in(&app, &email).await, StatusCode::OK);
    assert_eq!(sign_in(&app, &email).await, StatusCode::OK);
    assert_eq!(sign_in(&app, &email).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_limit_of_more_than_a_million_a_second_works_in_redis() {
    // Its step is under a microsecond: the script once wrote `SET … PX 0`,
    // an error, which a closed fail mode turned into a refusal.
    let redis = RedisServer::start();
    let app = first_node(
        &redis,
        &[
            ("BASALT_REDIS__RATE_LIMIT_FAIL_MODE", "closed"),
            ("BASALT_CHAT__RATE_LIMITS__SENDS_PER_MINUTE", "100000000"),
        ],
    )
    .await;
    let writer = sign_up(&app).await;
    let room = crate::chat::create_room(&app, &writer, "Fast", "public").await;
    for i in 0..3 {
        crate::chat::post(&app, &writer, &room, &format!("message {i}")).await;
    }
}
