//! The blog's subscriptions, fed by the domain events every node hears
//! (`Events::listen`): an article published through one node reaches a
//! subscriber on any other.

use async_graphql::{Context, Subscription};
use basalt_platform::error::Failure;
use basalt_platform::events::Events;
use futures_util::{Stream, StreamExt as _};

use super::types::{Article, Comment};
use super::{blog, viewer};

/// The blog's subscriptions.
#[derive(Debug, Default)]
pub struct BlogSubscription;

fn events<'a>(ctx: &Context<'a>) -> Result<&'a Events, Failure> {
    ctx.data::<Events>()
        .map_err(|_| Failure::internal(anyhow::anyhow!("the schema has no event service")))
}

#[Subscription]
impl BlogSubscription {
    /// Each article published from now on, optionally only those with `tag`
    /// or by `author` (username).
    async fn article_published(
        &self,
        ctx: &Context<'_>,
        tag: Option<String>,
        author: Option<String>,
    ) -> Result<impl Stream<Item = Article> + use<>, Failure> {
        let blog = blog(ctx)?.clone();
        let viewer = viewer(ctx);
        let articles = blog
            .published_articles(events(ctx)?, viewer, tag, author)
            .await?;
        Ok(articles.map(move |article| Article::single(&blog, viewer, article)))
    }

    /// Each comment added from now on to the article behind `slug`.
    async fn comment_added(
        &self,
        ctx: &Context<'_>,
        slug: String,
    ) -> Result<impl Stream<Item = Comment> + use<>, Failure> {
        let blog = blog(ctx)?;
        let comments = blog
            .added_comments(events(ctx)?, viewer(ctx), &slug)
            .await?;
        Ok(comments.map(Comment))
    }
}
