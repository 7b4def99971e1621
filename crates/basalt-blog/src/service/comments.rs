//! Comments: listing (an article's, or keyset pages of several articles'
//! at once), adding (validated, with its event) and deleting (the comment's
//! author only).

use std::collections::HashMap;

use basalt_platform::events::Event;
use chrono::Utc;
use uuid::Uuid;

use super::Blog;
use super::connections::{Cursor, Page, PageRequest};
use crate::error::BlogError;
use crate::events::{COMMENT_ADDED, CommentAdded};
use crate::model::Comment;
use crate::store;

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 20_000;

impl Blog {
    /// The id of the article behind `slug`, or 404.
    pub(crate) async fn article_id(&self, slug: &str) -> Result<Uuid, BlogError> {
        Ok(store::by_slug(&self.db, None, slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?
            .id)
    }

    /// The comments on the article behind `slug`, oldest first, as
    /// `viewer` sees their authors.
    ///
    /// Not cached: the in-process cache holds 10,000 entries and evicts
    /// the oldest first, and one more entry per article would push single
    /// articles out (BENCHMARKS.md, blog: article reads fell from
    /// thousands to about 500 req/s when comment lists were cached too).
    pub async fn list_comments(
        &self,
        viewer: Option<Uuid>,
        slug: &str,
    ) -> Result<Vec<Comment>, BlogError> {
        let id = self.article_id(slug).await?;
        let rows = store::comments(&self.db, viewer, id).await?;
        self.comments(rows).await
    }

    /// `who` comments `text` on the article behind `slug`: not blank, at
    /// most [`MAX_COMMENT_CHARS`].
    pub async fn add_comment(
        &self,
        who: Uuid,
        slug: &str,
        text: String,
    ) -> Result<Comment, BlogError> {
        if text.trim().is_empty() {
            return Err(BlogError::invalid("body", "can't be blank"));
        }
        if text.chars().count() > MAX_COMMENT_CHARS {
            return Err(BlogError::invalid(
                "body",
                &format!("must be at most {MAX_COMMENT_CHARS} characters"),
            ));
        }
        let article = self.article_id(slug).await?;
        let id = store::add_comment(&self.db, article, who, &text, Utc::now(), |comment_id| {
            Event::new(
                COMMENT_ADDED,
                &CommentAdded {
                    article_id: article,
                    comment_id,
                    author_id: who,
                },
            )
        })
        .await?;
        self.events.wake();
        self.comment_by_id(Some(who), id)
            .await?
            .ok_or(BlogError::NotFound("comment"))
    }

    /// One comment by id with its author (for subscriptions). None if gone.
    pub async fn comment_by_id(
        &self,
        viewer: Option<Uuid>,
        id: i64,
    ) -> Result<Option<Comment>, BlogError> {
        let Some(row) = store::comment_by_id(&self.db, viewer, id).await? else {
            return Ok(None);
        };
        Ok(self.comments(vec![row]).await?.pop())
    }

    /// The first `page.first` comments (oldest first, same order as REST) of EACH of these articles after
    /// `page.after` (a comment cursor, or None), with their authors: a fixed number of statements whatever the
    /// number of articles (one windowed query, one call for the authors, one for totals). Missing
    /// articles map to an empty page. Batched from a DataLoader keyed by article id.
    ///
    /// Each page's `total_count` is all of that article's comments,
    /// whatever `after` skips.
    pub async fn comment_pages(
        &self,
        viewer: Option<Uuid>,
        article_ids: &[Uuid],
        page: &PageRequest,
    ) -> Result<HashMap<Uuid, Page<Comment>>, BlogError> {
        let after = page.comment_after()?.unwrap_or(i64::MIN);
        let mut ids = article_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let rows = store::comment_pages(&self.db, viewer, &ids, after, page.fetch()).await?;
        let totals = store::comment_totals(&self.db, &ids).await?;
        let mut by_article: HashMap<Uuid, Vec<Comment>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        for comment in self.comments(rows).await? {
            by_article
                .entry(comment.article_id)
                .or_default()
                .push(comment);
        }
        Ok(by_article
            .into_iter()
            .map(|(id, comments)| {
                let total = totals.get(&id).copied().unwrap_or(0);
                let page = Page::of(comments, page, total, |c| Cursor::Comment(c.id));
                (id, page)
            })
            .collect())
    }

    /// Deletes comment `id` (as the client sent it) of the article behind
    /// `slug`: 404 unless it is one of that article's, 403 unless `who`
    /// wrote it.
    pub async fn delete_comment(&self, who: Uuid, slug: &str, id: &str) -> Result<(), BlogError> {
        let id = comment_id(id)?;
        let article = self.article_id(slug).await?;
        self.delete_own_comment(who, id, Some(article)).await
    }

    /// Deletes comment `id` (GraphQL `deleteComment(id: ID!)` names no article): 404 unless it exists, 403 unless
    /// `who` wrote it; the same rule as `delete_comment`.
    pub async fn delete_comment_by_id(&self, who: Uuid, id: &str) -> Result<(), BlogError> {
        self.delete_own_comment(who, comment_id(id)?, None).await
    }

    /// The rule of both deletions: the comment must exist (on `on_article`,
    /// when one is named), then be `who`'s.
    async fn delete_own_comment(
        &self,
        who: Uuid,
        id: i64,
        on_article: Option<Uuid>,
    ) -> Result<(), BlogError> {
        let owner = store::comment_owner(&self.db, id)
            .await?
            .filter(|c| on_article.is_none_or(|article| article == c.article_id))
            .ok_or(BlogError::NotFound("comment"))?;
        if owner.author_id != who {
            return Err(BlogError::Forbidden);
        }
        store::delete_comment(&self.db, id).await?;
        Ok(())
    }
}

/// A comment id as a client sent it; one that is not a number names no
/// comment (404).
fn comment_id(id: &str) -> Result<i64, BlogError> {
    id.parse().map_err(|_| BlogError::NotFound("comment"))
}
