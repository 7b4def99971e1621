//! `GET /metrics`: the Prometheus scrape endpoint, optionally behind a token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Secret;
use crate::db::Db;
use crate::error::ApiError;
use crate::metrics::Metrics;

#[derive(Clone)]
struct MetricsState {
    metrics: Arc<Metrics>,
    db: Db,
    token: Option<Secret>,
}

/// The metrics route.
pub fn routes(metrics: Arc<Metrics>, db: Db, token: Option<Secret>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(scrape))
        .with_state(MetricsState { metrics, db, token })
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", tag = "platform",
    responses(
        (status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "A metrics token is configured and was not given"),
    ),
    security((), ("metrics_token" = [])))]
async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return ApiError::Unauthorized.into_response();
        }
    }
    let body = state.metrics.render(state.db.stats());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Compares without an early exit, so timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
