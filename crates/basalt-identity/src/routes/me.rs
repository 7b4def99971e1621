//! `/api/me`: the caller's own account.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::UserBody;
use crate::auth::{Authenticated, set_session_cookie};
use crate::service::IdentityService;
use crate::service::ProfileChanges;
use basalt_platform::http::context::RequestContext;

/// Profile changes; absent fields stay, an empty `bio`/`image` clears it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMe {
    /// New email (must be confirmed again).
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// New username.
    #[schema(min_length = 3, max_length = 32)]
    pub username: Option<String>,
    /// New biography.
    #[schema(max_length = 10000)]
    pub bio: Option<String>,
    /// New avatar URL.
    pub image: Option<String>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePassword {
    /// The current password.
    pub current_password: String,
    /// The new password: 8 to 128 characters, not a common one.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// After a password change over a session: its replacement's CSRF token.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    /// The new session's CSRF token (absent for token clients).
    pub csrf_token: Option<String>,
}

/// Confirmation for deleting the account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteMe {
    /// The current password.
    pub password: String,
}

/// The caller's account.
#[utoipa::path(get, path = "/api/me", tag = "identity", responses((status = 200, body = UserBody), (status = 401, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn get_me(
    State(service): State<IdentityService>,
    who: Authenticated,
) -> Result<Json<UserBody>, Failure> {
    Ok(Json(UserBody {
        user: service.user(who.user_id).await?,
    }))
}

/// Updates the caller's profile.
#[utoipa::path(patch, path = "/api/me", tag = "identity", request_body = UpdateMe,
    responses((status = 200, body = UserBody), (status = 422, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn update_me(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    who: Authenticated,
    Json(body): Json<UpdateMe>,
) -> Result<Json<UserBody>, Failure> {
    let changes = ProfileChanges {
        email: body.email,
        username: body.username,
        bio: body.bio.map(Some),
        image: body.image.map(Some),
        password: None,
    };
    Ok(Json(UserBody {
        user: service.update_profile(who.user_id, changes, &ctx).await?,
    }))
}

/// Changes the password. Other sessions and all refresh tokens end; a
/// session caller gets a new session id (and CSRF token).
#[utoipa::path(post, path = "/api/me/password", tag = "identity", request_body = ChangePassword,
    responses((status = 200, body = PasswordChanged), (status = 422, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn change_password(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    who: Authenticated,
    Json(body): Json<ChangePassword>,
) -> Result<Response, Failure> {
    let session = who.session().cloned();
    service
        .change_password(
            who.user_id,
            &body.current_password,
            &body.new_password,
            session.as_ref().map(|s| s.id),
            &ctx,
        )
        .await?;
    match session {
        Some(old) => {
            let cookie = service.rotate_session(&old, &ctx).await?;
            let max_age = (cookie.expires_at - chrono::Utc::now()).num_seconds();
            Ok((
                [(
                    header::SET_COOKIE,
                    set_session_cookie(&service, &cookie.token, max_age),
                )],
                Json(PasswordChanged {
                    csrf_token: Some(cookie.csrf_token),
                }),
            )
                .into_response())
        }
        None => Ok(Json(PasswordChanged { csrf_token: None }).into_response()),
    }
}

/// Deletes the caller's account.
#[utoipa::path(delete, path = "/api/me", tag = "identity", request_body = DeleteMe,
    responses((status = 204), (status = 422, description = "Wrong password", body = Problem), (status = 401, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn delete_me(
    State(service): State<IdentityService>,
    ctx: RequestContext,
    who: Authenticated,
    Json(body): Json<DeleteMe>,
) -> Result<Response, Failure> {
    service
        .delete_account(who.user_id, &body.password, &ctx)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            crate::auth::clear_session_cookie(&service),
        )],
    )
        .into_response())
}
