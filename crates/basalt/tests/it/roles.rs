//! Node roles: `api` nodes serve the API and run no background work,
//! `worker` nodes drain the job queue and answer only the operational
//! endpoints, `all` (the default) does both.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use basalt_identity::service::SEND_LINK_JOB;
use basalt_platform::Role;
use basalt_platform::jobs::{JobFilter, JobRecord, JobState};
use basalt_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::json;

use crate::identity::{PASSWORD, identity_app, new_identity, register};
use crate::jobs::{DEADLINE, eventually};

/// The mail jobs in `app`'s database.
async fn mail_jobs(app: &TestApp) -> Vec<JobRecord> {
    app.platform
        .jobs
        .list(&JobFilter {
            kind: Some(SEND_LINK_JOB.into()),
            ..JobFilter::default()
        })
        .await
        .expect("list jobs")
}

#[tokio::test]
async fn an_api_node_runs_no_jobs_and_a_worker_node_runs_them() {
    let api = identity_app()
        .env("BASALT_ROLE", "api")
        .configure(|c| c.jobs.poll_interval_ms = 50)
        .spawn()
        .await;
    assert_eq!(api.platform.config.role, Role::Api);
    assert_eq!(api.get("/healthz").await.status(), StatusCode::OK);

    // Registration queues the verification mail…
    let (email, username) = new_identity();
    register(&api, &email, &username).await;
    let queued = mail_jobs(&api).await;
    assert_eq!(queued.len(), 1, "{queued:#?}");
    // … which nobody on this node picks up, however long it waits
    // (20 poll intervals of a worker, had one been started).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let job = api
        .platform
        .jobs
        .get(queued[0].id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(job.state, JobState::Queued, "{job:#?}");
    assert_eq!(job.attempts, 0, "{job:#?}");

    // A worker node on the same database sends it.
    let database = api.platform.config.database_url.clone();
    let worker = identity_app()
        .env("BASALT_ROLE", "worker")
        .configure(move |c| {
            c.database_url = database;
            c.jobs.poll_interval_ms = 50;
        })
        .spawn()
        .await;
    assert_eq!(worker.platform.config.role, Role::Worker);
    let id = queued[0].id;
    let done = eventually("the worker node to send the mail", DEADLINE, || async {
        let job = api.platform.jobs.get(id).await.expect("get").expect("job");
        (job.state == JobState::Succeeded).then_some(job)
    })
    .await;
    assert_eq!(done.attempts, 1);
    worker.stop().await.expect("worker stops cleanly");
    api.stop().await.expect("api stops cleanly");
}

#[tokio::test]
async fn a_worker_node_answers_probes_but_not_the_api() {
    let worker = identity_app().env("BASALT_ROLE", "worker").spawn().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(worker.get(path).await.status(), StatusCode::OK, "{path}");
    }
    for path in [
        "/api/me",
        "/api/articles",
        "/openapi.json",
        "/docs/",
        "/.well-known/jwks.json",
    ] {
        let r = worker.get(path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    let (email, username) = new_identity();
    let r = worker
        .client
        .post(worker.url("/api/auth/register"))
        .json(&json!({ "email": email, "username": username, "password": PASSWORD }))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_node_of_role_all_serves_the_api_and_runs_jobs() {
    let app = identity_app()
        .configure(|c| c.jobs.poll_interval_ms = 50)
        .spawn()
        .await;
    assert_eq!(app.platform.config.role, Role::All);
    let (email, username) = new_identity();
    register(&app, &email, &username).await;
    let id = mail_jobs(&app).await[0].id;
    eventually("the mail to be sent", DEADLINE, || async {
        let job = app.platform.jobs.get(id).await.expect("get").expect("job");
        (job.state == JobState::Succeeded).then_some(())
    })
    .await;
}

fn basalt(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_basalt"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("runs")
}

#[test]
fn the_role_comes_from_the_flag_or_the_configuration_and_bad_ones_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let out = basalt(dir.path(), &["serve", "--role", "both"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("both"), "{}", stderr(&out));

    let out = basalt(dir.path(), &["serve"], &[("BASALT_ROLE", "both")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("invalid configuration: BASALT_ROLE"),
        "{}",
        stderr(&out)
    );

    let printed = basalt(dir.path(), &["config", "print"], &[("BASALT_ROLE", "api")]);
    assert!(
        String::from_utf8_lossy(&printed.stdout).contains("role = \"api\""),
        "{}",
        String::from_utf8_lossy(&printed.stdout)
    );

    // A worker needs workers; the flag overrides BASALT_ROLE.
    let out = basalt(
        dir.path(),
        &["serve", "--role", "worker"],
        &[("BASALT_ROLE", "api"), ("BASALT_JOBS__WORKERS", "0")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid configuration: BASALT_JOBS__WORKERS"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("data").exists());
}
