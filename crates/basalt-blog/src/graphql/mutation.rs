//! The blog's mutations: the RealWorld writes.

use async_graphql::{Context, ID, InputObject, Object};
use basalt_platform::error::Failure;

use super::types::{Article, Comment, Profile};
use super::{blog, signed_in};
use crate::service::articles::{ArticleChanges, ArticleDraft};

/// A new article.
#[derive(Debug, InputObject)]
pub struct CreateArticleInput {
    /// Title: one line, not blank, at most 300 characters.
    pub title: String,
    /// Description: one line, not blank, at most 1000 characters.
    pub description: String,
    /// Markdown body, not blank, at most 256 KiB.
    pub body: String,
    /// Tags: at most 20, each at most 50 characters.
    pub tag_list: Option<Vec<String>>,
}

/// Changes to an article; absent fields stay.
#[derive(Debug, InputObject)]
pub struct UpdateArticleInput {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// Derive a new slug from the (new) title; otherwise the slug stays.
    #[graphql(default)]
    pub regenerate_slug: bool,
}

/// The blog's mutations (each needs a signed-in caller).
#[derive(Debug, Default)]
pub struct BlogMutation;

#[Object]
impl BlogMutation {
    /// Publishes an article by the caller.
    async fn create_article(
        &self,
        ctx: &Context<'_>,
        input: CreateArticleInput,
    ) -> Result<Article, Failure> {
        let who = signed_in(ctx)?;
        let blog = blog(ctx)?;
        let draft = ArticleDraft {
            title: input.title,
            description: input.description,
            body: input.body,
            tags: input.tag_list,
        };
        let article = blog.create_article(who, draft).await?;
        Ok(Article::single(blog, Some(who), article))
    }

    /// Changes one of the caller's articles.
    async fn update_article(
        &self,
        ctx: &Context<'_>,
        slug: String,
        input: UpdateArticleInput,
    ) -> Result<Article, Failure> {
        let who = signed_in(ctx)?;
        let blog = blog(ctx)?;
        let changes = ArticleChanges {
            title: input.title,
            description: input.description,
            body: input.body,
            regenerate_slug: input.regenerate_slug,
        };
        let article = blog.update_article(who, &slug, changes).await?;
        Ok(Article::single(blog, Some(who), article))
    }

    /// Deletes one of the caller's articles.
    async fn delete_article(&self, ctx: &Context<'_>, slug: String) -> Result<bool, Failure> {
        let who = signed_in(ctx)?;
        blog(ctx)?.delete_article(who, &slug).await?;
        Ok(true)
    }

    /// The caller favourites an article (idempotent).
    async fn favorite_article(&self, ctx: &Context<'_>, slug: String) -> Result<Article, Failure> {
        let who = signed_in(ctx)?;
        let blog = blog(ctx)?;
        let article = blog.favorite(who, &slug).await?;
        Ok(Article::single(blog, Some(who), article))
    }

    /// The caller takes a favourite back (idempotent).
    async fn unfavorite_article(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> Result<Article, Failure> {
        let who = signed_in(ctx)?;
        let blog = blog(ctx)?;
        let article = blog.unfavorite(who, &slug).await?;
        Ok(Article::single(blog, Some(who), article))
    }

    /// The caller follows `username` (idempotent).
    async fn follow_profile(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> Result<Profile, Failure> {
        let who = signed_in(ctx)?;
        Ok(Profile(blog(ctx)?.follow(who, &username).await?))
    }

    /// The caller stops following `username` (idempotent).
    async fn unfollow_profile(
        &self,
        ctx: &Context<'_>,
        username: String,
    ) -> Result<Profile, Failure> {
        let who = signed_in(ctx)?;
        Ok(Profile(blog(ctx)?.unfollow(who, &username).await?))
    }

    /// The caller comments on an article.
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        slug: String,
        body: String,
    ) -> Result<Comment, Failure> {
        let who = signed_in(ctx)?;
        Ok(Comment(blog(ctx)?.add_comment(who, &slug, body).await?))
    }

    /// Deletes one of the caller's comments.
    async fn delete_comment(&self, ctx: &Context<'_>, id: ID) -> Result<bool, Failure> {
        let who = signed_in(ctx)?;
        blog(ctx)?.delete_comment_by_id(who, &id).await?;
        Ok(true)
    }
}
