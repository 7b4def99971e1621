//! Recurring (cron) jobs, fired once per scheduled time across the cluster.
//!
//! Modules register schedules while the app is built
//! ([`JobQueue::recurring`]). Every node that runs workers also runs one
//! scheduler loop, which:
//! 1. on start, upserts each registered schedule into `job_schedules`
//!    (migration 1002): a new schedule gets its first `next_run_at`, a
//!    changed expression replaces the stored one and its `next_run_at` at
//!    once, an unchanged one keeps its `next_run_at`, so a restart neither
//!    skips nor repeats a run;
//! 2. sleeps until the earliest `next_run_at` (at most the poll interval, so
//!    that it notices what other nodes changed), then for each due schedule
//!    moves `next_run_at` on with a compare-and-set on the old value and, in
//!    the same transaction, enqueues the job. Of several nodes waking for the
//!    same time, exactly one updates the row; the others update nothing and
//!    enqueue nothing;
//! 3. the job carries the key `name@scheduled time`, unique in `jobs`, so
//!    that not even a race the compare-and-set did not foresee (two builds
//!    with different expressions, clocks far apart) can enqueue a run twice.
//!
//! The job's `run_at` is the scheduled time, so its wait
//! (`basalt_job_wait_seconds`) measures how late the run started.
//!
//! Runs missed while no node was up are not made up: the first node back
//! fires one run (for the oldest missed time), and the next is the first
//! scheduled time after now. Expressions are evaluated in UTC, with
//! POSIX/Vixie cron semantics (croner): five fields (minute precision) or
//! six (seconds first), Sunday is 0 or 7, and, when both day of month and
//! day of week are restricted, either matching is enough. A schedule that no
//! build registers any more keeps its row but never fires.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use croner::Cron;
use tokio::sync::watch;

use super::worker::Phase;
use super::{JobQueue, NewJob, store};

/// `next_run_at` of a schedule that will never fire again.
const NEVER: i64 = i64::MAX;

/// A recurring job as registered by a module.
#[derive(Debug)]
pub(super) struct Recurring {
    pub name: String,
    pub expression: String,
    cron: Cron,
    pub kind: String,
    pub payload: serde_json::Value,
}

/// A schedule that cannot be registered.
#[derive(Debug, thiserror::Error)]
#[error("recurring job `{name}`: `{expression}` {problem}")]
pub struct ScheduleError {
    name: String,
    expression: String,
    problem: String,
}

impl Recurring {
    pub(super) fn new(
        name: &str,
        expression: &str,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<Self, ScheduleError> {
        let fail = |problem: String| ScheduleError {
            name: name.to_owned(),
            expression: expression.to_owned(),
            problem,
        };
        let cron = Cron::from_str(expression)
            .map_err(|e| fail(format!("is not a cron expression: {e}")))?;
        let recurring = Self {
            name: name.to_owned(),
            expression: expression.trim().to_owned(),
            cron,
            kind: kind.to_owned(),
            payload,
        };
        if recurring.next_after(Utc::now()).is_none() {
            return Err(fail("never fires".into()));
        }
        Ok(recurring)
    }

    /// The first scheduled time strictly after `after`; `None` if none is left.
    pub(super) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    fn next_after_ms(&self, after: DateTime<Utc>) -> i64 {
        self.next_after(after)
            .map_or(NEVER, |t| t.timestamp_millis())
    }
}

/// The dedup key of the run of schedule `name` due at `due_ms`.
pub(super) fn run_key(name: &str, due_ms: i64) -> String {
    let due = DateTime::from_timestamp_millis(due_ms).map_or_else(
        || due_ms.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    format!("{name}@{due}")
}

/// The scheduler loop of one node; returns at shutdown.
pub(super) async fn run(queue: JobQueue, mut phase: watch::Receiver<Phase>) {
    let schedules = queue.schedules();
    if schedules.is_empty() {
        return;
    }
    let poll = Duration::from_millis(queue.config.poll_interval_ms);
    let mut registered = false;
    loop {
        let nap = match tick(&queue, &schedules, &mut registered).await {
            Ok(earliest) => until(earliest).min(poll),
            Err(error) => {
                tracing::warn!(error = %error, "job scheduler: database error");
                poll
            }
        };
        tokio::select! {
            () = stopped(&mut phase) => return,
            () = tokio::time::sleep(nap) => {}
        }
    }
}

/// One pass: registers the schedules if needed, fires the due ones, and
/// returns the earliest `next_run_at` (unix ms).
async fn tick(
    queue: &JobQueue,
    schedules: &[Arc<Recurring>],
    registered: &mut bool,
) -> Result<i64, sqlx::Error> {
    if !*registered {
        let now = Utc::now();
        for schedule in schedules {
            store::upsert_schedule(
                &queue.db,
                &schedule.name,
                &schedule.expression,
                schedule.next_after_ms(now),
                now,
            )
            .await?;
        }
        *registered = true;
        tracing::debug!(schedules = schedules.len(), "recurring jobs registered");
    }
    let stored: HashMap<String, i64> = store::schedule_times(&queue.db)
        .await?
        .into_iter()
        .collect();
    let mut earliest = NEVER;
    for schedule in schedules {
        let Some(&due) = stored.get(&schedule.name) else {
            // The row is gone (deleted by hand): register again next pass.
            *registered = false;
            continue;
        };
        let now = Utc::now();
        let next = if due <= now.timestamp_millis() {
            fire(queue, schedule, due, now).await?.0
        } else {
            due
        };
        earliest = earliest.min(next);
    }
    Ok(earliest)
}

/// Fires the run of `schedule` due at `due_ms`, if this node wins it: moves
/// `next_run_at` on to the first scheduled time after `now` and enqueues the
/// job, in one transaction. Returns the new `next_run_at` and whether this
/// call enqueued the run.
pub(super) async fn fire(
    queue: &JobQueue,
    schedule: &Recurring,
    due_ms: i64,
    now: DateTime<Utc>,
) -> Result<(i64, bool), sqlx::Error> {
    let next = schedule.next_after_ms(now);
    let mut tx = queue.db.begin().await?;
    if !store::advance_schedule(&mut tx, &schedule.name, due_ms, next, now).await? {
        // Another node fired it (or the expression changed): nothing to do.
        return Ok((next, false));
    }
    let key = run_key(&schedule.name, due_ms);
    let mut job = NewJob {
        kind: schedule.kind.clone(),
        payload: schedule.payload.clone(),
        run_at: None,
        max_attempts: None,
    };
    if let Some(due) = DateTime::from_timestamp_millis(due_ms) {
        job = job.run_at(due);
    }
    let inserted = queue.insert(&mut tx, job, Some(&key)).await?.is_some();
    tx.commit().await?;
    if inserted {
        queue.committed();
        tracing::debug!(schedule = %schedule.name, run = %key, "recurring job enqueued");
    }
    Ok((next, inserted))
}

/// How long from now until `at_ms`, plus a millisecond so that the time has
/// really passed at the millisecond precision times are stored in.
fn until(at_ms: i64) -> Duration {
    let ms = at_ms.saturating_sub(Utc::now().timestamp_millis()).max(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX).saturating_add(1))
}

async fn stopped(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p != Phase::Running).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    }

    fn recurring(expression: &str) -> Result<Recurring, ScheduleError> {
        Recurring::new("test.r", expression, "test.kind", serde_json::Value::Null)
    }

    #[test]
    fn six_fields_have_seconds_five_fields_minutes() {
        let every_second = recurring("* * * * * *").expect("valid");
        let t = at("2030-01-01T00:00:00.500Z");
        assert_eq!(every_second.next_after(t), Some(at("2030-01-01T00:00:01Z")));
        // Strictly after: a time exactly on the schedule is not its own next.
        assert_eq!(
            every_second.next_after(at("2030-01-01T00:00:01Z")),
            Some(at("2030-01-01T00:00:02Z"))
        );
        let every_five = recurring("0 */5 * * * *").expect("valid");
        assert_eq!(
            every_five.next_after(at("2030-01-01T00:04:59.999Z")),
            Some(at("2030-01-01T00:05:00Z"))
        );
        let daily = recurring("@daily").expect("valid");
        assert_eq!(
            daily.next_after(at("2030-01-01T00:00:00Z")),
            Some(at("2030-01-02T00:00:00Z"))
        );
        let hourly = recurring("15 * * * *").expect("valid");
        assert_eq!(
            hourly.next_after(at("2030-01-01T00:15:00Z")),
            Some(at("2030-01-01T01:15:00Z"))
        );
    }

    #[test]
    fn weekdays_are_posix_and_times_are_utc() {
        // 2030-01-01 is a Tuesday. POSIX: 1 is Monday, 0 and 7 are Sunday.
        let mondays = recurring("0 9 * * 1").expect("valid");
        assert_eq!(
            mondays.next_after(at("2030-01-01T00:00:00Z")),
            Some(at("2030-01-07T09:00:00Z"))
        );
        for sunday in ["0 9 * * 0", "0 9 * * 7", "0 9 * * SUN"] {
            assert_eq!(
                recurring(sunday)
                    .expect("valid")
                    .next_after(at("2030-01-01T00:00:00Z")),
                Some(at("2030-01-06T09:00:00Z")),
                "{sunday}"
            );
        }
    }

    #[test]
    fn bad_expressions_are_refused_with_their_name() {
        for bad in ["", "not cron", "61 * * * * *", "* * * *", "0 0 30 2 *"] {
            let error = recurring(bad).expect_err(bad).to_string();
            assert!(error.contains("test.r"), "{error}");
        }
    }

    #[test]
    fn run_keys_name_the_schedule_and_the_time() {
        let due = at("2030-01-01T00:05:00Z").timestamp_millis();
        assert_eq!(
            run_key("blog.digest", due),
            "blog.digest@2030-01-01T00:05:00.000Z"
        );
        assert_ne!(
            run_key("blog.digest", due),
            run_key("blog.digest", due + 1000)
        );
    }
}
