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
use crate::store::audit::{self, AuditEvent, RequestContext};
use crate::store::refresh_tokens;
use crate::store::sign_ins::NewRefreshToken;

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
        Ok((user, pair))
    }

    /// Signs in with a password and returns an access token alone, as the
    /// RealWorld API does (no refresh token).
    pub async fn sign_in_for_access_token(
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
        let token = self.access_token(&user).await?;
        Ok((user, token))
    }

    /// An access token alone (the RealWorld API hands out only this).
    pub async fn access_token(&self, user: &User) -> Result<String, IdentityError> {
        Ok(self
            .inner
            .issuer
            .issue(user.id, user.role.as_str(), None)
            .await?
            .token)
    }

    /// Stores the next refresh token of `family` and returns it with an
    /// access token.
    async fn issue_pair(
        &self,
        user: &User,
        family: Uuid,
        family_expires_at: DateTime<Utc>,
    ) -> Result<TokenPair, IdentityError> {
        let (refresh, hash) = crypto::new_token()?;
        refresh_tokens::insert(
            &self.inner.db,
            &hash,
            family,
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
        user: &User,
        family: Uuid,
        refresh: String,
        family_expires_at: DateTime<Utc>,
    ) -> Result<TokenPair, IdentityError> {
        let family_id = family.to_string();
        let access = self
            .inner
            .issuer
            .issue(user.id, user.role.as_str(), Some(&family_id))
            .await?;
        Ok(TokenPair {
            access_token: access.token,
            token_type: "Bearer",
            expires_in: self.inner.config.access_token_ttl_secs,
            refresh_token: refresh,
            refresh_expires_at: family_expires_at,
        })
    }

    /// Exchanges a refresh token for a new pair. The token is spent; a spent
    /// token presented again after the grace window means it was copied, so
    /// its whole family is revoked (the thief's and the owner's tokens).
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
        let user = match self.user(row.user_id).await {
            Ok(user) => user,
            Err(IdentityError::NotFound) => return Err(IdentityError::Unauthenticated),
            Err(e) => return Err(e),
        };

        let spent_now = refresh_tokens::spend(&self.inner.db, row.id, now).await?;
        if !spent_now {
            // Read again: a concurrent refresh may have spent it after our
            // first read, and only the stored time says how long ago.
            let current = refresh_tokens::find(&self.inner.db, &crypto::hash_token(token)).await?;
            if current.as_ref().is_none_or(|r| r.revoked_at.is_some()) {
                return Err(IdentityError::Unauthenticated);
            }
            let used_at = current.and_then(|r| r.used_at);
            let grace = chrono::Duration::seconds(
                i64::try_from(self.inner.config.refresh_reuse_grace_secs).unwrap_or(0),
            );
            let within_grace = used_at.is_some_and(|used| now - used <= grace);
            if !within_grace {
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
            // A client retrying the same refresh: give it a pair too.
        }
        self.issue_pair(&user, row.family_id, row.expires_at).await
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
