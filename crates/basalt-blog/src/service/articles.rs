//! Articles: lists and the feed (offset pages for REST, keyset pages for
//! GraphQL), reading one or several bodies, writing (validation, slugs
//! and their races, ownership), favourites. Every write records its event
//! in the same transaction, wakes the relay and makes cached pages stale.

use std::collections::HashMap;

use basalt_markdown::{MAX_MARKDOWN_BYTES, markdown_to_safe_html};
use basalt_platform::events::Event;
use chrono::{SubsecRound, Utc};
use uuid::Uuid;

use super::Blog;
use super::connections::{Cursor, Page, PageRequest};
use super::views::{CachedArticle, CachedArticles};
use crate::error::BlogError;
use crate::events::{ARTICLE_DELETED, ARTICLE_PUBLISHED, ARTICLE_UPDATED, ArticleChanged};
use crate::model::{Article, ArticleResponse, ArticlesResponse};
use crate::pages::{self, FlagIds};
use crate::slug::{slugify, with_suffix};
use crate::store::{self, ArticleFilter, ArticleRow, InsertError, NewArticle, ViewerFlags};

/// Largest page a client may ask for.
pub const MAX_LIMIT: i64 = 100;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest offset a client may ask for.
pub const MAX_OFFSET: i64 = 1_000_000_000;
/// How many slugs a write tries before giving up (each race lost takes a
/// new random suffix).
const SLUG_TRIES: usize = 5;

/// A page of a list: how many articles, after how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: i64,
    /// Articles skipped, 0 to [`MAX_OFFSET`].
    pub offset: i64,
}

impl Paging {
    /// Paging from the client's text (query parameters); absent values take
    /// their defaults, anything else out of range is a 422 per field.
    pub fn parse(limit: Option<&str>, offset: Option<&str>) -> Result<Self, BlogError> {
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
            Some(Ok(n)) if (0..=MAX_OFFSET).contains(&n) => n,
            Some(_) => {
                errors.push((
                    "offset".to_owned(),
                    "must be a whole number, 0 or more".to_owned(),
                ));
                0
            }
        };
        if errors.is_empty() {
            Ok(Self { limit, offset })
        } else {
            Err(BlogError::Invalid(errors))
        }
    }
}

/// Which articles a list shows (usernames, as clients send them).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only by this author.
    pub author: Option<String>,
    /// Only favourited by this user.
    pub favorited: Option<String>,
}

/// A new article, as the author wrote it.
#[derive(Debug, Clone)]
pub struct ArticleDraft {
    /// Title: one line, not blank, at most 300 characters.
    pub title: String,
    /// Description: one line, not blank, at most 1000 characters.
    pub description: String,
    /// Markdown body: not blank, at most [`MAX_MARKDOWN_BYTES`].
    pub body: String,
    /// Tags: at most 20, each one line of at most 50 characters.
    pub tags: Option<Vec<String>>,
}

/// Changes to an article; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ArticleChanges {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// Derive a new slug from the (new) title; otherwise the slug stays, so
    /// that links keep working.
    pub regenerate_slug: bool,
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

/// The rules for an article's title, description and body.
fn check_text(title: &str, description: &str, body: &str, errors: &mut Vec<(String, String)>) {
    required("title", title, 300, errors);
    required("description", description, 1000, errors);
    single_line("title", title, errors);
    single_line("description", description, errors);
    required("body", body, usize::MAX, errors);
    body_size(body, errors);
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

fn no_free_slug() -> BlogError {
    BlogError::Internal(anyhow::anyhow!("no free slug after {SLUG_TRIES} tries"))
}

fn changed(kind: &'static str, id: Uuid, slug: &str, title: &str, author: Uuid) -> Event {
    Event::new(
        kind,
        &ArticleChanged {
            article_id: id,
            slug: slug.to_owned(),
            title: title.to_owned(),
            author_id: author,
        },
    )
}

impl Blog {
    /// A slug not in use yet: the title's, or with a random suffix.
    async fn free_slug(&self, title: &str) -> Result<String, BlogError> {
        let base = slugify(title);
        if !store::slug_taken(&self.db, &base).await? {
            return Ok(base);
        }
        Ok(with_suffix(&base))
    }

    /// The article behind `slug` if `who` wrote it: 404, then 403. This is
    /// the ownership rule of updates and deletions.
    async fn own_article(&self, who: Uuid, slug: &str) -> Result<ArticleRow, BlogError> {
        let row = store::by_slug(&self.db, Some(who), slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?;
        if row.author_id != who {
            return Err(BlogError::Forbidden);
        }
        Ok(row)
    }

    /// An account's id by username; an unknown one matches nothing.
    async fn filter_user(&self, username: &str) -> Result<Uuid, BlogError> {
        Ok(self
            .identity
            .user_by_username(username)
            .await?
            .map_or(Uuid::nil(), |u| u.id))
    }

    /// `filter` in account ids; an unknown username matches nothing.
    async fn resolve_filter(&self, filter: &ListFilter) -> Result<ArticleFilter, BlogError> {
        let mut rows_filter = ArticleFilter {
            tag: filter.tag.clone(),
            ..ArticleFilter::default()
        };
        if let Some(author) = &filter.author {
            rows_filter.author = Some(self.filter_user(author).await?);
        }
        if let Some(user) = &filter.favorited {
            rows_filter.favorited_by = Some(self.filter_user(user).await?);
        }
        Ok(rows_filter)
    }

    /// How many articles match `filter` (`rows_filter`, resolved). The total
    /// is shared by every page of the filter, offset or keyset: cached under
    /// the same generation as the pages, so it is fresh after every write.
    async fn filter_total(
        &self,
        filter: &ListFilter,
        rows_filter: &ArticleFilter,
    ) -> Result<i64, BlogError> {
        let ListFilter {
            tag,
            author,
            favorited,
        } = filter;
        let filter_key = serde_json::to_string(&(tag, author, favorited)).unwrap_or_default();
        let total = self
            .cached(&format!("count:{filter_key}"), async {
                Ok::<_, BlogError>(store::count(&self.db, rows_filter).await?)
            })
            .await?;
        serde_json::from_slice(&total).map_err(|e| BlogError::Internal(e.into()))
    }

    /// Recent articles matching `filter`, as `viewer` sees them: the
    /// `{"articles", "articlesCount"}` JSON, ready to send. One cached page
    /// serves every viewer (see [`crate::pages`]).
    pub async fn list_articles(
        &self,
        viewer: Option<Uuid>,
        filter: ListFilter,
        paging: Paging,
    ) -> Result<Vec<u8>, BlogError> {
        let Paging { limit, offset } = paging;
        let page = async {
            let rows_filter = self.resolve_filter(&filter).await?;
            let rows = store::list(&self.db, None, &rows_filter, limit, offset).await?;
            let total = self.filter_total(&filter, &rows_filter).await?;
            let mut ids = FlagIds::default();
            for row in &rows {
                ids.push(row.id, row.author_id);
            }
            let page = ArticlesResponse {
                articles: self.articles(rows, false).await?,
                articles_count: total,
            };
            Ok::<_, BlogError>((page, ids))
        };
        let ListFilter {
            tag,
            author,
            favorited,
        } = &filter;
        let key =
            serde_json::to_string(&(tag, author, favorited, limit, offset)).unwrap_or_default();
        pages::for_viewer(self, viewer, &format!("articles:{key}"), page).await
    }

    /// Articles newest first (same order and filters as GET /api/articles: tag, author username,
    /// favorited-by username; an unknown username matches nothing), keyset-paged.
    ///
    /// A page is cached once for every viewer under its filter, cursor and
    /// size, like the RealWorld pages: its rows, their authors and the
    /// filter's total (see [`super::views`]). A signed-in viewer's flags
    /// come from one indexed statement over the page's ids, as for REST.
    pub async fn article_page(
        &self,
        viewer: Option<Uuid>,
        filter: ListFilter,
        page: PageRequest,
    ) -> Result<Page<Article>, BlogError> {
        let after = page.article_after()?;
        let fetch = page.fetch();
        let ListFilter {
            tag,
            author,
            favorited,
        } = &filter;
        let key =
            serde_json::to_string(&(tag, author, favorited, after, fetch)).unwrap_or_default();
        let cached = self
            .cached(
                &format!("article-page:{key}"),
                Box::pin(async {
                    let rows_filter = self.resolve_filter(&filter).await?;
                    let rows =
                        store::list_after(&self.db, None, &rows_filter, after, fetch).await?;
                    let total = self.filter_total(&filter, &rows_filter).await?;
                    self.cached_articles(rows, total).await
                }),
            )
            .await?;
        let CachedArticles { articles, total } =
            serde_json::from_slice(&cached).map_err(|e| BlogError::Internal(e.into()))?;
        let flags = match viewer {
            Some(viewer) => {
                let ids: Vec<Uuid> = articles.iter().map(CachedArticle::id).collect();
                let authors: Vec<Uuid> = articles.iter().filter_map(|a| a.author().id()).collect();
                store::viewer_flags(&self.db, viewer, &ids, &authors).await?
            }
            None => ViewerFlags::default(),
        };
        let articles = articles.into_iter().map(|a| a.seen_by(&flags)).collect();
        Ok(Page::of(articles, &page, total, |a| Cursor::Article(a.id)))
    }

    /// How many articles are in `who`'s feed. Counting them reads an index
    /// entry per article of every followed author (17,410 for a reader of
    /// the benchmark's), so the total is cached per reader under the blog's
    /// generation: every article written or deleted, and every follow or
    /// unfollow, makes it stale.
    async fn feed_total(&self, who: Uuid) -> Result<i64, BlogError> {
        let total = self
            .cached(&format!("feed-count:{who}"), async {
                Ok::<_, BlogError>(store::feed_count(&self.db, who).await?)
            })
            .await?;
        serde_json::from_slice(&total).map_err(|e| BlogError::Internal(e.into()))
    }

    /// Articles by authors `who` follows, newest first, keyset-paged (same rows as GET /api/articles/feed).
    pub async fn feed_page(
        &self,
        who: Uuid,
        page: PageRequest,
    ) -> Result<Page<Article>, BlogError> {
        let after = page.article_after()?;
        let CachedArticles { articles, total } =
            self.cached_feed(who, after, page.fetch(), 0).await?;
        let articles = articles
            .into_iter()
            .map(CachedArticle::seen_as_read)
            .collect();
        Ok(Page::of(articles, &page, total, |a| Cursor::Article(a.id)))
    }

    /// A page of `who`'s feed (`limit` rows older than `after`, after
    /// skipping `offset`), cached for that reader alone: the rows carry
    /// their flags, and every write that could change them (articles,
    /// favourites, follows, profiles) makes the page stale. Without the
    /// cache a page is an indexed statement (the newest articles, each
    /// checked against the reader's follows) and the authors' profiles.
    async fn cached_feed(
        &self,
        who: Uuid,
        after: Option<Uuid>,
        limit: i64,
        offset: i64,
    ) -> Result<CachedArticles, BlogError> {
        let key = serde_json::to_string(&(who, after, limit, offset)).unwrap_or_default();
        let cached = self
            .cached(
                &format!("feed:{key}"),
                Box::pin(async {
                    let rows = match after {
                        Some(_) => store::feed_after(&self.db, who, after, limit).await?,
                        None => store::feed(&self.db, who, limit, offset).await?,
                    };
                    let total = self.feed_total(who).await?;
                    self.cached_articles(rows, total).await
                }),
            )
            .await?;
        serde_json::from_slice(&cached).map_err(|e| BlogError::Internal(e.into()))
    }

    /// `rows` with their authors (one call to identity), and `total`, as
    /// the page is cached.
    async fn cached_articles(
        &self,
        rows: Vec<ArticleRow>,
        total: i64,
    ) -> Result<CachedArticles, BlogError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.author_id).collect();
        let authors = self.identity.users_by_ids(&ids).await?;
        Ok(CachedArticles {
            articles: rows
                .into_iter()
                .map(|row| CachedArticle::of(row, &authors))
                .collect(),
            total,
        })
    }

    /// Bodies and their sanitised HTML ([`markdown_to_safe_html`]) of these articles, in one statement
    /// (lists carry no body; a GraphQL list that asks for `body` batches them through a DataLoader).
    /// Missing articles are absent from the map.
    pub async fn article_bodies(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (String, String)>, BlogError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let bodies = store::bodies(&self.db, &ids).await?;
        Ok(bodies
            .into_iter()
            .map(|(id, body)| {
                let html = markdown_to_safe_html(&body);
                (id, (body, html))
            })
            .collect())
    }

    /// One article by id as `viewer` sees it, with body (for subscriptions: events carry ids). None if gone.
    pub async fn article_by_id(
        &self,
        viewer: Option<Uuid>,
        id: Uuid,
    ) -> Result<Option<Article>, BlogError> {
        let Some(row) = store::by_id(&self.db, viewer, id).await? else {
            return Ok(None);
        };
        Ok(self.articles(vec![row], true).await?.pop())
    }

    /// Recent articles by authors `who` follows, and how many there are
    /// (cached for that reader, see [`Blog::feed_page`]).
    pub async fn feed(&self, who: Uuid, paging: Paging) -> Result<ArticlesResponse, BlogError> {
        let CachedArticles { articles, total } = self
            .cached_feed(who, None, paging.limit, paging.offset)
            .await?;
        Ok(ArticlesResponse {
            articles: articles
                .into_iter()
                .map(CachedArticle::seen_as_read)
                .collect(),
            articles_count: total,
        })
    }

    /// One article as `viewer` sees it: the `{"article"}` JSON, ready to
    /// send, cached like the lists; a missing article is a 404 (not cached).
    pub async fn get_article(
        &self,
        viewer: Option<Uuid>,
        slug: &str,
    ) -> Result<Vec<u8>, BlogError> {
        let article = async {
            let row = store::by_slug(&self.db, None, slug)
                .await?
                .ok_or(BlogError::NotFound("article"))?;
            let mut ids = FlagIds::default();
            ids.push(row.id, row.author_id);
            let article = self.articles(vec![row], true).await?.remove(0);
            Ok::<_, BlogError>((ArticleResponse { article }, ids))
        };
        pages::for_viewer(self, viewer, &format!("article:{slug}"), article).await
    }

    /// Publishes `draft` by `author`: validated, under the title's slug, or
    /// a suffixed one when that is taken (already, or by a racing article).
    /// One transaction and the author's profile: nothing is read back.
    pub async fn create_article(
        &self,
        author: Uuid,
        draft: ArticleDraft,
    ) -> Result<Article, BlogError> {
        let mut errors = Vec::new();
        check_text(&draft.title, &draft.description, &draft.body, &mut errors);
        let tags = clean_tags(draft.tags, &mut errors);
        if !errors.is_empty() {
            return Err(BlogError::Invalid(errors));
        }
        // The title's own slug first; the insert finds out if it is taken.
        let mut article = NewArticle {
            id: Uuid::now_v7(),
            slug: slugify(&draft.title),
            title: draft.title.trim().to_owned(),
            description: draft.description.trim().to_owned(),
            body: draft.body,
            tags,
            author_id: author,
            now: Utc::now().trunc_subsecs(6),
        };
        // Two articles racing for one slug: the loser takes a suffixed one.
        for _ in 0..SLUG_TRIES {
            let published = changed(
                ARTICLE_PUBLISHED,
                article.id,
                &article.slug,
                &article.title,
                author,
            );
            match store::insert(&self.db, &article, &published).await {
                Ok(()) => {
                    self.events.wake();
                    self.invalidate().await;
                    // What was inserted is what a read would return.
                    return Ok(self
                        .articles(vec![article.into_row()], true)
                        .await?
                        .remove(0));
                }
                Err(InsertError::SlugTaken) => article.slug = with_suffix(&slugify(&article.title)),
                Err(InsertError::Database(e)) => return Err(e.into()),
            }
        }
        Err(no_free_slug())
    }

    /// Applies `changes` to the article behind `slug`, which `who` must
    /// have written (404, then 403); the result is validated like a new one.
    pub async fn update_article(
        &self,
        who: Uuid,
        slug: &str,
        changes: ArticleChanges,
    ) -> Result<Article, BlogError> {
        let row = self.own_article(who, slug).await?;
        let title = changes
            .title
            .map_or(row.title.clone(), |t| t.trim().to_owned());
        let description = changes
            .description
            .map_or(row.description.clone(), |d| d.trim().to_owned());
        let text = changes.body.unwrap_or(row.body.clone());
        let mut errors = Vec::new();
        check_text(&title, &description, &text, &mut errors);
        if !errors.is_empty() {
            return Err(BlogError::Invalid(errors));
        }
        let mut new_slug = if changes.regenerate_slug && slugify(&title) != row.slug {
            self.free_slug(&title).await?
        } else {
            row.slug.clone()
        };
        for _ in 0..SLUG_TRIES {
            let updated = changed(ARTICLE_UPDATED, row.id, &new_slug, &title, row.author_id);
            match store::update(
                &self.db,
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
                    self.events.wake();
                    self.invalidate().await;
                    return self.article(Some(who), &new_slug).await;
                }
                Err(InsertError::SlugTaken) => new_slug = with_suffix(&slugify(&title)),
                Err(InsertError::Database(e)) => return Err(e.into()),
            }
        }
        Err(no_free_slug())
    }

    /// Deletes the article behind `slug`, which `who` must have written
    /// (404, then 403).
    pub async fn delete_article(&self, who: Uuid, slug: &str) -> Result<(), BlogError> {
        let row = self.own_article(who, slug).await?;
        let deleted = changed(
            ARTICLE_DELETED,
            row.id,
            &row.slug,
            &row.title,
            row.author_id,
        );
        store::delete(&self.db, row.id, &deleted).await?;
        self.events.wake();
        self.invalidate().await;
        Ok(())
    }

    /// `who` favourites the article behind `slug` (idempotent).
    pub async fn favorite(&self, who: Uuid, slug: &str) -> Result<Article, BlogError> {
        let row = store::by_slug(&self.db, None, slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?;
        store::favorite(&self.db, who, row.id, Utc::now()).await?;
        self.invalidate().await;
        self.article(Some(who), slug).await
    }

    /// `who` no longer favourites the article behind `slug` (idempotent).
    pub async fn unfavorite(&self, who: Uuid, slug: &str) -> Result<Article, BlogError> {
        let row = store::by_slug(&self.db, None, slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?;
        store::unfavorite(&self.db, who, row.id).await?;
        self.invalidate().await;
        self.article(Some(who), slug).await
    }
}
