//! SQLite's connection pool, and its write transactions.
//!
//! Why not sqlx's pool: it tests every connection it takes back with a
//! `ping`, and an SQLite connection is a worker thread of sqlx's, so the
//! ping is one more round trip to that thread (two context switches and a
//! spawned task) after every query. In a sign-in storm that was a third of
//! the server's context switches, each one also pre-empting a password hash
//! (`bench/notes/identity-signin.md`). SQLite needs no such test: a
//! connection runs its commands one after another on its thread, so a query
//! abandoned midway (a client hanging up) finishes before the next borrower's
//! first command; and [`SqliteTx`] rolls an abandoned transaction back before
//! its connection is reused. So this pool takes a connection back without a
//! round trip.
//!
//! Connections are opened on demand up to the maximum, handed out most
//! recently used first (warm page cache), and closed after [`IDLE_TIMEOUT`]
//! unused, checked whenever one is returned.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// How long an unused connection stays open (sqlx's pool default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// A pool of SQLite connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlitePool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: SqliteConnectOptions,
    max: u32,
    acquire_timeout: Duration,
    /// One permit per connection that may be lent out.
    permits: Arc<Semaphore>,
    /// Connections not lent out, the most recently returned last.
    idle: Mutex<Vec<IdleConnection>>,
    /// Open connections, lent out or idle.
    size: AtomicU32,
    closing: AtomicBool,
}

#[derive(Debug)]
struct IdleConnection {
    conn: SqliteConnection,
    since: Instant,
}

impl SqlitePool {
    /// Opens a pool of up to `max` connections (at least one), and one
    /// connection right away, so that a bad path fails at start.
    pub(super) async fn connect(
        options: SqliteConnectOptions,
        max: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, sqlx::Error> {
        let max = max.max(1);
        let pool = Self {
            inner: Arc::new(Inner {
                options,
                max,
                acquire_timeout,
                permits: Arc::new(Semaphore::new(max as usize)),
                idle: Mutex::new(Vec::new()),
                size: AtomicU32::new(0),
                closing: AtomicBool::new(false),
            }),
        };
        drop(pool.acquire().await?);
        Ok(pool)
    }

    /// Lends a connection: an idle one, or a new one while fewer than the
    /// maximum are open. Waits at most the acquire timeout for one to be
    /// returned.
    pub async fn acquire(&self) -> Result<PooledSqlite, sqlx::Error> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let permits = Arc::clone(&inner.permits);
        let permit =
            match tokio::time::timeout(inner.acquire_timeout, permits.acquire_owned()).await {
                Err(_elapsed) => return Err(sqlx::Error::PoolTimedOut),
                Ok(Err(_closed)) => return Err(sqlx::Error::PoolClosed),
                Ok(Ok(permit)) => permit,
            };
        if inner.closing.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = inner.lock_idle().pop();
        let conn = match idle {
            Some(idle) => idle.conn,
            None => {
                let conn = inner.options.connect().await?;
                inner.size.fetch_add(1, Ordering::Relaxed);
                conn
            }
        };
        Ok(PooledSqlite {
            conn: Some(conn),
            pool: Arc::clone(inner),
            _permit: permit,
        })
    }

    /// Open connections (lent out and idle).
    pub fn size(&self) -> u32 {
        self.inner.size.load(Ordering::Relaxed)
    }

    /// Connections not lent out.
    pub fn num_idle(&self) -> usize {
        self.inner.lock_idle().len()
    }

    /// The most connections this pool opens.
    pub fn max_connections(&self) -> u32 {
        self.inner.max
    }

    /// Refuses new borrowers, waits until every connection lent out is back,
    /// and closes them all (the last close checkpoints SQLite's WAL).
    pub async fn close(&self) {
        let inner = &self.inner;
        inner.closing.store(true, Ordering::Release);
        // Every permit back means every connection back.
        let all = inner.permits.acquire_many(inner.max).await;
        inner.permits.close();
        drop(all);
        let idle = std::mem::take(&mut *inner.lock_idle());
        for entry in idle {
            inner.size.fetch_sub(1, Ordering::Relaxed);
            let _ = entry.conn.close().await;
        }
    }
}

impl Inner {
    fn lock_idle(&self) -> MutexGuard<'_, Vec<IdleConnection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a connection back, and closes those unused for too long (the
    /// oldest are first in the list).
    fn put_back(&self, conn: SqliteConnection) {
        let now = Instant::now();
        let stale: Vec<IdleConnection> = {
            let mut idle = self.lock_idle();
            idle.push(IdleConnection { conn, since: now });
            let fresh_from = idle
                .iter()
                .position(|c| now.duration_since(c.since) < IDLE_TIMEOUT)
                .unwrap_or(idle.len());
            idle.drain(..fresh_from).collect()
        };
        // Dropped outside the lock: sqlx's worker thread closes the handle.
        self.size.fetch_sub(
            u32::try_from(stale.len()).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
    }
}

/// A connection lent by [`SqlitePool`]; it goes back when dropped.
#[derive(Debug)]
pub struct PooledSqlite {
    conn: Option<SqliteConnection>,
    pool: Arc<Inner>,
    // Released after the connection is back (fields drop after `drop`).
    _permit: OwnedSemaphorePermit,
}

impl PooledSqlite {
    /// Closes the connection instead of returning it (its state is unknown).
    fn discard(mut self) {
        if self.conn.take().is_some() {
            self.pool.size.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl std::ops::Deref for PooledSqlite {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .expect("a lent connection is present until dropped")
    }
}

impl std::ops::DerefMut for PooledSqlite {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("a lent connection is present until dropped")
    }
}

impl Drop for PooledSqlite {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }
}

/// An SQLite write transaction (`BEGIN IMMEDIATE`) and the writer turn it
/// holds (see [`super::Db::begin`]). Dropped without [`SqliteTx::commit`], it
/// is rolled back before its connection and turn are released.
#[derive(Debug)]
pub struct SqliteTx {
    conn: Option<PooledSqlite>,
    turn: Option<OwnedMutexGuard<()>>,
}

impl SqliteTx {
    /// Starts a write transaction on `conn`.
    pub(super) async fn begin(
        conn: PooledSqlite,
        turn: Option<OwnedMutexGuard<()>>,
    ) -> Result<Self, sqlx::Error> {
        let mut conn = InDoubt(Some(conn));
        let begun = sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut **conn.get())
            .await;
        // Either way the state is known now: on error no transaction is
        // open, and the connection goes back to the pool.
        let conn = conn.settled();
        begun?;
        Ok(Self {
            conn: Some(conn),
            turn,
        })
    }

    /// Commits. On error the transaction may still be open, and is rolled
    /// back when this is dropped.
    pub(super) async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut *self).await?;
        // Committed: the connection and the turn go back as they are.
        self.conn.take();
        Ok(())
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.conn
            .as_ref()
            .expect("an open transaction has its connection")
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("an open transaction has its connection")
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let turn = self.turn.take();
        let mut conn = InDoubt(Some(conn));
        // Without a runtime to run the statement, `conn` is dropped here and
        // closed, which rolls the transaction back.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let rolled_back = sqlx::query("ROLLBACK")
                    .execute(&mut **conn.get())
                    .await
                    .is_ok();
                if rolled_back {
                    drop(conn.settled());
                }
                // After the rollback, so that the next writer does not run
                // into this transaction's lock.
                drop(turn);
            });
        }
    }
}

/// A connection whose transaction state is in doubt while a `BEGIN` or
/// `ROLLBACK` runs on it. Dropped before [`InDoubt::settled`] (a runtime
/// shutting down drops unfinished tasks), it closes the connection instead
/// of returning it: closing rolls back whatever is open, whereas returning
/// it could hand the next borrower a transaction it did not begin.
struct InDoubt(Option<PooledSqlite>);

impl InDoubt {
    fn get(&mut self) -> &mut PooledSqlite {
        self.0.as_mut().expect("present until settled")
    }

    /// The state is known: the connection may go back to the pool.
    fn settled(mut self) -> PooledSqlite {
        self.0.take().expect("present until settled")
    }
}

impl Drop for InDoubt {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool(max: u32, dir: &tempfile::TempDir) -> SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("pool.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePool::connect(options, max, Duration::from_millis(200))
            .await
            .expect("connect");
        let mut conn = pool.acquire().await.expect("acquire");
        sqlx::query("CREATE TABLE t (n INTEGER NOT NULL)")
            .execute(&mut *conn)
            .await
            .expect("create");
        pool
    }

    async fn count(pool: &SqlitePool) -> i64 {
        let mut conn = pool.acquire().await.expect("acquire");
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn connections_are_reused_and_capped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = pool(2, &dir).await;
        assert_eq!((pool.size(), pool.num_idle()), (1, 1));
        let first = pool.acquire().await.expect("first");
        let second = pool.acquire().await.expect("second");
        assert_eq!((pool.size(), pool.num_idle()), (2, 0));
        assert!(matches!(
            pool.acquire().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        drop(first);
        let third = pool.acquire().await.expect("a returned connection");
        assert_eq!(pool.size(), 2, "reused, not opened");
        drop((second, third));
        assert_eq!(pool.num_idle(), 2);
    }

    #[tokio::test]
    async fn an_abandoned_transaction_is_rolled_back_before_its_connection_is_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = pool(1, &dir).await;
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let conn = pool.acquire().await.expect("acquire");
        let mut tx = SqliteTx::begin(conn, Some(Arc::clone(&turn).lock_owned().await))
            .await
            .expect("begin");
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        drop(tx);
        // The one connection comes back only after its rollback.
        assert_eq!(count(&pool).await, 0);
        assert!(turn.try_lock().is_ok(), "the writer turn was released");
        let conn = pool.acquire().await.expect("acquire");
        let mut tx = SqliteTx::begin(conn, None)
            .await
            .expect("a new transaction");
        sqlx::query("INSERT INTO t (n) VALUES (2)")
            .execute(&mut *tx)
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(count(&pool).await, 1);
    }

    /// A runtime shutting down drops the task that would have rolled back:
    /// the connection is then closed, never lent out inside the transaction.
    #[test]
    fn a_transaction_whose_rollback_never_ran_is_not_reused() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = runtime().block_on(async {
            let pool = pool(1, &dir).await;
            let conn = pool.acquire().await.expect("acquire");
            let mut tx = SqliteTx::begin(conn, None).await.expect("begin");
            sqlx::query("INSERT INTO t (n) VALUES (1)")
                .execute(&mut *tx)
                .await
                .expect("insert");
            // Spawns the rollback, which this runtime never runs.
            drop(tx);
            pool
        });
        runtime().block_on(async {
            assert_eq!(count(&pool).await, 0, "the transaction's row is not seen");
            let conn = pool.acquire().await.expect("acquire");
            SqliteTx::begin(conn, None)
                .await
                .expect("a new transaction")
                .commit()
                .await
                .expect("commit");
        });
    }

    #[tokio::test]
    async fn a_query_abandoned_midway_does_not_disturb_the_next_borrower() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = pool(1, &dir).await;
        let mut conn = pool.acquire().await.expect("acquire");
        let slow = sqlx::query_scalar::<_, i64>(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) \
             SELECT max(x) FROM c",
        )
        .fetch_one(&mut *conn);
        let abandoned = tokio::time::timeout(Duration::from_millis(1), slow).await;
        assert!(abandoned.is_err(), "the slow query should still be running");
        drop(conn);
        let mut conn = pool.acquire().await.expect("acquire");
        let answer: i64 = sqlx::query_scalar("SELECT 42")
            .fetch_one(&mut *conn)
            .await
            .expect("query");
        assert_eq!(answer, 42);
    }

    #[tokio::test]
    async fn close_waits_for_connections_lent_out_then_refuses_borrowers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pool = pool(2, &dir).await;
        let lent = pool.acquire().await.expect("acquire");
        let closing = tokio::spawn({
            let pool = pool.clone();
            async move { pool.close().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !closing.is_finished(),
            "close waits for the lent connection"
        );
        assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolClosed)));
        drop(lent);
        closing.await.expect("close");
        assert_eq!(pool.size(), 0);
    }
}
