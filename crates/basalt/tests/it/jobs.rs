//! The durable job queue: running, retries with backoff, the dead-letter
//! state, scheduling, transactional enqueue, several workers and nodes over
//! one database, crashed workers, restarts, shutdown, listing and the CLI.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use basalt_platform::config::{DatabaseUrl, JobsConfig};
use basalt_platform::jobs::{JobError, JobFilter, JobId, JobQueue, JobRecord, JobState, NewJob};
use basalt_platform::{Db, with_conn};
use basalt_testkit::{TestApp, fresh_database};
use chrono::{TimeDelta, Utc};
use secrecy::ExposeSecret;
use serde_json::json;

/// How long a test waits for something that should happen.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `probe` until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until job `id` reaches `state`; on timeout, fails showing the job.
pub async fn wait_for_state(jobs: &JobQueue, id: JobId, state: JobState) -> JobRecord {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let job = jobs.get(id).await.expect("get").expect("job exists");
        if job.state == state {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job did not become {state:?} within {DEADLINE:?}: {job:#?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Fast polling and one-second backoff, so retries happen within a test.
fn fast(jobs: &mut JobsConfig) {
    jobs.poll_interval_ms = 50;
    jobs.backoff_base_secs = 1;
    jobs.backoff_max_secs = 1;
}

/// Settings for a test's own queue: fast, two workers, then `change`.
fn node_config(app: &TestApp, change: impl FnOnce(&mut JobsConfig)) -> JobsConfig {
    let mut config = app.platform.config.jobs.clone();
    fast(&mut config);
    config.workers = 2;
    change(&mut config);
    config
}

/// An app with no workers of its own (whether or not the server starts
/// them), and a worker node: a queue over the app's database whose workers
/// the test starts and stops itself, so it knows exactly who runs jobs.
async fn spawn_node(change: impl FnOnce(&mut JobsConfig)) -> (TestApp, JobQueue) {
    let app = TestApp::builder()
        .configure(|c| c.jobs.workers = 0)
        .spawn()
        .await;
    let queue = JobQueue::new(app.platform.db.clone(), node_config(&app, change));
    (app, queue)
}

/// A handler that counts its runs.
fn counting(jobs: &JobQueue, kind: &str) -> Arc<AtomicU32> {
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    jobs.register(kind, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    });
    runs
}

#[tokio::test]
async fn an_enqueued_job_runs_once_and_succeeds() {
    let (_app, queue) = spawn_node(|_| {}).await;
    let jobs = &queue;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    jobs.register("test.echo", move |payload| {
        sink.lock().expect("lock").push(payload);
        async { Ok(()) }
    });
    let workers = jobs.start();

    let id = jobs
        .enqueue(NewJob::new(
            "test.echo",
            &json!({ "hello": "wörld", "n": 42 }),
        ))
        .await
        .expect("enqueued");
    let job = wait_for_state(jobs, id, JobState::Succeeded).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(job.max_attempts, 5, "the configured default");
    assert_eq!(job.kind, "test.echo");
    assert!(job.last_error.is_none(), "{job:?}");
    assert!(job.updated_at >= job.created_at);
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![json!({ "hello": "wörld", "n": 42 })]
    );
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_failing_job_is_retried_with_backoff_then_dead() {
    let (_app, queue) = spawn_node(|jobs| jobs.max_attempts = 3).await;
    let jobs = &queue;
    let calls: Arc<Mutex<HashMap<String, Vec<Instant>>>> = Arc::default();
    let log = calls.clone();
    jobs.register("test.flaky", move |payload| {
        let name = payload["name"].as_str().unwrap_or_default().to_owned();
        log.lock()
            .expect("lock")
            .entry(name)
            .or_default()
            .push(Instant::now());
        async { Err(JobError::Retry("server busy".into())) }
    });
    let workers = jobs.start();

    let default = jobs
        .enqueue(NewJob::new("test.flaky", &json!({ "name": "default" })))
        .await
        .expect("enqueued");
    let overridden = jobs
        .enqueue(NewJob::new("test.flaky", &json!({ "name": "two" })).max_attempts(2))
        .await
        .expect("enqueued");

    // Between attempts the job waits in the queue with the error recorded.
    let waiting = eventually("the first failure to be recorded", DEADLINE, || async {
        let job = jobs.get(default).await.expect("get").expect("exists");
        (job.state == JobState::Queued && job.attempts == 1).then_some(job)
    })
    .await;
    assert_eq!(waiting.last_error.as_deref(), Some("server busy"));
    assert!(
        waiting.run_at > waiting.updated_at,
        "retry scheduled in the future: {waiting:?}"
    );

    let dead = wait_for_state(jobs, default, JobState::Dead).await;
    assert_eq!((dead.attempts, dead.max_attempts), (3, 3));
    assert_eq!(dead.last_error.as_deref(), Some("server busy"));
    let dead = wait_for_state(jobs, overridden, JobState::Dead).await;
    assert_eq!((dead.attempts, dead.max_attempts), (2, 2));

    let calls = calls.lock().expect("lock").clone();
    let runs = &calls["default"];
    assert_eq!(runs.len(), 3, "exactly max_attempts runs");
    assert_eq!(calls["two"].len(), 2);
    for pair in runs.windows(2) {
        // One second of backoff, minus at most 25% jitter.
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(700), "retried after {gap:?}");
    }
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_permanent_error_is_dead_at_once() {
    let (_app, queue) = spawn_node(|_| {}).await;
    let jobs = &queue;
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    jobs.register("test.invalid", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Err(JobError::Permanent("the payload names no user".into())) }
    });
    let workers = jobs.start();
    let id = jobs
        .enqueue(NewJob::new("test.invalid", &json!({})))
        .await
        .expect("enqueued");
    let job = wait_for_state(jobs, id, JobState::Dead).await;
    assert_eq!(job.attempts, 1);
    assert_eq!(
        job.last_error.as_deref(),
        Some("permanent: the payload names no user")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_panicking_handler_is_retried_and_the_worker_survives() {
    let (_app, queue) = spawn_node(|jobs| jobs.workers = 1).await;
    let jobs = &queue;
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    jobs.register("test.panics_once", move |_| {
        let run = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            assert!(run > 0, "first run blows up");
            Ok(())
        }
    });
    let after = counting(jobs, "test.after");
    let workers = jobs.start();

    let id = jobs
        .enqueue(NewJob::new("test.panics_once", &json!({})))
        .await
        .expect("enqueued");
    let job = wait_for_state(jobs, id, JobState::Succeeded).await;
    assert_eq!(job.attempts, 2);
    let error = job.last_error.expect("the panic is recorded");
    assert!(
        error.contains("panicked") && error.contains("first run blows up"),
        "{error}"
    );

    // The only worker is still alive.
    let next = jobs
        .enqueue(NewJob::new("test.after", &json!({})))
        .await
        .expect("enqueued");
    wait_for_state(jobs, next, JobState::Succeeded).await;
    assert_eq!(after.load(Ordering::SeqCst), 1);
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_job_without_handler_is_retried_then_dead() {
    let (_app, queue) = spawn_node(|jobs| jobs.max_attempts = 2).await;
    let jobs = &queue;
    let workers = jobs.start();
    let id = jobs
        .enqueue(NewJob::new("test.nobody_handles_this", &json!({})))
        .await
        .expect("enqueued");
    let job = wait_for_state(jobs, id, JobState::Dead).await;
    assert_eq!(job.attempts, 2);
    let error = job.last_error.expect("error recorded");
    assert!(
        error.contains("no handler") && error.contains("test.nobody_handles_this"),
        "{error}"
    );
    workers.shutdown(Duration::from_secs(5)).await;
}

/// Which job ran when.
type RunLog = Arc<Mutex<Vec<(String, chrono::DateTime<Utc>)>>>;

/// Scheduled jobs wait for their time, and due jobs run in `run_at` order,
/// to the millisecond (a text comparison of SQLite timestamps with varying
/// fractional digits would get sub-second ordering wrong).
#[tokio::test]
async fn scheduled_jobs_do_not_run_early_and_due_jobs_run_in_run_at_order() {
    let (_app, queue) = spawn_node(|jobs| jobs.workers = 1).await;
    let jobs = &queue;
    let ran: RunLog = Arc::default();
    let log = ran.clone();
    jobs.register("test.when", move |payload| {
        let name = payload["name"].as_str().unwrap_or_default().to_owned();
        log.lock().expect("lock").push((name, Utc::now()));
        async { Ok(()) }
    });

    let now = Utc::now();
    let later = now + TimeDelta::seconds(2);
    let scheduled = jobs
        .enqueue(NewJob::new("test.when", &json!({ "name": "later" })).run_at(later))
        .await
        .expect("enqueued");
    // Already due, enqueued out of order, some within the same second.
    for (name, ms) in [("c", -1_000), ("a", -1_500), ("d", -995), ("b", -1_050)] {
        jobs.enqueue(
            NewJob::new("test.when", &json!({ "name": name }))
                .run_at(now + TimeDelta::milliseconds(ms)),
        )
        .await
        .expect("enqueued");
    }
    let queued = jobs.get(scheduled).await.expect("get").expect("exists");
    assert_eq!(queued.run_at.timestamp_millis(), later.timestamp_millis());

    let workers = jobs.start();
    let job = wait_for_state(jobs, scheduled, JobState::Succeeded).await;
    assert_eq!(job.attempts, 1);
    let ran = ran.lock().expect("lock").clone();
    let order: Vec<&str> = ran.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(order, ["a", "b", "c", "d", "later"]);
    let (_, at) = ran.last().expect("ran");
    assert!(
        at.timestamp_millis() >= later.timestamp_millis(),
        "ran at {at}, scheduled for {later}"
    );
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_exists() {
    let (app, queue) = spawn_node(|_| {}).await;
    let jobs = &queue;
    let runs = counting(jobs, "test.tx");
    let workers = jobs.start();

    let rolled_back = {
        let mut tx = app.platform.db.begin().await.expect("begin");
        let id = jobs
            .enqueue_in(&mut tx, NewJob::new("test.tx", &json!({ "n": 1 })))
            .await
            .expect("enqueued in the transaction");
        drop(tx); // rolls back
        id
    };
    let mut tx = app.platform.db.begin().await.expect("begin");
    let committed = jobs
        .enqueue_in(&mut tx, NewJob::new("test.tx", &json!({ "n": 2 })))
        .await
        .expect("enqueued in the transaction");
    tx.commit().await.expect("commit");

    wait_for_state(jobs, committed, JobState::Succeeded).await;
    assert!(jobs.get(rolled_back).await.expect("get").is_none());
    let all = jobs
        .list(&JobFilter {
            kind: Some("test.tx".into()),
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![committed]
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    workers.shutdown(Duration::from_secs(5)).await;
}

/// What the handlers of several nodes observed.
#[derive(Default)]
struct Ledger {
    runs: Mutex<HashMap<u64, u32>>,
    in_flight: Mutex<HashSet<u64>>,
    overlaps: AtomicU32,
    by_node: Mutex<HashMap<&'static str, u32>>,
}

fn register_ledger(jobs: &JobQueue, node: &'static str, ledger: &Arc<Ledger>) {
    let ledger = ledger.clone();
    jobs.register("test.count", move |payload| {
        let ledger = ledger.clone();
        async move {
            let n = payload["n"].as_u64().expect("n");
            if !ledger.in_flight.lock().expect("lock").insert(n) {
                ledger.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            // Give other workers the chance to (wrongly) run it too.
            tokio::time::sleep(Duration::from_millis(2)).await;
            *ledger.runs.lock().expect("lock").entry(n).or_default() += 1;
            *ledger
                .by_node
                .lock()
                .expect("lock")
                .entry(node)
                .or_default() += 1;
            ledger.in_flight.lock().expect("lock").remove(&n);
            Ok(())
        }
    });
}

/// Two nodes (two queues with their own connection pools) with two workers
/// each, over one database: 200 jobs, each run exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_on_two_nodes_each_run_exactly_once() {
    let (app, node_a) = spawn_node(|_| {}).await;
    let config = app.platform.config.clone();
    let other_db = Db::connect(&config.database_url, &config.database)
        .await
        .expect("second node connects");
    let node_b = JobQueue::new(other_db.clone(), node_config(&app, |_| {}));
    let ledger = Arc::new(Ledger::default());
    register_ledger(&node_a, "a", &ledger);
    register_ledger(&node_b, "b", &ledger);
    let workers_a = node_a.start();
    let workers_b = node_b.start();

    for n in 0..200_u64 {
        let node = if n % 2 == 0 { &node_a } else { &node_b };
        node.enqueue(NewJob::new("test.count", &json!({ "n": n })))
            .await
            .expect("enqueued");
    }
    eventually(
        "all 200 jobs to succeed",
        Duration::from_secs(60),
        || async {
            let done = node_a
                .list(&JobFilter {
                    state: Some(JobState::Succeeded),
                    limit: Some(500),
                    ..JobFilter::default()
                })
                .await
                .expect("list");
            (done.len() == 200).then_some(done)
        },
    )
    .await
    .iter()
    .for_each(|job| assert_eq!(job.attempts, 1, "{job:?}"));

    workers_a.shutdown(Duration::from_secs(5)).await;
    workers_b.shutdown(Duration::from_secs(5)).await;
    let runs = ledger.runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|&n| n == 1), "a job ran twice: {runs:?}");
    assert_eq!(ledger.overlaps.load(Ordering::SeqCst), 0);
    eprintln!("jobs per node: {:?}", ledger.by_node.lock().expect("lock"));
    other_db.close().await;
}

/// A node that dies while running a job leaves it `running`; once its lease
/// expires, another node runs it. While the first node is alive, it keeps
/// renewing the lease, so the job is not run twice even past `lease_secs`.
#[tokio::test]
async fn a_job_whose_worker_crashed_is_retried_after_its_lease() {
    let (app, healthy) = spawn_node(|jobs| jobs.lease_secs = 2).await;
    let config = app.platform.config.clone();
    let crashing_db = Db::connect(&config.database_url, &config.database)
        .await
        .expect("connects");
    let crashing = JobQueue::new(
        crashing_db.clone(),
        node_config(&app, |jobs| jobs.lease_secs = 2),
    );
    let started = Arc::new(AtomicU32::new(0));
    let counter = started.clone();
    crashing.register("test.crash", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::pending()
    });

    let doomed = crashing.start();
    let survivor = crashing
        .enqueue(NewJob::new("test.crash", &json!({ "n": 1 })))
        .await
        .expect("enqueued");
    let last_try = crashing
        .enqueue(NewJob::new("test.crash", &json!({ "n": 2 })).max_attempts(1))
        .await
        .expect("enqueued");
    for id in [survivor, last_try] {
        wait_for_state(&crashing, id, JobState::Running).await;
    }
    eventually("both handlers to start", DEADLINE, || async {
        (started.load(Ordering::SeqCst) == 2).then_some(())
    })
    .await;

    // The healthy node runs its own workers meanwhile.
    let runs = counting(&healthy, "test.crash");
    let workers = healthy.start();
    // Absence check: for longer than the lease, the running node keeps its
    // claim (it renews the lease).
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let still = healthy.get(survivor).await.expect("get").expect("exists");
    assert_eq!((still.state, still.attempts), (JobState::Running, 1));
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    drop(doomed); // the crash: no release, no outcome recorded
    let job = wait_for_state(&healthy, survivor, JobState::Succeeded).await;
    assert_eq!(job.attempts, 2);
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease expired")),
        "{job:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Its only attempt never reported back: dead, not run again.
    let job = wait_for_state(&healthy, last_try, JobState::Dead).await;
    assert_eq!(job.attempts, 1);
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease expired")),
        "{job:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(started.load(Ordering::SeqCst), 2);
    workers.shutdown(Duration::from_secs(5)).await;
    crashing_db.close().await;
}

/// A database of our own, shared by two apps started one after the other.
async fn shared_database() -> (DatabaseUrl, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (fresh_database(dir.path()).await, dir)
}

#[tokio::test]
async fn jobs_survive_a_restart() {
    let (url, _dir) = shared_database().await;

    let first_url = url.clone();
    let first = TestApp::builder()
        .configure(move |c| {
            fast(&mut c.jobs);
            c.jobs.workers = 0;
            c.database_url = first_url;
        })
        .spawn()
        .await;
    let early_runs = counting(&first.platform.jobs, "test.durable");
    let none = first.platform.jobs.start();
    let id = first
        .platform
        .jobs
        .enqueue(NewJob::new("test.durable", &json!({ "keep": true })))
        .await
        .expect("enqueued");
    // Absence check: with 0 workers nothing runs, however many polls pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let job = first
        .platform
        .jobs
        .get(id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));
    assert_eq!(early_runs.load(Ordering::SeqCst), 0);
    none.shutdown(Duration::from_secs(1)).await;
    first.stop().await.expect("first app stops");

    let second = TestApp::builder()
        .configure(move |c| {
            fast(&mut c.jobs);
            c.database_url = url;
        })
        .spawn()
        .await;
    let runs = counting(&second.platform.jobs, "test.durable");
    let workers = second.platform.jobs.start();
    wait_for_state(&second.platform.jobs, id, JobState::Succeeded).await;
    assert_eq!(
        second.platform.jobs.payload(id).await.expect("payload"),
        Some(json!({ "keep": true }))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    workers.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_waits_for_running_jobs_and_hands_back_what_overruns() {
    let (_app, queue) = spawn_node(|jobs| jobs.workers = 1).await;
    let jobs = &queue;
    let finished = Arc::new(AtomicU32::new(0));
    let counter = finished.clone();
    jobs.register("test.slow", move |_| {
        let counter = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    jobs.register("test.forever", |_| std::future::pending());

    let workers = jobs.start();
    let slow = jobs
        .enqueue(NewJob::new("test.slow", &json!({})))
        .await
        .expect("enqueued");
    wait_for_state(jobs, slow, JobState::Running).await;
    workers.shutdown(Duration::from_secs(5)).await;
    let job = jobs.get(slow).await.expect("get").expect("exists");
    assert_eq!(job.state, JobState::Succeeded, "finished within the grace");
    assert_eq!(finished.load(Ordering::SeqCst), 1);

    let workers = jobs.start();
    let forever = jobs
        .enqueue(NewJob::new("test.forever", &json!({})))
        .await
        .expect("enqueued");
    wait_for_state(jobs, forever, JobState::Running).await;
    let begun = Instant::now();
    workers.shutdown(Duration::from_millis(300)).await;
    assert!(
        begun.elapsed() < Duration::from_secs(3),
        "{:?}",
        begun.elapsed()
    );
    let job = jobs.get(forever).await.expect("get").expect("exists");
    assert_eq!(
        (job.state, job.attempts),
        (JobState::Queued, 0),
        "handed back without counting the attempt: {job:?}"
    );
    assert_eq!(job.last_error.as_deref(), Some("interrupted by shutdown"));
}

/// Finished jobs are deleted once older than their retention (succeeded: 7
/// days, dead: 30 days by default); unfinished ones never, however old.
#[tokio::test]
async fn old_finished_jobs_are_pruned_and_unfinished_ones_kept() {
    let (_app, queue) = spawn_node(|_| {}).await;
    let jobs = &queue;
    counting(jobs, "test.ok");
    jobs.register("test.bad", |_| async {
        Err(JobError::Permanent("never works".into()))
    });
    let days_ago = |days: i64| Utc::now() - TimeDelta::days(days);
    let enqueue = |kind: &'static str, days: i64| async move {
        jobs.enqueue(NewJob::new(kind, &json!({})).run_at(days_ago(days)))
            .await
            .expect("enqueued")
    };
    // Due long ago but not run yet: queued, and kept.
    let waiting = enqueue("test.ok", 400).await;
    assert_eq!(jobs.prune(Utc::now()).await.expect("prune"), 0);
    assert!(jobs.get(waiting).await.expect("get").is_some());

    let old_success = enqueue("test.ok", 8).await;
    let recent_success = enqueue("test.ok", 6).await;
    let old_dead = enqueue("test.bad", 31).await;
    let recent_dead = enqueue("test.bad", 29).await;
    let workers = jobs.start();
    for (id, state) in [
        (waiting, JobState::Succeeded),
        (old_success, JobState::Succeeded),
        (recent_success, JobState::Succeeded),
        (old_dead, JobState::Dead),
        (recent_dead, JobState::Dead),
    ] {
        wait_for_state(jobs, id, state).await;
    }
    workers.shutdown(Duration::from_secs(5)).await;

    assert_eq!(jobs.prune(Utc::now()).await.expect("prune"), 3);
    for (id, kept) in [
        (waiting, false),
        (old_success, false),
        (recent_success, true),
        (old_dead, false),
        (recent_dead, true),
    ] {
        let found = jobs.get(id).await.expect("get");
        assert_eq!(found.is_some(), kept, "{id}: {found:?}");
    }
}

#[tokio::test]
async fn list_filters_and_pages_newest_first() {
    let (app, queue) = spawn_node(|_| {}).await;
    let jobs = &queue;
    let mut ids = Vec::new();
    for (i, kind) in ["test.a", "test.b", "test.a", "test.a", "test.b"]
        .into_iter()
        .enumerate()
    {
        ids.push(
            jobs.enqueue(NewJob::new(kind, &json!({ "i": i })))
                .await
                .expect("enqueued"),
        );
    }
    let listed = |filter: JobFilter| async move {
        jobs.list(&filter)
            .await
            .expect("list")
            .into_iter()
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
    assert_eq!(listed(JobFilter::default()).await, newest_first);
    assert_eq!(
        listed(JobFilter {
            kind: Some("test.b".into()),
            ..JobFilter::default()
        })
        .await,
        vec![ids[4], ids[1]]
    );
    assert_eq!(
        listed(JobFilter {
            limit: Some(2),
            offset: Some(1),
            ..JobFilter::default()
        })
        .await,
        vec![ids[3], ids[2]]
    );
    assert!(
        listed(JobFilter {
            state: Some(JobState::Dead),
            ..JobFilter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        listed(JobFilter {
            state: Some(JobState::Queued),
            kind: Some("test.a".into()),
            ..JobFilter::default()
        })
        .await,
        vec![ids[3], ids[2], ids[0]]
    );
    let one = jobs.get(ids[1]).await.expect("get").expect("exists");
    assert_eq!(one.kind, "test.b");
    assert_eq!(
        jobs.payload(ids[1]).await.expect("payload"),
        Some(json!({ "i": 1 }))
    );
    assert!(jobs.get(uuid::Uuid::now_v7()).await.expect("get").is_none());

    // Stored timestamps are real times, with the run time to the millisecond.
    let stored: i64 = with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar("SELECT run_at FROM jobs WHERE id = $1")
            .bind(ids[0])
            .fetch_one(conn)
            .await
    })
    .expect("select");
    let age = Utc::now().timestamp_millis() - stored;
    assert!((0..60_000).contains(&age), "run_at is unix ms: {stored:?}");
}

#[tokio::test]
async fn the_cli_lists_jobs() {
    let (app, queue) = spawn_node(|_| {}).await;
    let jobs = &queue;
    let id = jobs
        .enqueue(NewJob::new("test.cli_listed", &json!({ "x": 1 })))
        .await
        .expect("enqueued");
    let url = match &app.platform.config.database_url {
        DatabaseUrl::Sqlite(url) => url.clone(),
        DatabaseUrl::Postgres(url) => url.expose_secret().to_owned(),
    };
    let cwd = tempfile::tempdir().expect("temp dir");
    let basalt = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_basalt"))
            .args(args)
            .current_dir(cwd.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BASALT_DATABASE_URL", &url)
            .output()
            .expect("binary runs")
    };

    let out = basalt(&["jobs", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains(&id.to_string()))
        .unwrap_or_else(|| panic!("job {id} not listed:\n{stdout}"));
    assert!(
        line.contains("test.cli_listed") && line.contains("queued"),
        "{line}"
    );

    let out = basalt(&["jobs", "list", "--state", "dead"]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&id.to_string()));
    let out = basalt(&["jobs", "list", "--kind", "test.cli_listed", "--limit", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id.to_string()));
    assert!(
        !basalt(&["jobs", "list", "--state", "sleeping"])
            .status
            .success()
    );
}
