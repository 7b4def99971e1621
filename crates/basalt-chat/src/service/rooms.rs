//! Rooms: creating, listing, joining, leaving; direct rooms.

use basalt_platform::error::Failure;
use chrono::Utc;
use uuid::Uuid;

use super::access::RoomAccess;
use super::{Chat, forbidden, invalid};
use crate::model::{MemberRole, MemberState, Room, RoomKind};
use crate::store::rooms::{self, RoomRow};

/// The most rooms a list returns.
const LIST_LIMIT: i64 = 500;

/// A room name: trimmed, 1 to 80 characters, one line.
fn room_name(name: &str) -> Result<String, Failure> {
    let name = name.trim();
    let count = name.chars().count();
    if !(1..=80).contains(&count) {
        return Err(invalid("name", "must be 1 to 80 characters long"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must be one line of text"));
    }
    Ok(name.to_owned())
}

fn new_room_row(name: String, kind: RoomKind) -> RoomRow {
    RoomRow {
        id: Uuid::now_v7(),
        name,
        kind: kind.as_str().to_owned(),
        // Random, so that a room recreated under an old id could never pass
        // for the old one's history.
        epoch: Uuid::new_v4().simple().to_string()[..16].to_owned(),
        last_offset: 0,
        created_at: Utc::now(),
    }
}

impl Chat {
    /// Creates a room with `user` as its owner.
    pub async fn create_room(
        &self,
        user: Uuid,
        name: &str,
        kind: RoomKind,
    ) -> Result<Room, Failure> {
        let name = room_name(name)?;
        if kind == RoomKind::Direct {
            return Err(invalid(
                "kind",
                "must be public, private or invite_only (direct rooms come from POST /api/chat/dms)",
            ));
        }
        let row = new_room_row(name, kind);
        rooms::create_room(&self.db, &row, user, None).await?;
        Ok(self.access(user, row.id).await?.room)
    }

    /// The rooms `user` is in, then the listed ones they are not in.
    pub async fn rooms(&self, user: Uuid) -> Result<Vec<Room>, Failure> {
        Ok(rooms::rooms_for(&self.db, user, LIST_LIMIT)
            .await?
            .into_iter()
            .filter_map(|row| RoomAccess::from_row(row, user))
            .map(|access| access.room)
            .collect())
    }

    /// One room, if `user` may know of it.
    pub async fn room(&self, user: Uuid, room: Uuid) -> Result<Room, Failure> {
        Ok(self.access(user, room).await?.room)
    }

    /// Joins a public room, or a room `user` was invited to.
    pub async fn join(&self, user: Uuid, room: Uuid) -> Result<Room, Failure> {
        let access = self.access(user, room).await?;
        let state = access.room.membership.as_ref().map(|m| m.state);
        match (access.room.kind, state) {
            (_, Some(MemberState::Joined)) => return Ok(access.room),
            (_, Some(MemberState::Banned)) => {
                return Err(forbidden("you are banned from this room"));
            }
            (RoomKind::Direct, _) => return Err(forbidden("direct rooms cannot be joined")),
            (RoomKind::Public, _) | (_, Some(MemberState::Invited)) => {}
            (RoomKind::InviteOnly | RoomKind::Private, None) => {
                return Err(forbidden("this room needs an invitation"));
            }
        }
        let role = access
            .room
            .membership
            .as_ref()
            .map_or(MemberRole::Member, |m| m.role);
        rooms::put_member(
            &self.db,
            room,
            user,
            role.as_str(),
            MemberState::Joined.as_str(),
            Utc::now(),
        )
        .await?;
        Ok(self.access(user, room).await?.room)
    }

    /// Leaves a room. An owner who leaves hands the room to the longest
    /// standing moderator, or else member.
    pub async fn leave(&self, user: Uuid, room: Uuid) -> Result<(), Failure> {
        let access = self.access(user, room).await?;
        access.require_joined()?;
        if access.room.kind == RoomKind::Direct {
            return Err(forbidden("direct rooms cannot be left"));
        }
        rooms::delete_member(&self.db, room, user).await?;
        if access.role() == Some(MemberRole::Owner) {
            let heir = rooms::members(&self.db, room)
                .await?
                .into_iter()
                .filter(|m| m.state == MemberState::Joined.as_str())
                .min_by_key(|m| (m.role != MemberRole::Moderator.as_str(), m.since));
            if let Some(heir) = heir {
                rooms::update_member(
                    &self.db,
                    room,
                    heir.user_id,
                    MemberRole::Owner.as_str(),
                    heir.muted,
                )
                .await?;
            }
        }
        if access.room.kind != RoomKind::Public {
            self.live.removed(user, room).await;
        }
        Ok(())
    }

    /// The direct room of `user` and `username`, created on first use.
    pub async fn direct_room(&self, user: Uuid, username: &str) -> Result<Room, Failure> {
        let other = self.user_named(username).await?;
        if other.id == user {
            return Err(invalid("username", "must be someone else"));
        }
        let me = self.user(user).await?;
        let (a, b) = if me.id < other.id {
            (&me, &other)
        } else {
            (&other, &me)
        };
        let key = format!("{}:{}", a.id, b.id);
        let row = new_room_row(format!("{}, {}", a.username, b.username), RoomKind::Direct);
        let id = rooms::direct_room(&self.db, &key, &row, me.id, other.id).await?;
        Ok(self.access(user, id).await?.room)
    }
}
