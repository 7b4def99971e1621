//! Mailed links (email verification, password reset) whose secret never
//! sits in the job queue.
//!
//! A request stores the token's row with a placeholder hash and enqueues
//! [`SEND_LINK_JOB`] naming the row by id, in one transaction. The job mints
//! the secret when it runs, stores only its hash and hands the message to
//! the mailer: the token in clear exists in this process's memory and in
//! the mail, and nowhere an admin listing, a log line or a database dump
//! could show it.

use std::sync::Arc;

use basalt_platform::Db;
use basalt_platform::db::Tx;
use basalt_platform::jobs::{JobError, JobQueue, NewJob};
use basalt_platform::mail::{Email, Mailer, deliver};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::IdentityService;
use crate::config::IdentityConfig;
use crate::crypto;
use crate::error::IdentityError;
use crate::store::email_tokens::{self, Armed, PendingToken, Purpose};

/// The job that mints a mailed token's secret and sends the link.
pub const SEND_LINK_JOB: &str = "identity.send_link";

/// The job's whole payload: which token to send.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct LinkJob {
    token_id: Uuid,
}

/// What the job handler needs (not the service itself: the service holds
/// the queue, which holds its handlers).
#[derive(Clone)]
struct LinkSender {
    db: Db,
    mailer: Arc<dyn Mailer>,
    /// Base of the links, e.g. `https://app.example.com`.
    base_url: String,
}

impl IdentityService {
    /// Invalidates the account's earlier links of `purpose` and queues a new
    /// one to `email`, inside `tx`.
    pub(crate) async fn queue_link(
        &self,
        tx: &mut Tx,
        user_id: Uuid,
        email: &str,
        purpose: Purpose,
    ) -> Result<(), IdentityError> {
        let now = Utc::now();
        let ttl_secs = match purpose {
            Purpose::VerifyEmail => self.inner.config.email_verification_ttl_secs,
            Purpose::ResetPassword => self.inner.config.password_reset_ttl_secs,
        };
        email_tokens::invalidate_all(tx, user_id, purpose, now).await?;
        let token = PendingToken {
            id: Uuid::now_v7(),
            user_id,
            purpose,
            email: email.to_owned(),
            created_at: now,
            expires_at: now + IdentityConfig::secs(ttl_secs),
        };
        let (_, placeholder_hash) = crypto::new_token()?;
        email_tokens::insert(tx, &token, &placeholder_hash).await?;
        let job = NewJob::new(SEND_LINK_JOB, &LinkJob { token_id: token.id });
        self.inner.jobs.enqueue_in(tx, job).await?;
        Ok(())
    }

    /// Registers the [`SEND_LINK_JOB`] handler, sending through `mailer`.
    pub fn register_mail_jobs(&self, jobs: &JobQueue, mailer: Arc<dyn Mailer>) {
        let sender = LinkSender {
            db: self.inner.db.clone(),
            mailer,
            base_url: self.link(""),
        };
        jobs.register(SEND_LINK_JOB, move |payload| {
            let sender = sender.clone();
            async move {
                let job: LinkJob = serde_json::from_value(payload)
                    .map_err(|e| JobError::Permanent(format!("not a link job: {e}")))?;
                sender.send(job.token_id).await
            }
        });
    }
}

impl LinkSender {
    async fn send(&self, token_id: Uuid) -> Result<(), JobError> {
        let (secret, hash) = crypto::new_token().map_err(|e| JobError::Retry(e.to_string()))?;
        let now = Utc::now();
        let armed = email_tokens::arm(&self.db, token_id, &hash, now)
            .await
            .map_err(|e| JobError::Retry(format!("cannot store the token: {e}")))?;
        let Some(armed) = armed else {
            tracing::debug!(%token_id, "mailed link superseded, spent or expired: not sent");
            return Ok(());
        };
        deliver(&*self.mailer, &self.message(&armed, &secret, now)).await
    }

    fn message(&self, armed: &Armed, token: &str, now: DateTime<Utc>) -> Email {
        let left = armed.expires_at - now;
        let (subject, text) = match armed.purpose {
            Purpose::VerifyEmail => (
                "Confirm your email address",
                format!(
                    "Welcome to Basalt.\n\nConfirm your address by opening this link:\n\n\
                     {base}/verify-email?token={token}\n\n\
                     Or send this token to POST /api/auth/verify-email: {token}\n\n\
                     The link expires in {hours} hours. If you did not sign up, ignore this message.\n",
                    base = self.base_url,
                    hours = ((left.num_seconds() + 1800) / 3600).max(1),
                ),
            ),
            Purpose::ResetPassword => (
                "Reset your password",
                format!(
                    "Someone asked to reset the password of your Basalt account.\n\n\
                     Choose a new password here:\n\n{base}/reset-password?token={token}\n\n\
                     Or send this token with your new password to POST /api/auth/password/reset: {token}\n\n\
                     The link expires in {minutes} minutes and works once. If it was not you, ignore this message.\n",
                    base = self.base_url,
                    minutes = ((left.num_seconds() + 30) / 60).max(1),
                ),
            ),
        };
        Email {
            to: armed.email.clone(),
            subject: subject.into(),
            text,
        }
    }
}
