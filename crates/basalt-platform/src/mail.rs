//! Outgoing mail: always through the job queue, so a slow or down SMTP
//! server delays mail instead of failing requests, and mail survives
//! restarts.
//!
//! With `smtp_url` set, mail goes over real SMTP ([`SmtpMailer`], lettre);
//! without it, the message is written to the log and the job succeeds
//! ([`LogMailer`]), so the zero-config start works.
//!
//! `smtp_url` schemes:
//! - `smtp://host:port`: plain SMTP, for a local relay or a test sink. No
//!   opportunistic STARTTLS: it would silently fall back to plain text
//!   whenever an attacker strips the offer, so it protects nothing that
//!   matters; ask for TLS explicitly instead.
//! - `smtp://user:pass@host:587?tls=required`: STARTTLS, refused without it.
//! - `smtps://user:pass@host:465`: implicit TLS (the whole session).
//!
//! Certificates are checked against the Mozilla roots (webpki-roots).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::config::{Config, SmtpUrl};
use crate::jobs::{JobError, JobQueue, NewJob};

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
        Some(url) => Ok(Arc::new(SmtpMailer::new(url, &config.mail_from)?)),
    }
}

/// How long one delivery may take (connect, TLS, dialogue) before it counts
/// as a transport failure and the job is retried.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Delivers mail over SMTP (lettre), one connection per message.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The server URL without its password, for logs.
    server: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server at `url` (see the module docs for the
    /// schemes), sending as `from` (`Name <address>` or a bare address).
    /// Nothing is contacted yet.
    pub fn new(url: &SmtpUrl, from: &str) -> anyhow::Result<Self> {
        let server = url.redacted();
        // lettre's messages never include the URL's password.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.0.expose_secret())
            .map_err(|e| anyhow::anyhow!("invalid smtp_url {server}: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| anyhow::anyhow!("invalid mail_from {from:?}: {e}"))?;
        Ok(Self {
            transport,
            from,
            server,
        })
    }

    /// The message as it will be sent; fails when it cannot be built.
    fn message(&self, email: &Email) -> Result<Message, MailError> {
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|e| MailError::Invalid(format!("recipient {:?}: {e}", email.to)))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(email.text.clone())
            .map_err(|e| MailError::Invalid(e.to_string()))
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            let message = self.message(email)?;
            // Everything the server answers counts as a transport failure,
            // even a permanent (5xx) rejection: those are often configuration
            // problems (sender not allowed, authentication) that an operator
            // fixes, and retries are bounded by the job's max attempts; the
            // last error stays on the job for inspection.
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transport(format!("{}: {e}", self.server)))
        })
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

/// Registers the [`SEND_EMAIL_JOB`] handler on `jobs`: it sends the job's
/// [`Email`] with `mailer`. A payload that is not an email, or a message
/// that cannot be built, fails permanently; transport failures are retried.
pub fn register_send_email(jobs: &JobQueue, mailer: Arc<dyn Mailer>) {
    jobs.register(SEND_EMAIL_JOB, move |payload| {
        let mailer = mailer.clone();
        async move {
            let email = email_from_payload(payload)?;
            deliver(&*mailer, &email).await
        }
    });
}

/// Sends `email` from inside a job handler: a malformed message fails the
/// job for good, a transport failure is retried. For handlers that compose
/// their message when they run (a mail holding a secret minted just then)
/// rather than enqueueing an [`email_job`].
pub async fn deliver(mailer: &dyn Mailer, email: &Email) -> Result<(), JobError> {
    mailer.send(email).await.map_err(|error| match error {
        MailError::Invalid(_) => JobError::Permanent(error.to_string()),
        MailError::Transport(_) => JobError::Retry(error.to_string()),
    })
}

fn email_from_payload(payload: serde_json::Value) -> Result<Email, JobError> {
    serde_json::from_value(payload)
        .map_err(|e| JobError::Permanent(format!("payload is not an email: {e}")))
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;

    fn smtp(url: &str) -> SmtpUrl {
        SmtpUrl(SecretString::from(url.to_owned()))
    }

    #[test]
    fn every_documented_scheme_builds_without_connecting() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://user:p%40ss@mail.example.com:465",
            "smtps://mail.example.com",
        ] {
            SmtpMailer::new(&smtp(url), "Basalt <no-reply@example.com>")
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn errors_never_show_the_password() {
        let err = SmtpMailer::new(&smtp("ftp://user:hunter2@host"), "a@b.example")
            .expect_err("unknown scheme");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let mailer =
            SmtpMailer::new(&smtp("smtps://user:hunter2@host"), "a@b.example").expect("builds");
        assert!(!format!("{mailer:?}").contains("hunter2"));
        assert!(SmtpMailer::new(&smtp("smtp://host"), "not an address").is_err());
    }

    #[test]
    fn malformed_messages_are_invalid_not_transport_errors() {
        let mailer =
            SmtpMailer::new(&smtp("smtp://127.0.0.1:1"), "Basalt <a@b.example>").expect("builds");
        let email = |to: &str| Email {
            to: to.into(),
            subject: "Hi".into(),
            text: "Body".into(),
        };
        for to in ["", "no-at-sign", "a@b.example\r\nBcc: x@y.example"] {
            assert!(
                matches!(mailer.message(&email(to)), Err(MailError::Invalid(_))),
                "{to:?}"
            );
        }
        assert!(mailer.message(&email("Ann <ann@example.com>")).is_ok());

        // A line break in the subject cannot smuggle in a header.
        let sneaky = Email {
            subject: "Hi\r\nBcc: eve@example.com".into(),
            ..email("ann@example.com")
        };
        let formatted = mailer.message(&sneaky).expect("builds").formatted();
        let text = String::from_utf8_lossy(&formatted);
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    #[test]
    fn a_payload_that_is_not_an_email_fails_permanently() {
        assert!(matches!(
            email_from_payload(json!({ "to": 5 })),
            Err(JobError::Permanent(_))
        ));
        let email = email_from_payload(json!({ "to": "a@b.example", "subject": "s", "text": "t" }))
            .expect("an email");
        assert_eq!(email.to, "a@b.example");
    }
}
