//! Batching per page: what N+1 would otherwise cost.
//!
//! A page of articles is one [`PageBatch`], shared by its nodes. When the
//! query asks a node for its `body` or its `comments`, the node asks the
//! batch, which loads them for every article of the page in one service
//! call (once per distinct `first`/`after` for comments) and keeps the
//! answer for the other nodes. Each field of a page so costs a fixed number
//! of statements, whatever the page size.
//!
//! This is a DataLoader keyed by the page rather than by time: async-graphql's
//! own DataLoader collects keys for a delay (1 ms by default) before it
//! loads, and that wait can cost more than the queries it saves
//! (async-graphql #1306). The nodes of a page are known when the page is
//! built, so there is nothing to wait for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::error::BlogError;
use crate::model::Comment;
use crate::service::Blog;
use crate::service::connections::{Page, PageRequest};

type Comments = HashMap<Uuid, Page<Comment>>;
/// A comment page's arguments: `first`, and `after` as sent.
type CommentArgs = (i64, Option<String>);

/// What the articles of one page load together.
pub struct PageBatch {
    blog: Blog,
    viewer: Option<Uuid>,
    articles: Vec<Uuid>,
    bodies: OnceCell<HashMap<Uuid, (String, String)>>,
    comments: Mutex<HashMap<CommentArgs, Arc<OnceCell<Comments>>>>,
}

impl std::fmt::Debug for PageBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageBatch")
            .field("articles", &self.articles.len())
            .finish_non_exhaustive()
    }
}

impl PageBatch {
    /// The batch of a page of `articles` (ids), read as `viewer`.
    pub fn new(blog: Blog, viewer: Option<Uuid>, articles: Vec<Uuid>) -> Arc<Self> {
        Arc::new(Self {
            blog,
            viewer,
            articles,
            bodies: OnceCell::new(),
            comments: Mutex::default(),
        })
    }

    /// The Markdown body and its HTML of `article`, loaded for the whole page.
    pub async fn body(&self, article: Uuid) -> Result<Option<(String, String)>, BlogError> {
        let bodies = self
            .bodies
            .get_or_try_init(|| self.blog.article_bodies(&self.articles))
            .await?;
        Ok(bodies.get(&article).cloned())
    }

    /// The page of comments `page` asks for of `article`, loaded for every
    /// article of the page.
    pub async fn comments(
        &self,
        article: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Comment>, BlogError> {
        let key = (page.first, page.after.as_ref().map(|c| c.encode()));
        let cell = {
            let mut cells = self
                .comments
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(cells.entry(key).or_default())
        };
        let pages = cell
            .get_or_try_init(|| self.blog.comment_pages(self.viewer, &self.articles, page))
            .await?;
        Ok(pages.get(&article).cloned().unwrap_or_else(|| Page {
            edges: Vec::new(),
            has_next_page: false,
            has_previous_page: page.after.is_some(),
            total_count: 0,
        }))
    }
}
