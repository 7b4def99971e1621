//! Comments: listing, adding (validated, with its event) and deleting
//! (the comment's author only).

use basalt_platform::events::Event;
use chrono::Utc;
use uuid::Uuid;

use super::Blog;
use crate::error::BlogError;
use crate::events::{COMMENT_ADDED, CommentAdded};
use crate::model::Comment;
use crate::store;

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 20_000;

impl Blog {
    /// The id of the article behind `slug`, or 404.
    async fn article_id(&self, slug: &str) -> Result<Uuid, BlogError> {
        Ok(store::by_slug(&self.db, None, slug)
            .await?
            .ok_or(BlogError::NotFound("article"))?
            .id)
    }

    /// The comments on the article behind `slug`, oldest first, as
    /// `viewer` sees their authors.
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
        let rows = store::comments(&self.db, Some(who), article).await?;
        self.comments(rows.into_iter().filter(|c| c.id == id).collect())
            .await?
            .pop()
            .ok_or(BlogError::NotFound("comment"))
    }

    /// Deletes comment `id` (as the client sent it) of the article behind
    /// `slug`: 404 unless it is one of that article's, 403 unless `who`
    /// wrote it.
    pub async fn delete_comment(&self, who: Uuid, slug: &str, id: &str) -> Result<(), BlogError> {
        let id: i64 = id.parse().map_err(|_| BlogError::NotFound("comment"))?;
        let article = self.article_id(slug).await?;
        let author = store::comment_author(&self.db, article, id)
            .await?
            .ok_or(BlogError::NotFound("comment"))?;
        if author != who {
            return Err(BlogError::Forbidden);
        }
        store::delete_comment(&self.db, id).await?;
        Ok(())
    }
}
