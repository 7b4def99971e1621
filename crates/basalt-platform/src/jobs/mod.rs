//! Durable background jobs, stored in the database (SQLite or PostgreSQL).
//!
//! Jobs survive restarts, are retried with exponential backoff and jitter, go
//! to the dead-letter state after `max_attempts`, can be scheduled for later,
//! and can be enqueued inside the caller's transaction so that "create the
//! user" and "send the mail" commit or roll back together.
//!
//! How it works:
//! - one table, `jobs` (migration 1001, [`MIGRATIONS`]);
//! - a worker *claims* a due job in one statement that sets it `running`,
//!   counts the attempt and takes a lease (`locked_until`). On PostgreSQL the
//!   claim skips rows other nodes have locked (`FOR UPDATE SKIP LOCKED`); on
//!   SQLite it runs inside `BEGIN IMMEDIATE`, i.e. with the single write
//!   lock. A job is therefore claimed by one worker at a time;
//! - while the handler runs, its worker renews the lease; a node that dies
//!   stops renewing, and once the lease expires the job is claimed again;
//! - outcomes are written only by the attempt that owns the job (the update
//!   is fenced by the attempt number), so a worker that lost its lease cannot
//!   overwrite a newer attempt.
//!
//! Times that queries compare (`run_at`, `locked_until`) are stored as unix
//! milliseconds (`BIGINT`) in both schemas. sqlx writes `DateTime<Utc>` to
//! SQLite as RFC 3339 text with a variable number of fractional digits, which
//! is not safe to compare as text; integers compare correctly on both
//! backends, keep each query identical for both, and can use the index.
//! `created_at` and `updated_at`, only displayed, are ordinary timestamps.
//! Times come from the clock of the node that writes them, so nodes' clocks
//! must agree to well within the lease (NTP).

mod store;
mod worker;

use std::future::Future;
use std::sync::Arc;

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

impl JobState {
    /// Every state, in life order.
    pub const ALL: [Self; 4] = [Self::Queued, Self::Running, Self::Succeeded, Self::Dead];

    /// The name stored in the database and shown to people (`queued`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Dead => "dead",
        }
    }

    /// The state named `name`, as written by [`JobState::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
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
///
/// Clones share their handlers and wake-ups. Several queues over one
/// database (several nodes, or several queues in one process) cooperate:
/// each job runs on one worker at a time.
#[derive(Clone)]
pub struct JobQueue {
    db: Db,
    config: JobsConfig,
    handlers: std::sync::Arc<
        std::sync::RwLock<std::collections::HashMap<String, std::sync::Arc<Handler>>>,
    >,
    /// Wakes an idle worker of this process after a local enqueue, instead
    /// of leaving the job to the next poll.
    wake: Arc<tokio::sync::Notify>,
}

/// Default page size of [`JobQueue::list`].
pub const DEFAULT_LIST_LIMIT: u32 = 50;
/// Largest page size of [`JobQueue::list`].
pub const MAX_LIST_LIMIT: u32 = 500;

impl std::fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub use worker::Workers;

impl JobQueue {
    /// A queue over `db`.
    pub fn new(db: Db, config: JobsConfig) -> Self {
        Self {
            db,
            config,
            handlers: Default::default(),
            wake: Arc::default(),
        }
    }

    /// Registers the handler for `kind`, replacing any earlier one. Call while
    /// building the app.
    ///
    /// The handler returns [`JobError::Retry`] for failures worth retrying
    /// and [`JobError::Permanent`] for those that are not; a panic counts as
    /// a retryable failure. A job may run more than once (a node can die
    /// after the work but before recording it), so handlers must be
    /// idempotent.
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

    /// Enqueues a job on its own, and wakes a local worker for it.
    pub async fn enqueue(&self, job: NewJob) -> Result<JobId, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let id = self.enqueue_in(&mut tx, job).await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Enqueues a job inside the caller's transaction: it exists only if the
    /// transaction commits. Workers see it at their next poll (at most
    /// `poll_interval_ms` after the commit).
    pub async fn enqueue_in(&self, tx: &mut Tx, job: NewJob) -> Result<JobId, sqlx::Error> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let max_attempts = job.max_attempts.unwrap_or(self.config.max_attempts).max(1);
        store::insert(
            tx,
            &store::Insert {
                id,
                kind: &job.kind,
                payload: &job.payload,
                max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
                run_at_ms: job.run_at.unwrap_or(now).timestamp_millis(),
                now,
            },
        )
        .await?;
        Ok(id)
    }

    /// Lists jobs, newest first.
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, sqlx::Error> {
        let limit = filter
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .min(MAX_LIST_LIMIT);
        store::list(
            &self.db,
            filter.state,
            filter.kind.as_deref(),
            i64::from(limit),
            i64::from(filter.offset.unwrap_or(0)),
        )
        .await
    }

    /// One job.
    pub async fn get(&self, id: JobId) -> Result<Option<JobRecord>, sqlx::Error> {
        store::get(&self.db, id).await
    }

    /// Starts `config.workers` worker tasks on the current Tokio runtime (none
    /// when it is 0: an API-only node). Keep the returned [`Workers`] and
    /// stop them with [`Workers::shutdown`].
    pub fn start(&self) -> Workers {
        Workers::spawn(self)
    }

    fn handler(&self, kind: &str) -> Option<Arc<Handler>> {
        self.handlers
            .read()
            .ok()
            .and_then(|handlers| handlers.get(kind).cloned())
    }
}

/// The job queue's tables (platform migrations 1000–1999).
pub static MIGRATIONS: &[crate::db::MigrationFile] = &[crate::db::MigrationFile {
    version: 1001,
    description: "create_jobs",
    sqlite: include_str!("../../migrations/sqlite/1001_create_jobs.sql"),
    postgres: include_str!("../../migrations/postgres/1001_create_jobs.sql"),
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip_and_match_serde() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_value(state).expect("serialises"),
                serde_json::Value::String(state.as_str().into())
            );
        }
        assert_eq!(JobState::parse("Queued"), None);
    }
}
