//! RealWorld accounts, which are identity accounts (one table, one password
//! policy, one token format): sign-up, sign-in, the current user and
//! profile updates, each handing back a RealWorld token. The sign-up rate
//! limit is the identity service's ([`IdentityService::register`]), shared
//! with identity's own sign-up route.
//!
//! [`IdentityService::register`]: basalt_identity::service::IdentityService::register

use basalt_identity::model::Role;
use basalt_identity::service::{ProfileChanges, Registration};
use basalt_platform::http::context::RequestContext;
use uuid::Uuid;

use super::Blog;
use crate::error::BlogError;
use crate::model::User;

/// A RealWorld sign-up.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// Username.
    pub username: String,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Changes to the current user; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New email.
    pub email: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New password.
    pub password: Option<String>,
    /// New biography.
    pub bio: Option<String>,
    /// New avatar URL.
    pub image: Option<String>,
}

fn realworld_user(u: basalt_identity::model::User, token: String) -> User {
    User {
        email: u.email,
        token,
        username: u.username,
        bio: u.bio,
        image: u.image,
    }
}

impl Blog {
    /// Registers a user (rate limited per address by identity) and signs
    /// them in.
    pub async fn register(&self, s: SignUp, ctx: &RequestContext) -> Result<User, BlogError> {
        let registration = Registration {
            email: s.email,
            username: s.username,
            password: s.password,
            role: Role::User,
        };
        let user = self.identity.register(registration, ctx).await?;
        let token = self.identity.realworld_token(&user).await?;
        Ok(realworld_user(user, token))
    }

    /// Signs in with an email and password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<User, BlogError> {
        let (user, token) = self
            .identity
            .sign_in_for_realworld_token(email, password, ctx)
            .await?;
        Ok(realworld_user(user, token))
    }

    /// The signed-in user `who`, with the token they came with, or a fresh
    /// one when they came with a session.
    pub async fn current_user(&self, who: Uuid, token: Option<String>) -> Result<User, BlogError> {
        let user = self.identity.user(who).await?;
        let token = match token {
            Some(token) => token,
            None => self.identity.realworld_token(&user).await?,
        };
        Ok(realworld_user(user, token))
    }

    /// Applies `changes` to `who`'s account.
    pub async fn update_user(
        &self,
        who: Uuid,
        changes: UserChanges,
        ctx: &RequestContext,
    ) -> Result<User, BlogError> {
        let changes = ProfileChanges {
            email: changes.email,
            username: changes.username,
            bio: changes.bio.map(Some),
            image: changes.image.map(Some),
            password: changes.password,
        };
        let user = self.identity.update_profile(who, changes, ctx).await?;
        // A password change ends every session and token of the account, the
        // one this request came with included: a fresh one is handed back.
        let token = self.identity.realworld_token(&user).await?;
        Ok(realworld_user(user, token))
    }
}
