//! The blog's queries.

use async_graphql::{Context, Object};
use basalt_platform::error::Failure;

use super::types::{Article, ArticleConnection, Profile, connection_cost};
use super::{blog, signed_in, viewer};
use crate::error::BlogError;
use crate::service::articles::ListFilter;
use crate::service::connections::PageRequest;

/// The blog's queries.
#[derive(Debug, Default)]
pub struct BlogQuery;

#[Object]
impl BlogQuery {
    /// The article behind `slug`, or null.
    async fn article(&self, ctx: &Context<'_>, slug: String) -> Result<Option<Article>, Failure> {
        let blog = blog(ctx)?;
        let viewer = viewer(ctx);
        match blog.article(viewer, &slug).await {
            Ok(article) => Ok(Some(Article::single(blog, viewer, article))),
            Err(BlogError::NotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Articles, newest first: all of them, or those with `tag`, by
    /// `author`, or favourited by `favoritedBy` (usernames).
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn articles(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        tag: Option<String>,
        author: Option<String>,
        favorited_by: Option<String>,
    ) -> Result<ArticleConnection, Failure> {
        let page = PageRequest::parse(first.map(i64::from), after.as_deref())?;
        let filter = ListFilter {
            tag,
            author,
            favorited: favorited_by,
        };
        let blog = blog(ctx)?;
        let viewer = viewer(ctx);
        let articles = blog.article_page(viewer, filter, page).await?;
        Ok(ArticleConnection::new(blog, viewer, articles))
    }

    /// Articles by the authors the caller follows, newest first (signed in).
    #[graphql(complexity = "connection_cost(first, child_complexity)")]
    async fn feed(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<ArticleConnection, Failure> {
        let who = signed_in(ctx)?;
        let page = PageRequest::parse(first.map(i64::from), after.as_deref())?;
        let blog = blog(ctx)?;
        let articles = blog.feed_page(who, page).await?;
        Ok(ArticleConnection::new(blog, Some(who), articles))
    }

    /// The profile of `username`, or null.
    async fn profile(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> Result<Option<Profile>, Failure> {
        match blog(ctx)?.get_profile(viewer(ctx), &username).await {
            Ok(profile) => Ok(Some(Profile(profile))),
            Err(BlogError::NotFound(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Every tag in use, alphabetically.
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<String>, Failure> {
        blog(ctx)?.tag_names().await.map_err(Failure::from)
    }
}
