//! Messages, reactions and read state.

use axum::extract::State;
use axum::http::StatusCode;
use basalt_identity::auth::Authenticated;
use basalt_platform::Problem;
use basalt_platform::error::Failure;
use basalt_platform::http::input::{Json, Path, Query};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::model::{MessageBody, MessagesBody, Unread, UnreadBody};
use crate::service::Chat;
use crate::service::messages::{HistoryPage, Post};

/// Which page of history: `after` alone pages forward from it, `before`
/// (with or without `after`) pages back from it; neither is the newest page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with offsets above this.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Only messages with offsets below this.
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A message to post.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMessage {
    /// Markdown, 1 to 4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub body: String,
    /// The message this replies to (a thread).
    pub reply_to: Option<i64>,
    /// Idempotency key (1 to 64 bytes): posting it again returns the first message.
    #[schema(min_length = 1, max_length = 64)]
    pub nonce: Option<String>,
}

/// A message's new body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessage {
    /// Markdown, 1 to 4000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub body: String,
}

/// A reaction.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Reaction {
    /// One emoji.
    #[schema(min_length = 1, max_length = 8)]
    pub emoji: String,
}

/// A read position.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReadPosition {
    /// The newest offset read.
    #[schema(minimum = 0)]
    pub offset: i64,
}

/// A page of a room's history, oldest first.
#[utoipa::path(get, path = "/api/chat/rooms/{id}/messages", tag = "chat",
    params(("id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = MessagesBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn history(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<MessagesBody>, Failure> {
    let page = HistoryPage {
        after: query.after,
        before: query.before,
        limit: query.limit,
    };
    Ok(Json(chat.history(who.user_id, id, page).await?))
}

/// Posts a message at the room's next offset.
#[utoipa::path(post, path = "/api/chat/rooms/{id}/messages", tag = "chat", params(("id" = Uuid, Path)),
    request_body = NewMessage,
    responses((status = 201, body = MessageBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn send(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
    Json(body): Json<NewMessage>,
) -> Result<(StatusCode, Json<MessageBody>), Failure> {
    let post = Post {
        body: body.body,
        reply_to: body.reply_to,
        nonce: body.nonce,
    };
    let message = chat.send(who.user_id, id, post).await?;
    Ok((StatusCode::CREATED, Json(MessageBody { message })))
}

/// Edits a message (its author's).
#[utoipa::path(patch, path = "/api/chat/rooms/{id}/messages/{message_id}", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = i64, Path)), request_body = EditMessage,
    responses((status = 200, body = MessageBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn edit(
    State(chat): State<Chat>,
    who: Authenticated,
    Path((id, message_id)): Path<(Uuid, i64)>,
    Json(body): Json<EditMessage>,
) -> Result<Json<MessageBody>, Failure> {
    Ok(Json(MessageBody {
        message: chat.edit(who.user_id, id, message_id, &body.body).await?,
    }))
}

/// Deletes a message (its author, or a moderator); a tombstone stays.
#[utoipa::path(delete, path = "/api/chat/rooms/{id}/messages/{message_id}", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn delete(
    State(chat): State<Chat>,
    who: Authenticated,
    Path((id, message_id)): Path<(Uuid, i64)>,
) -> Result<StatusCode, Failure> {
    chat.delete(who.user_id, id, message_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reacts to a message with an emoji.
#[utoipa::path(post, path = "/api/chat/rooms/{id}/messages/{message_id}/reactions", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = i64, Path)), request_body = Reaction,
    responses((status = 200, body = MessageBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn react(
    State(chat): State<Chat>,
    who: Authenticated,
    Path((id, message_id)): Path<(Uuid, i64)>,
    Json(body): Json<Reaction>,
) -> Result<Json<MessageBody>, Failure> {
    Ok(Json(MessageBody {
        message: chat
            .react(who.user_id, id, message_id, &body.emoji, true)
            .await?,
    }))
}

/// Takes the caller's reaction back.
#[utoipa::path(delete, path = "/api/chat/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "chat",
    params(("id" = Uuid, Path), ("message_id" = i64, Path), ("emoji" = String, Path)),
    responses((status = 200, body = MessageBody), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn unreact(
    State(chat): State<Chat>,
    who: Authenticated,
    Path((id, message_id, emoji)): Path<(Uuid, i64, String)>,
) -> Result<Json<MessageBody>, Failure> {
    Ok(Json(MessageBody {
        message: chat
            .react(who.user_id, id, message_id, &emoji, false)
            .await?,
    }))
}

/// Moves the caller's read position forward.
#[utoipa::path(put, path = "/api/chat/rooms/{id}/read", tag = "chat", params(("id" = Uuid, Path)),
    request_body = ReadPosition,
    responses((status = 200, body = Unread), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn mark_read(
    State(chat): State<Chat>,
    who: Authenticated,
    Path(id): Path<Uuid>,
    Json(body): Json<ReadPosition>,
) -> Result<Json<Unread>, Failure> {
    Ok(Json(chat.mark_read(who.user_id, id, body.offset).await?))
}

/// Unread and mention counts of every room the caller has joined.
#[utoipa::path(get, path = "/api/chat/unread", tag = "chat",
    responses((status = 200, body = UnreadBody)),
    security(("bearer" = []), ("token" = []), ("session" = [])))]
pub async fn unread(
    State(chat): State<Chat>,
    who: Authenticated,
) -> Result<Json<UnreadBody>, Failure> {
    Ok(Json(UnreadBody {
        rooms: chat.unread(who.user_id).await?,
    }))
}
