//! The blog's part of the GraphQL schema: RealWorld over GraphQL.
//!
//! Every resolver parses its arguments, calls one method of the blog
//! service ([`Blog`], the same the REST handlers call) and wraps the result
//! in the types of [`types`]; no rule lives here. Lists are Relay
//! connections with keyset cursors ([`crate::service::connections`]).
//!
//! N+1 is avoided by batching per page ([`batch`]): the articles of one page
//! share a [`batch::PageBatch`], and the first of them to resolve `body` or
//! `comments` loads it for the whole page in one call; authors and the
//! viewer's flags come with the page itself.

pub mod batch;
mod mutation;
mod query;
mod subscription;
pub mod types;

use async_graphql::{Context, Data};
use axum::http::request::Parts;
use basalt_platform::error::Failure;
use uuid::Uuid;

pub use mutation::BlogMutation;
pub use query::BlogQuery;
pub use subscription::BlogSubscription;

use crate::service::Blog;

/// Puts the blog service in a GraphQL request's data (it is offered to
/// every request through its extensions).
pub fn prepare(parts: &Parts, data: &mut Data) -> Result<(), Failure> {
    let blog =
        parts.extensions.get::<Blog>().cloned().ok_or_else(|| {
            Failure::internal(anyhow::anyhow!("the blog module is not installed"))
        })?;
    data.insert(blog);
    Ok(())
}

/// The blog service of this request.
fn blog<'a>(ctx: &Context<'a>) -> Result<&'a Blog, Failure> {
    ctx.data::<Blog>()
        .map_err(|_| Failure::internal(anyhow::anyhow!("GraphQL request not prepared")))
}

/// The signed-in caller's id, if any.
fn viewer(ctx: &Context<'_>) -> Option<Uuid> {
    basalt_identity::graphql::caller(ctx).map(|c| c.user_id)
}

/// The signed-in caller's id, or `UNAUTHENTICATED`.
fn signed_in(ctx: &Context<'_>) -> Result<Uuid, Failure> {
    basalt_identity::graphql::signed_in(ctx).map(|c| c.user_id)
}
