//! Durable background jobs, stored in the database (SQLite or PostgreSQL).
//!
//! Jobs survive restarts, are retried with exponential backoff and jitter, go
//! to the dead-letter state after `max_attempts`, can be scheduled for later,
//! and can be enqueued inside the caller's transaction so that "create the
//! user" and "send the mail" commit or roll back together.
//!
//! How it works:
//! - one table, `jobs` (migration 1001, [`MIGRATIONS`]), and for recurring
//!   jobs `job_schedules` (migration 1002);
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
//! Latency and scale-out:
//! - idle workers do not wait for their next poll: an enqueue wakes one at
//!   once. On PostgreSQL the enqueue sends `NOTIFY basalt_jobs` in its
//!   transaction and every node's listener (`listener.rs`) wakes a worker
//!   when it commits; on SQLite (one node) the enqueuing process wakes its
//!   own worker. A worker that finds a job wakes the next idle one, and an
//!   idle worker sleeps only until the next job's `run_at` or lease expiry,
//!   so polling (`poll_interval_ms`) is just the safety net for missed
//!   wake-ups;
//! - recurring (cron) jobs fire once per scheduled time across all nodes
//!   (`schedule.rs`, [`JobQueue::recurring`]);
//! - metrics: queue depth by state, wait before start, run time by kind and
//!   outcome (`metrics.rs`).
//!
//! Times that queries compare (`run_at`, `locked_until`) are stored as unix
//! milliseconds (`BIGINT`) in both schemas. sqlx writes `DateTime<Utc>` to
//! SQLite as RFC 3339 text with a variable number of fractional digits, which
//! is not safe to compare as text; integers compare correctly on both
//! backends, keep each query identical for both, and can use the index.
//! `created_at` and `updated_at`, only displayed, are ordinary timestamps.
//! Times come from the clock of the node that writes them, so nodes' clocks
//! must agree to well within the lease (NTP).

mod listener;
mod metrics;
mod schedule;
mod store;
mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::JobsConfig;
use crate::db::{Backend, Db, Tx};

pub use schedule::ScheduleError;

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

// Never the payload: it is the handler's business, and listings must not
// show what a payload holds (which in turn must hold no secrets: a mail job
// names its token by id, see the identity module's `service::mail`).
/// A stored job, as listed by `basalt jobs list` and the admin API: kind,
/// state and timing, never its payload.
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
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    /// Wakes an idle worker of this process when a job becomes claimable
    /// (a local enqueue, a notification from another node), instead of
    /// leaving the job to the next poll.
    wake: Arc<tokio::sync::Notify>,
    /// Workers of this queue sleeping right now.
    idle: Arc<AtomicUsize>,
    /// Recurring jobs, by name.
    schedules: Arc<std::sync::RwLock<BTreeMap<String, Arc<schedule::Recurring>>>>,
    metrics: metrics::JobMetrics,
}

/// The built-in recurring job that deletes old finished jobs
/// ([`JobQueue::prune`]), hourly at minute 41, once across the cluster.
pub const PRUNE_JOBS: &str = "platform.prune_jobs";
const PRUNE_JOBS_SCHEDULE: &str = "41 * * * *";

async fn prune(db: &Db, config: &JobsConfig, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let before = |hours: u64| {
        (hours > 0).then(|| {
            let keep = i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
            now.timestamp_millis().saturating_sub(keep)
        })
    };
    store::prune(
        db,
        before(config.succeeded_retention_hours),
        before(config.dead_retention_hours),
    )
    .await
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
    /// A queue over `db`, with its own housekeeping ([`PRUNE_JOBS`])
    /// registered.
    pub fn new(db: Db, config: JobsConfig) -> Self {
        let queue = Self {
            db,
            config,
            handlers: Default::default(),
            wake: Arc::default(),
            idle: Arc::default(),
            schedules: Arc::default(),
            metrics: metrics::JobMetrics::default(),
        };
        // The handler holds the database and settings, not the queue: the
        // queue owns its handlers, and a clone of it in one would be a cycle.
        let (db, config) = (queue.db.clone(), queue.config.clone());
        queue.register(PRUNE_JOBS, move |_| {
            let (db, config) = (db.clone(), config.clone());
            async move {
                let deleted = prune(&db, &config, Utc::now())
                    .await
                    .map_err(anyhow::Error::from)?;
                tracing::debug!(deleted, "deleted old finished jobs");
                Ok(())
            }
        });
        if let Err(error) = queue.recurring(PRUNE_JOBS, PRUNE_JOBS_SCHEDULE, PRUNE_JOBS, &()) {
            tracing::error!(%error, "cannot schedule the pruning of old jobs");
        }
        queue
    }

    /// Deletes succeeded and dead jobs older than their retention
    /// (`jobs.succeeded_retention_hours`, `jobs.dead_retention_hours`) as
    /// of `now`; returns how many. Queued and running jobs are never
    /// touched. Runs hourly as the [`PRUNE_JOBS`] job.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        prune(&self.db, &self.config, now).await
    }

    /// Exports the queue's metrics through `registry` (see `metrics.rs`):
    /// `basalt_jobs_queued{state}`, `basalt_job_wait_seconds{kind}` and
    /// `basalt_job_run_seconds{kind,outcome}`. Call once, while building the app.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Registers a recurring job: from the time the workers start, a job of
    /// `kind` with `payload` is enqueued at every time `expression` names,
    /// once across all nodes however many run workers. Call while building
    /// the app; registering `name` again replaces it.
    ///
    /// `expression` is a cron expression evaluated in UTC: five fields
    /// (`"*/5 * * * *"`, every five minutes) or six with seconds first
    /// (`"0 */5 * * * *"`), POSIX weekdays (Sunday is 0 or 7), and the
    /// nicknames `@hourly`, `@daily`, … When the schedule's stored
    /// expression differs (a new release changed it), the new one takes
    /// effect when the workers start. Runs missed while no node was up are
    /// not made up one by one: one run fires for them, then the schedule
    /// resumes. See `schedule.rs`.
    pub fn recurring(
        &self,
        name: &str,
        expression: &str,
        kind: &str,
        payload: &impl Serialize,
    ) -> Result<(), ScheduleError> {
        let payload = serde_json::to_value(payload).unwrap_or(serde_json::Value::Null);
        let recurring = schedule::Recurring::new(name, expression, kind, payload)?;
        if let Ok(mut schedules) = self.schedules.write() {
            schedules.insert(name.to_owned(), Arc::new(recurring));
        }
        Ok(())
    }

    fn schedules(&self) -> Vec<Arc<schedule::Recurring>> {
        self.schedules
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
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

    /// The same queue without its handlers: it enqueues, schedules, lists
    /// and wakes workers like the queue itself, but runs nothing and does
    /// not keep the handlers alive. For a service that a handler captures
    /// and that enqueues jobs itself: holding the queue there would be a
    /// cycle (queue → handler → service → queue) that keeps the database
    /// pool, and its connections, alive after the node is gone.
    pub fn enqueuer(&self) -> Self {
        Self {
            handlers: Default::default(),
            ..self.clone()
        }
    }

    /// Enqueues a job on its own, and wakes an idle worker for it.
    pub async fn enqueue(&self, job: NewJob) -> Result<JobId, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let id = self.enqueue_in(&mut tx, job).await?;
        tx.commit().await?;
        self.committed();
        Ok(id)
    }

    /// Enqueues a job inside the caller's transaction: it exists only if the
    /// transaction commits, and an idle worker starts it right after the
    /// commit. On PostgreSQL the wake-up is a `NOTIFY` in the transaction,
    /// which reaches every node on commit (and never on rollback). On SQLite
    /// a local worker is woken at once: its claim waits for the write lock
    /// the caller's transaction holds (`BEGIN IMMEDIATE`), so it sees the
    /// job as soon as the caller commits.
    pub async fn enqueue_in(&self, tx: &mut Tx, job: NewJob) -> Result<JobId, sqlx::Error> {
        let id = self.insert(tx, job, None).await?;
        // Without a dedup key, nothing can conflict.
        id.ok_or_else(|| sqlx::Error::Protocol("job insert reported no row".into()))
    }

    /// Inserts the job; `None` when its `dedup_key` was taken.
    async fn insert(
        &self,
        tx: &mut Tx,
        job: NewJob,
        dedup_key: Option<&str>,
    ) -> Result<Option<JobId>, sqlx::Error> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let max_attempts = job.max_attempts.unwrap_or(self.config.max_attempts).max(1);
        // The job's run continues the enqueuer's trace.
        let traceparent = crate::telemetry::traceparent();
        let inserted = store::insert(
            tx,
            &store::Insert {
                id,
                kind: &job.kind,
                payload: &job.payload,
                max_attempts: i32::try_from(max_attempts).unwrap_or(i32::MAX),
                run_at_ms: job.run_at.unwrap_or(now).timestamp_millis(),
                now,
                dedup_key,
                traceparent: traceparent.as_deref(),
            },
        )
        .await?;
        if inserted && matches!(tx, Tx::Sqlite(_)) {
            self.wake.notify_one();
        }
        Ok(inserted.then_some(id))
    }

    /// After a transaction that enqueued jobs committed: on PostgreSQL, wake
    /// a local worker at once as well, without waiting for the notification
    /// to come back (or for a listener that is reconnecting). On SQLite
    /// [`JobQueue::insert`] has woken one already.
    fn committed(&self) {
        if self.db.backend() == Backend::Postgres {
            self.wake.notify_one();
        }
    }

    /// A worker claimed a job: if others of this process are asleep, wake
    /// one, as more jobs may be due (one notification can stand for several
    /// jobs: PostgreSQL folds identical ones of a transaction together).
    fn pass_on_wake_up(&self) {
        if self.idle.load(Ordering::Relaxed) > 0 {
            self.wake.notify_one();
        }
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

    /// A job's payload, for code in this process (tests, handlers); no API
    /// or CLI shows it.
    pub async fn payload(&self, id: JobId) -> Result<Option<serde_json::Value>, sqlx::Error> {
        store::payload(&self.db, id).await
    }

    /// Starts `config.workers` worker tasks on the current Tokio runtime (none
    /// when it is 0: an API-only node), and with them this node's
    /// background helpers: the PostgreSQL wake-up listener, the scheduler of
    /// recurring jobs and the queue-depth gauge. Keep the returned
    /// [`Workers`] and stop them with [`Workers::shutdown`].
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
pub static MIGRATIONS: &[crate::db::MigrationFile] = &[
    crate::db::MigrationFile {
        version: 1001,
        description: "create_jobs",
        sqlite: include_str!("../../migrations/sqlite/1001_create_jobs.sql"),
        postgres: include_str!("../../migrations/postgres/1001_create_jobs.sql"),
    },
    crate::db::MigrationFile {
        version: 1002,
        description: "recurring_jobs",
        sqlite: include_str!("../../migrations/sqlite/1002_recurring_jobs.sql"),
        postgres: include_str!("../../migrations/postgres/1002_recurring_jobs.sql"),
    },
    crate::db::MigrationFile {
        version: 1003,
        description: "job_traceparent",
        sqlite: include_str!("../../migrations/sqlite/1003_job_traceparent.sql"),
        postgres: include_str!("../../migrations/postgres/1003_job_traceparent.sql"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseConfig, DatabaseUrl};
    use crate::db::{Migrations, apply_migrations};
    use crate::with_conn;

    /// A migrated database of its own: an SQLite file, or with
    /// `TEST_POSTGRES_URL` set a new database on that server.
    async fn fresh_db() -> (DatabaseUrl, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("basalt-jobs-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = match std::env::var("TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            None => DatabaseUrl::default_sqlite(&dir),
            Some(admin) => {
                use sqlx::Connection;
                let name = format!("basalt_unit_{}", Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
                // Hex digits only: nothing to inject.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let (base, _) = admin.rsplit_once('/').expect("URL with a database");
                DatabaseUrl::parse(&format!("{base}/{name}")).expect("URL")
            }
        };
        let db = Db::connect(&url, &DatabaseConfig::default())
            .await
            .expect("connect");
        apply_migrations(
            &db,
            &[Migrations {
                module: "platform",
                files: MIGRATIONS,
            }],
        )
        .await
        .expect("migrate");
        db.close().await;
        (url, dir)
    }

    /// Several nodes (own pools) race for one due run of a schedule many
    /// times over: the compare-and-set lets exactly one enqueue it; and a
    /// second job with the same run key is refused by the unique index even
    /// when the compare-and-set is bypassed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scheduled_run_is_enqueued_once_however_many_nodes_race_for_it() {
        let (url, dir) = fresh_db().await;
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let db = Db::connect(&url, &DatabaseConfig::default())
                .await
                .expect("connect");
            let queue = JobQueue::new(db, JobsConfig::default());
            queue
                .recurring("test.tick", "* * * * * *", "test.tick", &"payload")
                .expect("valid schedule");
            nodes.push(queue);
        }
        let recurring = nodes[0]
            .schedules()
            .into_iter()
            .find(|s| s.name == "test.tick")
            .expect("registered");
        let now = Utc::now();
        let due = (now.timestamp_millis() / 1000 - 2) * 1000;
        store::upsert_schedule(&nodes[0].db, "test.tick", "* * * * * *", due, now)
            .await
            .expect("upsert");

        let mut racers = tokio::task::JoinSet::new();
        for i in 0..12 {
            let queue = nodes[i % nodes.len()].clone();
            let recurring = recurring.clone();
            racers.spawn(async move {
                schedule::fire(&queue, &recurring, due, Utc::now())
                    .await
                    .expect("fire")
                    .1
            });
        }
        let won = racers
            .join_all()
            .await
            .into_iter()
            .filter(|&won| won)
            .count();
        assert_eq!(won, 1, "exactly one racer enqueues the run");

        let key = schedule::run_key("test.tick", due);
        let count = |db: Db| async move {
            with_conn!(db, |conn| {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM jobs WHERE kind = 'test.tick'")
                    .fetch_one(conn)
                    .await
            })
            .expect("count")
        };
        assert_eq!(count(nodes[1].db.clone()).await, 1);
        let (run_at, stored_key): (i64, Option<String>) = with_conn!(nodes[2].db, |conn| {
            sqlx::query_as("SELECT run_at, dedup_key FROM jobs WHERE kind = 'test.tick'")
                .fetch_one(conn)
                .await
        })
        .expect("the run");
        assert_eq!((run_at, stored_key.as_deref()), (due, Some(key.as_str())));
        let next: i64 = with_conn!(nodes[0].db, |conn| {
            sqlx::query_scalar("SELECT next_run_at FROM job_schedules WHERE name = 'test.tick'")
                .fetch_one(conn)
                .await
        })
        .expect("schedule");
        assert!(next > now.timestamp_millis() && next % 1000 == 0, "{next}");

        // Bypassing the compare-and-set: the run key is still unique.
        let mut tx = nodes[1].db.begin().await.expect("begin");
        let again = nodes[1]
            .insert(
                &mut tx,
                NewJob::new("test.tick", &"payload"),
                Some(key.as_str()),
            )
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(again, None, "a second job for the same run is refused");
        assert_eq!(count(nodes[1].db.clone()).await, 1);

        for node in &nodes {
            node.db.close().await;
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An unchanged expression keeps the stored next run (restarts neither
    /// skip nor repeat one); a changed one replaces it at once.
    #[tokio::test]
    async fn registering_a_schedule_again_keeps_or_replaces_its_next_run() {
        let (url, dir) = fresh_db().await;
        let db = Db::connect(&url, &DatabaseConfig::default())
            .await
            .expect("connect");
        let next = || async {
            with_conn!(db, |conn| {
                sqlx::query_as::<_, (String, i64)>(
                    "SELECT expression, next_run_at FROM job_schedules WHERE name = 'test.s'",
                )
                .fetch_one(conn)
                .await
            })
            .expect("row")
        };
        let now = Utc::now();
        store::upsert_schedule(&db, "test.s", "0 0 * * *", 1_000, now)
            .await
            .expect("insert");
        store::upsert_schedule(&db, "test.s", "0 0 * * *", 2_000, now)
            .await
            .expect("same expression");
        assert_eq!(next().await, ("0 0 * * *".into(), 1_000));
        store::upsert_schedule(&db, "test.s", "*/5 * * * *", 3_000, now)
            .await
            .expect("changed expression");
        assert_eq!(next().await, ("*/5 * * * *".into(), 3_000));
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

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
