//! Password sign-in (with lockout), browser sessions and sign-out.

use basalt_platform::ratelimit::Quota;
use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::IdentityService;
use crate::config::IdentityConfig;
use crate::crypto;
use crate::error::IdentityError;
use crate::model::{User, normalize};
use crate::store::audit::{self, AuditEvent};
use crate::store::sessions::{NewSession, SessionRow};
use crate::store::sign_ins::{self, NewRefreshToken};
use crate::store::users::{self, UserRow};
use basalt_platform::http::context::RequestContext;

/// A freshly created session: what goes into the cookie and to the client.
#[derive(Debug, Clone)]
pub struct NewSessionCookie {
    /// The cookie value (shown once, stored only hashed).
    pub token: String,
    /// The session's public id.
    pub session_id: Uuid,
    /// The CSRF token the client must send with writes.
    pub csrf_token: String,
    /// Absolute end of the session.
    pub expires_at: DateTime<Utc>,
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct SignInOutcome {
    /// Who signed in.
    pub user: User,
}

/// What a sign-in grants, recorded by the statement that clears the failure
/// count once the password is proven ([`sign_ins::record_success`]).
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// The `sign_in_succeeded` audit record's details: how, and what for.
    pub details: serde_json::Value,
    /// A token sign-in's first refresh token.
    pub refresh_token: Option<NewRefreshToken>,
}

impl IdentityService {
    /// Checks email and password, applying per-IP and per-account rate
    /// limits and the lockout. Every failure looks the same from outside:
    /// same status, same message, and a password hash computed either way.
    /// On success the failure count is cleared and `grant` recorded.
    ///
    /// The check runs on its own task, to completion, even if the caller
    /// goes away: the attempt is counted *before* the password is checked,
    /// so an abandoned check (a client that disconnected mid-hash) must
    /// still clear the count on success, or impatient clients would lock
    /// out users who never typed a wrong password. A graceful shutdown
    /// waits for it too ([`basalt_platform::background`]).
    pub(crate) async fn check_password(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
        grant: Grant,
    ) -> Result<UserRow, IdentityError> {
        let (service, email, password, ctx) = (
            self.clone(),
            email.to_owned(),
            password.to_owned(),
            ctx.clone(),
        );
        let background = self.inner.background.clone();
        background
            .spawn(async move {
                service
                    .check_password_to_completion(&email, &password, &ctx, grant)
                    .await
            })
            .await
            .map_err(|e| IdentityError::Internal(anyhow::anyhow!("sign-in check failed: {e}")))?
    }

    async fn check_password_to_completion(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
        grant: Grant,
    ) -> Result<UserRow, IdentityError> {
        let limits = &self.inner.config.rate_limits;
        let ip = ctx.ip.as_deref().unwrap_or("unknown");
        self.limit(
            &format!("signin:ip:{ip}"),
            Quota::per_minute(limits.login_per_ip_per_minute),
        )
        .await?;
        self.limit(
            &format!("signin:account:{}", normalize(email)),
            Quota::per_minute(limits.login_per_account_per_minute),
        )
        .await?;

        let Some(users::SignInAttempt { user, attempt }) =
            users::begin_attempt(&self.inner.db, email, Utc::now()).await?
        else {
            self.inner.passwords.verify_dummy(password).await;
            audit::record(
                &self.inner.db,
                AuditEvent::SignInFailed,
                None,
                None,
                ctx,
                json!({ "reason": "unknown_account" }),
            )
            .await;
            return Err(IdentityError::SignInFailed);
        };
        let Some(attempt) = attempt else {
            // Locked: spend the same time as a real check.
            self.inner.passwords.verify_dummy(password).await;
            audit::record(
                &self.inner.db,
                AuditEvent::SignInFailed,
                Some(user.id),
                None,
                ctx,
                json!({ "reason": "locked" }),
            )
            .await;
            return Err(IdentityError::SignInFailed);
        };
        // Each lockout allows one more try once it expires; before the first,
        // `lockout_threshold` tries.
        let budget = i64::from(self.inner.config.lockout_threshold) + attempt.lock_level;
        // Over budget: other attempts hold the budget and are being checked
        // right now; the one whose count equals the budget always settles
        // the count (success clears it, failure locks). This one is refused
        // unchecked, and does not lock: it proves nothing about the password.
        if attempt.failures > budget {
            self.inner.passwords.verify_dummy(password).await;
            audit::record(
                &self.inner.db,
                AuditEvent::SignInFailed,
                Some(user.id),
                None,
                ctx,
                json!({ "reason": "over_budget" }),
            )
            .await;
            return Err(IdentityError::SignInFailed);
        }

        let verification = self
            .inner
            .passwords
            .verify(password, &user.password_hash)
            .await?;
        if !verification.matches {
            audit::record(
                &self.inner.db,
                AuditEvent::SignInFailed,
                Some(user.id),
                None,
                ctx,
                json!({ "reason": "wrong_password", "failures": attempt.failures }),
            )
            .await;
            if attempt.failures >= budget {
                self.lock(&user, attempt.lock_level, ctx).await?;
            }
            return Err(IdentityError::SignInFailed);
        }

        sign_ins::record_success(
            &self.inner.db,
            user.id,
            grant.refresh_token.as_ref(),
            ctx,
            &grant.details,
        )
        .await?;
        if verification.needs_rehash {
            self.upgrade_hash(&user, password).await;
        }
        Ok(user)
    }

    async fn lock(
        &self,
        user: &UserRow,
        level: i64,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        let cfg = &self.inner.config;
        let factor = 1u64
            .checked_shl(u32::try_from(level).unwrap_or(63))
            .unwrap_or(u64::MAX);
        let secs = cfg
            .lockout_base_secs
            .saturating_mul(factor)
            .min(cfg.lockout_max_secs);
        let until = Utc::now() + IdentityConfig::secs(secs);
        // After this lock the budget is threshold + level + 1; leave the
        // count one below it, so one more try is checked when the lock ends.
        let failures_after = i64::from(cfg.lockout_threshold) + level;
        if users::lock(&self.inner.db, user.id, level, until, failures_after).await? {
            audit::record(
                &self.inner.db,
                AuditEvent::AccountLocked,
                Some(user.id),
                None,
                ctx,
                json!({ "until": until, "level": level + 1 }),
            )
            .await;
        }
        Ok(())
    }

    /// Re-hashes with the current parameters (argon2id), after a successful
    /// check: how imported bcrypt/scrypt hashes and old costs are upgraded.
    async fn upgrade_hash(&self, user: &UserRow, password: &str) {
        match self.inner.passwords.hash(password).await {
            Ok(new_hash) => {
                if let Err(e) = users::upgrade_password_hash(
                    &self.inner.db,
                    user.id,
                    &user.password_hash,
                    &new_hash,
                )
                .await
                {
                    tracing::warn!(error = %e, "cannot store upgraded password hash");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot re-hash password"),
        }
    }

    /// Signs in with a password and opens a browser session. Any session the
    /// browser already had is ended first: a new id at every sign-in, so a
    /// session id planted before sign-in (fixation) is worthless.
    pub async fn sign_in_with_session(
        &self,
        email: &str,
        password: &str,
        previous_token: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<(SignInOutcome, NewSessionCookie), IdentityError> {
        let session_id = Uuid::now_v7();
        let grant = Grant {
            details: json!({ "method": "session", "session_id": session_id }),
            refresh_token: None,
        };
        let user = self.check_password(email, password, ctx, grant).await?;
        if let Some(previous) = previous_token {
            self.inner
                .sessions
                .delete_by_token(&crypto::hash_token(previous))
                .await?;
        }
        let cookie = self.open_session(session_id, user.id, ctx).await?;
        Ok((
            SignInOutcome {
                user: user.to_user(),
            },
            cookie,
        ))
    }

    /// Opens a new session `id` for `user_id`.
    pub(crate) async fn open_session(
        &self,
        id: Uuid,
        user_id: Uuid,
        ctx: &RequestContext,
    ) -> Result<NewSessionCookie, IdentityError> {
        let (token, token_hash) = crypto::new_token()?;
        let (csrf_token, _) = crypto::new_token()?;
        let now = Utc::now();
        let expires_at =
            now + IdentityConfig::secs(self.inner.config.session_absolute_timeout_secs);
        let session = NewSession {
            id,
            token_hash,
            user_id,
            csrf_token: csrf_token.clone(),
            created_at: now,
            expires_at,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
        };
        self.inner.sessions.create(&session).await?;
        Ok(NewSessionCookie {
            token,
            session_id: session.id,
            csrf_token,
            expires_at,
        })
    }

    /// Replaces a session by a new one (privilege change: new id, same user).
    pub async fn rotate_session(
        &self,
        old: &SessionRow,
        ctx: &RequestContext,
    ) -> Result<NewSessionCookie, IdentityError> {
        let cookie = self.open_session(Uuid::now_v7(), old.user_id, ctx).await?;
        self.inner.sessions.delete(old.user_id, old.id).await?;
        Ok(cookie)
    }

    /// The live session behind a cookie token, if any; records activity at
    /// most once a minute.
    pub async fn session_for_token(
        &self,
        token: &str,
    ) -> Result<Option<SessionRow>, IdentityError> {
        let now = Utc::now();
        let session = self
            .inner
            .sessions
            .find_live(&crypto::hash_token(token), now, self.idle_since(now))
            .await?;
        if let Some(s) = &session
            && now - s.last_seen_at > chrono::Duration::seconds(60)
        {
            self.inner.sessions.touch(s.id, now).await?;
        }
        Ok(session)
    }

    /// Ends the session behind a cookie token.
    pub async fn sign_out(
        &self,
        session: &SessionRow,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        self.inner
            .sessions
            .delete(session.user_id, session.id)
            .await?;
        audit::record(
            &self.inner.db,
            AuditEvent::SignedOut,
            Some(session.user_id),
            None,
            ctx,
            json!({ "session_id": session.id }),
        )
        .await;
        Ok(())
    }

    /// A user's live sessions.
    pub async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionRow>, IdentityError> {
        let now = Utc::now();
        Ok(self
            .inner
            .sessions
            .list(user_id, now, self.idle_since(now))
            .await?)
    }

    /// Revokes one of a user's sessions.
    pub async fn revoke_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        if !self.inner.sessions.delete(user_id, session_id).await? {
            return Err(IdentityError::NotFound);
        }
        audit::record(
            &self.inner.db,
            AuditEvent::SessionRevoked,
            Some(user_id),
            None,
            ctx,
            json!({ "session_id": session_id }),
        )
        .await;
        Ok(())
    }

    /// Signs out everywhere: every session and refresh token of the user.
    pub async fn sign_out_everywhere(
        &self,
        user_id: Uuid,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        self.end_all_sessions(user_id, None).await?;
        audit::record(
            &self.inner.db,
            AuditEvent::AllSessionsRevoked,
            Some(user_id),
            None,
            ctx,
            json!({}),
        )
        .await;
        Ok(())
    }
}
