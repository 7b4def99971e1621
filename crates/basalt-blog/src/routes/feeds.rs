//! `/feeds/articles.atom` and `/feeds/articles.rss`: the newest 20 articles,
//! optionally by tag or author, with their bodies rendered to sanitised HTML.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::BlogError;
use crate::extract::RwQuery;
use crate::feeds::{
    ATOM_CONTENT_TYPE, FeedEntry, FeedMeta, RSS_CONTENT_TYPE, atom as render_atom,
    rss as render_rss,
};
use crate::render::markdown_to_safe_html;
use crate::service::Blog;
use crate::store::{self, ArticleFilter};

/// Entries per feed.
const FEED_SIZE: i64 = 20;

/// Feed filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only by this author (username).
    pub author: Option<String>,
}

/// Where links point: the public URL, or the host the feed was fetched from.
fn site_url(blog: &Blog, headers: &HeaderMap) -> String {
    if let Some(url) = &blog.identity.web().public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if blog.identity.web().https {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

async fn build(
    blog: &Blog,
    q: &FeedQuery,
    headers: &HeaderMap,
    path: &str,
) -> Result<(FeedMeta, Vec<FeedEntry>), BlogError> {
    let mut filter = ArticleFilter {
        tag: q.tag.clone(),
        ..ArticleFilter::default()
    };
    if let Some(author) = &q.author {
        filter.author = Some(
            blog.identity
                .user_by_username(author)
                .await?
                .map_or(Uuid::nil(), |u| u.id),
        );
    }
    let rows = store::newest_with_bodies(&blog.db, &filter, FEED_SIZE).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.author_id).collect();
    let authors = blog.identity.users_by_ids(&ids).await?;
    let site = site_url(blog, headers);
    let mut query = Vec::new();
    if let Some(tag) = &q.tag {
        query.push(format!(
            "tag={}",
            url::form_urlencoded::byte_serialize(tag.as_bytes()).collect::<String>()
        ));
    }
    if let Some(author) = &q.author {
        query.push(format!(
            "author={}",
            url::form_urlencoded::byte_serialize(author.as_bytes()).collect::<String>()
        ));
    }
    let self_url = if query.is_empty() {
        format!("{site}{path}")
    } else {
        format!("{site}{path}?{}", query.join("&"))
    };
    let title = match (&q.tag, &q.author) {
        (Some(tag), _) => format!("Basalt: articles tagged {tag}"),
        (None, Some(author)) => format!("Basalt: articles by {author}"),
        (None, None) => "Basalt: recent articles".to_owned(),
    };
    let entries: Vec<FeedEntry> = rows
        .into_iter()
        .map(|r| FeedEntry {
            link: format!("{site}/article/{}", r.slug),
            author: authors
                .get(&r.author_id)
                .map_or_else(|| "[deleted]".to_owned(), |u| u.username.clone()),
            content_html: markdown_to_safe_html(&r.body),
            tags: serde_json::from_str(&r.tag_list).unwrap_or_default(),
            slug: r.slug,
            title: r.title,
            summary: r.description,
            published: r.created_at,
            updated: r.updated_at,
        })
        .collect();
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or_else(Utc::now);
    let meta = FeedMeta {
        title,
        subtitle: Some("Articles published on Basalt".to_owned()),
        site_url: site,
        self_url,
        updated,
    };
    Ok((meta, entries))
}

/// Atom 1.0 feed of the newest articles.
#[utoipa::path(get, path = "/feeds/articles.atom", tag = "feeds", params(FeedQuery),
    responses((status = 200, description = "Atom feed", content_type = "application/atom+xml")))]
pub async fn atom(
    State(blog): State<Blog>,
    headers: HeaderMap,
    RwQuery(q): RwQuery<FeedQuery>,
) -> Result<Response, BlogError> {
    let (meta, entries) = build(&blog, &q, &headers, "/feeds/articles.atom").await?;
    Ok((
        [(header::CONTENT_TYPE, ATOM_CONTENT_TYPE)],
        render_atom(&meta, &entries),
    )
        .into_response())
}

/// RSS 2.0 feed of the newest articles.
#[utoipa::path(get, path = "/feeds/articles.rss", tag = "feeds", params(FeedQuery),
    responses((status = 200, description = "RSS feed", content_type = "application/rss+xml")))]
pub async fn rss(
    State(blog): State<Blog>,
    headers: HeaderMap,
    RwQuery(q): RwQuery<FeedQuery>,
) -> Result<Response, BlogError> {
    let (meta, entries) = build(&blog, &q, &headers, "/feeds/articles.rss").await?;
    Ok((
        [(header::CONTENT_TYPE, RSS_CONTENT_TYPE)],
        render_rss(&meta, &entries),
    )
        .into_response())
}
