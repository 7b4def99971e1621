//! `/api/articles…`: lists, feed, CRUD and favourites.

use basalt_platform::events::Event;

use crate::events::{ARTICLE_DELETED, ARTICLE_PUBLISHED, ARTICLE_UPDATED, ArticleChanged};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::BlogError;
use crate::extract::{RwJson, RwPath, RwQuery, SignedIn, Viewer};
use crate::model::Article;
use crate::pages::{self, FlagIds};
use crate::render::MAX_MARKDOWN_BYTES;
use crate::service::Blog;
use crate::slug::{slugify, with_suffix};
use crate::store::{self, ArticleFilter, InsertError, NewArticle};

/// Largest page a client may ask for.
pub const MAX_LIMIT: i64 = 100;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 20;

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

/// `{"article": …}` out.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleResponse {
    /// The article.
    pub article: Article,
}

/// A page of articles.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArticlesResponse {
    /// The page (no bodies).
    pub articles: Vec<Article>,
    /// How many articles match in total.
    pub articles_count: i64,
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

fn paging(limit: Option<&str>, offset: Option<&str>) -> Result<(i64, i64), BlogError> {
    let mut errors = Vec::new();
    let limit = match limit.map(str::parse::<i64>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            errors.push((
                "limit".to_owned(),
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            ));
            0
        }
    };
    let offset = match offset.map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) if (0..=1_000_000_000).contains(&n) => n,
        Some(_) => {
            errors.push((
                "offset".to_owned(),
                "must be a whole number, 0 or more".to_owned(),
            ));
            0
        }
    };
    if errors.is_empty() {
        Ok((limit, offset))
    } else {
        Err(BlogError::Invalid(errors))
    }
}

/// Recent articles, optionally filtered.
#[utoipa::path(get, path = "/api/articles", tag = "realworld", params(ListQuery),
    responses((status = 200, body = ArticlesResponse), (status = 422, description = "Bad limit or offset")),
    security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_articles(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwQuery(q): RwQuery<ListQuery>,
) -> Result<Response, BlogError> {
    let (limit, offset) = paging(q.limit.as_deref(), q.offset.as_deref())?;
    let page = async {
        let mut filter = ArticleFilter {
            tag: q.tag.clone(),
            ..ArticleFilter::default()
        };
        // An unknown author or favouriting user matches nothing.
        let nobody = Uuid::nil();
        if let Some(author) = &q.author {
            filter.author = Some(
                blog.identity
                    .user_by_username(author)
                    .await?
                    .map_or(nobody, |u| u.id),
            );
        }
        if let Some(user) = &q.favorited {
            filter.favorited_by = Some(
                blog.identity
                    .user_by_username(user)
                    .await?
                    .map_or(nobody, |u| u.id),
            );
        }
        let rows = store::list(&blog.db, None, &filter, limit, offset).await?;
        // The total is shared by every page of the filter: cached under the
        // same generation as the pages, so it is fresh after every write.
        let filter_key =
            serde_json::to_string(&(&q.tag, &q.author, &q.favorited)).unwrap_or_default();
        let total = blog
            .cached(&format!("count:{filter_key}"), async {
                Ok::<_, BlogError>(store::count(&blog.db, &filter).await?)
            })
            .await?;
        let mut ids = FlagIds::default();
        for row in &rows {
            ids.push(row.id, row.author_id);
        }
        let page = ArticlesResponse {
            articles: blog.articles(rows, false).await?,
            articles_count: serde_json::from_slice(&total)
                .map_err(|e| BlogError::Internal(e.into()))?,
        };
        Ok::<_, BlogError>((page, ids))
    };
    // One cached page for every viewer; see `pages`.
    let key = serde_json::to_string(&(&q.tag, &q.author, &q.favorited, limit, offset))
        .unwrap_or_default();
    let bytes = pages::for_viewer(&blog, viewer.id(), &format!("articles:{key}"), page).await?;
    Ok(json_bytes(bytes))
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
) -> Result<Json<ArticlesResponse>, BlogError> {
    let (limit, offset) = paging(q.limit.as_deref(), q.offset.as_deref())?;
    let (rows, total) = store::feed(&blog.db, who.user_id, limit, offset).await?;
    Ok(Json(ArticlesResponse {
        articles: blog.articles(rows, false).await?,
        articles_count: total,
    }))
}

/// One article.
#[utoipa::path(get, path = "/api/articles/{slug}", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleResponse), (status = 404)), security((), ("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn get_article(
    State(blog): State<Blog>,
    viewer: Viewer,
    RwPath(slug): RwPath<String>,
) -> Result<Response, BlogError> {
    // Cached like the lists (see `pages`); a missing article is not cached.
    let article = async {
        let row = store::by_slug(&blog.db, None, &slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?;
        let mut ids = FlagIds::default();
        ids.push(row.id, row.author_id);
        let article = blog.articles(vec![row], true).await?.remove(0);
        Ok::<_, BlogError>((ArticleResponse { article }, ids))
    };
    let bytes = pages::for_viewer(&blog, viewer.id(), &format!("article:{slug}"), article).await?;
    Ok(json_bytes(bytes))
}

fn required(field: &str, value: &str, max_chars: usize, errors: &mut Vec<(String, String)>) {
    if value.trim().is_empty() {
        errors.push((field.to_owned(), "can't be blank".to_owned()));
    } else if value.chars().count() > max_chars {
        errors.push((
            field.to_owned(),
            format!("must be at most {max_chars} characters"),
        ));
    }
}

/// Titles, descriptions and tags are single lines: no control characters
/// (the body, Markdown, keeps its newlines and tabs).
fn single_line(field: &str, value: &str, errors: &mut Vec<(String, String)>) {
    if value.chars().any(char::is_control) {
        errors.push((
            field.to_owned(),
            "must not contain control characters".to_owned(),
        ));
    }
}

/// Bodies are bounded in bytes, which bounds the work of rendering them
/// (see [`MAX_MARKDOWN_BYTES`]).
fn body_size(body: &str, errors: &mut Vec<(String, String)>) {
    if body.len() > MAX_MARKDOWN_BYTES {
        errors.push((
            "body".to_owned(),
            format!("must be at most {} KiB", MAX_MARKDOWN_BYTES / 1024),
        ));
    }
}

/// Tags: trimmed, non-empty, at most 50 characters and 20 per article;
/// sorted and de-duplicated.
fn clean_tags(tags: Option<Vec<String>>, errors: &mut Vec<(String, String)>) -> Vec<String> {
    let mut tags: Vec<String> = tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    if tags.len() > 20 {
        errors.push(("tagList".to_owned(), "must have at most 20 tags".to_owned()));
    }
    if tags.iter().any(|t| t.chars().any(char::is_control)) {
        errors.push((
            "tagList".to_owned(),
            "tags must not contain control characters".to_owned(),
        ));
    }
    if tags.iter().any(|t| t.chars().count() > 50) {
        errors.push((
            "tagList".to_owned(),
            "tags must be at most 50 characters".to_owned(),
        ));
    }
    tags
}

/// A slug not in use yet: the title's, or with a random suffix.
async fn free_slug(blog: &Blog, title: &str) -> Result<String, BlogError> {
    let base = slugify(title);
    if !store::slug_taken(&blog.db, &base).await? {
        return Ok(base);
    }
    Ok(with_suffix(&base))
}

/// Creates an article.
#[utoipa::path(post, path = "/api/articles", tag = "realworld", request_body = Wrapped<NewArticleBody>,
    responses((status = 201, body = ArticleResponse), (status = 401), (status = 422)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn create_article(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwJson(body): RwJson<Wrapped<NewArticleBody>>,
) -> Result<(StatusCode, Json<ArticleResponse>), BlogError> {
    let a = body.article;
    let mut errors = Vec::new();
    required("title", &a.title, 300, &mut errors);
    required("description", &a.description, 1000, &mut errors);
    single_line("title", &a.title, &mut errors);
    single_line("description", &a.description, &mut errors);
    required("body", &a.body, usize::MAX, &mut errors);
    body_size(&a.body, &mut errors);
    let tags = clean_tags(a.tag_list, &mut errors);
    if !errors.is_empty() {
        return Err(BlogError::Invalid(errors));
    }
    let mut article = NewArticle {
        id: Uuid::now_v7(),
        slug: free_slug(&blog, &a.title).await?,
        title: a.title.trim().to_owned(),
        description: a.description.trim().to_owned(),
        body: a.body,
        tags,
        author_id: who.user_id,
        now: Utc::now(),
    };
    // Two articles racing for one slug: the loser takes a suffixed one.
    for _ in 0..5 {
        let published = Event::new(
            ARTICLE_PUBLISHED,
            &ArticleChanged {
                article_id: article.id,
                slug: article.slug.clone(),
                title: article.title.clone(),
                author_id: article.author_id,
            },
        );
        match store::insert(&blog.db, &article, &published).await {
            Ok(()) => {
                blog.events.wake();
                blog.invalidate().await;
                let created = blog.article(Some(who.user_id), &article.slug).await?;
                return Ok((
                    StatusCode::CREATED,
                    Json(ArticleResponse { article: created }),
                ));
            }
            Err(InsertError::SlugTaken) => article.slug = with_suffix(&slugify(&article.title)),
            Err(InsertError::Database(e)) => return Err(e.into()),
        }
    }
    Err(BlogError::Internal(anyhow::anyhow!(
        "no free slug after 5 tries"
    )))
}

/// The article behind `slug` if the caller wrote it: 404, then 403.
async fn own_article(blog: &Blog, who: Uuid, slug: &str) -> Result<store::ArticleRow, BlogError> {
    let row = store::by_slug(&blog.db, Some(who), slug)
        .await?
        .ok_or(BlogError::NotFound("article"))?;
    if row.author_id != who {
        return Err(BlogError::Forbidden);
    }
    Ok(row)
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
) -> Result<Json<ArticleResponse>, BlogError> {
    let row = own_article(&blog, who.user_id, &slug).await?;
    let changes = body.article;
    let mut errors = Vec::new();
    let title = changes
        .title
        .map_or(row.title.clone(), |t| t.trim().to_owned());
    let description = changes
        .description
        .map_or(row.description.clone(), |d| d.trim().to_owned());
    let text = changes.body.unwrap_or(row.body.clone());
    required("title", &title, 300, &mut errors);
    required("description", &description, 1000, &mut errors);
    single_line("title", &title, &mut errors);
    single_line("description", &description, &mut errors);
    required("body", &text, usize::MAX, &mut errors);
    body_size(&text, &mut errors);
    if !errors.is_empty() {
        return Err(BlogError::Invalid(errors));
    }
    let mut new_slug = if changes.regenerate_slug && slugify(&title) != row.slug {
        free_slug(&blog, &title).await?
    } else {
        row.slug.clone()
    };
    for _ in 0..5 {
        let updated = Event::new(
            ARTICLE_UPDATED,
            &ArticleChanged {
                article_id: row.id,
                slug: new_slug.clone(),
                title: title.clone(),
                author_id: row.author_id,
            },
        );
        match store::update(
            &blog.db,
            row.id,
            &new_slug,
            &title,
            &description,
            &text,
            Utc::now(),
            &updated,
        )
        .await
        {
            Ok(()) => {
                blog.events.wake();
                blog.invalidate().await;
                return Ok(Json(ArticleResponse {
                    article: blog.article(Some(who.user_id), &new_slug).await?,
                }));
            }
            Err(InsertError::SlugTaken) => new_slug = with_suffix(&slugify(&title)),
            Err(InsertError::Database(e)) => return Err(e.into()),
        }
    }
    Err(BlogError::Internal(anyhow::anyhow!(
        "no free slug after 5 tries"
    )))
}

/// Deletes an article (its author only).
#[utoipa::path(delete, path = "/api/articles/{slug}", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn delete_article(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
) -> Result<StatusCode, BlogError> {
    let row = own_article(&blog, who.user_id, &slug).await?;
    let deleted = Event::new(
        ARTICLE_DELETED,
        &ArticleChanged {
            article_id: row.id,
            slug: row.slug.clone(),
            title: row.title.clone(),
            author_id: row.author_id,
        },
    );
    store::delete(&blog.db, row.id, &deleted).await?;
    blog.events.wake();
    blog.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Favourites an article (idempotent).
#[utoipa::path(post, path = "/api/articles/{slug}/favorite", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleResponse), (status = 401), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn favorite(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
) -> Result<Json<ArticleResponse>, BlogError> {
    let row = store::by_slug(&blog.db, None, &slug)
        .await?
        .ok_or(BlogError::NotFound("article"))?;
    store::favorite(&blog.db, who.user_id, row.id, Utc::now()).await?;
    blog.invalidate().await;
    Ok(Json(ArticleResponse {
        article: blog.article(Some(who.user_id), &slug).await?,
    }))
}

/// Removes a favourite (idempotent).
#[utoipa::path(delete, path = "/api/articles/{slug}/favorite", tag = "realworld", params(("slug" = String, Path)),
    responses((status = 200, body = ArticleResponse), (status = 401), (status = 404)), security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn unfavorite(
    State(blog): State<Blog>,
    SignedIn(who): SignedIn,
    RwPath(slug): RwPath<String>,
) -> Result<Json<ArticleResponse>, BlogError> {
    let row = store::by_slug(&blog.db, None, &slug)
        .await?
        .ok_or(BlogError::NotFound("article"))?;
    store::unfavorite(&blog.db, who.user_id, row.id).await?;
    blog.invalidate().await;
    Ok(Json(ArticleResponse {
        article: blog.article(Some(who.user_id), &slug).await?,
    }))
}
