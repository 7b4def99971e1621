//! The shop's part of the GraphQL schema: the REST API's catalog, carts,
//! checkout, orders and discounts, through the same [`Shop`] methods.
//!
//! Every resolver parses its arguments, calls one method of the shop
//! service and wraps the result in the types of [`types`]; no rule lives
//! here. Errors are the service's [`Failure`]s, so `extensions.code` is the
//! platform's classification (`BAD_USER_INPUT`, `FORBIDDEN`, `NOT_FOUND`…).
//!
//! **Anonymous carts.** A cart made without credentials is addressed by
//! its token, shown once by `createCart`: pass it as the `cartToken`
//! argument, or send it as the `X-Cart-Token` header exactly as REST does
//! (the argument wins when both are given).
//!
//! **Idempotency keys.** The REST API's `Idempotency-Key` is the
//! platform's HTTP middleware: it replays a stored *HTTP response* for a
//! route and body. A GraphQL operation is one `POST /graphql` that may hold
//! several mutations, so that store does not apply to it, and GraphQL
//! mutations are not idempotency-keyed. What keeps a retried GraphQL
//! checkout from charging twice is the service's own rule: a cart is
//! checked out once (a second `checkout` of the same cart is a
//! `CONFLICT`), and a refund never exceeds what is left to refund. Clients
//! that need Stripe-style replay use the REST routes.

mod mutation;
mod query;
pub mod types;

use async_graphql::{Context, Data, ID};
use axum::http::request::Parts;
use basalt_identity::model::Role;
use basalt_platform::error::{ErrorKind, Failure};
use uuid::Uuid;

pub use mutation::ShopMutation;
pub use query::ShopQuery;

use crate::idempotency::CART_TOKEN_HEADER;
use crate::service::{Caller, Shop, invalid};

/// The `X-Cart-Token` header of a GraphQL request, if sent.
#[derive(Debug, Clone)]
struct HeaderCartToken(Option<String>);

/// Puts the shop service and the request's `X-Cart-Token` in a GraphQL
/// request's data (the service is offered to every request through its
/// extensions).
pub fn prepare(parts: &Parts, data: &mut Data) -> Result<(), Failure> {
    let shop =
        parts.extensions.get::<Shop>().cloned().ok_or_else(|| {
            Failure::internal(anyhow::anyhow!("the shop module is not installed"))
        })?;
    let token = parts
        .headers
        .get(CART_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    data.insert(shop);
    data.insert(HeaderCartToken(token));
    Ok(())
}

/// The shop service of this request.
fn shop<'a>(ctx: &Context<'a>) -> Result<&'a Shop, Failure> {
    ctx.data::<Shop>()
        .map_err(|_| Failure::internal(anyhow::anyhow!("GraphQL request not prepared")))
}

/// The caller as the service sees it: credentials, if any, and the cart
/// token of the `cartToken` argument, else of the `X-Cart-Token` header.
fn caller(ctx: &Context<'_>, cart_token: Option<String>) -> Caller {
    let who = basalt_identity::graphql::caller(ctx);
    let cart_token =
        cart_token.or_else(|| ctx.data_opt::<HeaderCartToken>().and_then(|t| t.0.clone()));
    Caller {
        user_id: who.map(|w| w.user_id),
        admin: who.is_some_and(|w| w.role == Role::Admin),
        cart_token,
    }
}

/// The signed-in admin's id: `UNAUTHENTICATED` without credentials,
/// `FORBIDDEN` for anyone else (as REST's `Admin` extractor).
fn admin(ctx: &Context<'_>) -> Result<Uuid, Failure> {
    let who = basalt_identity::graphql::signed_in(ctx)?;
    if who.role == Role::Admin {
        Ok(who.user_id)
    } else {
        Err(Failure::new(ErrorKind::Forbidden))
    }
}

/// An id argument, or `BAD_USER_INPUT` naming it.
fn uuid(argument: &str, id: &ID, what: &str) -> Result<Uuid, Failure> {
    id.parse()
        .map_err(|_| invalid(argument, &format!("is not a {what} id")))
}
