//! Messages, their reactions and mentions. Sending takes the room's next
//! offset in the same transaction as the insert ([`send`]).

use std::collections::HashMap;

use basalt_platform::db::{Db, in_list, unique_violation};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A message as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    /// Id.
    pub id: i64,
    /// Its room.
    pub room_id: Uuid,
    /// Its offset in the room.
    pub room_offset: i64,
    /// Author.
    pub author_id: Uuid,
    /// Markdown; empty once deleted.
    pub body: String,
    /// Rendered HTML; empty once deleted.
    pub body_html: String,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// Sent at.
    pub created_at: DateTime<Utc>,
    /// Last edited at.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted at.
    pub deleted_at: Option<DateTime<Utc>>,
}

macro_rules! message_columns {
    () => {
        "SELECT id, room_id, room_offset, author_id, body, body_html, reply_to, created_at, \
         edited_at, deleted_at FROM chat_messages "
    };
}

/// A message to send.
#[derive(Debug)]
pub struct NewMessage<'a> {
    /// The room.
    pub room: Uuid,
    /// The author.
    pub author: Uuid,
    /// Markdown.
    pub body: &'a str,
    /// Its rendering.
    pub body_html: &'a str,
    /// The message replied to (checked to be in the room).
    pub reply_to: Option<i64>,
    /// The client's idempotency key.
    pub nonce: Option<&'a str>,
    /// The room members it mentions.
    pub mentions: &'a [Uuid],
    /// Now.
    pub now: DateTime<Utc>,
}

/// What a send committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// The message's id.
    pub id: i64,
    /// Its offset.
    pub offset: i64,
    /// Whether this call posted it (false: the nonce was used already, and
    /// this is the first message with it).
    pub new: bool,
}

/// Posts a message: takes the room's next offset, inserts the message and
/// its mentions and moves the author's read offset to it, in one
/// transaction. The offset update holds the room's row until the commit, so
/// offsets are gapless and in commit order across nodes. A nonce already
/// used by the author in the room returns that message instead.
pub async fn send(db: &Db, new: &NewMessage<'_>) -> Result<Sent, sqlx::Error> {
    if let Some(nonce) = new.nonce
        && let Some(sent) = by_nonce(db, new.room, new.author, nonce).await?
    {
        return Ok(sent);
    }
    match insert(db, new).await {
        Err(e) if unique_violation(&e).is_some_and(|c| c.contains("nonce")) => {
            let nonce = new.nonce.unwrap_or_default();
            by_nonce(db, new.room, new.author, nonce).await?.ok_or(e)
        }
        other => other,
    }
}

async fn insert(db: &Db, new: &NewMessage<'_>) -> Result<Sent, sqlx::Error> {
    let mut tx = db.begin().await?;
    let offset: i64 = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "UPDATE chat_rooms SET last_offset = last_offset + 1 WHERE id = $1 RETURNING last_offset",
        )
        .bind(new.room)
        .fetch_one(conn)
        .await
    })?;
    let id: i64 = with_tx!(&mut tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO chat_messages (room_id, room_offset, author_id, body, body_html, reply_to, nonce, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.room)
        .bind(offset)
        .bind(new.author)
        .bind(new.body)
        .bind(new.body_html)
        .bind(new.reply_to)
        .bind(new.nonce)
        .bind(new.now)
        .fetch_one(conn)
        .await
    })?;
    for user in new.mentions {
        with_tx!(&mut tx, |conn| {
            sqlx::query(
                "INSERT INTO chat_mentions (user_id, room_id, room_offset, message_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(*user)
            .bind(new.room)
            .bind(offset)
            .bind(id)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    with_tx!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE chat_members SET read_offset = $3 \
             WHERE room_id = $1 AND user_id = $2 AND read_offset < $3",
        )
        .bind(new.room)
        .bind(new.author)
        .bind(offset)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    tx.commit().await?;
    Ok(Sent {
        id,
        offset,
        new: true,
    })
}

async fn by_nonce(
    db: &Db,
    room: Uuid,
    author: Uuid,
    nonce: &str,
) -> Result<Option<Sent>, sqlx::Error> {
    let row: Option<(i64, i64)> = with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT id, room_offset FROM chat_messages \
             WHERE room_id = $1 AND author_id = $2 AND nonce = $3",
        )
        .bind(room)
        .bind(author)
        .bind(nonce)
        .fetch_optional(conn)
        .await
    })?;
    Ok(row.map(|(id, offset)| Sent {
        id,
        offset,
        new: false,
    }))
}

/// One message of a room.
pub async fn message(db: &Db, room: Uuid, id: i64) -> Result<Option<MessageRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, MessageRow>(concat!(
            message_columns!(),
            "WHERE room_id = $1 AND id = $2"
        ))
        .bind(room)
        .bind(id)
        .fetch_optional(conn)
        .await
    })
}

/// Up to `limit` messages of a room with offsets above `after`, oldest first.
pub async fn after(
    db: &Db,
    room: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, MessageRow>(concat!(
            message_columns!(),
            "WHERE room_id = $1 AND room_offset > $2 ORDER BY room_offset LIMIT $3"
        ))
        .bind(room)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}

/// Up to `limit` messages of a room with offsets above `after` and below
/// `before`, the newest such, oldest first.
pub async fn before(
    db: &Db,
    room: Uuid,
    after: i64,
    before: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    let mut rows = with_conn!(db, |conn| {
        sqlx::query_as::<_, MessageRow>(concat!(
            message_columns!(),
            "WHERE room_id = $1 AND room_offset > $2 AND room_offset < $3 \
             ORDER BY room_offset DESC LIMIT $4"
        ))
        .bind(room)
        .bind(after)
        .bind(before)
        .bind(limit)
        .fetch_all(conn)
        .await
    })?;
    rows.reverse();
    Ok(rows)
}

/// Replaces a message's body (its author's edit).
pub async fn edit(
    db: &Db,
    id: i64,
    body: &str,
    body_html: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE chat_messages SET body = $2, body_html = $3, edited_at = $4 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(body)
        .bind(body_html)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Empties a message, leaving its tombstone (id and offset), and forgets
/// its mentions and reactions.
pub async fn delete(db: &Db, id: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, |conn| {
        sqlx::query(
            "UPDATE chat_messages SET body = '', body_html = '', deleted_at = $2 \
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    for table in [
        "DELETE FROM chat_mentions WHERE message_id = $1",
        "DELETE FROM chat_reactions WHERE message_id = $1",
    ] {
        with_tx!(&mut tx, |conn| {
            sqlx::query(table)
                .bind(id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await
}

/// Adds (`add`) or removes a user's reaction; whether anything changed.
pub async fn react(
    db: &Db,
    message: i64,
    user: Uuid,
    emoji: &str,
    add: bool,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n = if add {
        with_conn!(db, |conn| {
            sqlx::query(
                "INSERT INTO chat_reactions (message_id, user_id, emoji, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(message)
            .bind(user)
            .bind(emoji)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?
    } else {
        with_conn!(db, |conn| {
            sqlx::query(
                "DELETE FROM chat_reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
            )
            .bind(message)
            .bind(user)
            .bind(emoji)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?
    };
    Ok(n > 0)
}

/// Reaction counts and mentioned users of each of `messages`, in two
/// statements.
pub async fn extras(
    db: &Db,
    messages: &[i64],
) -> Result<(HashMap<i64, Vec<(String, i64)>>, HashMap<i64, Vec<Uuid>>), sqlx::Error> {
    let mut reactions: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    let mut mentions: HashMap<i64, Vec<Uuid>> = HashMap::new();
    if messages.is_empty() {
        return Ok((reactions, mentions));
    }
    for chunk in messages.chunks(256) {
        let ids = in_list::padded(chunk);
        let sql = in_list::expand(
            "SELECT message_id, emoji, CAST(count(*) AS BIGINT) FROM chat_reactions \
             WHERE message_id IN ({list}) GROUP BY message_id, emoji ORDER BY message_id, MIN(created_at), emoji",
            1,
            &[ids.len()],
        );
        let rows: Vec<(i64, String, i64)> = with_conn!(db, |conn| {
            let mut query = sqlx::query_as(sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        for (message, emoji, count) in rows {
            reactions.entry(message).or_default().push((emoji, count));
        }
        let sql = in_list::expand(
            "SELECT message_id, user_id FROM chat_mentions WHERE message_id IN ({list}) \
             ORDER BY message_id, user_id",
            1,
            &[ids.len()],
        );
        let rows: Vec<(i64, Uuid)> = with_conn!(db, |conn| {
            let mut query = sqlx::query_as(sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        for (message, user) in rows {
            mentions.entry(message).or_default().push(user);
        }
    }
    Ok((reactions, mentions))
}
