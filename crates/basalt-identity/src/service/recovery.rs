//! Email verification and password reset through mailed, single-use,
//! expiring tokens.

use basalt_platform::ratelimit::Quota;
use chrono::Utc;
use serde_json::json;

use super::IdentityService;
use crate::crypto;
use crate::error::IdentityError;
use crate::model::{User, normalize};
use crate::passwords::check_policy;
use crate::store::audit::{self, AuditEvent};
use crate::store::email_tokens::{self, Purpose};
use crate::store::users;
use basalt_platform::http::context::RequestContext;

impl IdentityService {
    /// Confirms an address with the token from the verification mail.
    pub async fn verify_email(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<User, IdentityError> {
        let now = Utc::now();
        let mut tx = self.inner.db.begin().await?;
        let Some((user_id, email)) = email_tokens::consume(
            &mut tx,
            &crypto::hash_token(token),
            Purpose::VerifyEmail,
            now,
        )
        .await?
        else {
            return Err(IdentityError::InvalidToken);
        };
        // The address may have changed since the mail was sent: only that address is confirmed.
        if !users::mark_email_verified(&mut tx, user_id, &email, now).await? {
            return Err(IdentityError::InvalidToken);
        }
        tx.commit().await?;
        audit::record(
            &self.inner.db,
            AuditEvent::EmailVerified,
            Some(user_id),
            None,
            ctx,
            json!({ "email": email }),
        )
        .await;
        self.user(user_id).await
    }

    /// Queues a reset link when the account exists. The answer is the same
    /// either way, so the endpoint cannot be used to find accounts.
    pub async fn request_password_reset(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        let limits = &self.inner.config.rate_limits;
        let ip = ctx.ip.as_deref().unwrap_or("unknown");
        self.limit(
            &format!("reset:ip:{ip}"),
            Quota::per_hour(limits.reset_per_ip_per_hour),
        )
        .await?;
        self.limit(
            &format!("reset:account:{}", normalize(email)),
            Quota::per_hour(limits.reset_per_account_per_hour),
        )
        .await?;
        let Some(user) = users::find_by_email(&self.inner.db, email).await? else {
            return Ok(());
        };
        let mut tx = self.inner.db.begin().await?;
        self.queue_link(&mut tx, user.id, &user.email, Purpose::ResetPassword)
            .await?;
        tx.commit().await?;
        audit::record(
            &self.inner.db,
            AuditEvent::PasswordResetRequested,
            Some(user.id),
            None,
            ctx,
            json!({}),
        )
        .await;
        Ok(())
    }

    /// Sets a new password with a reset token. The token works once; every
    /// session and refresh token of the user ends.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        let now = Utc::now();
        let hash = crypto::hash_token(token);
        // Check the policy before spending the token, so a rejected password
        // does not burn the link; the consume below is still single-use.
        let mut tx = self.inner.db.begin().await?;
        let Some((user_id, _)) =
            email_tokens::consume(&mut tx, &hash, Purpose::ResetPassword, now).await?
        else {
            return Err(IdentityError::InvalidToken);
        };
        let user = users::find_by_id(&self.inner.db, user_id)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        if let Err(violation) = check_policy(new_password, &[&user.email, &user.username]) {
            // Rolls back: the token stays usable with a better password.
            drop(tx);
            return Err(violation.into());
        }
        tx.commit().await?;
        self.store_new_password(user_id, new_password, None, ctx, AuditEvent::PasswordReset)
            .await
    }
}
