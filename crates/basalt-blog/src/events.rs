//! The blog's domain events, recorded in the outbox in the same transaction
//! as the change (see `basalt_platform::events`), and its consumer of them.

use basalt_identity::service::IdentityService;
use basalt_platform::db::Tx;
use basalt_platform::events::{Event, EventHandler};
use basalt_platform::jobs::JobQueue;
use basalt_platform::mail::{Email, email_job};
use basalt_platform::with_tx;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An article was created.
pub const ARTICLE_PUBLISHED: &str = "blog.article_published";
/// An article's title, description, body or slug changed.
pub const ARTICLE_UPDATED: &str = "blog.article_updated";
/// An article was deleted.
pub const ARTICLE_DELETED: &str = "blog.article_deleted";
/// A comment was added to an article.
pub const COMMENT_ADDED: &str = "blog.comment_added";
/// A user started following another.
pub const FOLLOWED: &str = "blog.followed";

/// Payload of the three article events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArticleChanged {
    /// The article.
    pub article_id: Uuid,
    /// Its slug (after the change).
    pub slug: String,
    /// Its title (after the change).
    pub title: String,
    /// Its author.
    pub author_id: Uuid,
}

/// Payload of [`COMMENT_ADDED`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentAdded {
    /// The article commented on.
    pub article_id: Uuid,
    /// The new comment.
    pub comment_id: i64,
    /// Who wrote it.
    pub author_id: Uuid,
}

/// Payload of [`FOLLOWED`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Followed {
    /// Who follows.
    pub follower_id: Uuid,
    /// Whom.
    pub followee_id: Uuid,
}

/// The consumer that mails an author's followers when they publish, through
/// the job queue: the mail jobs are enqueued in the consumer's transaction,
/// so each follower gets one message per article however often the event is
/// delivered.
pub struct NotifyFollowers {
    /// Followers' addresses and the author's name.
    pub identity: IdentityService,
    /// Where the mail jobs go.
    pub jobs: JobQueue,
    /// Base of the article link (`BASALT_PUBLIC_URL`), if configured.
    pub public_url: Option<String>,
}

/// The consumer's durable name (its inbox entries and RabbitMQ queue).
pub const NOTIFY_FOLLOWERS: &str = "blog.notify_followers";

impl EventHandler for NotifyFollowers {
    fn handle<'a>(&'a self, event: &'a Event, tx: &'a mut Tx) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let article: ArticleChanged = serde_json::from_value(event.payload.clone())?;
            let followers: Vec<Uuid> = with_tx!(&mut *tx, |conn| {
                sqlx::query_scalar("SELECT follower_id FROM blog_follows WHERE followee_id = $1")
                    .bind(article.author_id)
                    .fetch_all(conn)
                    .await
            })?;
            if followers.is_empty() {
                return Ok(());
            }
            let mut ids = followers.clone();
            ids.push(article.author_id);
            let users = self.identity.users_by_ids(&ids).await?;
            let author = users
                .get(&article.author_id)
                .map_or("Someone you follow", |u| u.username.as_str());
            let link = self
                .public_url
                .as_deref()
                .map(|base| format!("\n\nRead it: {base}/article/{}\n", article.slug))
                .unwrap_or_default();
            for follower in followers {
                // Only verified addresses: anyone can sign up with anyone's address.
                let Some(user) = users.get(&follower).filter(|u| u.email_verified) else {
                    continue;
                };
                let email = Email {
                    to: user.email.clone(),
                    subject: format!("New article by {author}: {}", article.title),
                    text: format!(
                        "{author} published \u{201c}{}\u{201d}.{link}",
                        article.title
                    ),
                };
                self.jobs.enqueue_in(tx, email_job(&email)).await?;
            }
            Ok(())
        })
    }
}
