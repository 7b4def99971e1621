//! What the chat publishes to connections, on every node, through the
//! platform's broadcast port: one topic per room (messages and room
//! events) and one per user (their read state, mentions, removals).
//!
//! The broadcast is at most once (Redis pub/sub loses what is published
//! while a node is cut off). That is enough because messages carry their
//! offsets: a connection delivers by offset and fills any gap from the
//! database ([`crate::ws`]), so the broadcast only has to be fast, not
//! reliable. Events without an offset (typing, presence, edits) are best
//! effort by design.

use std::sync::Arc;

use basalt_platform::broadcast::Broadcast;
use bytes::Bytes;
use uuid::Uuid;

/// The topic of a room's messages and events.
pub fn room_topic(room: Uuid) -> String {
    format!("chat.room.{room}")
}

/// The topic of a user's own events.
pub fn user_topic(user: Uuid) -> String {
    format!("chat.user.{user}")
}

/// One published frame: the offset of the message it carries, if any, and
/// the frame's JSON text as clients receive it.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The message's offset, for `message` frames.
    pub offset: Option<i64>,
    /// The frame, ready to write to a socket.
    pub frame: Bytes,
    /// For user topics: a room whose subscription the user lost.
    pub removed_from: Option<Uuid>,
}

impl Envelope {
    /// Encodes as `"<offset>|-" SP "<room>|-" LF <frame>`: a header the
    /// receiving node reads without parsing the JSON.
    pub fn encode(offset: Option<i64>, removed_from: Option<Uuid>, frame: &str) -> Bytes {
        let mut out = String::with_capacity(frame.len() + 48);
        match offset {
            Some(o) => out.push_str(&o.to_string()),
            None => out.push('-'),
        }
        out.push(' ');
        match removed_from {
            Some(room) => out.push_str(&room.to_string()),
            None => out.push('-'),
        }
        out.push('\n');
        out.push_str(frame);
        Bytes::from(out)
    }

    /// Decodes [`Envelope::encode`]'s bytes; `None` for anything else.
    pub fn decode(bytes: &Bytes) -> Option<Self> {
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let header = std::str::from_utf8(&bytes[..newline]).ok()?;
        let (offset, room) = header.split_once(' ')?;
        let offset = match offset {
            "-" => None,
            o => Some(o.parse().ok()?),
        };
        let removed_from = match room {
            "-" => None,
            r => Some(r.parse().ok()?),
        };
        Some(Self {
            offset,
            frame: bytes.slice(newline + 1..),
            removed_from,
        })
    }
}

/// Publishes frames to rooms and users.
#[derive(Clone)]
pub struct Live {
    broadcast: Arc<dyn Broadcast>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    /// Publishing through `broadcast`.
    pub fn new(broadcast: Arc<dyn Broadcast>) -> Self {
        Self { broadcast }
    }

    /// The port, for subscribing ([`crate::hub`]).
    pub fn broadcast(&self) -> &Arc<dyn Broadcast> {
        &self.broadcast
    }

    /// A message frame at `offset` to a room's subscribers.
    pub async fn message(&self, room: Uuid, offset: i64, frame: &str) {
        self.broadcast
            .publish(
                &room_topic(room),
                Envelope::encode(Some(offset), None, frame),
            )
            .await;
    }

    /// An event (no offset) to a room's subscribers.
    pub async fn room_event(&self, room: Uuid, frame: &str) {
        self.broadcast
            .publish(&room_topic(room), Envelope::encode(None, None, frame))
            .await;
    }

    /// A frame to every connection of `user`.
    pub async fn user_event(&self, user: Uuid, frame: &str) {
        self.broadcast
            .publish(&user_topic(user), Envelope::encode(None, None, frame))
            .await;
    }

    /// Ends `user`'s subscriptions to `room` on every node, telling them.
    pub async fn removed(&self, user: Uuid, room: Uuid) {
        let frame = crate::frames::removed(room);
        self.broadcast
            .publish(
                &user_topic(user),
                Envelope::encode(None, Some(room), &frame),
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let room = Uuid::now_v7();
        for (offset, removed) in [(Some(42), None), (None, None), (None, Some(room))] {
            let bytes = Envelope::encode(offset, removed, r#"{"type":"x","a":"b\nc"}"#);
            let e = Envelope::decode(&bytes).expect("decodes");
            assert_eq!(e.offset, offset);
            assert_eq!(e.removed_from, removed);
            assert_eq!(&e.frame[..], br#"{"type":"x","a":"b\nc"}"#);
        }
        assert!(Envelope::decode(&Bytes::from_static(b"junk")).is_none());
        assert!(Envelope::decode(&Bytes::from_static(b"x -\n{}")).is_none());
    }
}
