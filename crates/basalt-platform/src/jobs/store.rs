//! The `jobs` table. Every query is written once for both backends, except
//! the claim, whose locking differs.
//!
//! Writes that record a job's outcome are fenced by `attempts`: a worker
//! only updates the job while it is still `running` with the attempt number
//! it claimed. A worker that lost its lease (its node stalled, another node
//! claimed the job) therefore cannot overwrite the newer attempt's state.
//!
//! On PostgreSQL, whatever makes a job claimable now (an enqueue, a job
//! handed back at shutdown) also sends `NOTIFY basalt_jobs`, in the same
//! transaction: PostgreSQL delivers it only when that transaction commits, so
//! no node is woken for a job it cannot see yet (see `listener.rs`).

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{JobRecord, JobState};
use crate::db::{Backend, Db, Pool, Tx};
use crate::{with_conn, with_tx};

/// The columns every read returns, in [`JobRow`] order.
macro_rules! job_columns {
    () => {
        "id, kind, state, attempts, max_attempts, run_at, locked_until, \
         created_at, updated_at, last_error"
    };
}

/// A job as stored, less its payload: what listings show.
#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    kind: String,
    state: String,
    attempts: i32,
    max_attempts: i32,
    run_at: i64,
    #[allow(dead_code)] // read for completeness; not part of `JobRecord`
    locked_until: Option<i64>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_error: Option<String>,
}

impl TryFrom<JobRow> for JobRecord {
    type Error = sqlx::Error;

    fn try_from(row: JobRow) -> Result<Self, sqlx::Error> {
        let state = JobState::parse(&row.state)
            .ok_or_else(|| decode_error(format!("unknown job state {:?}", row.state)))?;
        Ok(Self {
            id: row.id,
            kind: row.kind,
            state,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            max_attempts: u32::try_from(row.max_attempts).unwrap_or(0),
            run_at: from_millis(row.run_at)?,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_error: row.last_error,
        })
    }
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// Unix milliseconds (how `run_at` and `locked_until` are stored) to a time.
pub(super) fn from_millis(ms: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| decode_error(format!("timestamp out of range: {ms}")))
}

/// A job a worker has just claimed.
#[derive(Debug, Clone)]
pub(super) struct Claimed {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number (1 for the first run); the fencing token.
    pub attempt: i32,
    pub max_attempts: i32,
    /// When it became due (unix ms): its wait is measured from here.
    pub run_at_ms: i64,
    /// The enqueuer's trace context, which the run continues.
    pub traceparent: Option<String>,
}

/// The channel of the wake-up notifications; the payload is the job's kind.
macro_rules! channel {
    () => {
        "basalt_jobs"
    };
}
pub(super) const CHANNEL: &str = channel!();

/// A new row for [`insert`].
pub(super) struct Insert<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub payload: &'a serde_json::Value,
    pub max_attempts: i32,
    pub run_at_ms: i64,
    pub now: DateTime<Utc>,
    /// At most one job may carry a given key (recurring runs); `None` for
    /// ordinary jobs.
    pub dedup_key: Option<&'a str>,
    /// The enqueuing span's W3C trace context; `None` with traces off.
    pub traceparent: Option<&'a str>,
}

/// The insert, plus the wake-up notification, which PostgreSQL sends when
/// the transaction commits (and not at all if it rolls back, or if the key
/// was taken and nothing was inserted).
const INSERT_POSTGRES: &str = concat!(
    "WITH job AS (INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, \
     created_at, updated_at, dedup_key, traceparent) \
     VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6, $7, $8) \
     ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING RETURNING kind) \
     SELECT pg_notify('",
    channel!(),
    "', kind) FROM job"
);

const INSERT_SQLITE: &str = "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, \
     run_at, created_at, updated_at, dedup_key, traceparent) \
     VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6, $7, $8) \
     ON CONFLICT (dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING";

/// Inserts the job; `false` when its dedup key was taken (nothing inserted).
pub(super) async fn insert(tx: &mut Tx, job: &Insert<'_>) -> Result<bool, sqlx::Error> {
    let sql = match tx {
        Tx::Sqlite(_) => INSERT_SQLITE,
        Tx::Postgres(_) => INSERT_POSTGRES,
    };
    let n: u64 = with_tx!(tx, |conn| {
        sqlx::query(sql)
            .bind(job.id)
            .bind(job.kind)
            .bind(Json(job.payload))
            .bind(job.max_attempts)
            .bind(job.run_at_ms)
            .bind(job.now)
            .bind(job.dedup_key)
            .bind(job.traceparent)
            .execute(conn)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(n == 1)
}

/// On PostgreSQL, wakes every node's idle workers for a job of `kind` that
/// has just become claimable outside [`insert`]. Nothing on SQLite.
pub(super) async fn notify(db: &Db, kind: &str) -> Result<(), sqlx::Error> {
    if let Pool::Postgres(pool) = db.pool() {
        sqlx::query(concat!("SELECT pg_notify('", channel!(), "', $1)"))
            .bind(kind)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// The earliest time (unix ms) at which a job may become claimable: the
/// next queued job's `run_at` or the next running job's lease expiry. Idle
/// workers sleep until then (at most the poll interval), so scheduled jobs,
/// retries and crashed workers' jobs start on time without fast polling.
pub(super) async fn next_due(db: &Db) -> Result<Option<i64>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT MIN(due) FROM (\
             SELECT MIN(run_at) AS due FROM jobs WHERE state = 'queued' \
             UNION ALL \
             SELECT MIN(locked_until) AS due FROM jobs WHERE state = 'running') AS next",
        )
        .fetch_one(conn)
        .await
    })
}

/// How many jobs are in each state that stays small (not `succeeded`, which
/// grows with history and would make this query ever more expensive).
pub(super) async fn depth(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT state, COUNT(*) FROM jobs \
             WHERE state IN ('queued', 'running', 'dead') GROUP BY state",
        )
        .fetch_all(conn)
        .await
    })
}

/// Claims one due job: a queued job whose `run_at` has passed, or a running
/// one whose lease expired (its worker crashed). The claim takes a lease of
/// `lease_until_ms` and counts the attempt.
const CLAIM_POSTGRES: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $1, \
     updated_at = $2, \
     last_error = CASE WHEN state = 'running' \
         THEN 'lease expired: the worker running it stopped' ELSE last_error END \
     WHERE id = (SELECT id FROM jobs \
         WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until <= $3) \
         ORDER BY run_at, id LIMIT 1 \
         FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, attempts, max_attempts, run_at, traceparent";

/// SQLite has one writer at a time: the claim runs inside `BEGIN IMMEDIATE`,
/// which already excludes every other claimer, so no row locks are needed.
const CLAIM_SQLITE: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $1, \
     updated_at = $2, \
     last_error = CASE WHEN state = 'running' \
         THEN 'lease expired: the worker running it stopped' ELSE last_error END \
     WHERE id = (SELECT id FROM jobs \
         WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until <= $3) \
         ORDER BY run_at, id LIMIT 1) \
     RETURNING id, kind, payload, attempts, max_attempts, run_at, traceparent";

pub(super) async fn claim(
    db: &Db,
    now: DateTime<Utc>,
    lease_until_ms: i64,
) -> Result<Option<Claimed>, sqlx::Error> {
    let sql = match db.backend() {
        Backend::Postgres => CLAIM_POSTGRES,
        Backend::Sqlite => CLAIM_SQLITE,
    };
    let mut tx = db.begin().await?;
    type Row = (
        Uuid,
        String,
        Json<serde_json::Value>,
        i32,
        i32,
        i64,
        Option<String>,
    );
    let row: Option<Row> = with_tx!(&mut tx, |conn| {
        sqlx::query_as(sql)
            .bind(lease_until_ms)
            .bind(now)
            .bind(now.timestamp_millis())
            .fetch_optional(conn)
            .await
    })?;
    tx.commit().await?;
    Ok(row.map(
        |(id, kind, payload, attempt, max_attempts, run_at_ms, traceparent)| Claimed {
            id,
            kind,
            payload: payload.0,
            attempt,
            max_attempts,
            run_at_ms,
            traceparent,
        },
    ))
}

/// Renews a running job's lease; `false` when this attempt no longer owns it.
pub(super) async fn extend_lease(
    db: &Db,
    job: &Claimed,
    lease_until_ms: i64,
) -> Result<bool, sqlx::Error> {
    let n: u64 = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE jobs SET locked_until = $1 \
             WHERE id = $2 AND state = 'running' AND attempts = $3",
        )
        .bind(lease_until_ms)
        .bind(job.id)
        .bind(job.attempt)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(n == 1)
}

/// Marks the attempt successful.
pub(super) async fn succeed(
    db: &Db,
    job: &Claimed,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n: u64 = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE jobs SET state = 'succeeded', locked_until = NULL, updated_at = $1 \
             WHERE id = $2 AND state = 'running' AND attempts = $3",
        )
        .bind(now)
        .bind(job.id)
        .bind(job.attempt)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(n == 1)
}

/// Deletes succeeded jobs that ran before `succeeded_before_ms` and dead
/// jobs whose last attempt was before `dead_before_ms` (either `None`: keep
/// them). A job's `run_at` is the time of its last attempt once it has
/// ended; the claim index `(state, run_at)` serves both deletes.
pub(super) async fn prune(
    db: &Db,
    succeeded_before_ms: Option<i64>,
    dead_before_ms: Option<i64>,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    for (state, before) in [("succeeded", succeeded_before_ms), ("dead", dead_before_ms)] {
        let Some(before) = before else { continue };
        deleted += with_conn!(db, |conn| {
            sqlx::query("DELETE FROM jobs WHERE state = $1 AND run_at < $2")
                .bind(state)
                .bind(before)
                .execute(conn)
                .await
                .map(|done| done.rows_affected())
        })?;
    }
    Ok(deleted)
}

/// Puts the job back in the queue, due at `run_at_ms`.
pub(super) async fn retry(
    db: &Db,
    job: &Claimed,
    run_at_ms: i64,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n: u64 = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', run_at = $1, locked_until = NULL, \
             last_error = $2, updated_at = $3 \
             WHERE id = $4 AND state = 'running' AND attempts = $5",
        )
        .bind(run_at_ms)
        .bind(error)
        .bind(now)
        .bind(job.id)
        .bind(job.attempt)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(n == 1)
}

/// Moves the job to the dead-letter state, recording `attempts`.
pub(super) async fn bury(
    db: &Db,
    job: &Claimed,
    attempts: i32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n: u64 = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE jobs SET state = 'dead', attempts = $1, locked_until = NULL, \
             last_error = $2, updated_at = $3 \
             WHERE id = $4 AND state = 'running' AND attempts = $5",
        )
        .bind(attempts)
        .bind(error)
        .bind(now)
        .bind(job.id)
        .bind(job.attempt)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(n == 1)
}

/// Returns a job interrupted by shutdown to the queue, due now, without
/// counting the interrupted attempt, and wakes other nodes for it.
pub(super) async fn release(
    db: &Db,
    job: &Claimed,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n: u64 = with_conn!(db, |conn| {
        sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = $1, \
             locked_until = NULL, last_error = 'interrupted by shutdown', updated_at = $2 \
             WHERE id = $3 AND state = 'running' AND attempts = $4",
        )
        .bind(now.timestamp_millis())
        .bind(now)
        .bind(job.id)
        .bind(job.attempt)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    if n == 1 {
        notify(db, &job.kind).await?;
    }
    Ok(n == 1)
}

/// Jobs newest first. Ids are UUIDv7, whose leading bytes are the creation
/// time in milliseconds and which both backends compare bytewise, so ordering
/// by id is creation order (and exact within one process) on either backend,
/// without sorting timestamp text on SQLite.
pub(super) async fn list(
    db: &Db,
    state: Option<JobState>,
    kind: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<JobRecord>, sqlx::Error> {
    let rows: Vec<JobRow> = with_conn!(db, |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2) \
             ORDER BY id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(state.map(JobState::as_str))
        .bind(kind)
        .bind(limit)
        .bind(offset)
        .fetch_all(conn)
        .await
    })?;
    rows.into_iter().map(JobRecord::try_from).collect()
}

pub(super) async fn get(db: &Db, id: Uuid) -> Result<Option<JobRecord>, sqlx::Error> {
    let row: Option<JobRow> = with_conn!(db, |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await
    })?;
    row.map(JobRecord::try_from).transpose()
}

pub(super) async fn payload(db: &Db, id: Uuid) -> Result<Option<serde_json::Value>, sqlx::Error> {
    let payload: Option<Json<serde_json::Value>> = with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT payload FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await
    })?;
    Ok(payload.map(|p| p.0))
}

/// Registers a recurring schedule, or updates its expression. An unchanged
/// expression keeps the stored `next_run_at` (a restart neither skips nor
/// repeats a run); a changed one takes effect at once, from `next_run_at_ms`.
pub(super) async fn upsert_schedule(
    db: &Db,
    name: &str,
    expression: &str,
    next_run_at_ms: i64,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO job_schedules (name, expression, next_run_at, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, \
             next_run_at = excluded.next_run_at, updated_at = excluded.updated_at \
             WHERE job_schedules.expression <> excluded.expression",
        )
        .bind(name)
        .bind(expression)
        .bind(next_run_at_ms)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
    })
}

/// Every stored schedule's name and `next_run_at` (unix ms).
pub(super) async fn schedule_times(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    with_conn!(db, |conn| {
        sqlx::query_as("SELECT name, next_run_at FROM job_schedules")
            .fetch_all(conn)
            .await
    })
}

/// Claims the run of schedule `name` due at `due_ms` by moving its
/// `next_run_at` on to `next_ms`: a compare-and-set on the old value, so of
/// several nodes trying at once exactly one sees `true`.
pub(super) async fn advance_schedule(
    tx: &mut Tx,
    name: &str,
    due_ms: i64,
    next_ms: i64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n: u64 = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE job_schedules SET next_run_at = $1, last_run_at = $2, updated_at = $3 \
             WHERE name = $4 AND next_run_at = $2",
        )
        .bind(next_ms)
        .bind(due_ms)
        .bind(now)
        .bind(name)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(n == 1)
}
