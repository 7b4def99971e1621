//! `/api/articles/{slug}/comments…`. The rules are the service's
//! ([`crate::service::comments`]); these parse and render.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use basalt_platform::error::RealWorld;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::{RwJson, RwPath, SignedIn, Viewer};
use crate::model::Comment;
use crate::service::Blog;

/// `{"comment": {"body": …}}` in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewCommentBody {
    /// The comment.
    pub comment: NewComment,
}

/// A new comment.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewComment {
    /// Text, not blank.
    #[schema(min_length = 1)]
    pub body: String,
}

/// `{"comment": …}` out.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentResponse {
    /// The comment.
    pub comment: Comment,
}

/// `{"comments": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommentsResponse {
    /// Oldest first.
    pub comments: Vec<Comment>,
}

/// An article's comments.
#[utoipa::path(get, path = "/api/articles/{slug}/comments", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = CommentsResponse), (status = 404)), security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_comments(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwPath(slug): RwPath<String>,
) -> Result<Json<CommentsResponse>, RealWorld> {
    let comments = blog.list_comments(viewer.id(), &slug).await?;
    Ok(Json(CommentsResponse { comments }))
}

/// Comments on an article.
#[utoipa::path(post, path = "/api/articles/{slug}/comments", tag = "realworld", params(("slug" = String, Path)),
    request_body = NewCommentBody,
    responses((status = 200, body = CommentResponse), (status = 401), (status = 404), (status = 422)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn add_comment(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
    RwJson(body): RwJson<NewCommentBody>,
) -> Result<Json<CommentResponse>, RealWorld> {
    let comment = blog
        .add_comment(who.user_id, &slug, body.comment.body)
        .await?;
    Ok(Json(CommentResponse { comment }))
}

/// Deletes a comment (its author only).
#[utoipa::path(delete, path = "/api/articles/{slug}/comments/{id}", tag = "realworld",
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn delete_comment(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath((slug, id)): RwPath<(String, String)>,
) -> Result<StatusCode, RealWorld> {
    blog.delete_comment(who.user_id, &slug, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
