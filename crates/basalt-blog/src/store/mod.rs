//! The blog's SQL, each query written once for SQLite and PostgreSQL:
//! articles, favourites and follows here; lists and their counts in
//! [`lists`], comments in [`comments`].

use std::collections::{HashMap, HashSet};

use basalt_platform::db::{Db, Tx, in_list, unique_violation};
use basalt_platform::events::{Event, record_in};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

/// An article with the viewer's flags.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArticleRow {
    /// Id (UUIDv7, time-ordered).
    pub id: Uuid,
    /// Slug.
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Markdown body (empty in list queries).
    pub body: String,
    /// Sorted tags, JSON array.
    pub tag_list: String,
    /// Author's account id.
    pub author_id: Uuid,
    /// Number of users who favourited it.
    pub favorites_count: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
    /// Whether the viewer favourited it.
    pub favorited: bool,
    /// Whether the viewer follows the author.
    pub following: bool,
}

/// Columns of [`ArticleRow`]; `$1` is the viewer (NULL for anonymous).
macro_rules! article_columns {
    ($body:literal) => {
        concat!(
            "a.id, a.slug, a.title, a.description, ",
            $body,
            ", a.tag_list, a.author_id, CAST(a.favorites_count AS BIGINT) AS favorites_count, a.created_at, a.updated_at, ",
            "EXISTS (SELECT 1 FROM blog_favorites f WHERE f.article_id = a.id AND f.user_id = $1) AS favorited, ",
            "EXISTS (SELECT 1 FROM blog_follows w WHERE w.followee_id = a.author_id AND w.follower_id = $1) AS following"
        )
    };
}

mod comments;
mod lists;

pub use comments::{
    CommentRow, add_comment, comment_by_id, comment_owner, comment_pages, comment_totals, comments,
    delete_comment,
};
pub use lists::{
    ArticleFilter, count, feed, feed_after, feed_count, list, list_after, newest_with_bodies,
};

/// One article by slug, with its body.
pub async fn by_slug(
    db: &Db,
    viewer: Option<Uuid>,
    slug: &str,
) -> Result<Option<ArticleRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, ArticleRow>(concat!(
            "SELECT ",
            article_columns!("a.body"),
            " FROM blog_articles a WHERE a.slug = $2"
        ))
        .bind(viewer)
        .bind(slug)
        .fetch_optional(conn)
        .await
    })
}

/// One article by id, with its body.
pub async fn by_id(
    db: &Db,
    viewer: Option<Uuid>,
    id: Uuid,
) -> Result<Option<ArticleRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, ArticleRow>(concat!(
            "SELECT ",
            article_columns!("a.body"),
            " FROM blog_articles a WHERE a.id = $2"
        ))
        .bind(viewer)
        .bind(id)
        .fetch_optional(conn)
        .await
    })
}

/// The Markdown bodies of those of `ids` that exist, in one statement (a
/// primary-key lookup per id). Boxed, like [`list`].
pub fn bodies<'a>(
    db: &'a Db,
    ids: &'a [Uuid],
) -> BoxFuture<'a, Result<HashMap<Uuid, String>, sqlx::Error>> {
    Box::pin(async move {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = in_list::padded(ids);
        let sql = in_list::expand(
            "SELECT id, body FROM blog_articles WHERE id IN ({list})",
            1,
            &[ids.len()],
        );
        let rows: Vec<(Uuid, String)> = with_conn!(db, |conn| {
            let mut query = sqlx::query_as(sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        Ok(rows.into_iter().collect())
    })
}

/// Whether a slug is in use.
pub async fn slug_taken(db: &Db, slug: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT count(*) FROM blog_articles WHERE slug = $1")
            .bind(slug)
            .fetch_one(conn)
            .await
    })?;
    Ok(n > 0)
}

/// A new article's fields.
#[derive(Debug, Clone)]
pub struct NewArticle {
    /// Id.
    pub id: Uuid,
    /// Slug (unique).
    pub slug: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Markdown body.
    pub body: String,
    /// Sorted, de-duplicated tags.
    pub tags: Vec<String>,
    /// Author.
    pub author_id: Uuid,
    /// Now, to the microsecond (what both databases keep), so that the row
    /// as inserted is the row as read back.
    pub now: DateTime<Utc>,
}

impl NewArticle {
    /// The article as stored once inserted, as its author sees it: nobody
    /// has favourited it yet, and nobody follows themselves.
    pub fn into_row(self) -> ArticleRow {
        ArticleRow {
            id: self.id,
            slug: self.slug,
            title: self.title,
            description: self.description,
            body: self.body,
            tag_list: tag_list_json(&self.tags),
            author_id: self.author_id,
            favorites_count: 0,
            created_at: self.now,
            updated_at: self.now,
            favorited: false,
            following: false,
        }
    }
}

fn tag_list_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

/// Why an insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// The slug was taken meanwhile.
    SlugTaken,
    /// Anything else.
    Database(sqlx::Error),
}

/// How many tags [`INSERT_TAGS`] takes at once.
const TAGS_PER_STATEMENT: usize = 20;

/// An article's tags in one statement: `$1` is the article, `$2`…`$21` one
/// tag each, NULL when unused (`column1` is the name both databases give a
/// `VALUES` list's first column).
const INSERT_TAGS: &str = "INSERT INTO blog_article_tags (article_id, tag) SELECT $1, v.column1 FROM (VALUES \
     ($2), ($3), ($4), ($5), ($6), ($7), ($8), ($9), ($10), ($11), \
     ($12), ($13), ($14), ($15), ($16), ($17), ($18), ($19), ($20), ($21)) AS v \
     WHERE v.column1 IS NOT NULL";

/// Inserts an article and its tags, and records `event`, in one
/// transaction of four statements (the article, its tags, the event, and
/// nothing read back). A taken slug is found by the insert itself (`ON
/// CONFLICT DO NOTHING` inserts no row), not by a query before it: the
/// common case, a free slug, costs no extra round trip.
pub async fn insert(db: &Db, a: &NewArticle, event: &Event) -> Result<(), InsertError> {
    let result: Result<bool, sqlx::Error> = async {
        let mut tx = db.begin().await?;
        let inserted: Option<Uuid> = with_tx!(&mut tx, |conn| {
            sqlx::query_scalar(
                "INSERT INTO blog_articles (id, slug, title, description, body, tag_list, author_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (slug) DO NOTHING RETURNING id",
            )
            .bind(a.id)
            .bind(&a.slug)
            .bind(&a.title)
            .bind(&a.description)
            .bind(&a.body)
            .bind(tag_list_json(&a.tags))
            .bind(a.author_id)
            .bind(a.now)
            .fetch_optional(conn)
            .await
        })?;
        if inserted.is_none() {
            // Dropped, the transaction is rolled back.
            return Ok(false);
        }
        for tags in a.tags.chunks(TAGS_PER_STATEMENT) {
            with_tx!(&mut tx, |conn| {
                let mut query = sqlx::query(INSERT_TAGS).bind(a.id);
                for i in 0..TAGS_PER_STATEMENT {
                    query = query.bind(tags.get(i).map(String::as_str));
                }
                query.execute(conn).await.map(|r| r.rows_affected())
            })?;
        }
        record_in(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }
    .await;
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(InsertError::SlugTaken),
        Err(e) if unique_violation(&e).is_some_and(|c| c.contains("slug")) => {
            Err(InsertError::SlugTaken)
        }
        Err(e) => Err(InsertError::Database(e)),
    }
}

/// Updates title, description, body and (when given) the slug, and records
/// `event`, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    db: &Db,
    id: Uuid,
    slug: &str,
    title: &str,
    description: &str,
    body: &str,
    now: DateTime<Utc>,
    event: &Event,
) -> Result<(), InsertError> {
    let result: Result<(), sqlx::Error> = async {
        let mut tx = db.begin().await?;
        with_tx!(&mut tx, |conn| {
            sqlx::query("UPDATE blog_articles SET slug = $2, title = $3, description = $4, body = $5, updated_at = $6 WHERE id = $1")
                .bind(id)
                .bind(slug)
                .bind(title)
                .bind(description)
                .bind(body)
                .bind(now)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        record_in(&mut tx, event).await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if unique_violation(&e).is_some_and(|c| c.contains("slug")) => {
            Err(InsertError::SlugTaken)
        }
        Err(e) => Err(InsertError::Database(e)),
    }
}

/// Deletes an article (tags, favourites and comments cascade) and records
/// `event`, in one transaction.
pub async fn delete(db: &Db, id: Uuid, event: &Event) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, |conn| {
        sqlx::query("DELETE FROM blog_articles WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    record_in(&mut tx, event).await?;
    tx.commit().await
}

/// Favourites an article; idempotent. The count moves only when the row
/// was really inserted, in the same transaction, so 50 parallel favourites
/// by one user count once.
pub async fn favorite(
    db: &Db,
    user: Uuid,
    article: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let inserted = with_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO blog_favorites (user_id, article_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, article_id) DO NOTHING",
        )
        .bind(user)
        .bind(article)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    if inserted == 1 {
        adjust_count(&mut tx, article, 1).await?;
    }
    tx.commit().await
}

/// Removes a favourite; idempotent.
pub async fn unfavorite(db: &Db, user: Uuid, article: Uuid) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let deleted = with_tx!(&mut tx, |conn| {
        sqlx::query("DELETE FROM blog_favorites WHERE user_id = $1 AND article_id = $2")
            .bind(user)
            .bind(article)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    if deleted == 1 {
        adjust_count(&mut tx, article, -1).await?;
    }
    tx.commit().await
}

async fn adjust_count(tx: &mut Tx, article: Uuid, by: i32) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query("UPDATE blog_articles SET favorites_count = favorites_count + $2 WHERE id = $1")
            .bind(article)
            .bind(by)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Follows; idempotent. `event` is recorded, in the same transaction, only
/// when this call really started the follow; returns whether it did.
pub async fn follow(
    db: &Db,
    follower: Uuid,
    followee: Uuid,
    now: DateTime<Utc>,
    event: &Event,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let inserted = with_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO blog_follows (follower_id, followee_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (follower_id, followee_id) DO NOTHING",
        )
        .bind(follower)
        .bind(followee)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    if inserted == 1 {
        record_in(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(inserted == 1)
}

/// Unfollows; idempotent. Returns whether a follow ended.
pub async fn unfollow(db: &Db, follower: Uuid, followee: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = with_conn!(db, |conn| {
        sqlx::query("DELETE FROM blog_follows WHERE follower_id = $1 AND followee_id = $2")
            .bind(follower)
            .bind(followee)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(deleted == 1)
}

/// A viewer's flags over a page: which of its articles they favourited and
/// which of its authors they follow.
#[derive(Debug, Default)]
pub struct ViewerFlags {
    /// Favourited article ids.
    pub favorited: HashSet<Uuid>,
    /// Followed author ids.
    pub following: HashSet<Uuid>,
}

/// `viewer`'s flags over `articles` and `authors`, in one statement (two
/// primary-key range scans). Boxed, like [`list`].
pub fn viewer_flags<'a>(
    db: &'a Db,
    viewer: Uuid,
    articles: &'a [Uuid],
    authors: &'a [Uuid],
) -> BoxFuture<'a, Result<ViewerFlags, sqlx::Error>> {
    Box::pin(async move {
        if articles.is_empty() {
            return Ok(ViewerFlags::default());
        }
        let mut authors = authors.to_vec();
        authors.sort_unstable();
        authors.dedup();
        let (articles, authors) = (in_list::padded(articles), in_list::padded(&authors));
        let sql = in_list::expand(
            "SELECT CAST(1 AS BIGINT), article_id FROM blog_favorites WHERE user_id = $1 AND article_id IN ({list}) \
             UNION ALL \
             SELECT CAST(2 AS BIGINT), followee_id FROM blog_follows WHERE follower_id = $1 AND followee_id IN ({list})",
            2,
            &[articles.len(), authors.len()],
        );
        let rows: Vec<(i64, Uuid)> = with_conn!(db, |conn| {
            let mut query = sqlx::query_as(sql).bind(viewer);
            for id in articles.iter().chain(&authors) {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        let mut flags = ViewerFlags::default();
        for (kind, id) in rows {
            if kind == 1 {
                flags.favorited.insert(id);
            } else {
                flags.following.insert(id);
            }
        }
        Ok(flags)
    })
}

/// Whether `follower` follows `followee`.
pub async fn is_following(
    db: &Db,
    follower: Option<Uuid>,
    followee: Uuid,
) -> Result<bool, sqlx::Error> {
    let Some(follower) = follower else {
        return Ok(false);
    };
    let n: i64 = with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT count(*) FROM blog_follows WHERE follower_id = $1 AND followee_id = $2",
        )
        .bind(follower)
        .bind(followee)
        .fetch_one(conn)
        .await
    })?;
    Ok(n > 0)
}

/// Every tag in use, alphabetically.
pub async fn tags(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT DISTINCT tag FROM blog_article_tags ORDER BY tag LIMIT 1000")
            .fetch_all(conn)
            .await
    })
}
