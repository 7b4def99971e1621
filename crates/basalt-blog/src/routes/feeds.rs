//! `/feeds/articles.atom` and `/feeds/articles.rss`: the newest 20 articles,
//! optionally by tag or author, with their bodies rendered to sanitised HTML.
//! The content is the service's ([`crate::service::feeds`]); these write it
//! as XML.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use basalt_platform::error::RealWorld;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::extract::RwQuery;
use crate::feeds::{
    ATOM_CONTENT_TYPE, FeedEntry, FeedMeta, RSS_CONTENT_TYPE, atom as render_atom,
    rss as render_rss,
};
use crate::service::Blog;
use crate::service::feeds::FeedFilter;

/// Feed filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only by this author (username).
    pub author: Option<String>,
}

/// The feed served at `path`.
async fn build(
    blog: &Blog,
    q: FeedQuery,
    headers: &HeaderMap,
    path: &str,
) -> Result<(FeedMeta, Vec<FeedEntry>), RealWorld> {
    let filter = FeedFilter {
        tag: q.tag,
        author: q.author,
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    Ok(blog.syndication_feed(&filter, host, path).await?)
}

/// Atom 1.0 feed of the newest articles.
#[utoipa::path(get, path = "/feeds/articles.atom", tag = "feeds", params(FeedQuery),
    responses((status = 200, description = "Atom feed", content_type = "application/atom+xml")))]
pub async fn atom(
    State(blog): State<Blog>,
    headers: HeaderMap,
    RwQuery(q): RwQuery<FeedQuery>,
) -> Result<Response, RealWorld> {
    let (meta, entries) = build(&blog, q, &headers, "/feeds/articles.atom").await?;
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
) -> Result<Response, RealWorld> {
    let (meta, entries) = build(&blog, q, &headers, "/feeds/articles.rss").await?;
    Ok((
        [(header::CONTENT_TYPE, RSS_CONTENT_TYPE)],
        render_rss(&meta, &entries),
    )
        .into_response())
}
