//! `/api/profiles/{username}` and following. The rules are the service's
//! ([`crate::service::profiles`]); these parse and render.

use axum::Json;
use axum::extract::State;
use basalt_platform::error::RealWorld;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::{RwPath, SignedIn, Viewer};
use crate::model::Profile;
use crate::service::Blog;

/// `{"profile": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileResponse {
    /// The profile.
    pub profile: Profile,
}

/// A profile.
#[utoipa::path(get, path = "/api/profiles/{username}", tag = "realworld", params(("username" = String, Path)),
    responses((status = 200, body = ProfileResponse), (status = 404)), security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn get_profile(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwPath(username): RwPath<String>,
) -> Result<Json<ProfileResponse>, RealWorld> {
    let profile = blog.get_profile(viewer.id(), &username).await?;
    Ok(Json(ProfileResponse { profile }))
}

/// Follows a user.
#[utoipa::path(post, path = "/api/profiles/{username}/follow", tag = "realworld", params(("username" = String, Path)),
    responses((status = 200, body = ProfileResponse), (status = 401), (status = 404), (status = 422, description = "Yourself")),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn follow(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(username): RwPath<String>,
) -> Result<Json<ProfileResponse>, RealWorld> {
    let profile = blog.follow(who.user_id, &username).await?;
    Ok(Json(ProfileResponse { profile }))
}

/// Unfollows a user.
#[utoipa::path(delete, path = "/api/profiles/{username}/follow", tag = "realworld", params(("username" = String, Path)),
    responses((status = 200, body = ProfileResponse), (status = 401), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn unfollow(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(username): RwPath<String>,
) -> Result<Json<ProfileResponse>, RealWorld> {
    let profile = blog.unfollow(who.user_id, &username).await?;
    Ok(Json(ProfileResponse { profile }))
}
