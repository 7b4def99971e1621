//! What the chat's REST API reads and writes, in snake_case like the
//! identity API. The socket writes the same messages in camelCase
//! ([`crate::ws::frames`]), as `docs/chat-protocol.md` documents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Who can see and join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Listed to everyone; anyone signed in may read it and join.
    Public,
    /// Listed to its members only; moderators add members.
    Private,
    /// Listed to everyone; joining needs a moderator's invitation.
    InviteOnly,
    /// A conversation between two users (`POST /api/chat/dms`).
    Direct,
}

impl RoomKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::InviteOnly => "invite_only",
            Self::Direct => "direct",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "public" => Self::Public,
            "private" => Self::Private,
            "invite_only" => Self::InviteOnly,
            "direct" => Self::Direct,
            _ => return None,
        })
    }
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// Takes part.
    Member,
    /// Also invites, kicks, bans and mutes members.
    Moderator,
    /// Created the room: also names moderators.
    Owner,
}

impl MemberRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Owner => "owner",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "member" => Self::Member,
            "moderator" => Self::Moderator,
            "owner" => Self::Owner,
            _ => return None,
        })
    }
}

/// Where a user stands with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// A member.
    Joined,
    /// Invited to an invite-only room; joins with `POST …/join`.
    Invited,
    /// Banned: may not read, join or be added.
    Banned,
}

impl MemberState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joined => "joined",
            Self::Invited => "invited",
            Self::Banned => "banned",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "joined" => Self::Joined,
            "invited" => Self::Invited,
            "banned" => Self::Banned,
            _ => return None,
        })
    }
}

/// A user as the chat shows them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ChatUser {
    /// Account id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// Avatar URL.
    pub image: Option<String>,
}

/// The caller's standing in a room.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Membership {
    /// Role.
    pub role: MemberRole,
    /// Joined, invited or banned.
    pub state: MemberState,
    /// Whether a moderator muted them (they may read, not send).
    pub muted: bool,
    /// The newest offset they have read.
    pub read_offset: i64,
}

/// A room.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Room {
    /// Id.
    pub id: Uuid,
    /// Name (for a direct room: both usernames).
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// Changes only if the room's offsets start over.
    pub epoch: String,
    /// The newest message's offset (0: none yet).
    pub last_offset: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The caller's membership, if any.
    pub membership: Option<Membership>,
}

/// `{"room": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomBody {
    /// The room.
    pub room: Room,
}

/// `{"rooms": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomsBody {
    /// The caller's rooms, then the listed rooms they are not in, by name.
    pub rooms: Vec<Room>,
}

/// A member of a room.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    /// Who.
    pub user: ChatUser,
    /// Role.
    pub role: MemberRole,
    /// Joined, invited or banned.
    pub state: MemberState,
    /// Muted by a moderator.
    pub muted: bool,
    /// `online`, `away` or `offline`.
    pub presence: String,
}

/// `{"member": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberBody {
    /// The member.
    pub member: Member,
}

/// `{"members": […]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersBody {
    /// Owner and moderators first, then by username.
    pub members: Vec<Member>,
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// How many users reacted with it.
    pub count: i64,
}

/// A message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    /// Id, unique across rooms.
    pub id: i64,
    /// Its room.
    pub room: Uuid,
    /// Its position in the room: 1, 2, 3… in commit order, no gaps.
    pub offset: i64,
    /// Who wrote it.
    pub author: ChatUser,
    /// Markdown as written; empty once deleted.
    pub body: String,
    /// The body rendered to sanitised HTML; empty once deleted.
    pub body_html: String,
    /// The message this one replies to, in a thread.
    pub reply_to: Option<i64>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Whether it was deleted (it stays as a tombstone).
    pub deleted: bool,
    /// Reactions, by emoji.
    pub reactions: Vec<ReactionCount>,
    /// Usernames it mentions.
    pub mentions: Vec<String>,
}

/// `{"message": …}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageBody {
    /// The message.
    pub message: Message,
}

/// A page of a room's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagesBody {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// The room's epoch: offsets compare within one epoch only.
    pub epoch: String,
    /// The room's newest offset.
    pub last_offset: i64,
    /// Whether more messages lie beyond this page in the direction asked.
    pub has_more: bool,
}

/// A room's unread and mention counts for the caller.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Unread {
    /// The room.
    pub room: Uuid,
    /// Messages after the read offset.
    pub unread: i64,
    /// Of those, messages that mention the caller.
    pub mentions: i64,
    /// The read offset.
    pub read_offset: i64,
    /// The room's newest offset.
    pub last_offset: i64,
}

/// `{"rooms": […]}`: unread counts of every room the caller is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadBody {
    /// One entry per joined room.
    pub rooms: Vec<Unread>,
}
