//! Rooms and their members.

use basalt_platform::db::{Db, in_list, unique_violation};
use basalt_platform::{with_conn, with_tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A room as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// `public`, `private`, `invite_only` or `direct`.
    pub kind: String,
    /// Changes only if offsets start over.
    pub epoch: String,
    /// The newest message's offset.
    pub last_offset: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A membership (or invitation, or ban) as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    /// The user.
    pub user_id: Uuid,
    /// `owner`, `moderator` or `member`.
    pub role: String,
    /// `joined`, `invited` or `banned`.
    pub state: String,
    /// Muted by a moderator.
    pub muted: bool,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A room with the viewer's membership columns (NULL when none).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomWithMember {
    /// The room.
    #[sqlx(flatten)]
    pub room: RoomRow,
    /// The viewer's role, if a member.
    pub role: Option<String>,
    /// The viewer's state, if a member.
    pub state: Option<String>,
    /// Whether the viewer is muted.
    pub muted: Option<bool>,
    /// The viewer's read offset.
    pub read_offset: Option<i64>,
}

/// Rooms per statement of [`heads`].
const HEADS_CHUNK: usize = 256;

macro_rules! room_with_member {
    () => {
        "SELECT r.id, r.name, r.kind, r.epoch, r.last_offset, r.created_at, \
         m.role, m.state, m.muted, m.read_offset \
         FROM chat_rooms r LEFT JOIN chat_members m ON m.room_id = r.id AND m.user_id = $1 "
    };
}

/// Creates a room with its creator as owner, in one transaction.
pub async fn create_room(
    db: &Db,
    room: &RoomRow,
    owner: Uuid,
    direct: Option<(&str, Uuid)>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    with_tx!(&mut tx, |conn| {
        sqlx::query(
            "INSERT INTO chat_rooms (id, name, kind, epoch, last_offset, direct_key, created_by, created_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7)",
        )
        .bind(room.id)
        .bind(&room.name)
        .bind(&room.kind)
        .bind(&room.epoch)
        .bind(direct.map(|(key, _)| key))
        .bind(owner)
        .bind(room.created_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    let mut members = vec![(owner, if direct.is_some() { "member" } else { "owner" })];
    if let Some((_, other)) = direct {
        members.push((other, "member"));
    }
    for (user, role) in members {
        with_tx!(&mut tx, |conn| {
            sqlx::query(
                "INSERT INTO chat_members (room_id, user_id, role, state, muted, read_offset, since) \
                 VALUES ($1, $2, $3, 'joined', FALSE, 0, $4)",
            )
            .bind(room.id)
            .bind(user)
            .bind(role)
            .bind(room.created_at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await
}

/// The direct room of a pair, created if there is none yet (two callers at
/// once get the same room: the key is unique).
pub async fn direct_room(
    db: &Db,
    key: &str,
    room: &RoomRow,
    a: Uuid,
    b: Uuid,
) -> Result<Uuid, sqlx::Error> {
    if let Some(id) = direct_room_id(db, key).await? {
        return Ok(id);
    }
    match create_room(db, room, a, Some((key, b))).await {
        Ok(()) => Ok(room.id),
        Err(e) if unique_violation(&e).is_some() => direct_room_id(db, key)
            .await?
            .ok_or(sqlx::Error::RowNotFound),
        Err(e) => Err(e),
    }
}

async fn direct_room_id(db: &Db, key: &str) -> Result<Option<Uuid>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT id FROM chat_rooms WHERE direct_key = $1")
            .bind(key)
            .fetch_optional(conn)
            .await
    })
}

/// A room and `viewer`'s membership of it.
pub async fn room_for(
    db: &Db,
    viewer: Uuid,
    room: Uuid,
) -> Result<Option<RoomWithMember>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, RoomWithMember>(concat!(room_with_member!(), "WHERE r.id = $2"))
            .bind(viewer)
            .bind(room)
            .fetch_optional(conn)
            .await
    })
}

/// The rooms `viewer` is in (or invited to, or banned from), then the
/// listed rooms (public and invite-only) they are not in, each by name; at
/// most `limit`.
pub async fn rooms_for(
    db: &Db,
    viewer: Uuid,
    limit: i64,
) -> Result<Vec<RoomWithMember>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, RoomWithMember>(concat!(
            room_with_member!(),
            "WHERE m.user_id IS NOT NULL OR r.kind IN ('public', 'invite_only') \
             ORDER BY CASE WHEN m.user_id IS NULL THEN 1 ELSE 0 END, r.name, r.id LIMIT $2"
        ))
        .bind(viewer)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}

/// One membership row.
pub async fn member(db: &Db, room: Uuid, user: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, MemberRow>(
            "SELECT user_id, role, state, muted, since \
             FROM chat_members WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room)
        .bind(user)
        .fetch_optional(conn)
        .await
    })
}

/// Every membership row of a room (members, invitations, bans).
pub async fn members(db: &Db, room: Uuid) -> Result<Vec<MemberRow>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as::<_, MemberRow>(
            "SELECT user_id, role, state, muted, since \
             FROM chat_members WHERE room_id = $1 ORDER BY since, user_id",
        )
        .bind(room)
        .fetch_all(conn)
        .await
    })
}

/// The ids of the rooms `user` has joined (for presence notices).
pub async fn joined_room_ids(db: &Db, user: Uuid, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT room_id FROM chat_members WHERE user_id = $1 AND state = 'joined' \
             ORDER BY room_id LIMIT $2",
        )
        .bind(user)
        .bind(limit)
        .fetch_all(conn)
        .await
    })
}

/// Sets `user`'s row in `room` to `role` and `state` (inserted if absent;
/// the read offset and mute flag of an existing row are kept).
pub async fn put_member(
    db: &Db,
    room: Uuid,
    user: Uuid,
    role: &str,
    state: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO chat_members (room_id, user_id, role, state, muted, read_offset, since) \
             VALUES ($1, $2, $3, $4, FALSE, 0, $5) \
             ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role, state = excluded.state",
        )
        .bind(room)
        .bind(user)
        .bind(role)
        .bind(state)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Changes a member's role and mute flag.
pub async fn update_member(
    db: &Db,
    room: Uuid,
    user: Uuid,
    role: &str,
    muted: bool,
) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE chat_members SET role = $3, muted = $4 WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room)
        .bind(user)
        .bind(role)
        .bind(muted)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Removes `user`'s row from `room`; whether there was one.
pub async fn delete_member(db: &Db, room: Uuid, user: Uuid) -> Result<bool, sqlx::Error> {
    let n = with_conn!(db, |conn| {
        sqlx::query("DELETE FROM chat_members WHERE room_id = $1 AND user_id = $2")
            .bind(room)
            .bind(user)
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n > 0)
}

/// The newest offset of each of `rooms` that exists.
pub async fn heads(db: &Db, rooms: &[Uuid]) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(rooms.len());
    for chunk in rooms.chunks(HEADS_CHUNK) {
        let ids = in_list::padded(chunk);
        let sql = in_list::expand(
            "SELECT id, last_offset FROM chat_rooms WHERE id IN ({list})",
            1,
            &[ids.len()],
        );
        let rows: Vec<(Uuid, i64)> = with_conn!(db, |conn| {
            let mut query = sqlx::query_as(sql);
            for id in &ids {
                query = query.bind(*id);
            }
            query.fetch_all(conn).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}
