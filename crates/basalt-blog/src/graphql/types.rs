//! The blog's GraphQL types: `Article`, `Profile`, `Comment` and their
//! Relay connections (`edges { cursor node }`, `pageInfo`, `totalCount`).

use std::sync::Arc;

use async_graphql::{Context, ID, Object, SimpleObject};
use basalt_platform::error::Failure;
use basalt_platform::graphql::scalars::DateTime;

use super::batch::PageBatch;
use super::{blog, viewer};
use crate::model;
use crate::service::Blog;
use crate::service::articles::ListFilter;
use crate::service::connections::{DEFAULT_FIRST, MAX_FIRST, Page, PageRequest};

/// The complexity of a connection: what each node selects, times the nodes
/// asked for (the default page when `first` is absent; an out-of-range
/// `first` is refused by the resolver, so it counts as the largest page).
pub fn connection_cost(first: Option<i32>, child: usize) -> usize {
    let nodes = first.map_or(DEFAULT_FIRST, |n| i64::from(n).clamp(1, MAX_FIRST));
    usize::try_from(nodes)
        .unwrap_or(1)
        .saturating_mul(child.max(1))
}

/// Where a page of a connection is.
#[derive(Debug, Clone, SimpleObject)]
pub struct PageInfo {
    /// Whether more items follow the last one.
    pub has_next_page: bool,
    /// Whether items come before the first one (this page started `after` a cursor).
    pub has_previous_page: bool,
    /// The first edge's cursor.
    pub start_cursor: Option<String>,
    /// The last edge's cursor: pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

fn page_info<T>(page: &Page<T>) -> PageInfo {
    PageInfo {
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
        start_cursor: page.edges.first().map(|(c, _)| c.clone()),
        end_cursor: page.edges.last().map(|(c, _)| c.clone()),
    }
}

/// A page of articles.
#[derive(Debug, SimpleObject)]
pub struct ArticleConnection {
    /// The articles, newest first, with their cursors.
    pub edges: Vec<ArticleEdge>,
    /// Where this page is.
    pub page_info: PageInfo,
    /// How many articles the list has in all.
    pub total_count: i64,
}

/// An article and its cursor.
#[derive(Debug, SimpleObject)]
pub struct ArticleEdge {
    /// Opaque: pass it as `after` for the articles that follow.
    pub cursor: String,
    /// The article.
    pub node: Article,
}

impl ArticleConnection {
    /// The connection of `page`, whose articles load their bodies and
    /// comments together.
    pub fn new(blog: &Blog, viewer: Option<uuid::Uuid>, page: Page<model::Article>) -> Self {
        let batch = PageBatch::new(
            blog.clone(),
            viewer,
            page.edges.iter().map(|(_, a)| a.id).collect(),
        );
        Self {
            page_info: page_info(&page),
            total_count: page.total_count,
            edges: page
                .edges
                .into_iter()
                .map(|(cursor, article)| ArticleEdge {
                    cursor,
                    node: Article {
                        article,
                        batch: Arc::clone(&batch),
                    },
                })
                .collect(),
        }
    }
}

/// A page of comments.
#[derive(Debug, SimpleObject)]
pub struct CommentConnection {
    /// The comments, oldest first, with their cursors.
    pub edges: Vec<CommentEdge>,
    /// Where this page is.
    pub page_info: PageInfo,
    /// How many comments the article has in all.
    pub total_count: i64,
}

/// A comment and its cursor.
#[derive(Debug, SimpleObject)]
pub struct CommentEdge {
    /// Opaque: pass it as `after` for the comments that follow.
    pub cursor: String,
    /// The comment.
    pub node: Comment,
}

impl From<Page<model::Comment>> for CommentConnection {
    fn from(page: Page<model::Comment>) -> Self {
        Self {
            page_info: page_info(&page),
            total_count: page.total_count,
            edges: page
                .edges
                .into_iter()
                .map(|(cursor, comment)| CommentEdge {
                    cursor,
                    node: Comment(comment),
                })
                .collect(),
        }
    }
}

/// An article, as the caller sees it.
#[derive(Debug)]
pub struct Article {
    article: model::Article,
    batch: Arc<PageBatch>,
}

impl Article {
    /// One article on its own (a page of one).
    pub fn single(blog: &Blog, viewer: Option<uuid::Uuid>, article: model::Article) -> Self {
        let batch = PageBatch::new(blog.clone(), viewer, vec![article.id]);
        Self { article, batch }
    }

    async fn body_and_html(&self) -> Result<(String, String), Failure> {
        if let (Some(body), Some(html)) = (&self.article.body, &self.article.body_html) {
            return Ok((body.clone(), html.clone()));
        }
        Ok(self.batch.body(self.article.id).await?.unwrap_or_default())
    }
}

#[Object]
impl Article {
    /// Its URL-safe name, unique.
    async fn slug(&self) -> &str {
        &self.article.slug
    }
    /// Title.
    async fn title(&self) -> &str {
        &self.article.title
    }
    /// Description.
    async fn description(&self) -> &str {
        &self.article.description
    }
    /// The Markdown body.
    async fn body(&self) -> Result<String, Failure> {
        Ok(self.body_and_html().await?.0)
    }
    /// The body rendered to sanitised HTML.
    async fn body_html(&self) -> Result<String, Failure> {
        Ok(self.body_and_html().await?.1)
    }
    /// Tags, sorted.
    async fn tag_list(&self) -> &[String] {
        &self.article.tag_list
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime {
        self.article.created_at.into()
    }
    /// Last update.
    async fn updated_at(&self) -> DateTime {
        self.article.updated_at.into()
    }
    /// Whether the caller favourited it.
    async fn favorited(&self) -> bool {
        self.article.favorited
    }
    /// How many users favourited it.
    async fn favorites_count(&self) -> i64 {
        self.article.favorites_count
    }
    /// The author.
    async fn author(&self) -> Profile {
        Profile(self.article.author.clone())
    }
    /// Its comments, oldest first.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn comments(
        &self,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<CommentConnection, Failure> {
        let page = PageRequest::parse(first.map(i64::from), after.as_deref())?;
        Ok(self.batch.comments(self.article.id, &page).await?.into())
    }
}

/// An author, as the caller sees them.
#[derive(Debug)]
pub struct Profile(pub model::Profile);

#[Object]
impl Profile {
    /// Username.
    async fn username(&self) -> &str {
        &self.0.username
    }
    /// Biography.
    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }
    /// Avatar URL.
    async fn image(&self) -> Option<&str> {
        self.0.image.as_deref()
    }
    /// Whether the caller follows them.
    async fn following(&self) -> bool {
        self.0.following
    }
    /// Their articles, newest first.
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn articles(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ArticleConnection, Failure> {
        let page = PageRequest::parse(first.map(i64::from), after.as_deref())?;
        let blog = blog(ctx)?;
        let filter = ListFilter {
            author: Some(self.0.username.clone()),
            ..ListFilter::default()
        };
        let viewer = viewer(ctx);
        let articles = blog.article_page(viewer, filter, page).await?;
        Ok(ArticleConnection::new(blog, viewer, articles))
    }
}

/// A comment.
#[derive(Debug)]
pub struct Comment(pub model::Comment);

#[Object]
impl Comment {
    /// Its id (pass it to `deleteComment`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Creation time.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    /// Last update.
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// The author.
    async fn author(&self) -> Profile {
        Profile(self.0.author.clone())
    }
}
