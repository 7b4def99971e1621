//! The Atom and RSS feeds' content: the newest articles, optionally by tag
//! or author, with links to the site and bodies rendered to sanitised HTML.
//! Writing the XML is [`crate::feeds`]' job.

use basalt_markdown::markdown_to_safe_html;
use chrono::Utc;
use uuid::Uuid;

use super::Blog;
use crate::error::BlogError;
use crate::feeds::{FeedEntry, FeedMeta};
use crate::store::{self, ArticleFilter};

/// Entries per feed.
const FEED_SIZE: i64 = 20;

/// Which articles a feed carries.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only by this author (username).
    pub author: Option<String>,
}

/// Where links point: the public URL, or the host the feed was fetched from.
fn site_url(blog: &Blog, host: Option<&str>) -> String {
    if let Some(url) = &blog.identity.web().public_url {
        return url.clone();
    }
    let host = host.unwrap_or("localhost");
    let scheme = if blog.identity.web().https {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

impl Blog {
    /// The newest articles matching `q`, with their bodies rendered to
    /// sanitised HTML, for the feed served at `path` from `host` (the
    /// request's `Host`, used when no public URL is configured).
    pub async fn syndication_feed(
        &self,
        q: &FeedFilter,
        host: Option<&str>,
        path: &str,
    ) -> Result<(FeedMeta, Vec<FeedEntry>), BlogError> {
        let blog = self;
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
        let site = site_url(blog, host);
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
}
