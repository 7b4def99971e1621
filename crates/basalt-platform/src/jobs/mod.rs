//! Durable background jobs, stored in the database (SQLite or PostgreSQL).
//!
//! CONTRACT (implementation in progress): jobs survive restarts, are retried
//! with exponential backoff and jitter, go to the dead-letter state after
//! `max_attempts`, can be scheduled for later, and can be enqueued inside the
//! caller's transaction so that "create the user" and "send the mail" commit
//! or roll back together.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::JobsConfig;
use crate::db::{Db, Tx};

/// A job's id.
pub type JobId = Uuid;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at` (new, or retrying after a failure).
    Queued,
    /// Claimed by a worker.
    Running,
    /// Done.
    Succeeded,
    /// Failed `max_attempts` times (or permanently): kept for inspection.
    Dead,
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Handler name, e.g. `platform.send_email`.
    pub kind: String,
    /// Handler input.
    pub payload: serde_json::Value,
    /// Earliest time to run; now when `None`.
    pub run_at: Option<DateTime<Utc>>,
    /// Overrides the configured maximum attempts.
    pub max_attempts: Option<u32>,
}

impl NewJob {
    /// A job of `kind` with a serialisable payload.
    pub fn new(kind: impl Into<String>, payload: &impl Serialize) -> Self {
        Self {
            kind: kind.into(),
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
            run_at: None,
            max_attempts: None,
        }
    }

    /// Runs no earlier than `at`.
    #[must_use]
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// At most `n` attempts.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
}

/// A stored job, as listed by `basalt jobs list` and the admin API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRecord {
    /// Id.
    pub id: Uuid,
    /// Handler name.
    pub kind: String,
    /// State.
    pub state: JobState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it (next) runs.
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Handler input.
    pub payload: serde_json::Value,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// At most this many (default 50, max 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// A handler's failure.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying (a network error, a busy server).
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help (bad payload): straight to the dead-letter state.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        Self::Retry(format!("{e:#}"))
    }
}

type Handler =
    Box<dyn Fn(serde_json::Value) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// The queue: enqueue, list, and run registered handlers on workers.
#[derive(Clone)]
pub struct JobQueue {
    db: Db,
    config: JobsConfig,
    handlers: std::sync::Arc<
        std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Handler>>>,
    >,
}

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Running workers; see [`JobQueue::start`].
#[derive(Debug)]
pub struct Workers {}

impl JobQueue {
    /// A queue over `db`.
    pub fn new(db: Db, config: JobsConfig) -> Self {
        Self {
            db,
            config,
            handlers: Default::default(),
        }
    }

    /// Registers the handler for `kind`. Call while building the app.
    pub fn register<F, Fut>(&self, kind: &str, handler: F)
    where
        F: Fn(serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let boxed: Handler = Box::new(move |payload| Box::pin(handler(payload)));
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(kind.to_owned(), std::sync::Arc::new(boxed));
        }
    }

    /// Enqueues a job on its own.
    pub async fn enqueue(&self, job: NewJob) -> Result<JobId, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let id = self.enqueue_in(&mut tx, job).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Enqueues a job inside the caller's transaction.
    pub async fn enqueue_in(&self, tx: &mut Tx, job: NewJob) -> Result<JobId, sqlx::Error> {
        let _ = (tx, job);
        Err(sqlx::Error::Protocol(
            "job queue not implemented yet".into(),
        ))
    }

    /// Lists jobs, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, sqlx::Error> {
        let _ = filter;
        Ok(Vec::new())
    }

    /// One job.
    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, sqlx::Error> {
        let _ = id;
        Ok(None)
    }

    /// Starts `config.workers` worker tasks.
    pub fn start(&self) -> Workers {
        Workers {}
    }
}

impl Workers {
    /// Stops claiming new jobs and waits (at most `grace`) for running ones.
    pub async fn shutdown(self, grace: Duration) {
        let _ = grace;
    }
}

/// The job queue's tables (platform migrations 1000–1999).
pub static MIGRATIONS: &[crate::db::MigrationFile] = &[];
