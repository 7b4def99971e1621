//! Domain events through the transactional outbox: recorded with their
//! change, relayed to consumers (in-process, or RabbitMQ with
//! `TEST_AMQP_URL`), and processed once in effect however often delivered.

use std::time::{Duration, Instant};

use basalt_platform::with_conn;
use basalt_testkit::TestApp;
use basalt_testkit::smtp::{ReceivedMail, SmtpServer};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::blog::sign_up;
use crate::identity::identity_app;

const WAIT: Duration = Duration::from_secs(20);

/// A signed-up RealWorld user.
struct Member {
    email: String,
    username: String,
    token: String,
}

impl Member {
    fn req(&self, app: &TestApp, method: Method, path: &str) -> reqwest::RequestBuilder {
        app.client
            .request(method, app.url(path))
            .header("authorization", format!("Token {}", self.token))
    }

    async fn follow(&self, app: &TestApp, whom: &Member) {
        let r = self
            .req(
                app,
                Method::POST,
                &format!("/api/profiles/{}/follow", whom.username),
            )
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::OK);
    }

    async fn publish(&self, app: &TestApp, title: &str) -> reqwest::Response {
        self.req(app, Method::POST, "/api/articles")
            .json(&json!({ "article": { "title": title, "description": "d", "body": "b" } }))
            .send()
            .await
            .expect("answered")
    }
}

async fn join(app: &TestApp) -> Member {
    let writer = sign_up(app).await;
    Member {
        email: writer.email,
        username: writer.username,
        token: writer.token,
    }
}

/// Confirms `member`'s address through the link mailed at sign-up.
async fn verify(app: &TestApp, smtp: &SmtpServer, member: &Member) {
    let mail = smtp.wait_for_message(&member.email, WAIT).await;
    let start = mail.body.find("token=").expect("a link") + "token=".len();
    let token: String = mail.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let r = app
        .client
        .post(app.url("/api/auth/verify-email"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
}

fn notifications(smtp: &SmtpServer, to: &str) -> Vec<ReceivedMail> {
    smtp.messages()
        .into_iter()
        .filter(|m| m.is_for(to) && m.subject.starts_with("New article by"))
        .collect()
}

async fn outbox_count(app: &TestApp, sql: &'static str) -> i64 {
    with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(conn).await
    })
    .expect("query")
}

async fn wait_until_published(app: &TestApp) {
    let deadline = Instant::now() + WAIT;
    while outbox_count(
        app,
        "SELECT CAST(count(*) AS BIGINT) FROM platform_outbox WHERE published_at_ms IS NULL",
    )
    .await
        > 0
    {
        assert!(Instant::now() < deadline, "the outbox was not relayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mailing_app(smtp: &SmtpServer) -> TestApp {
    identity_app()
        .env("BASALT_SMTP_URL", &smtp.url())
        .env("BASALT_PUBLIC_URL", "https://blog.example.com")
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .spawn()
        .await
}

#[tokio::test]
async fn followers_are_mailed_once_per_article_however_often_the_event_is_delivered() {
    let smtp = SmtpServer::start().await;
    let app = mailing_app(&smtp).await;
    let author = join(&app).await;
    let fan = join(&app).await;
    let lurker = join(&app).await;
    verify(&app, &smtp, &fan).await;
    fan.follow(&app, &author).await;
    lurker.follow(&app, &author).await;

    let r = author.publish(&app, "Hello followers").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let deadline = Instant::now() + WAIT;
    while notifications(&smtp, &fan.email).is_empty() {
        assert!(Instant::now() < deadline, "no notification arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = &notifications(&smtp, &fan.email)[0];
    assert_eq!(
        mail.subject,
        format!("New article by {}: Hello followers", author.username)
    );
    assert!(
        mail.body
            .contains("https://blog.example.com/article/hello-followers"),
        "{}",
        mail.body
    );

    // A relay that crashed after publishing, before recording it: the event
    // goes out again, and the consumer's inbox makes it a no-op.
    with_conn!(&app.platform.db, |conn| {
        sqlx::query("UPDATE platform_outbox SET published_at_ms = NULL WHERE kind = 'blog.article_published'")
            .execute(conn)
            .await
            .map(|done| done.rows_affected())
    })
    .expect("reset");
    wait_until_published(&app).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // time for a duplicate mail job to run
    assert_eq!(notifications(&smtp, &fan.email).len(), 1, "mailed once");
    assert!(
        notifications(&smtp, &lurker.email).is_empty(),
        "unverified addresses get no notifications"
    );
    assert_eq!(
        outbox_count(
            &app,
            "SELECT CAST(count(*) AS BIGINT) FROM platform_inbox WHERE consumer = 'blog.notify_followers'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn each_write_records_exactly_its_events_in_its_own_transaction() {
    let app = identity_app().spawn().await;
    let author = join(&app).await;
    let reader = join(&app).await;
    // Eight articles racing for one slug: the losing inserts roll back, with
    // their events, and are retried under another slug.
    let racing = (0..8).map(|_| author.publish(&app, "Same title"));
    for r in futures_util::future::join_all(racing).await {
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = author
        .req(&app, Method::PUT, "/api/articles/same-title")
        .json(&json!({ "article": { "body": "edited" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    let r = reader
        .req(&app, Method::POST, "/api/articles/same-title/comments")
        .json(&json!({ "comment": { "body": "Nice" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::OK);
    reader.follow(&app, &author).await;
    reader.follow(&app, &author).await; // already following: no new fact
    let r = author
        .req(&app, Method::DELETE, "/api/articles/same-title")
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let kinds: Vec<(String, i64)> = with_conn!(&app.platform.db, |conn| {
        sqlx::query_as(
            "SELECT kind, CAST(count(*) AS BIGINT) FROM platform_outbox GROUP BY kind ORDER BY kind",
        )
        .fetch_all(conn)
        .await
    })
    .expect("query");
    let expected = [
        ("blog.article_deleted", 1),
        ("blog.article_published", 8),
        ("blog.article_updated", 1),
        ("blog.comment_added", 1),
        ("blog.followed", 1),
        ("identity.user_registered", 2),
    ];
    let expected: Vec<(String, i64)> = expected
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect();
    assert_eq!(kinds, expected);
    wait_until_published(&app).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        if metrics.contains("basalt_outbox_pending 0") {
            assert!(metrics.contains("basalt_broker_up 1"), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `jobs.workers = 0` runs no jobs on the node, and nothing more: a node of
/// role `all` still relays the events its writes record.
#[tokio::test]
async fn a_node_with_no_job_workers_still_relays_events() {
    let app = identity_app()
        .configure(|c| c.jobs.workers = 0)
        .spawn()
        .await;
    assert_eq!(app.platform.config.role, basalt_platform::Role::All);
    sign_up(&app).await;
    assert!(
        outbox_count(&app, "SELECT CAST(count(*) AS BIGINT) FROM platform_outbox").await > 0,
        "the sign-up recorded an event"
    );
    wait_until_published(&app).await;
    let live: Vec<String> = app
        .platform
        .supervisor
        .live()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(live.iter().any(|n| n == "events.relay"), "{live:?}");
    assert!(!live.iter().any(|n| n == "jobs.workers"), "{live:?}");
    app.stop().await.expect("stops");
}
