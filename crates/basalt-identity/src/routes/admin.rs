//! `/api/admin/*`: for admins only.

use axum::extract::State;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path, Query};
use basalt_platform::jobs::{JobFilter, JobRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::UserBody;
use crate::auth::Admin;
use crate::model::Role;
use crate::model::{AuditQuery, AuditRecord};
use crate::service::IdentityService;
use basalt_platform::http::context::RequestContext;

/// Audit records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditRecord>,
}

/// Jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobRecord>,
}

/// A role to set.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleChange {
    /// `user` or `admin`.
    pub role: Role,
}

/// The audit log of security events.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn audit_log(
    State(service): State<IdentityService>,
    _admin: Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, Failure> {
    Ok(Json(AuditPage {
        records: service.audit_log(&query).await?,
    }))
}

/// Background jobs.
#[utoipa::path(get, path = "/api/admin/jobs", tag = "admin", params(JobFilter),
    responses((status = 200, body = JobPage), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn jobs(
    State(service): State<IdentityService>,
    _admin: Admin,
    Query(filter): Query<JobFilter>,
) -> Result<Json<JobPage>, Failure> {
    Ok(Json(JobPage {
        jobs: service.jobs().list(&filter).await?,
    }))
}

/// Sets a user's role; the user's sessions and tokens end.
#[utoipa::path(put, path = "/api/admin/users/{id}/role", tag = "admin", params(("id" = Uuid, Path)), request_body = RoleChange,
    responses((status = 200, body = UserBody), (status = 404, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn set_role(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<RoleChange>,
) -> Result<Json<UserBody>, Failure> {
    Ok(Json(UserBody {
        user: service.set_role(admin.user_id, id, body.role, &ctx).await?,
    }))
}
