//! The job queue at scale: wake-ups instead of polling (LISTEN/NOTIFY on
//! PostgreSQL, in-process on SQLite), several nodes over one database
//! (`node_of`), recurring jobs fired once per tick across the cluster, lease
//! expiry, and the queue's metrics.
//!
//! The nodes here poll only once a minute, so anything that happens within
//! a second was started by a wake-up, not by a poll.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use basalt_platform::config::JobsConfig;
use basalt_platform::db::Backend;
use basalt_platform::jobs::{JobError, JobFilter, JobQueue, JobState, NewJob};
use basalt_platform::{Db, with_conn};
use basalt_testkit::TestApp;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::jobs::{DEADLINE, eventually, wait_for_state};

/// How long nodes here sleep between polls: longer than any test.
const SLOW_POLL_MS: u64 = 60_000;

/// A wake-up must start a job well within this.
const PROMPTLY: Duration = Duration::from_secs(1);

/// A node of a cluster: an app whose server runs no workers (the test starts
/// its own queue's workers, so it knows who runs what), sharing `first`'s
/// database when given.
async fn node(first: Option<&TestApp>) -> TestApp {
    let builder = TestApp::builder().configure(|c| c.jobs.workers = 0);
    match first {
        Some(first) => builder.node_of(first),
        None => builder,
    }
    .spawn()
    .await
}

/// A queue over `app`'s database (its own pool: its own node) that polls
/// once a minute.
fn queue(app: &TestApp, workers: u32, change: impl FnOnce(&mut JobsConfig)) -> JobQueue {
    let mut config = app.platform.config.jobs.clone();
    config.workers = workers;
    config.poll_interval_ms = SLOW_POLL_MS;
    config.backoff_base_secs = 1;
    config.backoff_max_secs = 1;
    change(&mut config);
    JobQueue::new(app.platform.db.clone(), config)
}

fn is_postgres(db: &Db) -> bool {
    db.backend() == Backend::Postgres
}

/// Process ids of the wake-up listeners subscribed on this database.
async fn listeners(db: &Db) -> Vec<i32> {
    with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'basalt-jobs-listener' \
             AND datname = current_database() AND query LIKE 'LISTEN%' ORDER BY pid",
        )
        .fetch_all(conn)
        .await
    })
    .expect("pg_stat_activity")
}

/// On PostgreSQL, waits until `n` listeners are subscribed; nothing on SQLite.
async fn await_listeners(db: &Db, n: usize) -> Vec<i32> {
    if !is_postgres(db) {
        return Vec::new();
    }
    eventually("the wake-up listeners to subscribe", DEADLINE, || async {
        let pids = listeners(db).await;
        (pids.len() == n).then_some(pids)
    })
    .await
}

/// When each payload's `n` started running.
type Starts = Arc<Mutex<HashMap<u64, Instant>>>;

fn record_starts(jobs: &JobQueue, kind: &str) -> Starts {
    let starts: Starts = Arc::default();
    let log = starts.clone();
    jobs.register(kind, move |payload| {
        let n = payload["n"].as_u64().expect("n");
        log.lock().expect("lock").insert(n, Instant::now());
        async { Ok(()) }
    });
    starts
}

async fn started_at(starts: &Starts, n: u64) -> Instant {
    eventually(&format!("job {n} to start"), DEADLINE, || async {
        starts.lock().expect("lock").get(&n).copied()
    })
    .await
}

/// A job enqueued while every worker sleeps (with a one-minute poll) starts
/// at once: enqueued on its own, inside a transaction (only after the
/// commit), and, on PostgreSQL, from another node (LISTEN/NOTIFY).
#[tokio::test]
async fn an_idle_worker_starts_a_new_job_at_once() {
    let first = node(None).await;
    let other = node(Some(&first)).await;
    let jobs = queue(&first, 2, |_| {});
    let starts = record_starts(&jobs, "test.prompt");
    let workers = jobs.start();
    await_listeners(&first.platform.db, 1).await;
    // Let the workers finish their first look and fall asleep.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut latencies = Vec::new();
    for n in 0..5 {
        let begun = Instant::now();
        jobs.enqueue(NewJob::new("test.prompt", &json!({ "n": n })))
            .await
            .expect("enqueued");
        latencies.push(started_at(&starts, n).await - begun);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Inside a transaction: not before the commit, at once after it.
    let mut tx = first.platform.db.begin().await.expect("begin");
    jobs.enqueue_in(&mut tx, NewJob::new("test.prompt", &json!({ "n": 10 })))
        .await
        .expect("enqueued in the transaction");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !starts.lock().expect("lock").contains_key(&10),
        "ran before its transaction committed"
    );
    let committed = Instant::now();
    tx.commit().await.expect("commit");
    latencies.push(started_at(&starts, 10).await - committed);

    if is_postgres(&first.platform.db) {
        // Another node's enqueue: only the notification can wake us.
        let elsewhere = queue(&other, 0, |_| {});
        for n in 20..25 {
            let begun = Instant::now();
            elsewhere
                .enqueue(NewJob::new("test.prompt", &json!({ "n": n })))
                .await
                .expect("enqueued");
            latencies.push(started_at(&starts, n).await - begun);
        }
    }
    eprintln!("enqueue → start: {latencies:?}");
    for latency in &latencies {
        assert!(
            *latency < PROMPTLY,
            "started after {latency:?}: {latencies:?}"
        );
    }
    workers.shutdown(Duration::from_secs(5)).await;
}

/// On PostgreSQL: when the listener's connection is killed, it reconnects
/// and wakes the workers to look, so a job enqueued meanwhile elsewhere still
/// starts at once, and later ones are announced again. (On SQLite there is
/// no listener: nothing to test.)
#[tokio::test]
async fn wake_ups_survive_a_lost_listener_connection() {
    let first = node(None).await;
    if !is_postgres(&first.platform.db) {
        eprintln!("SQLite: no LISTEN/NOTIFY listener to lose");
        return;
    }
    let other = node(Some(&first)).await;
    let jobs = queue(&first, 2, |_| {});
    let starts = record_starts(&jobs, "test.reconnect");
    let workers = jobs.start();
    let db = &first.platform.db;
    let before = await_listeners(db, 1).await;
    let elsewhere = queue(&other, 0, |_| {});

    let killed: bool = with_conn!(db, |conn| {
        sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(before[0])
            .fetch_one(conn)
            .await
    })
    .expect("terminate");
    assert!(killed);
    let begun = Instant::now();
    elsewhere
        .enqueue(NewJob::new("test.reconnect", &json!({ "n": 1 })))
        .await
        .expect("enqueued");
    let first_latency = started_at(&starts, 1).await - begun;
    assert!(
        first_latency < Duration::from_secs(3),
        "a job enqueued while the listener was down waited {first_latency:?}"
    );

    let after = eventually("a new listener session", DEADLINE, || async {
        let pids = listeners(db).await;
        (pids.len() == 1 && pids != before).then_some(pids)
    })
    .await;
    assert_ne!(after, before);
    let begun = Instant::now();
    elsewhere
        .enqueue(NewJob::new("test.reconnect", &json!({ "n": 2 })))
        .await
        .expect("enqueued");
    let latency = started_at(&starts, 2).await - begun;
    assert!(latency < PROMPTLY, "after reconnecting: {latency:?}");
    workers.shutdown(Duration::from_secs(5)).await;
}

/// Effects of one job kind, seen by every node's handlers.
#[derive(Default)]
struct Effects {
    runs: Mutex<HashMap<u64, u32>>,
    running: Mutex<BTreeSet<u64>>,
    overlaps: AtomicU32,
    by_node: Mutex<HashMap<&'static str, u32>>,
}

fn record_effects(jobs: &JobQueue, node: &'static str, effects: &Arc<Effects>) {
    let effects = effects.clone();
    jobs.register("test.effect", move |payload| {
        let effects = effects.clone();
        async move {
            let n = payload["n"].as_u64().expect("n");
            if !effects.running.lock().expect("lock").insert(n) {
                effects.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            *effects.runs.lock().expect("lock").entry(n).or_default() += 1;
            *effects
                .by_node
                .lock()
                .expect("lock")
                .entry(node)
                .or_default() += 1;
            effects.running.lock().expect("lock").remove(&n);
            Ok(())
        }
    });
}

/// Two nodes (`node_of`: one database, a pool each) with three workers each,
/// polling once a minute: 500 jobs enqueued alternately through both are
/// each run exactly once, never two at a time, driven by wake-ups alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_jobs_on_two_nodes_each_run_exactly_once() {
    let first = node(None).await;
    let second = node(Some(&first)).await;
    let node_a = queue(&first, 3, |_| {});
    let node_b = queue(&second, 3, |_| {});
    let effects = Arc::new(Effects::default());
    record_effects(&node_a, "a", &effects);
    record_effects(&node_b, "b", &effects);
    let workers_a = node_a.start();
    let workers_b = node_b.start();
    await_listeners(&first.platform.db, 2).await;

    let begun = Instant::now();
    for n in 0..500_u64 {
        let node = if n % 2 == 0 { &node_a } else { &node_b };
        node.enqueue(NewJob::new("test.effect", &json!({ "n": n })))
            .await
            .expect("enqueued");
    }
    let done = eventually(
        "all 500 jobs to succeed",
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
            (done.len() == 500).then_some(done)
        },
    )
    .await;
    eprintln!(
        "500 jobs in {:?}; per node: {:?}",
        begun.elapsed(),
        effects.by_node.lock().expect("lock")
    );
    assert!(
        done.iter().all(|job| job.attempts == 1),
        "a job was retried"
    );
    workers_a.shutdown(Duration::from_secs(5)).await;
    workers_b.shutdown(Duration::from_secs(5)).await;

    let runs = effects.runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 500, "every job had its effect");
    let twice: Vec<_> = runs.iter().filter(|&(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    assert_eq!(effects.overlaps.load(Ordering::SeqCst), 0);
}

/// The runs of recurring schedule `name`: `(run_at, dedup_key)` in order.
async fn recurring_runs(db: &Db, kind: &str) -> Vec<(i64, Option<String>)> {
    with_conn!(db, |conn| {
        sqlx::query_as("SELECT run_at, dedup_key FROM jobs WHERE kind = $1 ORDER BY run_at")
            .bind(kind)
            .fetch_all(conn)
            .await
    })
    .expect("runs")
}

fn key(name: &str, run_at_ms: i64) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(run_at_ms).expect("time");
    format!(
        "{name}@{}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// Two nodes with two workers each register the same every-second schedule:
/// over ~3.5 s each tick is enqueued and run exactly once, on whole seconds,
/// and a second job for a tick is refused by the database itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_job_fires_once_per_tick_across_two_nodes() {
    let first = node(None).await;
    let second = node(Some(&first)).await;
    let runs = Arc::new(AtomicU32::new(0));
    let mut nodes = Vec::new();
    for app in [&first, &second] {
        let jobs = queue(app, 2, |_| {});
        let counter = runs.clone();
        jobs.register("test.tick", move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        });
        jobs.recurring("test.every_second", "* * * * * *", "test.tick", &json!({}))
            .expect("a valid schedule");
        nodes.push(jobs);
    }
    let begun = Utc::now();
    let workers: Vec<_> = nodes.iter().map(JobQueue::start).collect();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    for w in workers {
        w.shutdown(Duration::from_secs(5)).await;
    }
    let ended = Utc::now();

    let db = &first.platform.db;
    let fired = recurring_runs(db, "test.tick").await;
    eprintln!("ticks fired: {fired:?}");
    let times: Vec<i64> = fired.iter().map(|(at, _)| *at).collect();
    let distinct: BTreeSet<i64> = times.iter().copied().collect();
    assert_eq!(distinct.len(), times.len(), "a tick fired twice: {fired:?}");
    assert!(
        (2..=5).contains(&times.len()),
        "about one run per second over 3.5 s: {fired:?}"
    );
    for (at, dedup_key) in &fired {
        assert_eq!(at % 1000, 0, "runs are for whole seconds: {at}");
        assert!(*at > begun.timestamp_millis() && *at <= ended.timestamp_millis());
        assert_eq!(
            dedup_key.as_deref(),
            Some(key("test.every_second", *at).as_str())
        );
    }
    // One run per tick (a scheduler more than a second late on a loaded
    // machine would skip a tick, never repeat one).
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= 1000, "one run per tick: {times:?}");
    }
    // Each tick that ran, ran once. The last one may have been enqueued just
    // before the workers stopped and wait, queued, for the next start.
    let succeeded: i64 = with_conn!(db, |conn| {
        sqlx::query_scalar(
            "SELECT CAST(count(*) AS BIGINT) FROM jobs WHERE kind = $1 AND state = 'succeeded'",
        )
        .bind("test.tick")
        .fetch_one(conn)
        .await
    })
    .expect("count");
    assert_eq!(runs.load(Ordering::SeqCst) as i64, succeeded);
    assert!(
        succeeded as usize + 1 >= times.len(),
        "every tick but the last ran: {succeeded} of {fired:?}"
    );

    // Even bypassing the scheduler, a tick cannot be enqueued twice.
    let (at, dedup_key) = fired[0].clone();
    let duplicate: Result<u64, sqlx::Error> = with_conn!(db, |conn| {
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, attempts, max_attempts, run_at, \
             created_at, updated_at, dedup_key) \
             VALUES ($1, 'test.tick', $2, 'queued', 0, 1, $3, $4, $4, $5)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(sqlx::types::Json(json!({})))
        .bind(at)
        .bind(Utc::now())
        .bind(dedup_key)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    });
    let error = duplicate.expect_err("the run key is unique");
    assert!(
        basalt_platform::db::unique_violation(&error).is_some(),
        "{error}"
    );
}

/// The stored schedule of `name`: `(expression, next_run_at, last_run_at)`.
async fn stored_schedule(db: &Db, name: &str) -> (String, i64, Option<i64>) {
    with_conn!(db, |conn| {
        sqlx::query_as(
            "SELECT expression, next_run_at, last_run_at FROM job_schedules WHERE name = $1",
        )
        .bind(name)
        .fetch_one(conn)
        .await
    })
    .expect("schedule row")
}

/// After an hour with no node up (3600 missed ticks), the schedule fires
/// once for all of them and then resumes; a release that changes the
/// expression replaces the stored schedule when its workers start.
#[tokio::test]
async fn missed_runs_fire_once_and_a_changed_schedule_takes_effect() {
    let app = node(None).await;
    let db = &app.platform.db;
    let jobs = queue(&app, 1, |_| {});
    let _runs = record_starts(&jobs, "test.catch_up");
    jobs.recurring(
        "test.catch_up",
        "* * * * * *",
        "test.catch_up",
        &json!({ "n": 0 }),
    )
    .expect("valid");
    // The first start registers the schedule.
    let workers = jobs.start();
    let registered = eventually("the schedule to be registered", DEADLINE, || async {
        with_conn!(db, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM job_schedules WHERE name = 'test.catch_up'",
            )
            .fetch_one(conn)
            .await
        })
        .ok()
        .filter(|&n| n == 1)
    })
    .await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(registered, 1);
    let (expression, _, _) = stored_schedule(db, "test.catch_up").await;
    assert_eq!(expression, "* * * * * *");

    // All nodes were down for an hour.
    let an_hour_ago = (Utc::now().timestamp_millis() / 1000 - 3600) * 1000;
    with_conn!(db, |conn| {
        sqlx::query("UPDATE job_schedules SET next_run_at = $1 WHERE name = 'test.catch_up'")
            .bind(an_hour_ago)
            .execute(conn)
            .await
            .map(|_| ())
    })
    .expect("rewind");
    // (Forget any tick the first start may have fired.)
    with_conn!(db, |conn| {
        sqlx::query("DELETE FROM jobs WHERE kind = 'test.catch_up'")
            .execute(conn)
            .await
            .map(|_| ())
    })
    .expect("clean");
    let restarted = Utc::now().timestamp_millis();
    let workers = jobs.start();
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    workers.shutdown(Duration::from_secs(5)).await;
    let fired = recurring_runs(db, "test.catch_up").await;
    let missed: Vec<_> = fired.iter().filter(|(at, _)| *at < restarted).collect();
    assert_eq!(
        missed.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        vec![an_hour_ago],
        "one run for the missed hour, for its first tick: {fired:?}"
    );
    let resumed = fired.len() - missed.len();
    assert!((1..=3).contains(&resumed), "then once a second: {fired:?}");

    // A new release changes the expression: yearly from now on.
    let release = queue(&app, 1, |_| {});
    release
        .recurring(
            "test.catch_up",
            "0 0 1 1 *",
            "test.catch_up",
            &json!({ "n": 0 }),
        )
        .expect("valid");
    let workers = release.start();
    let (expression, next, _) = eventually("the new expression to be stored", DEADLINE, || async {
        let stored = stored_schedule(db, "test.catch_up").await;
        (stored.0 == "0 0 1 1 *").then_some(stored)
    })
    .await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(expression, "0 0 1 1 *");
    let next = DateTime::<Utc>::from_timestamp_millis(next).expect("time");
    assert_eq!(
        next.format("%m-%d %H:%M:%S").to_string(),
        "01-01 00:00:00",
        "{next}"
    );
    assert!(next > Utc::now());
}

/// A node "crashes" (its workers are dropped) while running a job with a
/// 2-second lease. Another node, idle and polling only once a minute, starts
/// the job when the lease expires: not a millisecond before, and not a poll
/// interval later (idle workers sleep until the next lease expiry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_job_is_retried_when_its_lease_expires_not_before() {
    let first = node(None).await;
    let second = node(Some(&first)).await;
    let crashing = queue(&first, 1, |c| c.lease_secs = 2);
    let healthy = queue(&second, 2, |c| c.lease_secs = 2);
    crashing.register("test.lease", |_| std::future::pending());
    let retried: Arc<Mutex<Option<DateTime<Utc>>>> = Arc::default();
    let log = retried.clone();
    healthy.register("test.lease", move |_| {
        *log.lock().expect("lock") = Some(Utc::now());
        async { Ok::<(), JobError>(()) }
    });
    let doomed = crashing.start();
    let id = crashing
        .enqueue(NewJob::new("test.lease", &json!({})))
        .await
        .expect("enqueued");
    wait_for_state(&crashing, id, JobState::Running).await;
    // The healthy node starts once the job is claimed, and idles.
    let healthy_workers = healthy.start();
    // The lease is renewed while the node lives, past its 2 seconds.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(retried.lock().expect("lock").is_none());

    drop(doomed); // the crash: nothing released, nothing recorded
    // A renewal already on its way to the database lands first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let locked_until: i64 = with_conn!(&first.platform.db, |conn| {
        sqlx::query_scalar("SELECT locked_until FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(conn)
            .await
    })
    .expect("lease");
    let job = wait_for_state(&healthy, id, JobState::Succeeded).await;
    assert_eq!(job.attempts, 2);
    let started = retried
        .lock()
        .expect("lock")
        .expect("retried")
        .timestamp_millis();
    assert!(
        started >= locked_until,
        "retried {} ms before the lease expired",
        locked_until - started
    );
    assert!(
        started - locked_until < 1_000,
        "retried {} ms after the lease expired",
        started - locked_until
    );
    healthy_workers.shutdown(Duration::from_secs(5)).await;
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `/metrics` shows the queue's depth by state, how long jobs waited before
/// starting, and how long they ran, by kind and outcome.
#[tokio::test]
async fn job_metrics_show_queue_depth_wait_and_run_time() {
    let app = TestApp::builder()
        .configure(|c| c.jobs.workers = 1)
        .spawn()
        .await;
    let jobs = &app.platform.jobs;
    jobs.register("test.metered", |payload| async move {
        if payload["fail"].as_bool() == Some(true) {
            Err(JobError::Permanent("bad payload".into()))
        } else {
            Ok(())
        }
    });
    let ok = jobs
        .enqueue(NewJob::new("test.metered", &json!({})))
        .await
        .expect("enqueued");
    let bad = jobs
        .enqueue(NewJob::new("test.metered", &json!({ "fail": true })))
        .await
        .expect("enqueued");
    wait_for_state(jobs, ok, JobState::Succeeded).await;
    wait_for_state(jobs, bad, JobState::Dead).await;
    let later = Utc::now() + chrono::TimeDelta::hours(1);
    for _ in 0..2 {
        jobs.enqueue(NewJob::new("test.metered", &json!({})).run_at(later))
            .await
            .expect("enqueued");
    }

    // The depth gauge is recounted every few seconds.
    let text = eventually(
        "the depth gauge to count the queue",
        Duration::from_secs(15),
        || async {
            let text = app.get("/metrics").await.text().await.expect("text");
            // Both at once: an early recount may have seen `ok` and `bad`
            // still queued, which is also two.
            (sample(&text, r#"basalt_jobs_queued{state="queued"}"#) == Some(2.0)
                && sample(&text, r#"basalt_jobs_queued{state="dead"}"#) == Some(1.0))
            .then_some(text)
        },
    )
    .await;
    assert_eq!(
        sample(&text, r#"basalt_jobs_queued{state="dead"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"basalt_jobs_queued{state="running"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"basalt_job_wait_seconds_count{kind="test.metered"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"basalt_job_run_seconds_count{kind="test.metered",outcome="succeeded"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"basalt_job_run_seconds_count{kind="test.metered",outcome="dead"}"#
        ),
        Some(1.0),
        "{text}"
    );
    let waited =
        sample(&text, r#"basalt_job_wait_seconds_sum{kind="test.metered"}"#).expect("wait sum");
    assert!((0.0..2.0).contains(&waited), "waited {waited} s in all");
}
