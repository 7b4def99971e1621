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

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;

use crate::db::Db;
use crate::error::Problem;
use crate::module::{Readiness, ReadinessCheck};
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
    modules: Arc<[ReadinessCheck]>,
    /// `basalt_ready`, set by every check.
    ready: Gauge,
}

/// The probes' routes; `modules` are the modules' own readiness checks;
/// `ready` is the gauge each readiness check sets.
pub fn routes(
    db: Db,
    redis: Option<Redis>,
    modules: Vec<ReadinessCheck>,
    ready: Gauge,
) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(liveness))
        .routes(routes!(readiness))
        .with_state(Dependencies {
            db,
            redis,
            modules: modules.into(),
            ready,
        })
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
/// only Redis (or a module's optional dependency) is down (every request is
/// still served, from the database, so taking the node out of a load
/// balancer would only make things worse); 503 when the database, or a
/// module's required dependency, is down.
#[utoipa::path(get, path = "/readyz", tag = "platform",
    responses(
        (status = 200, description = "Serving: `ready`, or `degraded` with the failing optional dependency named", body = HealthStatus),
        (status = 503, description = "The database is down", body = Problem, content_type = "application/problem+json"),
    ))]
async fn readiness(State(deps): State<Dependencies>) -> Response {
    let modules = futures_util::future::join_all(deps.modules.iter().map(|check| async move {
        let up = tokio::time::timeout(PING_TIMEOUT, check.is_up())
            .await
            .unwrap_or(false);
        (check, up)
    }));
    let (database, redis, modules) = tokio::join!(
        deps.db.ping(PING_TIMEOUT),
        async {
            match &deps.redis {
                Some(redis) => Some(redis.ping(PING_TIMEOUT).await),
                None => None,
            }
        },
        modules
    );
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
    let mut required_down = Vec::new();
    for (check, up) in modules {
        checks.push(DependencyCheck {
            name: check.name,
            status: state(up),
        });
        if !up && check.readiness == Readiness::Required {
            required_down.push(check.name);
        }
    }
    let unavailable = match database {
        Err(error) => {
            tracing::warn!(error = %error, "readiness: database is down");
            Some("database is unavailable".to_owned())
        }
        Ok(()) if !required_down.is_empty() => {
            tracing::warn!(checks = ?required_down, "readiness: a required dependency is down");
            Some(format!("{} unavailable", required_down.join(", ")))
        }
        Ok(()) => None,
    };
    deps.ready.set(i64::from(unavailable.is_none()));
    if let Some(detail) = unavailable {
        let mut problem = Problem::from_status(StatusCode::SERVICE_UNAVAILABLE, Some(detail));
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
