//! Worker tasks: claim a due job, run its handler, record the outcome, repeat.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tracing::Instrument;

use super::store::{self, Claimed};
use super::{JobError, JobQueue};
use crate::config::JobsConfig;

/// What the workers are asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Claim and run jobs.
    Running,
    /// Claim nothing new; finish the jobs in hand.
    Draining,
    /// The grace period is over: interrupt jobs and hand them back.
    Abort,
}

/// How long interrupted jobs get to be handed back once the grace period is
/// over, before their workers are cancelled outright (their lease then
/// expires and another worker retries them). The supervisor allows the
/// same beyond the grace before it aborts the workers itself.
const RELEASE_TIMEOUT: Duration = crate::supervisor::HAND_BACK;

/// Running workers; see [`JobQueue::start`].
///
/// Stop them with [`Workers::shutdown`]. Dropping this value cancels the
/// workers at once, like a crash: jobs they were running stay claimed until
/// their lease expires, and are then retried.
#[must_use = "dropping Workers stops them at once"]
pub struct Workers {
    // Declared before `phase` so that on drop the tasks are cancelled before
    // they can observe the closed channel and start releasing jobs.
    tasks: JoinSet<()>,
    phase: watch::Sender<Phase>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("tasks", &self.tasks.len())
            .field("phase", &*self.phase.borrow())
            .finish()
    }
}

impl Workers {
    /// Spawns `queue`'s configured number of workers on the current Tokio
    /// runtime and, when there is at least one, the node's helpers: the
    /// wake-up listener (PostgreSQL), the scheduler of recurring jobs, and
    /// the queue-depth gauge. All of them stop with the workers.
    pub(super) fn spawn(queue: &JobQueue) -> Self {
        let (phase, _) = watch::channel(Phase::Running);
        let mut tasks = JoinSet::new();
        for _ in 0..queue.config.workers {
            tasks.spawn(work(queue.clone(), phase.subscribe()));
        }
        if queue.config.workers > 0 {
            tasks.spawn(super::listener::listen(queue.clone(), phase.subscribe()));
            tasks.spawn(super::schedule::run(queue.clone(), phase.subscribe()));
            tasks.spawn(super::metrics::refresh_depth(
                queue.clone(),
                phase.subscribe(),
            ));
            tracing::debug!(workers = queue.config.workers, "job workers started");
        }
        Self { tasks, phase }
    }

    /// Stops claiming new jobs and waits (at most `grace`) for running ones.
    ///
    /// Jobs still running after `grace` are interrupted and returned to the
    /// queue (the interrupted attempt is not counted), so that another node,
    /// or this one after a restart, runs them without waiting for the lease.
    pub async fn shutdown(mut self, grace: Duration) {
        self.phase.send_replace(Phase::Draining);
        if tokio::time::timeout(grace, join_all(&mut self.tasks))
            .await
            .is_ok()
        {
            return;
        }
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "jobs still running after the grace period: interrupting them"
        );
        self.phase.send_replace(Phase::Abort);
        if tokio::time::timeout(RELEASE_TIMEOUT, join_all(&mut self.tasks))
            .await
            .is_err()
        {
            self.tasks.abort_all();
        }
    }
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// The shortest nap of an idle worker, so that a job another worker is just
/// claiming (and that therefore still looks due) does not make it spin.
const MIN_NAP: Duration = Duration::from_millis(5);

/// One worker: claims jobs back to back while there are due ones; otherwise
/// sleeps until a wake-up (a new job), the next job's due time or lease
/// expiry, or at most the poll interval.
async fn work(queue: JobQueue, mut phase: watch::Receiver<Phase>) {
    let poll = Duration::from_millis(queue.config.poll_interval_ms);
    loop {
        if *phase.borrow_and_update() != Phase::Running {
            return;
        }
        let nap = match run_one(&queue, &mut phase).await {
            Ok(true) => continue,
            Ok(false) => match store::next_due(&queue.db).await {
                Ok(Some(due)) => until(due).min(poll).max(MIN_NAP),
                Ok(None) => poll,
                Err(error) => {
                    tracing::warn!(error = %error, "job queue: database error");
                    poll
                }
            },
            Err(error) => {
                // The database is unreachable or refused: try again after
                // the poll interval rather than spinning.
                tracing::warn!(error = %error, "job queue: database error");
                poll
            }
        };
        queue.idle.fetch_add(1, Ordering::Relaxed);
        let stop = tokio::select! {
            changed = phase.changed() => changed.is_err(),
            () = queue.wake.notified() => false,
            () = tokio::time::sleep(nap) => false,
        };
        queue.idle.fetch_sub(1, Ordering::Relaxed);
        if stop {
            return;
        }
    }
}

/// From now until the unix millisecond `at_ms`, plus one millisecond so that
/// the time has really passed at the precision times are stored in.
fn until(at_ms: i64) -> Duration {
    let ms = at_ms.saturating_sub(Utc::now().timestamp_millis()).max(0);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX).saturating_add(1))
}

/// How one attempt ended.
enum Outcome {
    Succeeded,
    Failed(JobError),
    /// Interrupted by shutdown: hand the job back.
    Interrupted,
    /// Another worker owns the job now; record nothing.
    LeaseLost,
}

/// Claims and runs one job; `false` when none was due.
async fn run_one(
    queue: &JobQueue,
    phase: &mut watch::Receiver<Phase>,
) -> Result<bool, sqlx::Error> {
    let lease = Duration::from_secs(queue.config.lease_secs);
    let now = Utc::now();
    let Some(job) = store::claim(&queue.db, now, millis_after(now, lease)).await? else {
        return Ok(false);
    };
    queue.pass_on_wake_up();
    let waited_ms = Utc::now().timestamp_millis().saturating_sub(job.run_at_ms);
    queue
        .metrics
        .observe_wait(&job.kind, waited_ms as f64 / 1000.0);
    let span = job_span(&job);

    if job.attempt > job.max_attempts {
        // Its last attempt never reported back (the process died running
        // it, perhaps because of the job itself): do not run it again.
        let error = "the worker running its last attempt stopped (lease expired)";
        tracing::error!(parent: &span, error, "job is dead");
        store::bury(&queue.db, &job, job.max_attempts, error, Utc::now()).await?;
        return Ok(true);
    }

    let started = Instant::now();
    let outcome = execute(queue, &job, lease, phase, &span).await;
    let ran = started.elapsed().as_secs_f64();
    let now = Utc::now();
    let recorded = match outcome {
        Outcome::Succeeded => {
            tracing::debug!(parent: &span, "job succeeded");
            queue.metrics.observe_run(&job.kind, "succeeded", ran);
            store::succeed(&queue.db, &job, now).await?
        }
        Outcome::Failed(error) => {
            span.record("otel.status_code", "error");
            let message = error.to_string();
            let last = job.attempt >= job.max_attempts;
            if matches!(error, JobError::Permanent(_)) || last {
                tracing::error!(parent: &span, error = %message, "job is dead");
                queue.metrics.observe_run(&job.kind, "dead", ran);
                store::bury(&queue.db, &job, job.attempt, &message, now).await?
            } else {
                queue.metrics.observe_run(&job.kind, "failed", ran);
                let attempt = u32::try_from(job.attempt).unwrap_or(1);
                let delay = backoff(&queue.config, attempt, random());
                let run_at = millis_after(now, delay);
                tracing::warn!(
                    parent: &span,
                    error = %message,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "job failed; will retry"
                );
                store::retry(&queue.db, &job, run_at, &message, now).await?
            }
        }
        Outcome::Interrupted => {
            tracing::info!(
                parent: &span,
                "job interrupted by shutdown; returned to the queue"
            );
            queue.metrics.observe_run(&job.kind, "interrupted", ran);
            store::release(&queue.db, &job, now).await?
        }
        Outcome::LeaseLost => {
            queue.metrics.observe_run(&job.kind, "lease_lost", ran);
            true
        }
    };
    if !recorded {
        // Our lease expired (this node stalled) and another worker claimed
        // the job; its attempt owns the outcome.
        tracing::warn!(
            parent: &span,
            "job was taken over by another worker; outcome not recorded"
        );
    }
    Ok(true)
}

/// The span of one attempt. With traces on, a consumer span that continues
/// the enqueuer's trace (a job enqueued by a request is part of that
/// request's trace, however much later it runs), failed when the attempt
/// fails.
fn job_span(job: &Claimed) -> tracing::Span {
    if !crate::telemetry::tracing_enabled() {
        return tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempt);
    }
    let span = tracing::info_span!(
        "job",
        id = %job.id,
        kind = %job.kind,
        attempt = job.attempt,
        otel.name = format!("job {}", job.kind),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, job.traceparent.as_deref());
    span
}

/// Runs the handler in its own task (so a panic is caught as a failure, and
/// the run can be cancelled), renewing the lease while it runs.
async fn execute(
    queue: &JobQueue,
    job: &Claimed,
    lease: Duration,
    phase: &mut watch::Receiver<Phase>,
    span: &tracing::Span,
) -> Outcome {
    let Some(handler) = queue.handler(&job.kind) else {
        // Another node (a newer build) may know this kind: retry later.
        return Outcome::Failed(JobError::Retry(format!(
            "no handler for job kind `{}` on this node",
            job.kind
        )));
    };
    let payload = job.payload.clone();
    let run = async move { handler(payload).await };
    let mut task = AbortOnDrop(tokio::spawn(run.instrument(span.clone())));

    // Renew well before expiry, so that a job running longer than the lease
    // is not claimed a second time while it runs.
    let every = (lease / 3).max(Duration::from_millis(50));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            joined = &mut task.0 => return outcome_of(joined),
            _ = heartbeat.tick() => {
                let until = millis_after(Utc::now(), lease);
                match store::extend_lease(&queue.db, job, until).await {
                    Ok(true) => {}
                    // Another worker claimed it: stop this run (dropping
                    // the task aborts it).
                    Ok(false) => return Outcome::LeaseLost,
                    Err(error) => tracing::warn!(error = %error, "cannot renew a job's lease"),
                }
            }
            () = abort_requested(phase) => return Outcome::Interrupted,
        }
    }
}

/// The outcome of a finished handler task; a panic is a retryable failure.
fn outcome_of(joined: Result<Result<(), JobError>, JoinError>) -> Outcome {
    match joined {
        Ok(Ok(())) => Outcome::Succeeded,
        Ok(Err(error)) => Outcome::Failed(error),
        Err(error) if error.is_panic() => {
            let panic = error.into_panic();
            let message = panic_message(panic.as_ref());
            Outcome::Failed(JobError::Retry(format!("handler panicked: {message}")))
        }
        Err(error) => Outcome::Failed(JobError::Retry(format!("handler cancelled: {error}"))),
    }
}

/// Resolves once shutdown's grace period is over (or the workers are gone).
async fn abort_requested(phase: &mut watch::Receiver<Phase>) {
    // The guard `wait_for` returns is not `Send`: drop it here.
    let _ = phase.wait_for(|p| *p == Phase::Abort).await.map(|_| ());
}

/// Aborts the task when dropped, so that an abandoned run does not go on.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// `now + delay` in unix milliseconds, the unit `run_at` and `locked_until`
/// are stored in (see the module docs).
fn millis_after(now: DateTime<Utc>, delay: Duration) -> i64 {
    let delay = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    now.timestamp_millis().saturating_add(delay)
}

/// A random number for jitter; jitter only spreads retries out, so a weak
/// fallback is fine should the OS source fail.
fn random() -> u64 {
    getrandom::u64().unwrap_or_else(|_| u64::from(Utc::now().timestamp_subsec_nanos()))
}

/// The delay before retrying after failed attempt number `attempt` (1-based):
/// `base * 2^(attempt-1)`, capped at the maximum, then spread by ±25% (never
/// above the maximum) so that jobs failing together do not retry together.
pub(super) fn backoff(config: &JobsConfig, attempt: u32, random: u64) -> Duration {
    let base_ms = config.backoff_base_secs.saturating_mul(1000);
    let max_ms = config.backoff_max_secs.saturating_mul(1000);
    let doublings = attempt.saturating_sub(1).min(40);
    let delay = base_ms.saturating_mul(1_u64 << doublings).min(max_ms);
    let spread = delay / 2;
    let jittered = delay - delay / 4 + random % spread.saturating_add(1);
    Duration::from_millis(jittered.min(max_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: u64, max: u64) -> JobsConfig {
        JobsConfig {
            backoff_base_secs: base,
            backoff_max_secs: max,
            ..JobsConfig::default()
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let c = config(5, 3600);
        for r in [0, 1, 7, 1234, u64::MAX / 3, u64::MAX] {
            for (attempt, nominal) in [(1, 5_000), (2, 10_000), (3, 20_000), (5, 80_000)] {
                let d = backoff(&c, attempt, r).as_millis() as u64;
                assert!(
                    d >= nominal * 3 / 4 && d <= nominal * 5 / 4,
                    "attempt {attempt}: {d} ms"
                );
            }
            for attempt in [12, 40, 1000, u32::MAX] {
                let d = backoff(&c, attempt, r).as_millis() as u64;
                assert!((2_700_000..=3_600_000).contains(&d), "capped: {d} ms");
            }
        }
        // The jitter really varies.
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|_| backoff(&c, 3, random())).collect();
        assert!(spread.len() > 10, "{spread:?}");
    }

    #[test]
    fn zero_base_means_immediate_retry() {
        assert_eq!(backoff(&config(0, 10), 3, 99), Duration::ZERO);
    }

    #[test]
    fn millis_after_is_in_milliseconds() {
        let now = Utc::now();
        assert_eq!(
            millis_after(now, Duration::from_secs(2)) - now.timestamp_millis(),
            2000
        );
    }
}
