//! Housekeeping: ended sessions, refresh-token families and mailed tokens
//! are deleted by the hourly prune; live ones are kept.

use basalt_identity::service::{IdentityService, PRUNE_JOB, Pruned};
use basalt_platform::with_conn;
use basalt_testkit::TestApp;
use chrono::{TimeDelta, Utc};

use super::{PASSWORD, identity_app, registered, sign_in, tokens};

async fn rows(app: &TestApp, table: &str) -> i64 {
    let sql = match table {
        "sessions" => "SELECT COUNT(*) FROM identity_sessions",
        "refresh" => "SELECT COUNT(*) FROM identity_refresh_tokens",
        _ => "SELECT COUNT(*) FROM identity_email_tokens",
    };
    with_conn!(&app.platform.db, |conn| {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(conn).await
    })
    .expect("count")
}

async fn all_rows(app: &TestApp) -> (i64, i64, i64) {
    (
        rows(app, "sessions").await,
        rows(app, "refresh").await,
        rows(app, "email").await,
    )
}

/// Each kind goes when it ends, by the default timeouts: a session idle for
/// 12 hours, a verification link after 48 hours, a refresh family after 30
/// days.
#[tokio::test]
async fn ended_sessions_and_tokens_are_deleted_and_live_ones_kept() {
    let app = identity_app()
        .env("BASALT_IDENTITY__SESSION_STORE", "database")
        .spawn()
        .await;
    let email = registered(&app).await; // mails a verification link
    sign_in(&app, &email, PASSWORD).await;
    tokens(&app, &email, PASSWORD).await;
    let service: IdentityService = app.platform.services.get().expect("identity service");
    assert_eq!(all_rows(&app).await, (1, 1, 1));

    let now = Utc::now();
    let prune_at = |hours: i64| {
        let service = service.clone();
        async move {
            service
                .prune_expired(now + TimeDelta::hours(hours))
                .await
                .expect("prune")
        }
    };
    assert_eq!(prune_at(0).await, Pruned::default());
    assert_eq!(all_rows(&app).await, (1, 1, 1));
    assert_eq!(
        prune_at(13).await,
        Pruned {
            sessions: 1,
            ..Pruned::default()
        }
    );
    assert_eq!(
        prune_at(49).await,
        Pruned {
            email_tokens: 1,
            ..Pruned::default()
        }
    );
    assert_eq!(all_rows(&app).await, (0, 1, 0));
    assert_eq!(
        prune_at(31 * 24).await,
        Pruned {
            refresh_tokens: 1,
            ..Pruned::default()
        }
    );
    assert_eq!(all_rows(&app).await, (0, 0, 0));
}

/// The prune is a recurring job of the queue: registered with its schedule,
/// and run by a worker like any other job.
#[tokio::test]
async fn the_prune_runs_as_a_job() {
    let app = identity_app().spawn().await;
    let id = app
        .platform
        .jobs
        .enqueue(basalt_platform::jobs::NewJob::new(PRUNE_JOB, &()))
        .await
        .expect("enqueued");
    crate::jobs::wait_for_state(
        &app.platform.jobs,
        id,
        basalt_platform::jobs::JobState::Succeeded,
    )
    .await;
    // Both housekeeping schedules (this one and the queue's own) are stored
    // once the workers have started.
    for name in [PRUNE_JOB, basalt_platform::jobs::PRUNE_JOBS] {
        let db = app.platform.db.clone();
        crate::jobs::eventually(name, crate::jobs::DEADLINE, || {
            let db = db.clone();
            async move {
                let stored: i64 = with_conn!(&db, |conn| {
                    sqlx::query_scalar("SELECT COUNT(*) FROM job_schedules WHERE name = $1")
                        .bind(name)
                        .fetch_one(conn)
                        .await
                })
                .expect("count");
                (stored == 1).then_some(())
            }
        })
        .await;
    }
}
