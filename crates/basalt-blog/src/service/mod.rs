//! The blog service: every RealWorld rule, whatever protocol asks. A REST
//! handler (or a GraphQL resolver) parses input, calls one method here and
//! renders the result.
//!
//! - [`articles`]: lists, the feed, validation, slugs and their races,
//!   ownership, favourites;
//! - [`comments`]: comments and who may delete them;
//! - [`connections`]: keyset pages of both, for the GraphQL API;
//! - [`profiles`]: profiles and following;
//! - [`users`]: RealWorld sign-up, sign-in and profile updates, through the
//!   identity service (which owns the registration rate limit);
//! - [`live`]: articles and comments as they are published, for
//!   subscriptions;
//! - [`feeds`]: the Atom and RSS feeds' entries; tags ([`Blog::tags`]) are
//!   below.
//!
//! Writes record their domain events in the same transaction (the store
//! does), wake the event relay and make cached pages stale. This module
//! turns stored rows into RealWorld documents, fetching authors from the
//! identity module in one call per page.

pub mod articles;
pub mod comments;
pub mod connections;
pub mod feeds;
pub mod live;
pub mod profiles;
pub mod users;
mod views;

use basalt_platform::events::EventWaker;
use std::sync::Arc;
use std::time::Duration;

use basalt_identity::service::IdentityService;
use basalt_markdown::markdown_to_safe_html;
use basalt_platform::Db;
use basalt_platform::cache::{Cache, Flights};
use uuid::Uuid;

use crate::error::BlogError;
use crate::model::{Article, Comment, Profile, TagsResponse};
use crate::store::{self, ArticleRow, CommentRow};

/// The blog's shared state.
#[derive(Clone)]
pub struct Blog {
    /// The database.
    pub db: Db,
    /// Accounts, sign-in and authors.
    pub identity: IdentityService,
    /// Cache for anonymous pages and tags.
    pub cache: Arc<dyn Cache>,
    /// Concurrent misses of one cached page compute it once.
    pub flights: Arc<Flights>,
    /// Wakes the event relay after commits (the store records the events).
    pub events: EventWaker,
}

impl std::fmt::Debug for Blog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blog")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// Cache namespace of everything the blog caches.
pub const CACHE_NAMESPACE: &str = "blog";
/// How long a cached page may live without a write (bounds memory, not staleness).
pub const CACHE_TTL: Duration = Duration::from_secs(300);

fn profile_of(user: Option<&basalt_identity::model::User>, following: bool) -> Profile {
    match user {
        Some(u) => Profile {
            username: u.username.clone(),
            bio: u.bio.clone(),
            image: u.image.clone(),
            following,
        },
        // The author's account was deleted; the article outlives it.
        None => Profile {
            username: "[deleted]".into(),
            bio: None,
            image: None,
            following: false,
        },
    }
}

/// One comment with its author, from `authors` (fetched for its page).
fn comment_of(
    r: CommentRow,
    authors: &std::collections::HashMap<Uuid, basalt_identity::model::User>,
) -> Comment {
    Comment {
        author: profile_of(authors.get(&r.author_id), r.following),
        id: r.id,
        article_id: r.article_id,
        created_at: r.created_at,
        updated_at: r.updated_at,
        body: r.body,
    }
}

impl Blog {
    /// A cached JSON response for `key` under the current generation, or
    /// computes, stores and returns it.
    pub async fn cached<T, F>(&self, key: &str, compute: F) -> Result<Vec<u8>, BlogError>
    where
        T: serde::Serialize,
        F: std::future::Future<Output = Result<T, BlogError>>,
    {
        self.cached_bytes(key, async {
            serde_json::to_vec(&compute.await?).map_err(|e| BlogError::Internal(e.into()))
        })
        .await
    }

    /// Like [`Blog::cached`], for bytes `compute` encodes itself.
    pub async fn cached_bytes<F>(&self, key: &str, compute: F) -> Result<Vec<u8>, BlogError>
    where
        F: std::future::Future<Output = Result<Vec<u8>, BlogError>>,
    {
        basalt_platform::cache::cached(
            &*self.cache,
            &self.flights,
            CACHE_NAMESPACE,
            key,
            CACHE_TTL,
            compute,
        )
        .await
    }

    /// Makes every cached page stale, on every node; called after each
    /// committed write that shows in them.
    pub async fn invalidate(&self) {
        // On its own task, so that a client hanging up right after the
        // commit cannot cancel it and leave stale pages behind.
        let cache = std::sync::Arc::clone(&self.cache);
        let invalidation = tokio::spawn(async move { cache.invalidate(CACHE_NAMESPACE).await });
        if let Err(error) = invalidation.await {
            tracing::error!(%error, "cache invalidation task failed");
        }
    }

    /// Every tag in use, alphabetically: the `{"tags"}` JSON, cached, ready
    /// to send.
    pub async fn tags(&self) -> Result<Vec<u8>, BlogError> {
        self.cached("tags", async {
            Ok(TagsResponse {
                tags: store::tags(&self.db).await?,
            })
        })
        .await
    }

    /// Every tag in use, alphabetically (from the same cached document as
    /// [`Blog::tags`]).
    pub async fn tag_names(&self) -> Result<Vec<String>, BlogError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Vec<String>,
        }
        let tags: Tags = serde_json::from_slice(&self.tags().await?)
            .map_err(|e| BlogError::Internal(e.into()))?;
        Ok(tags.tags)
    }

    /// Articles with their authors; `full` adds the body and its HTML.
    pub async fn articles(
        &self,
        rows: Vec<ArticleRow>,
        full: bool,
    ) -> Result<Vec<Article>, BlogError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.author_id).collect();
        let authors = self.identity.users_by_ids(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| Article {
                id: r.id,
                author: profile_of(authors.get(&r.author_id), r.following),
                body_html: full.then(|| markdown_to_safe_html(&r.body)),
                body: full.then_some(r.body),
                slug: r.slug,
                title: r.title,
                description: r.description,
                tag_list: serde_json::from_str(&r.tag_list).unwrap_or_default(),
                created_at: r.created_at,
                updated_at: r.updated_at,
                favorited: r.favorited,
                favorites_count: r.favorites_count,
            })
            .collect())
    }

    /// One article with its body, or 404.
    pub async fn article(&self, viewer: Option<Uuid>, slug: &str) -> Result<Article, BlogError> {
        let row = store::by_slug(&self.db, viewer, slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?;
        Ok(self.articles(vec![row], true).await?.remove(0))
    }

    /// Comments with their authors.
    pub async fn comments(&self, rows: Vec<CommentRow>) -> Result<Vec<Comment>, BlogError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.author_id).collect();
        let authors = self.identity.users_by_ids(&ids).await?;
        Ok(rows.into_iter().map(|r| comment_of(r, &authors)).collect())
    }

    /// A profile by username as `viewer` sees it, or 404.
    pub async fn profile(
        &self,
        viewer: Option<Uuid>,
        username: &str,
    ) -> Result<(Uuid, Profile), BlogError> {
        let user = self
            .identity
            .user_by_username(username)
            .await?
            .ok_or(BlogError::NotFound("profile"))?;
        let following = store::is_following(&self.db, viewer, user.id).await?;
        Ok((user.id, profile_of(Some(&user), following)))
    }
}
