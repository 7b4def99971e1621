//! The shop's part of the GraphQL schema: the REST API's catalog, carts,
//! checkout, orders and discounts, through the same [`Shop`] methods.
//!
//! Every resolver parses its arguments, calls one method of the shop
//! service (or of [`MerchantWebhooks`], for the admins' webhook
//! endpoints) and wraps the result in the types of [`types`]; no rule
//! lives here. Errors are the service's [`Failure`]s, so `extensions.code` is the
//! platform's classification (`BAD_USER_INPUT`, `FORBIDDEN`, `NOT_FOUND`…).
//!
//! **Anonymous carts.** A cart made without credentials is addressed by
//! its token, shown once by `createCart`: pass it as the `cartToken`
//! argument, or send it as the `X-Cart-Token` header exactly as REST does
//! (the argument wins when both are given).
//!
//! **Idempotency keys.** `POST /graphql` goes through the same
//! idempotency store as REST (the platform's middleware with the shop's
//! caller scope, [`crate::idempotency`], wired where the schema is
//! served): an operation sent with an `Idempotency-Key` header runs once,
//! and the same key with the same body gets the stored answer back,
//! byte for byte, with `Idempotent-Replayed: true`. The two mutations that
//! move money, `checkout` and `refundOrder`, require the header (without
//! it, `BAD_USER_INPUT`), as their REST routes do. The store's own refusals
//! are HTTP answers, as over REST: the same key with another body is a 422,
//! a key still in flight a 409 (problem+json, not a GraphQL body). A key
//! covers the whole operation: send one money-moving mutation per keyed
//! operation. The key's scope is the shop's: the signed-in user, else the
//! `X-Cart-Token` header, else the client address (a cart token passed
//! only as an argument scopes the key by address; keys are random, so
//! callers still do not meet).

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

use basalt_platform::http::idempotency::HEADER as IDEMPOTENCY_HEADER;

use crate::idempotency::CART_TOKEN_HEADER;
use crate::merchant_webhooks::MerchantWebhooks;
use crate::service::{Caller, Shop, invalid};

/// The `X-Cart-Token` header of a GraphQL request, if sent.
#[derive(Debug, Clone)]
struct HeaderCartToken(Option<String>);

/// Whether the request carried an `Idempotency-Key` (the middleware in
/// front of `/graphql` has checked and applied it).
#[derive(Debug, Clone, Copy)]
struct Keyed(bool);

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
    let webhooks = parts
        .extensions
        .get::<MerchantWebhooks>()
        .cloned()
        .ok_or_else(|| Failure::internal(anyhow::anyhow!("the shop module is not installed")))?;
    data.insert(shop);
    data.insert(webhooks);
    data.insert(HeaderCartToken(token));
    data.insert(Keyed(parts.headers.contains_key(IDEMPOTENCY_HEADER)));
    Ok(())
}

/// The shop service of this request.
fn shop<'a>(ctx: &Context<'a>) -> Result<&'a Shop, Failure> {
    ctx.data::<Shop>()
        .map_err(|_| Failure::internal(anyhow::anyhow!("GraphQL request not prepared")))
}

/// The merchant webhooks' service of this request.
fn webhooks<'a>(ctx: &Context<'a>) -> Result<&'a MerchantWebhooks, Failure> {
    ctx.data::<MerchantWebhooks>()
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

/// `BAD_USER_INPUT` unless the operation carries an `Idempotency-Key`
/// (the mutations that move money, as their REST routes).
fn keyed(ctx: &Context<'_>) -> Result<(), Failure> {
    if ctx.data_opt::<Keyed>().is_some_and(|k| k.0) {
        Ok(())
    } else {
        Err(invalid(
            "Idempotency-Key",
            "this mutation needs an Idempotency-Key header (a unique value of at most 255 \
             characters, e.g. a UUID): retrying with the same key never repeats it",
        ))
    }
}

/// An id argument, or `BAD_USER_INPUT` naming it.
fn uuid(argument: &str, id: &ID, what: &str) -> Result<Uuid, Failure> {
    id.parse()
        .map_err(|_| invalid(argument, &format!("is not a {what} id")))
}
