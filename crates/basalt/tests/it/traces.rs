//! Traces reach a real OTLP receiver: the `basalt` binary, started with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a small OTLP/HTTP receiver
//! built on the official protobuf definitions (`opentelemetry-proto`), sends
//! one request's spans with their parent/child links intact across the
//! database, the outbox and the event bus (in-process, or RabbitMQ with
//! `TEST_AMQP_URL`, where the context travels as an AMQP header) and the
//! job queue: HTTP → DB, HTTP → outbox publish → event consumer → DB and
//! → mail job.
//!
//! The server runs as a process of its own: the exporter is part of the
//! process-wide subscriber, which the in-process test apps share.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::child_server::ChildServer;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use basalt_platform::config::DatabaseUrl;
use basalt_testkit::smtp::SmtpServer;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_basalt");
const WAIT: Duration = Duration::from_secs(30);

/// A span as received, ids in hex.
#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    attributes: HashMap<String, String>,
    service: String,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf, plain or gzip'd) on
/// a loopback port; it counts the compressed requests.
struct Receiver {
    endpoint: String,
    inbox: Arc<Inbox>,
}

/// What the receiver was sent.
#[derive(Default)]
struct Inbox {
    spans: Mutex<Vec<Received>>,
    gzipped: AtomicUsize,
}

async fn export(
    State(inbox): State<Arc<Inbox>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    if headers
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes() != b"application/x-protobuf")
    {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let body = if gzip {
        let mut plain = Vec::new();
        if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .is_err()
        {
            return (StatusCode::BAD_REQUEST, Vec::new());
        }
        inbox.gzipped.fetch_add(1, Ordering::Relaxed);
        Bytes::from(plain)
    } else {
        body
    };
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut received = inbox.spans.lock().expect("spans");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(text)
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.push(Received {
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent: hex(&span.parent_span_id),
                name: span.name,
                kind: span.kind,
                attributes: span
                    .attributes
                    .iter()
                    .map(|kv| (kv.key.clone(), text(kv)))
                    .collect(),
                service: service.clone(),
            });
        }
    }
    (
        StatusCode::OK,
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

impl Receiver {
    async fn start() -> Self {
        let inbox = Arc::new(Inbox::default());
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(Arc::clone(&inbox));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            endpoint: format!("http://{addr}"),
            inbox,
        }
    }

    fn spans(&self) -> Vec<Received> {
        self.inbox.spans.lock().expect("spans").clone()
    }
}

/// A RealWorld user: signs up, with a token.
async fn sign_up(client: &reqwest::Client, base: &str, name: &str) -> (String, String, String) {
    let n = uuid::Uuid::new_v4().simple().to_string();
    let (email, username) = (
        format!("{name}-{}@example.com", &n[..8]),
        format!("{name}_{}", &n[..8]),
    );
    let r = client
        .post(format!("{base}/api/users"))
        .json(&json!({ "user": {
            "email": email, "username": username, "password": crate::identity::PASSWORD
        } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    let token = body["user"]["token"].as_str().expect("token").to_owned();
    (email, username, token)
}

/// Every span of `trace`.
fn trace_of<'a>(spans: &'a [Received], trace: &str) -> Vec<&'a Received> {
    spans.iter().filter(|s| s.trace_id == trace).collect()
}

fn child_named<'a>(
    spans: &[&'a Received],
    parent: &Received,
    kind: SpanKind,
    prefix: &str,
) -> Option<&'a Received> {
    spans
        .iter()
        .copied()
        .find(|s| s.parent == parent.span_id && s.kind == kind as i32 && s.name.starts_with(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_requests_spans_reach_an_otlp_receiver_linked_across_the_broker_and_the_job_queue() {
    basalt_platform::server::install_crypto_provider();
    let receiver = Receiver::start().await;
    let smtp = SmtpServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (database_url, db_system) =
        match basalt_testkit::fresh_database(&dir.path().join("db")).await {
            DatabaseUrl::Sqlite(url) => (url, "sqlite"),
            DatabaseUrl::Postgres(url) => (url.expose_secret().to_owned(), "postgresql"),
        };
    let prefix = format!("trace-{}", uuid::Uuid::new_v4().simple());
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BASALT_LISTEN", "127.0.0.1:0")
        .env("BASALT_DATABASE_URL", &database_url)
        .env("BASALT_LOG_FORMAT", "json")
        .env("BASALT_SMTP_URL", smtp.url())
        .env("BASALT_JOBS__POLL_INTERVAL_MS", "100")
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_MEMORY_KIB", "1024")
        .env("BASALT_IDENTITY__PASSWORDS__ARGON2_ITERATIONS", "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_SERVICE_NAME", "basalt-under-test")
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        // Nothing is sent before shutdown (unless 512 spans pile up): the
        // spans arriving prove that shutdown flushes the exporter.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000");
    if let Some(redis) = basalt_testkit::redis::shared_redis_url() {
        cmd.env("BASALT_REDIS_URL", redis)
            .env("BASALT_REDIS__KEY_PREFIX", &prefix);
    }
    // With a broker, the consumer runs from a RabbitMQ delivery, and only the
    // message's `traceparent` header can make it part of the request's trace.
    if let Some(amqp) = std::env::var("TEST_AMQP_URL")
        .ok()
        .filter(|s| !s.is_empty())
    {
        cmd.env("BASALT_AMQP_URL", amqp)
            .env("BASALT_EVENTS__AMQP_PREFIX", &prefix);
    }
    let mut server = ChildServer::start(&mut cmd);
    let base = tokio::task::block_in_place(|| server.base_url());
    let client = reqwest::Client::new();

    // A follower with a verified address, so that publishing mails them.
    let (_, author, author_token) = sign_up(&client, &base, "author").await;
    let (fan_email, _, fan_token) = sign_up(&client, &base, "fan").await;
    let mail = smtp.wait_for_message(&fan_email, WAIT).await;
    let start = mail.body.find("token=").expect("a link") + "token=".len();
    let token: String = mail.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let verified = client
        .post(format!("{base}/api/auth/verify-email"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("answered");
    assert_eq!(verified.status(), 200);
    let followed = client
        .post(format!("{base}/api/profiles/{author}/follow"))
        .header("authorization", format!("Token {fan_token}"))
        .send()
        .await
        .expect("answered");
    assert_eq!(followed.status(), 200);
    // Probes are not traced.
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("answered")
            .status(),
        200
    );

    // The request under test joins the caller's trace.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let published = client
        .post(format!("{base}/api/articles"))
        .header("authorization", format!("Token {author_token}"))
        .header("traceparent", format!("00-{trace}-{caller}-01"))
        .json(&json!({ "article": { "title": "Traced", "description": "d", "body": "b" } }))
        .send()
        .await
        .expect("answered");
    assert_eq!(published.status(), 201);
    let deadline = Instant::now() + WAIT;
    while !smtp
        .messages()
        .iter()
        .any(|m| m.is_for(&fan_email) && m.subject.starts_with("New article by"))
    {
        assert!(Instant::now() < deadline, "the follower was not mailed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver.spans().is_empty(),
        "spans were sent before shutdown: the flush at exit is not what is tested"
    );

    let status = tokio::task::block_in_place(|| server.terminate());
    let lines = server.seen.clone();
    assert!(status.success(), "exit status {status:?}");
    let spans = receiver.spans();
    assert!(
        receiver.inbox.gzipped.load(Ordering::Relaxed) > 0,
        "OTEL_EXPORTER_OTLP_COMPRESSION=gzip is honoured"
    );

    // The request's log line names its trace.
    let request_line: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["message"] == "request" && l["route"] == "/api/articles" && l["method"] == "POST"
        })
        .expect("a log line for the request");
    assert_eq!(request_line["trace_id"], trace, "{request_line}");

    let ours = trace_of(&spans, trace);
    let names: Vec<(&str, &str, &str)> = ours
        .iter()
        .map(|s| (s.name.as_str(), s.span_id.as_str(), s.parent.as_str()))
        .collect();
    // HTTP: the server span, a child of the caller's.
    let http = ours
        .iter()
        .copied()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span in {names:?}"));
    assert_eq!(http.name, "POST /api/articles");
    assert_eq!(http.parent, caller, "continues the incoming traceparent");
    assert_eq!(http.attr("http.route"), Some("/api/articles"));
    assert_eq!(http.attr("http.request.method"), Some("POST"));
    assert_eq!(http.attr("http.response.status_code"), Some("201"));
    assert_eq!(http.service, "basalt-under-test");
    // DB: the article's transaction, under the request.
    let db = child_named(&ours, http, SpanKind::Client, "with_tx basalt_blog")
        .unwrap_or_else(|| panic!("no database span under the request: {names:?}"));
    assert_eq!(db.attr("db.system.name"), Some(db_system));
    // The outbox: the relay's publish, a child of the request.
    let publish = child_named(
        &ours,
        http,
        SpanKind::Producer,
        "publish blog.article_published",
    )
    .unwrap_or_else(|| panic!("no publish span under the request: {names:?}"));
    // The event consumer, a child of the publish through the bus (with
    // RabbitMQ: the AMQP header), with its own database work.
    let consumer = child_named(
        &ours,
        publish,
        SpanKind::Consumer,
        "blog.notify_followers blog.article_published",
    )
    .unwrap_or_else(|| panic!("no consumer span under the publish: {names:?}"));
    child_named(&ours, consumer, SpanKind::Client, "with_tx")
        .unwrap_or_else(|| panic!("no database span under the consumer: {names:?}"));
    // The mail job the consumer enqueued, a child of the consumer.
    child_named(
        &ours,
        consumer,
        SpanKind::Consumer,
        "job platform.send_email",
    )
    .unwrap_or_else(|| panic!("no job span under the consumer: {names:?}"));
    // No link is broken: every span's parent arrived too (or is the caller).
    for span in &ours {
        assert!(
            span.parent == caller || ours.iter().any(|p| p.span_id == span.parent),
            "{} has a parent that never arrived: {names:?}",
            span.name
        );
    }

    // A request that enqueues a job itself: the sign-up's verification mail.
    let sign_ups: Vec<&Received> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32 && s.name == "POST /api/users")
        .collect();
    assert_eq!(sign_ups.len(), 2, "one trace per sign-up");
    for sign_up in sign_ups {
        assert!(sign_up.parent.is_empty(), "a sign-up starts its own trace");
        let its = trace_of(&spans, &sign_up.trace_id);
        child_named(&its, sign_up, SpanKind::Client, "with_tx basalt_identity")
            .expect("the sign-up's transaction");
        child_named(&its, sign_up, SpanKind::Consumer, "job identity.send_link")
            .expect("the verification mail's job, in the sign-up's trace");
    }
    // Probes and scrapes are not traced, and no database span is orphaned
    // (the readiness check's query went with its request).
    assert!(
        !spans
            .iter()
            .any(|s| s.attr("http.route") == Some("/readyz")),
        "the readiness probe was traced"
    );
    for span in spans.iter().filter(|s| s.kind == SpanKind::Client as i32) {
        assert!(
            spans.iter().any(|p| p.span_id == span.parent),
            "database span {} without its parent",
            span.name
        );
    }
}
