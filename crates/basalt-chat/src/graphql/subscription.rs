//! `messageAdded(room:)`: a room's messages as they are added, with the
//! socket's guarantee ([`crate::delivery`]): in offset order, each once,
//! gaps filled from the database, on whichever node the message was sent.

use async_graphql::{Context, ID, Subscription};
use basalt_platform::error::Failure;
use futures_util::{Stream, StreamExt as _};

use super::types::Message;
use super::{chat, room_id, signed_in};

/// The chat's subscriptions.
#[derive(Debug, Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Each message added to `room` from now on, in offset order and once;
    /// with `after` (an offset), the messages after it first (at most
    /// `chat.recovery_max_messages` back). Ends when the caller may no
    /// longer read the room.
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        room: ID,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Message> + use<>, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        let messages = chat(ctx)?.follow_room(who, room, after).await?;
        Ok(messages.map(Message::from))
    }
}
