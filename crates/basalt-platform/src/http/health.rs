//! Liveness and readiness probes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::Db;
use crate::error::Problem;

/// How long readiness waits for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Body of a successful probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` or `ready`.
    pub status: &'static str,
    /// Each dependency checked and its state (`up`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<DependencyCheck>,
}

/// One dependency's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyCheck {
    /// Dependency name, e.g. `database`.
    pub name: &'static str,
    /// `up` or `down`.
    pub status: &'static str,
}

/// The probes' routes.
pub fn routes(db: Db) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(liveness))
        .routes(routes!(readiness))
        .with_state(db)
}

/// Liveness: the process is up and serving. Does no I/O.
#[utoipa::path(get, path = "/healthz", tag = "platform",
    responses((status = 200, description = "The process is alive", body = HealthStatus)))]
async fn liveness() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok",
        checks: Vec::new(),
    })
}

/// Readiness: every dependency answers; 503 naming the one that does not.
#[utoipa::path(get, path = "/readyz", tag = "platform",
    responses(
        (status = 200, description = "Ready to serve", body = HealthStatus),
        (status = 503, description = "A dependency is down", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readiness(State(db): State<Db>) -> Response {
    match db.ping(PING_TIMEOUT).await {
        Ok(()) => Json(HealthStatus {
            status: "ready",
            checks: vec![DependencyCheck {
                name: "database",
                status: "up",
            }],
        })
        .into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "readiness: database is down");
            let mut problem = Problem::from_status(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("database is unavailable".into()),
            );
            problem.extensions.insert(
                "checks".into(),
                serde_json::json!([{ "name": "database", "status": "down" }]),
            );
            problem.into_response()
        }
    }
}
