//! One supervisor for every long-running background loop of a node, with one
//! cancellation signal and a shutdown that stops them in a fixed order and
//! waits for them.
//!
//! Everything that loops in the background runs here: the job workers and
//! their helpers (the PostgreSQL wake-up listener, the scheduler of
//! recurring jobs, the queue-depth gauge), the outbox relay and the event
//! consumers, the identity module's signing-key refresh, the Redis cache's
//! invalidation listener and retry loop, the Redis broadcast's listener, and
//! whatever modules add through
//! [`crate::module::Wiring::background`] (the WebSocket hubs to come). No
//! such loop is a detached `tokio::spawn`: each is a named task here, so
//! shutdown can wait for it and a test can see that none is left
//! ([`Supervisor::live`]).
//!
//! Background services are *registered* while the app is built
//! ([`Supervisor::register`], each saying with [`RunsOn`] which node roles
//! run it) and *started* by [`crate::server::serve`] for the node's role
//! ([`Supervisor::start`]). [`Supervisor::spawn`] starts a task at once.
//!
//! # Graceful shutdown order
//!
//! [`crate::server::serve`] stops a node in this order, each step waiting
//! for the one before:
//!
//! 1. **HTTP: stop accepting** connections;
//! 2. **drain in-flight requests** (at most `http.shutdown_grace_secs`);
//! 3. **handed-off work** ([`crate::background::BackgroundTasks`], e.g.
//!    sign-in checks settling their attempt), with the same grace;
//! 4. [`Stage::Jobs`]: **job workers** claim nothing new and finish the jobs
//!    in hand within the grace; what overruns is handed back to the queue;
//!    the listener, scheduler and gauge stop with them;
//! 5. [`Stage::Events`]: **event consumers and the outbox relay** stop after
//!    the batch in flight (jobs' handlers may still have recorded events up
//!    to step 4, and the relay publishes what it holds);
//! 6. [`Stage::Support`]: **the rest**: signing-key refresh, Redis
//!    listeners, gauges. Last, because everything above may still sign
//!    tokens or invalidate the cache while it winds down;
//! 7. **close the database pool**.
//!
//! Within a stage, every task's [`CancellationToken`] is cancelled at once.
//! A task then has the grace to finish what it holds plus [`HAND_BACK`] to
//! hand back what it could not (a job worker releases its job); a task still
//! running after that is aborted, and its name logged. [`Supervisor::shutdown`]
//! returns only once every task has ended, aborted ones included: nothing
//! outlives it.
//!
//! The stage tokens are children of one root token
//! ([`Supervisor::cancel_all`]): cancelling it stops every stage at once.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken;

use crate::role::Role;

/// How long, beyond the grace, a cancelled task may take to hand back what
/// it could not finish (the job workers' release of interrupted jobs)
/// before it is aborted.
pub const HAND_BACK: Duration = Duration::from_secs(5);

/// When, during shutdown, a background task is stopped; see the
/// [module docs](self) for the whole order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Job workers and their helpers: stopped first, right after HTTP and
    /// handed-off work.
    Jobs,
    /// Event consumers and the outbox relay.
    Events,
    /// Supporting loops everything else may need until it has stopped:
    /// signing-key refresh, cache listeners, gauges. Stopped last.
    Support,
}

impl Stage {
    /// Every stage, in shutdown order.
    pub const ALL: [Stage; 3] = [Stage::Jobs, Stage::Events, Stage::Support];

    /// The stage's name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jobs => "jobs",
            Self::Events => "events",
            Self::Support => "support",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which nodes run a background service, by their [`Role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsOn {
    /// Every node, whatever its role (caches' listeners, key refresh).
    EveryNode,
    /// Nodes that run background work ([`Role::runs_workers`]): job workers,
    /// the outbox relay, event consumers.
    Workers,
    /// Nodes that serve the API ([`Role::runs_http_api`]): e.g. WebSocket hubs.
    ApiNodes,
}

impl RunsOn {
    /// Whether a node of `role` runs it.
    pub fn includes(self, role: Role) -> bool {
        match self {
            Self::EveryNode => true,
            Self::Workers => role.runs_workers(),
            Self::ApiNodes => role.runs_http_api(),
        }
    }
}

type Start = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// A background loop, registered while the app is built and started by
/// [`crate::server::serve`] on the nodes it [runs on](RunsOn).
pub struct BackgroundService {
    name: Cow<'static, str>,
    runs_on: RunsOn,
    stage: Stage,
    start: Start,
}

impl std::fmt::Debug for BackgroundService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackgroundService")
            .field("name", &self.name)
            .field("runs_on", &self.runs_on)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl BackgroundService {
    /// A service named `name` (`module.what`, e.g.
    /// `identity.signing_key_refresh`), run on the nodes `runs_on` names and
    /// stopped in `stage`. `start` is called once, on the node's runtime,
    /// with the token that tells the loop to stop; the loop must then end
    /// promptly (finishing or handing back what it holds).
    pub fn new<F, Fut>(
        name: impl Into<Cow<'static, str>>,
        runs_on: RunsOn,
        stage: Stage,
        start: F,
    ) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            name: name.into(),
            runs_on,
            stage,
            start: Box::new(move |token| Box::pin(start(token))),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nodes it runs on.
    pub fn runs_on(&self) -> RunsOn {
        self.runs_on
    }

    /// When it stops.
    pub fn stage(&self) -> Stage {
        self.stage
    }
}

/// A running task, as listed by [`Supervisor::live`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTask {
    /// Its name.
    pub name: String,
    /// Its stage.
    pub stage: Stage,
}

type LiveMap = Arc<Mutex<BTreeMap<u64, LiveTask>>>;

/// Keeps a task in the live list until its future is dropped: when it
/// ends, however it ends (returned, panicked or aborted).
struct Alive {
    live: LiveMap,
    id: u64,
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The node's supervisor; clones share it. See the [module docs](self).
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    root: CancellationToken,
    stages: [CancellationToken; 3],
    tasks: Mutex<[JoinSet<()>; 3]>,
    live: LiveMap,
    next_id: AtomicU64,
    registered: Mutex<Vec<BackgroundService>>,
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("live", &self.live())
            .finish_non_exhaustive()
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// A supervisor with nothing registered or running.
    pub fn new() -> Self {
        let root = CancellationToken::new();
        let stages = [root.child_token(), root.child_token(), root.child_token()];
        Self {
            inner: Arc::new(Inner {
                root,
                stages,
                tasks: Mutex::new([JoinSet::new(), JoinSet::new(), JoinSet::new()]),
                live: LiveMap::default(),
                next_id: AtomicU64::new(0),
                registered: Mutex::new(Vec::new()),
                shutting_down: AtomicBool::new(false),
            }),
        }
    }

    /// Registers a service, to be started by [`Supervisor::start`] on the
    /// nodes it runs on.
    pub fn register(&self, service: BackgroundService) {
        self.inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(service);
    }

    /// The services registered and not started yet: name and where they run.
    pub fn registered(&self) -> Vec<(String, RunsOn, Stage)> {
        self.inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| (s.name.to_string(), s.runs_on, s.stage))
            .collect()
    }

    /// Starts every registered service that a node of `role` runs; the
    /// others are dropped unstarted. Call once, within the Tokio runtime.
    pub fn start(&self, role: Role) {
        let services = std::mem::take(
            &mut *self
                .inner
                .registered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for service in services {
            if service.runs_on.includes(role) {
                self.spawn(service.name, service.stage, service.start);
            } else {
                tracing::debug!(service = %service.name, %role, "not run on this role");
            }
        }
    }

    /// Starts a task now, in `stage`: `task` gets the stage's cancellation
    /// token. Refused (logged, not started) once shutdown has begun.
    pub fn spawn<F, Fut>(&self, name: impl Into<Cow<'static, str>>, stage: Stage, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = name.into();
        if self.inner.shutting_down.load(Ordering::Acquire) || self.inner.root.is_cancelled() {
            tracing::warn!(task = %name, "not started: the node is shutting down");
            return;
        }
        let token = self.inner.stages[stage.index()].clone();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                LiveTask {
                    name: name.to_string(),
                    stage,
                },
            );
        let alive = Alive {
            live: Arc::clone(&self.inner.live),
            id,
        };
        let run = task(token.clone());
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)[stage.index()]
        .spawn(async move {
            let _alive = alive;
            run.await;
            if !token.is_cancelled() {
                // A loop is meant to run until shutdown.
                tracing::warn!(task = %name, "background task ended before shutdown");
            }
        });
        tracing::debug!(stage = stage.as_str(), "background task started");
    }

    /// The tasks running now (started and not yet ended), by start order.
    pub fn live(&self) -> Vec<LiveTask> {
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The root cancellation token: every task's token is a child of it.
    pub fn token(&self) -> CancellationToken {
        self.inner.root.clone()
    }

    /// Cancels every stage at once (no order); [`Supervisor::shutdown`]
    /// still waits for the tasks.
    pub fn cancel_all(&self) {
        self.inner.root.cancel();
    }

    /// Stops every task stage by stage ([`Stage::ALL`]) and waits for each:
    /// a stage's tasks get `grace` plus [`HAND_BACK`] after their token is
    /// cancelled, then those still running are aborted and named in a
    /// warning. Returns once no task is left.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        // Registered, never started (a node that did not get to serve).
        self.inner
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        for stage in Stage::ALL {
            self.inner.stages[stage.index()].cancel();
            let mut tasks = std::mem::take(
                &mut self
                    .inner
                    .tasks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)[stage.index()],
            );
            if tasks.is_empty() {
                continue;
            }
            let ended = tokio::time::timeout(grace + HAND_BACK, join_all(&mut tasks)).await;
            if ended.is_err() {
                let names: Vec<String> = self
                    .live()
                    .into_iter()
                    .filter(|t| t.stage == stage)
                    .map(|t| t.name)
                    .collect();
                tracing::warn!(
                    stage = stage.as_str(),
                    tasks = ?names,
                    "background tasks cut off by the shutdown grace"
                );
                tasks.abort_all();
                join_all(&mut tasks).await;
            }
            tracing::debug!(stage = stage.as_str(), "background stage stopped");
        }
        self.inner.root.cancel();
    }
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined
            && error.is_panic()
        {
            tracing::error!(%error, "a background task panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn shutdown_stops_stages_in_order_and_waits_for_every_task() {
        let supervisor = Supervisor::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Registered in reverse: the stage decides, not the order.
        for stage in Stage::ALL.into_iter().rev() {
            let order = order.clone();
            supervisor.register(BackgroundService::new(
                format!("test.{}", stage.as_str()),
                RunsOn::EveryNode,
                stage,
                move |stop| async move {
                    stop.cancelled().await;
                    // A little work after the signal: the next stage waits.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    order.lock().expect("lock").push(stage);
                },
            ));
        }
        supervisor.register(BackgroundService::new(
            "test.api_only",
            RunsOn::ApiNodes,
            Stage::Support,
            |_| async {},
        ));
        supervisor.start(Role::Worker);
        assert_eq!(supervisor.live().len(), 3, "{:?}", supervisor.live());
        assert!(supervisor.registered().is_empty());

        supervisor.shutdown(Duration::from_secs(5)).await;
        assert_eq!(*order.lock().expect("lock"), Stage::ALL.to_vec());
        assert!(supervisor.live().is_empty());
        assert!(supervisor.token().is_cancelled());

        // Nothing starts once shut down.
        supervisor.spawn("test.late", Stage::Jobs, |_| async {});
        assert!(supervisor.live().is_empty());
    }

    #[tokio::test]
    async fn a_task_ignoring_its_token_is_aborted_after_the_grace_and_hand_back() {
        let supervisor = Supervisor::new();
        let dropped = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Count(dropped.clone());
        supervisor.spawn("test.stubborn", Stage::Events, move |_| async move {
            let _count = count;
            std::future::pending::<()>().await;
        });
        supervisor.spawn("test.panics", Stage::Jobs, |_| async {
            panic!("a panicking task still ends");
        });
        let started = std::time::Instant::now();
        supervisor.shutdown(Duration::ZERO).await;
        let took = started.elapsed();
        assert!(took >= HAND_BACK, "{took:?}");
        assert!(took < HAND_BACK + Duration::from_secs(3), "{took:?}");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            1,
            "the task's future was dropped"
        );
        assert!(supervisor.live().is_empty());
    }
}
