//! Article lists (RealWorld's offset pages and GraphQL's keyset pages, one
//! statement per filter for both), their counts, the feed and the XML
//! feeds' newest articles.

use basalt_platform::db::Db;
use basalt_platform::with_conn;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::ArticleRow;

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

/// One page of articles (no bodies), newest first, with the viewer's flags:
/// `limit` rows after skipping `offset` (RealWorld's paging).
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
    Box::pin(list_below(db, viewer, filter, Uuid::max(), limit, offset))
}

/// Like [`list`], keyset-paged: the `limit` newest articles older than
/// `after` (all when `None`). The same statements bound by the cursor, so
/// that the index seeks to it: a page deep in the list costs what the first
/// one does.
pub fn list_after<'a>(
    db: &'a Db,
    viewer: Option<Uuid>,
    filter: &'a ArticleFilter,
    after: Option<Uuid>,
    limit: i64,
) -> BoxFuture<'a, Result<Vec<ArticleRow>, sqlx::Error>> {
    Box::pin(list_below(
        db,
        viewer,
        filter,
        after.unwrap_or(Uuid::max()),
        limit,
        0,
    ))
}

/// The list's statements: articles with ids below `below` (the largest
/// UUID, which no v7 id is, for "from the newest"), so that offset and
/// keyset paging share one statement per filter and its index. A joined
/// statement bounds both sides: PostgreSQL does not carry an inequality
/// across the join, and a merge join would otherwise walk the articles'
/// primary key from the newest down to the cursor.
async fn list_below(
    db: &Db,
    viewer: Option<Uuid>,
    filter: &ArticleFilter,
    below: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    // Every single-filter statement takes the same parameters: the viewer,
    // a UUID key ($2) and a text key ($3), the unused one NULL, then the
    // limit, the offset and the id bound.
    let single: Option<(&'static str, Option<Uuid>, Option<&str>)> = match filter {
        ArticleFilter {
            author: None,
            tag: None,
            favorited_by: None,
        } => Some((
            concat!(
                "SELECT ",
                article_columns!("'' AS body"),
                " FROM blog_articles a WHERE $2 IS NULL AND $3 IS NULL AND a.id < $6 \
                 ORDER BY a.id DESC LIMIT $4 OFFSET $5"
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
                " FROM blog_articles a WHERE a.author_id = $2 AND $3 IS NULL AND a.id < $6 \
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
                 WHERE t.tag = $3 AND $2 IS NULL AND t.article_id < $6 AND a.id < $6 \
                 ORDER BY t.tag DESC, t.article_id DESC LIMIT $4 OFFSET $5"
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
                 WHERE fb.user_id = $2 AND $3 IS NULL AND fb.article_id < $6 AND a.id < $6 \
                 ORDER BY fb.user_id DESC, fb.article_id DESC LIMIT $4 OFFSET $5"
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
                .bind(below)
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
            "AND a.id < $7 ORDER BY a.id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(viewer)
        .bind(filter.author)
        .bind(&filter.tag)
        .bind(filter.favorited_by)
        .bind(limit)
        .bind(offset)
        .bind(below)
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

/// Articles by authors `viewer` follows, newest first (their total is
/// [`feed_count`], which the service caches).
pub async fn feed(
    db: &Db,
    viewer: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    feed_below(db, viewer, Uuid::max(), limit, offset).await
}

/// Like [`feed`]'s rows, keyset-paged: the `limit` newest older than
/// `after` (all when `None`).
pub async fn feed_after(
    db: &Db,
    viewer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    feed_below(db, viewer, after.unwrap_or(Uuid::max()), limit, 0).await
}

/// The feed's statement, bounded by id like [`list`]'s.
async fn feed_below(
    db: &Db,
    viewer: Uuid,
    below: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<ArticleRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, ArticleRow>(concat!(
            "SELECT ",
            article_columns!("'' AS body"),
            " FROM blog_articles a WHERE a.author_id IN (SELECT followee_id FROM blog_follows WHERE follower_id = $1) ",
            "AND a.id < $4 ORDER BY a.id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(viewer)
        .bind(limit)
        .bind(offset)
        .bind(below)
        .fetch_all(conn)
        .await
    })
}

/// How many articles are in `viewer`'s feed.
pub async fn feed_count(db: &Db, viewer: Uuid) -> Result<i64, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT count(*) FROM blog_articles a WHERE a.author_id IN \
             (SELECT followee_id FROM blog_follows WHERE follower_id = $1)",
        )
        .bind(viewer)
        .fetch_one(conn)
        .await
    })
}
