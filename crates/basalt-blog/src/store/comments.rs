//! Comments: an article's, a page of several articles' at once, one by id,
//! adding and deleting.

use std::collections::HashMap;

use basalt_platform::db::{Db, in_list};
use basalt_platform::events::{Event, record_in};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use uuid::Uuid;

/// A comment with the viewer's `following` flag for its author.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    /// Id.
    pub id: i64,
    /// The article it is on.
    pub article_id: Uuid,
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

/// Columns of [`CommentRow`] from a table or subquery aliased `c`; `$1` is
/// the viewer (NULL for anonymous).
macro_rules! comment_columns {
    () => {
        "c.id, c.article_id, c.author_id, c.body, c.created_at, c.updated_at, \
         EXISTS (SELECT 1 FROM blog_follows w WHERE w.followee_id = c.author_id AND w.follower_id = $1) AS following"
    };
}

/// An article's comments, oldest first.
pub async fn comments(
    db: &Db,
    viewer: Option<Uuid>,
    article: Uuid,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM blog_comments c WHERE c.article_id = $2 ORDER BY c.id"
        ))
        .bind(viewer)
        .bind(article)
        .fetch_all(conn)
        .await
    })
}

/// One comment by id.
pub async fn comment_by_id(
    db: &Db,
    viewer: Option<Uuid>,
    id: i64,
) -> Result<Option<CommentRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, CommentRow>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM blog_comments c WHERE c.id = $2"
        ))
        .bind(viewer)
        .bind(id)
        .fetch_optional(conn)
        .await
    })
}

/// Up to `limit` comments of each of `articles` with ids above `after`,
/// oldest first, in one statement: the window numbers each article's
/// comments over the `(article_id, id)` index, and the viewer's flag is
/// computed for the kept rows only. Ordered by article, then id. Boxed,
/// like [`super::list`].
///
/// The numbering reads every comment of those articles past `after`
/// (PostgreSQL stops numbering at `limit` but not the scan): a few
/// milliseconds for 10,000 comments. A per-article bound in a subquery
/// would read only `limit` rows each, but PostgreSQL flattens it into a
/// scan of every comment; the window is the plan both databases keep.
pub fn comment_pages<'a>(
    db: &'a Db,
    viewer: Option<Uuid>,
    articles: &'a [Uuid],
    after: i64,
    limit: i64,
) -> BoxFuture<'a, Result<Vec<CommentRow>, sqlx::Error>> {
    Box::pin(async move {
        if articles.is_empty() {
            return Ok(Vec::new());
        }
        let articles = in_list::padded(articles);
        let sql = in_list::expand(
            concat!(
                "SELECT ",
                comment_columns!(),
                " FROM (SELECT id, article_id, author_id, body, created_at, updated_at, \
                 ROW_NUMBER() OVER (PARTITION BY article_id ORDER BY id) AS n \
                 FROM blog_comments WHERE article_id IN ({list}) AND id > $2) c \
                 WHERE c.n <= $3 ORDER BY c.article_id, c.id"
            ),
            4,
            &[articles.len()],
        );
        with_conn!(db, |conn| {
            let mut query = sqlx::query_as::<_, CommentRow>(sql)
                .bind(viewer)
                .bind(after)
                .bind(limit);
            for id in &articles {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })
    })
}

/// How many comments each of `articles` has (those with none are absent),
/// in one statement over the `(article_id, id)` index. Boxed, like
/// [`super::list`].
pub fn comment_totals<'a>(
    db: &'a Db,
    articles: &'a [Uuid],
) -> BoxFuture<'a, Result<HashMap<Uuid, i64>, sqlx::Error>> {
    Box::pin(async move {
        if articles.is_empty() {
            return Ok(HashMap::new());
        }
        let articles = in_list::padded(articles);
        let sql = in_list::expand(
            "SELECT article_id, CAST(count(*) AS BIGINT) FROM blog_comments \
             WHERE article_id IN ({list}) GROUP BY article_id",
            1,
            &[articles.len()],
        );
        let rows: Vec<(Uuid, i64)> = with_conn!(db, |conn| {
            let mut query = sqlx::query_as(sql);
            for id in &articles {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        Ok(rows.into_iter().collect())
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

/// Where a comment is and who wrote it: what deleting it checks.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct CommentOwner {
    /// The article it is on.
    pub article_id: Uuid,
    /// Its author.
    pub author_id: Uuid,
}

/// The article and author of comment `id`, if it exists.
pub async fn comment_owner(db: &Db, id: i64) -> Result<Option<CommentOwner>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, CommentOwner>(
            "SELECT article_id, author_id FROM blog_comments WHERE id = $1",
        )
        .bind(id)
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
