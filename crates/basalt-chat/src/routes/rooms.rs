//! Rooms, members and direct rooms.

use axum::extract::State;
use axum::http::StatusCode;
use basalt_identity::auth::Authenticated;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::model::{MemberBody, MemberRole, MembersBody, RoomBody, RoomKind, RoomsBody};
use crate::service::Chat;
use crate::service::members::MemberChange;

/// A new room.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRoom {
    /// 1 to 80 characters.
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    /// `public`, `private` or `invite_only`.
    pub kind: RoomKind,
}

/// Someone to add, invite, ban or talk to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Username {
    /// Their username.
    pub username: String,
}

/// A change to a member; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MemberUpdate {
    /// `member` or `moderator` (the owner's call).
    pub role: Option<MemberRole>,
    /// Mute or unmute (a moderator's call).
    pub muted: Option<bool>,
}

/// Creates a room; the caller owns it.
#[utoipa::path(post, path = "/api/chat/rooms", tag = "chat", request_body = NewRoom,
    responses((status = 201, body = RoomBody), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn create_room(
    State(chat): State<Chat>,
    who: Authenticated,
    Json(body): Json<NewRoom>,
) -> Result<(StatusCode, Json<RoomBody>), Failure> {
    let room = chat.create_room(who.user_id, &body.name, body.kind).await?;
    Ok((StatusCode::CREATED, Json(RoomBody { room })))
}

/// The caller's rooms, then the listed rooms they are not in.
#[utoipa::path(get, path = "/api/chat/rooms", tag = "chat",
    responses((status = 200, body = RoomsBody)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_rooms(
    State(chat): State<Chat>,
    who: Authenticated,
) -> Result<Json<RoomsBody>, Failure> {
    Ok(Json(RoomsBody {
        rooms: chat.rooms(who.user_id).await?,
    }))
}

/// One room.
#[utoipa::path(get, path = "/api/chat/rooms/{id}", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoomBody), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn get_room(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<Json<RoomBody>, Failure> {
    Ok(Json(RoomBody {
        room: chat.room(who.user_id, id).await?,
    }))
}

/// Joins a public room, or one the caller was invited to.
#[utoipa::path(post, path = "/api/chat/rooms/{id}/join", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoomBody), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn join(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<Json<RoomBody>, Failure> {
    Ok(Json(RoomBody {
        room: chat.join(who.user_id, id).await?,
    }))
}

/// Leaves a room.
#[utoipa::path(post, path = "/api/chat/rooms/{id}/leave", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn leave(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, Failure> {
    chat.leave(who.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A room's members with their presence (moderators also see invitations
/// and bans).
#[utoipa::path(get, path = "/api/chat/rooms/{id}/members", tag = "chat", params(("id" = Uuid, Path)),
    responses((status = 200, body = MembersBody), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn list_members(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
) -> Result<Json<MembersBody>, Failure> {
    Ok(Json(MembersBody {
        members: chat.members(who.user_id, id).await?,
    }))
}

/// Adds someone to the room, or invites them to an invite-only room.
#[utoipa::path(post, path = "/api/chat/rooms/{id}/members", tag = "chat", params(("id" = Uuid, Path)),
    request_body = Username,
    responses((status = 200, body = MemberBody), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn add_member(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
    Json(body): Json<Username>,
) -> Result<Json<MemberBody>, Failure> {
    Ok(Json(MemberBody {
        member: chat.add_member(who.user_id, id, &body.username).await?,
    }))
}

/// Changes a member's role or mute flag.
#[utoipa::path(put, path = "/api/chat/rooms/{id}/members/{username}", tag = "chat",
    params(("id" = Uuid, Path), ("username" = String, Path)), request_body = MemberUpdate,
    responses((status = 200, body = MemberBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn update_member(
    State(chat): State<Chat>,
    who: Authenticated,
    Path((id, username)): Path<(Uuid, String)>,
    Json(body): Json<MemberUpdate>,
) -> Result<Json<MemberBody>, Failure> {
    let change = MemberChange {
        role: body.role,
        muted: body.muted,
    };
    Ok(Json(MemberBody {
        member: chat
            .update_member(who.user_id, id, &username, change)
            .await?,
    }))
}

/// Kicks a member, withdraws an invitation or lifts a ban.
#[utoipa::path(delete, path = "/api/chat/rooms/{id}/members/{username}", tag = "chat",
    params(("id" = Uuid, Path), ("username" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn kick(
    State(chat): State<Chat>,
    who: Authenticated,
    Path((id, username)): Path<(Uuid, String)>,
) -> Result<StatusCode, Failure> {
    chat.kick(who.user_id, id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Bans someone from the room.
#[utoipa::path(post, path = "/api/chat/rooms/{id}/bans", tag = "chat", params(("id" = Uuid, Path)),
    request_body = Username,
    responses((status = 200, body = MemberBody), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn ban(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
    Json(body): Json<Username>,
) -> Result<Json<MemberBody>, Failure> {
    Ok(Json(MemberBody {
        member: chat.ban(who.user_id, id, &body.username).await?,
    }))
}

/// The caller's direct room with someone, created on first use.
#[utoipa::path(post, path = "/api/chat/dms", tag = "chat", request_body = Username,
    responses((status = 200, body = RoomBody), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn direct_room(
    State(chat): State<Chat>,
    who: Authenticated,
    Json(body): Json<Username>,
) -> Result<Json<RoomBody>, Failure> {
    Ok(Json(RoomBody {
        room: chat.direct_room(who.user_id, &body.username).await?,
    }))
}
