//! The middleware stack: request ids, problem+json errors, limits, security
//! headers, CORS and compression.

use basalt_testkit::TestApp;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};
use serde_json::{Value, json};

use crate::{fixture, spawn_app};

async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string());
    body
}

#[tokio::test]
async fn request_id_is_generated_and_echoed() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&id)
            .expect("a uuid")
            .get_version_num(),
        7
    );

    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "client-abc.123")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.headers()["x-request-id"], "client-abc.123");
}

#[tokio::test]
async fn malformed_request_id_is_replaced() {
    let app = spawn_app().await;
    let forged = "x\" injected=\"1";
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", forged)
        .send()
        .await
        .expect("answered");
    let echoed = response.headers()["x-request-id"].to_str().expect("ascii");
    assert_ne!(echoed, forged);
    uuid::Uuid::parse_str(echoed).expect("replaced by a generated uuid");
}

#[tokio::test]
async fn unknown_path_is_a_404_problem() {
    let app = spawn_app().await;
    problem(app.get("/no/such/thing").await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("answered");
    let allow = response.headers()[header::ALLOW]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(allow.contains("GET"), "{allow}");
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn body_over_the_limit_is_a_413_problem() {
    let app = TestApp::builder()
        .module(fixture::NotesModule)
        .configure(|c| c.http.body_limit_bytes = 1024)
        .spawn()
        .await;
    let big = json!({ "title": "x".repeat(2048) });
    let response = app
        .client
        .post(app.url("/api/test-notes"))
        .json(&big)
        .send()
        .await
        .expect("answered");
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // Streamed without Content-Length: still refused once the limit is crossed.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(b"{\"title\":\"".to_vec()),
        Ok(vec![b'y'; 4096]),
        Ok(b"\"}".to_vec()),
    ];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = app
        .client
        .post(app.url("/api/test-notes"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("answered");
    problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;

    // Under the limit it works.
    let response = app
        .client
        .post(app.url("/api/test-notes"))
        .json(&json!({ "title": "small" }))
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn bad_json_is_a_problem_with_detail_not_a_500() {
    let app = spawn_app().await;
    for (body, content_type, status) in [
        ("{not json", "application/json", StatusCode::BAD_REQUEST),
        (
            "{\"title\": 5}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "{\"title\": \"a\"}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "\u{0}\u{1}\u{2}",
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = app
            .client
            .post(app.url("/api/test-notes"))
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("answered");
        let p = problem(response, status).await;
        assert!(p["detail"].is_string(), "{p}");
    }
}

#[tokio::test]
async fn validation_errors_list_fields() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/test-notes"))
        .json(&json!({ "title": "  " }))
        .send()
        .await
        .expect("answered");
    let p = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "title");
}

#[tokio::test]
async fn panics_become_a_500_problem_without_details() {
    let app = spawn_app().await;
    let response = app.get("/api/test-panic").await;
    let p = problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(!p.to_string().contains("secret"), "{p}");
    // The server is still up.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_requests_time_out_with_a_503_problem() {
    let app = TestApp::builder()
        .module(fixture::NotesModule)
        .configure(|c| c.http.request_timeout_secs = 1)
        .spawn()
        .await;
    let response = app.get("/api/test-slow?ms=3000").await;
    let p = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .contains("longer than")
    );
    assert_eq!(
        app.get("/api/test-slow?ms=10").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = spawn_app().await;
    for path in ["/healthz", "/no/such/thing", "/openapi.json", "/metrics"] {
        let response = app.get(path).await;
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP: {path}"
        );
    }
    let csp = app.get("/healthz").await.headers()["content-security-policy"].clone();
    assert_eq!(
        csp,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    );
}

#[tokio::test]
async fn hsts_when_public_url_is_https() {
    let app = TestApp::builder()
        .configure(|c| c.public_url = Some("https://api.example.com".parse().expect("url")))
        .spawn()
        .await;
    let response = app.get("/healthz").await;
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .expect("ascii")
            .starts_with("max-age=")
    );
}

#[tokio::test]
async fn cors_allows_nothing_by_default() {
    let app = spawn_app().await;
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/healthz"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .send()
        .await
        .expect("answered");
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    let response = app
        .client
        .get(app.url("/healthz"))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await
        .expect("answered");
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn cors_allows_exactly_the_listed_origins() {
    let app = TestApp::builder()
        .configure(|c| c.cors_origins = vec![HeaderValue::from_static("https://app.example")])
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/healthz"))
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,x-csrf-token",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.expect("answered");
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert_eq!(
        allowed.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS],
        "true"
    );
    let allowed_headers = allowed.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        allowed_headers.contains("x-csrf-token"),
        "{allowed_headers}"
    );

    let denied = preflight("https://app.example.evil.com")
        .await
        .expect("answered");
    assert!(
        denied
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let simple = app
        .client
        .get(app.url("/healthz"))
        .header(header::ORIGIN, "https://app.example")
        .send()
        .await
        .expect("answered");
    assert_eq!(
        simple.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert!(
        simple.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .expect("ascii")
            .contains("x-request-id")
    );
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let app = spawn_app().await;
    // A client without automatic decompression, to see the wire format.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    let response = raw
        .get(app.url("/openapi.json"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let plain = raw
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("answered");
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    // And the compressed body decodes to the same document.
    let decoded: Value = app.get("/openapi.json").await.json().await.expect("json");
    let original: Value = plain.json().await.expect("json");
    assert_eq!(decoded, original);
}
