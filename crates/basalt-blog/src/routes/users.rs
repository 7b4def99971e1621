//! `/api/users`, `/api/users/login`, `/api/user`: RealWorld accounts. The
//! rules are the service's ([`crate::service::users`]); these parse and
//! render.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use basalt_platform::error::RealWorld;
use basalt_platform::http::context::RequestContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::{RwJson, SignedIn};
use crate::model::User;
use crate::service::Blog;
use crate::service::users::{SignUp, UserChanges};

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

/// Registers a user.
#[utoipa::path(post, path = "/api/users", tag = "realworld", request_body = Wrapped<NewUser>,
    responses((status = 201, body = UserResponse), (status = 422, description = "Invalid or taken"),
              (status = 429, description = "Too many sign-ups from this address")))]
pub async fn register(
    State(blog): State<Blog>,
    ctx: RequestContext,
    RwJson(body): RwJson<Wrapped<NewUser>>,
) -> Result<(StatusCode, Json<UserResponse>), RealWorld> {
    let u = body.user;
    let sign_up = SignUp {
        username: u.username,
        email: u.email,
        password: u.password,
    };
    let user = blog.register(sign_up, &ctx).await?;
    Ok((StatusCode::CREATED, Json(UserResponse { user })))
}

/// Signs in.
#[utoipa::path(post, path = "/api/users/login", tag = "realworld", request_body = Wrapped<LoginUser>,
    responses((status = 200, body = UserResponse), (status = 401, description = "Wrong email or password"), (status = 422),
              (status = 429, description = "Too many attempts")))]
pub async fn login(
    State(blog): State<Blog>,
    ctx: RequestContext,
    RwJson(body): RwJson<Wrapped<LoginUser>>,
) -> Result<Json<UserResponse>, RealWorld> {
    let user = blog
        .login(&body.user.email, &body.user.password, &ctx)
        .await?;
    Ok(Json(UserResponse { user }))
}

/// The current user.
#[utoipa::path(get, path = "/api/user", tag = "realworld",
    responses((status = 200, body = UserResponse), (status = 401)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn current_user(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
) -> Result<Json<UserResponse>, RealWorld> {
    let user = blog.current_user(who.user_id, who.token).await?;
    Ok(Json(UserResponse { user }))
}

/// Updates the current user.
#[utoipa::path(put, path = "/api/user", tag = "realworld", request_body = Wrapped<UpdateUser>,
    responses((status = 200, body = UserResponse), (status = 401), (status = 422)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn update_user(
    State(blog): State<Blog>,
    ctx: RequestContext,
    SignedIn(who): SignedIn,
    RwJson(body): RwJson<Wrapped<UpdateUser>>,
) -> Result<Json<UserResponse>, RealWorld> {
    let u = body.user;
    let changes = UserChanges {
        email: u.email,
        username: u.username,
        password: u.password,
        bio: u.bio,
        image: u.image,
    };
    let user = blog.update_user(who.user_id, changes, &ctx).await?;
    Ok(Json(UserResponse { user }))
}
