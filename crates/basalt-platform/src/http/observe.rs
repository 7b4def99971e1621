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

/// Middleware: runs the request inside a span carrying its id, then logs and
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
    let span = tracing::info_span!("request", request_id = %id);
    let response = next.run(request).instrument(span.clone()).await;
    metrics.http_in_flight.dec();

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
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
