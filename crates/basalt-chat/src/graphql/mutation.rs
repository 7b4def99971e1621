//! The chat's mutations: the REST API's writes (each needs a signed-in
//! caller). Sending here is sending: the message is published to the
//! room's sockets and subscriptions like any other.

use async_graphql::{Context, ID, Object};
use basalt_platform::error::Failure;

use super::types::{Member, MemberRole, Message, Room, RoomKind, Unread};
use super::{chat, message_id, room_id, signed_in};
use crate::service::members::MemberChange;
use crate::service::messages::Post;

/// The chat's mutations.
#[derive(Debug, Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Creates a room (`PUBLIC`, `PRIVATE` or `INVITE_ONLY`); the caller owns it.
    async fn create_chat_room(
        &self,
        ctx: &Context<'_>,
        name: String,
        kind: RoomKind,
    ) -> Result<Room, Failure> {
        let who = signed_in(ctx)?;
        let room = chat(ctx)?.create_room(who, &name, kind.into()).await?;
        Ok(room.into())
    }

    /// Joins a public room, or one the caller was invited to.
    async fn join_chat_room(&self, ctx: &Context<'_>, room: ID) -> Result<Room, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        Ok(chat(ctx)?.join(who, room).await?.into())
    }

    /// Leaves a room (an owner hands it to a moderator, or else a member).
    async fn leave_chat_room(&self, ctx: &Context<'_>, room: ID) -> Result<bool, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        chat(ctx)?.leave(who, room).await?;
        Ok(true)
    }

    /// Adds `username` to the room, or invites them to an invite-only room.
    async fn add_chat_member(
        &self,
        ctx: &Context<'_>,
        room: ID,
        username: String,
    ) -> Result<Member, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        Ok(chat(ctx)?.add_member(who, room, &username).await?.into())
    }

    /// Changes a member's role (the owner's call) or mute flag (a
    /// moderator's); absent arguments stay.
    async fn update_chat_member(
        &self,
        ctx: &Context<'_>,
        room: ID,
        username: String,
        role: Option<MemberRole>,
        muted: Option<bool>,
    ) -> Result<Member, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        let change = MemberChange {
            role: role.map(Into::into),
            muted,
        };
        let member = chat(ctx)?
            .update_member(who, room, &username, change)
            .await?;
        Ok(member.into())
    }

    /// Kicks a member, withdraws an invitation or lifts a ban.
    async fn kick_chat_member(
        &self,
        ctx: &Context<'_>,
        room: ID,
        username: String,
    ) -> Result<bool, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        chat(ctx)?.kick(who, room, &username).await?;
        Ok(true)
    }

    /// Bans `username` from the room.
    async fn ban_chat_member(
        &self,
        ctx: &Context<'_>,
        room: ID,
        username: String,
    ) -> Result<Member, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        Ok(chat(ctx)?.ban(who, room, &username).await?.into())
    }

    /// The caller's direct room with `username`, created on first use.
    async fn direct_chat_room(&self, ctx: &Context<'_>, username: String) -> Result<Room, Failure> {
        let who = signed_in(ctx)?;
        Ok(chat(ctx)?.direct_room(who, &username).await?.into())
    }

    /// Posts a message at the room's next offset. With a `nonce` used in
    /// the room before, returns that message instead.
    async fn send_chat_message(
        &self,
        ctx: &Context<'_>,
        room: ID,
        body: String,
        reply_to: Option<ID>,
        nonce: Option<String>,
    ) -> Result<Message, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        let reply_to = reply_to
            .as_ref()
            .map(|id| message_id("replyTo", id))
            .transpose()?;
        let post = Post {
            body,
            reply_to,
            nonce,
        };
        Ok(chat(ctx)?.send(who, room, post).await?.into())
    }

    /// Edits one of the caller's messages.
    async fn edit_chat_message(
        &self,
        ctx: &Context<'_>,
        room: ID,
        message: ID,
        body: String,
    ) -> Result<Message, Failure> {
        let who = signed_in(ctx)?;
        let (room, message) = (room_id("room", &room)?, message_id("message", &message)?);
        Ok(chat(ctx)?.edit(who, room, message, &body).await?.into())
    }

    /// Deletes a message (its author, or a moderator); a tombstone stays.
    async fn delete_chat_message(
        &self,
        ctx: &Context<'_>,
        room: ID,
        message: ID,
    ) -> Result<bool, Failure> {
        let who = signed_in(ctx)?;
        let (room, message) = (room_id("room", &room)?, message_id("message", &message)?);
        chat(ctx)?.delete(who, room, message).await?;
        Ok(true)
    }

    /// Reacts to a message with one emoji.
    async fn react_to_chat_message(
        &self,
        ctx: &Context<'_>,
        room: ID,
        message: ID,
        emoji: String,
    ) -> Result<Message, Failure> {
        let who = signed_in(ctx)?;
        let (room, message) = (room_id("room", &room)?, message_id("message", &message)?);
        let reacted = chat(ctx)?.react(who, room, message, &emoji, true).await?;
        Ok(reacted.into())
    }

    /// Takes the caller's reaction back.
    async fn remove_chat_reaction(
        &self,
        ctx: &Context<'_>,
        room: ID,
        message: ID,
        emoji: String,
    ) -> Result<Message, Failure> {
        let who = signed_in(ctx)?;
        let (room, message) = (room_id("room", &room)?, message_id("message", &message)?);
        let reacted = chat(ctx)?.react(who, room, message, &emoji, false).await?;
        Ok(reacted.into())
    }

    /// Moves the caller's read position forward to `offset`.
    async fn mark_chat_read(
        &self,
        ctx: &Context<'_>,
        room: ID,
        offset: i64,
    ) -> Result<Unread, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        Ok(chat(ctx)?.mark_read(who, room, offset).await?.into())
    }
}
