//! Storage: migrations registered by modules, queries written once for both
//! backends, transactions, and parameterised SQL.

use basalt_platform::db::{
    Db, MIGRATIONS_TABLE, MigrationError, MigrationFile, Migrations, apply_migrations,
};
use basalt_platform::{Config, with_conn};
use basalt_testkit::fresh_database;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fixture::{self, NewNote};
use crate::spawn_app;

async fn fresh_db() -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = Config::with_data_dir(dir.path());
    let db = Db::connect(&fresh_database(dir.path()).await, &config.database)
        .await
        .expect("connect");
    (db, dir)
}

fn fixture_migrations() -> Migrations {
    Migrations {
        module: "test-notes",
        files: fixture::MIGRATIONS,
    }
}

#[tokio::test]
async fn migrations_apply_once_and_are_idempotent() {
    let (db, _dir) = fresh_db().await;
    let first = apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    assert_eq!(first.applied, vec![900_001, 900_002]);
    let second = apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates again");
    assert!(second.applied.is_empty());
    assert_eq!(second.known, 2);
    let recorded: i64 = with_conn!(&db, |conn| {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM basalt_schema_migrations")
            .fetch_one(conn)
            .await
    })
    .expect("count");
    assert_eq!(recorded, 2, "recorded in {MIGRATIONS_TABLE}");
}

#[tokio::test]
async fn a_new_migration_applies_on_top_of_an_existing_schema() {
    let (db, _dir) = fresh_db().await;
    let first_only = Migrations {
        module: "test-notes",
        files: &fixture::MIGRATIONS[..1],
    };
    assert_eq!(
        apply_migrations(&db, &[first_only])
            .await
            .expect("v1")
            .applied,
        vec![900_001]
    );
    assert_eq!(
        apply_migrations(&db, &[fixture_migrations()])
            .await
            .expect("v2")
            .applied,
        vec![900_002]
    );
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let mut edited = fixture::MIGRATIONS.to_vec();
    edited[0] = MigrationFile {
        sqlite: "CREATE TABLE test_notes (id BLOB PRIMARY KEY);",
        postgres: "CREATE TABLE test_notes (id UUID PRIMARY KEY);",
        ..edited[0]
    };
    let edited: &'static [MigrationFile] = edited.leak();
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    let err = apply_migrations(
        &db,
        &[Migrations {
            module: "test-notes",
            files: edited,
        }],
    )
    .await
    .expect_err("checksum mismatch");
    assert!(err.to_string().contains("modified"), "{err}");
}

/// An older binary (a node not yet upgraded in a rolling deploy) still starts
/// against a schema that a newer node has migrated further.
#[tokio::test]
async fn an_older_build_starts_on_a_newer_schema() {
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("new build migrates");
    let older = Migrations {
        module: "test-notes",
        files: &fixture::MIGRATIONS[..1],
    };
    let report = apply_migrations(&db, &[older])
        .await
        .expect("old build starts");
    assert!(report.applied.is_empty());
}

#[tokio::test]
async fn two_modules_cannot_claim_one_version() {
    let (db, _dir) = fresh_db().await;
    let other = Migrations {
        module: "other",
        files: &fixture::MIGRATIONS[..1],
    };
    let err = apply_migrations(&db, &[fixture_migrations(), other])
        .await
        .expect_err("duplicate");
    assert!(
        matches!(
            err,
            MigrationError::DuplicateVersion {
                version: 900_001,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn uuids_timestamps_and_text_round_trip_on_either_backend() {
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    let note = fixture::insert_note(
        &db,
        &NewNote {
            title: "héllo ✓".into(),
            body: "body".into(),
        },
    )
    .await
    .expect("insert");
    let found = fixture::find_note(&db, note.id)
        .await
        .expect("select")
        .expect("found");
    assert_eq!(found.id, note.id);
    assert_eq!(found.title, "héllo ✓");
    // Both backends keep at least microsecond precision.
    assert_eq!(
        found.created_at.timestamp_micros(),
        note.created_at.timestamp_micros()
    );
}

#[tokio::test]
async fn a_dropped_transaction_rolls_back() {
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    {
        let mut tx = db.begin().await.expect("begin");
        basalt_platform::with_tx!(&mut tx, |conn| {
            sqlx::query("INSERT INTO test_notes (id, title, created_at) VALUES ($1, $2, $3)")
                .bind(uuid::Uuid::now_v7())
                .bind("never committed")
                .bind(chrono::Utc::now())
                .execute(conn)
                .await
                .map(|done| done.rows_affected())
        })
        .expect("insert");
    }
    assert_eq!(fixture::count_notes(&db).await.expect("count"), 0);
}

/// Polls `future` up to `polls` times, yielding to the runtime in between,
/// then drops it: a caller that goes away midway (a client hanging up).
async fn abandon_after<F: std::future::Future>(future: F, polls: usize) {
    let mut future = std::pin::pin!(future);
    for _ in 0..polls {
        let ready =
            std::future::poll_fn(|cx| std::task::Poll::Ready(future.as_mut().poll(cx).is_ready()))
                .await;
        if ready {
            break;
        }
        tokio::task::yield_now().await;
    }
}

/// A commit, once started, takes effect even if its caller is dropped
/// midway (a client hanging up): the caller's work is either wholly undone
/// (dropped before committing) or wholly done, never left to chance.
#[tokio::test]
async fn a_commit_abandoned_midway_still_commits() {
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    for i in 0..20 {
        let mut tx = db.begin().await.expect("begin");
        basalt_platform::with_tx!(&mut tx, |conn| {
            sqlx::query("INSERT INTO test_notes (id, title, created_at) VALUES ($1, $2, $3)")
                .bind(uuid::Uuid::now_v7())
                .bind(format!("committed, caller gone {i}"))
                .bind(chrono::Utc::now())
                .execute(conn)
                .await
                .map(|done| done.rows_affected())
        })
        .expect("insert");
        abandon_after(tx.commit(), 1 + i % 4).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut count = fixture::count_notes(&db).await.expect("count");
    while count < 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        count = fixture::count_notes(&db).await.expect("count");
    }
    assert_eq!(count, 20);
}

/// A caller dropped in the middle of `Db::begin` (a client hanging up) must
/// not leave its connection inside a transaction: the next borrower's writes
/// would run in it, and be lost when it is rolled back.
///
/// sqlx 0.9.0 has this bug on PostgreSQL (transact-rs/sqlx#4393): with the
/// `BEGIN` awaited in the caller's task, this test loses 10–20 of the 30
/// writes in most runs, and `pg_stat_activity` shows a connection "idle in
/// transaction" whose last statement was that `BEGIN`. `Db::begin` works
/// around it by running the `BEGIN` on a task of its own.
#[tokio::test]
async fn a_begin_abandoned_midway_leaves_no_transaction_behind() {
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    // Abandon BEGINs at every point of their progress: polled a few times,
    // yielding to the runtime in between, then dropped.
    for i in 0..600 {
        abandon_after(db.begin(), i % 15).await;
    }
    // Writes outside a transaction, spread over the pool's connections, are
    // committed at once (inside a leftover transaction they would not be
    // seen, and on SQLite its write lock would refuse the others).
    let writers = (0..30).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            with_conn!(&db, |conn| {
                sqlx::query("INSERT INTO test_notes (id, title, created_at) VALUES ($1, $2, $3)")
                    .bind(uuid::Uuid::now_v7())
                    .bind(format!("after the abandoned BEGINs {i}"))
                    .bind(chrono::Utc::now())
                    .execute(conn)
                    .await
                    .map(|done| done.rows_affected())
            })
        })
    });
    for writer in writers {
        writer.await.expect("joins").expect("written");
    }
    assert_eq!(fixture::count_notes(&db).await.expect("count"), 30);
}

#[tokio::test]
async fn concurrent_writers_all_succeed() {
    let (db, _dir) = fresh_db().await;
    apply_migrations(&db, &[fixture_migrations()])
        .await
        .expect("migrates");
    let writers = (0..40).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            fixture::insert_note(
                &db,
                &NewNote {
                    title: format!("note {i}"),
                    body: String::new(),
                },
            )
            .await
        })
    });
    for writer in writers {
        writer
            .await
            .expect("joins")
            .expect("no SQLITE_BUSY, no pool error");
    }
    assert_eq!(fixture::count_notes(&db).await.expect("count"), 40);
}

/// Classic injection payloads are stored and returned verbatim, and the
/// table survives: values travel as bound parameters, never as SQL text.
#[tokio::test]
async fn sql_injection_payloads_are_just_data() {
    let app = spawn_app().await;
    let payloads = [
        "'; DROP TABLE test_notes; --",
        "\" OR 1=1 --",
        "x' UNION SELECT sqlite_version(), version() --",
        "Robert'); DELETE FROM basalt_schema_migrations;--",
        "\\'; SELECT pg_sleep(5); --",
    ];
    let mut ids = Vec::new();
    for title in payloads {
        let response = app
            .client
            .post(app.url("/api/test-notes"))
            .json(&json!({ "title": title }))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::CREATED, "{title}");
        let note: Value = response.json().await.expect("json");
        ids.push((note["id"].as_str().expect("id").to_owned(), title));
    }
    for (id, title) in ids {
        let note: Value = app
            .get(&format!("/api/test-notes/{id}"))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(note["title"], title);
    }
    assert_eq!(
        fixture::count_notes(&app.platform.db)
            .await
            .expect("table still there"),
        payloads.len() as i64
    );

    // A path parameter carrying SQL is rejected as a bad UUID, not executed.
    let response = app.get("/api/test-notes/1%20OR%201=1").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unique_violations_map_to_409() {
    let app = spawn_app().await;
    let create = || {
        app.client
            .post(app.url("/api/test-notes"))
            .json(&json!({ "title": "same" }))
            .send()
    };
    assert_eq!(
        create().await.expect("answered").status(),
        StatusCode::CREATED
    );
    let second = create().await.expect("answered");
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert_eq!(second.headers()["content-type"], "application/problem+json");
}
