//! `/api/profiles/{username}` and following.

use basalt_platform::events::Event;

use crate::events::{FOLLOWED, Followed};
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::BlogError;
use crate::extract::{RwPath, SignedIn, Viewer};
use crate::model::Profile;
use crate::service::Blog;
use crate::store;

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
) -> Result<Json<ProfileResponse>, BlogError> {
    let (_, profile) = blog.profile(viewer.id(), &username).await?;
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
) -> Result<Json<ProfileResponse>, BlogError> {
    let (id, mut profile) = blog.profile(Some(who.user_id), &username).await?;
    if id == who.user_id {
        return Err(BlogError::invalid("profile", "you cannot follow yourself"));
    }
    let followed = Event::new(
        FOLLOWED,
        &Followed {
            follower_id: who.user_id,
            followee_id: id,
        },
    );
    store::follow(&blog.db, who.user_id, id, chrono::Utc::now(), &followed).await?;
    blog.events.wake();
    profile.following = true;
    Ok(Json(ProfileResponse { profile }))
}

/// Unfollows a user.
#[utoipa::path(delete, path = "/api/profiles/{username}/follow", tag = "realworld", params(("username" = String, Path)),
    responses((status = 200, body = ProfileResponse), (status = 401), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn unfollow(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(username): RwPath<String>,
) -> Result<Json<ProfileResponse>, BlogError> {
    let (id, mut profile) = blog.profile(Some(who.user_id), &username).await?;
    store::unfollow(&blog.db, who.user_id, id).await?;
    profile.following = false;
    Ok(Json(ProfileResponse { profile }))
}
