//! Storage: one handle over SQLite or PostgreSQL, chosen by configuration.
//!
//! Repositories write each query once. sqlx's SQLite driver accepts the same
//! `$1` placeholders as PostgreSQL, so one SQL text serves both; the
//! [`with_conn!`](crate::with_conn) and [`with_tx!`](crate::with_tx) macros
//! expand that one piece of code for whichever backend is configured (the
//! compiler checks it against both). `sqlx::Any` is deliberately not used: it
//! cannot decode UUIDs, timestamps or JSON.
//!
//! Where SQL itself differs (e.g. `FOR UPDATE SKIP LOCKED`), match on
//! [`Db::backend`] and write the two statements side by side.

pub mod in_list;
mod migrations;
mod sqlite_pool;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Transaction};

pub use migrations::{
    MIGRATIONS_TABLE, MigrationError, MigrationFile, MigrationReport, Migrations, apply_migrations,
};
pub use sqlite_pool::{PooledSqlite, SqlitePool, SqliteTx};

use crate::config::{DatabaseConfig, DatabaseUrl};

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the zero-config default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Lower-case name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A connection pool of either backend. Match on it only through the macros
/// or where the SQL really differs.
#[derive(Debug, Clone)]
pub enum Pool {
    /// SQLite pool (Basalt's own: see [`SqlitePool`]).
    Sqlite(SqlitePool),
    /// PostgreSQL pool.
    Postgres(PgPool),
}

/// A pooled connection of either backend; see [`with_conn!`](crate::with_conn).
#[derive(Debug)]
pub enum Conn {
    /// SQLite connection.
    Sqlite(PooledSqlite),
    /// PostgreSQL connection.
    Postgres(PoolConnection<Postgres>),
}

/// An open transaction of either backend; see [`with_tx!`](crate::with_tx).
/// Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// SQLite transaction (`BEGIN IMMEDIATE`), holding this process's writer turn.
    Sqlite(SqliteTx),
    /// PostgreSQL transaction.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits the transaction. Once called, the commit runs to its end on a
    /// task of its own, even if the caller is dropped (a client hanging up):
    /// a commit cut off after its `COMMIT` was sent would otherwise be
    /// followed by sqlx's rollback-on-drop, which PostgreSQL answers with
    /// "there is no transaction in progress", and the caller could not tell
    /// which of the two took effect.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let commit = tokio::spawn(async move {
            match self {
                Self::Sqlite(tx) => tx.commit().await,
                Self::Postgres(tx) => tx.commit().await,
            }
        });
        commit.await.map_err(|e| {
            sqlx::Error::Protocol(format!("the task committing a transaction failed: {e}"))
        })?
    }
}

/// Point-in-time pool statistics, exported as metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections (idle and in use).
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Callers waiting for a connection right now.
    pub waiting: i64,
    /// Configured maximum.
    pub max: u32,
}

/// The database handle every module receives. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    waiting: Arc<AtomicI64>,
    /// SQLite has one writer at a time. Writers of this process take turns
    /// here, in order, before they take a connection and the database's
    /// lock, instead of each holding a pool connection while SQLite's busy
    /// handler sleeps and retries: under a burst of writes that wasted the
    /// pool and starved some writers past the busy timeout.
    writer_turn: Arc<tokio::sync::Mutex<()>>,
}

/// How long a writer waits for its turn before going ahead anyway, leaving it
/// to SQLite's busy handler: a task that begins a transaction while already
/// holding one is then refused by SQLite, as before, instead of waiting on
/// itself forever.
const WRITER_TURN_TIMEOUT: Duration = Duration::from_secs(5);

/// Connecting failed; the message never contains the password.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the {backend} database at {url}: {source}")]
pub struct ConnectError {
    backend: &'static str,
    url: String,
    #[source]
    source: sqlx::Error,
}

impl Db {
    /// Opens a pool for the configured URL. SQLite files (and their folder)
    /// are created when missing and run in WAL mode with foreign keys on.
    pub async fn connect(
        url: &DatabaseUrl,
        settings: &DatabaseConfig,
    ) -> Result<Self, ConnectError> {
        let fail = |source| ConnectError {
            backend: url.backend_name(),
            url: url.redacted(),
            source,
        };
        let acquire_timeout = Duration::from_secs(settings.acquire_timeout_secs);
        let pool = match url {
            DatabaseUrl::Sqlite(raw) => {
                let options = SqliteConnectOptions::from_str(raw)
                    .map_err(fail)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                if let Some(parent) = options.get_filename().parent()
                    && !parent.as_os_str().is_empty()
                {
                    std::fs::create_dir_all(parent).map_err(|e| fail(sqlx::Error::Io(e)))?;
                }
                let pool = SqlitePool::connect(options, settings.max_connections, acquire_timeout)
                    .await
                    .map_err(fail)?;
                Pool::Sqlite(pool)
            }
            DatabaseUrl::Postgres(secret) => {
                let options = PgConnectOptions::from_str(secret.expose_secret())
                    .map_err(fail)?
                    .application_name("basalt");
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(acquire_timeout)
                    // sqlx pings every idle connection before lending it: one
                    // more round trip per query. A broken connection fails
                    // the query instead, and is dropped by the pool.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await
                    .map_err(fail)?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self {
            pool,
            waiting: Arc::new(AtomicI64::new(0)),
            writer_turn: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The underlying pool, for code whose SQL really differs per backend.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Takes a connection from the pool, counting the wait for metrics.
    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        let _waiting = WaitGuard::new(&self.waiting);
        Ok(match &self.pool {
            Pool::Sqlite(p) => Conn::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }

    /// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which
    /// takes the write lock up front: a deferred transaction that later
    /// upgrades to a writer can fail with `SQLITE_BUSY` without waiting.
    ///
    /// The `BEGIN` runs on a task of its own. sqlx 0.9.0 counts a PostgreSQL
    /// transaction only once the server has confirmed its `BEGIN`
    /// (transact-rs/sqlx#4393, fixed upstream after that release); a caller
    /// dropped while waiting for that (a client hanging up) would put the
    /// connection back in the pool inside a transaction nobody owns, and the
    /// next borrower's writes would run in it and be lost when it is rolled
    /// back. On its own task the `BEGIN` always completes, and a transaction
    /// nobody takes is dropped, and so rolled back, properly. Tested by
    /// `storage::a_begin_abandoned_midway_leaves_no_transaction_behind`.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let _waiting = WaitGuard::new(&self.waiting);
        let orphaned = |e: tokio::task::JoinError| {
            sqlx::Error::Protocol(format!("the task beginning a transaction failed: {e}"))
        };
        Ok(match &self.pool {
            Pool::Sqlite(p) => {
                let turn = Arc::clone(&self.writer_turn).lock_owned();
                let turn = tokio::time::timeout(WRITER_TURN_TIMEOUT, turn).await.ok();
                let p = p.clone();
                let tx =
                    tokio::spawn(async move { SqliteTx::begin(p.acquire().await?, turn).await })
                        .await
                        .map_err(orphaned)??;
                Tx::Sqlite(tx)
            }
            Pool::Postgres(p) => {
                let p = p.clone();
                let tx = tokio::spawn(async move { p.begin().await })
                    .await
                    .map_err(orphaned)??;
                Tx::Postgres(tx)
            }
        })
    }

    /// Checks that the database answers, within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), sqlx::Error> {
        let ping = async {
            crate::with_conn!(self, |conn| sqlx::query("SELECT 1")
                .execute(conn)
                .await
                .map(|_| ()))
        };
        tokio::time::timeout(timeout, ping)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    /// Current pool statistics.
    pub fn stats(&self) -> PoolStats {
        let (size, idle, max) = match &self.pool {
            Pool::Sqlite(p) => (p.size(), p.num_idle(), p.max_connections()),
            Pool::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        PoolStats {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            waiting: self.waiting.load(Ordering::Relaxed),
            max,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// For a unique-constraint violation, what was violated: the constraint name
/// on PostgreSQL (`identity_users_email_key`), the `table.column` list on
/// SQLite (which reports no names). `None` for any other error.
pub fn unique_violation(error: &sqlx::Error) -> Option<String> {
    let db_error = error.as_database_error()?;
    if !db_error.is_unique_violation() {
        return None;
    }
    if let Some(constraint) = db_error.constraint() {
        return Some(constraint.to_owned());
    }
    let message = db_error.message();
    Some(
        message
            .strip_prefix("UNIQUE constraint failed: ")
            .unwrap_or(message)
            .to_owned(),
    )
}

/// Counts a caller as waiting for a connection until dropped.
struct WaitGuard<'a>(&'a AtomicI64);

impl<'a> WaitGuard<'a> {
    fn new(counter: &'a AtomicI64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one piece of sqlx code on a pooled connection of whichever backend
/// `db` is; `conn` is bound to `&mut SqliteConnection` or `&mut PgConnection`.
/// The body must evaluate to a `Result` of one type for both backends (map a
/// `QueryResult` to `rows_affected()`), whose error type has
/// `From<sqlx::Error>`.
///
/// With traces on, the block is a span (`with_conn <module>`, a child of the
/// current span; none outside any span); with traces off, the macro costs
/// one relaxed atomic load more than the bare code.
///
/// ```ignore
/// let n: i64 = with_conn!(db, |conn| {
///     sqlx::query_scalar("SELECT count(*) FROM users WHERE email = $1")
///         .bind(email)
///         .fetch_one(conn)
///         .await
/// })?;
/// ```
#[macro_export]
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        // With traces on, a span for the block (waiting for the connection
        // included); see `telemetry::__db_span`.
        let span = $crate::__db_span!("with_conn");
        match $db.acquire().await {
            Ok($crate::db::Conn::Sqlite(mut pooled)) => {
                span.record("db.system.name", "sqlite");
                let $conn = &mut *pooled;
                $body
            }
            Ok($crate::db::Conn::Postgres(mut pooled)) => {
                span.record("db.system.name", "postgresql");
                let $conn = &mut *pooled;
                $body
            }
            Err(error) => Err(error.into()),
        }
    }};
}

/// Like [`with_conn!`](crate::with_conn), inside an open [`Tx`]: `$tx` is a
/// `&mut Tx`, `conn` the backend's connection within the transaction.
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {{
        let span = $crate::__db_span!("with_tx");
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                span.record("db.system.name", "sqlite");
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                span.record("db.system.name", "postgresql");
                let $conn = &mut **tx;
                $body
            }
        }
    }};
}
