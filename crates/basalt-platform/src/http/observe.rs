//! One structured log line and the request metrics for every request.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::client_addr::ClientAddr;
use super::request_id::RequestId;
use crate::metrics::{HttpLabels, Metrics};
use crate::telemetry;

/// Middleware: runs the request inside a span carrying its id (with traces
/// on, the request's server span: see [`server_span`]), then logs and
/// counts it. Only the path is logged, never the query string (it may carry
/// tokens).
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    // The client as the trusted proxies report it (the TCP peer without any).
    let client = ClientAddr::of(request.extensions()).map(|c| c.ip.to_string());

    metrics.http_in_flight.inc();
    let span = if telemetry::tracing_enabled() {
        server_span(&request, &id, &route)
    } else {
        tracing::info_span!("request", request_id = %id)
    };
    let response = next.run(request).instrument(span.clone()).await;
    metrics.http_in_flight.dec();

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    if telemetry::tracing_enabled() {
        span.record("http.response.status_code", status);
        // Server spans fail on 5xx only: a 4xx is the client's error.
        if status >= 500 {
            span.record("otel.status_code", "error");
        }
    }
    metrics.observe_request(
        HttpLabels {
            method: method.to_string(),
            route: route.clone(),
            status,
        },
        elapsed.as_secs_f64(),
    );
    span.in_scope(|| {
        tracing::info!(
            target: "basalt::http",
            method = %method,
            route = %route,
            path = %path,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            client = client.as_deref().unwrap_or("-"),
            "request"
        );
    });
    response
}

/// The OpenTelemetry server span of a request (`GET /api/articles/{slug}`,
/// HTTP semantic conventions), continuing the caller's trace when the
/// request carries a `traceparent` header. Any client may send one, as the
/// W3C standard intends: it decides only which trace the spans join (and
/// a sampled flag, with the default parent-based sampler), never what runs.
fn server_span(request: &Request, id: &str, route: &str) -> tracing::Span {
    let method = request.method().as_str();
    let name = if route == "unmatched" {
        method.to_owned()
    } else {
        format!("{method} {route}")
    };
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        otel.name = name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    telemetry::continue_trace(&span, traceparent);
    span
}
