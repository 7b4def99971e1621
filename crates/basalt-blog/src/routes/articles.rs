//! `/api/articles…`: lists, feed, CRUD and favourites. The rules are the
//! service's ([`crate::service::articles`]); these parse and render.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use basalt_platform::error::RealWorld;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::extract::{RwJson, RwPath, RwQuery, SignedIn, Viewer};
use crate::model::{ArticleResponse, ArticlesResponse};
use crate::service::Blog;
use crate::service::articles::{ArticleChanges, ArticleDraft, ListFilter, Paging};

/// `{"article": …}` in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Wrapped<T> {
    /// The payload.
    pub article: T,
}

/// A new article.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewArticleBody {
    /// Title: one line, not blank.
    #[schema(min_length = 1, max_length = 300)]
    pub title: String,
    /// Description: one line, not blank.
    #[schema(min_length = 1, max_length = 1000)]
    pub description: String,
    /// Markdown body, not blank, at most 256 KiB.
    #[schema(min_length = 1)]
    pub body: String,
    /// Tags: at most 20, each at most 50 characters.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tag_list: Option<Vec<String>>,
}

/// Changes; absent fields stay. The slug stays too, so links keep working,
/// unless `regenerateSlug` asks for one from the new title.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateArticleBody {
    /// New title.
    #[schema(min_length = 1, max_length = 300)]
    pub title: Option<String>,
    /// New description.
    #[schema(min_length = 1, max_length = 1000)]
    pub description: Option<String>,
    /// New body.
    #[schema(min_length = 1)]
    pub body: Option<String>,
    /// Derive a new slug from the (new) title (a Basalt extension).
    #[serde(default)]
    pub regenerate_slug: bool,
}

/// List filters and paging; values are parsed here so that a bad one is a
/// 422, not a 400 from the query parser.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only by this author (username).
    pub author: Option<String>,
    /// Only favourited by this user (username).
    pub favorited: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Articles to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub offset: Option<String>,
}

/// Paging parameters only.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Articles to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub offset: Option<String>,
}

/// Recent articles, optionally filtered.
#[utoipa::path(get, path = "/api/articles", tag = "realworld", params(ListQuery),
    responses((status = 200, body = ArticlesResponse), (status = 422, description = "Bad limit or offset")),
    security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_articles(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwQuery(q): RwQuery<ListQuery>,
) -> Result<Response, RealWorld> {
    let paging = Paging::parse(q.limit.as_deref(), q.offset.as_deref())?;
    let filter = ListFilter {
        tag: q.tag,
        author: q.author,
        favorited: q.favorited,
    };
    Ok(json_bytes(
        blog.list_articles(viewer.id(), filter, paging).await?,
    ))
}

/// A JSON response from bytes serialized already.
fn json_bytes(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Recent articles by authors the caller follows.
#[utoipa::path(get, path = "/api/articles/feed", tag = "realworld", params(PageQuery),
    responses((status = 200, body = ArticlesResponse), (status = 401), (status = 422)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn feed(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwQuery(q): RwQuery<PageQuery>,
) -> Result<Json<ArticlesResponse>, RealWorld> {
    let paging = Paging::parse(q.limit.as_deref(), q.offset.as_deref())?;
    Ok(Json(blog.feed(who.user_id, paging).await?))
}

/// One article.
#[utoipa::path(get, path = "/api/articles/{slug}", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleResponse), (status = 404)), security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn get_article(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwPath(slug): RwPath<String>,
) -> Result<Response, RealWorld> {
    Ok(json_bytes(blog.get_article(viewer.id(), &slug).await?))
}

/// Creates an article.
#[utoipa::path(post, path = "/api/articles", tag = "realworld", request_body = Wrapped<NewArticleBody>,
    responses((status = 201, body = ArticleResponse), (status = 401), (status = 422)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn create_article(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwJson(body): RwJson<Wrapped<NewArticleBody>>,
) -> Result<(StatusCode, Json<ArticleResponse>), RealWorld> {
    let a = body.article;
    let draft = ArticleDraft {
        title: a.title,
        description: a.description,
        body: a.body,
        tags: a.tag_list,
    };
    let article = blog.create_article(who.user_id, draft).await?;
    Ok((StatusCode::CREATED, Json(ArticleResponse { article })))
}

/// Updates an article (its author only).
#[utoipa::path(put, path = "/api/articles/{slug}", tag = "realworld", params(("slug" = String, Path)),
    request_body = Wrapped<UpdateArticleBody>,
    responses((status = 200, body = ArticleResponse), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn update_article(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
    RwJson(body): RwJson<Wrapped<UpdateArticleBody>>,
) -> Result<Json<ArticleResponse>, RealWorld> {
    let u = body.article;
    let changes = ArticleChanges {
        title: u.title,
        description: u.description,
        body: u.body,
        regenerate_slug: u.regenerate_slug,
    };
    let article = blog.update_article(who.user_id, &slug, changes).await?;
    Ok(Json(ArticleResponse { article }))
}

/// Deletes an article (its author only).
#[utoipa::path(delete, path = "/api/articles/{slug}", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn delete_article(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
) -> Result<StatusCode, RealWorld> {
    blog.delete_article(who.user_id, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Favourites an article (idempotent).
#[utoipa::path(post, path = "/api/articles/{slug}/favorite", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleResponse), (status = 401), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn favorite(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
) -> Result<Json<ArticleResponse>, RealWorld> {
    let article = blog.favorite(who.user_id, &slug).await?;
    Ok(Json(ArticleResponse { article }))
}

/// Removes a favourite (idempotent).
#[utoipa::path(delete, path = "/api/articles/{slug}/favorite", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleResponse), (status = 401), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn unfavorite(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
) -> Result<Json<ArticleResponse>, RealWorld> {
    let article = blog.unfavorite(who.user_id, &slug).await?;
    Ok(Json(ArticleResponse { article }))
}
