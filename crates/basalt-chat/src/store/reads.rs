//! Read positions and the unread and mention counts derived from them.

use basalt_platform::Db;
use basalt_platform::with_conn;
use uuid::Uuid;

/// Unread state of one room, as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnreadRow {
    /// The room.
    pub room_id: Uuid,
    /// Its newest offset.
    pub last_offset: i64,
    /// The user's read offset.
    pub read_offset: i64,
    /// Mentions of the user after the read offset.
    pub mentions: i64,
}

macro_rules! unread_select {
    () => {
        "SELECT m.room_id, r.last_offset, m.read_offset, \
         (SELECT CAST(count(*) AS BIGINT) FROM chat_mentions x \
          WHERE x.user_id = m.user_id AND x.room_id = m.room_id AND x.room_offset > m.read_offset) AS mentions \
         FROM chat_members m JOIN chat_rooms r ON r.id = m.room_id \
         WHERE m.user_id = $1 AND m.state = 'joined' "
    };
}

/// Moves `user`'s read offset in `room` forward to `offset` (never back).
pub async fn mark_read(db: &Db, room: Uuid, user: Uuid, offset: i64) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE chat_members SET read_offset = $3 \
             WHERE room_id = $1 AND user_id = $2 AND read_offset < $3",
        )
        .bind(room)
        .bind(user)
        .bind(offset)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Unread state of every room `user` has joined.
pub async fn unread(db: &Db, user: Uuid) -> Result<Vec<UnreadRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, UnreadRow>(concat!(unread_select!(), "ORDER BY m.room_id"))
            .bind(user)
            .fetch_all(conn)
            .await
    })
}

/// Unread state of one room.
pub async fn unread_in(db: &Db, user: Uuid, room: Uuid) -> Result<Option<UnreadRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, UnreadRow>(concat!(unread_select!(), "AND m.room_id = $2"))
            .bind(user)
            .bind(room)
            .fetch_optional(conn)
            .await
    })
}
