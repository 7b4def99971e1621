//! Registration, profile, password change, deletion and roles.

use super::USER_REGISTERED;
use basalt_platform::db::unique_violation;
use basalt_platform::error::FieldError;
use basalt_platform::events::Event;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::IdentityService;
use super::validation::{validate_email, validate_username};
use crate::error::IdentityError;
use crate::model::{Role, User};
use crate::passwords::check_policy;
use crate::store::audit::{self, AuditEvent};
use crate::store::email_tokens::{self, Purpose};
use crate::store::users::{self, UserRow};
use basalt_platform::http::context::RequestContext;
use basalt_platform::ratelimit::Quota;

/// A registration request.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Email address.
    pub email: String,
    /// Username.
    pub username: String,
    /// Password.
    pub password: String,
    /// Role (the CLI bootstraps admins; the API always registers users).
    pub role: Role,
}

/// Changes to a profile; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct ProfileChanges {
    /// New address (unverified until confirmed).
    pub email: Option<String>,
    /// New username.
    pub username: Option<String>,
    /// New biography; `Some(None)` clears it.
    pub bio: Option<Option<String>>,
    /// New avatar URL; `Some(None)` clears it.
    pub image: Option<Option<String>>,
    /// New password (RealWorld's update allows it).
    pub password: Option<String>,
}

/// Maps a unique violation on the users table to the field it concerns.
fn taken(error: &sqlx::Error) -> Option<IdentityError> {
    let what = unique_violation(error)?;
    if what.contains("email") {
        Some(IdentityError::Taken {
            fields: vec!["email"],
        })
    } else if what.contains("username") {
        Some(IdentityError::Taken {
            fields: vec!["username"],
        })
    } else {
        None
    }
}

/// The rate-limit key of sign-ups from `ctx`'s address. Every sign-up
/// route (identity's `/api/auth/register`, the blog's `/api/users`) shares
/// one budget per address. A request whose address is unknown (no peer
/// address reached the handler) counts against one shared key,
/// `register:ip:unknown`: all such requests share one budget rather than
/// going unlimited.
fn register_key(ctx: &RequestContext) -> String {
    format!("register:ip:{}", ctx.ip.as_deref().unwrap_or("unknown"))
}

impl IdentityService {
    /// Self-service sign-up, whatever the route or protocol: counted against
    /// the address's hourly quota
    /// (`identity.rate_limits.register_per_ip_per_hour`, 429 when over, and
    /// before any validation, so that failed attempts count too), then
    /// [`IdentityService::create_account`].
    pub async fn register(
        &self,
        r: Registration,
        ctx: &RequestContext,
    ) -> Result<User, IdentityError> {
        let quota = Quota::per_hour(self.inner.config.rate_limits.register_per_ip_per_hour);
        self.limit(&register_key(ctx), quota).await?;
        self.create_account(r, ctx).await
    }

    /// Creates an account and queues the verification mail, atomically.
    /// Not rate limited: for operators (the CLI's `user create`); clients
    /// sign up through [`IdentityService::register`].
    pub async fn create_account(
        &self,
        r: Registration,
        ctx: &RequestContext,
    ) -> Result<User, IdentityError> {
        let mut errors = Vec::new();
        let email = r.email.trim().to_owned();
        let username = r.username.trim().to_owned();
        if let Err(e) = validate_email(&email) {
            errors.push(e);
        }
        if let Err(e) = validate_username(&username) {
            errors.push(e);
        }
        if let Err(v) = check_policy(&r.password, &[&email, &username]) {
            errors.push(FieldError::new("password", v.to_string()));
        }
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }

        let hash = self.inner.passwords.hash(&r.password).await?;
        let now = Utc::now();
        let row = UserRow {
            id: Uuid::now_v7(),
            email,
            username,
            password_hash: hash,
            role: r.role.as_str().to_owned(),
            bio: None,
            image: None,
            email_verified_at: None,
            created_at: now,
            token_generation: 0,
        };
        let mut tx = self.inner.db.begin().await?;
        if let Err(e) = users::insert(&mut tx, &row, now).await {
            drop(tx);
            return Err(match taken(&e) {
                // The database names one constraint; say of both fields
                // whether they are taken, so the form can show both.
                Some(_) => self.taken_fields(&row.email, &row.username).await?,
                None => IdentityError::Database(e),
            });
        }
        self.queue_verification_mail(&mut tx, row.id, &row.email)
            .await?;
        let registered = Event::new(
            USER_REGISTERED,
            &json!({ "user_id": row.id, "username": row.username }),
        );
        basalt_platform::events::record_in(&mut tx, &registered).await?;
        tx.commit().await?;
        self.inner.events.wake();
        audit::record(
            &self.inner.db,
            AuditEvent::Registered,
            Some(row.id),
            None,
            ctx,
            json!({}),
        )
        .await;
        Ok(row.to_user())
    }

    /// Which of `email` and `username` belong to an account already.
    async fn taken_fields(
        &self,
        email: &str,
        username: &str,
    ) -> Result<IdentityError, IdentityError> {
        let mut fields = Vec::new();
        if users::find_by_email(&self.inner.db, email).await?.is_some() {
            fields.push("email");
        }
        if users::find_by_username(&self.inner.db, username)
            .await?
            .is_some()
        {
            fields.push("username");
        }
        if fields.is_empty() {
            // Deleted again meanwhile: the violation was real all the same.
            fields.push("email");
        }
        Ok(IdentityError::Taken { fields })
    }

    /// Sends (queues) a new verification link, invalidating earlier ones.
    pub async fn request_email_verification(&self, user_id: Uuid) -> Result<(), IdentityError> {
        let user = users::find_by_id(&self.inner.db, user_id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if user.email_verified_at.is_some() {
            return Ok(());
        }
        let mut tx = self.inner.db.begin().await?;
        self.queue_verification_mail(&mut tx, user_id, &user.email)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn queue_verification_mail(
        &self,
        tx: &mut basalt_platform::db::Tx,
        user_id: Uuid,
        email: &str,
    ) -> Result<(), IdentityError> {
        self.queue_link(tx, user_id, email, Purpose::VerifyEmail)
            .await
    }

    /// An account by id.
    pub async fn user(&self, id: Uuid) -> Result<User, IdentityError> {
        Ok(users::find_by_id(&self.inner.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?
            .to_user())
    }

    /// Several accounts by id (unknown ids are left out), e.g. the authors
    /// of a page of articles.
    pub async fn users_by_ids(
        &self,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, User>, IdentityError> {
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        Ok(users::find_by_ids(&self.inner.db, &unique)
            .await?
            .into_iter()
            .map(|row| (row.id, row.to_user()))
            .collect())
    }

    /// An account by username (case-insensitive).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, IdentityError> {
        Ok(users::find_by_username(&self.inner.db, username)
            .await?
            .map(|u| u.to_user()))
    }

    /// An account by email address (case-insensitive).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, IdentityError> {
        Ok(users::find_by_email(&self.inner.db, email)
            .await?
            .map(|u| u.to_user()))
    }

    /// The audit log, newest first, filtered by `query` (admins only,
    /// checked by the caller).
    pub async fn audit_log(
        &self,
        query: &crate::model::AuditQuery,
    ) -> Result<Vec<crate::model::AuditRecord>, IdentityError> {
        Ok(crate::store::audit::list(&self.inner.db, query).await?)
    }

    /// Updates the profile. A new email must be confirmed again; a new
    /// password follows the password policy and ends other sessions.
    pub async fn update_profile(
        &self,
        id: Uuid,
        changes: ProfileChanges,
        ctx: &RequestContext,
    ) -> Result<User, IdentityError> {
        let current = users::find_by_id(&self.inner.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let mut errors = Vec::new();
        let email = changes.email.as_deref().map(str::trim);
        let username = changes.username.as_deref().map(str::trim);
        if let Some(Err(e)) = email.map(validate_email) {
            errors.push(e);
        }
        if let Some(Err(e)) = username.map(validate_username) {
            errors.push(e);
        }
        if let Some(Some(image)) = &changes.image
            && (!(image.is_empty()
                || image.starts_with("https://")
                || image.starts_with("http://"))
                || image.chars().any(char::is_control))
        {
            errors.push(FieldError::new("image", "must be an http(s) URL"));
        }
        if let Some(Some(bio)) = &changes.bio
            && bio.chars().count() > 10_000
        {
            errors.push(FieldError::new("bio", "must be at most 10000 characters"));
        }
        // Forms send every field: an empty password means "unchanged" (as
        // RealWorld's reference backend has it), not "too short".
        let new_password = changes.password.as_deref().filter(|p| !p.is_empty());
        if let Some(password) = new_password
            && let Err(v) = check_policy(
                password,
                &[
                    email.unwrap_or(&current.email),
                    username.unwrap_or(&current.username),
                ],
            )
        {
            errors.push(FieldError::new("password", v.to_string()));
        }
        if !errors.is_empty() {
            return Err(IdentityError::Invalid(errors));
        }
        let now = Utc::now();
        let bio = changes
            .bio
            .as_ref()
            .map(|b| b.as_deref().filter(|s| !s.is_empty()));
        let image = changes
            .image
            .as_ref()
            .map(|i| i.as_deref().filter(|s| !s.is_empty()));
        if let Err(e) =
            users::update_profile(&self.inner.db, id, email, username, bio, image, now).await
        {
            return Err(taken(&e).unwrap_or(IdentityError::Database(e)));
        }
        if let Some(password) = new_password {
            self.store_new_password(id, password, None, ctx, AuditEvent::PasswordChanged)
                .await?;
        }
        self.user_changed(id).await;
        let updated = users::find_by_id(&self.inner.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if updated.email_verified_at.is_none() && updated.email != current.email {
            self.request_email_verification(id).await?;
        }
        Ok(updated.to_user())
    }

    /// Changes the password after checking the current one. Every other
    /// session and every refresh token of the user ends.
    pub async fn change_password(
        &self,
        id: Uuid,
        current_password: &str,
        new_password: &str,
        keep_session: Option<Uuid>,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        let user = users::find_by_id(&self.inner.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let verification = self
            .inner
            .passwords
            .verify(current_password, &user.password_hash)
            .await?;
        if !verification.matches {
            return Err(IdentityError::Invalid(vec![FieldError::new(
                "current_password",
                "is not your current password",
            )]));
        }
        check_policy(new_password, &[&user.email, &user.username])?;
        self.store_new_password(
            id,
            new_password,
            keep_session,
            ctx,
            AuditEvent::PasswordChanged,
        )
        .await
    }

    /// Hashes and stores a password, then ends other sessions and all refresh tokens.
    pub(crate) async fn store_new_password(
        &self,
        id: Uuid,
        password: &str,
        keep_session: Option<Uuid>,
        ctx: &RequestContext,
        event: AuditEvent,
    ) -> Result<(), IdentityError> {
        let hash = self.inner.passwords.hash(password).await?;
        let now = Utc::now();
        let mut tx = self.inner.db.begin().await?;
        users::set_password(&mut tx, id, &hash, now).await?;
        email_tokens::invalidate_all(&mut tx, id, Purpose::ResetPassword, now).await?;
        tx.commit().await?;
        self.end_all_sessions(id, keep_session).await?;
        audit::record(&self.inner.db, event, Some(id), None, ctx, json!({})).await;
        Ok(())
    }

    /// Ends every session (except `keep`), revokes every refresh token and
    /// refuses every access token issued so far.
    pub async fn end_all_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
    ) -> Result<(), IdentityError> {
        self.inner.sessions.delete_all(user_id, keep).await?;
        crate::store::refresh_tokens::revoke_all_for_user(&self.inner.db, user_id, Utc::now())
            .await?;
        self.revoke_access_tokens(user_id).await
    }

    /// Deletes the account after checking the password.
    pub async fn delete_account(
        &self,
        id: Uuid,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<(), IdentityError> {
        let user = users::find_by_id(&self.inner.db, id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if !self
            .inner
            .passwords
            .verify(password, &user.password_hash)
            .await?
            .matches
        {
            return Err(IdentityError::Invalid(vec![FieldError::new(
                "password",
                "is not your current password",
            )]));
        }
        self.end_all_sessions(id, None).await?;
        let mut tx = self.inner.db.begin().await?;
        users::delete(&mut tx, id).await?;
        tx.commit().await?;
        self.standing_changed(id).await;
        self.user_changed(id).await;
        audit::record(
            &self.inner.db,
            AuditEvent::AccountDeleted,
            Some(id),
            None,
            ctx,
            json!({ "email": user.email }),
        )
        .await;
        Ok(())
    }

    /// Sets a user's role (admins only, checked by the caller). A privilege
    /// change ends the user's sessions and tokens, so that none outlives it.
    pub async fn set_role(
        &self,
        actor: Uuid,
        target: Uuid,
        role: Role,
        ctx: &RequestContext,
    ) -> Result<User, IdentityError> {
        let before = users::find_by_id(&self.inner.db, target)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if !users::set_role(&self.inner.db, target, role, Utc::now()).await? {
            return Err(IdentityError::NotFound);
        }
        if before.role != role.as_str() {
            // Also forgets the cached standing: the new role counts at once.
            self.end_all_sessions(target, None).await?;
        }
        audit::record(
            &self.inner.db,
            AuditEvent::RoleChanged,
            Some(target),
            Some(actor),
            ctx,
            json!({ "from": before.role, "to": role.as_str() }),
        )
        .await;
        self.user(target).await
    }
}
