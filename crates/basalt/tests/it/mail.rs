//! Outgoing mail through the job queue: delivered over real SMTP (aiosmtpd,
//! see `basalt_testkit::smtp`), retried while the server is down, written to
//! the log when no SMTP server is configured.

use std::time::Duration;

use basalt_platform::config::SmtpUrl;
use basalt_platform::jobs::{JobState, NewJob};
use basalt_platform::mail::{Email, SEND_EMAIL_JOB, email_job};
use basalt_testkit::TestApp;
use basalt_testkit::ports::restartable_port;
use basalt_testkit::smtp::SmtpServer;
use secrecy::SecretString;
use serde_json::json;

use crate::jobs::{DEADLINE, eventually, wait_for_state};

const FROM: &str = "Basalt Tests <no-reply@basalt.test>";

/// An app that sends mail through `smtp_url` (or logs it when `None`).
async fn mailing_app(smtp_url: Option<String>) -> TestApp {
    TestApp::builder()
        .configure(move |c| {
            c.smtp_url = smtp_url.map(|url| SmtpUrl(SecretString::from(url)));
            c.mail_from = FROM.into();
            c.jobs.poll_interval_ms = 50;
            c.jobs.backoff_base_secs = 1;
            c.jobs.backoff_max_secs = 1;
            c.jobs.max_attempts = 20;
        })
        .spawn()
        .await
}

fn welcome(to: &str) -> Email {
    Email {
        to: to.into(),
        subject: "Welcome to Basalt, Ålice".into(),
        // Non-ASCII text and a line longer than 76 characters make the
        // message go out encoded (quoted-printable or base64).
        text: format!(
            "Hello Ålice,\n\nconfirm your address within 24 hours:\n\
             https://basalt.test/confirm?token={}&next=%2Fhome\n\n— Basalt\n",
            "tok_3Fz9".repeat(12)
        ),
    }
}

#[tokio::test]
async fn a_queued_email_is_delivered_over_smtp() {
    let smtp = SmtpServer::start().await;
    let app = mailing_app(Some(smtp.url())).await;
    let workers = app.platform.jobs.start();

    let email = welcome("alice@example.com");
    let id = app
        .platform
        .jobs
        .enqueue(email_job(&email))
        .await
        .expect("enqueued");
    let mail = smtp.wait_for_message("alice@example.com", DEADLINE).await;
    assert_eq!(mail.rcpt_to, vec!["alice@example.com"]);
    assert_eq!(mail.mail_from, "no-reply@basalt.test");
    assert!(mail.from.contains("no-reply@basalt.test"), "{mail:?}");
    assert!(mail.to.contains("alice@example.com"), "{mail:?}");
    assert_eq!(mail.subject, email.subject);
    assert_eq!(
        mail.body.replace("\r\n", "\n").trim_end(),
        email.text.trim_end()
    );
    let link = format!(
        "https://basalt.test/confirm?token={}&next=%2Fhome",
        "tok_3Fz9".repeat(12)
    );
    assert!(mail.body.contains(&link), "{}", mail.body);

    let job = wait_for_state(&app.platform.jobs, id, JobState::Succeeded).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(smtp.messages().len(), 1, "sent exactly once");
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn mail_is_retried_while_the_smtp_server_is_down_and_delivered_when_it_is_back() {
    let port = restartable_port();
    let app = mailing_app(Some(format!("smtp://127.0.0.1:{port}"))).await;
    let jobs = &app.platform.jobs;
    let workers = jobs.start();

    let id = jobs
        .enqueue(email_job(&welcome("bob@example.com")))
        .await
        .expect("enqueued");
    let failed = eventually("a failed delivery attempt", DEADLINE, || async {
        let job = jobs.get(id).await.expect("get").expect("exists");
        (job.state == JobState::Queued && job.attempts >= 1).then_some(job)
    })
    .await;
    let error = failed.last_error.expect("the failure is recorded");
    assert!(error.contains("transport"), "{error}");
    assert!(
        error.contains(&port.to_string()),
        "names the server: {error}"
    );

    let smtp = SmtpServer::start_on(port).await;
    let mail = smtp.wait_for_message("bob@example.com", DEADLINE).await;
    assert_eq!(mail.subject, "Welcome to Basalt, Ålice");
    let job = wait_for_state(jobs, id, JobState::Succeeded).await;
    assert!(job.attempts >= 2, "{job:?}");
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn undeliverable_mail_is_dead_at_once() {
    let smtp = SmtpServer::start().await;
    let app = mailing_app(Some(smtp.url())).await;
    let jobs = &app.platform.jobs;
    let workers = jobs.start();

    let bad_address = jobs
        .enqueue(email_job(&welcome("not an address")))
        .await
        .expect("enqueued");
    let bad_payload = jobs
        .enqueue(NewJob::new(
            SEND_EMAIL_JOB,
            &json!({ "to": ["x@example.com"] }),
        ))
        .await
        .expect("enqueued");
    for (id, expected) in [(bad_address, "recipient"), (bad_payload, "not an email")] {
        let job = wait_for_state(jobs, id, JobState::Dead).await;
        assert_eq!(job.attempts, 1, "{job:?}");
        let error = job.last_error.expect("error recorded");
        assert!(error.contains(expected), "{error}");
    }

    // The server works: a valid message sent afterwards arrives, alone.
    jobs.enqueue(email_job(&welcome("carol@example.com")))
        .await
        .expect("enqueued");
    smtp.wait_for_message("carol@example.com", DEADLINE).await;
    assert_eq!(smtp.messages().len(), 1);
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn without_smtp_mail_is_logged_and_the_job_succeeds() {
    let app = mailing_app(None).await;
    let workers = app.platform.jobs.start();
    let id = app
        .platform
        .jobs
        .enqueue(email_job(&welcome("dave@example.com")))
        .await
        .expect("enqueued");
    let job = wait_for_state(&app.platform.jobs, id, JobState::Succeeded).await;
    assert_eq!(job.attempts, 1);
    assert!(job.last_error.is_none());
    workers.shutdown(Duration::from_secs(5)).await;
}
