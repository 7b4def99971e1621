//! The identity module's part of the GraphQL schema: `viewer`, and who is
//! calling, for every module's resolvers.
//!
//! [`prepare`] runs once per operation, before any resolver: it checks the
//! request's credentials exactly as REST does ([`crate::auth`]), with the
//! cookie rules of the operation's [`Access`], and puts the [`Caller`] in the
//! request's data. Resolvers read it with [`caller`] or [`signed_in`].

use async_graphql::{Context, Data, ID, Object, SimpleObject};
use axum::http::request::Parts;
use basalt_platform::error::{ErrorKind, Failure};
use basalt_platform::graphql::Access;
use basalt_platform::graphql::scalars::DateTime;

use crate::auth::{Authenticated, Intent, authenticate, service_from};
use crate::service::IdentityService;

/// Who is calling this operation: `None` when no credentials were sent.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Authenticated>);

/// Checks the credentials of `parts` for `access` and records the caller
/// (and the identity service) in `data`.
pub async fn prepare(parts: &Parts, access: Access, data: &mut Data) -> Result<(), Failure> {
    let service = service_from(parts)?;
    let intent = match access {
        Access::Read => Intent::Read,
        Access::Write => Intent::Write,
        Access::Subscribe => Intent::Subscribe,
    };
    let who = authenticate(&service, parts, intent).await?;
    data.insert(Caller(who));
    data.insert(service);
    Ok(())
}

/// The caller, if signed in.
pub fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Authenticated> {
    ctx.data_opt::<Caller>().and_then(|c| c.0.as_ref())
}

/// The caller, or `UNAUTHENTICATED`.
pub fn signed_in<'a>(ctx: &Context<'a>) -> Result<&'a Authenticated, Failure> {
    caller(ctx).ok_or_else(|| Failure::new(ErrorKind::Unauthenticated))
}

fn service<'a>(ctx: &Context<'a>) -> Result<&'a IdentityService, Failure> {
    ctx.data::<IdentityService>()
        .map_err(|_| Failure::internal(anyhow::anyhow!("GraphQL request not prepared")))
}

/// The signed-in account.
#[derive(Debug, Clone, SimpleObject)]
pub struct User {
    /// Its id.
    pub id: ID,
    /// Username.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// `user` or `admin`.
    pub role: String,
    /// Short biography.
    pub bio: Option<String>,
    /// Avatar URL.
    pub image: Option<String>,
    /// When the account was created.
    pub created_at: DateTime,
}

impl From<crate::model::User> for User {
    fn from(u: crate::model::User) -> Self {
        Self {
            id: ID(u.id.to_string()),
            username: u.username,
            email: u.email,
            email_verified: u.email_verified,
            role: u.role.as_str().to_owned(),
            bio: u.bio,
            image: u.image,
            created_at: u.created_at.into(),
        }
    }
}

/// Identity's queries.
#[derive(Debug, Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in account, or null.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<User>, Failure> {
        let Some(who) = caller(ctx) else {
            return Ok(None);
        };
        Ok(Some(service(ctx)?.user(who.user_id).await?.into()))
    }
}
