//! The chat's queries (each needs a signed-in caller).

use async_graphql::{Context, ID, Object};
use basalt_platform::error::{ErrorKind, Failure};

use super::types::{Member, MessagePage, Room, Unread};
use super::{chat, room_id, signed_in};
use crate::service::messages::HistoryPage;

/// The chat's queries.
#[derive(Debug, Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// The caller's rooms, then the listed rooms they are not in, by name.
    async fn chat_rooms(&self, ctx: &Context<'_>) -> Result<Vec<Room>, Failure> {
        let who = signed_in(ctx)?;
        let rooms = chat(ctx)?.rooms(who).await?;
        Ok(rooms.into_iter().map(Into::into).collect())
    }

    /// The room behind `id`, or null if the caller may not know of it.
    async fn chat_room(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Room>, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("id", &id)?;
        match chat(ctx)?.room(who, room).await {
            Ok(room) => Ok(Some(room.into())),
            Err(failure) if failure.kind == ErrorKind::NotFound => Ok(None),
            Err(failure) => Err(failure),
        }
    }

    /// A page of a room's history, oldest first: `after` alone pages
    /// forward from it, `before` (with or without `after`) pages back from
    /// it; neither is the newest page. `limit`: 1 to 200 (default 50).
    async fn chat_messages(
        &self,
        ctx: &Context<'_>,
        room: ID,
        after: Option<i64>,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<MessagePage, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        let page = HistoryPage {
            after,
            before,
            limit,
        };
        Ok(chat(ctx)?.history(who, room, page).await?.into())
    }

    /// A room's members with their presence, owner and moderators first
    /// (moderators also see invitations and bans).
    async fn chat_members(&self, ctx: &Context<'_>, room: ID) -> Result<Vec<Member>, Failure> {
        let who = signed_in(ctx)?;
        let room = room_id("room", &room)?;
        let members = chat(ctx)?.members(who, room).await?;
        Ok(members.into_iter().map(Into::into).collect())
    }

    /// Unread and mention counts of every room the caller has joined.
    async fn chat_unread(&self, ctx: &Context<'_>) -> Result<Vec<Unread>, Failure> {
        let who = signed_in(ctx)?;
        let unread = chat(ctx)?.unread(who).await?;
        Ok(unread.into_iter().map(Into::into).collect())
    }
}
