//! Bearer tokens for APIs: short-lived JWT access tokens, and opaque,
//! single-use, rotated refresh tokens grouped in families.

use basalt_platform::ratelimit::Quota;
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::IdentityService;
use super::signin::Grant;
use crate::config::IdentityConfig;
use crate::crypto;
use crate::error::IdentityError;
use crate::model::User;
use crate::store::audit::{self, AuditEvent};
use crate::store::refresh_tokens;
use crate::store::sign_ins::NewRefreshToken;
use crate::store::users::{self, UserRow};
use basalt_platform::http::context::RequestContext;

/// An access token and the refresh token to renew it (OAuth 2.0 shape).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenPair {
    /// The JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single-use token for `POST /api/auth/refresh`.
    pub refresh_token: String,
    /// End of the refresh family's lifetime (sign in again after).
    pub refresh_expires_at: DateTime<Utc>,
}

impl IdentityService {
    /// Signs in with a password and returns a token pair (a new family).
    pub async fn sign_in_with_tokens(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<(User, TokenPair), IdentityError> {
        let family = Uuid::now_v7();
        // Microseconds: what both databases store, so the value clients see
        // now equals the one they see after a refresh.
        let expires_at = (Utc::now()
            + IdentityConfig::secs(self.inner.config.refresh_token_ttl_secs))
        .trunc_subsecs(6);
        let (refresh, token_hash) = crypto::new_token()?;
        // Stored by the same statement that settles the password check.
        let grant = Grant {
            details: json!({ "method": "token", "family": family }),
            refresh_token: Some(NewRefreshToken {
                token_hash,
                family_id: family,
                expires_at,
            }),
        };
        let user = self.check_password(email, password, ctx, grant).await?;
        let pair = self.pair(&user, family, refresh, expires_at).await?;
        Ok((user.to_user(), pair))
    }

    /// Signs in with a password and returns a RealWorld token alone: an
    /// access token of `realworld_token_ttl_secs`, no refresh token.
    pub async fn sign_in_for_realworld_token(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<(User, String), IdentityError> {
        let grant = Grant {
            details: json!({ "method": "access_token" }),
            refresh_token: None,
        };
        let user = self.check_password(email, password, ctx, grant).await?;
        let token = self
            .inner
            .issuer
            .issue_for(
                user.id,
                &user.role,
                user.token_generation,
                None,
                self.inner.config.realworld_token_ttl(),
            )
            .await?
            .token;
        Ok((user.to_user(), token))
    }

    /// A RealWorld token for `user` (an access token of
    /// `realworld_token_ttl_secs`), of the account's current token
    /// generation: it ends early with "sign out everywhere" or a reset.
    pub async fn realworld_token(&self, user: &User) -> Result<String, IdentityError> {
        let standing = self
            .standing(user.id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        Ok(self
            .inner
            .issuer
            .issue_for(
                user.id,
                standing.role.as_str(),
                standing.token_generation,
                None,
                self.inner.config.realworld_token_ttl(),
            )
            .await?
            .token)
    }

    /// Stores the refresh token that replaces `spent` and returns it with an
    /// access token.
    async fn issue_pair(
        &self,
        user: &UserRow,
        spent: &refresh_tokens::RefreshRow,
    ) -> Result<TokenPair, IdentityError> {
        let (family, family_expires_at) = (spent.family_id, spent.expires_at);
        let (refresh, hash) = crypto::new_token()?;
        refresh_tokens::insert(
            &self.inner.db,
            &hash,
            family,
            spent.id,
            user.id,
            Utc::now(),
            family_expires_at,
        )
        .await?;
        self.pair(user, family, refresh, family_expires_at).await
    }

    /// A fresh access token beside `refresh`, a token of `family` already
    /// stored.
    async fn pair(
        &self,
        user: &UserRow,
        family: Uuid,
        refresh: String,
        family_expires_at: DateTime<Utc>,
    ) -> Result<TokenPair, IdentityError> {
        let access = self
            .inner
            .issuer
            .issue(
                user.id,
                &user.role,
                user.token_generation,
                Some(&family.to_string()),
            )
            .await?;
        Ok(TokenPair {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: self.inner.config.access_token_ttl_secs,
            refresh_token: refresh,
            refresh_expires_at: family_expires_at,
        })
    }

    /// Exchanges a refresh token for a new pair. The token is spent. A spent
    /// token presented again means it was copied, so its whole family is
    /// revoked (the thief's and the owner's tokens), unless it is a client
    /// retrying a lost response ([`Self::is_lost_response_retry`]).
    pub async fn refresh(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<TokenPair, IdentityError> {
        let ip = ctx.ip.as_deref().unwrap_or("unknown");
        self.limit(
            &format!("refresh:ip:{ip}"),
            Quota::per_minute(self.inner.config.rate_limits.refresh_per_ip_per_minute),
        )
        .await?;
        let now = Utc::now();
        let Some(row) = refresh_tokens::find(&self.inner.db, &crypto::hash_token(token)).await?
        else {
            return Err(IdentityError::Unauthenticated);
        };
        if row.revoked_at.is_some() || row.expires_at <= now {
            return Err(IdentityError::Unauthenticated);
        }
        let Some(user) = users::find_by_id(&self.inner.db, row.user_id).await? else {
            return Err(IdentityError::Unauthenticated);
        };

        let spent_now = refresh_tokens::spend(&self.inner.db, row.id, now).await?;
        if !spent_now && !self.is_lost_response_retry(token, now).await? {
            refresh_tokens::revoke_family(&self.inner.db, row.family_id, now).await?;
            audit::record(
                &self.inner.db,
                AuditEvent::RefreshTokenReuse,
                Some(row.user_id),
                None,
                ctx,
                json!({ "family": row.family_id }),
            )
            .await;
            return Err(IdentityError::Unauthenticated);
        }
        self.issue_pair(&user, &row).await
    }

    /// Whether an already spent `token` is presented again by a client that
    /// lost the response to its refresh: only the family's newest spent
    /// token, within the grace window, while no token issued after it has
    /// been spent. Anything else is a copy being replayed.
    async fn is_lost_response_retry(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, IdentityError> {
        // Read again: a concurrent refresh may have spent it after our first
        // read, and only the stored time says how long ago.
        let Some(current) =
            refresh_tokens::find(&self.inner.db, &crypto::hash_token(token)).await?
        else {
            return Ok(false);
        };
        let grace = chrono::Duration::seconds(
            i64::try_from(self.inner.config.refresh_reuse_grace_secs).unwrap_or(0),
        );
        let within_grace = current.used_at.is_some_and(|used| now - used <= grace);
        Ok(current.revoked_at.is_none()
            && within_grace
            && !refresh_tokens::successor_spent(&self.inner.db, current.id).await?)
    }

    /// Revokes the family of a refresh token (RFC 7009: unknown tokens are
    /// not an error, so the endpoint reveals nothing).
    pub async fn revoke_refresh_token(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        if let Some(row) = refresh_tokens::find(&self.inner.db, &crypto::hash_token(token)).await? {
            let revoked =
                refresh_tokens::revoke_family(&self.inner.db, row.family_id, Utc::now()).await?;
            if revoked > 0 {
                audit::record(
                    &self.inner.db,
                    AuditEvent::TokenRevoked,
                    Some(row.user_id),
                    None,
                    ctx,
                    json!({ "family": row.family_id }),
                )
                .await;
            }
        }
        Ok(())
    }
}
