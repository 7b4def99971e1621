//! Articles and comments as they are published, for subscriptions: the
//! domain events every node hears ([`Events::listen`]), filtered and turned
//! into what the subscriber would read now.
//!
//! Best effort, like the events it follows: a subscriber that falls far
//! behind skips what it missed, and one connected after a publication does
//! not get it. An article deleted before it is read is skipped.

use std::sync::Arc;

use basalt_platform::events::{Event, Events};
use futures_util::{Stream, StreamExt as _};
use uuid::Uuid;

use super::Blog;
use crate::error::BlogError;
use crate::events::{ARTICLE_PUBLISHED, ArticleChanged, COMMENT_ADDED, CommentAdded};
use crate::model::{Article, Comment};

/// The events of `kinds` from now on, payload decoded; undecodable ones are skipped.
fn payloads<T: serde::de::DeserializeOwned>(
    events: &Events,
    kind: &'static str,
) -> impl Stream<Item = T> + Send + use<T> {
    events
        .listen(&[kind])
        .into_stream()
        .filter_map(|event: Arc<Event>| async move {
            serde_json::from_value::<T>(event.payload.clone()).ok()
        })
}

impl Blog {
    /// Articles published from now on, as `viewer` sees them, with `tag`
    /// or by `author` (a username; an unknown one is a 404) when given.
    pub async fn published_articles(
        &self,
        events: &Events,
        viewer: Option<Uuid>,
        tag: Option<String>,
        author: Option<String>,
    ) -> Result<impl Stream<Item = Article> + Send + use<>, BlogError> {
        let author = match author {
            Some(name) => Some(
                self.identity
                    .user_by_username(&name)
                    .await?
                    .ok_or(BlogError::NotFound("profile"))?
                    .id,
            ),
            None => None,
        };
        let blog = self.clone();
        Ok(payloads::<ArticleChanged>(events, ARTICLE_PUBLISHED)
            .filter(move |published| {
                std::future::ready(author.is_none_or(|a| a == published.author_id))
            })
            .filter_map(move |published| {
                let blog = blog.clone();
                let tag = tag.clone();
                async move {
                    let article = blog
                        .article_by_id(viewer, published.article_id)
                        .await
                        .inspect_err(
                            |error| tracing::warn!(%error, "a published article could not be read"),
                        )
                        .ok()
                        .flatten()?;
                    tag.is_none_or(|t| article.tag_list.contains(&t))
                        .then_some(article)
                }
            }))
    }

    /// Comments added from now on to the article behind `slug` (404 if
    /// there is none), as `viewer` sees their authors.
    pub async fn added_comments(
        &self,
        events: &Events,
        viewer: Option<Uuid>,
        slug: &str,
    ) -> Result<impl Stream<Item = Comment> + Send + use<>, BlogError> {
        let article = self.article_id(slug).await?;
        let blog = self.clone();
        Ok(payloads::<CommentAdded>(events, COMMENT_ADDED)
            .filter(move |added| std::future::ready(added.article_id == article))
            .filter_map(move |added| {
                let blog = blog.clone();
                async move {
                    blog.comment_by_id(viewer, added.comment_id)
                        .await
                        .inspect_err(
                            |error| tracing::warn!(%error, "an added comment could not be read"),
                        )
                        .ok()
                        .flatten()
                }
            }))
    }
}
