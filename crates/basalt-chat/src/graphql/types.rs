//! The chat's GraphQL types: the REST API's objects, in camelCase, with
//! `ID`s for rooms, users and messages.

use async_graphql::{Enum, ID, SimpleObject};
use basalt_platform::graphql::scalars::DateTime;

use crate::model;

/// Who can see and join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "ChatRoomKind", remote = "crate::model::RoomKind")]
pub enum RoomKind {
    /// Listed to everyone; anyone signed in may read it and join.
    Public,
    /// Listed to its members only; moderators add members.
    Private,
    /// Listed to everyone; joining needs a moderator's invitation.
    InviteOnly,
    /// A conversation between two users (`directChatRoom`).
    Direct,
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "ChatMemberRole", remote = "crate::model::MemberRole")]
pub enum MemberRole {
    /// Takes part.
    Member,
    /// Also invites, kicks, bans and mutes members.
    Moderator,
    /// Created the room: also names moderators.
    Owner,
}

/// Where a user stands with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "ChatMemberState", remote = "crate::model::MemberState")]
pub enum MemberState {
    /// A member.
    Joined,
    /// Invited to an invite-only room; joins with `joinChatRoom`.
    Invited,
    /// Banned: may not read, join or be added.
    Banned,
}

/// A user as the chat shows them.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatUser")]
pub struct ChatUser {
    /// Account id.
    pub id: ID,
    /// Username.
    pub username: String,
    /// Avatar URL.
    pub image: Option<String>,
}

impl From<model::ChatUser> for ChatUser {
    fn from(u: model::ChatUser) -> Self {
        Self {
            id: ID(u.id.to_string()),
            username: u.username,
            image: u.image,
        }
    }
}

/// The caller's standing in a room.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatMembership")]
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
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatRoom")]
pub struct Room {
    /// Id.
    pub id: ID,
    /// Name (for a direct room: both usernames).
    pub name: String,
    /// Kind.
    pub kind: RoomKind,
    /// Changes only if the room's offsets start over.
    pub epoch: String,
    /// The newest message's offset (0: none yet).
    pub last_offset: i64,
    /// When it was created.
    pub created_at: DateTime,
    /// The caller's membership, if any.
    pub membership: Option<Membership>,
}

impl From<model::Room> for Room {
    fn from(r: model::Room) -> Self {
        Self {
            id: ID(r.id.to_string()),
            name: r.name,
            kind: r.kind.into(),
            epoch: r.epoch,
            last_offset: r.last_offset,
            created_at: r.created_at.into(),
            membership: r.membership.map(|m| Membership {
                role: m.role.into(),
                state: m.state.into(),
                muted: m.muted,
                read_offset: m.read_offset,
            }),
        }
    }
}

/// A member of a room.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatMember")]
pub struct Member {
    /// Who.
    pub user: ChatUser,
    /// Role.
    pub role: MemberRole,
    /// Joined, invited or banned.
    pub state: MemberState,
    /// Muted by a moderator.
    pub muted: bool,
    /// The newest offset they have read: their read receipt.
    pub read_offset: i64,
    /// `online`, `away` or `offline`.
    pub presence: String,
}

impl From<model::Member> for Member {
    fn from(m: model::Member) -> Self {
        Self {
            user: m.user.into(),
            role: m.role.into(),
            state: m.state.into(),
            muted: m.muted,
            read_offset: m.read_offset,
            presence: m.presence,
        }
    }
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatReaction")]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// How many users reacted with it.
    pub count: i64,
}

/// A message.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatMessage")]
pub struct Message {
    /// Id, unique across rooms.
    pub id: ID,
    /// Its room's id.
    pub room: ID,
    /// Its position in the room: 1, 2, 3… in commit order, no gaps.
    pub offset: i64,
    /// Who wrote it.
    pub author: ChatUser,
    /// Markdown as written; empty once deleted.
    pub body: String,
    /// The body rendered to sanitised HTML; empty once deleted.
    pub body_html: String,
    /// The id of the message this one replies to, in a thread.
    pub reply_to: Option<ID>,
    /// When it was sent.
    pub created_at: DateTime,
    /// When it was last edited.
    pub edited_at: Option<DateTime>,
    /// Whether it was deleted (it stays as a tombstone).
    pub deleted: bool,
    /// Reactions, by emoji.
    pub reactions: Vec<Reaction>,
    /// Usernames it mentions.
    pub mentions: Vec<String>,
}

impl From<model::Message> for Message {
    fn from(m: model::Message) -> Self {
        Self {
            id: ID(m.id.to_string()),
            room: ID(m.room.to_string()),
            offset: m.offset,
            author: m.author.into(),
            body: m.body,
            body_html: m.body_html,
            reply_to: m.reply_to.map(|id| ID(id.to_string())),
            created_at: m.created_at.into(),
            edited_at: m.edited_at.map(Into::into),
            deleted: m.deleted,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| Reaction {
                    emoji: r.emoji,
                    count: r.count,
                })
                .collect(),
            mentions: m.mentions,
        }
    }
}

/// A page of a room's history.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatMessagePage")]
pub struct MessagePage {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// The room's epoch: offsets compare within one epoch only.
    pub epoch: String,
    /// The room's newest offset.
    pub last_offset: i64,
    /// Whether more messages lie beyond this page in the direction asked.
    pub has_more: bool,
}

impl From<model::MessagesBody> for MessagePage {
    fn from(page: model::MessagesBody) -> Self {
        Self {
            messages: page.messages.into_iter().map(Into::into).collect(),
            epoch: page.epoch,
            last_offset: page.last_offset,
            has_more: page.has_more,
        }
    }
}

/// A room's unread and mention counts for the caller.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "ChatUnread")]
pub struct Unread {
    /// The room's id.
    pub room: ID,
    /// Messages after the read offset.
    pub unread: i64,
    /// Of those, messages that mention the caller.
    pub mentions: i64,
    /// The read offset.
    pub read_offset: i64,
    /// The room's newest offset.
    pub last_offset: i64,
}

impl From<model::Unread> for Unread {
    fn from(u: model::Unread) -> Self {
        Self {
            room: ID(u.room.to_string()),
            unread: u.unread,
            mentions: u.mentions,
            read_offset: u.read_offset,
            last_offset: u.last_offset,
        }
    }
}
