//! Read positions, and unread and mention counts that every device and
//! node agrees on: they are computed from the database, and each move is
//! pushed to all of the user's connections.

use basalt_platform::error::Failure;
use uuid::Uuid;

use super::{Chat, invalid};
use crate::frames;
use crate::model::Unread;
use crate::store::reads::{self, UnreadRow};

fn unread_of(row: UnreadRow) -> Unread {
    Unread {
        room: row.room_id,
        unread: (row.last_offset - row.read_offset).max(0),
        mentions: row.mentions,
        read_offset: row.read_offset,
        last_offset: row.last_offset,
    }
}

impl Chat {
    /// Moves the caller's read position forward to `offset` (a lower one
    /// changes nothing; one past the newest message counts as the newest)
    /// and tells their other connections.
    pub async fn mark_read(&self, user: Uuid, room: Uuid, offset: i64) -> Result<Unread, Failure> {
        if offset < 0 {
            return Err(invalid("offset", "must not be negative"));
        }
        let access = self.access(user, room).await?;
        access.require_joined()?;
        let offset = offset.min(access.room.last_offset);
        reads::mark_read(&self.db, room, user, offset).await?;
        let unread = reads::unread_in(&self.db, user, room)
            .await?
            .map(unread_of)
            .ok_or_else(|| super::not_found("room"))?;
        self.live
            .user_event(
                user,
                &frames::read(room, unread.read_offset, unread.unread, unread.mentions),
            )
            .await;
        Ok(unread)
    }

    /// Unread and mention counts of every room the caller has joined.
    pub async fn unread(&self, user: Uuid) -> Result<Vec<Unread>, Failure> {
        Ok(reads::unread(&self.db, user)
            .await?
            .into_iter()
            .map(unread_of)
            .collect())
    }
}
