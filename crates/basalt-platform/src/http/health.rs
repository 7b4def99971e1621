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
use crate::redis::Redis;

/// How long readiness waits for the database.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Body of a successful probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` (liveness), `ready`, or `degraded`: serving, with an optional
    /// dependency (Redis) down.
    pub status: &'static str,
    /// Each dependency checked and its state (`up` or `down`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<DependencyCheck>,
}

/// One dependency's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DependencyCheck {
    /// Dependency name, e.g. `database`.
    pub name: &'static str,
    /// `up` or `down`.
    pub status: &'static str,
}

/// What readiness checks.
#[derive(Clone)]
struct Dependencies {
    db: Db,
    redis: Option<Redis>,
}

/// The probes' routes.
pub fn routes(db: Db, redis: Option<Redis>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(liveness))
        .routes(routes!(readiness))
        .with_state(Dependencies { db, redis })
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

/// Readiness: 200 `ready` when every dependency answers; 200 `degraded` when
/// only Redis is down (every request is still served, from the database, so
/// taking the node out of a load balancer would only make things worse);
/// 503 when the database is down.
#[utoipa::path(get, path = "/readyz", tag = "platform",
    responses(
        (status = 200, description = "Serving: `ready`, or `degraded` with the failing optional dependency named", body = HealthStatus),
        (status = 503, description = "The database is down", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readiness(State(deps): State<Dependencies>) -> Response {
    let (database, redis) = tokio::join!(deps.db.ping(PING_TIMEOUT), async {
        match &deps.redis {
            Some(redis) => Some(redis.ping(PING_TIMEOUT).await),
            None => None,
        }
    });
    let state = |up: bool| if up { "up" } else { "down" };
    let mut checks = vec![DependencyCheck {
        name: "database",
        status: state(database.is_ok()),
    }];
    if let Some(up) = redis {
        checks.push(DependencyCheck {
            name: "redis",
            status: state(up),
        });
    }
    if let Err(error) = database {
        tracing::warn!(error = %error, "readiness: database is down");
        let mut problem = Problem::from_status(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("database is unavailable".into()),
        );
        problem
            .extensions
            .insert("checks".into(), serde_json::json!(checks));
        return problem.into_response();
    }
    let degraded = checks.iter().any(|c| c.status == "down");
    Json(HealthStatus {
        status: if degraded { "degraded" } else { "ready" },
        checks,
    })
    .into_response()
}
