//! PostgreSQL wake-ups: one `LISTEN basalt_jobs` connection per node.
//!
//! Every enqueue sends `NOTIFY basalt_jobs` inside the enqueuing
//! transaction, so the notification reaches every node when (and only if)
//! the job is committed.
//! The listener turns each notification into a wake-up of one idle worker of
//! this node ([`tokio::sync::Notify`]); a woken worker that claims a job
//! wakes the next idle one, so a burst fans out over the workers.
//!
//! The listener only shortens the wait; it is never needed for correctness.
//! Workers go on polling (`poll_interval_ms`) whatever happens to it:
//! - it has its own connection (not one of the pool's), so it never takes
//!   a connection the workers or requests need;
//! - a lost connection is re-established by sqlx's `PgListener`, which
//!   subscribes again; notifications sent meanwhile are lost, so after every
//!   (re)connection all idle workers are woken to look once;
//! - a connection that fails outright is replaced from scratch;
//! - when reconnecting fails, it retries with a capped backoff, and the
//!   workers, which do not wait for it, poll meanwhile.
//!
//! A connection that hangs without closing (a silently dropped network path)
//! is not detected here: until TCP gives up on it, other nodes' jobs wait for
//! this node's next poll (this node's own enqueues still wake it directly).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::watch;

use super::JobQueue;
use super::store::CHANNEL;
use super::worker::Phase;
use crate::db::Pool;

/// Longest pause between attempts to reconnect.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Listens until shutdown (or returns at once on SQLite).
pub(super) async fn listen(queue: JobQueue, mut phase: watch::Receiver<Phase>) {
    let Pool::Postgres(pool) = queue.db.pool() else {
        return;
    };
    let options = (*pool.connect_options())
        .clone()
        .application_name("basalt-jobs-listener");
    let mut retry = Duration::from_millis(250);
    loop {
        let connect = async {
            // A pool of one, only so that PgListener can reconnect by itself.
            let own = PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .max_lifetime(None)
                .idle_timeout(None)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options.clone());
            let mut listener = PgListener::connect_with(&own).await?;
            listener.ignore_pool_close_event(true);
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let connected = tokio::select! {
            () = stopped(&mut phase) => return,
            connected = connect => connected,
        };
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(
                    error = %error,
                    retry_in_ms = u64::try_from(retry.as_millis()).unwrap_or(u64::MAX),
                    "job queue: cannot listen for wake-ups; workers keep polling"
                );
                tokio::select! {
                    () = stopped(&mut phase) => return,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        retry = Duration::from_millis(250);
        tracing::debug!("job queue: listening for wake-ups");
        // Whatever was enqueued before we listened was not announced to us.
        look_again(&queue);
        loop {
            let received = tokio::select! {
                () = stopped(&mut phase) => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(_)) => queue.wake.notify_one(),
                Ok(None) => {
                    // The connection was lost and has been re-established:
                    // notifications in between are gone, so look once.
                    tracing::info!("job queue: wake-up listener reconnected");
                    look_again(&queue);
                }
                Err(error) => {
                    tracing::warn!(
                        error = %error,
                        "job queue: wake-up listener lost its connection; workers keep polling"
                    );
                    break;
                }
            }
        }
    }
}

/// Makes every idle worker look for jobs once, and the next worker to go
/// idle as well (it may be between a claim that found nothing and its nap).
fn look_again(queue: &JobQueue) {
    queue.wake.notify_waiters();
    queue.wake.notify_one();
}

/// Resolves once the workers are asked to stop (or are gone).
async fn stopped(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|p| *p != Phase::Running).await.map(|_| ());
}
