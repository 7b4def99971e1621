//! The broadcast port, on whichever adapter the app has: in-process in the
//! SQLite pass, Redis pub/sub in the PostgreSQL pass (`TEST_REDIS_URL`),
//! where two nodes share it. The outage test starts its own Redis.

use std::time::Duration;

use basalt_platform::broadcast::{Delivery, Subscription};
use basalt_testkit::TestApp;
use basalt_testkit::redis::RedisServer;
use bytes::Bytes;

use crate::jobs::{DEADLINE, eventually};

/// Two nodes of one cluster when the app uses Redis; otherwise the one app
/// twice (in-process, a node only hears itself).
pub async fn two_nodes() -> (TestApp, Option<TestApp>) {
    let a = TestApp::builder().spawn().await;
    let b = match a.platform.redis {
        Some(_) => Some(TestApp::builder().node_of(&a).spawn().await),
        None => None,
    };
    (a, b)
}

async fn ready(subscription: &mut Subscription) {
    tokio::time::timeout(DEADLINE, subscription.ready())
        .await
        .expect("subscribed upstream in time");
}

async fn next(subscription: &mut Subscription) -> Delivery {
    tokio::time::timeout(DEADLINE, subscription.recv())
        .await
        .expect("a delivery in time")
        .expect("the port is open")
}

fn message(text: &'static str) -> Delivery {
    Delivery::Message(Bytes::from_static(text.as_bytes()))
}

/// The value of an unlabelled sample in a `/metrics` page.
fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    sample(
        &app.get("/metrics").await.text().await.expect("metrics"),
        name,
    )
}

#[tokio::test]
async fn every_node_hears_every_nodes_publishes_on_its_topics_only() {
    let (a, b) = two_nodes().await;
    let published_by_a = if b.is_some() { 1.0 } else { 3.0 };
    let b = b.as_ref().unwrap_or(&a);
    let mut on_a = a.platform.broadcast.subscribe("room:1");
    let mut on_b = b.platform.broadcast.subscribe("room:1");
    let mut elsewhere = b.platform.broadcast.subscribe("room:2");
    for subscription in [&mut on_a, &mut on_b, &mut elsewhere] {
        ready(subscription).await;
    }
    a.platform
        .broadcast
        .publish("room:1", Bytes::from_static(b"from a"))
        .await;
    b.platform
        .broadcast
        .publish("room:1", Bytes::from_static(b"from b"))
        .await;
    b.platform
        .broadcast
        .publish("room:2", Bytes::from_static(b"other room"))
        .await;
    // Each publisher's payloads arrive in order; a subscriber hears both
    // publishers (this node included) and nothing of other topics.
    for subscription in [&mut on_a, &mut on_b] {
        let mut got = vec![next(subscription).await, next(subscription).await];
        got.sort_by_key(|d| format!("{d:?}"));
        assert_eq!(got, [message("from a"), message("from b")]);
    }
    assert_eq!(next(&mut elsewhere).await, message("other room"));
    assert_eq!(
        metric(&a, "basalt_broadcast_published_total").await,
        published_by_a
    );
    assert!(metric(b, "basalt_broadcast_delivered_total").await >= 2.0);
}

#[tokio::test]
async fn a_dropped_subscription_hears_nothing_more_and_its_topic_goes() {
    let (a, b) = two_nodes().await;
    let b = b.as_ref().unwrap_or(&a);
    let mut kept = b.platform.broadcast.subscribe("room");
    let dropped = b.platform.broadcast.subscribe("room");
    ready(&mut kept).await;
    assert_eq!(metric(b, "basalt_broadcast_topics").await, 1.0);
    drop(dropped);
    assert_eq!(
        metric(b, "basalt_broadcast_topics").await,
        1.0,
        "the topic stays while a subscription is left"
    );
    a.platform
        .broadcast
        .publish("room", Bytes::from_static(b"one"))
        .await;
    assert_eq!(next(&mut kept).await, message("one"));
    assert_eq!(metric(b, "basalt_broadcast_delivered_total").await, 1.0);

    drop(kept);
    assert_eq!(metric(b, "basalt_broadcast_topics").await, 0.0);
    if let Some(redis) = &b.platform.redis {
        // The node's upstream subscription goes with its last local one.
        let channel = redis.key("bc:room");
        eventually("the channel unsubscribed", DEADLINE, || async {
            let mut conn = redis.connection();
            let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channel)
                .query_async(&mut conn)
                .await
                .ok()?;
            (counts.first().map(|(_, n)| *n) == Some(0)).then_some(())
        })
        .await;
    }
    a.platform
        .broadcast
        .publish("room", Bytes::from_static(b"two"))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        metric(b, "basalt_broadcast_delivered_total").await,
        1.0,
        "nothing delivered once unsubscribed"
    );
}

/// Redis restarted under two nodes: what was published meanwhile is
/// dropped (counted, and without holding the publisher up), every
/// subscriber is told of the gap, and delivery resumes by itself.
#[tokio::test]
async fn a_redis_outage_is_reported_as_a_gap_and_delivery_resumes() {
    let mut redis = RedisServer::start();
    let a = TestApp::builder()
        .env("BASALT_REDIS_URL", &redis.url())
        .spawn()
        .await;
    let b = TestApp::builder().node_of(&a).spawn().await;
    let mut on_b = b.platform.broadcast.subscribe("room");
    ready(&mut on_b).await;
    a.platform
        .broadcast
        .publish("room", Bytes::from_static(b"before"))
        .await;
    assert_eq!(next(&mut on_b).await, message("before"));

    redis.stop();
    let started = std::time::Instant::now();
    a.platform
        .broadcast
        .publish("room", Bytes::from_static(b"lost"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "publishing waited {:?}",
        started.elapsed()
    );
    assert_eq!(metric(&a, "basalt_broadcast_dropped_total").await, 1.0);

    redis.restart();
    assert_eq!(next(&mut on_b).await, Delivery::Gap);
    ready(&mut on_b).await;
    // The publisher's own connection comes back on its own schedule.
    let deadline = std::time::Instant::now() + DEADLINE;
    let resumed = loop {
        a.platform
            .broadcast
            .publish("room", Bytes::from_static(b"after"))
            .await;
        if let Ok(delivery) = tokio::time::timeout(Duration::from_millis(200), on_b.recv()).await {
            break delivery.expect("the port is open");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery did not resume"
        );
    };
    assert_eq!(resumed, message("after"));
    assert_eq!(metric(&b, "basalt_broadcast_gaps_total").await, 1.0);
}
