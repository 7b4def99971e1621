//! Outgoing mail: always through the job queue, so a slow or down SMTP
//! server delays mail instead of failing requests, and mail survives
//! restarts.
//!
//! CONTRACT (implementation in progress): with `smtp_url` set, mail goes
//! over real SMTP (lettre); without it, the message is written to the log
//! and the job succeeds, so the zero-config start works.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::jobs::{JobQueue, NewJob};

/// The job kind that sends one [`Email`].
pub const SEND_EMAIL_JOB: &str = "platform.send_email";

/// A plain-text message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
}

/// Sending failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The address or message is malformed: retrying cannot help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The server could not be reached or refused for now.
    #[error("transport: {0}")]
    Transport(String),
}

/// Something that delivers mail.
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one message.
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), MailError>>;
}

/// The mailer for this configuration: SMTP when `smtp_url` is set, else the log.
pub fn mailer_for(config: &Config) -> anyhow::Result<Arc<dyn Mailer>> {
    match &config.smtp_url {
        None => Ok(Arc::new(LogMailer)),
        Some(_) => anyhow::bail!("SMTP mailer not implemented yet"),
    }
}

/// Writes messages to the log instead of sending them (no SMTP configured).
#[derive(Debug, Clone, Copy)]
pub struct LogMailer;

impl Mailer for LogMailer {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            tracing::info!(to = %email.to, subject = %email.subject, body = %email.text, "mail (no SMTP configured)");
            Ok(())
        })
    }
}

/// The job that sends `email`; enqueue it (inside a transaction with
/// [`JobQueue::enqueue_in`]) instead of sending directly.
pub fn email_job(email: &Email) -> NewJob {
    NewJob::new(SEND_EMAIL_JOB, email)
}

/// Registers the [`SEND_EMAIL_JOB`] handler on `jobs`.
pub fn register_send_email(jobs: &JobQueue, mailer: Arc<dyn Mailer>) {
    let _ = (jobs, mailer);
}
