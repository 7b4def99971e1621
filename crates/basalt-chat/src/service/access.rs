//! Who may do what in a room: the one place these rules live.
//!
//! - **read** (history, subscribe): joined members; anyone signed in for a
//!   public room, unless banned;
//! - **send**, react, mark read: joined members who are not muted (muted
//!   members still mark read);
//! - **moderate** (add or invite, kick, ban, mute): moderators and the
//!   owner, over members of a lower role; the owner alone changes roles.
//!
//! A room the caller may not know of (private or direct, and they are not
//! in it) is "not found", not "forbidden".

use basalt_platform::error::Failure;
use uuid::Uuid;

use super::{Chat, forbidden, not_found};
use crate::model::{MemberRole, MemberState, Membership, Room, RoomKind};
use crate::store::rooms::{self, RoomWithMember};

/// A room and the caller's standing in it.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    /// The room, as the caller sees it.
    pub room: Room,
    /// The caller.
    pub user: Uuid,
}

impl RoomAccess {
    pub(crate) fn from_row(row: RoomWithMember, user: Uuid) -> Option<Self> {
        let kind = RoomKind::parse(&row.room.kind)?;
        let membership = match (row.role, row.state) {
            (Some(role), Some(state)) => Some(Membership {
                role: MemberRole::parse(&role)?,
                state: MemberState::parse(&state)?,
                muted: row.muted.unwrap_or(false),
                read_offset: row.read_offset.unwrap_or(0),
            }),
            _ => None,
        };
        Some(Self {
            room: Room {
                id: row.room.id,
                name: row.room.name,
                kind,
                epoch: row.room.epoch,
                last_offset: row.room.last_offset,
                created_at: row.room.created_at,
                membership,
            },
            user,
        })
    }

    fn state(&self) -> Option<MemberState> {
        self.room.membership.as_ref().map(|m| m.state)
    }

    /// Whether the caller has joined.
    pub fn joined(&self) -> bool {
        self.state() == Some(MemberState::Joined)
    }

    /// The caller's role, when joined.
    pub fn role(&self) -> Option<MemberRole> {
        self.room
            .membership
            .as_ref()
            .filter(|m| m.state == MemberState::Joined)
            .map(|m| m.role)
    }

    /// Whether the room is listed to people outside it.
    pub fn listed(&self) -> bool {
        matches!(self.room.kind, RoomKind::Public | RoomKind::InviteOnly)
    }

    /// May the caller know the room exists?
    pub fn visible(&self) -> bool {
        self.listed() || self.room.membership.is_some()
    }

    /// May the caller read the room's messages?
    pub fn can_read(&self) -> bool {
        match self.state() {
            Some(MemberState::Joined) => true,
            Some(MemberState::Banned) => false,
            _ => self.room.kind == RoomKind::Public,
        }
    }

    /// Fails unless the caller may read.
    pub fn require_read(&self) -> Result<(), Failure> {
        if self.can_read() {
            Ok(())
        } else if self.state() == Some(MemberState::Banned) {
            Err(forbidden("you are banned from this room"))
        } else {
            Err(forbidden("join the room to read it"))
        }
    }

    /// Fails unless the caller has joined.
    pub fn require_joined(&self) -> Result<(), Failure> {
        if self.joined() {
            Ok(())
        } else {
            Err(forbidden("you are not a member of this room"))
        }
    }

    /// Fails unless the caller has joined and is not muted.
    pub fn require_send(&self) -> Result<(), Failure> {
        self.require_joined()?;
        if self.room.membership.as_ref().is_some_and(|m| m.muted) {
            return Err(forbidden("you are muted in this room"));
        }
        Ok(())
    }

    /// Fails unless the caller moderates the room (never a direct room).
    pub fn require_moderator(&self) -> Result<MemberRole, Failure> {
        match self.role() {
            Some(role) if role >= MemberRole::Moderator && self.room.kind != RoomKind::Direct => {
                Ok(role)
            }
            _ => Err(forbidden("only moderators may do this")),
        }
    }
}

impl Chat {
    /// The room as `user` sees it, if they may know of it.
    pub async fn access(&self, user: Uuid, room: Uuid) -> Result<RoomAccess, Failure> {
        rooms::room_for(&self.db, user, room)
            .await?
            .and_then(|row| RoomAccess::from_row(row, user))
            .filter(RoomAccess::visible)
            .ok_or_else(|| not_found("room"))
    }
}
