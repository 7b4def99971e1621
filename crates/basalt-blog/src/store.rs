//! The blog's SQL, each query written once for SQLite and PostgreSQL.

use std::collections::HashSet;

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

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct ArticleFilter {
    /// Only this author's.
    pub author: Option<Uuid>,
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only favourited by this user.
    pub favorited_by: Option<Uuid>,
}

/// The filter clause shared by the list and its count; `$2`…`$4` are the filters.
macro_rules! list_where {
    () => {
        "WHERE ($2 IS NULL OR a.author_id = $2) \
         AND ($3 IS NULL OR EXISTS (SELECT 1 FROM blog_article_tags t WHERE t.article_id = a.id AND t.tag = $3)) \
         AND ($4 IS NULL OR EXISTS (SELECT 1 FROM blog_favorites fb WHERE fb.article_id = a.id AND fb.user_id = $4)) "
    };
}

/// One page of articles (no bodies), newest first, with the viewer's flags.
///
/// Each single filter has its own statement, written so that an index gives
/// both the rows and their order and the scan stops after `limit + offset`
/// rows: `(author_id, id)`, `(tag, article_id)` and the favourites' primary
/// key `(user_id, article_id)` (ids are UUID v7, so id order is creation
/// order). A generic `($n IS NULL OR …)` statement makes the planner scan
/// every article for a rare tag or author; only combined filters use it.
///
/// Returns a boxed future: the statements make a large future, and the
/// handlers that await it would grow with it (tests poll the server on a
/// test thread's 2 MiB stack, and debug builds keep large temporaries).
pub fn list<'a>(
    db: &'a Db,
    viewer: Option<Uuid>,
    filter: &'a ArticleFilter,
    limit: i64,
    offset: i64,
) -> BoxFuture<'a, Result<Vec<ArticleRow>, sqlx::Error>> {
    Box::pin(list_unboxed(db, viewer, filter, limit, offset))
}

async fn list_unboxed(
    db: &Db,
    viewer: Option<Uuid>,
    filter: &ArticleFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    // Every single-filter statement takes the same parameters: the viewer,
    // a UUID key ($2) and a text key ($3), the unused one NULL.
    let single: Option<(&'static str, Option<Uuid>, Option<&str>)> = match filter {
        ArticleFilter {
            author: None,
            tag: None,
            favorited_by: None,
        } => Some((
            concat!(
                "SELECT ",
                article_columns!("'' AS body"),
                " FROM blog_articles a WHERE $2 IS NULL AND $3 IS NULL ORDER BY a.id DESC LIMIT $4 OFFSET $5"
            ),
            None,
            None,
        )),
        ArticleFilter {
            author: Some(author),
            tag: None,
            favorited_by: None,
        } => Some((
            concat!(
                "SELECT ",
                article_columns!("'' AS body"),
                " FROM blog_articles a WHERE a.author_id = $2 AND $3 IS NULL \
                 ORDER BY a.author_id DESC, a.id DESC LIMIT $4 OFFSET $5"
            ),
            Some(*author),
            None,
        )),
        ArticleFilter {
            author: None,
            tag: Some(tag),
            favorited_by: None,
        } => Some((
            concat!(
                "SELECT ",
                article_columns!("'' AS body"),
                " FROM blog_article_tags t JOIN blog_articles a ON a.id = t.article_id \
                 WHERE t.tag = $3 AND $2 IS NULL ORDER BY t.tag DESC, t.article_id DESC LIMIT $4 OFFSET $5"
            ),
            None,
            Some(tag.as_str()),
        )),
        ArticleFilter {
            author: None,
            tag: None,
            favorited_by: Some(user),
        } => Some((
            concat!(
                "SELECT ",
                article_columns!("'' AS body"),
                " FROM blog_favorites fb JOIN blog_articles a ON a.id = fb.article_id \
                 WHERE fb.user_id = $2 AND $3 IS NULL ORDER BY fb.user_id DESC, fb.article_id DESC LIMIT $4 OFFSET $5"
            ),
            Some(*user),
            None,
        )),
        _ => None,
    };
    if let Some((sql, uuid_key, text_key)) = single {
        return with_conn!(db, |conn| {
            sqlx::query_as::<_, ArticleRow>(sql)
                .bind(viewer)
                .bind(uuid_key)
                .bind(text_key)
                .bind(limit)
                .bind(offset)
                .fetch_all(conn)
                .await
        });
    }
    with_conn!(db, |conn| {
        sqlx::query_as::<_, ArticleRow>(concat!(
            "SELECT ",
            article_columns!("'' AS body"),
            " FROM blog_articles a ",
            list_where!(),
            "ORDER BY a.id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(viewer)
        .bind(filter.author)
        .bind(&filter.tag)
        .bind(filter.favorited_by)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
    })
}

/// How many articles match `filter` (RealWorld's `articlesCount`): an
/// index-only count for a single filter, the generic form for combinations.
/// Boxed, like [`list`].
pub fn count<'a>(db: &'a Db, filter: &'a ArticleFilter) -> BoxFuture<'a, Result<i64, sqlx::Error>> {
    Box::pin(count_unboxed(db, filter))
}

async fn count_unboxed(db: &Db, filter: &ArticleFilter) -> Result<i64, sqlx::Error> {
    let single: Option<(&'static str, Option<Uuid>, Option<&str>)> = match filter {
        ArticleFilter {
            author: None,
            tag: None,
            favorited_by: None,
        } => Some((
            "SELECT CAST(count(*) AS BIGINT) FROM blog_articles WHERE $1 IS NULL AND $2 IS NULL",
            None,
            None,
        )),
        ArticleFilter {
            author: Some(author),
            tag: None,
            favorited_by: None,
        } => Some((
            "SELECT CAST(count(*) AS BIGINT) FROM blog_articles WHERE author_id = $1 AND $2 IS NULL",
            Some(*author),
            None,
        )),
        ArticleFilter {
            author: None,
            tag: Some(tag),
            favorited_by: None,
        } => Some((
            "SELECT CAST(count(*) AS BIGINT) FROM blog_article_tags WHERE tag = $2 AND $1 IS NULL",
            None,
            Some(tag.as_str()),
        )),
        ArticleFilter {
            author: None,
            tag: None,
            favorited_by: Some(user),
        } => Some((
            "SELECT CAST(count(*) AS BIGINT) FROM blog_favorites WHERE user_id = $1 AND $2 IS NULL",
            Some(*user),
            None,
        )),
        _ => None,
    };
    if let Some((sql, uuid_key, text_key)) = single {
        return with_conn!(db, |conn| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(uuid_key)
                .bind(text_key)
                .fetch_one(conn)
                .await
        });
    }
    with_conn!(db, |conn| {
        // `$1` (the viewer) is unused here but bound, so the filter clause keeps its numbers.
        sqlx::query_scalar(concat!(
            "SELECT CAST(count(*) AS BIGINT) FROM blog_articles a ",
            list_where!()
        ))
        .bind(None::<Uuid>)
        .bind(filter.author)
        .bind(&filter.tag)
        .bind(filter.favorited_by)
        .fetch_one(conn)
        .await
    })
}

/// The newest articles with their bodies, for the XML feeds.
pub async fn newest_with_bodies(
    db: &Db,
    filter: &ArticleFilter,
    limit: i64,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, ArticleRow>(concat!(
            "SELECT ",
            article_columns!("a.body"),
            " FROM blog_articles a ",
            list_where!(),
            "ORDER BY a.id DESC LIMIT $5"
        ))
        .bind(None::<Uuid>)
        .bind(filter.author)
        .bind(&filter.tag)
        .bind(filter.favorited_by)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}

/// Articles by authors `viewer` follows, newest first, and their total.
pub async fn feed(
    db: &Db,
    viewer: Uuid,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ArticleRow>, i64), sqlx::Error> {
    let rows = with_conn!(db, |conn| {
        sqlx::query_as::<_, ArticleRow>(concat!(
            "SELECT ",
            article_columns!("'' AS body"),
            " FROM blog_articles a WHERE a.author_id IN (SELECT followee_id FROM blog_follows WHERE follower_id = $1) ",
            "ORDER BY a.id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(viewer)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
    })?;
    let total: i64 = with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT count(*) FROM blog_articles a WHERE a.author_id IN \
             (SELECT followee_id FROM blog_follows WHERE follower_id = $1)",
        )
        .bind(viewer)
        .fetch_one(conn)
        .await
    })?;
    Ok((rows, total))
}

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
    /// Now.
    pub now: DateTime<Utc>,
}

/// Why an insert failed.
#[derive(Debug)]
pub enum InsertError {
    /// The slug was taken meanwhile.
    SlugTaken,
    /// Anything else.
    Database(sqlx::Error),
}

/// Inserts an article and its tags, and records `event`, in one transaction.
pub async fn insert(db: &Db, a: &NewArticle, event: &Event) -> Result<(), InsertError> {
    let result: Result<(), sqlx::Error> = async {
        let mut tx = db.begin().await?;
        with_tx!(&mut tx, |conn| {
            sqlx::query(
                "INSERT INTO blog_articles (id, slug, title, description, body, tag_list, author_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(a.id)
            .bind(&a.slug)
            .bind(&a.title)
            .bind(&a.description)
            .bind(&a.body)
            .bind(serde_json::to_string(&a.tags).unwrap_or_else(|_| "[]".into()))
            .bind(a.author_id)
            .bind(a.now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
        for tag in &a.tags {
            with_tx!(&mut tx, |conn| {
                sqlx::query("INSERT INTO blog_article_tags (article_id, tag) VALUES ($1, $2)")
                    .bind(a.id)
                    .bind(tag)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        record_in(&mut tx, event).await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Ok(()),
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
/// when this call really started the follow.
pub async fn follow(
    db: &Db,
    follower: Uuid,
    followee: Uuid,
    now: DateTime<Utc>,
    event: &Event,
) -> Result<(), sqlx::Error> {
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
    tx.commit().await
}

/// Unfollows; idempotent.
pub async fn unfollow(db: &Db, follower: Uuid, followee: Uuid) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM blog_follows WHERE follower_id = $1 AND followee_id = $2")
            .bind(follower)
            .bind(followee)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
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

/// A comment with the viewer's `following` flag for its author.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    /// Id.
    pub id: i64,
    /// Author.
    pub author_id: Uuid,
    /// Text.
    pub body: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
    /// Whether the viewer follows the author.
    pub following: bool,
}

/// An article's comments, oldest first.
pub async fn comments(
    db: &Db,
    viewer: Option<Uuid>,
    article: Uuid,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, CommentRow>(
            "SELECT c.id, c.author_id, c.body, c.created_at, c.updated_at, \
             EXISTS (SELECT 1 FROM blog_follows w WHERE w.followee_id = c.author_id AND w.follower_id = $1) AS following \
             FROM blog_comments c WHERE c.article_id = $2 ORDER BY c.id",
        )
        .bind(viewer)
        .bind(article)
        .fetch_all(conn)
        .await
    })
}

/// Adds a comment and records the event `event_for` makes of its id, in one
/// transaction; returns the id.
pub async fn add_comment(
    db: &Db,
    article: Uuid,
    author: Uuid,
    body: &str,
    now: DateTime<Utc>,
    event_for: impl FnOnce(i64) -> Event,
) -> Result<i64, sqlx::Error> {
    let mut tx = db.begin().await?;
    let id: i64 = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO blog_comments (article_id, author_id, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(article)
        .bind(author)
        .bind(body)
        .bind(now)
        .fetch_one(conn)
        .await
    })?;
    record_in(&mut tx, &event_for(id)).await?;
    tx.commit().await?;
    Ok(id)
}

/// A comment's author, if the comment exists on that article.
pub async fn comment_author(db: &Db, article: Uuid, id: i64) -> Result<Option<Uuid>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT author_id FROM blog_comments WHERE id = $1 AND article_id = $2")
            .bind(id)
            .bind(article)
            .fetch_optional(conn)
            .await
    })
}

/// Deletes a comment.
pub async fn delete_comment(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM blog_comments WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}
