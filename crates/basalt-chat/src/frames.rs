//! The socket's frames (`docs/chat-protocol.md`): what clients send
//! ([`ClientFrame`]) and what the server writes, built here so that the
//! service, which publishes events, and the connections, which answer
//! frames, write them one way. Messages on the socket are camelCase.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{ChatUser, Message, ReactionCount};

/// A frame from a client. `id` is the client's, echoed in the answer.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticate with an access token.
    Auth {
        /// The access token.
        token: String,
    },
    /// Receive a room's events, resuming after `since` if given.
    Subscribe {
        /// Echoed.
        id: Option<Value>,
        /// The room.
        room: Uuid,
        /// Where the client left off.
        since: Option<Since>,
    },
    /// Stop receiving a room's events.
    Unsubscribe {
        /// Echoed.
        id: Option<Value>,
        /// The room.
        room: Uuid,
    },
    /// Post a message.
    Send {
        /// Echoed.
        id: Option<Value>,
        /// The room.
        room: Uuid,
        /// Markdown.
        body: String,
        /// The message replied to.
        reply_to: Option<i64>,
        /// Idempotency key.
        nonce: Option<String>,
    },
    /// Mark the room read up to `offset`.
    Read {
        /// Echoed.
        id: Option<Value>,
        /// The room.
        room: Uuid,
        /// The newest offset read.
        offset: i64,
    },
    /// The user is typing.
    Typing {
        /// Echoed.
        id: Option<Value>,
        /// The room.
        room: Uuid,
    },
    /// Set the user's status.
    Presence {
        /// Echoed.
        id: Option<Value>,
        /// `online` or `away`.
        status: String,
    },
    /// Keep-alive.
    Ping {
        /// Echoed.
        id: Option<Value>,
    },
}

/// Where a resuming client left off.
#[derive(Debug, Clone, Deserialize)]
pub struct Since {
    /// The last offset it processed.
    pub offset: i64,
    /// The epoch of that offset.
    pub epoch: String,
}

/// A message as the socket writes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMessage<'a> {
    id: i64,
    room: Uuid,
    offset: i64,
    author: &'a ChatUser,
    body: &'a str,
    body_html: &'a str,
    reply_to: Option<i64>,
    created_at: String,
    edited_at: Option<String>,
    deleted: bool,
    reactions: &'a [ReactionCount],
    mentions: &'a [String],
}

fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl<'a> From<&'a Message> for WireMessage<'a> {
    fn from(m: &'a Message) -> Self {
        Self {
            id: m.id,
            room: m.room,
            offset: m.offset,
            author: &m.author,
            body: &m.body,
            body_html: &m.body_html,
            reply_to: m.reply_to,
            created_at: timestamp(&m.created_at),
            edited_at: m.edited_at.as_ref().map(timestamp),
            deleted: m.deleted,
            reactions: &m.reactions,
            mentions: &m.mentions,
        }
    }
}

/// `message`: a message at its offset.
pub fn message(m: &Message, epoch: &str) -> String {
    json!({"type": "message", "room": m.room, "offset": m.offset, "epoch": epoch,
        "message": WireMessage::from(m)})
    .to_string()
}

/// `edited`: a message's new state.
pub fn edited(m: &Message) -> String {
    json!({"type": "edited", "room": m.room, "message": WireMessage::from(m)}).to_string()
}

/// `deleted`: a message became a tombstone.
pub fn deleted(room: Uuid, message_id: i64, offset: i64) -> String {
    json!({"type": "deleted", "room": room, "message_id": message_id, "offset": offset}).to_string()
}

/// `reaction`: a reaction added or removed.
pub fn reaction(room: Uuid, message_id: i64, emoji: &str, user: &ChatUser, added: bool) -> String {
    json!({"type": "reaction", "room": room, "message_id": message_id, "emoji": emoji,
        "user": user, "added": added})
    .to_string()
}

/// `typing`: someone is typing in a room.
pub fn typing(room: Uuid, user: &ChatUser) -> String {
    json!({"type": "typing", "room": room, "user": user}).to_string()
}

/// `presence`: a user's status changed.
pub fn presence(user: &ChatUser, status: &str) -> String {
    json!({"type": "presence", "user": user, "status": status}).to_string()
}

/// `read`: the user's read position in a room moved.
pub fn read(room: Uuid, offset: i64, unread: i64, mentions: i64) -> String {
    json!({"type": "read", "room": room, "offset": offset, "unread": unread, "mentions": mentions})
        .to_string()
}

/// `mention`: a message mentions the user.
pub fn mention(m: &Message) -> String {
    json!({"type": "mention", "room": m.room, "offset": m.offset, "message": WireMessage::from(m)})
        .to_string()
}

/// `removed`: the user may no longer read a room (kicked or banned); its
/// subscription ended.
pub fn removed(room: Uuid) -> String {
    json!({"type": "removed", "room": room}).to_string()
}

/// `subscribed`: a subscription is live.
pub fn subscribed(
    id: &Option<Value>,
    room: Uuid,
    epoch: &str,
    offset: i64,
    recovered: bool,
) -> String {
    json!({"type": "subscribed", "id": id, "room": room, "epoch": epoch, "offset": offset,
        "recovered": recovered})
    .to_string()
}

/// `unsubscribed`: a subscription ended at the client's request.
pub fn unsubscribed(id: &Option<Value>, room: Uuid) -> String {
    json!({"type": "unsubscribed", "id": id, "room": room}).to_string()
}

/// `ack`: a send committed.
pub fn ack(id: &Option<Value>, offset: i64, message_id: i64) -> String {
    json!({"type": "ack", "id": id, "offset": offset, "message_id": message_id}).to_string()
}

/// `authenticated`: the `auth` frame's token was good.
pub fn authenticated(user: &ChatUser) -> String {
    json!({"type": "authenticated", "user": user}).to_string()
}

/// `error`: the frame with `id` failed.
pub fn error(id: &Option<Value>, code: &str, message: &str) -> String {
    json!({"type": "error", "id": id, "code": code, "message": message}).to_string()
}

/// `pong`.
pub fn pong(id: &Option<Value>) -> String {
    json!({"type": "pong", "id": id}).to_string()
}
