//! The `jobs` table. Every query is written once for both backends, except
//! the claim, whose locking differs.
//!
//! Writes that record a job's outcome are fenced by `attempts`: a worker
//! only updates the job while it is still `running` with the attempt number
//! it claimed. A worker that lost its lease (its node stalled, another node
//! claimed the job) therefore cannot overwrite the newer attempt's state.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{JobRecord, JobState};
use crate::db::{Backend, Db, Tx};
use crate::{with_conn, with_tx};

/// The columns every read returns, in [`JobRow`] order.
macro_rules! job_columns {
    () => {
        "id, kind, payload, state, attempts, max_attempts, run_at, locked_until, \
         created_at, updated_at, last_error"
    };
}

/// A job as stored.
#[derive(Debug, sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    kind: String,
    payload: Json<serde_json::Value>,
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
            payload: row.payload.0,
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
}

/// A new row for [`insert`].
pub(super) struct Insert<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub payload: &'a serde_json::Value,
    pub max_attempts: i32,
    pub run_at_ms: i64,
    pub now: DateTime<Utc>,
}

pub(super) async fn insert(tx: &mut Tx, job: &Insert<'_>) -> Result<(), sqlx::Error> {
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, \
             created_at, updated_at) VALUES ($1, $2, $3, 'queued', 0, $4, $5, $6, $6)",
        )
        .bind(job.id)
        .bind(job.kind)
        .bind(Json(job.payload))
        .bind(job.max_attempts)
        .bind(job.run_at_ms)
        .bind(job.now)
        .execute(conn)
        .await
        .map(|_| ())
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
     RETURNING id, kind, payload, attempts, max_attempts";

/// SQLite has one writer at a time: the claim runs inside `BEGIN IMMEDIATE`,
/// which already excludes every other claimer, so no row locks are needed.
const CLAIM_SQLITE: &str = "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $1, \
     updated_at = $2, \
     last_error = CASE WHEN state = 'running' \
         THEN 'lease expired: the worker running it stopped' ELSE last_error END \
     WHERE id = (SELECT id FROM jobs \
         WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until <= $3) \
         ORDER BY run_at, id LIMIT 1) \
     RETURNING id, kind, payload, attempts, max_attempts";

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
    let row: Option<(Uuid, String, Json<serde_json::Value>, i32, i32)> =
        with_tx!(&mut tx, |conn| {
            sqlx::query_as(sql)
                .bind(lease_until_ms)
                .bind(now)
                .bind(now.timestamp_millis())
                .fetch_optional(conn)
                .await
        })?;
    tx.commit().await?;
    Ok(
        row.map(|(id, kind, payload, attempt, max_attempts)| Claimed {
            id,
            kind,
            payload: payload.0,
            attempt,
            max_attempts,
        }),
    )
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
/// counting the interrupted attempt.
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
