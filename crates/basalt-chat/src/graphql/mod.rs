//! The chat's part of the GraphQL schema: the REST API's rooms, members,
//! messages and read state, and `messageAdded(room:)`, the socket's
//! delivery as a subscription.
//!
//! Every resolver parses its arguments, calls one method of the chat
//! service ([`Chat`], the same the REST handlers and the socket call) and
//! wraps the result in the types of [`types`]; no rule lives here.

mod mutation;
mod query;
mod subscription;
pub mod types;

use async_graphql::{Context, Data, ID};
use axum::http::request::Parts;
use basalt_platform::error::Failure;
use uuid::Uuid;

pub use mutation::ChatMutation;
pub use query::ChatQuery;
pub use subscription::ChatSubscription;

use crate::service::{Chat, invalid};

/// Puts the chat service in a GraphQL request's data (it is offered to
/// every request through its extensions).
pub fn prepare(parts: &Parts, data: &mut Data) -> Result<(), Failure> {
    let chat =
        parts.extensions.get::<Chat>().cloned().ok_or_else(|| {
            Failure::internal(anyhow::anyhow!("the chat module is not installed"))
        })?;
    data.insert(chat);
    Ok(())
}

/// The chat service of this request.
fn chat<'a>(ctx: &Context<'a>) -> Result<&'a Chat, Failure> {
    ctx.data::<Chat>()
        .map_err(|_| Failure::internal(anyhow::anyhow!("GraphQL request not prepared")))
}

/// The signed-in caller's id, or `UNAUTHENTICATED`.
fn signed_in(ctx: &Context<'_>) -> Result<Uuid, Failure> {
    basalt_identity::graphql::signed_in(ctx).map(|c| c.user_id)
}

/// A room's id, or `BAD_USER_INPUT` naming the argument.
fn room_id(argument: &str, id: &ID) -> Result<Uuid, Failure> {
    id.parse()
        .map_err(|_| invalid(argument, "is not a room id"))
}

/// A message's id, or `BAD_USER_INPUT` naming the argument.
fn message_id(argument: &str, id: &ID) -> Result<i64, Failure> {
    id.parse()
        .map_err(|_| invalid(argument, "is not a message id"))
}
