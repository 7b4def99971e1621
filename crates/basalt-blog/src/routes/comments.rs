//! `/api/articles/{slug}/comments…`.

use basalt_platform::events::Event;

use crate::events::{COMMENT_ADDED, CommentAdded};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::BlogError;
use crate::extract::{RwJson, RwPath, SignedIn, Viewer};
use crate::model::Comment;
use crate::service::Blog;
use crate::store;

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

async fn article_id(blog: &Blog, slug: &str) -> Result<uuid::Uuid, BlogError> {
    Ok(store::by_slug(&blog.db, None, slug)
        .await?
        .ok_or(BlogError::NotFound("article"))?
        .id)
}

/// An article's comments.
#[utoipa::path(get, path = "/api/articles/{slug}/comments", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = CommentsResponse), (status = 404)), security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_comments(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwPath(slug): RwPath<String>,
) -> Result<Json<CommentsResponse>, BlogError> {
    let id = article_id(&blog, &slug).await?;
    let rows = store::comments(&blog.db, viewer.id(), id).await?;
    Ok(Json(CommentsResponse {
        comments: blog.comments(rows).await?,
    }))
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
) -> Result<Json<CommentResponse>, BlogError> {
    let text = body.comment.body;
    if text.trim().is_empty() {
        return Err(BlogError::invalid("body", "can't be blank"));
    }
    if text.chars().count() > 20_000 {
        return Err(BlogError::invalid(
            "body",
            "must be at most 20000 characters",
        ));
    }
    let article = article_id(&blog, &slug).await?;
    let id = store::add_comment(
        &blog.db,
        article,
        who.user_id,
        &text,
        Utc::now(),
        |comment_id| {
            Event::new(
                COMMENT_ADDED,
                &CommentAdded {
                    article_id: article,
                    comment_id,
                    author_id: who.user_id,
                },
            )
        },
    )
    .await?;
    blog.events.wake();
    let rows = store::comments(&blog.db, Some(who.user_id), article).await?;
    let comment = blog
        .comments(rows.into_iter().filter(|c| c.id == id).collect())
        .await?
        .pop()
        .ok_or(BlogError::NotFound("comment"))?;
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
) -> Result<StatusCode, BlogError> {
    let id: i64 = id.parse().map_err(|_| BlogError::NotFound("comment"))?;
    let article = article_id(&blog, &slug).await?;
    let author = store::comment_author(&blog.db, article, id)
        .await?
        .ok_or(BlogError::NotFound("comment"))?;
    if author != who.user_id {
        return Err(BlogError::Forbidden);
    }
    store::delete_comment(&blog.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
