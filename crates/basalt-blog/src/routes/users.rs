//! `/api/users`, `/api/users/login`, `/api/user`: RealWorld accounts, which
//! are identity accounts (one table, one password policy, one token format).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use basalt_identity::model::Role;
use basalt_identity::service::{ProfileChanges, Registration};
use basalt_platform::Problem;
use basalt_platform::http::context::RequestContext;
use basalt_platform::ratelimit::Quota;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::BlogError;
use crate::extract::{RwJson, SignedIn};
use crate::model::User;
use crate::service::Blog;

/// `{"user": …}` in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Wrapped<T> {
    /// The payload.
    pub user: T,
}

/// Sign-up fields.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    /// Username.
    #[schema(min_length = 3, max_length = 32)]
    pub username: String,
    /// Email.
    #[schema(max_length = 254)]
    pub email: String,
    /// Password: 8 to 128 characters, not a common one.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// Sign-in fields.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginUser {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Profile changes; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUser {
    /// New email.
    #[schema(max_length = 254)]
    pub email: Option<String>,
    /// New username.
    #[schema(min_length = 3, max_length = 32)]
    pub username: Option<String>,
    /// New password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// New biography.
    #[schema(max_length = 10000)]
    pub bio: Option<String>,
    /// New avatar URL.
    pub image: Option<String>,
}

/// `{"user": …}` out.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// The user.
    pub user: User,
}

fn user_json(u: basalt_identity::model::User, token: String) -> UserResponse {
    UserResponse {
        user: User {
            email: u.email,
            token,
            username: u.username,
            bio: u.bio,
            image: u.image,
        },
    }
}

/// Registers a user.
#[utoipa::path(post, path = "/api/users", tag = "realworld", request_body = Wrapped<NewUser>,
    responses((status = 201, body = UserResponse), (status = 422, description = "Invalid or taken"),
              (status = 429, description = "Too many sign-ups from this address", body = Problem, content_type = "application/problem+json")))]
pub async fn register(
    State(blog): State<Blog>,
    ctx: RequestContext,
    RwJson(body): RwJson<Wrapped<NewUser>>,
) -> Result<(StatusCode, Json<UserResponse>), BlogError> {
    let quota = Quota::per_hour(blog.identity.config().rate_limits.register_per_ip_per_hour);
    blog.identity
        .limit(
            &format!("register:ip:{}", ctx.ip.as_deref().unwrap_or("unknown")),
            quota,
        )
        .await?;
    let registration = Registration {
        email: body.user.email,
        username: body.user.username,
        password: body.user.password,
        role: Role::User,
    };
    let user = blog.identity.register(registration, &ctx).await?;
    let token = blog.identity.realworld_token(&user).await?;
    Ok((StatusCode::CREATED, Json(user_json(user, token))))
}

/// Signs in.
#[utoipa::path(post, path = "/api/users/login", tag = "realworld", request_body = Wrapped<LoginUser>,
    responses((status = 200, body = UserResponse), (status = 401, description = "Wrong email or password"), (status = 422),
              (status = 429, description = "Too many attempts", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(blog): State<Blog>,
    ctx: RequestContext,
    RwJson(body): RwJson<Wrapped<LoginUser>>,
) -> Result<Json<UserResponse>, BlogError> {
    let (user, token) = blog
        .identity
        .sign_in_for_realworld_token(&body.user.email, &body.user.password, &ctx)
        .await?;
    Ok(Json(user_json(user, token)))
}

/// The current user.
#[utoipa::path(get, path = "/api/user", tag = "realworld",
    responses((status = 200, body = UserResponse), (status = 401)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn current_user(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
) -> Result<Json<UserResponse>, BlogError> {
    let user = blog.identity.user(who.user_id).await?;
    let token = match who.token {
        Some(token) => token,
        None => blog.identity.realworld_token(&user).await?,
    };
    Ok(Json(user_json(user, token)))
}

/// Updates the current user.
#[utoipa::path(put, path = "/api/user", tag = "realworld", request_body = Wrapped<UpdateUser>,
    responses((status = 200, body = UserResponse), (status = 401), (status = 422)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn update_user(
    State(blog): State<Blog>,
    ctx: RequestContext,
    SignedIn(who): SignedIn,
    RwJson(body): RwJson<Wrapped<UpdateUser>>,
) -> Result<Json<UserResponse>, BlogError> {
    let u = body.user;
    let changes = ProfileChanges {
        email: u.email,
        username: u.username,
        bio: u.bio.map(Some),
        image: u.image.map(Some),
        password: u.password,
    };
    let user = blog
        .identity
        .update_profile(who.user_id, changes, &ctx)
        .await?;
    // A password change ends every session and token of the account, the
    // one this request came with included: a fresh one is handed back.
    let token = blog.identity.realworld_token(&user).await?;
    Ok(Json(user_json(user, token)))
}
