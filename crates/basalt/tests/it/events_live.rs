//! Live events (`Events::listen`): every event of the kinds listened for, as
//! it is published, on every node that serves the API; in-process, or
//! through RabbitMQ's fan-out with `TEST_AMQP_URL`.
//!
//! The relays here poll once a minute, so an event heard within a second was
//! carried by the wake-up after its commit.

use std::sync::Arc;
use std::time::Duration;

use basalt_platform::events::{Event, LiveEvents, RecvError, record_in};
use basalt_testkit::TestApp;
use serde_json::json;

/// Longer than any test: only wake-ups start the relay.
const SLOW_RELAY_MS: u64 = 60_000;
/// A woken relay's event reaches listeners well within this.
const PROMPTLY: Duration = Duration::from_secs(2);
/// How long a duplicate would have to arrive.
const QUIET: Duration = Duration::from_millis(1500);

fn node(first: Option<&TestApp>) -> basalt_testkit::TestAppBuilder {
    let builder = TestApp::builder().configure(|c| c.events.relay_interval_ms = SLOW_RELAY_MS);
    match first {
        Some(first) => builder.node_of(first),
        None => builder,
    }
}

/// Records `events` in one transaction through `app`, and wakes its relay
/// as the modules do after a commit.
async fn record(app: &TestApp, events: &[&Event]) {
    let mut tx = app.platform.db.begin().await.expect("begin");
    for event in events {
        record_in(&mut tx, event).await.expect("record");
    }
    tx.commit().await.expect("commit");
    app.platform.events.waker().wake();
}

async fn next(live: &mut LiveEvents) -> Arc<Event> {
    tokio::time::timeout(PROMPTLY, live.recv())
        .await
        .expect("an event promptly")
        .expect("an event, not an error")
}

async fn nothing_more(live: &mut LiveEvents) {
    if let Ok(received) = tokio::time::timeout(QUIET, live.recv()).await {
        panic!("nothing more was expected, got {received:?}");
    }
}

#[tokio::test]
async fn a_listener_hears_its_kinds_as_they_are_published_until_shutdown() {
    let mut app = node(None).spawn().await;
    let events = &app.platform.events;
    tokio::time::timeout(PROMPTLY, events.live_ready())
        .await
        .expect("the node hears live events");
    let mut articles = events.listen(&["test.article_published"]);
    let mut both = events.listen(&["test.article_published", "test.comment_added"]);

    let comment = Event::new("test.comment_added", &json!({ "n": 1 }));
    let article = Event::new("test.article_published", &json!({ "n": 2 }));
    let other = Event::new("test.followed", &json!({ "n": 3 }));
    record(&app, &[&comment, &article, &other]).await;
    let heard = next(&mut articles).await;
    assert_eq!(*heard, article, "the article, with its payload");
    let mut heard = vec![next(&mut both).await.id, next(&mut both).await.id];
    heard.sort();
    let mut expected = vec![comment.id, article.id];
    expected.sort();
    assert_eq!(heard, expected);

    // The unwanted kind was skipped, not queued: the next event is the next
    // wanted one, on each.
    let later = Event::new("test.article_published", &json!({ "n": 4 }));
    record(&app, &[&later]).await;
    assert_eq!(next(&mut articles).await.id, later.id);
    assert_eq!(next(&mut both).await.id, later.id);
    nothing_more(&mut both).await;

    app.shut_down().await.expect("stops");
    assert_eq!(articles.recv().await, Err(RecvError::Closed));
    let mut stream = Box::pin(both.into_stream());
    assert!(
        futures_util::StreamExt::next(&mut stream).await.is_none(),
        "the stream ends with the node"
    );
}

/// With RabbitMQ: an event recorded through node A is heard once by a
/// listener on A and once by one on B, an `api` node that runs no relay of
/// its own (so it can only have heard it through the broker).
#[tokio::test]
async fn every_api_node_of_a_cluster_hears_each_event_once() {
    if std::env::var("TEST_AMQP_URL").map_or(true, |url| url.is_empty()) {
        eprintln!("no TEST_AMQP_URL: in-process, only the publishing node hears its events");
        return;
    }
    let a = node(None).spawn().await;
    let b = node(Some(&a)).env("BASALT_ROLE", "api").spawn().await;
    for app in [&a, &b] {
        tokio::time::timeout(Duration::from_secs(10), app.platform.events.live_ready())
            .await
            .expect("the node hears live events");
    }
    let mut on_a = a.platform.events.listen(&["test.article_published"]);
    let mut on_b = b.platform.events.listen(&["test.article_published"]);

    let first = Event::new("test.article_published", &json!({ "title": "one" }));
    let ignored = Event::new("test.comment_added", &json!({}));
    record(&a, &[&first, &ignored]).await;
    assert_eq!(*next(&mut on_a).await, first);
    assert_eq!(*next(&mut on_b).await, first);

    // Published again, as after a relay that died before marking it: still
    // heard once.
    basalt_platform::with_conn!(&a.platform.db, |conn| {
        sqlx::query("UPDATE platform_outbox SET published_at_ms = NULL WHERE id = $1")
            .bind(first.id)
            .execute(conn)
            .await
            .map(|_| ())
    })
    .expect("reset");
    let second = Event::new("test.article_published", &json!({ "title": "two" }));
    record(&a, &[&second]).await;
    assert_eq!(next(&mut on_a).await.id, second.id);
    assert_eq!(next(&mut on_b).await.id, second.id);
    nothing_more(&mut on_a).await;
    nothing_more(&mut on_b).await;
}
